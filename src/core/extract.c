/*
 * extract.c - the text of a file for rag; see extract.h.
 *
 * Three stages, each on pieces: a source (the file's bytes, inflated
 * when gzip, or pdftotext's output), a converter (HTML or roff to text,
 * or none) and the caller's buffer.  Invariant: no stage holds more than
 * a bounded piece (a roff line is cut at ROFF_LINE_MAX), so memory does
 * not grow with the file; the text given is counted and stops at max.
 */
#include "aichat/extract.h"
#include "aichat/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

extern char **environ;

#define PIECE 65536
#define ROFF_LINE_MAX 65536
#define ROFF_HELD_MAX 65536

const char *extract_kind_name(enum extract_kind k)
{
	switch (k) {
	case EXTRACT_HTML: return "html";
	case EXTRACT_ROFF: return "man";
	case EXTRACT_PDF: return "pdf";
	default: return "text";
	}
}

int extract_is_gzip(const unsigned char *p, size_t n)
{
	return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* ==== kinds ==== */

static int has_prefix_ci(const char *p, size_t n, const char *pre)
{
	size_t k = strlen(pre);

	return n >= k && !strncasecmp(p, pre, k);
}

/* The extension of the base name of name[0..n), without the dot, or "". */
static void extension(const char *name, size_t n, char *ext, size_t size)
{
	size_t i = n, b = 0;

	for (size_t j = 0; j < n; j++)
		if (name[j] == '/')
			b = j + 1;
	while (i > b && name[i - 1] != '.')
		i--;
	ext[0] = '\0';
	if (i > b + 1 && n - i < size) {
		memcpy(ext, name + i, n - i);
		ext[n - i] = '\0';
	}
}

/* foo.1, foo.3pm, foo.1ssl, foo.8x: a digit 1-9, then a few letters. */
static int man_section(const char *ext)
{
	size_t n = strlen(ext);

	if (!strcasecmp(ext, "man") || !strcasecmp(ext, "mdoc") || !strcmp(ext, "n"))
		return 1;
	if (n < 1 || n > 6 || ext[0] < '1' || ext[0] > '9')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!isalpha((unsigned char)ext[i]))
			return 0;
	return 1;
}

/* Whether head has a roff control line: '.' or '\'' then a letter or
 * a comment. */
static int has_control_line(const char *h, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((i == 0 || h[i - 1] == '\n') && (h[i] == '.' || h[i] == '\'') &&
		    i + 1 < n && (isalpha((unsigned char)h[i + 1]) || h[i + 1] == '\\'))
			return 1;
	}
	return 0;
}

enum extract_kind extract_kind_of(const char *name, const char *head, size_t n)
{
	size_t len = strlen(name), i = 0;
	char ext[16];

	if (len > 3 && !strcmp(name + len - 3, ".gz"))
		len -= 3;
	extension(name, len, ext, sizeof(ext));
	if (n >= 5 && !memcmp(head, "%PDF-", 5))
		return EXTRACT_PDF;
	if (!strcasecmp(ext, "pdf"))
		return EXTRACT_PDF;
	if (!strcasecmp(ext, "html") || !strcasecmp(ext, "htm") ||
	    !strcasecmp(ext, "xhtml") || !strcasecmp(ext, "shtml"))
		return EXTRACT_HTML;
	if (n >= 3 && !memcmp(head, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < n && isspace((unsigned char)head[i]))
		i++;
	if (has_prefix_ci(head + i, n - i, "<!doctype html") ||
	    has_prefix_ci(head + i, n - i, "<html"))
		return EXTRACT_HTML;
	if (has_prefix_ci(head, n, ".\\\"") || has_prefix_ci(head, n, "'\\\"") ||
	    has_prefix_ci(head, n, ".TH ") || has_prefix_ci(head, n, ".Dd ") ||
	    has_prefix_ci(head, n, ".Dt "))
		return EXTRACT_ROFF;
	if (man_section(ext) && has_control_line(head, n))
		return EXTRACT_ROFF;
	return EXTRACT_TEXT;
}

/* ==== shared output helpers ==== */

static void put_utf8(struct buf *out, unsigned long c)
{
	char u[4];

	if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		c = 0xFFFD;
	if (c < 0x80) {
		buf_putc(out, (int)c);
	} else if (c < 0x800) {
		u[0] = (char)(0xC0 | (c >> 6));
		u[1] = (char)(0x80 | (c & 0x3F));
		buf_append(out, u, 2);
	} else if (c < 0x10000) {
		u[0] = (char)(0xE0 | (c >> 12));
		u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[2] = (char)(0x80 | (c & 0x3F));
		buf_append(out, u, 3);
	} else {
		u[0] = (char)(0xF0 | (c >> 18));
		u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		u[3] = (char)(0x80 | (c & 0x3F));
		buf_append(out, u, 4);
	}
}

/* ==== HTML ==== */

enum { H_TEXT, H_LT, H_TAG, H_ATTR, H_BANG, H_COMMENT, H_DECL, H_ENT, H_RAW };

static const struct { const char *name; unsigned long c; } entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
	{ "apos", '\'' }, { "nbsp", ' ' }, { "copy", 0xA9 }, { "reg", 0xAE },
	{ "trade", 0x2122 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "hellip", 0x2026 }, { "laquo", 0xAB }, { "raquo", 0xBB },
	{ "ldquo", 0x201C }, { "rdquo", 0x201D }, { "lsquo", 0x2018 },
	{ "rsquo", 0x2019 }, { "bull", 0x2022 }, { "middot", 0xB7 },
	{ "deg", 0xB0 }, { "plusmn", 0xB1 }, { "times", 0xD7 },
	{ "divide", 0xF7 }, { "euro", 0x20AC }, { "pound", 0xA3 },
	{ "yen", 0xA5 }, { "cent", 0xA2 }, { "sect", 0xA7 }, { "para", 0xB6 },
	{ "shy", 0 }, { "larr", 0x2190 }, { "rarr", 0x2192 }, { "uarr", 0x2191 },
	{ "darr", 0x2193 }, { "le", 0x2264 }, { "ge", 0x2265 }, { "ne", 0x2260 },
	{ "auml", 0xE4 }, { "ouml", 0xF6 }, { "uuml", 0xFC }, { "Auml", 0xC4 },
	{ "Ouml", 0xD6 }, { "Uuml", 0xDC }, { "szlig", 0xDF }, { "eacute", 0xE9 },
	{ "egrave", 0xE8 }, { "aacute", 0xE1 }, { "agrave", 0xE0 },
	{ "ccedil", 0xE7 }, { "ntilde", 0xF1 }, { "oacute", 0xF3 },
	{ "iacute", 0xED }, { "uacute", 0xFA }, { "thinsp", ' ' }, { "ensp", ' ' },
	{ "emsp", ' ' }, { "zwj", 0 }, { "zwnj", 0 }, { "lrm", 0 }, { "rlm", 0 },
	{ "dagger", 0x2020 }, { "prime", 0x2032 }, { "minus", 0x2212 },
};

