/*
 * test_extract.c - unit tests for the text extraction of rag
 * (src/core/extract.c): kinds by name and first bytes, HTML and roff to
 * text.  Each converter case is fed whole, then one byte at a time, then
 * in pieces of 7: the output must be the same, since files reach the
 * converters in pieces cut anywhere.
 */
#include "aichat/extract.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

struct conv_case {
	const char *in, *out;
};

static const struct conv_case html_cases[] = {
	{ "<p>a &amp; b</p>", "a & b\n\n" },
	{ "<h1>Title</h1><p>text</p>", "# Title\n\ntext\n\n" },
	{ "<h3 class=\"x>y\">Deep</h3>", "### Deep\n\n" },
	{ "x<script>if (a<b) document.write('<p>');</script>y", "xy\n" },
	{ "<STYLE>p { } </style>z", "z\n" },
	{ "a<!-- c -- > -->b", "ab\n" },
	{ "&#233;&#xE9;&#X263a;&#0;&#1114112;", "\xc3\xa9\xc3\xa9\xe2\x98\xba\xef\xbf\xbd\xef\xbf\xbd\n" },
	{ "a&#1;b&#9;c", "a b c\n" },
	{ "AT&T &unknown; &amp", "AT&T &unknown; &amp\n" },
	{ "a  \n\t b<br>c", "a b\nc\n" },
	{ "<pre>  x\n  y</pre>z", "  x\n  y\n\nz\n" },
	{ "<ul><li>one</li><li>two</li></ul>", "one\ntwo\n\n" },
	{ "1 < 2 and 3 > 2", "1 < 2 and 3 > 2\n" },
	{ "<!DOCTYPE html><title>T</title>", "# T\n\n" },
	{ "", "" },
};

static const struct conv_case roff_cases[] = {
	{ ".TH LS 1 \"2024\"\n.SH NAME\nls \\- list\n", "# LS(1)\n\n## NAME\n\nls - list\n" },
	{ ".SH\nDESCRIPTION\nword\n", "## DESCRIPTION\n\nword\n" },
	{ "\\fBbold\\fR and \\fIit\\fP \\f(CWcw\\f[] end\n", "bold and it cw end\n" },
	{ "a \\(em b \\[en] c \\(lq\\*(lq\\(rq \\e \\(bu\n", "a \xe2\x80\x94 b \xe2\x80\x93 c \xe2\x80\x9c\xe2\x80\x9c\xe2\x80\x9d \\ \xe2\x80\xa2\n" },
	{ ".B \"two words\" three\n", "two words three\n" },
	{ ".BR ls (1),\n", "ls(1),\n" },
	{ ".\\\" comment\ntext \\\" trailing comment\n", "text\n" },
	{ ".de XX\nbody\n..\n.XX\nafter\n", "after\n" },
	{ ".if n \\{\\\nhidden\n.\\}\nshown\n", "shown\n" },
	{ ".TP\n.B \\-v\nVerbose.\n", "-v\nVerbose.\n" },
	{ "one\ntwo\n.PP\nthree\n", "one two\n\nthree\n" },
	{ ".nf\na  b\nc\n.fi\nd\ne\n", "a  b\nc\nd e\n" },
	{ "cont\\\ninued\n", "continued\n" },
	{ ".Dt FOO 1\n.Sh NAME\n.Nm foo\n.Nd does things\n.Fl v Ar file\n", "# FOO(1)\n\n## NAME\n\nfoo does things -v file\n" },
	{ ".Xr ls 1 ,\n", "ls(1),\n" },
	{ ".ZZ kept words\n", "kept words\n" },
	{ "bad \\f\n", "bad\n" },
	{ ".ig\nnever\n", "never\n" },
	{ ".ie n .ds X y\n.el\\{\\\nhidden\n.\\}\nshown\n", "shown\n" },
	{ ".TS\nbox;\nl l.\nName\tValue\nT{\nlong cell\nT}\tx\n.TE\nafter\n", "Name Value\nlong cell\n x\n\nafter\n" },
	{ "...and more\n.gitignore files\n", "...and more .gitignore files\n" },
	{ "\\s-1small\\s0 \\h'3n'x \\*(Tm\n", "small x \xe2\x84\xa2\n" },
	{ "", "" },
};

typedef void (*feed_fn)(void *st, const char *p, size_t n, struct buf *out);

static void html_feed_v(void *st, const char *p, size_t n, struct buf *out)
{
	html_feed(st, p, n, out);
}

static void roff_feed_v(void *st, const char *p, size_t n, struct buf *out)
{
	roff_feed(st, p, n, out);
}

static void run_html(const char *in, size_t step, struct buf *out)
{
	struct html h;
	size_t n = strlen(in);

	html_init(&h);
	for (size_t i = 0; i < n; i += step)
		html_feed_v(&h, in + i, n - i < step ? n - i : step, out);
	html_finish(&h, out);
}

static void run_roff(const char *in, size_t step, struct buf *out)
{
	struct roff r;
	size_t n = strlen(in);

	roff_init(&r);
	for (size_t i = 0; i < n; i += step)
		roff_feed_v(&r, in + i, n - i < step ? n - i : step, out);
	roff_finish(&r, out);
}

static void check(const char *what, void (*run)(const char *, size_t, struct buf *),
		  const struct conv_case *c)
{
	static const size_t steps[] = { 100000, 1, 7 };

	for (size_t s = 0; s < 3; s++) {
		struct buf out;
		buf_init(&out, 0);
		run(c->in, steps[s], &out);
		is_str(out.ptr, c->out, "%s, pieces of %zu: %.40s", what, steps[s], c->in);
		buf_release(&out);
	}
}

int main(void)
{
	(void)html_feed_v;
	(void)roff_feed_v;
	for (size_t i = 0; i < sizeof(html_cases) / sizeof(html_cases[0]); i++)
		check("html", run_html, &html_cases[i]);
	for (size_t i = 0; i < sizeof(roff_cases) / sizeof(roff_cases[0]); i++)
		check("roff", run_roff, &roff_cases[i]);

	/* Kinds: the name (its .gz aside) and the first bytes. */
	is_int(extract_kind_of("/a/ls.1.gz", ".TH LS 1\n", 9), EXTRACT_ROFF, "ls.1.gz with .TH");
	is_int(extract_kind_of("/a/perl.3pm", "text\n.SH NAME\n", 14), EXTRACT_ROFF, "foo.3pm with a control line");
	is_int(extract_kind_of("/a/notes.1", "just text\n", 10), EXTRACT_TEXT, "foo.1 without a control line");
	is_int(extract_kind_of("/a/x.txt", ".\\\" comment\n", 12), EXTRACT_ROFF, "a roff comment first");
	is_int(extract_kind_of("/a/changelog.gz", "v1.0\n", 5), EXTRACT_TEXT, "changelog.gz");
	is_int(extract_kind_of("/a/Index.HTM", "hi", 2), EXTRACT_HTML, ".HTM");
	is_int(extract_kind_of("/a/x", "\xef\xbb\xbf  <!doctype HTML>", 20), EXTRACT_HTML, "BOM and doctype");
	is_int(extract_kind_of("/a/x.md", "%PDF-1.7", 8), EXTRACT_PDF, "%%PDF- first");
	is_int(extract_kind_of("/a/x.md", "# Title", 7), EXTRACT_TEXT, "markdown");
	ok(extract_is_gzip((const unsigned char *)"\x1f\x8b", 2), "gzip magic");
	ok(!extract_is_gzip((const unsigned char *)"\x1f", 1), "one byte is not gzip");
	return tap_done();
}
