/*
 * test_models.c - unit tests for the model list (src/core/models.c): which
 * ids are kept, how names are cleaned, the parse of a provider's answer,
 * the merge of models and aliases into one list with one entry per id,
 * the JSON shape, the "all failed" rule and the one-minute cache.
 *
 * Every list is freed, so that the sanitizer build catches a leak.
 */
#include "aichat/models.h"
#include "aichat/buf.h"
#include "aichat/json.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ids of l, one per line, aliases as "id -> target". */
static char *ids(const struct models_list *l)
{
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < l->n; i++) {
		buf_appends(&b, l->v[i].id);
		if (l->v[i].target)
			buf_printf(&b, " -> %s", l->v[i].target);
		buf_putc(&b, '\n');
	}
	return buf_detach(&b);
}

static void test_ids(void)
{
	static const struct {
		const char *id;
		int ok;
		const char *why;
	} cases[] = {
		{ "gpt-4o-mini", 1, "plain id" },
		{ "llama3.2:latest", 1, "an id with a colon (ollama tags)" },
		{ "modèle-é", 1, "UTF-8 letters" },
		{ "a b", 1, "a space is no control character" },
		{ "", 0, "empty" },
		{ "x\x1b[31m", 0, "ESC" },
		{ "x\ny", 0, "newline" },
		{ "x\x7f", 0, "DEL" },
		{ "x\xc2\x9b" "31m", 0, "C1 CSI, as UTF-8" },
		{ "x\xc2\xa0y", 1, "U+00A0 is past C1" },
		{ "x\xff", 0, "a byte that is no UTF-8" },
		{ "x\xc3", 0, "UTF-8 cut short" },
		{ "\xc0\xaf", 0, "overlong UTF-8" },
		{ "\xed\xa0\x80", 0, "a UTF-16 surrogate" },
	};
	struct models_list *l = models_list_new();
	unsigned r = models_add_source(l, "p", 1);
	char longest[MODELS_ID_MAX + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		is_int(models_add(l, r, cases[i].id, NULL), cases[i].ok ? 0 : -1,
		       "id: %s", cases[i].why);
	memset(longest, 'a', sizeof(longest));
	longest[MODELS_ID_MAX] = '\0';
	is_int(models_add(l, r, longest, NULL), 0, "id of MODELS_ID_MAX bytes kept");
	longest[MODELS_ID_MAX] = 'a';
	longest[MODELS_ID_MAX + 1] = '\0';
	is_int(models_add(l, r, longest, NULL), -1, "id of MODELS_ID_MAX + 1 bytes refused");
	is_str(l->v[0].id, "p:gpt-4o-mini", "id is provider:model");
	is_str(l->v[0].provider, "p", "provider kept");
	models_list_free(l);
}

static void test_names(void)
{
	static const struct {
		const char *name, *want, *why;
	} cases[] = {
		{ "Claude Sonnet 4.6", "Claude Sonnet 4.6", "kept as is" },
		{ "Claude\tSonnet\n\n 4.6", "Claude Sonnet 4.6", "controls and blanks as one space" },
		{ "  \x1b[2Jx ", "x", "an escape sequence dropped, trimmed" },
		{ "a\xc2\x85" "b", "a b", "C1 as a space" },
		{ "bad\xff", "bad\xef\xbf\xbd", "a malformed byte as U+FFFD" },
		{ "\x1b\x07 ", NULL, "nothing left: no name" },
	};
	struct models_list *l = models_list_new();
	unsigned r = models_add_source(l, "p", 1);
	char big[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		models_add(l, r, "m", cases[i].name);
		is_str(l->v[l->n - 1].name, cases[i].want, "name: %s", cases[i].why);
	}
	/* Two-byte characters: cut at a character boundary, after an odd
	 * or an even number of bytes. */
	for (size_t i = 0; i < 199; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[398] = '\0';
	models_add(l, r, "m", big);
	is_int(strlen(l->v[l->n - 1].name), MODELS_NAME_MAX, "long name cut to MODELS_NAME_MAX bytes");
	big[0] = 'x';
	for (size_t i = 0; i < 198; i++)
		memcpy(big + 1 + 2 * i, "\xc3\xa9", 2);
	big[397] = '\0';
	models_add(l, r, "m", big);
	is_int(strlen(l->v[l->n - 1].name), MODELS_NAME_MAX - 1,
	       "long name cut before a character that would pass MODELS_NAME_MAX");
	models_list_free(l);
}

/* models_parse() of a C string. */
static int parse(struct models_list *l, unsigned rank, const char *text,
		 struct err *e)
{
	return models_parse(l, rank, text, strlen(text), e);
}

static void test_parse(void)
{
	struct models_list *l = models_list_new();
	unsigned o = models_add_source(l, "openai", 1);
	unsigned a = models_add_source(l, "anthropic", 1);
	struct err e;
	struct buf big;
	char *got;

	err_clear(&e);
	is_int(parse(l, o, "{\"object\":\"list\",\"data\":[{\"id\":\"gpt-4o\",\"owned_by\":\"system\"},"
			    "{\"id\":7},{\"object\":\"model\"},\"x\",{\"id\":\"bad\\u001b\"},{\"id\":\"o3\"}]}", &e), 0, "openai list parses");
	is_int(l->src[o].dropped, 4, "ids missing, not strings or with controls are dropped");
	is_int(parse(l, a, "{\"data\":[{\"type\":\"model\",\"id\":\"claude-sonnet-4-6\","
			    "\"display_name\":\"Claude Sonnet 4.6\",\"created_at\":\"2025-01-01T00:00:00Z\"}],"
			    "\"has_more\":false}", &e), 0, "anthropic list parses");
	models_finish(l);
	got = ids(l);
	is_str(got, "openai:gpt-4o\nopenai:o3\nanthropic:claude-sonnet-4-6\n", "sources in order, ids sorted");
	free(got);
	is_str(l->v[2].name, "Claude Sonnet 4.6", "display_name kept");
	ok(!l->v[0].name, "no display name: none");
	is_int(l->src[o].listed, 2, "listed counted per source");

	is_int(parse(l, o, "<html>", &e), -1, "HTML refused");
	is_int(e.code, ERR_UPSTREAM_PROTOCOL, "as a protocol error");
	is_str(e.msg, "malformed models list: not JSON", "message says so, quoting nothing");
	is_int(parse(l, o, "{\"data\":{\"id\":\"x\"}}", &e), -1, "data not an array refused");
	is_str(e.msg, "malformed models list: no \"data\" array", "message names the field");
	is_int(parse(l, o, "{\"models\":[{\"name\":\"x\"}]}", &e), -1,
	       "ollama's /api/tags shape is not this one");
	models_list_free(l);

	/* The count cap: the first MODELS_PER_PROVIDER_MAX, the rest dropped. */
	l = models_list_new();
	o = models_add_source(l, "p", 1);
	buf_init(&big, 0);
	buf_appends(&big, "{\"data\":[");
	for (int i = 0; i < MODELS_PER_PROVIDER_MAX + 2; i++)
		buf_printf(&big, "%s{\"id\":\"m%04d\"}", i ? "," : "", i);
	buf_appends(&big, "]}");
	is_int(models_parse(l, o, big.ptr, big.len, &e), 0, "a long list parses");
	is_int(l->n, MODELS_PER_PROVIDER_MAX, "kept MODELS_PER_PROVIDER_MAX");
	is_int(l->src[o].dropped, 2, "the rest counted as dropped");
	is_str(l->v[l->n - 1].id, "p:m0999", "the first ones kept");
	buf_release(&big);
	models_list_free(l);
}

static const char config_text[] =
	"{ \"aliases\": { \"fast\": \"openai:gpt-4o-mini\","
	"                 \"quick\": \"fast\","
	"                 \"smart\": \"anthropic:claude-sonnet-4-6\","
	"                 \"openai:gpt-4o\": \"anthropic:claude-haiku-4-5\","
	"                 \"bad\\u001b\": \"openai:x\","
	"                 \"bare\": \"gpt-4o\" } }";

static void test_merge(void)
{
	struct config cfg;
	struct models_list *l = models_list_new();
	struct err e;
	unsigned o, m;
	char *got;

	if (config_parse(&cfg, "t.json", config_text, strlen(config_text), &e) < 0) {
		ok(0, "config parses: %s", e.msg);
		return;
	}
	m = models_add_source(l, "mock", 0);
	o = models_add_source(l, "openai", 1);
	models_add(l, m, "echo", NULL);
	models_add(l, o, "gpt-4o-mini", NULL);
	models_add(l, o, "gpt-4o", NULL);
	models_add(l, o, "gpt-4o-mini", "again");
	models_add_aliases(l, &cfg, NULL);
	models_finish(l);
	got = ids(l);
	is_str(got,
	       "mock:echo\n"
	       "openai:gpt-4o-mini\n"
	       "bare -> gpt-4o\n"
	       "fast -> openai:gpt-4o-mini\n"
	       "openai:gpt-4o -> anthropic:claude-haiku-4-5\n"
	       "quick -> fast\n"
	       "smart -> anthropic:claude-sonnet-4-6\n",
	       "one entry per id, aliases last, an alias over a model of its name, none with controls");
	free(got);
	is_int(l->src[o].listed, 1, "listed counts what is left");
	models_list_free(l);

	l = models_list_new();
	models_add_aliases(l, &cfg, "openai");
	models_finish(l);
	got = ids(l);
	is_str(got, "fast -> openai:gpt-4o-mini\nquick -> fast\n",
	       "aliases of one provider, through other aliases");
	free(got);
	models_list_free(l);
	config_release(&cfg);
}

static void test_failed_and_json(void)
{
	struct models_list *l = models_list_new();
	unsigned m = models_add_source(l, "mock", 0);
	unsigned o = models_add_source(l, "openai", 1);
	unsigned a = models_add_source(l, "anthropic", 1);
	cJSON *j;
	char *t;

	ok(!models_all_failed(l), "nothing failed");
	err_set(&l->src[o].err, ERR_UPSTREAM_AUTH, "authentication failed");
	ok(!models_all_failed(l), "one of two failed: not all");
	err_set(&l->src[a].err, ERR_UPSTREAM_UNREACHABLE, "cannot connect");
	ok(models_all_failed(l), "every network provider failed, though mock did not");
	models_add(l, m, "echo", "offline");
	models_add(l, o, "gpt-4o", NULL);
	models_finish(l);
	j = models_to_json(l);
	t = json_print(j);
	is_str(t,
	       "{\"models\":[{\"id\":\"mock:echo\",\"type\":\"model\",\"provider\":\"mock\",\"model\":\"echo\",\"name\":\"offline\"},"
	       "{\"id\":\"openai:gpt-4o\",\"type\":\"model\",\"provider\":\"openai\",\"model\":\"gpt-4o\"}],"
	       "\"errors\":[{\"provider\":\"openai\",\"code\":\"upstream_auth_failed\",\"message\":\"authentication failed\"},"
	       "{\"provider\":\"anthropic\",\"code\":\"upstream_unreachable\",\"message\":\"cannot connect\"}]}",
	       "JSON: models and errors");
	free(t);
	cJSON_Delete(j);
	models_list_free(l);

	l = models_list_new();
	models_add_source(l, "mock", 0);
	ok(!models_all_failed(l), "no network provider: not failed");
	models_list_free(l);
}

static void test_cache(void)
{
	struct models_cache c = { 0 };
	struct models_list *a = models_list_new(), *b = models_list_new();

	ok(!models_cache_get(&c, 1000), "empty cache: nothing");
	models_cache_put(&c, a, 1000);
	ok(models_cache_get(&c, 1000) == a, "fresh at once");
	ok(models_cache_get(&c, 1000 + MODELS_CACHE_TTL_MS - 1) == a, "fresh 1 ms before the TTL");
	ok(!models_cache_get(&c, 1000 + MODELS_CACHE_TTL_MS), "stale at the TTL");
	models_cache_put(&c, b, 90000);
	ok(models_cache_get(&c, 90001) == b, "a put replaces (and frees) the list");
	models_cache_put(&c, b, 95000);
	ok(models_cache_get(&c, 95000 + MODELS_CACHE_TTL_MS - 1) == b, "putting the same list again refreshes it");
	models_cache_release(&c);
	ok(!models_cache_get(&c, 95001), "released: empty");
}

static void test_unknown(void)
{
	struct config cfg;
	struct err e;
	const char *text = "{\"providers\":{\"groq\":{\"kind\":\"openai\"},\"openai\":{\"kind\":\"openai\"}}}";

	config_parse(&cfg, "t.json", text, strlen(text), &e);
	err_clear(&e);
	ok(!models_start(NULL, &cfg, "nope", 0, NULL, NULL, &e), "unknown provider: no job");
	is_int(e.code, ERR_USAGE, "a usage error");
	is_str(e.msg, "unknown provider 'nope' (known: openai, anthropic, ollama, mock, groq)",
	       "names the known ones once each");
	config_release(&cfg);
}

int main(void)
{
	test_ids();
	test_names();
	test_parse();
	test_merge();
	test_failed_and_json();
	test_cache();
	test_unknown();
	return tap_done();
}
