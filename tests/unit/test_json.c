/*
 * test_json.c - unit tests for the cJSON helpers (src/util/json.c).
 *
 * Table-driven: getters against one document with keys of every type,
 * json_quote() against exact expected literals (each then parsed back by
 * cJSON to the original bytes), json_parse() against inputs with the error
 * offset they must report, and json_position() with multibyte text.
 */
#include "aichat/json.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char doc_text[] =
	"{\"s\":\"text\",\"empty\":\"\",\"n\":2.5,\"zero\":0,\"t\":true,\"nul\":null,"
	"\"o\":{\"inner\":{\"deep\":\"yes\"},\"k\":1},\"a\":[1,2,3],"
	"\"error\":{\"message\":\"bad thing\",\"code\":429},"
	"\"S\":\"upper\",\"dot.key\":\"d\"}";

/* ==== getters ==== */

enum kind { K_STR, K_NUM, K_OBJ, K_ARR };

struct gcase {
	enum kind kind;
	const char *key;
	int present;            /* the getter finds it */
	const char *str;        /* K_STR: the string */
	double num;             /* K_NUM: the number */
};

static const struct gcase gcases[] = {
	{ K_STR, "s", 1, "text", 0 },
	{ K_STR, "empty", 1, "", 0 },
	{ K_STR, "S", 1, "upper", 0 },
	{ K_STR, "n", 0, NULL, 0 },
	{ K_STR, "nul", 0, NULL, 0 },
	{ K_STR, "o", 0, NULL, 0 },
	{ K_STR, "missing", 0, NULL, 0 },
	{ K_STR, "", 0, NULL, 0 },
	{ K_STR, "dot.key", 1, "d", 0 },
	{ K_NUM, "n", 1, NULL, 2.5 },
	{ K_NUM, "zero", 1, NULL, 0 },
	{ K_NUM, "s", 0, NULL, 0 },
	{ K_NUM, "t", 0, NULL, 0 },
	{ K_NUM, "nul", 0, NULL, 0 },
	{ K_NUM, "missing", 0, NULL, 0 },
	{ K_OBJ, "o", 1, NULL, 0 },
	{ K_OBJ, "error", 1, NULL, 0 },
	{ K_OBJ, "a", 0, NULL, 0 },
	{ K_OBJ, "s", 0, NULL, 0 },
	{ K_OBJ, "nul", 0, NULL, 0 },
	{ K_OBJ, "missing", 0, NULL, 0 },
	{ K_ARR, "a", 1, NULL, 0 },
	{ K_ARR, "o", 0, NULL, 0 },
	{ K_ARR, "n", 0, NULL, 0 },
	{ K_ARR, "missing", 0, NULL, 0 },
};

static const char *const kind_names[] = { "json_str", "json_num", "json_obj",
					  "json_arr" };

static void test_getters(const cJSON *doc)
{
	for (size_t i = 0; i < sizeof(gcases) / sizeof(gcases[0]); i++) {
		const struct gcase *c = &gcases[i];
		const char *what = kind_names[c->kind];

		switch (c->kind) {
		case K_STR:
			is_str(json_str(doc, c->key), c->str, "%s '%s'", what, c->key);
			break;
		case K_NUM: {
			double d = -99;
			int rc = json_num(doc, c->key, &d);

			is_int(rc, c->present ? 0 : -1, "%s '%s' return", what, c->key);
			ok(d == (c->present ? c->num : -99), "%s '%s' value %g", what,
			   c->key, d);
			break;
		}
		case K_OBJ: {
			const cJSON *n = json_obj(doc, c->key);

			ok(c->present ? cJSON_IsObject(n) &&
			   n == cJSON_GetObjectItemCaseSensitive(doc, c->key) : n == NULL,
			   "%s '%s'", what, c->key);
			break;
		}
		case K_ARR: {
			const cJSON *n = json_arr(doc, c->key);

			ok(c->present ? cJSON_IsArray(n) &&
			   cJSON_GetArraySize(n) == 3 : n == NULL, "%s '%s'", what, c->key);
			break;
		}
		}
	}
	/* Lookups are case-sensitive, and a NULL object has nothing. */
	is_str(json_str(doc, "S"), "upper", "json_str is case-sensitive");
	is_str(json_str(NULL, "s"), NULL, "json_str of NULL");
	ok(json_obj(NULL, "o") == NULL, "json_obj of NULL");
	ok(json_arr(json_obj(doc, "o"), "a") == NULL, "json_arr in the wrong object");
}

