/*
 * test_provider.c - unit tests for model resolution and upstream error
 * mapping (src/provider/provider.c), and for the error codes (src/util/err.c).
 *
 * Table-driven: each model_resolve() case sets its own environment (every
 * variable the resolver reads is unset first) and names the provider, base
 * URL, key variable and key it must give, or the exact ERR_CONFIG message.
 * Each llm_http_error() case is an HTTP status, content type and body and
 * the code and exact message they must map to; every message is also
 * checked for control characters and for any part of the API key.
 */
#include "aichat/provider.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/trust.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define OKEY "sk-test-Qm3Rt8Lp-0123456789abcdef"
#define AKEY "sk-ant-test-Zq9Xw7Vb-fedcba9876543210"
#define GKEY "gsk_test_Hh2Jj4Kk5555555555"
#define CKEY "sk-cmd-test-Pp7Yy6Tt-0011223344"

static const char *const env_vars[] = {
	"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL",
	"ANTHROPIC_BASE_URL", "OLLAMA_HOST", "AICHAT_MODEL", "GROQ_API_KEY",
};

/* Unsets every variable the resolver reads, then applies "NAME=value"s. */
static void set_env(const char *const *env)
{
	for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
		unsetenv(env_vars[i]);
	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(eq - *env), *env);
		setenv(name, eq + 1, 1);
	}
}

/* ==== model_resolve ==== */

struct rcase {
	const char *name;
	const char *env[6];             /* "NAME=value", NULL-terminated */
	int with_cfg;                   /* 1, 2: the config files below */
	const char *model;              /* NULL: the default */
	const char *err;                /* exact message; NULL: success */
	const struct provider_ops *ops;
	const char *provider, *mod, *full, *base, *key_env, *key;
};

#define OK_(ops, prov, mod, full, base, env, key) NULL, ops, prov, mod, full, base, env, key
#define BAD(msg) msg, NULL, NULL, NULL, NULL, NULL, NULL, NULL

#define OPENAI_BASE "https://api.openai.com/v1"
#define ANT_BASE "https://api.anthropic.com"
#define NOKEY_OPENAI "no API key for provider openai: set OPENAI_API_KEY " \
	"(or try the offline model: -m mock:echo)"
#define KNOWN "(known: openai, anthropic, ollama, mock)"
#define UNKNOWN_MODEL(m) "unknown model '" m "': name it as provider:model " \
	"(e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-6, ollama:llama3.2, mock:echo)"

