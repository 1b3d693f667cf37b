/*
 * test_trust.c - unit tests for the trust boundary (src/util/trust.c).
 *
 * Table-driven: each case is input bytes (with a length, so NUL and
 * malformed bytes can be in them), and what clean, escape and utf8 must
 * give with the secrets "sk-1234" (a short local key) and
 * "longsecretvalue-0123456789" registered.
 */
#include "aichat/trust.h"
#include "aichat/xalloc.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

struct tcase {
	const char *name;
	const char *in;
	size_t len;          /* 0: strlen(in) */
	const char *clean;   /* trust_clean into a large buffer */
	const char *escape;  /* trust_escape */
	const char *utf8;    /* trust_utf8 */
};

#define S(x) x, sizeof(x) - 1

static const struct tcase cases[] = {
	{ "plain text passes", S("model overloaded"), "model overloaded",
	  "model\\x20overloaded", "model overloaded" },
	{ "OSC title then BEL is dropped whole", S("\x1b]0;pwned\x07 oops"),
	  "oops", "\\x1b]0;pwned\\x07\\x20oops", "\x1b]0;pwned\x07 oops" },
	{ "OSC ended by ST", S("a\x1b]8;;http://x\x1b\\b"), "ab",
	  "a\\x1b]8;;http://x\\x1b\\\\b", "a\x1b]8;;http://x\x1b\\b" },
	{ "CSI colour", S("\x1b[31;1mred\x1b[0m"), "red",
	  "\\x1b[31;1mred\\x1b[0m", "\x1b[31;1mred\x1b[0m" },
	{ "C1 CSI (U+009B) and C1 control", S("x\xc2\x9b" "2Jy\xc2\x85z"), "xy z",
	  "x\\xc2\\x9b2Jy\\xc2\\x85z", "x\xc2\x9b" "2Jy\xc2\x85z" },
	{ "newlines and tabs fold to one space, trimmed", S("\n a\r\n\tb \n"), "a b",
	  "\\x0a\\x20a\\x0d\\x0a\\x09b\\x20\\x0a", "\n a\r\n\tb \n" },
	{ "the short configured key", S("bad key sk-1234."), "bad key [redacted].",
	  "bad\\x20key\\x20[redacted].", "bad key [redacted]." },
	{ "a long configured key and its cut-off beginning",
	  S("k=longsecretvalue-0123456789 then longsecr"),
	  "k=[redacted] then [redacted]",
	  "k=[redacted]\\x20then\\x20[redacted]", "k=[redacted] then [redacted]" },
	{ "an unknown key-shaped token", S("key sk-proj-abcdefgh123 used"),
	  "key [redacted] used", "key\\x20[redacted]\\x20used",
	  "key [redacted] used" },
	{ "not a key: sk- inside a word, or too short", S("task-management sk-abc"),
	  "task-management sk-abc", "task-management\\x20sk-abc",
	  "task-management sk-abc" },
	{ "a bearer token", S("Authorization: Bearer abcdefghijkl.mn"),
	  "Authorization: Bearer [redacted]",
	  "Authorization:\\x20Bearer\\x20[redacted]",
	  "Authorization: Bearer [redacted]" },
	{ "malformed UTF-8 becomes U+FFFD", S("a\xff\xc3(b\xed\xa0\x80"),
	  "a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	  "a\\xff\\xc3(b\\xed\\xa0\\x80",
	  "a\xef\xbf\xbd\xef\xbf\xbd(b\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
	{ "valid UTF-8 stays", S("caf\xc3\xa9 \xf0\x9f\x98\x80"),
	  "caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9\\x20\xf0\x9f\x98\x80",
	  "caf\xc3\xa9 \xf0\x9f\x98\x80" },
	{ "a NUL", "a\0b", 3, "a b", "a\\x00b", "a\xef\xbf\xbd" "b" },
	{ "backslash in a log field", S("a\\x0a"), "a\\x0a", "a\\\\x0a", "a\\x0a" },
	{ "an ESC at the very end", S("end\x1b"), "end", "end\\x1b", "end\x1b" },
};

static void test_cases(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *c = &cases[i];
		char dst[256];
		struct buf b;

		trust_clean(dst, sizeof(dst), c->in, c->len);
		is_str(dst, c->clean, "clean: %s", c->name);
		buf_init(&b, 0);
		trust_escape(&b, c->in, c->len);
		is_str(b.ptr, c->escape, "escape: %s", c->name);
		buf_clear(&b);
		trust_utf8(&b, c->in, c->len);
		is_str(b.ptr, c->utf8, "utf8: %s", c->name);
		ok(trust_utf8_invalid(b.ptr, b.len) < 0, "utf8 output is valid: %s",
		   c->name);
		buf_release(&b);
	}
}

/* A full dst cuts at a character boundary, never inside U+00E9 or the
 * redaction mark, and always ends with a NUL. */
static void test_cut(void)
{
	char dst[6];

	is_int((int)trust_clean(dst, sizeof(dst), "abcd\xc3\xa9", 6), 4,
	       "clean: a character that does not fit is left out");
	is_str(dst, "abcd", "clean: cut before the 2-byte character");
	trust_clean(dst, sizeof(dst), "x sk-1234", 9);
	is_str(dst, "x", "clean: a redaction that does not fit is left out, not cut");
	is_int((int)trust_clean(dst, 0, "abc", 3), 0, "clean: cap 0 writes nothing");
	{
		char *d = trust_clean_dup("\xff\xff\xff", 3);
		is_str(d, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "clean_dup has room for U+FFFD");
		free(d);
	}
}

static void test_invalid(void)
{
	is_int((int)trust_utf8_invalid("abc", 3), -1, "valid ASCII");
	is_int((int)trust_utf8_invalid("ab\0c", 4), -1, "a NUL is valid UTF-8");
	is_int((int)trust_utf8_invalid("ab\xc3", 3), 2, "a sequence cut at the end");
	is_int((int)trust_utf8_invalid("\xc0\xaf", 2), 0, "an overlong form");
	is_int((int)trust_utf8_invalid("x\xed\xa0\x80", 4), 1, "a surrogate");
	is_int((int)trust_utf8_invalid("\xf4\x90\x80\x80", 4), 0, "past U+10FFFF");
	is_int((int)trust_utf8_invalid("\xf4\x8f\xbf\xbf", 4), -1, "U+10FFFF itself");
}

static void test_secrets(void)
{
	char dst[64];

	trust_clear_secrets();
	trust_clean(dst, sizeof(dst), "sk-1234", 7);
	is_str(dst, "sk-1234", "no secret registered: the short key is text");
	trust_add_secret("ab");
	trust_clean(dst, sizeof(dst), "abc", 3);
	is_str(dst, "abc", "a 2-character secret is not registered");
	trust_add_secret("abc");
	trust_add_secret("abc");
	trust_clean(dst, sizeof(dst), "xabcx", 5);
	is_str(dst, "x[redacted]x", "a 3-character secret is redacted");
	trust_add_secret(NULL);
	trust_clear_secrets();
}

/* The terminal filter: the same output whole, split at every point, and
 * one byte at a time. */
static void test_term(void)
{
	static const struct {
		const char *in;
		size_t len;
		const char *want;
	} t[] = {
		{ S("plain\ttext\nline two"), "plain\ttext\nline two" },
		{ S("a\x1b]0;pwned\x07" "b"), "ab" },
		{ S("a\x1b]52;c;Y2xpcA==\x1b\\b"), "ab" },
		{ S("\x1b[2J\x1b[1;31mred\x1b[0m"), "red" },
		{ S("x\xc2\x9b" "2Jy\xc2\x9d" "0;t\x07z"), "xyz" },
		{ S("caf\xc3\xa9 \xc2\xa0nbsp \xc2\x85"), "caf\xc3\xa9 \xc2\xa0nbsp " },
		{ S("cr\r\nbell\x07 del\x7f nul\0."), "cr\nbell del nul." },
		{ S("\x1b]0;never ended\nvisible"), "\nvisible" },
		{ S("\x1b" "creset"), "reset" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct trust_term tt = { 0 };
		struct buf b;
		int same = 1;

		buf_init(&b, 0);
		trust_term_feed(&tt, &b, t[i].in, t[i].len);
		is_str(b.ptr, t[i].want, "term %zu: whole", i);
		for (size_t cut = 1; cut < t[i].len; cut++) {
			memset(&tt, 0, sizeof(tt));
			buf_clear(&b);
			trust_term_feed(&tt, &b, t[i].in, cut);
			trust_term_feed(&tt, &b, t[i].in + cut, t[i].len - cut);
			same &= !strcmp(b.ptr, t[i].want);
		}
		memset(&tt, 0, sizeof(tt));
		buf_clear(&b);
		for (size_t k = 0; k < t[i].len; k++)
			trust_term_feed(&tt, &b, t[i].in + k, 1);
		same &= !strcmp(b.ptr, t[i].want);
		ok(same, "term %zu: the same at every split and byte by byte", i);
		buf_release(&b);
	}
}

int main(void)
{
	trust_add_secret("sk-1234");
	trust_add_secret("longsecretvalue-0123456789");
	test_cases();
	test_cut();
	test_invalid();
	test_secrets();
	test_term();
	return tap_done();
}