struct pcase {
	const char *path;
	const char *want;       /* the node printed, NULL: not found */
};

static const struct pcase pcases[] = {
	{ "error.message", "\"bad thing\"" },
	{ "error.code", "429" },
	{ "o.inner.deep", "\"yes\"" },
	{ "o.inner", "{\"deep\":\"yes\"}" },
	{ "s", "\"text\"" },
	{ "error.missing", NULL },
	{ "missing.message", NULL },
	{ "error.message.deeper", NULL },
	{ "o.k.deeper", NULL },
	{ "a.0", NULL },
	{ "nul.x", NULL },
	{ "Error.message", NULL },
	{ "o.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL },
};

static void test_path(const cJSON *doc)
{
	for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const cJSON *n = json_path(doc, pcases[i].path);
		char *text = n ? json_print(n) : NULL;

		is_str(text, pcases[i].want, "json_path '%s'", pcases[i].path);
		free(text);
	}
	ok(json_path(NULL, "a.b") == NULL, "json_path of NULL");
}

/* ==== json_quote ==== */

struct qcase {
	const char *name;
	const char *in;
	size_t len;
	const char *want;
};

#define Q(name, in, want) { name, in, sizeof(in) - 1, want }

static const struct qcase qcases[] = {
	Q("empty", "", "\"\""),
	Q("plain", "hello world", "\"hello world\""),
	Q("double quote", "say \"hi\"", "\"say \\\"hi\\\"\""),
	Q("backslash", "C:\\dir\\", "\"C:\\\\dir\\\\\""),
	Q("slash is left alone", "a/b</script>", "\"a/b</script>\""),
	Q("named escapes", "\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\""),
	Q("other control characters", "\x01\x1f\x0b\x1b[0m",
	  "\"\\u0001\\u001f\\u000b\\u001b[0m\""),
	Q("nul inside", "a\0b", "\"a\\u0000b\""),
	Q("del is left alone", "\x7f", "\"\x7f\""),
	Q("utf-8 left alone", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
	  "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\""),
	Q("quote at the ends", "\"x\"", "\"\\\"x\\\"\""),
	Q("mixed", "line1\n\t\"q\" \\ \xC3\xA9\x02",
	  "\"line1\\n\\t\\\"q\\\" \\\\ \xC3\xA9\\u0002\""),
};

/* Whether cJSON reads literal back as exactly len bytes of in. */
static int round_trips(const char *literal, const char *in, size_t len)
{
	cJSON *n = cJSON_Parse(literal);
	int good = 0;

	if (cJSON_IsString(n))
		good = memchr(in, '\0', len) ?
			/* cJSON strings stop at a NUL: compare the prefix. */
			strcmp(n->valuestring, in) == 0 :
			strlen(n->valuestring) == len &&
			memcmp(n->valuestring, in, len) == 0;
	cJSON_Delete(n);
	return good;
}