static const struct rcase rcases[] = {
	{ "openai", { "OPENAI_API_KEY=" OKEY }, 0, "openai:gpt-4o-mini",
	  OK_(&provider_openai, "openai", "gpt-4o-mini", "openai:gpt-4o-mini",
	      OPENAI_BASE, "OPENAI_API_KEY", OKEY) },
	{ "openai base url from the environment",
	  { "OPENAI_API_KEY=" OKEY, "OPENAI_BASE_URL=http://localhost:8080/v1" },
	  0, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      "http://localhost:8080/v1", "OPENAI_API_KEY", OKEY) },
	{ "openai base url trailing slash stripped",
	  { "OPENAI_API_KEY=" OKEY, "OPENAI_BASE_URL=https://proxy.example/v1/" },
	  0, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      "https://proxy.example/v1", "OPENAI_API_KEY", OKEY) },
	{ "openai base url several slashes stripped",
	  { "OPENAI_API_KEY=" OKEY, "OPENAI_BASE_URL=http://h:1//" },
	  0, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      "http://h:1", "OPENAI_API_KEY", OKEY) },
	{ "empty OPENAI_BASE_URL is unset",
	  { "OPENAI_API_KEY=" OKEY, "OPENAI_BASE_URL=" }, 0, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      OPENAI_BASE, "OPENAI_API_KEY", OKEY) },
	{ "model id keeps later colons", { "OPENAI_API_KEY=" OKEY }, 0,
	  "openai:ft:gpt-4o-mini:org:abc",
	  OK_(&provider_openai, "openai", "ft:gpt-4o-mini:org:abc",
	      "openai:ft:gpt-4o-mini:org:abc", OPENAI_BASE, "OPENAI_API_KEY",
	      OKEY) },
	{ "anthropic", { "ANTHROPIC_API_KEY=" AKEY }, 0,
	  "anthropic:claude-sonnet-4-6",
	  OK_(&provider_anthropic, "anthropic", "claude-sonnet-4-6",
	      "anthropic:claude-sonnet-4-6", ANT_BASE, "ANTHROPIC_API_KEY",
	      AKEY) },
	{ "anthropic base url", { "ANTHROPIC_API_KEY=" AKEY,
				  "ANTHROPIC_BASE_URL=http://127.0.0.1:9/" },
	  0, "anthropic:claude-x",
	  OK_(&provider_anthropic, "anthropic", "claude-x", "anthropic:claude-x",
	      "http://127.0.0.1:9", "ANTHROPIC_API_KEY", AKEY) },
	{ "ollama", { NULL }, 0, "ollama:llama3.2",
	  OK_(&provider_openai, "ollama", "llama3.2", "ollama:llama3.2",
	      "http://localhost:11434/v1", NULL, NULL) },
	{ "ollama ignores the openai key", { "OPENAI_API_KEY=" OKEY }, 0,
	  "ollama:llama3.2",
	  OK_(&provider_openai, "ollama", "llama3.2", "ollama:llama3.2",
	      "http://localhost:11434/v1", NULL, NULL) },
	{ "OLLAMA_HOST host:port", { "OLLAMA_HOST=myhost:1234" }, 0,
	  "ollama:llama3.2",
	  OK_(&provider_openai, "ollama", "llama3.2", "ollama:llama3.2",
	      "http://myhost:1234/v1", NULL, NULL) },
	{ "OLLAMA_HOST without a port means ollama's 11434",
	  { "OLLAMA_HOST=gpu-box" }, 0, "ollama:llama3.2",
	  OK_(&provider_openai, "ollama", "llama3.2", "ollama:llama3.2",
	      "http://gpu-box:11434/v1", NULL, NULL) },
	{ "OLLAMA_HOST with a scheme and a slash",
	  { "OLLAMA_HOST=https://gpu.example:8443/" }, 0, "ollama:qwen2.5:7b",
	  OK_(&provider_openai, "ollama", "qwen2.5:7b", "ollama:qwen2.5:7b",
	      "https://gpu.example:8443/v1", NULL, NULL) },
	{ "mock", { NULL }, 0, "mock:echo",
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },
	{ "mock needs no key even with keys set",
	  { "OPENAI_API_KEY=" OKEY, "ANTHROPIC_API_KEY=" AKEY }, 0, "mock:echo",
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },
	{ "bare gpt-4o", { "OPENAI_API_KEY=" OKEY }, 0, "gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      OPENAI_BASE, "OPENAI_API_KEY", OKEY) },
	{ "bare o3-mini", { "OPENAI_API_KEY=" OKEY }, 0, "o3-mini",
	  OK_(&provider_openai, "openai", "o3-mini", "openai:o3-mini",
	      OPENAI_BASE, "OPENAI_API_KEY", OKEY) },
	{ "bare claude-x", { "ANTHROPIC_API_KEY=" AKEY }, 0, "claude-x",
	  OK_(&provider_anthropic, "anthropic", "claude-x", "anthropic:claude-x",
	      ANT_BASE, "ANTHROPIC_API_KEY", AKEY) },
	{ "default model is openai:gpt-4o-mini", { "OPENAI_API_KEY=" OKEY }, 0,
	  NULL,
	  OK_(&provider_openai, "openai", "gpt-4o-mini", "openai:gpt-4o-mini",
	      OPENAI_BASE, "OPENAI_API_KEY", OKEY) },
	{ "empty name is the default", { "AICHAT_MODEL=mock:echo" }, 0, "",
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },
	{ "AICHAT_MODEL is the default", { "AICHAT_MODEL=mock:echo" }, 0, NULL,
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },

	/* ---- with a config file ---- */
	{ "alias", { NULL }, 1, "offline",
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },
	{ "alias of an alias", { "GROQ_API_KEY=" GKEY }, 1, "fast",
	  OK_(&provider_openai, "groq", "llama-3.1-8b", "groq:llama-3.1-8b",
	      "https://api.groq.com/openai/v1", "GROQ_API_KEY", GKEY) },
	{ "config provider", { "GROQ_API_KEY=" GKEY }, 1, "groq:mixtral",
	  OK_(&provider_openai, "groq", "mixtral", "groq:mixtral",
	      "https://api.groq.com/openai/v1", "GROQ_API_KEY", GKEY) },
	{ "config provider at the vendor's URL without a key", { NULL }, 1, "local:m",
	  BAD("no API key for provider local: give it api_key_env or api_key_cmd in the config file") },
	{ "config provider elsewhere without a key variable", { NULL }, 1, "lan:m",
	  OK_(&provider_openai, "lan", "m", "lan:m", "http://10.0.0.5:8000/v1", NULL,
	      NULL) },
	{ "config default model", { NULL }, 1, NULL,
	  OK_(&provider_mock, "mock", "echo", "mock:echo", NULL, NULL, NULL) },
	{ "config provider elsewhere: a missing key is no error",
	  { "OPENAI_API_KEY=" OKEY }, 1, "groq:mixtral",
	  OK_(&provider_openai, "groq", "mixtral", "groq:mixtral",
	      "https://api.groq.com/openai/v1", "GROQ_API_KEY", NULL) },

	/* ---- api_key_cmd (config 2) ---- */
	{ "openai's key from api_key_cmd", { NULL }, 2, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o", OPENAI_BASE,
	      "its api_key_cmd", CKEY) },
	{ "OPENAI_API_KEY wins over api_key_cmd", { "OPENAI_API_KEY=" OKEY }, 2,
	  "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o", OPENAI_BASE,
	      "OPENAI_API_KEY", OKEY) },
	{ "an amended openai keeps OPENAI_BASE_URL", { "OPENAI_BASE_URL=http://h:1/v1" },
	  2, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o", "http://h:1/v1",
	      "its api_key_cmd", CKEY) },
	{ "api_key_cmd failing", { NULL }, 2, "fails:m",
	  BAD("the api_key_cmd of provider fails failed with exit status 7") },
	{ "api_key_cmd printing nothing", { NULL }, 2, "silent:m",
	  BAD("the api_key_cmd of provider silent printed no key (exit status 0)") },
	{ "api_key_cmd printing two lines", { NULL }, 2, "chatty:m",
	  BAD("the api_key_cmd of provider chatty printed more than one line or a control character") },
	{ "api_key_cmd killed", { NULL }, 2, "killed:m",
	  BAD("the api_key_cmd of provider killed was killed by signal 9") },
	{ "api_key_cmd with the variable unset", { NULL }, 2, "vault:m",
	  OK_(&provider_anthropic, "vault", "m", "vault:m", ANT_BASE,
	      "its api_key_cmd", CKEY) },
	{ "alias cycle", { NULL }, 1, "loop1",
	  BAD(UNKNOWN_MODEL("loop1")) },

	/* ---- errors ---- */
	{ "mock:other", { NULL }, 0, "mock:other",
	  BAD("unknown mock model 'other' (available: mock:echo)") },
	{ "bare llama3", { "OPENAI_API_KEY=" OKEY }, 0, "llama3",
	  BAD(UNKNOWN_MODEL("llama3")) },
	{ "bare echo", { NULL }, 0, "echo", BAD(UNKNOWN_MODEL("echo")) },
	{ "missing openai key", { "ANTHROPIC_API_KEY=" AKEY }, 0,
	  "openai:gpt-4o-mini", BAD(NOKEY_OPENAI) },
	{ "empty openai key", { "OPENAI_API_KEY=" }, 0, "gpt-4o",
	  BAD(NOKEY_OPENAI) },
	{ "an OpenAI-compatible server needs no key", { "OPENAI_BASE_URL=http://localhost:8000/v1" },
	  0, "openai:qwen",
	  OK_(&provider_openai, "openai", "qwen", "openai:qwen", "http://localhost:8000/v1",
	      "OPENAI_API_KEY", NULL) },
	{ "nor an Anthropic-compatible one", { "ANTHROPIC_BASE_URL=http://127.0.0.1:9" },
	  0, "anthropic:claude-x",
	  OK_(&provider_anthropic, "anthropic", "claude-x", "anthropic:claude-x",
	      "http://127.0.0.1:9", "ANTHROPIC_API_KEY", NULL) },
	{ "the vendor's URL set by hand still needs the key",
	  { "OPENAI_BASE_URL=https://API.openai.com:443/v1/" }, 0, "openai:gpt-4o",
	  BAD(NOKEY_OPENAI) },
	{ "a look-alike host is not the vendor's",
	  { "OPENAI_BASE_URL=https://api.openai.com.example/v1" }, 0, "openai:gpt-4o",
	  OK_(&provider_openai, "openai", "gpt-4o", "openai:gpt-4o",
	      "https://api.openai.com.example/v1", "OPENAI_API_KEY", NULL) },
	{ "missing anthropic key", { "OPENAI_API_KEY=" OKEY }, 0,
	  "anthropic:claude-sonnet-4-6",
	  BAD("no API key for provider anthropic: set ANTHROPIC_API_KEY") },
	{ "unknown provider", { "OPENAI_API_KEY=" OKEY }, 0, "gemini:pro",
	  BAD("unknown provider 'gemini' " KNOWN) },
	{ "provider names are case-sensitive", { "OPENAI_API_KEY=" OKEY }, 0,
	  "OpenAI:gpt-4o", BAD("unknown provider 'OpenAI' " KNOWN) },
	{ "empty provider", { NULL }, 0, ":gpt-4o",
	  BAD("invalid model name ':gpt-4o': expected provider:model") },
	{ "empty model", { "OPENAI_API_KEY=" OKEY }, 0, "openai:",
	  BAD("invalid model name 'openai:': expected provider:model") },
	{ "bad AICHAT_MODEL", { "AICHAT_MODEL=nope" }, 0, NULL,
	  BAD(UNKNOWN_MODEL("nope")) },
};

