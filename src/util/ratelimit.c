/*
 * ratelimit.c - per-client token buckets, refilled lazily.  Both faces use
 * them: serve takes a token per request of a client (serve/auth.c), batch
 * one per item for --rate (cli/batch.c); hence util, below both.
 *
 * A bucket stores its tokens and the time they were counted; a take first
 * adds what the elapsed time refilled (capped at the burst), so nothing
 * runs between requests and the clock is never read here: the caller
 * passes monotonic milliseconds, which keeps the tests deterministic.
 * Buckets live in an lru_map (util/lru.c: a seeded hash, as keys come
 * from clients, in most-recently-used order); past max_keys the oldest is
 * dropped, and a dropped key comes back with a full bucket.
 *
 * Tokens are doubles: a rate such as 10/minute is not exact in binary, so
 * comparisons allow EPS of a token, and the times handed back are rounded
 * up to whole milliseconds, the clock's own resolution.
 */
#include "aichat/lru.h"
#include "aichat/ratelimit.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPS 1e-6
#define N_MAX 1000000

struct bucket {
	struct lru_node node;           /* first: a node is its bucket */
	double tokens;
	int64_t last_ms;                /* when tokens was counted */
};

struct ratelimit {
	double rate;                    /* tokens per second, > 0 */
	double burst;                   /* >= 1 */
	size_t max_keys;
	struct lru_map map;
};

int ratelimit_parse(const char *spec, double *per_second, double *burst,
		    struct err *e)
{
	static const struct {
		const char *name;
		double seconds;
	} units[] = {
		{ "s", 1 }, { "sec", 1 }, { "second", 1 },
		{ "m", 60 }, { "min", 60 }, { "minute", 60 },
		{ "h", 3600 }, { "hour", 3600 },
	};
	const char *p = spec ? spec : "";
	long n = 0;
	size_t i;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++)
		if (n <= N_MAX)
			n = n * 10 + (*p - '0');
	p += strspn(p, " \t");
	if (*p++ != '/')
		goto bad;
	p += strspn(p, " \t");
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(p, units[i].name) == 0)
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		goto bad;
	if (n < 1 || n > N_MAX)
		return err_set(e, ERR_USAGE, "invalid rate limit '%.128s': "
			       "N must be between 1 and %d", spec, N_MAX);
	*per_second = n / units[i].seconds;
	*burst = n;
	return 0;
bad:
	return err_set(e, ERR_USAGE, "invalid rate limit '%.128s': expected "
		       "N/second, N/minute or N/hour", spec ? spec : "");
}

/* ==== the table ==== */

struct ratelimit *ratelimit_new(double per_second, double burst,
				size_t max_keys)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	/* Out-of-range settings are clamped rather than refused: a rate of
	 * 0 would divide by zero, a burst below 1 would refuse everything. */
	rl->rate = per_second > 1e-9 ? per_second : 1e-9;
	rl->burst = burst >= 1 ? burst : 1;
	rl->max_keys = max_keys;
	lru_init(&rl->map);
	return rl;
}

static void bucket_free(struct lru_node *n)
{
	free(n);
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	lru_release(&rl->map, bucket_free);
	free(rl);
}

static struct bucket *bucket_add(struct ratelimit *rl, const char *key,
				 int64_t now_ms)
{
	struct bucket *b = xcalloc(1, sizeof(*b));

	b->tokens = rl->burst;
	b->last_ms = now_ms;
	lru_insert(&rl->map, &b->node, key, strlen(key));
	/* Past max_keys, the least recently used is forgotten. */
	while (rl->map.count > rl->max_keys) {
		struct lru_node *old = lru_oldest(&rl->map);
		lru_remove(&rl->map, old);
		bucket_free(old);
	}
	return b;
}

/* ==== taking a token ==== */

/* Seconds, rounded up to a whole millisecond (float noise forgiven). */
static double ms_ceil(double seconds)
{
	double ms = ceil(seconds * 1000 - EPS);

	return ms > 0 ? ms / 1000 : 0;
}

static void refill(const struct ratelimit *rl, struct bucket *b,
		   int64_t now_ms)
{
	/* A clock that went back refills nothing and is not remembered. */
	if (now_ms <= b->last_ms)
		return;
	b->tokens += (double)(now_ms - b->last_ms) * rl->rate / 1000;
	if (b->tokens > rl->burst)
		b->tokens = rl->burst;
	b->last_ms = now_ms;
}

/* Takes a token from *tokens if there is one, and says so in d. */
static void decide(const struct ratelimit *rl, double *tokens,
		   struct rl_decision *d)
{
	d->limit = (long)rl->burst;
	d->allowed = *tokens >= 1 - EPS;
	if (d->allowed) {
		*tokens -= 1;
		if (*tokens < 0)
			*tokens = 0;
		d->retry_after_s = 0;
	} else {
		d->retry_after_s = ms_ceil((1 - *tokens) / rl->rate);
		if (d->retry_after_s < 0.001)
			d->retry_after_s = 0.001;
	}
	d->remaining = (long)floor(*tokens + EPS);
	d->reset_s = ms_ceil((rl->burst - *tokens) / rl->rate);
}

void ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms,
		    struct rl_decision *d)
{
	struct bucket *b;
	double full;

	if (rl->max_keys == 0) {
		/* Nothing is kept: every request meets a full bucket. */
		full = rl->burst;
		decide(rl, &full, d);
		return;
	}
	b = (struct bucket *)lru_find(&rl->map, key, strlen(key));
	if (b) {
		refill(rl, b, now_ms);
		lru_touch(&rl->map, &b->node);
	} else {
		b = bucket_add(rl, key, now_ms);
	}
	decide(rl, &b->tokens, d);
}
