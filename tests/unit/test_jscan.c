/*
 * test_jscan.c - unit tests for the strict JSON scanner (src/util/jscan.c)
 * and the same-dialect skim built on it for Anthropic events
 * (anthropic_skims(), src/provider/anthropic.c).
 *
 * Each input is copied to the end of a page followed by an unreadable
 * page, so a scan that reads one byte past its text crashes the test.
 * The skim must say yes to plain events and no (the full way, cJSON) to
 * whatever it cannot be sure cJSON reads the same; fuzz_decode checks
 * that both ways then read the same.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "aichat/jscan.h"
#include "aichat/provider.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *page;
static size_t psize;

/* s copied so that its last byte is the last readable one. */
static const char *fenced(const char *s, size_t n)
{
	if (!page) {
		psize = (size_t)sysconf(_SC_PAGESIZE);
		page = mmap(NULL, 3 * psize, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED || mprotect(page + 2 * psize, psize, PROT_NONE) < 0)
			abort();
	}
	if (n > 2 * psize)
		abort();
	memcpy(page + 2 * psize - n, s, n);
	return page + 2 * psize - n;
}

/* One value scanned over all of s: 0 when it is JSON jscan is sure of
 * and nothing but whitespace follows. */
static int value(const char *s)
{
	size_t n = strlen(s);
	struct jscan j = { fenced(s, n), NULL };

	j.end = j.p + n;
	if (jscan_value(&j, 0) < 0)
		return -1;
	jscan_ws(&j);
	return j.p == j.end ? 0 : -1;
}

static int skims(const char *s)
{
	size_t n = strlen(s);

	return anthropic_skims(fenced(s, n), n);
}

