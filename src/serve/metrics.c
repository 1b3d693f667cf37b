/*
 * metrics.c - serve's counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * Each family holds an array of series in creation order, found by a
 * linear scan that compares a hash first; once a series exists, recording
 * into it allocates nothing.  Label values come from clients (routes,
 * model names), so memory is bounded twice: a stored value keeps at most
 * LABEL_MAX bytes (cut at a character boundary; the lookup compares the
 * same cut, so long values share a series), and a family keeps at most
 * MAX_SERIES series, the last of which folds every further label set into
 * one series whose values are all "other".  Values are stored raw and
 * escaped only when rendered; invalid UTF-8 is rendered as U+FFFD so one
 * odd byte cannot make a scraper reject the whole page.
 *
 * The workers of one server (--workers) share one struct metrics: every
 * record and the rendering hold its lock, so /metrics is the sum.
 */
#include "aichat/metrics.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 3
#define MAX_SERIES 1000
#define LABEL_MAX 256

/* Upper bounds of the latency buckets, in seconds; +Inf comes after. */
static const double bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

enum kind { COUNTER, GAUGE, HISTOGRAM };

enum fam_id {
	F_REQUESTS,
	F_DURATION,
	F_TTFT,
	F_TOKENS,
	F_COST,
	F_UPSTREAM_ERRORS,
	F_UPSTREAM_TIMEOUTS,
	F_VALIDATION,
	F_STREAMS,
	F_STREAM_PAUSES,
	F_STREAMS_CANCELLED,
	F_CACHE_HITS,
	F_CACHE_MISSES,
	F_RATE_LIMITED,
	F_WORKER_CONNECTIONS,
	F__COUNT
};

static const struct fam_def {
	const char *name;
	const char *help;
	enum kind kind;
	int nlabels;
	const char *labels[MAX_LABELS];
} defs[F__COUNT] = {
	[F_REQUESTS] = { "aichat_http_requests_total",
		"HTTP requests answered, by route, method and status",
		COUNTER, 3, { "route", "method", "status" } },
	[F_DURATION] = { "aichat_http_request_duration_seconds",
		"Time from request to the end of its response",
		HISTOGRAM, 1, { "route" } },
	[F_TTFT] = { "aichat_ttft_seconds",
		"Time from request to the first token from the model",
		HISTOGRAM, 1, { "model" } },
	[F_TOKENS] = { "aichat_tokens_total",
		"Tokens used, by model and kind (prompt or completion)",
		COUNTER, 2, { "model", "kind" } },
	[F_COST] = { "aichat_cost_microdollars_total",
		"What the exchanges with a priced model cost, in millionths of a US dollar, by model",
		COUNTER, 1, { "model" } },
	[F_UPSTREAM_ERRORS] = { "aichat_upstream_errors_total",
		"Failed upstream calls, by provider and error code",
		COUNTER, 2, { "provider", "code" } },
	[F_UPSTREAM_TIMEOUTS] = { "aichat_upstream_timeouts_total",
		"Upstream calls that timed out, by provider",
		COUNTER, 1, { "provider" } },
	[F_VALIDATION] = { "aichat_validation_failures_total",
		"Requests refused by validation, by route",
		COUNTER, 1, { "route" } },
	[F_STREAMS] = { "aichat_streams_in_flight",
		"Streaming responses currently open",
		GAUGE, 0, { NULL } },
	[F_STREAM_PAUSES] = { "aichat_stream_pauses_total",
		"Upstream reads paused because a stream's client fell behind",
		COUNTER, 0, { NULL } },
	[F_STREAMS_CANCELLED] = { "aichat_streams_cancelled_total",
		"Streams the client left before their end (the upstream call cancelled), by route",
		COUNTER, 1, { "route" } },
	[F_CACHE_HITS] = { "aichat_cache_hits_total",
		"Answers served from the cache",
		COUNTER, 0, { NULL } },
	[F_CACHE_MISSES] = { "aichat_cache_misses_total",
		"Cacheable requests not found in the cache",
		COUNTER, 0, { NULL } },
	[F_RATE_LIMITED] = { "aichat_rate_limited_total",
		"Requests refused by the rate limit, by route",
		COUNTER, 1, { "route" } },
	[F_WORKER_CONNECTIONS] = { "aichat_worker_connections_total",
		"Client connections accepted, by the worker (--workers) whose loop took them",
		COUNTER, 1, { "worker" } },
};

