/*
 * test_config.c - unit tests for the config file and its lookups
 * (src/util/config.c).
 *
 * Table-driven: each case is the text of a config file and either the
 * exact ERR_CONFIG message it must give or, for a valid file, the default
 * model, aliases and providers it must yield.  config_load() is run
 * against a private temporary directory with HOME, XDG_CONFIG_HOME and
 * AICHAT_CONFIG under the test's control; every struct config is released
 * so that the sanitizer build catches a leak.
 */
#include "aichat/config.h"
#include "aichat/buf.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATH "test.json"
#define PFX "config file 'test.json': "

struct want_provider {
	const char *name, *kind, *base_url, *api_key_env, *api_key_cmd;
};

struct ccase {
	const char *name;
	const char *text;
	const char *err;                  /* exact message; NULL: valid */
	const char *default_model;
	const char *aliases[6];           /* name, target, ..., NULL */
	struct want_provider providers[4]; /* ends with a NULL name */
};

#define BAD(name, text, msg) { name, text, msg, NULL, { NULL }, { { NULL } } }

static const struct ccase cases[] = {
	/* ---- valid files ---- */
	{ "empty object", "{}", NULL, NULL, { NULL }, { { NULL } } },
	{ "whitespace around the object", " \n\t{ }\r\n\n", NULL, NULL,
	  { NULL }, { { NULL } } },
	{ "full file",
	  "{\n"
	  "  \"default_model\": \"fast\",\n"
	  "  \"aliases\": { \"fast\": \"openai:gpt-4o-mini\",\n"
	  "                 \"smart\": \"anthropic:claude-sonnet-4-6\" },\n"
	  "  \"providers\": {\n"
	  "    \"groq\": { \"kind\": \"openai\",\n"
	  "              \"base_url\": \"https://api.groq.com/openai/v1\",\n"
	  "              \"api_key_env\": \"GROQ_API_KEY\" },\n"
	  "    \"corp\": { \"kind\": \"anthropic\" }\n"
	  "  }\n"
	  "}\n",
	  NULL, "fast",
	  { "fast", "openai:gpt-4o-mini", "smart", "anthropic:claude-sonnet-4-6",
	    NULL },
	  { { "groq", "openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY", NULL },
	    { "corp", "anthropic", NULL, NULL, NULL }, { NULL } } },
	{ "api_key_cmd; openai and anthropic need no kind",
	  "{\"providers\":{\"openai\":{\"api_key_cmd\":\"pass show openai\"},"
	  "\"anthropic\":{\"base_url\":\"http://127.0.0.1:9\"},"
	  "\"vault\":{\"kind\":\"openai\",\"api_key_env\":\"V\",\"api_key_cmd\":\"vault read\"}}}",
	  NULL, NULL, { NULL },
	  { { "openai", "openai", NULL, NULL, "pass show openai" },
	    { "anthropic", "anthropic", "http://127.0.0.1:9", NULL, NULL },
	    { "vault", "openai", NULL, "V", "vault read" } } },
	{ "empty aliases and providers",
	  "{\"aliases\":{},\"providers\":{}}", NULL, NULL, { NULL }, { { NULL } } },
	{ "utf-8 in values", "{\"aliases\":{\"r\\u00e9sum\\u00e9\":\"mock:echo\"}}",
	  NULL, NULL, { "r\xC3\xA9sum\xC3\xA9", "mock:echo", NULL }, { { NULL } } },

	/* ---- syntax errors ---- */
	BAD("empty file", "", PFX "invalid JSON at line 1, column 1"),
	BAD("only blank lines", "\n\n  \n", PFX "invalid JSON at line 3, column 3"),
	BAD("missing colon on line 4",
	  "{\n"
	  "  \"default_model\": \"fast\",\n"
	  "  \"aliases\": {\n"
	  "    \"fast\" \"openai:gpt-4o-mini\"\n"
	  "  }\n"
	  "}\n",
	  PFX "invalid JSON at line 4, column 12"),
	BAD("trailing comma on line 3",
	  "{\n"
	  "  \"default_model\": \"a:b\",\n"
	  "  \"aliases\": { \"x\": \"a:b\", }\n"
	  "}\n",
	  PFX "invalid JSON at line 3, column 29"),
	BAD("column counts characters, not bytes",
	  "{\"aliases\": {\"\xC3\xA9\xC3\xA9\": x}}",
	  PFX "invalid JSON at line 1, column 20"),
	BAD("trailing garbage", "{} x", PFX "invalid JSON at line 1, column 4"),
	BAD("second object on the next line", "{\"default_model\":\"a:b\"}\n{}\n",
	  PFX "invalid JSON at line 2, column 1"),
	BAD("trailing brace", "{}}", PFX "invalid JSON at line 1, column 3"),
	BAD("comment", "// settings\n{}", PFX "invalid JSON at line 1, column 1"),
	BAD("a key twice: the second would be ignored",
	    "{\"default_model\":\"a\",\"default_model\":\"b\"}",
	    PFX "duplicate key 'default_model' at 'default_model'"),
	BAD("a key twice, deep", "{\"providers\":{\"p\":{\"kind\":\"openai\",\"kind\":\"anthropic\"}}}",
	    PFX "duplicate key 'kind' at 'providers.p.kind'"),
	BAD("a NUL in a value", "{\"default_model\":\"a\\u0000b\"}",
	    PFX "'default_model' must not contain a NUL character (\\u0000)"),
	BAD("malformed UTF-8", "{\"aliases\":{\"x\":\"\xff\"}}",
	    PFX "'aliases.x' is not valid UTF-8"),

	/* ---- bad values ---- */
	BAD("array at the top", "[]", PFX "must be a JSON object"),
	BAD("string at the top", "\"openai:gpt-4o\"", PFX "must be a JSON object"),
	BAD("unknown top-level key", "{\"default_modle\":\"a:b\"}",
	  PFX "unknown key 'default_modle' (expected default_model, aliases, providers, log, context_budget, max_prompt_bytes, prices, budgets, redis)"),
	BAD("unknown key after good ones",
	  "{\"default_model\":\"a:b\",\"alias\":{}}",
	  PFX "unknown key 'alias' (expected default_model, aliases, providers, log, context_budget, max_prompt_bytes, prices, budgets, redis)"),
	BAD("empty default_model", "{\"default_model\":\"\"}",
	  PFX "'default_model' must be a non-empty string"),
	BAD("number default_model", "{\"default_model\":4}",
	  PFX "'default_model' must be a non-empty string"),
	BAD("null default_model", "{\"default_model\":null}",
	  PFX "'default_model' must be a non-empty string"),
	BAD("aliases not an object", "{\"aliases\":[\"fast\"]}",
	  PFX "'aliases' must be an object"),
	BAD("empty alias target", "{\"aliases\":{\"fast\":\"\"}}",
	  PFX "'aliases.fast' must be a non-empty string"),
	BAD("object alias target", "{\"aliases\":{\"a\":\"x:y\",\"fast\":{}}}",
	  PFX "'aliases.fast' must be a non-empty string"),
	BAD("redis not an object", "{\"redis\":\"redis://h\"}",
	  PFX "'redis' must be an object: {url, prefix, fail, timeout}"),
	BAD("redis: an unknown key", "{\"redis\":{\"uri\":\"redis://h\"}}",
	  PFX "'redis.uri': unknown key (expected url, prefix, fail, timeout)"),
	BAD("redis: an empty url", "{\"redis\":{\"url\":\"\"}}",
	  PFX "'redis.url' must be a non-empty string"),
	BAD("redis: fail neither open nor closed", "{\"redis\":{\"fail\":\"half\"}}",
	  PFX "'redis.fail' must be auto, open or closed"),
	BAD("redis: a prefix of 65 characters",
	  "{\"redis\":{\"prefix\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
	  PFX "'redis.prefix' must be at most 64 characters"),
	BAD("redis: a timeout of 0", "{\"redis\":{\"timeout\":0}}",
	  PFX "'redis.timeout' must be a number of seconds from 0.001 to 60"),
	BAD("redis: a timeout as a string", "{\"redis\":{\"timeout\":\"1\"}}",
	  PFX "'redis.timeout' must be a number of seconds from 0.001 to 60"),
	BAD("prices not an object", "{\"prices\":[]}",
	  PFX "'prices' must be an object of provider:model: {input, output, cached_input, cache_write}"),
	BAD("a price without its provider", "{\"prices\":{\"gpt-4o\":{\"input\":1,\"output\":1}}}",
	  PFX "'prices.gpt-4o' must be an object {\"input\": N, \"output\": N} for a model named provider:model"),
	BAD("a price as a number", "{\"prices\":{\"openai:gpt-4o\":2.5}}",
	  PFX "'prices.openai:gpt-4o' must be an object {\"input\": N, \"output\": N} for a model named provider:model"),
	BAD("a price without output", "{\"prices\":{\"openai:gpt-4o\":{\"input\":1}}}",
	  PFX "'prices.openai:gpt-4o' needs 'output' (dollars per million tokens)"),
	BAD("a negative price", "{\"prices\":{\"openai:gpt-4o\":{\"input\":-0.01,\"output\":1}}}",
	  PFX "'prices.openai:gpt-4o.input' must be a number of dollars per million tokens, 0 to 100000"),
	BAD("a price past the bound", "{\"prices\":{\"openai:gpt-4o\":{\"input\":1,\"output\":100000.01}}}",
	  PFX "'prices.openai:gpt-4o.output' must be a number of dollars per million tokens, 0 to 100000"),
	BAD("a price as a string", "{\"prices\":{\"openai:gpt-4o\":{\"input\":\"1\",\"output\":1}}}",
	  PFX "'prices.openai:gpt-4o.input' must be a number of dollars per million tokens, 0 to 100000"),
	BAD("an unknown price key", "{\"prices\":{\"openai:gpt-4o\":{\"input\":1,\"output\":1,\"cached\":1}}}",
	  PFX "'prices.openai:gpt-4o': unknown key 'cached' (expected input, output, cached_input, cache_write)"),
	BAD("budgets not an object", "{\"budgets\":\"5/day\"}",
	  PFX "'budgets' must be an object of key: \"AMOUNT/day\""),
	BAD("a budget as a number", "{\"budgets\":{\"key:1\":5}}",
	  PFX "'budgets.key:1' must be an amount a day, such as \"5.00/day\""),
	BAD("a budget a week", "{\"budgets\":{\"key:1\":\"5/week\"}}",
	  PFX "'budgets.key:1' must be an amount a day, such as \"5.00/day\""),
	BAD("providers not an object", "{\"providers\":[]}",
	  PFX "'providers' must be an object"),
	BAD("provider not an object", "{\"providers\":{\"groq\":\"openai\"}}",
	  PFX "'providers.groq' must be an object"),
	BAD("unknown provider key",
	  "{\"providers\":{\"groq\":{\"kind\":\"openai\",\"baseurl\":\"http://x\"}}}",
	  PFX "unknown key 'providers.groq.baseurl' (expected kind, base_url, api_key_env, api_key_cmd)"),
	BAD("bad kind", "{\"providers\":{\"groq\":{\"kind\":\"gemini\"}}}",
	  PFX "'providers.groq.kind' must be \"openai\" or \"anthropic\""),
	BAD("missing kind",
	  "{\"providers\":{\"groq\":{\"base_url\":\"http://x\"}}}",
	  PFX "'providers.groq.kind' must be \"openai\" or \"anthropic\""),
	BAD("empty kind", "{\"providers\":{\"groq\":{\"kind\":\"\"}}}",
	  PFX "'providers.groq.kind' must be a non-empty string"),
	BAD("empty base_url",
	  "{\"providers\":{\"groq\":{\"kind\":\"openai\",\"base_url\":\"\"}}}",
	  PFX "'providers.groq.base_url' must be a non-empty string"),
	BAD("number api_key_env",
	  "{\"providers\":{\"groq\":{\"kind\":\"openai\",\"api_key_env\":1}}}",
	  PFX "'providers.groq.api_key_env' must be a non-empty string"),
	BAD("empty api_key_cmd",
	  "{\"providers\":{\"groq\":{\"kind\":\"openai\",\"api_key_cmd\":\"\"}}}",
	  PFX "'providers.groq.api_key_cmd' must be a non-empty string"),
	BAD("max_prompt_bytes zero", "{\"max_prompt_bytes\":0}",
	  PFX "'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\""),
	BAD("max_prompt_bytes negative", "{\"max_prompt_bytes\":-5}",
	  PFX "'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\""),
	BAD("max_prompt_bytes fraction", "{\"max_prompt_bytes\":1.5}",
	  PFX "'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\""),
	BAD("max_prompt_bytes bad unit", "{\"max_prompt_bytes\":\"16 parsecs\"}",
	  PFX "'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\""),
	BAD("max_prompt_bytes boolean", "{\"max_prompt_bytes\":true}",
	  PFX "'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\""),
	BAD("second provider bad",
	  "{\"providers\":{\"a\":{\"kind\":\"openai\"},\"b\":{\"kind\":\"OpenAI\"}}}",
	  PFX "'providers.b.kind' must be \"openai\" or \"anthropic\""),
};