static const char cfg_text[] =
	"{\"default_model\":\"offline\","
	" \"aliases\":{\"offline\":\"mock:echo\",\"fast\":\"quick\","
	"  \"quick\":\"groq:llama-3.1-8b\",\"loop1\":\"loop2\",\"loop2\":\"loop1\"},"
	" \"providers\":{\"groq\":{\"kind\":\"openai\","
	"  \"base_url\":\"https://api.groq.com/openai/v1/\","
	"  \"api_key_env\":\"GROQ_API_KEY\"},"
	"  \"local\":{\"kind\":\"anthropic\"},"
	"  \"lan\":{\"kind\":\"openai\",\"base_url\":\"http://10.0.0.5:8000/v1\"}}}";

static const char cmd_cfg_text[] =
	"{\"providers\":{\"openai\":{\"api_key_cmd\":\"printf '" CKEY "\\\\n\\\\n'\"},"
	"  \"fails\":{\"kind\":\"openai\",\"api_key_cmd\":\"echo " GKEY "; exit 7\"},"
	"  \"silent\":{\"kind\":\"openai\",\"api_key_cmd\":\"true\"},"
	"  \"chatty\":{\"kind\":\"openai\",\"api_key_cmd\":\"printf 'a\\\\nb\\\\n'\"},"
	"  \"killed\":{\"kind\":\"openai\",\"api_key_cmd\":\"kill -9 $$\"},"
	"  \"vault\":{\"kind\":\"anthropic\",\"api_key_env\":\"GROQ_API_KEY\","
	"     \"api_key_cmd\":\"echo " CKEY "\"}}}";