static void test_quote(void)
{
	struct buf b;
	char all[128];

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
		const struct qcase *c = &qcases[i];

		buf_clear(&b);
		is_int(json_quote(&b, c->in, c->len), 0, "json_quote %s: return",
		       c->name);
		is_str(b.ptr, c->want, "json_quote %s", c->name);
		ok(round_trips(b.ptr, c->in, c->len), "json_quote %s: round trip",
		   c->name);
	}

	/* Every byte 1..127, in one string. */
	for (int i = 1; i < 128; i++)
		all[i - 1] = (char)i;
	buf_clear(&b);
	json_quote(&b, all, 127);
	ok(round_trips(b.ptr, all, 127), "json_quote of every ASCII byte round-trips");
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.ptr[i] < 0x20) {
			ok(0, "json_quote leaves no raw control character (0x%02x)",
			   (unsigned char)b.ptr[i]);
			break;
		}

	/* Appends, does not replace. */
	buf_clear(&b);
	buf_appends(&b, "{\"k\":");
	json_quote(&b, "v", 1);
	buf_putc(&b, '}');
	is_str(b.ptr, "{\"k\":\"v\"}", "json_quote appends");
	buf_release(&b);

	/* Only n bytes are read. */
	buf_init(&b, 0);
	json_quote(&b, "abcdef", 3);
	is_str(b.ptr, "\"abc\"", "json_quote reads only n bytes");
	buf_release(&b);

	/* A full buffer fails. */
	buf_init(&b, 6);
	is_int(json_quote(&b, "abcdef", 6), -1, "json_quote past max fails");
	buf_release(&b);
	buf_init(&b, 8);
	is_int(json_quote(&b, "abcdef", 6), 0, "json_quote exactly at max");
	is_str(b.ptr, "\"abcdef\"", "json_quote at max content");
	buf_release(&b);
	buf_init(&b, 5);
	is_int(json_quote(&b, "a\nb", 3), -1, "json_quote escape past max fails");
	buf_release(&b);
}

/* ==== json_parse ==== */

/*
 * Where cJSON itself gives up, its offset is only near the fault (at the
 * end of input it points at the last byte), so those cases take a range;
 * the check for trailing bytes is json.c's own and must be exact.
 */
struct jcase {
	const char *name;
	const char *text;
	size_t len;             /* 0: strlen(text) */
	int good;
	size_t pos_lo, pos_hi;
};

static const struct jcase jcases[] = {
	{ "object", "{\"a\":1}", 0, 1, 0, 0 },
	{ "trailing whitespace", "{\"a\":1} \n\t\r\n", 0, 1, 0, 0 },
	{ "leading whitespace", "\n  [1, 2]", 0, 1, 0, 0 },
	{ "scalar", "42", 0, 1, 0, 0 },
	{ "only len bytes are read", "{\"a\":1}garbage", 7, 1, 0, 0 },
	{ "trailing garbage", "{\"a\":1} x", 0, 0, 8, 8 },
	{ "trailing garbage right after", "{\"a\":1}x", 0, 0, 7, 7 },
	{ "two values", "{} {}", 0, 0, 3, 3 },
	{ "nul after the value", "{}\0x", 4, 0, 2, 2 },
	{ "garbage on the next line", "{\"a\":1}\n\n  ]", 0, 0, 11, 11 },
	{ "trailing comma", "[1,]", 0, 0, 3, 3 },
	{ "missing value", "{\"a\":}", 0, 0, 5, 5 },
	{ "bad literal", "[tru]", 0, 0, 1, 4 },
	{ "single quotes", "{'a':1}", 0, 0, 1, 2 },
	{ "empty", "", 0, 0, 0, 0 },
	{ "whitespace only", "   ", 0, 0, 2, 3 },
	{ "truncated object", "{\"a\": 1", 0, 0, 6, 7 },
	{ "truncated string", "\"abc", 0, 0, 0, 4 },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof(jcases) / sizeof(jcases[0]); i++) {
		const struct jcase *c = &jcases[i];
		size_t len = c->len ? c->len : strlen(c->text);
		size_t pos = 12345;
		cJSON *n = json_parse(c->text, len, &pos);

		if (c->good) {
			ok(n != NULL, "json_parse %s: parses", c->name);
		} else {
			ok(n == NULL, "json_parse %s: rejected", c->name);
			if (c->pos_lo == c->pos_hi)
				is_int(pos, c->pos_lo, "json_parse %s: error offset",
				       c->name);
			else if (!ok(pos >= c->pos_lo && pos <= c->pos_hi,
				     "json_parse %s: error offset near the fault",
				     c->name))
				printf("#   got %zu, want %zu..%zu\n", pos, c->pos_lo,
				       c->pos_hi);
		}
		cJSON_Delete(n);
		/* err_pos may be NULL. */
		n = json_parse(c->text, len, NULL);
		ok(!n == !c->good, "json_parse %s: same without err_pos", c->name);
		cJSON_Delete(n);
	}
}