static void check_case(const struct ccase *c)
{
	struct config cfg;
	struct err e;
	size_t i, n;
	int rc;

	err_clear(&e);
	rc = config_parse(&cfg, PATH, c->text, strlen(c->text), &e);
	if (c->err) {
		is_int(rc, -1, "%s: fails", c->name);
		is_int(e.code, ERR_CONFIG, "%s: ERR_CONFIG", c->name);
		is_str(e.msg, c->err, "%s: message", c->name);
		config_release(&cfg);
		return;
	}
	if (!ok(rc == 0, "%s: parses", c->name))
		printf("#   %s\n", e.msg);
	is_str(cfg.path, PATH, "%s: path", c->name);
	is_str(cfg.default_model, c->default_model, "%s: default_model", c->name);
	for (n = 0; c->aliases[2 * n]; n++)
		;
	is_int(cfg.naliases, n, "%s: alias count", c->name);
	for (i = 0; i < n; i++)
		is_str(config_alias(&cfg, c->aliases[2 * i]), c->aliases[2 * i + 1],
		       "%s: alias '%s'", c->name, c->aliases[2 * i]);
	for (n = 0; c->providers[n].name; n++)
		;
	is_int(cfg.nproviders, n, "%s: provider count", c->name);
	for (i = 0; i < n; i++) {
		const struct want_provider *w = &c->providers[i];
		const struct provider_conf *p = config_provider(&cfg, w->name);

		if (!ok(p != NULL, "%s: provider '%s' found", c->name, w->name))
			continue;
		is_str(p->name, w->name, "%s: %s name", c->name, w->name);
		is_str(p->kind, w->kind, "%s: %s kind", c->name, w->name);
		is_str(p->base_url, w->base_url, "%s: %s base_url", c->name, w->name);
		is_str(p->api_key_env, w->api_key_env, "%s: %s api_key_env",
		       c->name, w->name);
		is_str(p->api_key_cmd, w->api_key_cmd, "%s: %s api_key_cmd",
		       c->name, w->name);
	}
	config_release(&cfg);
	ok(cfg.path == NULL && cfg.naliases == 0 && cfg.nproviders == 0 &&
	   cfg.default_model == NULL, "%s: release empties", c->name);
}