/* Whether s contains any 8-byte piece of key. */
static int leaks_key(const char *s, const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i + 8 <= n; i++) {
		char piece[9];

		memcpy(piece, key + i, 8);
		piece[8] = '\0';
		if (strstr(s, piece))
			return 1;
	}
	return 0;
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static void check_rcase(const struct rcase *c, const struct config *files)
{
	static const struct config empty;
	const struct config *cfg = c->with_cfg ? &files[c->with_cfg - 1] : &empty;
	struct model_ref m;
	struct err e;
	int rc;

	set_env(c->env);
	err_clear(&e);
	memset(&m, 0xAB, sizeof(m));
	rc = model_resolve(cfg, c->model, &m, &e);
	if (c->err) {
		is_int(rc, -1, "%s: fails", c->name);
		is_int(e.code, ERR_CONFIG, "%s: ERR_CONFIG", c->name);
		is_str(e.msg, c->err, "%s: message", c->name);
		ok(!leaks_key(e.msg, OKEY) && !leaks_key(e.msg, AKEY) &&
		   !leaks_key(e.msg, GKEY) && !leaks_key(e.msg, CKEY),
		   "%s: no key in the message", c->name);
	} else {
		if (!ok(rc == 0, "%s: resolves", c->name))
			printf("#   %s\n", e.msg);
		ok(m.ops == c->ops, "%s: ops %s", c->name, c->ops ? c->ops->kind : "");
		is_str(m.provider, c->provider, "%s: provider", c->name);
		is_str(m.model, c->mod, "%s: model", c->name);
		is_str(m.full, c->full, "%s: full", c->name);
		is_str(m.base_url, c->base, "%s: base_url", c->name);
		is_str(m.key_env, c->key_env, "%s: key_env", c->name);
		is_str(m.api_key, c->key, "%s: api_key", c->name);
	}
	model_ref_release(&m);
	ok(!m.provider && !m.model && !m.full && !m.base_url && !m.key_env &&
	   !m.api_key && !m.ops, "%s: release empties", c->name);
}