struct series {
	char *values[MAX_LABELS];       /* owned, at most LABEL_MAX bytes */
	uint32_t hash;
	double value;                   /* counter or gauge */
	uint64_t count;                 /* histogram: observations */
	double sum;                     /* histogram: their sum */
	uint64_t *buckets;              /* histogram: NBOUNDS + 1 counts */
};

struct family {
	struct series *series;
	size_t n, cap;
};

struct metrics {
	pthread_mutex_t lock;
	struct family fam[F__COUNT];
};

static const char *const other_values[MAX_LABELS] = {
	"other", "other", "other",
};

/* Length of v as stored: at most LABEL_MAX bytes, never ending inside a
 * UTF-8 sequence. */
static size_t label_len(const char *v)
{
	size_t n = strnlen(v, LABEL_MAX + 1);

	if (n > LABEL_MAX) {
		n = LABEL_MAX;
		while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
			n--;
	}
	return n;
}

/* FNV-1a over the stored form of the values, a 0xFF between them (a byte
 * that UTF-8 never uses). */
static uint32_t labels_hash(const char *const *v, const size_t *len, int n)
{
	uint32_t h = 2166136261u;

	for (int i = 0; i < n; i++) {
		for (size_t j = 0; j < len[i]; j++)
			h = (h ^ (unsigned char)v[i][j]) * 16777619u;
		h = (h ^ 0xFF) * 16777619u;
	}
	return h;
}

static struct series *series_find(struct family *fam, int nlabels,
				  const char *const *v, const size_t *len,
				  uint32_t h)
{
	for (size_t i = 0; i < fam->n; i++) {
		struct series *s = &fam->series[i];
		int j;

		if (s->hash != h)
			continue;
		for (j = 0; j < nlabels; j++)
			if (strlen(s->values[j]) != len[j] ||
			    memcmp(s->values[j], v[j], len[j]) != 0)
				break;
		if (j == nlabels)
			return s;
	}
	return NULL;
}

static struct series *series_add(struct family *fam, enum kind kind,
				 int nlabels, const char *const *v,
				 const size_t *len, uint32_t h)
{
	struct series *s;

	if (fam->n == fam->cap) {
		fam->cap = fam->cap ? fam->cap * 2 : 8;
		if (fam->cap > MAX_SERIES)
			fam->cap = MAX_SERIES;
		fam->series = xrealloc(fam->series, fam->cap * sizeof(*s));
	}
	s = &fam->series[fam->n++];
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < nlabels; i++)
		s->values[i] = xstrndup(v[i], len[i]);
	s->hash = h;
	if (kind == HISTOGRAM)
		s->buckets = xcalloc(NBOUNDS + 1, sizeof(*s->buckets));
	return s;
}

/*
 * The series of family f for the label values (a NULL value reads as "";
 * values itself is unused, and may be NULL, for a family without labels),
 * created if need be.  Once MAX_SERIES - 1 label sets exist, any new one
 * lands in the all-"other" series, which takes the last slot.
 */
static struct series *series_get(struct metrics *m, enum fam_id f,
				 const char *const *values)
{
	const struct fam_def *d = &defs[f];
	struct family *fam = &m->fam[f];
	const char *v[MAX_LABELS];
	size_t len[MAX_LABELS];
	struct series *s;
	uint32_t h;
	int i;

	for (i = 0; i < d->nlabels; i++) {
		v[i] = values[i] ? values[i] : "";
		len[i] = label_len(v[i]);
	}
	h = labels_hash(v, len, d->nlabels);
	if ((s = series_find(fam, d->nlabels, v, len, h)))
		return s;
	if (fam->n < MAX_SERIES - 1)
		return series_add(fam, d->kind, d->nlabels, v, len, h);
	for (i = 0; i < d->nlabels; i++) {
		v[i] = other_values[i];
		len[i] = strlen(v[i]);
	}
	h = labels_hash(v, len, d->nlabels);
	if ((s = series_find(fam, d->nlabels, v, len, h)))
		return s;
	return series_add(fam, d->kind, d->nlabels, v, len, h);
}