void html_init(struct html *h)
{
	memset(h, 0, sizeof(*h));
	h->at_line = 1;
	h->blank = 1;
}

static void h_newline(struct html *h, struct buf *out)
{
	if (!h->at_line)
		buf_putc(out, '\n');
	h->at_line = 1;
	h->space = 0;
}

static void h_blank(struct html *h, struct buf *out)
{
	h_newline(h, out);
	if (!h->blank)
		buf_putc(out, '\n');
	h->blank = 1;
}

/* One character of text (c < 0x80) or a code point. */
static void h_text(struct html *h, unsigned long c, struct buf *out)
{
	if (h->pre && c == '\n') {
		if (h->at_line)
			h->blank = 1;
		buf_putc(out, '\n');
		h->at_line = 1;
		return;
	}
	if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
		if (h->pre)
			buf_putc(out, (int)c);
		else
			h->space = 1;
		return;
	}
	if (h->space && !h->at_line)
		buf_putc(out, ' ');
	h->space = 0;
	if (c < 0x80)
		buf_putc(out, (int)c);
	else
		put_utf8(out, c);
	h->at_line = 0;
	h->blank = 0;
}

static int in_list(const char *tag, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(tag, *list))
			return 1;
	return 0;
}

static const char *const paragraph_tags[] = {
	"p", "div", "section", "article", "header", "footer", "nav", "aside",
	"blockquote", "pre", "table", "ul", "ol", "dl", "form", "figure",
	"main", "hr", "address", "details", "body", "center", NULL
};
static const char *const line_tags[] = {
	"br", "li", "dt", "dd", "tr", "summary", "caption", "option",
	"figcaption", "h", NULL
};

/* A tag is complete: h->tag holds its lower-case name ("/name" when it
 * closes). */
static void h_tag(struct html *h, struct buf *out)
{
	int close = h->tag[0] == '/';
	const char *t = h->tag + close;

	if (!*t)
		return;
	if (!close && (!strcmp(t, "script") || !strcmp(t, "style") ||
		       !strcmp(t, "template") || !strcmp(t, "svg"))) {
		h->raw = t[1] == 'c' ? 1 : t[1] == 't' && t[2] == 'y' ? 2 :
			 t[0] == 't' ? 3 : 4;
		h->rawmatch = 0;
		return;
	}
	if ((t[0] == 'h' && t[1] >= '1' && t[1] <= '6' && !t[2]) || !strcmp(t, "title")) {
		h_blank(h, out);
		if (!close) {
			int level = t[0] == 'h' && t[1] != 'i' ? t[1] - '0' : 1;
			for (int i = 0; i < level; i++)
				buf_putc(out, '#');
			buf_putc(out, ' ');
			h->at_line = 0;
			h->blank = 0;
			h->heading = level;
		} else {
			h->heading = 0;
		}
		return;
	}
	if (!strcmp(t, "pre"))
		h->pre = !close;
	if (in_list(t, paragraph_tags))
		h_blank(h, out);
	else if (in_list(t, line_tags))
		h_newline(h, out);
	else if (!strcmp(t, "td") || !strcmp(t, "th"))
		h->space = 1;
}

static const char *const raw_end[] = { NULL, "</script", "</style", "</template", "</svg" };

/* An entity's name (between & and ;) decoded into out; 0 when unknown. */
static int h_entity(struct html *h, struct buf *out)
{
	const char *e = h->ent;

	if (e[0] == '#') {
		unsigned long c = 0;
		int hex = e[1] == 'x' || e[1] == 'X';
		const char *p = e + 1 + hex;
		if (!*p)
			return 0;
		for (; *p; p++) {
			int d = isdigit((unsigned char)*p) ? *p - '0' :
				hex && isxdigit((unsigned char)*p) ?
				tolower((unsigned char)*p) - 'a' + 10 : -1;
			if (d < 0)
				return 0;
			c = c * (hex ? 16 : 10) + (unsigned long)d;
			if (c > 0x10FFFF)
				c = 0x110000;
		}
		/* NUL is not text (it would make the file look binary);
		 * other control characters and no-break space separate. */
		if (c == 0)
			c = 0xFFFD;
		else if (c < 0x20 || c == 0x7F || c == 0xA0)
			c = ' ';
		h_text(h, c, out);
		return 1;
	}
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
		if (!strcmp(e, entities[i].name)) {
			if (entities[i].c)
				h_text(h, entities[i].c, out);
			return 1;
		}
	}
	return 0;
}

