/*
 * serve.c - `aichat serve`: options in, server_run() out.
 *
 * The options are checked against a table like every other input; the
 * server itself lives in src/serve/.
 */
#include "aichat/cli.h"
#include "aichat/json.h"
#include "aichat/money.h"
#include "aichat/ratelimit.h"
#include "aichat/redis.h"
#include "aichat/server.h"
#include "aichat/xalloc.h"
#include "aichat/trust.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	O_MODEL, O_HOST, O_ALLOW_HOST, O_PORT, O_UNIX, O_API_KEY, O_API_KEY_FILE, O_INSECURE, O_RATE_LIMIT,
	O_TRUST_PROXY,
	O_WORKERS, O_MAX_UPSTREAM, O_MAX_QUEUE, O_CORS, O_MAX_BODY, O_TIMEOUT, O_DRAIN,
	O_MAX_CONN, O_MAX_CONN_IP, O_CLIENT_TIMEOUT, O_REQUEST_TIMEOUT, O_LOG_FORMAT, O_CACHE_TTL, O_CACHE_SIZE,
	O_BATCH_CONC, O_RETRIES, O_RAG_SEARCH_TIMEOUT, O_RAG_EMBED_TIMEOUT, O_LOG_CONV,
	O_REDIS, O_REDIS_PREFIX, O_REDIS_FAIL, O_REDIS_TIMEOUT,
	O_BUDGET, O_HELP,
};