static void counter_add(struct metrics *m, enum fam_id f,
			const char *const *values, double n)
{
	pthread_mutex_lock(&m->lock);
	series_get(m, f, values)->value += n;
	pthread_mutex_unlock(&m->lock);
}

static void histogram_observe(struct metrics *m, enum fam_id f,
			      const char *const *values, double x)
{
	struct series *s;
	size_t i;

	/* A NaN or infinite duration is a bug upstream; it would poison the
	 * sum for good, so it is not recorded.  A clock step backwards reads
	 * as 0. */
	if (!isfinite(x))
		return;
	if (x < 0)
		x = 0;
	pthread_mutex_lock(&m->lock);
	s = series_get(m, f, values);
	for (i = 0; i < NBOUNDS && x > bounds[i]; i++)
		;
	s->buckets[i]++;
	s->count++;
	s->sum += x;
	pthread_mutex_unlock(&m->lock);
}

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	/* A family without labels has its one series from the start, so its
	 * sample reads 0 instead of being absent. */
	for (int f = 0; f < F__COUNT; f++)
		if (defs[f].nlabels == 0)
			series_get(m, f, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (int f = 0; f < F__COUNT; f++) {
		struct family *fam = &m->fam[f];

		for (size_t i = 0; i < fam->n; i++) {
			for (int j = 0; j < defs[f].nlabels; j++)
				free(fam->series[i].values[j]);
			free(fam->series[i].buckets);
		}
		free(fam->series);
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void metrics_request(struct metrics *m, const char *route, const char *method,
		     int status, double seconds)
{
	char st[16];
	const char *v[] = { route, method, st };

	snprintf(st, sizeof(st), "%d", status);
	counter_add(m, F_REQUESTS, v, 1);
	histogram_observe(m, F_DURATION, v, seconds);
}

void metrics_ttft(struct metrics *m, const char *model, double seconds)
{
	const char *v[] = { model };

	histogram_observe(m, F_TTFT, v, seconds);
}

void metrics_tokens(struct metrics *m, const char *model, long prompt,
		    long completion)
{
	const char *p[] = { model, "prompt" }, *c[] = { model, "completion" };

	/* A counter never goes down: an unknown (negative) count adds 0. */
	counter_add(m, F_TOKENS, p, prompt > 0 ? (double)prompt : 0);
	counter_add(m, F_TOKENS, c, completion > 0 ? (double)completion : 0);
}

void metrics_cost(struct metrics *m, const char *model, long long micros)
{
	const char *v[] = { model };

	counter_add(m, F_COST, v, micros > 0 ? (double)micros : 0);
}

void metrics_upstream_error(struct metrics *m, const char *provider,
			    const char *code)
{
	const char *v[] = { provider, code };

	counter_add(m, F_UPSTREAM_ERRORS, v, 1);
	if (code && strcmp(code, "upstream_timeout") == 0)
		counter_add(m, F_UPSTREAM_TIMEOUTS, v, 1);
}

void metrics_validation_failure(struct metrics *m, const char *route)
{
	const char *v[] = { route };

	counter_add(m, F_VALIDATION, v, 1);
}

void metrics_streams_add(struct metrics *m, int delta)
{
	counter_add(m, F_STREAMS, NULL, delta);
}

void metrics_stream_paused(struct metrics *m)
{
	counter_add(m, F_STREAM_PAUSES, NULL, 1);
}

void metrics_stream_cancelled(struct metrics *m, const char *route)
{
	const char *v[] = { route };

	counter_add(m, F_STREAMS_CANCELLED, v, 1);
}

void metrics_cache(struct metrics *m, int hit)
{
	counter_add(m, hit ? F_CACHE_HITS : F_CACHE_MISSES, NULL, 1);
}

void metrics_rate_limited(struct metrics *m, const char *route)
{
	const char *v[] = { route };

	counter_add(m, F_RATE_LIMITED, v, 1);
}

void metrics_worker_connection(struct metrics *m, unsigned worker)
{
	char w[16];
	const char *v[] = { w };

	snprintf(w, sizeof(w), "%u", worker);
	counter_add(m, F_WORKER_CONNECTIONS, v, 1);
}

/* ==== rendering ==== */

/* A number as Prometheus's own clients write it, into tmp: integers
 * without a fraction, others in the shortest form that reads back the
 * same. */
static const char *num_str(char tmp[32], double x)
{
	if (isnan(x))
		return "NaN";
	if (isinf(x))
		return x > 0 ? "+Inf" : "-Inf";
	if (x == floor(x) && fabs(x) < 9007199254740992.0) {
		snprintf(tmp, 32, "%.0f", x);
		return tmp;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, 32, "%.*g", prec, x);
		if (strtod(tmp, NULL) == x)
			break;
	}
	return tmp;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t need, i;
	unsigned c = p[0];
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 2, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 3, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 4, cp = c & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return need;
}

/* A label value, escaped as the format wants (backslash, double quote,
 * newline), invalid UTF-8 replaced by U+FFFD. */
static void label_value_put(struct buf *out, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t n = strlen(v), k;

	while (n) {
		if (*p == '\\')
			buf_appends(out, "\\\\");
		else if (*p == '"')
			buf_appends(out, "\\\"");
		else if (*p == '\n')
			buf_appends(out, "\\n");
		else if ((k = utf8_len(p, n)) == 0)
			buf_appends(out, "\xEF\xBF\xBD");
		else {
			buf_append(out, p, k);
			p += k, n -= k;
			continue;
		}
		p++, n--;
	}
}

/* name + suffix, then the labels of s and an optional le="..." pair, all
 * inside braces when there is at least one. */
static void sample_start(struct buf *out, const struct fam_def *d,
			 const char *suffix, const struct series *s,
			 const char *le)
{
	int i;

	buf_appends(out, d->name);
	buf_appends(out, suffix);
	if (d->nlabels == 0 && !le)
		return;
	buf_putc(out, '{');
	for (i = 0; i < d->nlabels; i++) {
		buf_printf(out, "%s%s=\"", i ? "," : "", d->labels[i]);
		label_value_put(out, s->values[i]);
		buf_putc(out, '"');
	}
	if (le)
		buf_printf(out, "%sle=\"%s\"", i ? "," : "", le);
	buf_putc(out, '}');
}

static void sample_end(struct buf *out, double x)
{
	char tmp[32];

	buf_printf(out, " %s\n", num_str(tmp, x));
}

static void histogram_put(struct buf *out, const struct fam_def *d,
			  const struct series *s)
{
	char tmp[32];
	uint64_t cum = 0;

	for (size_t i = 0; i <= NBOUNDS; i++) {
		cum += s->buckets[i];
		sample_start(out, d, "_bucket", s,
			     i < NBOUNDS ? num_str(tmp, bounds[i]) : "+Inf");
		sample_end(out, (double)cum);
	}
	sample_start(out, d, "_sum", s, NULL);
	sample_end(out, s->sum);
	sample_start(out, d, "_count", s, NULL);
	sample_end(out, (double)s->count);
}

void metrics_render(const struct metrics *m, struct buf *out)
{
	static const char *const types[] = {
		[COUNTER] = "counter", [GAUGE] = "gauge",
		[HISTOGRAM] = "histogram",
	};
	pthread_mutex_t *lock = (pthread_mutex_t *)&m->lock;

	pthread_mutex_lock(lock);
	for (int f = 0; f < F__COUNT; f++) {
		const struct fam_def *d = &defs[f];
		const struct family *fam = &m->fam[f];

		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name,
			   d->help, d->name, types[d->kind]);
		for (size_t i = 0; i < fam->n; i++) {
			if (d->kind == HISTOGRAM) {
				histogram_put(out, d, &fam->series[i]);
			} else {
				sample_start(out, d, "", &fam->series[i], NULL);
				sample_end(out, fam->series[i].value);
			}
		}
	}
	pthread_mutex_unlock(lock);
}