static void h_char(struct html *h, unsigned char c, struct buf *out)
{
again:
	switch (h->state) {
	case H_TEXT:
		if (c == '<')
			h->state = H_LT;
		else if (c == '&') {
			h->state = H_ENT;
			h->entlen = 0;
		} else
			h_text(h, c, out);
		return;
	case H_LT:
		if (isalpha(c) || c == '/') {
			h->state = H_TAG;
			h->tag[0] = (char)tolower(c);
			h->taglen = 1;
		} else if (c == '!') {
			h->state = H_BANG;
			h->taglen = 0;
		} else if (c == '?') {
			h->state = H_DECL;
		} else {
			h->state = H_TEXT;
			h_text(h, '<', out);
			goto again;
		}
		return;
	case H_TAG:
		if (isalnum(c) && h->taglen + 1 < sizeof(h->tag)) {
			h->tag[h->taglen++] = (char)tolower(c);
			return;
		}
		if (isalnum(c) || c == '-' || c == ':' || c == '_')
			return;
		h->tag[h->taglen] = '\0';
		h->state = H_ATTR;
		h->quote = 0;
		goto again;
	case H_ATTR:
		if (h->quote) {
			if (c == h->quote)
				h->quote = 0;
		} else if (c == '"' || c == '\'') {
			h->quote = c;
		} else if (c == '>') {
			h->state = H_TEXT;
			h_tag(h, out);
			if (h->raw)
				h->state = H_RAW;
		}
		return;
	case H_BANG:
		if (c == '-' && h->taglen < 2) {
			if (++h->taglen == 2) {
				h->state = H_COMMENT;
				h->taglen = 0;
			}
			return;
		}
		h->state = H_DECL;
		goto again;
	case H_COMMENT:
		if (c == '>' && h->taglen >= 2)
			h->state = H_TEXT;
		h->taglen = c == '-' ? h->taglen + 1 : 0;
		return;
	case H_DECL:
		if (c == '>')
			h->state = H_TEXT;
		return;
	case H_ENT:
		if (c == ';') {
			h->ent[h->entlen] = '\0';
			h->state = H_TEXT;
			if (h_entity(h, out))
				return;
			h_text(h, '&', out);
			for (size_t i = 0; i < h->entlen; i++)
				h_text(h, (unsigned char)h->ent[i], out);
			h_text(h, ';', out);
			return;
		}
		if ((isalnum(c) || c == '#') && h->entlen + 1 < sizeof(h->ent)) {
			h->ent[h->entlen++] = (char)c;
			return;
		}
		h->state = H_TEXT;
		h_text(h, '&', out);
		for (size_t i = 0; i < h->entlen; i++)
			h_text(h, (unsigned char)h->ent[i], out);
		goto again;
	case H_RAW: {
		const char *end = raw_end[h->raw];
		if (tolower(c) == end[h->rawmatch]) {
			if (!end[++h->rawmatch]) {
				h->raw = 0;
				h->tag[0] = '\0';
				h->state = H_ATTR;
				h->quote = 0;
			}
		} else {
			h->rawmatch = tolower(c) == '<' ? 1 : 0;
		}
		return;
	}
	}
}

void html_feed(struct html *h, const char *p, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++)
		h_char(h, (unsigned char)p[i], out);
}

void html_finish(struct html *h, struct buf *out)
{
	if (h->state == H_ENT) {
		h_text(h, '&', out);
		for (size_t i = 0; i < h->entlen; i++)
			h_text(h, (unsigned char)h->ent[i], out);
	} else if (h->state == H_LT) {
		h_text(h, '<', out);
	}
	h->state = H_TEXT;
	h_newline(h, out);
}

/* ==== roff ==== */

/* Named glyphs: \(xx and \[name]. */
static const struct { const char *name; const char *s; } glyphs[] = {
	{ "em", "\xe2\x80\x94" }, { "en", "\xe2\x80\x93" }, { "hy", "-" },
	{ "bu", "\xe2\x80\xa2" }, { "aq", "'" }, { "dq", "\"" },
	{ "lq", "\xe2\x80\x9c" }, { "rq", "\xe2\x80\x9d" },
	{ "oq", "\xe2\x80\x98" }, { "cq", "\xe2\x80\x99" },
	{ "co", "\xc2\xa9" }, { "rg", "\xc2\xae" }, { "tm", "\xe2\x84\xa2" },
	{ "mu", "\xc3\x97" }, { "->", "\xe2\x86\x92" }, { "<-", "\xe2\x86\x90" },
	{ "ga", "`" }, { "ha", "^" }, { "ti", "~" }, { "ba", "|" }, { "bv", "|" },
	{ "rs", "\\" }, { "sl", "/" }, { "lB", "[" }, { "rB", "]" },
	{ "lC", "{" }, { "rC", "}" }, { "Do", "$" }, { "at", "@" }, { "sh", "#" },
	{ "Fo", "\xc2\xab" }, { "Fc", "\xc2\xbb" }, { "de", "\xc2\xb0" },
	{ "+-", "\xc2\xb1" }, { ">=", "\xe2\x89\xa5" }, { "<=", "\xe2\x89\xa4" },
	{ "!=", "\xe2\x89\xa0" }, { "pl", "+" }, { "mi", "-" }, { "eq", "=" },
	{ "fm", "'" }, { "aa", "'" }, { "dg", "\xe2\x80\xa0" }, { "ss", "\xc3\x9f" },
	{ "a:", "\xc3\xa4" }, { "o:", "\xc3\xb6" }, { "u:", "\xc3\xbc" },
	{ "e'", "\xc3\xa9" }, { "R", "\xc2\xae" }, { "Tm", "\xe2\x84\xa2" },
	{ "C+", "C++" }, { "Aq", "'" },
};

static void glyph(const char *name, struct buf *out)
{
	if (name[0] == 'u' && strlen(name) >= 5 && strspn(name + 1, "0123456789ABCDEFabcdef") == strlen(name + 1)) {
		put_utf8(out, strtoul(name + 1, NULL, 16));
		return;
	}
	for (size_t i = 0; i < sizeof(glyphs) / sizeof(glyphs[0]); i++)
		if (!strcmp(name, glyphs[i].name)) {
			buf_appends(out, glyphs[i].s);
			return;
		}
}

/*
 * Reads an escape's name at p (after \( \* \f \n and so on): "(xx", "[..]"
 * or one character, into name; returns past it.  A name cut short by the
 * end of the line is empty.
 */
static const char *esc_name(const char *p, const char *end, char *name, size_t size)
{
	size_t n = 0;

	name[0] = '\0';
	if (p >= end)
		return p;
	if (*p == '(') {
		if (end - p < 3)
			return end;
		name[0] = p[1];
		name[1] = p[2];
		name[2] = '\0';
		return p + 3;
	}
	if (*p == '[') {
		const char *q = memchr(p, ']', (size_t)(end - p));
		if (!q)
			return p + 1;          /* broken: keep what follows */
		for (p++; p < q; p++)
			if (n + 1 < size)
				name[n++] = *p;
		name[n] = '\0';
		return q + 1;
	}
	name[0] = *p;
	name[1] = '\0';
	return p + 1;
}

/* Skips a delimited argument ('...') at p. */
static const char *esc_delimited(const char *p, const char *end)
{
	const char *q;

	if (p >= end)
		return p;
	q = memchr(p + 1, *p, (size_t)(end - p - 1));
	return q ? q + 1 : end;
}