/* ==== json_position ==== */

struct poscase {
	const char *text;
	size_t pos;
	int line, col;
};

static const struct poscase poscases[] = {
	{ "abc", 0, 1, 1 },
	{ "abc", 2, 1, 3 },
	{ "abc", 3, 1, 4 },
	{ "", 0, 1, 1 },
	{ "a\nbc", 1, 1, 2 },
	{ "a\nbc", 2, 2, 1 },
	{ "a\nbc", 3, 2, 2 },
	{ "\n\n\nx", 3, 4, 1 },
	{ "\xC3\xA9x", 2, 1, 2 },                       /* é is one column */
	{ "\xC3\xA9x", 3, 1, 3 },
	{ "\xE2\x82\xAC\xE2\x82\xAC!", 6, 1, 3 },       /* €€! */
	{ "\xF0\x9F\x98\x80x", 4, 1, 2 },               /* emoji */
	{ "{\"\xC3\xA9\": x}", 7, 1, 7 },
	{ "\xC3\xA9\n\xC3\xA9\xC3\xA9x", 7, 2, 3 },
	{ "a\r\nb", 3, 2, 1 },
	{ "ab", 50, 1, 3 },                            /* past the end */
};

static void test_position(void)
{
	for (size_t i = 0; i < sizeof(poscases) / sizeof(poscases[0]); i++) {
		const struct poscase *c = &poscases[i];
		int line = -1, col = -1;

		json_position(c->text, c->pos, &line, &col);
		if (!ok(line == c->line && col == c->col,
			"json_position case %zu (pos %zu)", i, c->pos))
			printf("#   got %d:%d, want %d:%d\n", line, col, c->line,
			       c->col);
	}
}

static void test_print(const cJSON *doc)
{
	char *s = json_print(json_obj(doc, "o"));

	is_str(s, "{\"inner\":{\"deep\":\"yes\"},\"k\":1}", "json_print is compact");
	free(s);
	s = json_print(json_arr(doc, "a"));
	is_str(s, "[1,2,3]", "json_print of an array");
	free(s);
}