/* ==== sizes: max_prompt_bytes ==== */

static const struct {
	const char *text;
	size_t want;            /* 0: refused */
} sizes[] = {
	{ "1", 1 }, { "100", 100 }, { "16777216", 16777216 }, { "16M", 16 << 20 },
	{ "16MiB", 16 << 20 }, { "16 MiB", 16 << 20 }, { "16MB", 16 << 20 },
	{ "64k", 64 << 10 }, { "2G", (size_t)2 << 30 }, { "100B", 100 },
	{ "1099511627776", (size_t)1 << 40 }, { "1024G", (size_t)1 << 40 },
	{ "0", 0 }, { "", 0 }, { "-1", 0 }, { "16 ", 0 }, { "16X", 0 },
	{ "16iB", 0 }, { "1.5M", 0 }, { " 16", 0 }, { "16MiBs", 0 },
	{ "1099511627777", 0 }, { "1025G", 0 }, { "99999999999999999999999", 0 },
};

static void test_sizes(void)
{
	struct config cfg, empty = { 0 };
	const char *source, *text;
	struct err e;
	size_t got;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		got = 0;
		if (sizes[i].want) {
			ok(config_parse_size(sizes[i].text, &got) == 0 && got == sizes[i].want,
			   "size '%s' is %zu (got %zu)", sizes[i].text, sizes[i].want, got);
		} else {
			ok(config_parse_size(sizes[i].text, &got) == -1,
			   "size '%s' is refused", sizes[i].text);
		}
	}
	unsetenv("AICHAT_MAX_PROMPT_BYTES");
	ok(config_max_prompt_bytes(&empty, &got, &source, &e) == 0 &&
	   got == CONFIG_MAX_PROMPT_BYTES, "max_prompt_bytes: 16 MiB by default");
	is_str(source, "max_prompt_bytes", "max_prompt_bytes: the default's name");
	text = "{\"max_prompt_bytes\":\"1K\"}";
	if (!ok(config_parse(&cfg, PATH, text, strlen(text), &e) == 0,
		"max_prompt_bytes: \"1K\" parses"))
		printf("#   %s\n", e.msg);
	ok(config_max_prompt_bytes(&cfg, &got, &source, &e) == 0 && got == 1024,
	   "max_prompt_bytes: the file's");
	setenv("AICHAT_MAX_PROMPT_BYTES", "100", 1);
	ok(config_max_prompt_bytes(&cfg, &got, &source, &e) == 0 && got == 100,
	   "max_prompt_bytes: the variable wins over the file");
	is_str(source, "AICHAT_MAX_PROMPT_BYTES", "max_prompt_bytes: the variable's name");
	setenv("AICHAT_MAX_PROMPT_BYTES", "lots", 1);
	is_int(config_max_prompt_bytes(&cfg, &got, &source, &e), -1,
	       "max_prompt_bytes: a bad variable fails");
	is_str(e.msg, "AICHAT_MAX_PROMPT_BYTES must be a size in bytes, such as 16777216 or 16M, not 'lots'",
	       "max_prompt_bytes: a bad variable's message");
	unsetenv("AICHAT_MAX_PROMPT_BYTES");
	config_release(&cfg);
	text = "{\"max_prompt_bytes\":2048}";
	if (!ok(config_parse(&cfg, PATH, text, strlen(text), &e) == 0,
		"max_prompt_bytes: a number parses"))
		printf("#   %s\n", e.msg);
	ok(config_max_prompt_bytes(&cfg, &got, &source, &e) == 0 && got == 2048,
	   "max_prompt_bytes: a number of bytes");
	config_release(&cfg);
}