/* Appends the text of s[0..n) with its escapes rendered. */
static void roff_text(const char *s, size_t n, struct buf *out)
{
	const char *p = s, *end = s + n;
	char name[32];

	while (p < end) {
		const char *bs = memchr(p, '\\', (size_t)(end - p));
		if (!bs) {
			buf_append(out, p, (size_t)(end - p));
			return;
		}
		buf_append(out, p, (size_t)(bs - p));
		p = bs + 1;
		if (p >= end)
			return;                /* continuation, or a lone \ */
		switch (*p++) {
		case '"': case '#':
			return;                /* comment */
		case '-': buf_putc(out, '-'); break;
		case 'e': case 'E': case '\\': buf_putc(out, '\\'); break;
		case ' ': case '~': case '0': buf_putc(out, ' '); break;
		case 't': buf_putc(out, '\t'); break;
		case '\'': buf_putc(out, '\''); break;
		case '`': buf_putc(out, '`'); break;
		case '.': buf_putc(out, '.'); break;
		case '(': case '[':
			p = esc_name(p - 1, end, name, sizeof(name));
			glyph(name, out);
			break;
		case '*':
			p = esc_name(p, end, name, sizeof(name));
			glyph(name, out);  /* strings: a few well known */
			break;
		case 'f': case 'F': case 'n': case 'g': case 'k': case 'm': case 'M':
		case 'V': case 'Y':
			if (p < end && *p == '+')
				p++;
			p = esc_name(p, end, name, sizeof(name));
			break;
		case 's':
			if (p < end && (*p == '+' || *p == '-'))
				p++;
			if (p < end && (*p == '(' || *p == '['))
				p = esc_name(p, end, name, sizeof(name));
			else
				while (p < end && isdigit((unsigned char)*p))
					p++;
			break;
		case 'h': case 'v': case 'w': case 'l': case 'L': case 'o': case 'X':
		case 'D': case 'Z': case 'b': case 'x': case 'N': case 'R': case 'A':
		case 'B': case 'C':
			p = esc_delimited(p, end);
			break;
		case 'c': case '&': case '|': case '^': case '/': case ',': case ':':
		case ')': case '%': case 'z': case 'u': case 'd': case 'p': case 'a':
		case '{': case '}': case 'r':
			break;
		case '$':
			if (p < end)
				p++;
			break;
		default:
			buf_putc(out, p[-1]);
		}
	}
}

/* Splits a request's arguments at s[0..n): spaces separate, "..." quotes
 * ("" is a quote); up to max, each NUL-terminated in store. */
static int roff_args(const char *s, size_t n, char *store, size_t size,
		     char **argv, int max)
{
	const char *p = s, *end = s + n;
	size_t o = 0;
	int argc = 0;

	while (argc < max) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end || (p + 1 < end && p[0] == '\\' && p[1] == '"'))
			break;
		argv[argc++] = store + o;
		if (*p == '"') {
			for (p++; p < end; p++) {
				if (*p == '"') {
					if (p + 1 < end && p[1] == '"') {
						p++;
					} else {
						p++;
						break;
					}
				}
				if (o + 1 < size)
					store[o++] = *p;
			}
		} else {
			for (; p < end && *p != ' ' && *p != '\t'; p++)
				if (o + 1 < size)
					store[o++] = *p;
		}
		store[o] = '\0';
		if (o + 1 < size)
			o++;
	}
	return argc;
}

/* Output is filled as man(1) fills it: words joined into lines of at
 * most about ROFF_FILL columns (r->col is the current one), except in
 * no-fill mode (.nf, .EX, .Vb, .Bd -literal) where lines stay. */
#define ROFF_FILL 78

static void r_newline(struct roff *r, struct buf *out)
{
	if (r->col)
		buf_putc(out, '\n');
	r->col = 0;
}

static void r_blank(struct roff *r, struct buf *out)
{
	r_newline(r, out);
	if (!r->blank)
		buf_putc(out, '\n');
	r->blank = 1;
}

/* Rendered text t[0..n) into the output, filled unless nofill. */
static void r_emit(struct roff *r, const char *t, size_t n, struct buf *out)
{
	const char *p = t, *end = t + n;

	if (r->nofill) {
		if (!n)
			return;
		r_newline(r, out);
		buf_append(out, t, n);
		buf_putc(out, '\n');
		r->blank = 0;
		return;
	}
	while (p < end) {
		const char *w;
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (w = p; p < end && *p != ' ' && *p != '\t'; p++)
			;
		if (p == w)
			break;
		if (r->col && r->col + 1 + (size_t)(p - w) > ROFF_FILL) {
			buf_putc(out, '\n');
			r->col = 0;
		} else if (r->col) {
			buf_putc(out, ' ');
			r->col++;
		}
		buf_append(out, w, (size_t)(p - w));
		r->col += (size_t)(p - w);
		r->blank = 0;
	}
}

/* One line of roff text (escapes not yet rendered), as a heading when
 * one is pending. */
static void r_line(struct roff *r, const char *s, size_t n, struct buf *out)
{
	struct buf t;

	buf_init(&t, 0);
	roff_text(s, n, &t);
	if (r->heading) {
		r_blank(r, out);
		for (int i = 0; i < r->heading; i++)
			buf_putc(out, '#');
		buf_putc(out, ' ');
		buf_append(out, t.ptr, t.len);
		buf_appends(out, "\n\n");
		r->heading = 0;
		r->blank = 1;
	} else {
		r_emit(r, t.ptr, t.len, out);
		if (r->tag && t.len) {
			r_newline(r, out);
			r->tag = 0;
		}
	}
	buf_release(&t);
}

/* The arguments joined by sep, rendered, as one line. */
static void r_args(struct roff *r, char **argv, int argc, const char *sep,
		   int alternate, struct buf *out)
{
	struct buf t;

	(void)alternate;
	buf_init(&t, 0);
	for (int i = 0; i < argc; i++) {
		if (i)
			buf_appends(&t, sep);
		buf_appends(&t, argv[i]);
	}
	if (t.len)
		r_line(r, t.ptr, t.len, out);
	buf_release(&t);
}