/* json_parse_strict(): what it refuses, where, and what it lets by. */
static void test_strict(void)
{
	static const struct {
		const char *text;
		size_t len;          /* 0: strlen */
		const char *type;    /* NULL: accepted (or a syntax error) */
		const char *loc, *msg;
	} t[] = {
		{ "{\"prompt\":\"x\",\"temperature\":null,\"temperature\":99}", 0,
		  "duplicate_key", "temperature", "duplicate key 'temperature'" },
		{ "{\"a\":1,\"b\":{\"c\":[{\"d\":1},{\"e\":1,\"e\":2}]}}", 0,
		  "duplicate_key", "b.c.1.e", "duplicate key 'e'" },
		{ "{\"a\":1,\"A\":2,\"a \":3}", 0, NULL, NULL, NULL },
		{ "[{\"a\":1},{\"a\":1}]", 0, NULL, NULL, NULL },
		{ "{\"prompt\":\"ab\\u0000cd\"}", 0, "string_nul", "prompt",
		  "must not contain a NUL character (\\u0000)" },
		{ "{\"prompt\":\"ab\0cd\"}", 18, "string_nul", "prompt", NULL },
		{ "{\"x\":[\"ok\",\"\xff\"]}", 0, "string_unicode", "x.1",
		  "is not valid UTF-8" },
		{ "{\"k\\u0000\":1}", 0, "string_nul", "k", NULL },
		{ "{\"p\":\"a\\\\u0000 \\u0041 caf\xc3\xa9\"}", 0, NULL, NULL, NULL },
		{ "{\"p\":\"\\u00ff\"}", 0, NULL, NULL, NULL },
		{ "{\"a\":", 0, NULL, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct json_issue iss;
		size_t pos = 99, len = t[i].len ? t[i].len : strlen(t[i].text);
		cJSON *j = json_parse_strict(t[i].text, len, &pos, &iss);
		cJSON *plain = json_parse(t[i].text, len, NULL);

		if (t[i].type) {
			ok(!j, "strict %zu: refused", i);
			is_str(iss.type ? iss.type : "(null)", t[i].type, "strict %zu: type", i);
			is_str(iss.loc, t[i].loc, "strict %zu: loc", i);
			if (t[i].msg)
				is_str(iss.msg, t[i].msg, "strict %zu: msg", i);
		} else {
			ok(!iss.type, "strict %zu: no issue", i);
			ok(!j == !plain, "strict %zu: accepted exactly when json_parse is", i);
		}
		cJSON_Delete(j);
		cJSON_Delete(plain);
	}
}

static void test_clamp(void)
{
	is_int(json_clamp_int(1e300, 1, 100), 100, "clamp: 1e300 to the top");
	is_int(json_clamp_int(-1e300, 1, 100), 1, "clamp: -1e300 to the bottom");
	is_int(json_clamp_int(0.0 / 0.0, 1, 100), 1, "clamp: NaN to the bottom");
	is_int(json_clamp_int(100, 1, 100), 100, "clamp: the top itself");
	is_int(json_clamp_int(100.5, 1, 100), 100, "clamp: just past the top");
	is_int(json_clamp_int(7.9, 1, 100), 7, "clamp: inside, truncated");
	is_int(json_clamp_int(2147483648.0, 0, 2147483647), 2147483647,
	       "clamp: INT_MAX + 1");
}

/* json_make_utf8: malformed bytes in values and keys, at any depth,
 * become U+FFFD; valid text (and a string that shrinks nothing) stays. */
static void test_make_utf8(void)
{
	static const char in[] =
		"{\"a\":\"caf\xe9\",\"k\xff\":[\"ok \xc3\xa9\",{\"d\":\"x\xc3\"}],\"n\":1}";
	cJSON *o = json_parse(in, sizeof(in) - 1, NULL);
	char *t;

	if (!ok(o != NULL, "make_utf8: cJSON takes malformed UTF-8 in strings"))
		return;
	json_make_utf8(o);
	t = cJSON_PrintUnformatted(o);
	ok(t && !strcmp(t, "{\"a\":\"caf\xef\xbf\xbd\",\"k\xef\xbf\xbd\":[\"ok \xc3\xa9\","
			   "{\"d\":\"x\xef\xbf\xbd\"}],\"n\":1}"),
	   "make_utf8: every malformed byte is U+FFFD, valid text kept: %s", t ? t : "(null)");
	free(t);
	cJSON_Delete(o);
}

/* ==== json_number: cJSON's own text for every number ==== */

static void test_number(void)
{
	static const double v[] = {
		0, -0.0, 1, -1, 42, 2147483647.0, 2147483648.0, -2147483648.0,
		-2147483649.0, 1e15, 9007199254740992.0, 0.1, 1.5, -2.25, 1e-7,
		3.141592653589793, 1.0 / 3, 123456789.123, 1e300, -1e-300,
		4.9e-324, 1.7976931348623157e308, NAN, INFINITY,
	};
	char name[64];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		cJSON *n = cJSON_CreateNumber(v[i]);
		char *want = cJSON_PrintUnformatted(n);
		struct buf b;

		buf_init(&b, 0);
		json_number(&b, v[i]);
		snprintf(name, sizeof(name), "json_number %.17g reads as cJSON's", v[i]);
		is_str(b.ptr, want, name);
		buf_release(&b);
		free(want);
		cJSON_Delete(n);
	}
}

int main(void)
{
	cJSON *doc = cJSON_Parse(doc_text);

	if (!ok(doc != NULL, "test document parses"))
		return tap_done();
	test_getters(doc);
	test_path(doc);
	test_print(doc);
	test_quote();
	test_number();
	test_parse();
	test_position();
	test_strict();
	test_clamp();
	test_make_utf8();
	cJSON_Delete(doc);
	return tap_done();
}