/* ==== lookups and the environment ==== */

static void test_lookups(void)
{
	static const char text[] =
		"{\"default_model\":\"smart\",\"aliases\":{\"fast\":\"openai:gpt-4o-mini\","
		"\"smart\":\"anthropic:claude-sonnet-4-6\"},\"providers\":"
		"{\"groq\":{\"kind\":\"openai\"}}}";
	struct config cfg, empty = { 0 };
	struct err e;

	if (!ok(config_parse(&cfg, PATH, text, sizeof(text) - 1, &e) == 0,
		"lookups: parses"))
		printf("#   %s\n", e.msg);
	is_str(config_alias(&cfg, "fast"), "openai:gpt-4o-mini", "alias fast");
	is_str(config_alias(&cfg, "FAST"), NULL, "aliases are case-sensitive");
	is_str(config_alias(&cfg, "fas"), NULL, "no prefix match for aliases");
	is_str(config_alias(&cfg, ""), NULL, "empty alias name");
	ok(config_provider(&cfg, "groq") != NULL, "provider groq");
	ok(config_provider(&cfg, "openai") == NULL,
	   "built-in providers are not config providers");
	ok(config_provider(&cfg, "Groq") == NULL, "providers are case-sensitive");
	is_str(config_alias(&empty, "fast"), NULL, "alias in an empty config");
	ok(config_provider(&empty, "groq") == NULL, "provider in an empty config");

	unsetenv("AICHAT_MODEL");
	is_str(config_default_model(&empty), CONFIG_DEFAULT_MODEL,
	       "default model: built-in");
	is_str(config_default_model(&cfg), "smart", "default model: the file");
	setenv("AICHAT_MODEL", "mock:echo", 1);
	is_str(config_default_model(&cfg), "mock:echo",
	       "default model: AICHAT_MODEL over the file");
	is_str(config_default_model(&empty), "mock:echo",
	       "default model: AICHAT_MODEL over the built-in");
	setenv("AICHAT_MODEL", "", 1);
	is_str(config_default_model(&cfg), "smart",
	       "default model: empty AICHAT_MODEL is unset");
	unsetenv("AICHAT_MODEL");
	config_release(&cfg);

	setenv("AICHAT_TEST_VAR", "x", 1);
	is_str(env_get("AICHAT_TEST_VAR"), "x", "env_get: set");
	setenv("AICHAT_TEST_VAR", "", 1);
	is_str(env_get("AICHAT_TEST_VAR"), NULL, "env_get: empty is NULL");
	unsetenv("AICHAT_TEST_VAR");
	is_str(env_get("AICHAT_TEST_VAR"), NULL, "env_get: unset is NULL");
}