static const char *const ignored_requests[] = {
	"br", "ne", "in", "ft", "fi", "nf", "ad", "na", "hy", "nh", "ll", "ti",
	"RS", "RE", "PD", "nr", "ds", "rm", "rn", "als", "tr", "cc", "ec", "eo",
	"ev", "ps", "vs", "ta", "cs", "ss", "ns", "rs", "mk", "rt", "lf", "so",
	"mso", "do", "tm", "ab", "warn", "pm", "ce", "ul", "cu", "bp", "ch",
	"wh", "it", "em", "lt", "tl", "nm", "nn", "mc", "pc", "pl", "po", "hw",
	"hc", "hla", "hlm", "hym", "lg", "kern", "fam", "fp", "ftr", "chop",
	"char", "EX", "EE", "UE", "ME", "YS", "UC", "AT", "DT", "Os", "Dd",
	"Bl", "El", "Bd", "Ed", "Bk", "Ek", "Ns", "Sm", "Vb", "Ve", "IX", "ig",
	"fl", "cflags", "defcolor", "ie", "el", "if", "OP", "TQ", "HP", "LP",
	"PP", "P", "Pp", "Lp", "sp", "TP", "IP", "TH", "SH", "SS", "Sh", "Ss",
	"Dt", "B", "I", "SM", "SB", "BR", "BI", "IB", "IR", "RB", "RI", "UR",
	"MT", "SY", "Nm", "Nd", "It", "Xr", "INDENT", "UNINDENT", "MTO", "Tg",
	"DS", "DE", "TS", "TE", "T&", "R", "ID", "DS", "LD", "UN", NULL
};

/* mdoc macros that may appear among another's arguments. */
static const char *const mdoc_callable[] = {
	"Fl", "Ar", "Op", "Oo", "Oc", "Pa", "Em", "Sy", "Li", "Cm", "Va", "Ev",
	"Dv", "Er", "Ic", "Ql", "Dq", "Do", "Dc", "Sq", "So", "Sc", "Pq", "Po",
	"Pc", "Qq", "Qo", "Qc", "Bq", "Bo", "Bc", "Brq", "Bro", "Brc", "Aq",
	"Ao", "Ac", "Xr", "Nm", "Fn", "Fa", "Ft", "Fo", "Fc", "Vt", "Tn", "No",
	"Ns", "Ms", "Sx", "Lk", "Mt", "Ad", "An", "Lb", "Cd", "At", "Bx", "Bsx",
	"Fx", "Nx", "Ox", "Ux", "Dx", "Ta", "Eo", "Ec", "St", "Xo", "Xc", "Ev",
	"In", "Fd", "Ot", "Pf", "Ap", "Dl", "D1", "Rs", "Re", "%A", "%T", "%B",
	"%D", "%J", "%N", "%O", "%P", "%Q", "%R", "%U", "%V", "Hf", "Ud", "Rv",
	"Ex", "Qo", "Em", NULL
};

/* An mdoc line: macro names dropped, Fl's word prefixed with '-', Xr's
 * two as name(section), punctuation attached. */
static void r_mdoc(struct roff *r, const char *mac, char **argv, int argc,
		   struct buf *out)
{
	struct buf t;
	int dash = 0;

	buf_init(&t, 0);
	if (!strcmp(mac, "Fl"))
		dash = 1;
	if (!strcmp(mac, "Xr") && argc >= 2) {
		buf_printf(&t, "%s(%s)", argv[0], argv[1]);
		argv += 2;
		argc -= 2;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (in_list(a, mdoc_callable)) {
			if (!strcmp(a, "Fl"))
				dash = 1;
			if (!strcmp(a, "Fl") && (i + 1 == argc || in_list(argv[i + 1], mdoc_callable))) {
				buf_appends(&t, t.len ? " -" : "-");
				dash = 0;
			}
			continue;
		}
		if (strlen(a) == 1 && strchr(".,;:)]!?", a[0])) {
			buf_appends(&t, a);
			continue;
		}
		if (t.len && t.ptr[t.len - 1] != '-' && t.ptr[t.len - 1] != '(')
			buf_putc(&t, ' ');
		if (t.len && t.ptr[t.len - 1] == '-' && !dash)
			buf_putc(&t, ' ');
		if (dash)
			buf_putc(&t, '-');
		dash = 0;
		buf_appends(&t, a);
	}
	if (t.len)
		r_line(r, t.ptr, t.len, out);
	buf_release(&t);
}

static int defined(const struct roff *r, const char *name)
{
	for (int i = 0; i < r->ndefined; i++)
		if (!strcmp(r->defined[i], name))
			return 1;
	return 0;
}

/* Counts \{ minus \} in s[0..n). */
static int brace_delta(const char *s, size_t n)
{
	int d = 0;

	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '\\') {
			if (s[i + 1] == '{')
				d++;
			else if (s[i + 1] == '}')
				d--;
			i++;
		}
	return d;
}

static void roff_line(struct roff *r, const char *s, size_t n, struct buf *out);

/* Ends a skipped block cut short: its lines are rendered as text after
 * all, so that no word is lost to a missing "..". */
static void roff_replay(struct roff *r, struct buf *out)
{
	struct buf held = r->held;
	const char *p = held.ptr, *end = held.ptr + held.len;

	r->unterminated++;
	r->skip = 0;
	r->depth = 0;
	buf_init(&r->held, 0);
	r->replay = 1;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		roff_line(r, p, len, out);
		p += len + 1;
	}
	r->replay = 0;
	buf_release(&held);
}

static void roff_hold(struct roff *r, const char *s, size_t n, struct buf *out)
{
	buf_append(&r->held, s, n);
	buf_putc(&r->held, '\n');
	if (r->held.len > ROFF_HELD_MAX)
		roff_replay(r, out);
}