static void test_values(void)
{
	static const struct { const char *in; int rc; } cases[] = {
		{ "{\"a\":\"x\\\"y\\\\\"}", 0 },        /* escaped quote, backslash */
		{ "{\"a\":{\"b\":{\"c\":[1,{\"d\":[]}]}}}", 0 },
		{ "[1e5, -2.5E-3, 0.0e+0, 10]", 0 },
		{ "\"\\ud83d\\ude00\"", 0 },              /* a surrogate pair */
		{ " true ", 0 },
		{ "\"\\ud83d\"", -1 },                    /* a lone high surrogate */
		{ "\"\\ude00\"", -1 },                    /* a lone low surrogate */
		{ "\"a\\u0000b\"", -1 },                  /* cJSON would cut there */
		{ "\"a\tb\"", -1 },                       /* a raw control byte */
		{ "\"\\x\"", -1 },
		{ "01", -1 },
		{ "1.", -1 },
		{ "1e", -1 },
		{ "-", -1 },
		{ "+1", -1 },
		{ "1234567890123456789012345678901234567890123456789012345678901234", -1 },
		{ "{\"a\":1,}", -1 },
		{ "[1,]", -1 },
		{ "{\"a\" 1}", -1 },
		{ "{\"a\":1", -1 },                       /* cut short */
		{ "\"abc", -1 },
		{ "nul", -1 },
		{ "{\"a\":1}x", -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		is_int(value(cases[i].in), cases[i].rc, "value %s", cases[i].in);
}

static void test_depth(void)
{
	char deep[2 * JSCAN_DEPTH + 8];
	size_t n = 0;

	for (int i = 0; i < JSCAN_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < JSCAN_DEPTH; i++)
		deep[n++] = ']';
	deep[n] = '\0';
	is_int(value(deep), 0, "%d levels of nesting are read", JSCAN_DEPTH);
	memmove(deep + 1, deep, n + 1);
	deep[0] = '[';
	deep[n + 1] = ']';
	deep[n + 2] = '\0';
	is_int(value(deep), -1, "%d levels are not (cJSON reads them: the full way)",
	       JSCAN_DEPTH + 1);
}

static void test_decoding(void)
{
	const char *in = "\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\" ";
	struct jscan j = { fenced(in, strlen(in)), NULL };
	struct buf out;
	double d = 0;

	j.end = j.p + strlen(in);
	buf_init(&out, 0);
	is_int(jscan_string(&j, &out), 0, "a string with every kind of escape");
	is_str(out.ptr, "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80", "decoded as cJSON would");
	ok(*j.p == ' ', "the cursor stops after the closing quote");
	buf_release(&out);

	in = "-1.5e3";
	j.p = fenced(in, strlen(in));
	j.end = j.p + strlen(in);
	is_int(jscan_number(&j, &d), 0, "a number with an exponent");
	ok(d == -1500, "read as -1500 (got %g)", d);

	/* Integers are read without strtod(): the same doubles, to the bit. */
	static const char *const ints[] = {
		"0", "-0", "7", "-12", "999999999999999", "-99999999999999",
		"9007199254740993", "123456789012345678", "1.5", "2E3",
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(*ints); i++) {
		double want = strtod(ints[i], NULL);
		j.p = fenced(ints[i], strlen(ints[i]));
		j.end = j.p + strlen(ints[i]);
		d = 42;
		is_int(jscan_number(&j, &d), 0, "number %s", ints[i]);
		ok(!memcmp(&d, &want, sizeof(d)), "number %s read as strtod() reads it (%.17g, got %.17g)",
		   ints[i], want, d);
	}

	static const struct { const char *in; double want; } counts[] = {
		{ "12", 12 }, { "3e2", 300 }, { "7.9", 7 }, { "-4", 0 },
		{ "1e300", 1e12 }, { "\"5\"", -1 }, { "null", -1 },
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(*counts); i++) {
		d = -1;
		j.p = fenced(counts[i].in, strlen(counts[i].in));
		j.end = j.p + strlen(counts[i].in);
		is_int(jscan_count(&j, &d, 1), 0, "count %s scanned", counts[i].in);
		ok(d == counts[i].want, "count %s read as json_count() does: %g (got %g)",
		   counts[i].in, counts[i].want, d);
	}
}

static void test_members(void)
{
	const char *in = "{ \"a\" : 1 , \"b\\u0063\" : 2 }";
	struct jscan j = { fenced(in, strlen(in)), NULL };
	const char *name;
	size_t nlen;
	int first = 1;

	j.end = j.p + strlen(in);
	j.p++;
	is_int(jscan_more(&j, '}', &first, &name, &nlen), 1, "a first member");
	ok(jscan_named(name, nlen, "a"), "named a");
	ok(!jscan_named(name, nlen, "ab") && !jscan_named(name, nlen, ""),
	   "and not by another name");
	is_int(jscan_value(&j, 1), 0, "its value");
	is_int(jscan_more(&j, '}', &first, &name, &nlen), -1,
	       "an escaped member name is not read (the full way)");
}

static void test_anthropic(void)
{
	static const struct { const char *in; int rc; const char *why; } cases[] = {
		{ "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
		  "\"text_delta\",\"text\":\"Hi \\\"you\\\" \\u00e9\"}}", 0,
		  "a text delta with escaped quotes" },
		{ "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"content\":[],"
		  "\"usage\":{\"input_tokens\":1.2e1,\"cache_read_input_tokens\":3,"
		  "\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}", 0,
		  "message_start with usage, a count with an exponent" },
		{ "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
		  "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}", 0,
		  "message_delta" },
		{ "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":"
		  "\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"deep\":{\"x\":[{}]}}}}", 0,
		  "a tool block with nested input" },
		{ "{\"type\":\"ping\"}", 0, "ping" },
		{ "  {\"type\":\"message_stop\"}\r\n", 0, "whitespace around" },
		{ "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1,"
		  "\"output_tokens\":2}}", -1, "a count given twice" },
		{ "{\"type\":\"a\",\"type\":\"b\"}", -1, "type given twice" },
		{ "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"},"
		  "\"delta\":{\"text\":\"y\"}}", -1, "delta given twice" },
		{ "{\"ty\\u0070e\":\"message_stop\"}", -1, "an escaped member name" },
		{ "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
		  "\"text\":\"a\\u0000b\"}}", -1, "\\u0000 in a text" },
		{ "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
		  "\"text\":\"\xff\"}}", -1, "a text that is not UTF-8" },
		{ "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
		  "\"text\":\"\\udc00\"}}", -1, "a lone surrogate" },
		{ "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
		  "1234567890123456789012345678901234567890123456789012345678901234}}", -1,
		  "a 64-digit count (cJSON cuts it)" },
		{ "{\"type\":\"message_stop\"} {}", -1, "text after the object" },
		{ "[{\"type\":\"message_stop\"}]", -1, "not an object" },
		{ "{\"type\":\"message_stop\",}", -1, "malformed" },
		{ "", -1, "empty" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		is_int(skims(cases[i].in), cases[i].rc, "anthropic skim: %s", cases[i].why);
	/* A member aichat does not read may come twice: cJSON reads no
	 * part of it either. */
	is_int(skims("{\"type\":\"ping\",\"x\":1,\"x\":2}"), 0,
	       "anthropic skim: a member it does not read, twice");
}

int main(void)
{
	test_values();
	test_depth();
	test_decoding();
	test_members();
	test_anthropic();
	return tap_done();
}