static char tmpdir[64];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static char *tmp_path(const char *rel)
{
	static char path[4][256];
	static int k;

	k = (k + 1) % 4;
	snprintf(path[k], sizeof(path[k]), "%s/%s", tmpdir, rel);
	return path[k];
}

static void test_load(void)
{
	struct config cfg;
	struct err e;
	int rc;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aichat-test-config-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	mkdir(tmp_path("home"), 0700);
	mkdir(tmp_path("xdg"), 0700);
	unsetenv("AICHAT_MODEL");

	/* Nothing at the default locations: success, nothing set. */
	unsetenv("AICHAT_CONFIG");
	setenv("HOME", tmp_path("home"), 1);
	unsetenv("XDG_CONFIG_HOME");
	err_clear(&e);
	rc = config_load(&cfg, &e);
	if (!ok(rc == 0, "load: no file under HOME is fine"))
		printf("#   %s\n", e.msg);
	ok(cfg.path == NULL && cfg.default_model == NULL && cfg.naliases == 0 &&
	   cfg.nproviders == 0, "load: nothing set without a file");
	is_str(config_default_model(&cfg), CONFIG_DEFAULT_MODEL,
	       "load: built-in default model without a file");
	config_release(&cfg);

	setenv("XDG_CONFIG_HOME", tmp_path("xdg"), 1);
	rc = config_load(&cfg, &e);
	if (!ok(rc == 0 && cfg.path == NULL, "load: no file under XDG_CONFIG_HOME is fine"))
		printf("#   %s\n", e.msg);
	config_release(&cfg);

	/* A file at the XDG location is read. */
	mkdir(tmp_path("xdg/aichat"), 0700);
	write_file(tmp_path("xdg/aichat/config.json"),
		   "{\"default_model\":\"mock:echo\"}\n");
	rc = config_load(&cfg, &e);
	if (!ok(rc == 0, "load: XDG file"))
		printf("#   %s\n", e.msg);
	is_str(cfg.path, tmp_path("xdg/aichat/config.json"), "load: XDG path");
	is_str(cfg.default_model, "mock:echo", "load: XDG default_model");
	config_release(&cfg);

	/* XDG_CONFIG_HOME wins over HOME. */
	mkdir(tmp_path("home/.config"), 0700);
	mkdir(tmp_path("home/.config/aichat"), 0700);
	write_file(tmp_path("home/.config/aichat/config.json"),
		   "{\"default_model\":\"openai:from-home\"}");
	rc = config_load(&cfg, &e);
	is_str(cfg.default_model, "mock:echo", "load: XDG_CONFIG_HOME over HOME");
	config_release(&cfg);
	unsetenv("XDG_CONFIG_HOME");
	rc = config_load(&cfg, &e);
	is_str(cfg.default_model, "openai:from-home", "load: ~/.config without XDG");
	config_release(&cfg);

	/* A bad file at the default location is an error naming it. */
	write_file(tmp_path("home/.config/aichat/config.json"), "{\n\"x\": 1,\n}");
	rc = config_load(&cfg, &e);
	is_int(rc, -1, "load: invalid default file fails");
	is_int(e.code, ERR_CONFIG, "load: invalid default file is ERR_CONFIG");
	ok(strstr(e.msg, tmp_path("home/.config/aichat/config.json")) &&
	   strstr(e.msg, "line 3, column 1"),
	   "load: message names the file and the place");
	config_release(&cfg);

	/* AICHAT_CONFIG must exist. */
	setenv("AICHAT_CONFIG", tmp_path("missing.json"), 1);
	err_clear(&e);
	rc = config_load(&cfg, &e);
	is_int(rc, -1, "load: missing AICHAT_CONFIG file fails");
	is_int(e.code, ERR_CONFIG, "load: missing AICHAT_CONFIG is ERR_CONFIG");
	ok(strstr(e.msg, tmp_path("missing.json")) != NULL,
	   "load: message names the missing file");
	config_release(&cfg);

	/* AICHAT_CONFIG wins over the default locations. */
	write_file(tmp_path("explicit.json"),
		   "{\"aliases\":{\"fast\":\"mock:echo\"}}");
	setenv("AICHAT_CONFIG", tmp_path("explicit.json"), 1);
	rc = config_load(&cfg, &e);
	if (!ok(rc == 0, "load: AICHAT_CONFIG file"))
		printf("#   %s\n", e.msg);
	is_str(cfg.path, tmp_path("explicit.json"), "load: AICHAT_CONFIG path");
	is_str(config_alias(&cfg, "fast"), "mock:echo", "load: AICHAT_CONFIG alias");
	is_str(cfg.default_model, NULL, "load: the default file is not read too");
	config_release(&cfg);

	/* A directory named by AICHAT_CONFIG is an error, not a crash. */
	setenv("AICHAT_CONFIG", tmp_path("home"), 1);
	rc = config_load(&cfg, &e);
	is_int(rc, -1, "load: AICHAT_CONFIG naming a directory fails");
	is_int(e.code, ERR_CONFIG, "load: directory is ERR_CONFIG");
	config_release(&cfg);
	unsetenv("AICHAT_CONFIG");

	unlink(tmp_path("home/.config/aichat/config.json"));
	rmdir(tmp_path("home/.config/aichat"));
	rmdir(tmp_path("home/.config"));
	rmdir(tmp_path("home"));
	unlink(tmp_path("xdg/aichat/config.json"));
	rmdir(tmp_path("xdg/aichat"));
	rmdir(tmp_path("xdg"));
	unlink(tmp_path("explicit.json"));
	rmdir(tmpdir);
}