static void roff_line(struct roff *r, const char *s, size_t n, struct buf *out)
{
	char mac[16], store[4096], *argv[16];
	size_t i = 1, m = 0;
	int argc;

	r->lines++;
	if (n && s[n - 1] == '\r')
		n--;
	if (r->skip) {
		if (r->skip == 1 && n >= 2 && s[0] == '.' && s[1] == '.') {
			r->skip = 0;
			buf_clear(&r->held);
			return;
		}
		if (r->skip == 2) {
			r->depth += brace_delta(s, n);
			if (r->depth <= 0) {
				r->skip = 0;
				buf_clear(&r->held);
				return;
			}
		}
		roff_hold(r, s, n, out);
		return;
	}
	if (!n || (s[0] != '.' && s[0] != '\'')) {
		if (!n || (n >= 2 && s[0] == '\\' && s[1] == '"'))
			return;
		if (r->tbl == 1) {             /* tbl options and format */
			if (s[n - 1] == '.')
				r->tbl = 2;
			return;
		}
		if (r->tbl == 2) {             /* a row: cells, T{ T} blocks */
			struct buf t;
			int keep = r->nofill;
			buf_init(&t, 0);
			for (size_t k = 0; k < n; k++) {
				if ((s[k] == 'T' && k + 1 < n && (s[k + 1] == '{' || s[k + 1] == '}')) &&
				    (k == 0 || s[k - 1] == '\t')) {
					k++;
					continue;
				}
				buf_putc(&t, s[k] == '\t' ? ' ' : s[k]);
			}
			r->nofill = 1;
			r_line(r, t.ptr, t.len, out);
			r->nofill = keep;
			buf_release(&t);
			return;
		}
		r_line(r, s, n, out);
		return;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	/* The name ends at a blank or an escape (".el\{" is "el"). */
	while (i < n && s[i] != ' ' && s[i] != '\t' && m + 1 < sizeof(mac)) {
		if (s[i] == '\\' && m)
			break;
		mac[m++] = s[i++];
	}
	mac[m] = '\0';
	if (!m || mac[0] == '\\')
		return;                        /* "." alone, or a comment */
	if (r->tbl == 1) {                     /* tbl options and format */
		if (n && s[n - 1] == '.')
			r->tbl = 2;
		return;
	}
	argc = roff_args(s + i, n - i, store, sizeof(store), argv, 16);

	if (!r->replay && (!strcmp(mac, "de") || !strcmp(mac, "de1") ||
			   !strcmp(mac, "am") || !strcmp(mac, "ig"))) {
		if (mac[0] != 'i' && argc && r->ndefined < 64) {
			snprintf(r->defined[r->ndefined++], sizeof(r->defined[0]), "%s", argv[0]);
		}
		r->skip = 1;
		buf_clear(&r->held);
		return;
	}
	if (!strcmp(mac, "if") || !strcmp(mac, "ie") || !strcmp(mac, "el")) {
		int d = brace_delta(s, n);
		if (d > 0 && !r->replay) {
			r->skip = 2;
			r->depth = d;
			buf_clear(&r->held);
		}
		return;
	}
	if (!strcmp(mac, "br")) {
		r_newline(r, out);
		return;
	}
	if (!strcmp(mac, "TS")) {          /* a tbl table: rows as lines */
		r_blank(r, out);
		r->tbl = 1;
		return;
	}
	if (!strcmp(mac, "TE")) {
		r->tbl = 0;
		r_blank(r, out);
		return;
	}
	if (!strcmp(mac, "nf") || !strcmp(mac, "EX") || !strcmp(mac, "Vb") ||
	    (!strcmp(mac, "Bd") && argc && (!strcmp(argv[0], "-literal") ||
					     !strcmp(argv[0], "-unfilled")))) {
		r_newline(r, out);
		r->nofill = 1;
		return;
	}
	if (!strcmp(mac, "fi") || !strcmp(mac, "EE") || !strcmp(mac, "Ve") ||
	    !strcmp(mac, "Ed")) {
		r_newline(r, out);
		r->nofill = 0;
		return;
	}
	if (!strcmp(mac, "TH") || !strcmp(mac, "Dt")) {
		struct buf t;
		buf_init(&t, 0);
		if (argc >= 2)
			buf_printf(&t, "%s(%s)", argv[0], argv[1]);
		else if (argc)
			buf_appends(&t, argv[0]);
		r->heading = 1;
		r_line(r, t.ptr, t.len, out);
		r->heading = 0;
		buf_release(&t);
		return;
	}
	if (!strcmp(mac, "SH") || !strcmp(mac, "Sh") || !strcmp(mac, "SS") ||
	    !strcmp(mac, "Ss")) {
		r->heading = mac[1] == 'H' || mac[1] == 'h' ? 2 : 3;
		if (argc)
			r_args(r, argv, argc, " ", 0, out);
		return;
	}
	if (!strcmp(mac, "PP") || !strcmp(mac, "LP") || !strcmp(mac, "P") ||
	    !strcmp(mac, "Pp") || !strcmp(mac, "Lp") || !strcmp(mac, "sp") ||
	    !strcmp(mac, "TP") || !strcmp(mac, "TQ") || !strcmp(mac, "HP") ||
	    !strcmp(mac, "Sp")) {
		r_blank(r, out);
		r->tag = mac[0] == 'T';
		return;
	}
	if (!strcmp(mac, "IP") || !strcmp(mac, "It")) {
		r_blank(r, out);
		if (mac[0] == 'I' && mac[1] == 't')
			r_mdoc(r, mac, argv, argc, out);
		else if (argc)
			r_args(r, argv, 1, " ", 0, out);
		r_newline(r, out);
		return;
	}
	if (!strcmp(mac, "B") || !strcmp(mac, "I") || !strcmp(mac, "SM") ||
	    !strcmp(mac, "SB") || !strcmp(mac, "UR") || !strcmp(mac, "MT") ||
	    !strcmp(mac, "SY")) {
		r_args(r, argv, argc, " ", 0, out);
		return;
	}
	if (m == 2 && strchr("BIR", mac[0]) && strchr("BIR", mac[1]) && mac[0] != mac[1]) {
		r_args(r, argv, argc, "", 1, out);
		return;
	}
	if (!strcmp(mac, "OP")) {
		struct buf t;
		buf_init(&t, 0);
		buf_appends(&t, "[");
		for (int k = 0; k < argc; k++)
			buf_printf(&t, "%s%s", k ? " " : "", argv[k]);
		buf_appends(&t, "]");
		r_line(r, t.ptr, t.len, out);
		buf_release(&t);
		return;
	}
	if (in_list(mac, mdoc_callable) || !strcmp(mac, "Nm") || !strcmp(mac, "Nd") ||
	    !strcmp(mac, "Xr")) {
		r_mdoc(r, mac, argv, argc, out);
		return;
	}
	if (in_list(mac, ignored_requests) || defined(r, mac))
		return;
	/* Not a macro's name ("...", ".gitignore", "./run"): a text line
	 * whose author forgot \&.  roff would drop it; its words are kept. */
	if (!isupper((unsigned char)mac[0]) || m > 4) {
		r_line(r, s, n, out);
		return;
	}
	/* Unknown: its words are probably text; keep them, and say so. */
	if (!r->unknown++)
		snprintf(r->first_unknown, sizeof(r->first_unknown), "%s", mac);
	r_args(r, argv, argc, " ", 0, out);
}

void roff_init(struct roff *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->line, 0);
	buf_init(&r->held, 0);
	r->blank = 1;
}

