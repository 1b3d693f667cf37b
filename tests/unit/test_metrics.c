/*
 * test_metrics.c - unit tests for serve's metrics (src/serve/metrics.c).
 *
 * Table-driven: a fresh object must show HELP and TYPE for every family,
 * samples only for the families without labels; after a fixed sequence of
 * calls the exposition must hold exact lines (counters, the gauge, whole
 * histograms with cumulative buckets) and must not hold others; label
 * values are escaped and cut; a family stops growing at its series cap.
 * Every rendering is also checked for shape: each sample belongs to the
 * family whose HELP and TYPE came just before it.
 */
#include "aichat/metrics.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *render(const struct metrics *m)
{
	struct buf b;

	buf_init(&b, 0);
	metrics_render(m, &b);
	return buf_detach(&b);
}

/* Whether text has line (without its newline) as a whole line. */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		if (strncmp(p, line, n) == 0 && p[n] == '\n')
			return 1;
		if (!strchr(p, '\n'))
			break;
	}
	return 0;
}

/* Whether the lines, in this order and one after the other, are in text. */
static int has_block(const char *text, const char *const *lines)
{
	struct buf want;
	const char *q;

	buf_init(&want, 0);
	for (; *lines; lines++)
		buf_printf(&want, "%s\n", *lines);
	for (q = strstr(text, want.ptr); q && q != text && q[-1] != '\n';
	     q = strstr(q + 1, want.ptr))
		;
	buf_release(&want);
	return q != NULL;
}

static size_t count_prefix(const char *text, const char *prefix)
{
	size_t n = 0, len = strlen(prefix);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		if (strncmp(p, prefix, len) == 0)
			n++;
		if (!strchr(p, '\n'))
			break;
	}
	return n;
}

/* NULL if text is a well-formed exposition, else why not. */
static const char *shape_bad(const char *text)
{
	static char why[160];
	char family[128] = "";
	int typed = 0;
	size_t n;

	if (*text && text[strlen(text) - 1] != '\n')
		return "no newline at the end";
	for (const char *p = text; *p; p += n + 1) {
		n = strcspn(p, "\n");
		if (strncmp(p, "# HELP ", 7) == 0) {
			size_t k = strcspn(p + 7, " \n");
			snprintf(family, sizeof(family), "%.*s", (int)k, p + 7);
			typed = 0;
		} else if (strncmp(p, "# TYPE ", 7) == 0) {
			size_t k = strlen(family);
			if (strncmp(p + 7, family, k) != 0 || p[7 + k] != ' ')
				return "TYPE without its HELP";
			typed = 1;
		} else {
			size_t k = strlen(family);
			if (!typed || strncmp(p, family, k) != 0 ||
			    !strchr("{ _", p[k])) {
				snprintf(why, sizeof(why), "sample outside its "
					 "family: %.*s", (int)n, p);
				return why;
			}
		}
	}
	return NULL;
}

/* ==== a fresh object ==== */

static const struct {
	const char *name, *type;
	const char *sample;     /* the one sample, or NULL for none */
} fresh[] = {
	{ "aichat_http_requests_total", "counter", NULL },
	{ "aichat_http_request_duration_seconds", "histogram", NULL },
	{ "aichat_ttft_seconds", "histogram", NULL },
	{ "aichat_tokens_total", "counter", NULL },
	{ "aichat_cost_microdollars_total", "counter", NULL },
	{ "aichat_upstream_errors_total", "counter", NULL },
	{ "aichat_upstream_timeouts_total", "counter", NULL },
	{ "aichat_validation_failures_total", "counter", NULL },
	{ "aichat_streams_in_flight", "gauge", "aichat_streams_in_flight 0" },
	{ "aichat_stream_pauses_total", "counter", "aichat_stream_pauses_total 0" },
	{ "aichat_streams_cancelled_total", "counter", NULL },
	{ "aichat_cache_hits_total", "counter", "aichat_cache_hits_total 0" },
	{ "aichat_cache_misses_total", "counter", "aichat_cache_misses_total 0" },
	{ "aichat_rate_limited_total", "counter", NULL },
	{ "aichat_worker_connections_total", "counter", NULL },
};