const struct opt serve_opts[] = {
	[O_MODEL] = { 'm', "model", "MODEL", NULL,
		      "model for requests that name none (default: $AICHAT_MODEL, then the config file's; without any, such a request is refused)" },
	[O_HOST] = { 0, "host", "HOST", "host", "address to listen on" },
	[O_ALLOW_HOST] = { 0, "allow-host", "HOST", NULL,
			   "without API keys, also answer requests whose Host is HOST (repeatable; loopback names always)" },
	[O_PORT] = { 'p', "port", "PORT", "port", "port to listen on; 0 picks a free one" },
	[O_UNIX] = { 0, "unix", "PATH", NULL,
		     "listen on the unix socket PATH (mode 0600); alone, instead of TCP unless --host or --port is given" },
	[O_API_KEY] = { 0, "api-key", "KEY", NULL,
			"accept this API key (repeatable; also $AICHAT_API_KEYS, comma-separated)" },
	[O_API_KEY_FILE] = { 0, "api-key-file", "FILE", NULL,
			     "accept the API keys in FILE, one per line" },
	[O_INSECURE] = { 0, "insecure-no-auth", NULL, NULL,
			 "allow a non-loopback address without any API key" },
	[O_RATE_LIMIT] = { 0, "rate-limit", "RATE", NULL,
			   "requests per client, e.g. 10/minute (keyed by API key, else address)" },
	[O_TRUST_PROXY] = { 0, "trust-proxy", "ADDR", NULL,
			    "take the client address of a request from ADDR, a proxy such as nginx, from the last item of its X-Forwarded-For (repeatable)" },
	[O_WORKERS] = { 0, "workers", "N", "workers",
			"event loops, each on its own thread, serving as one server (also $AICHAT_WORKERS; default: the number of online cores, at most 64)" },
	[O_MAX_UPSTREAM] = { 0, "max-upstream", "N", "max_upstream",
			     "concurrent upstream calls; 0 = no bound" },
	[O_MAX_QUEUE] = { 0, "max-queue", "N", "max_queue",
			  "requests waiting for an upstream slot, or database writes waiting, before 503" },
	[O_CORS] = { 0, "cors-origin", "ORIGIN", NULL,
		     "allow browser calls from ORIGIN (or *); off by default" },
	[O_MAX_BODY] = { 0, "max-body", "BYTES", "max_body", "largest request body; larger is 413" },
	[O_TIMEOUT] = { 0, "timeout", "SECONDS", "timeout",
			"upstream time limit for non-streaming calls; then 504" },
	[O_DRAIN] = { 0, "drain-timeout", "SECONDS", "drain_timeout",
		      "on SIGTERM, time given to requests in flight" },
	[O_MAX_CONN] = { 0, "max-connections", "N", "max_connections",
			 "simultaneous client connections" },
	[O_MAX_CONN_IP] = { 0, "max-connections-per-ip", "N", "max_connections_per_ip",
			    "simultaneous connections from one address; 0 = no cap" },
	[O_CLIENT_TIMEOUT] = { 0, "client-timeout", "SECONDS", "client_timeout",
			       "drop a client idle or slower than this" },
	[O_REQUEST_TIMEOUT] = { 0, "request-timeout", "SECONDS", "request_timeout",
				"time a client has to send a whole request, head and body; then 408" },
	[O_LOG_FORMAT] = { 0, "log-format", "FORMAT", "log_format",
			   "request log on stderr: json or text" },
	[O_CACHE_TTL] = { 0, "cache-ttl", "SECONDS", "cache_ttl", "lifetime of a cached answer" },
	[O_CACHE_SIZE] = { 0, "cache-size", "N", "cache_size",
			   "answers kept in the cache; 0 turns it off" },
	[O_BATCH_CONC] = { 0, "batch-concurrency", "N", "batch_concurrency",
			   "upstream calls at once for one POST /batch" },
	[O_RETRIES] = { 0, "retries", "N", "retries",
			"retries after a failed connection, 408, 429, 500, 502-504 or 529" },
	[O_RAG_SEARCH_TIMEOUT] = { 0, "rag-search-timeout", "SECONDS", "rag_search_timeout",
				   "time limit of the search of /rag/query and /rag/search; then 504" },
	[O_RAG_EMBED_TIMEOUT] = { 0, "rag-embed-timeout", "SECONDS", "rag_embed_timeout",
				  "time limit for embedding a /rag query; then BM25 alone" },
	[O_LOG_CONV] = { 0, "log-conversations", NULL, NULL,
			 "record each POST /conversation in the conversation log" },
	[O_REDIS] = { 0, "redis", "URL", NULL,
		      "share rate limits, the cache and background jobs with other replicas through Redis at URL: redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH (also $AICHAT_REDIS_URL)" },
	[O_REDIS_PREFIX] = { 0, "redis-prefix", "PREFIX", "redis_prefix",
			     "namespace of every Redis key, so deployments can share one Redis" },
	[O_REDIS_FAIL] = { 0, "redis-fail", "MODE", "redis_fail",
			   "rate limits while Redis is down: open (allow) or closed (503); default closed for API keys, open for addresses" },
	[O_REDIS_TIMEOUT] = { 0, "redis-timeout", "SECONDS", "redis_timeout",
			      "longest wait for a Redis reply; then Redis counts as down" },
	[O_BUDGET] = { 0, "budget", "BUDGET", NULL,
		       "key:N=AMOUNT/day: the US dollars API key N may spend a UTC day, then 429 until midnight UTC (repeatable; also the config file's budgets)" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t serve_nopts = sizeof(serve_opts) / sizeof(serve_opts[0]);

static const char *const log_formats[] = { "json", "text", NULL };
static const char *const redis_fails[] = { "auto", "open", "closed", NULL };

static const struct field serve_fields[] = {
	{ "host", FIELD_STRING, 0, "\"127.0.0.1\"", 1, 255, NULL, NULL, "host" },
	{ "port", FIELD_INTEGER, 0, "8000", 0, 65535, NULL, NULL, "port" },
	{ "workers", FIELD_INTEGER, 0, NULL, 1, 64, NULL, NULL, "" },
	{ "max_upstream", FIELD_INTEGER, 0, "0", 0, 1000000, NULL, NULL, "" },
	{ "max_queue", FIELD_INTEGER, 0, "100", 0, 1000000, NULL, NULL, "" },
	{ "max_body", FIELD_INTEGER, 0, "1048576", 1, 1073741824, NULL, NULL, "" },
	{ "timeout", FIELD_NUMBER, 0, "30", 0.001, 86400, NULL, NULL, "" },
	{ "drain_timeout", FIELD_NUMBER, 0, "30", 0, 3600, NULL, NULL, "" },
	{ "max_connections", FIELD_INTEGER, 0, "10000", 1, 1000000, NULL, NULL, "" },
	{ "max_connections_per_ip", FIELD_INTEGER, 0, "1000", 0, 1000000, NULL, NULL, "" },
	{ "client_timeout", FIELD_INTEGER, 0, "30", 1, 3600, NULL, NULL, "" },
	{ "request_timeout", FIELD_NUMBER, 0, "30", 0.5, 3600, NULL, NULL, "" },
	{ "log_format", FIELD_STRING, 0, "\"json\"", FIELD_NO_BOUND, FIELD_NO_BOUND,
	  log_formats, NULL, "" },
	{ "cache_ttl", FIELD_NUMBER, 0, "300", 0, 86400, NULL, NULL, "" },
	{ "cache_size", FIELD_INTEGER, 0, "1000", 0, 1000000, NULL, NULL, "" },
	{ "batch_concurrency", FIELD_INTEGER, 0, "10", 1, 100, NULL, NULL, "" },
	{ "retries", FIELD_INTEGER, 0, "2", 0, 10, NULL, NULL, "" },
	{ "rag_search_timeout", FIELD_NUMBER, 0, "2", 0.001, 3600, NULL, NULL, "" },
	{ "rag_embed_timeout", FIELD_NUMBER, 0, "5", 0.001, 3600, NULL, NULL, "" },
	{ "redis_prefix", FIELD_STRING, 0, "\"aichat:\"", 1, 64, NULL, NULL, "" },
	{ "redis_fail", FIELD_STRING, 0, "\"auto\"", FIELD_NO_BOUND, FIELD_NO_BOUND,
	  redis_fails, NULL, "" },
	{ "redis_timeout", FIELD_NUMBER, 0, "0.1", 0.001, 60, NULL, NULL, "" },
};
static const struct schema serve_schema = {
	"ServeOptions", serve_fields, sizeof(serve_fields) / sizeof(serve_fields[0])
};

static void usage(FILE *f)
{
	const struct schema *const schemas[] = { &serve_schema, NULL };

	fputs("usage: aichat serve [options]\n"
	      "\n"
	      "Serve chat, conversations, batches and an OpenAI-compatible API over HTTP\n"
	      "(JSON and Server-Sent Events), on one event loop per core (--workers), all\n"
	      "one server to clients.  Listens on 127.0.0.1:8000\n"
	      "unless told otherwise; a chat page for the browser at /, API docs at /docs,\n"
	      "OpenAPI at /openapi.json.\n"
	      "\n"
	      "options:\n", f);
	opt_help(f, serve_opts, serve_nopts, schemas);
	fputs("\n"
	      "examples:\n"
	      "  aichat serve --port 8080\n"
	      "  AICHAT_API_KEYS=k1,k2 aichat serve --host 0.0.0.0 --rate-limit 60/minute\n"
	      "  curl -s localhost:8000/chat --json '{\"prompt\":\"hi\",\"model\":\"mock:echo\"}'\n"
	      "\n"
	      "See aichat-serve(1) for every route, the SSE format and the log format.\n", f);
}

/* Keys from --api-key, $AICHAT_API_KEYS and --api-key-file, owned. */
struct keys {
	char **v;
	size_t n;
};

/* Adds s (len bytes) without its blanks; -1 when nothing is left. */
static int keys_add(struct keys *k, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
		       s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (!len)
		return -1;
	k->v = xrealloc(k->v, (k->n + 1) * sizeof(*k->v));
	k->v[k->n++] = xstrndup(s, len);
	return 0;
}

/* Adds every key of list, sep-separated; -1 when one is empty (",,"). */
static int keys_add_list(struct keys *k, const char *list, char sep)
{
	int rc = 0;

	for (;;) {
		const char *end = strchr(list, sep);
		size_t n = end ? (size_t)(end - list) : strlen(list);
		if (keys_add(k, list, n) < 0)
			rc = -1;
		if (!end)
			return rc;
		list = end + 1;
	}
}

static int keys_load_file(struct keys *k, const char *path, struct err *e)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	size_t before = k->n;

	if (!f)
		return err_set(e, ERR_CONFIG, "cannot read API key file '%s': %s",
			       path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#')
			keys_add(k, line, strlen(line));   /* blank lines skipped */
	fclose(f);
	if (k->n == before)
		return err_set(e, ERR_USAGE, "API key file '%s' holds no key", path);
	return 0;
}

/* "key:N" with N from 1 to nkeys: N; else 0. */
static size_t key_label(const char *s, size_t len, size_t nkeys)
{
	size_t n = 0;

	if (len < 5 || strncmp(s, "key:", 4) || s[4] == '0')
		return 0;
	for (size_t i = 4; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || n > 1000000)
			return 0;
		n = n * 10 + (size_t)(s[i] - '0');
	}
	return n <= nkeys ? n : 0;
}

/*
 * The daily budgets of the keys into *out (nkeys of them, -1 for none,
 * owned): the config's "budgets", then each --budget over them.  Prints
 * the error and returns its exit status, or EXIT_OK.
 */
static int key_budgets(const struct opt_result *r, const struct config *cfg,
		       size_t nkeys, int64_t **out)
{
	int64_t *b;
	int any = 0;

	*out = NULL;
	if (!nkeys) {
		if (r->seen[O_BUDGET]) {
			fputs("aichat: serve: '--budget' needs API keys: a budget belongs to a key (--api-key, $AICHAT_API_KEYS or --api-key-file)\n",
			      stderr);
			return EXIT_USAGE;
		}
		return EXIT_OK;   /* the config's budgets name no key here */
	}
	b = xmalloc(nkeys * sizeof(*b));
	for (size_t i = 0; i < nkeys; i++)
		b[i] = -1;
	for (size_t i = 0; i < cfg->nkey_budgets; i++) {
		const char *k = cfg->key_budgets[i].key;
		size_t n = key_label(k, strlen(k), nkeys);
		if (!n) {
			fprintf(stderr, "aichat: serve: config file '%s': 'budgets.%.32s': no such API key: keys are key:1 to key:%zu, in the order --api-key, $AICHAT_API_KEYS, --api-key-file\n",
				cfg->path, k, nkeys);
			free(b);
			return EXIT_CONFIG;
		}
		b[n - 1] = cfg->key_budgets[i].per_day;
		any = 1;
	}
	for (size_t i = 0; i < r->ngiven; i++) {
		const char *v = r->given[i].value, *eq;
		int64_t micros;
		size_t n;

		if (r->given[i].opt != O_BUDGET)
			continue;
		eq = strchr(v, '=');
		if (!eq || money_parse_per_day(eq + 1, &micros) < 0) {
			fprintf(stderr, "aichat: serve: invalid value '%.64s' for '--budget': must be key:N=AMOUNT/day, such as key:1=5.00/day\n",
				v);
			free(b);
			return EXIT_USAGE;
		}
		if (!(n = key_label(v, (size_t)(eq - v), nkeys))) {
			fprintf(stderr, "aichat: serve: invalid value '%.64s' for '--budget': no such API key: keys are key:1 to key:%zu, in the order --api-key, $AICHAT_API_KEYS, --api-key-file\n",
				v, nkeys);
			free(b);
			return EXIT_USAGE;
		}
		b[n - 1] = micros;
		any = 1;
	}
	if (!any) {
		free(b);
		return EXIT_OK;
	}
	*out = b;
	return EXIT_OK;
}

/* A host name or address, without a port: "example.com", "10.0.0.2",
 * "::1" or "[::1]". */
static int valid_allow_host(const char *h)
{
	const char *colon = strchr(h, ':');

	if (!*h || strlen(h) > 253 || h[strcspn(h, " \t\r\n/@?#")])
		return 0;
	if (h[0] == '[')
		return strchr(h, ']') && !strchr(h, ']')[1];
	return !colon || strchr(colon + 1, ':');   /* one colon: a port */
}

int cmd_serve(int argc, char **argv)
{
	struct opt_result r = { 0 };
	struct server_opts so;
	struct config cfg = { 0 };
	struct keys keys = { 0 };
	int64_t *budgets = NULL;
	const char **allow = NULL;
	size_t nallow = 0;
	char **proxies = NULL;
	size_t nproxies = 0;
	cJSON *o = NULL;
	struct err e;
	double d;
	int status;

	err_clear(&e);
	if (opt_parse(serve_opts, serve_nopts, argc, argv, "serve", &r, &e) < 0) {
		status = cli_fail("serve", &e);
		goto cleanup;
	}
	if (r.seen[O_HELP]) {
		usage(stdout);
		status = EXIT_OK;
		goto cleanup;
	}
	if (r.noperands) {
		fprintf(stderr, "aichat: serve: unexpected argument '%.64s' (see 'aichat serve --help')\n",
			r.operands[0]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	o = cJSON_CreateObject();
	if (opt_validate(serve_opts, serve_nopts, &r, &serve_schema, o, "serve")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	server_opts_default(&so);
	so.host = json_str(o, "host");
	json_num(o, "port", &d), so.port = (int)d;
	if (json_num(o, "workers", &d) == 0)
		so.workers = (int)d;
	else if (env_get("AICHAT_WORKERS")) {
		const char *v = env_get("AICHAT_WORKERS");
		char *end;
		long w;
		errno = 0;
		w = strtol(v, &end, 10);
		if (!*v || *end || errno || w < 1 || w > 64) {
			fprintf(stderr, "aichat: serve: invalid value '%.32s' for 'AICHAT_WORKERS': must be an integer, 1..64\n",
				v);
			status = EXIT_USAGE;
			goto cleanup;
		}
		so.workers = (int)w;
	} else {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		so.workers = cores < 1 ? 1 : cores > 64 ? 64 : (int)cores;
	}
	json_num(o, "max_upstream", &d), so.max_upstream = (int)d;
	json_num(o, "max_queue", &d), so.max_queue = (int)d;
	json_num(o, "max_body", &d), so.max_body = (size_t)d;
	json_num(o, "timeout", &d), so.upstream_timeout_ms = (int64_t)(d * 1000);
	json_num(o, "drain_timeout", &d), so.drain_ms = (int64_t)(d * 1000);
	json_num(o, "max_connections", &d), so.max_connections = (unsigned)d;
	json_num(o, "client_timeout", &d), so.client_timeout_s = (unsigned)d;
	json_num(o, "max_connections_per_ip", &d), so.max_connections_per_ip = (unsigned)d;
	json_num(o, "request_timeout", &d), so.request_timeout_ms = (int64_t)(d * 1000);
	json_num(o, "cache_ttl", &d), so.cache_ttl_ms = (int64_t)(d * 1000);
	json_num(o, "cache_size", &d), so.cache_size = (size_t)d;
	json_num(o, "batch_concurrency", &d), so.batch_concurrency = (int)d;
	json_num(o, "retries", &d), so.retries = (int)d;
	json_num(o, "rag_search_timeout", &d), so.rag_search_ms = (int64_t)(d * 1000);
	json_num(o, "rag_embed_timeout", &d), so.rag_embed_ms = (int64_t)(d * 1000);
	so.log_text = !strcmp(json_str(o, "log_format"), "text");
	so.redis_url = r.values[O_REDIS] ? r.values[O_REDIS] : env_get("AICHAT_REDIS_URL");
	if (so.redis_url && !*so.redis_url)
		so.redis_url = NULL;   /* AICHAT_REDIS_URL= turns it off */
	so.redis_prefix = json_str(o, "redis_prefix");
	so.redis_fail = !strcmp(json_str(o, "redis_fail"), "open") ? 1 :
			!strcmp(json_str(o, "redis_fail"), "closed") ? 2 : 0;
	json_num(o, "redis_timeout", &d), so.redis_timeout_ms = (int64_t)(d * 1000 + 0.5);
	if (so.redis_url) {
		struct redis_target t;
		if (redis_url_parse(so.redis_url, &t, &e) < 0) {
			status = cli_fail("serve", &e);
			goto cleanup;
		}
	}
	so.insecure_no_auth = r.seen[O_INSECURE] > 0;
	so.log_conversations = r.seen[O_LOG_CONV] > 0;
	so.cors_origin = r.values[O_CORS];
	so.unix_path = r.values[O_UNIX];
	for (size_t i = 0; i < r.ngiven; i++)
		if (r.given[i].opt == O_ALLOW_HOST) {
			const char *h = r.given[i].value;
			if (!valid_allow_host(h)) {
				fprintf(stderr, "aichat: serve: invalid value '%.64s' for '--allow-host': must be a host name or address, without a port\n",
					h);
				status = EXIT_USAGE;
				goto cleanup;
			}
			allow = xrealloc(allow, (nallow + 1) * sizeof(*allow));
			allow[nallow++] = h;
		}
	so.allow_hosts = allow;
	so.nallow_hosts = nallow;
	for (size_t i = 0; i < r.ngiven; i++)
		if (r.given[i].opt == O_TRUST_PROXY) {
			const char *a = r.given[i].value;
			unsigned char bin[sizeof(struct in6_addr)];
			char text[INET6_ADDRSTRLEN];
			int v4 = inet_pton(AF_INET, a, bin) == 1;
			if (!v4 && inet_pton(AF_INET6, a, bin) != 1) {
				fprintf(stderr, "aichat: serve: invalid value '%.64s' for '--trust-proxy': must be an IPv4 or IPv6 address\n",
					a);
				status = EXIT_USAGE;
				goto cleanup;
			}
			/* As the server writes a peer's address, to compare. */
			inet_ntop(v4 ? AF_INET : AF_INET6, bin, text, sizeof(text));
			proxies = xrealloc(proxies, (nproxies + 1) * sizeof(*proxies));
			proxies[nproxies++] = xstrdup(text);
		}
	so.trusted_proxies = (const char *const *)proxies;
	so.ntrusted_proxies = nproxies;
	so.tcp = !so.unix_path || r.seen[O_HOST] || r.seen[O_PORT];
	if (env_get("AICHAT_SSE_KEEPALIVE_MS")) {
		/* Below 100 ms a keep-alive is a flood, not a keep-alive. */
		long ms = atol(env_get("AICHAT_SSE_KEEPALIVE_MS"));
		if (ms < 100) {
			fprintf(stderr, "aichat: serve: invalid value '%.32s' for 'AICHAT_SSE_KEEPALIVE_MS': must be >= 100\n",
				env_get("AICHAT_SSE_KEEPALIVE_MS"));
			status = EXIT_CONFIG;
			goto cleanup;
		}
		so.keepalive_ms = ms;
	}
	if (r.values[O_RATE_LIMIT] &&
	    ratelimit_parse(r.values[O_RATE_LIMIT], &so.rate_per_second,
			    &so.rate_burst, &e) < 0) {
		status = cli_fail("serve", &e);
		goto cleanup;
	}
	/* An empty key would mean no auth at all: never start that way. */
	for (size_t i = 0; i < r.ngiven; i++)
		if (r.given[i].opt == O_API_KEY &&
		    keys_add(&keys, r.given[i].value, strlen(r.given[i].value)) < 0) {
			fprintf(stderr, "aichat: serve: invalid value '%.64s' for '--api-key': must not be empty\n",
				r.given[i].value);
			status = EXIT_USAGE;
			goto cleanup;
		}
	if (env_get("AICHAT_API_KEYS") &&
	    keys_add_list(&keys, env_get("AICHAT_API_KEYS"), ',') < 0) {
		/* Not echoed: the others are secrets. */
		fputs("aichat: serve: invalid value for 'AICHAT_API_KEYS': a key is empty (keys are comma-separated)\n",
		      stderr);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (r.values[O_API_KEY_FILE] &&
	    keys_load_file(&keys, r.values[O_API_KEY_FILE], &e) < 0) {
		status = cli_fail("serve", &e);
		goto cleanup;
	}
	so.api_keys = (const char *const *)keys.v;
	so.nkeys = keys.n;
	for (size_t i = 0; i < keys.n; i++)
		trust_add_secret(keys.v[i]);
	if (config_load(&cfg, &e) < 0) {
		status = cli_fail("serve", &e);
		goto cleanup;
	}
	if ((status = key_budgets(&r, &cfg, keys.n, &budgets)) != EXIT_OK)
		goto cleanup;
	/* The config file's "redis" where no option (and, for the URL, no
	 * $AICHAT_REDIS_URL) says otherwise: the command line wins. */
	if (!r.values[O_REDIS] && !env_get("AICHAT_REDIS_URL") && cfg.redis_url) {
		struct redis_target t;
		so.redis_url = cfg.redis_url;
		if (redis_url_parse(so.redis_url, &t, &e) < 0) {
			fprintf(stderr, "aichat: serve: config file '%s': 'redis.url': %s\n",
				cfg.path, e.msg);
			status = EXIT_CONFIG;
			goto cleanup;
		}
	}
	if (!r.seen[O_REDIS_PREFIX] && cfg.redis_prefix)
		so.redis_prefix = cfg.redis_prefix;
	if (!r.seen[O_REDIS_FAIL] && cfg.redis_fail)
		so.redis_fail = !strcmp(cfg.redis_fail, "open") ? 1 :
				!strcmp(cfg.redis_fail, "closed") ? 2 : 0;
	if (!r.seen[O_REDIS_TIMEOUT] && cfg.redis_timeout > 0)
		so.redis_timeout_ms = (int64_t)(cfg.redis_timeout * 1000 + 0.5);
	so.key_budgets = budgets;
	so.default_model = r.values[O_MODEL];
	if (so.default_model) {
		/* A default that cannot answer is a mistake to report now. */
		struct model_ref m;
		int bad = model_resolve(&cfg, so.default_model, &m, &e) < 0;
		model_ref_release(&m);
		if (bad) {
			status = cli_fail("serve", &e);
			goto cleanup;
		}
	}
	status = server_run(&so, &cfg, &e) < 0 ? cli_fail("serve", &e) : EXIT_OK;

cleanup:
	for (size_t i = 0; i < keys.n; i++)
		free(keys.v[i]);
	free(keys.v);
	free(budgets);
	free(allow);
	for (size_t i = 0; i < nproxies; i++)
		free(proxies[i]);
	free(proxies);
	cJSON_Delete(o);
	config_release(&cfg);
	opt_result_release(&r);
	return status;
}