void roff_feed(struct roff *r, const char *p, size_t n, struct buf *out)
{
	const char *end = p + n;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		buf_append(&r->line, p, len);
		p += len;
		if (nl) {
			p++;
			/* A line ending in \ goes on with the next one. */
			if (r->line.len && r->line.ptr[r->line.len - 1] == '\\' &&
			    (r->line.len < 2 || r->line.ptr[r->line.len - 2] != '\\') &&
			    r->line.len < ROFF_LINE_MAX) {
				r->line.len--;
				r->line.ptr[r->line.len] = '\0';
				continue;
			}
		} else if (r->line.len < ROFF_LINE_MAX) {
			break;
		}
		roff_line(r, r->line.ptr, r->line.len, out);
		buf_clear(&r->line);
	}
}

void roff_finish(struct roff *r, struct buf *out)
{
	if (r->line.len)
		roff_line(r, r->line.ptr, r->line.len, out);
	if (r->skip && r->held.len)
		roff_replay(r, out);
	else if (r->skip)
		r->unterminated++;
	buf_release(&r->line);
	buf_release(&r->held);
	r_newline(r, out);
}

/* ==== the reader ==== */

struct extract {
	int fd;
	char *path;
	size_t max;
	int started, gz, done, zend;
	enum extract_kind kind;
	z_stream z;
	unsigned char zin[PIECE];
	char piece[PIECE];
	struct buf out;               /* converted text not yet read */
	size_t out_off;
	size_t text;                  /* bytes of text before conversion */
	struct html html;
	struct roff roff;
	pid_t pid;
	int pfd;
	int64_t deadline;
	long secs;
	const char *klass;
	char why[200];
	char note[200];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t fail(struct extract *x, const char *klass, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static ssize_t fail(struct extract *x, const char *klass, const char *fmt, ...)
{
	va_list ap;

	x->klass = klass;
	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	return -1;
}

struct extract *extract_open(int fd, const char *path, size_t max)
{
	struct extract *x = xcalloc(1, sizeof(*x));

	x->fd = fd;
	x->path = xstrdup(path);
	x->max = max;
	x->pid = -1;
	x->pfd = -1;
	buf_init(&x->out, 0);
	return x;
}

static ssize_t read_raw(struct extract *x, void *p, size_t n)
{
	ssize_t r;

	while ((r = read(x->fd, p, n)) < 0 && errno == EINTR)
		;
	return r;
}

/* Inflated bytes into p; 0 at the end of the last gzip member. */
static ssize_t read_gz(struct extract *x, char *p, size_t n)
{
	for (;;) {
		int zr;
		if (x->zend)
			return 0;
		if (x->z.avail_in == 0) {
			ssize_t r = read_raw(x, x->zin, sizeof(x->zin));
			if (r < 0)
				return -1;
			if (r == 0)
				return fail(x, "corrupt", "is truncated gzip data");
			x->z.next_in = x->zin;
			x->z.avail_in = (uInt)r;
		}
		x->z.next_out = (Bytef *)p;
		x->z.avail_out = (uInt)n;
		zr = inflate(&x->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END) {
			size_t got = n - x->z.avail_out;
			/* Another member may follow; anything else ends it. */
			if (x->z.avail_in == 0) {
				ssize_t r = read_raw(x, x->zin, sizeof(x->zin));
				if (r < 0)
					return -1;
				x->z.next_in = x->zin;
				x->z.avail_in = (uInt)r;
			}
			if (extract_is_gzip(x->z.next_in, x->z.avail_in))
				inflateReset(&x->z);
			else
				x->zend = 1;
			if (got)
				return (ssize_t)got;
			continue;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			return fail(x, "corrupt", "is corrupt gzip data (%s)",
				    x->z.msg ? x->z.msg : "inflate failed");
		if (n - x->z.avail_out)
			return (ssize_t)(n - x->z.avail_out);
	}
}

/* Whether pdftotext is a program on PATH. */
static int have_program(const char *name)
{
	const char *path = getenv("PATH");
	char full[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *c = strchr(path, ':');
		size_t len = c ? (size_t)(c - path) : strlen(path);
		snprintf(full, sizeof(full), "%.*s/%s", (int)len, len ? path : ".", name);
		if (access(full, X_OK) == 0)
			return 1;
		path += len + (c != NULL);
	}
	return 0;
}

static int pdf_start(struct extract *x)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "pdftotext", "-q", "-enc", "UTF-8", "--", x->path, "-", NULL };
	const char *t = getenv("AICHAT_PDF_TIMEOUT");
	int p[2], rc;
	long secs = t && atol(t) > 0 ? atol(t) : EXTRACT_PDF_TIMEOUT;

	if (!have_program("pdftotext"))
		return (int)fail(x, "no pdftotext",
				 "is a PDF and pdftotext is not installed (Debian: poppler-utils)");
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&x->pid, "pdftotext", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		x->pid = -1;
		return (int)fail(x, "pdftotext failed", "could not run pdftotext: %s",
				 strerror(rc));
	}
	x->pfd = p[0];
	x->secs = secs;
	x->deadline = now_ms() + secs * 1000;
	return 0;
}