static void test_fresh(void)
{
	struct metrics *m = metrics_new();
	char *text = render(m);
	char line[160];
	size_t i, samples = 0;

	is_str(shape_bad(text), NULL, "fresh: well formed");
	for (i = 0; i < sizeof(fresh) / sizeof(fresh[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", fresh[i].name);
		is_int(count_prefix(text, line), 1, "fresh: HELP %s",
		       fresh[i].name);
		snprintf(line, sizeof(line), "# TYPE %s %s", fresh[i].name,
			 fresh[i].type);
		ok(has_line(text, line), "fresh: %s", line);
		if (fresh[i].sample) {
			ok(has_line(text, fresh[i].sample), "fresh: %s",
			   fresh[i].sample);
			samples++;
		}
	}
	is_int(count_prefix(text, "#"), 2 * i, "fresh: no other comment");
	is_int(count_prefix(text, "aichat_"), samples,
	       "fresh: no sample in a family with labels");
	free(text);
	metrics_free(m);
	lives_ok(metrics_free(NULL), "metrics_free(NULL) is a no-op");
}

/* ==== after a sequence of calls ==== */

#define DUR "aichat_http_request_duration_seconds"
#define TTFT "aichat_ttft_seconds"

/* Exact lines that must be there. */
static const char *const want_lines[] = {
	"aichat_http_requests_total{route=\"/chat\",method=\"POST\",status=\"200\"} 3",
	"aichat_http_requests_total{route=\"/chat\",method=\"POST\",status=\"422\"} 1",
	"aichat_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 1",
	"aichat_tokens_total{model=\"openai:gpt-4o-mini\",kind=\"prompt\"} 15",
	"aichat_tokens_total{model=\"openai:gpt-4o-mini\",kind=\"completion\"} 34",
	"aichat_tokens_total{model=\"mock:echo\",kind=\"prompt\"} 1000000000000",
	"aichat_cost_microdollars_total{model=\"openai:gpt-4o-mini\"} 1257",
	"aichat_cost_microdollars_total{model=\"openai:gpt-4o\"} 4000000000000000",
	"aichat_upstream_errors_total{provider=\"openai\",code=\"upstream_timeout\"} 2",
	"aichat_upstream_errors_total{provider=\"openai\",code=\"upstream_error\"} 1",
	"aichat_upstream_errors_total{provider=\"anthropic\",code=\"overloaded\"} 1",
	"aichat_upstream_timeouts_total{provider=\"openai\"} 2",
	"aichat_validation_failures_total{route=\"/chat\"} 2",
	"aichat_streams_in_flight 1",
	"aichat_streams_cancelled_total{route=\"/v1/chat/completions\"} 2",
	"aichat_cache_hits_total 1",
	"aichat_cache_misses_total 2",
	"# TYPE aichat_rate_limited_total counter",
};

/* Prefixes of lines that must not be there. */
static const char *const unwanted[] = {
	"aichat_upstream_timeouts_total{provider=\"anthropic\"}",
	"aichat_rate_limited_total",
	DUR "_bucket{route=\"/chat\",method",
	TTFT "_bucket{model=\"bad\"",
};

/* Whole histogram series, in order. */
static const char *const want_chat[] = {
	DUR "_bucket{route=\"/chat\",le=\"0.005\"} 1",
	DUR "_bucket{route=\"/chat\",le=\"0.01\"} 1",
	DUR "_bucket{route=\"/chat\",le=\"0.025\"} 1",
	DUR "_bucket{route=\"/chat\",le=\"0.05\"} 1",
	DUR "_bucket{route=\"/chat\",le=\"0.1\"} 1",
	DUR "_bucket{route=\"/chat\",le=\"0.25\"} 2",
	DUR "_bucket{route=\"/chat\",le=\"0.5\"} 2",
	DUR "_bucket{route=\"/chat\",le=\"1\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"2.5\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"5\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"10\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"30\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"60\"} 3",
	DUR "_bucket{route=\"/chat\",le=\"+Inf\"} 4",
	DUR "_sum{route=\"/chat\"} 101.00390625",
	DUR "_count{route=\"/chat\"} 4",
	NULL
};

static const char *const want_health[] = {
	DUR "_bucket{route=\"/health\",le=\"60\"} 1",
	DUR "_bucket{route=\"/health\",le=\"+Inf\"} 1",
	DUR "_sum{route=\"/health\"} 0.001",
	DUR "_count{route=\"/health\"} 1",
	NULL
};

static const char *const want_ttft[] = {
	"# HELP " TTFT " Time from request to the first token from the model",
	"# TYPE " TTFT " histogram",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.005\"} 0",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.01\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.025\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.05\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.1\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.25\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"0.5\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"1\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"2.5\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"5\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"10\"} 1",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"30\"} 2",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"60\"} 3",
	TTFT "_bucket{model=\"openai:gpt-4o-mini\",le=\"+Inf\"} 3",
	TTFT "_sum{model=\"openai:gpt-4o-mini\"} 90.01",
	TTFT "_count{model=\"openai:gpt-4o-mini\"} 3",
	NULL
};

static void test_sequence(void)
{
	struct metrics *m = metrics_new();
	char *text, pfx[200];
	size_t i;

	/* 0.25 sits exactly on a bound, which is inclusive (le). */
	metrics_request(m, "/chat", "POST", 200, 0.00390625);
	metrics_request(m, "/chat", "POST", 200, 0.25);
	metrics_request(m, "/chat", "POST", 200, 0.75);
	metrics_request(m, "/chat", "POST", 422, 100);
	metrics_request(m, "/health", "GET", 200, 0.001);
	metrics_ttft(m, "openai:gpt-4o-mini", 0.01);
	metrics_ttft(m, "openai:gpt-4o-mini", 30);
	metrics_ttft(m, "openai:gpt-4o-mini", 60);
	metrics_ttft(m, "bad", NAN);
	metrics_tokens(m, "openai:gpt-4o-mini", 12, 34);
	metrics_tokens(m, "openai:gpt-4o-mini", 3, -1);
	metrics_tokens(m, "mock:echo", 1000000000000L, 0);
	metrics_cost(m, "openai:gpt-4o-mini", 1250);
	metrics_cost(m, "openai:gpt-4o-mini", 7);
	metrics_cost(m, "openai:gpt-4o-mini", -5);   /* never down */
	/* $4 billion in micro-dollars: still a whole number, printed
	 * exactly. */
	metrics_cost(m, "openai:gpt-4o", 4000000000000000LL);
	metrics_upstream_error(m, "openai", "upstream_timeout");
	metrics_upstream_error(m, "openai", "upstream_error");
	metrics_upstream_error(m, "openai", "upstream_timeout");
	metrics_upstream_error(m, "anthropic", "overloaded");
	metrics_validation_failure(m, "/chat");
	metrics_validation_failure(m, "/chat");
	metrics_streams_add(m, 1);
	metrics_streams_add(m, 1);
	metrics_streams_add(m, -1);
	metrics_stream_cancelled(m, "/v1/chat/completions");
	metrics_stream_cancelled(m, "/v1/chat/completions");
	metrics_cache(m, 1);
	metrics_cache(m, 0);
	metrics_cache(m, 0);

	text = render(m);
	is_str(shape_bad(text), NULL, "sequence: well formed");
	for (i = 0; i < sizeof(want_lines) / sizeof(want_lines[0]); i++)
		ok(has_line(text, want_lines[i]), "sequence: %s", want_lines[i]);
	for (i = 0; i < sizeof(unwanted) / sizeof(unwanted[0]); i++)
		is_int(count_prefix(text, unwanted[i]), 0, "sequence: no %s",
		       unwanted[i]);
	ok(has_block(text, want_chat), "sequence: /chat duration histogram");
	ok(has_block(text, want_health), "sequence: /health duration histogram");
	ok(has_block(text, want_ttft), "sequence: ttft histogram, HELP first");
	is_int(count_prefix(text, DUR "_count{"), 2,
	       "sequence: one duration series per route");
	snprintf(pfx, sizeof(pfx), "%s_bucket{route=\"/health\"", DUR);
	is_int(count_prefix(text, pfx), 14, "sequence: 14 buckets");
	is_int(count_prefix(text, TTFT "_count{"), 1,
	       "sequence: a NaN is not recorded");
	free(text);
	metrics_free(m);
}

/* ==== label values ==== */

static const struct {
	const char *name;
	const char *route;
	const char *want;       /* the line for it, counted once */
} labels[] = {
	{ "quote, backslash, newline", "a\"b\\c\nd",
	  "aichat_rate_limited_total{route=\"a\\\"b\\\\c\\nd\"} 1" },
	{ "valid UTF-8 kept", "/caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
	  "aichat_rate_limited_total{route=\"/caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"} 1" },
	{ "invalid UTF-8 replaced", "x\xFFy\xC3(\xED\xA0\x80z\xC0\xAF",
	  "aichat_rate_limited_total{route=\"x\xEF\xBF\xBDy\xEF\xBF\xBD(\xEF\xBF\xBD"
	  "\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\"} 1" },
	{ "truncated sequence at the end", "end\xE2\x82",
	  "aichat_rate_limited_total{route=\"end\xEF\xBF\xBD\xEF\xBF\xBD\"} 1" },
	{ "tab and CR kept", "t\tr\r",
	  "aichat_rate_limited_total{route=\"t\tr\r\"} 1" },
	{ "NULL reads as empty", NULL,
	  "aichat_rate_limited_total{route=\"\"} 1" },
};

static void test_labels(void)
{
	struct metrics *m = metrics_new();
	struct buf a, b, want;
	char *text;
	size_t i;

	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		metrics_rate_limited(m, labels[i].route);
	/* Values longer than 256 bytes are cut there, never inside a
	 * character, and share the series of their first 256 bytes. */
	buf_init(&a, 0);
	buf_init(&b, 0);
	buf_init(&want, 0);
	for (i = 0; i < 300; i++)
		buf_putc(&a, 'a');
	buf_printf(&b, "%.255s\xC3\xA9zzz", a.ptr);
	metrics_validation_failure(m, a.ptr);
	buf_putc(&a, 'b');
	metrics_validation_failure(m, a.ptr);
	metrics_validation_failure(m, b.ptr);
	text = render(m);
	is_str(shape_bad(text), NULL, "labels: well formed");
	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		ok(has_line(text, labels[i].want), "labels: %s", labels[i].name);
	buf_printf(&want, "aichat_validation_failures_total{route=\"%.256s\"} 2",
		   a.ptr);
	ok(has_line(text, want.ptr), "labels: long values cut at 256 bytes");
	buf_clear(&want);
	buf_printf(&want, "aichat_validation_failures_total{route=\"%.255s\"} 1",
		   a.ptr);
	ok(has_line(text, want.ptr), "labels: cut before a 2-byte character");
	free(text);
	buf_release(&a);
	buf_release(&b);
	buf_release(&want);
	metrics_free(m);
}

/* ==== the series cap ==== */

static void test_cap(void)
{
	struct metrics *m = metrics_new();
	char route[32], line[96];
	char *text;
	int i;

	for (i = 0; i < 2000; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		metrics_rate_limited(m, route);
		metrics_request(m, route, "GET", 404, 0.001);
	}
	metrics_rate_limited(m, "/r5");
	metrics_rate_limited(m, "/r1999");
	metrics_rate_limited(m, "other");
	text = render(m);
	is_str(shape_bad(text), NULL, "cap: well formed");
	is_int(count_prefix(text, "aichat_rate_limited_total{"), 1000,
	       "cap: 1000 series");
	ok(has_line(text, "aichat_rate_limited_total{route=\"/r0\"} 1"),
	   "cap: the first series kept");
	ok(has_line(text, "aichat_rate_limited_total{route=\"/r5\"} 2"),
	   "cap: a known series still counts");
	ok(has_line(text, "aichat_rate_limited_total{route=\"/r998\"} 1"),
	   "cap: the 999th series kept");
	is_int(count_prefix(text, "aichat_rate_limited_total{route=\"/r999\"}"),
	       0, "cap: the 1000th folded");
	ok(has_line(text, "aichat_rate_limited_total{route=\"other\"} 1003"),
	   "cap: the rest in \"other\"");
	is_int(count_prefix(text, "aichat_http_requests_total{"), 1000,
	       "cap: requests 1000 series");
	ok(has_line(text, "aichat_http_requests_total{route=\"other\","
		    "method=\"other\",status=\"other\"} 1001"),
	   "cap: every label of the fold is \"other\"");
	is_int(count_prefix(text, DUR "_count{"), 1000,
	       "cap: histogram 1000 series");
	snprintf(line, sizeof(line), "%s_count{route=\"other\"} 1001", DUR);
	ok(has_line(text, line), "cap: histogram fold");
	free(text);
	metrics_free(m);
}

int main(void)
{
	test_fresh();
	test_sequence();
	test_labels();
	test_cap();
	return tap_done();
}