static void test_resolve(void)
{
	struct config files[2];
	struct err e;

	if (!ok(config_parse(&files[0], "test.json", cfg_text, sizeof(cfg_text) - 1,
			     &e) == 0, "test config parses"))
		printf("#   %s\n", e.msg);
	if (!ok(config_parse(&files[1], "cmd.json", cmd_cfg_text,
			     sizeof(cmd_cfg_text) - 1, &e) == 0, "api_key_cmd config parses"))
		printf("#   %s\n", e.msg);
	for (size_t i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++)
		check_rcase(&rcases[i], files);
	config_release(&files[0]);
	config_release(&files[1]);
	set_env(NULL);
}

/* ==== llm_http_error ==== */

struct hcase {
	const char *name;
	int ollama;             /* the model has no key */
	long status;
	const char *ctype;
	const char *body;
	enum err_code code;
	const char *msg;        /* exact */
};

#define JERR(msg, type, code) "{\"error\":{\"message\":\"" msg "\",\"type\":" \
	type ",\"code\":" code "}}"
#define LONGX "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxx"          /* 150 bytes */

static const struct hcase hcases[] = {
	/* ---- authentication: never the body ---- */
	{ "401 names the variable", 0, 401, "application/json",
	  JERR("Incorrect API key provided: " OKEY, "\"invalid_request_error\"",
	       "\"invalid_api_key\""),
	  ERR_UPSTREAM_AUTH,
	  "authentication failed for provider openai (check OPENAI_API_KEY)" },
	{ "403 plain text", 0, 403, "text/plain", "forbidden: region blocked",
	  ERR_UPSTREAM_AUTH,
	  "authentication failed for provider openai (check OPENAI_API_KEY)" },
	{ "401 html", 0, 401, "text/html", "<html><title>Denied</title></html>",
	  ERR_UPSTREAM_AUTH,
	  "authentication failed for provider openai (check OPENAI_API_KEY)" },
	{ "401 without a key variable", 1, 401, NULL, "",
	  ERR_UPSTREAM_AUTH, "authentication failed for provider ollama" },

	/* ---- 429 ---- */
	{ "429 insufficient_quota in code and type", 0, 429, "application/json",
	  JERR("You exceeded your current quota, please check your plan.",
	       "\"insufficient_quota\"", "\"insufficient_quota\""),
	  ERR_QUOTA, "openai: insufficient quota (HTTP 429): You exceeded your "
	  "current quota, please check your plan." },
	{ "429 insufficient_quota in code only", 0, 429, "application/json",
	  JERR("quota", "\"requests\"", "\"insufficient_quota\""),
	  ERR_QUOTA, "openai: insufficient quota (HTTP 429): quota" },
	{ "429 insufficient_quota in type only", 0, 429, "application/json",
	  JERR("quota", "\"insufficient_quota\"", "null"),
	  ERR_QUOTA, "openai: insufficient quota (HTTP 429): quota" },
	{ "429 rate limit", 0, 429, "application/json",
	  JERR("Rate limit reached for gpt-4o-mini", "\"requests\"",
	       "\"rate_limit_exceeded\""),
	  ERR_RATE_LIMITED,
	  "rate limited by openai (HTTP 429): Rate limit reached for gpt-4o-mini" },
	{ "429 empty body", 0, 429, NULL, "",
	  ERR_RATE_LIMITED, "rate limited by openai (HTTP 429)" },
	{ "quota code on another status is not a quota error", 0, 500,
	  "application/json", JERR("odd", "\"insufficient_quota\"", "null"),
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 500: odd" },

	/* ---- busy, timeouts, other errors ---- */
	{ "503", 0, 503, "application/json",
	  JERR("The engine is currently overloaded", "\"server_error\"", "null"),
	  ERR_OVERLOADED,
	  "openai returned HTTP 503: The engine is currently overloaded" },
	{ "529 anthropic overloaded", 0, 529, "application/json",
	  "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	  "\"message\":\"Overloaded\"}}",
	  ERR_OVERLOADED, "openai returned HTTP 529: Overloaded" },
	{ "504", 0, 504, "text/plain", "upstream request timeout",
	  ERR_UPSTREAM_TIMEOUT,
	  "openai returned HTTP 504: upstream request timeout" },
	{ "408", 0, 408, NULL, "", ERR_UPSTREAM_TIMEOUT,
	  "openai returned HTTP 408" },
	{ "500 json error.message", 0, 500, "application/json",
	  JERR("The server had an error while processing your request.",
	       "\"server_error\"", "null"),
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 500: The server had an "
	  "error while processing your request." },
	{ "400 top-level message", 0, 400, "application/json",
	  "{\"message\":\"bad request\"}",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 400: bad request" },
	{ "404 detail", 0, 404, "application/json", "{\"detail\":\"Not Found\"}",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 404: Not Found" },
	{ "404 error as a string", 1, 404, "application/json",
	  "{\"error\":\"model \\\"llama9\\\" not found, try pulling it first\"}",
	  ERR_UPSTREAM_ERROR, "ollama returned HTTP 404: model \"llama9\" not "
	  "found, try pulling it first" },
	{ "json without a message", 0, 500, "application/json", "{\"ok\":false}",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 500" },
	{ "plain text body", 0, 502, "text/plain", "Bad Gateway",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 502: Bad Gateway" },

	/* ---- html ---- */
	{ "html page", 0, 502, "text/html; charset=utf-8",
	  "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
	  "<body><h1>502 Bad Gateway</h1></body></html>",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 502: HTML error page: 502 Bad Gateway" },
	{ "html without a content type", 0, 503, NULL,
	  "  \n<HTML><HEAD><TITLE>Service\n Unavailable</TITLE></HEAD></HTML>",
	  ERR_OVERLOADED,
	  "openai returned HTTP 503: HTML error page: Service Unavailable" },
	{ "html without a title", 0, 500, "text/html", "<html><body>x</body></html>",
	  ERR_UPSTREAM_ERROR, "openai returned HTTP 500: HTML error page: no details" },
	{ "html with an unterminated title", 0, 500, "text/html",
	  "<html><title>cut", ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 500: HTML error page: no details" },

	/* ---- secrets and control characters ---- */
	{ "key in a json message is redacted", 0, 400, "application/json",
	  JERR("Invalid key " OKEY " for this org", "\"invalid_request_error\"",
	       "null"),
	  ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 400: Invalid key [redacted] for this org" },
	{ "key twice in plain text is redacted", 0, 500, "text/plain",
	  "key=" OKEY ";again=" OKEY, ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 500: key=[redacted];again=[redacted]" },
	{ "key in an html title is redacted", 0, 502, "text/html",
	  "<title>token " OKEY " rejected</title>", ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 502: HTML error page: token [redacted] rejected" },
	{ "key cut by the length limit does not leak", 0, 500, "text/plain",
	  LONGX " " OKEY, ERR_UPSTREAM_ERROR, NULL },
	{ "control characters in plain text", 0, 500, "text/plain",
	  "line1\nline2\r\n\tx\x01y\x1b[31mz\x7f", ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 500: line1 line2 x yz" },
	{ "control characters in a json message", 0, 500, "application/json",
	  JERR("a\\u0007b\\nc", "null", "null"), ERR_UPSTREAM_ERROR,
	  "openai returned HTTP 500: a b c" },
};

static void check_hcase(const struct hcase *c)
{
	struct model_ref m = { 0 };
	struct err e;

	if (c->ollama) {
		m.ops = &provider_openai;
		m.provider = "ollama";
	} else {
		m.ops = &provider_openai;
		m.provider = "openai";
		m.key_env = "OPENAI_API_KEY";
		m.api_key = OKEY;
	}
	err_clear(&e);
	llm_http_error(&m, c->status, c->ctype, c->body, strlen(c->body), &e);
	is_int(e.code, c->code, "%s: code %s", c->name, err_code_name(c->code));
	if (c->msg)
		is_str(e.msg, c->msg, "%s: message", c->name);
	if (!ok(!leaks_key(e.msg, OKEY), "%s: no part of the key", c->name))
		printf("#   %s\n", e.msg);
	ok(!has_control(e.msg), "%s: no control characters", c->name);
}

/* Provider messages go through the trust boundary (trust.h); the key
 * the provider holds is one of its secrets once resolved. */
static void test_clean_message(void)
{
	char dst[64];

	trust_add_secret(OKEY);
	trust_clean(dst, sizeof(dst), "abc", 3);
	is_str(dst, "abc", "clean: plain");
	trust_clean(dst, sizeof(dst), OKEY, strlen(OKEY));
	is_str(dst, "[redacted]", "clean: the key alone");
	trust_clean(dst, 8, "0123456789", 10);
	is_str(dst, "0123456", "clean: cut to the capacity");
	trust_clean(dst, 8, "ab " OKEY, 3 + strlen(OKEY));
	ok(!leaks_key(dst, OKEY) && strlen(dst) < 8,
	   "clean: key at the capacity does not leak ('%s')", dst);
	trust_clean(dst, sizeof(dst), "  a \n\n b  ", 10);
	ok(!has_control(dst) && strstr(dst, "a") && strstr(dst, "b"),
	   "clean: blank runs ('%s')", dst);
	trust_clean(dst, sizeof(dst), "a\0b", 3);
	ok(!has_control(dst), "clean: NUL inside is dropped");
	trust_clean(dst, 1, "xyz", 3);
	is_str(dst, "", "clean: capacity of one");
}

/* ==== err.c ==== */

static void test_err(void)
{
	static const struct {
		enum err_code code;
		const char *name;
		int http, exit;    /* exit: the number README documents */
	} t[] = {
		{ ERR_OK, "ok", 200, 0 },
		{ ERR_USAGE, "usage", 400, 2 },
		{ ERR_INVALID_REQUEST, "invalid_request", 422, 2 },
		{ ERR_CONFIG, "config_error", 500, 3 },
		{ ERR_UPSTREAM_AUTH, "upstream_auth_failed", 502, 4 },
		{ ERR_RATE_LIMITED, "rate_limited", 429, 4 },
		{ ERR_QUOTA, "insufficient_quota", 429, 4 },
		{ ERR_UPSTREAM_TIMEOUT, "upstream_timeout", 504, 4 },
		{ ERR_OVERLOADED, "overloaded", 503, 4 },
		{ ERR_CANCELLED, "cancelled", 499, 130 },
		{ ERR_INTERNAL, "internal_error", 500, 1 },
	};
	struct err e;
	int distinct = 1, named = 1;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		is_str(err_code_name(t[i].code), t[i].name, "err name of %s", t[i].name);
		is_int(err_http_status(t[i].code), t[i].http, "err http of %s",
		       t[i].name);
		is_int(err_exit_status(t[i].code), t[i].exit, "err exit of %s",
		       t[i].name);
	}

	for (int i = 0; i < ERR__COUNT; i++) {
		const char *a = err_code_name((enum err_code)i);

		if (!a || !*a || strspn(a, "abcdefghijklmnopqrstuvwxyz_") != strlen(a))
			named = 0;
		for (int j = 0; a && j < i; j++)
			if (!strcmp(a, err_code_name((enum err_code)j)))
				distinct = 0;
		if (err_http_status((enum err_code)i) < 100 ||
		    err_http_status((enum err_code)i) > 599)
			named = 0;
		if (i != ERR_OK && err_exit_status((enum err_code)i) == EXIT_OK)
			named = 0;
	}
	ok(named, "every code has a snake_case name, an HTTP status and a failing exit");
	ok(distinct, "every code has a distinct name");
	is_str(err_code_name(ERR__COUNT), "internal_error", "out-of-range name");
	is_int(err_http_status((enum err_code)-1), 500, "out-of-range http status");
	is_int(err_exit_status(ERR__COUNT), EXIT_RUNTIME, "out-of-range exit status");

	is_int(err_set(&e, ERR_IO, "cannot read '%s'", "x"), -1, "err_set returns -1");
	is_int(e.code, ERR_IO, "err_set code");
	is_str(e.msg, "cannot read 'x'", "err_set message");
	is_int(err_set(NULL, ERR_IO, "x"), -1, "err_set with NULL returns -1");
	err_clear(&e);
	ok(e.code == ERR_OK && e.msg[0] == '\0', "err_clear");
	{
		char big[600];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		err_set(&e, ERR_INTERNAL, "%s", big);
		is_int(strlen(e.msg), sizeof(e.msg) - 1, "err_set truncates long messages");
	}
}

int main(void)
{
	trust_add_secret(OKEY);
	test_resolve();
	for (size_t i = 0; i < sizeof(hcases) / sizeof(hcases[0]); i++)
		check_hcase(&hcases[i]);
	test_clean_message();
	test_err();
	return tap_done();
}