static void pdf_stop(struct extract *x)
{
	if (x->pfd >= 0)
		close(x->pfd);
	x->pfd = -1;
	if (x->pid > 0) {
		kill(x->pid, SIGKILL);
		while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	x->pid = -1;
}

static ssize_t read_pdf(struct extract *x, char *p, size_t n)
{
	for (;;) {
		struct pollfd pf = { .fd = x->pfd, .events = POLLIN };
		int64_t left = x->deadline - now_ms();
		int pr, st;
		ssize_t r;

		if (left <= 0) {
			pdf_stop(x);
			return fail(x, "pdftotext failed",
				    "took pdftotext more than %ld s (AICHAT_PDF_TIMEOUT)", x->secs);
		}
		pr = poll(&pf, 1, left > 60000 ? 60000 : (int)left);
		if (pr < 0 && errno != EINTR)
			return -1;
		if (pr <= 0)
			continue;
		while ((r = read(x->pfd, p, n)) < 0 && errno == EINTR)
			;
		if (r != 0)
			return r;
		close(x->pfd);
		x->pfd = -1;
		while (waitpid(x->pid, &st, 0) < 0 && errno == EINTR)
			;
		x->pid = -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return fail(x, "pdftotext failed", "could not be read by pdftotext (%s %d)",
				    WIFEXITED(st) ? "exit status" : "signal",
				    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return 0;
	}
}

/* The next piece of text before conversion. */
static ssize_t read_source(struct extract *x, char *p, size_t n)
{
	ssize_t r;

	if (x->kind == EXTRACT_PDF && x->started)
		r = read_pdf(x, p, n);
	else if (x->gz)
		r = read_gz(x, p, n);
	else
		r = read_raw(x, p, n);
	if (r > 0) {
		x->text += (size_t)r;
		if (x->text > x->max) {
			if (x->gz)
				return fail(x, "too large", "decompresses to more than %zu bytes (--max-file-size)",
					    x->max);
			return fail(x, "too large", "has more than %zu bytes of text (--max-file-size)",
				    x->max);
		}
	}
	return r;
}

/* First read: gzip or not, then the kind from the name and first bytes. */
static ssize_t start(struct extract *x)
{
	unsigned char magic[2];
	ssize_t r, head;

	x->started = 1;
	r = pread(x->fd, magic, 2, 0);
	if (r < 0)
		return -1;
	if (extract_is_gzip(magic, (size_t)r)) {
		x->gz = 1;
		if (inflateInit2(&x->z, 16 + MAX_WBITS) != Z_OK)
			return fail(x, "corrupt", "cannot be decompressed");
	}
	x->started = 0;
	head = read_source(x, x->piece, 4096);
	if (head < 0)
		return -1;
	x->kind = extract_kind_of(x->path, x->piece, (size_t)head);
	x->started = 1;
	if (x->kind == EXTRACT_PDF) {
		if (x->gz)
			return fail(x, "unsupported", "is a compressed PDF (not read)");
		if (pdf_start(x) < 0)
			return -1;
		x->text = 0;
		return 0;
	}
	if (x->kind == EXTRACT_HTML)
		html_init(&x->html);
	else if (x->kind == EXTRACT_ROFF)
		roff_init(&x->roff);
	return head;
}

static void convert(struct extract *x, const char *p, size_t n)
{
	if (x->kind == EXTRACT_HTML)
		html_feed(&x->html, p, n, &x->out);
	else if (x->kind == EXTRACT_ROFF)
		roff_feed(&x->roff, p, n, &x->out);
	else
		buf_append(&x->out, p, n);
}

static void finish(struct extract *x)
{
	if (x->kind == EXTRACT_HTML) {
		html_finish(&x->html, &x->out);
	} else if (x->kind == EXTRACT_ROFF) {
		roff_finish(&x->roff, &x->out);
		if (x->roff.unknown && x->roff.unterminated)
			snprintf(x->note, sizeof(x->note),
				 "has %ld unknown roff macros (first .%s) and %ld unterminated blocks, kept as text",
				 x->roff.unknown, x->roff.first_unknown, x->roff.unterminated);
		else if (x->roff.unknown)
			snprintf(x->note, sizeof(x->note),
				 "has %ld unknown roff macro%s (first .%s), kept as text",
				 x->roff.unknown, x->roff.unknown == 1 ? "" : "s",
				 x->roff.first_unknown);
		else if (x->roff.unterminated)
			snprintf(x->note, sizeof(x->note),
				 "has %ld unterminated roff block%s, kept as text",
				 x->roff.unterminated, x->roff.unterminated == 1 ? "" : "s");
	}
}

ssize_t extract_read(void *ctx, char *p, size_t n)
{
	struct extract *x = ctx;

	if (x->why[0])
		return -1;
	if (!x->started) {
		ssize_t head = start(x);
		if (head < 0)
			return -1;
		/* Plain text, not compressed: no stage in between. */
		if (x->kind == EXTRACT_TEXT && !x->gz && n >= (size_t)head) {
			memcpy(p, x->piece, (size_t)head);
			if (head > 0)
				return head;
			x->done = 1;
			return 0;
		}
		convert(x, x->piece, (size_t)head);
		if (head == 0 && x->kind != EXTRACT_PDF) {
			finish(x);
			x->done = 1;
		}
	}
	if (x->kind == EXTRACT_TEXT && !x->gz && x->out.len == x->out_off) {
		ssize_t r = x->done ? 0 : read_source(x, p, n);
		if (r == 0)
			x->done = 1;
		return r;
	}
	while (x->out.len == x->out_off && !x->done) {
		ssize_t r = read_source(x, x->piece, sizeof(x->piece));
		buf_clear(&x->out);
		x->out_off = 0;
		if (r < 0)
			return -1;
		if (r == 0) {
			finish(x);
			x->done = 1;
			break;
		}
		convert(x, x->piece, (size_t)r);
	}
	size_t k = x->out.len - x->out_off;
	if (k > n)
		k = n;
	memcpy(p, x->out.ptr + x->out_off, k);
	x->out_off += k;
	return (ssize_t)k;
}

const char *extract_why(const struct extract *x, const char **klass)
{
	if (klass)
		*klass = x->klass;
	return x->why[0] ? x->why : NULL;
}

const char *extract_note(const struct extract *x)
{
	return x->note;
}

enum extract_kind extract_kind(const struct extract *x)
{
	return x->kind;
}

void extract_close(struct extract *x)
{
	if (!x)
		return;
	pdf_stop(x);
	if (x->gz)
		inflateEnd(&x->z);
	if (x->kind == EXTRACT_ROFF && x->started && !x->done) {
		buf_release(&x->roff.line);
		buf_release(&x->roff.held);
	}
	buf_release(&x->out);
	free(x->path);
	free(x);
}