/* "prices" become micro-dollars per million tokens, cached_input
 * defaulting to input; "budgets" micro-dollars a day. */
static void test_prices(void)
{
	static const char text[] =
		"{\"prices\": {\"openai:gpt-4o\": {\"input\": 2.5, \"output\": 10,"
		" \"cached_input\": 1.25, \"cache_write\": 3.125}, \"x:y\": {\"input\": 0.000001, \"output\": 0}},"
		" \"budgets\": {\"key:1\": \"5.00/day\", \"key:2\": \"0.000001/day\"}}";
	struct config c;
	struct err e;

	err_clear(&e);
	is_int(config_parse(&c, PATH, text, strlen(text), &e), 0, "prices: parsed");
	is_int(c.nprices, 2, "prices: two");
	is_str(c.prices[0].model, "openai:gpt-4o", "prices: name");
	is_int(c.prices[0].input, 2500000, "prices: input");
	is_int(c.prices[0].output, 10000000, "prices: output");
	is_int(c.prices[0].cached_input, 1250000, "prices: cached_input");
	is_int(c.prices[0].cache_write, 3125000, "prices: cache_write");
	is_int(c.prices[1].input, 1, "prices: the smallest price");
	is_int(c.prices[1].cached_input, 1, "prices: cached_input defaults to input");
	is_int(c.prices[1].cache_write, 1, "prices: cache_write defaults to input");
	is_int(c.nkey_budgets, 2, "budgets: two");
	is_str(c.key_budgets[0].key, "key:1", "budgets: key");
	is_int(c.key_budgets[0].per_day, 5000000, "budgets: 5.00/day");
	is_int(c.key_budgets[1].per_day, 1, "budgets: a micro-dollar a day");
	config_release(&c);
}

static void test_redis(void)
{
	static const char text[] =
		"{\"redis\": {\"url\": \"unix:///run/redis.sock\", \"prefix\": "
		"\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		" \"fail\": \"closed\", \"timeout\": 60}}";
	struct config c;
	struct err e;

	err_clear(&e);
	is_int(config_parse(&c, PATH, text, strlen(text), &e), 0, "redis: parsed");
	is_str(c.redis_url, "unix:///run/redis.sock", "redis: url");
	is_int((long)strlen(c.redis_prefix), 64, "redis: a prefix of 64 characters");
	is_str(c.redis_fail, "closed", "redis: fail");
	is_int((long)(c.redis_timeout * 1000), 60000, "redis: the longest timeout");
	config_release(&c);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_lookups();
	test_sizes();
	test_load();
	test_prices();
	test_redis();
	return tap_done();
}
