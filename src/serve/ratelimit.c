/*
 * ratelimit.c - per-client token buckets, refilled lazily.
 *
 * A bucket stores its tokens and the time they were counted; a take first
 * adds what the elapsed time refilled (capped at the burst), so nothing
 * runs between requests and the clock is never read here: the caller
 * passes monotonic milliseconds, which keeps the tests deterministic.
 * Buckets live in a chained hash table (a seeded hash, as keys come from
 * clients) and on an LRU list, most recent first; past max_keys the tail
 * is dropped, and a dropped key comes back with a full bucket.
 *
 * Tokens are doubles: a rate such as 10/minute is not exact in binary, so
 * comparisons allow EPS of a token, and the times handed back are rounded
 * up to whole milliseconds, the clock's own resolution.
 */
#include "aichat/ratelimit.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define EPS 1e-6
#define N_MAX 1000000

struct bucket {
	struct bucket *hnext;           /* hash chain */
	struct bucket *prev, *next;     /* LRU list, head most recent */
	uint64_t hash;
	double tokens;
	int64_t last_ms;                /* when tokens was counted */
	char key[];
};

struct ratelimit {
	double rate;                    /* tokens per second, > 0 */
	double burst;                   /* >= 1 */
	size_t max_keys, count;
	struct bucket **table;          /* mask + 1 chains, a power of two */
	size_t mask;
	struct bucket *head, *tail;
	uint64_t seed;
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

/* FNV-1a from a random basis, then MurmurHash3's finaliser so that the
 * chain index depends on every bit of the state. */
static uint64_t key_hash(uint64_t seed, const char *key)
{
	uint64_t h = 14695981039346656037u ^ seed;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

struct ratelimit *ratelimit_new(double per_second, double burst,
				size_t max_keys)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	/* Out-of-range settings are clamped rather than refused: a rate of
	 * 0 would divide by zero, a burst below 1 would refuse everything. */
	rl->rate = per_second > 1e-9 ? per_second : 1e-9;
	rl->burst = burst >= 1 ? burst : 1;
	rl->max_keys = max_keys;
	rl->mask = 63;
	rl->table = xcalloc(rl->mask + 1, sizeof(*rl->table));
	if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(rl->seed))
		rl->seed = (uint64_t)(uintptr_t)rl;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	struct bucket *b, *next;

	if (!rl)
		return;
	for (b = rl->head; b; b = next) {
		next = b->next;
		free(b);
	}
	free(rl->table);
	free(rl);
}

static void lru_unlink(struct ratelimit *rl, struct bucket *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		rl->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		rl->tail = b->prev;
	b->prev = b->next = NULL;
}

static void lru_push(struct ratelimit *rl, struct bucket *b)
{
	b->prev = NULL;
	b->next = rl->head;
	if (rl->head)
		rl->head->prev = b;
	else
		rl->tail = b;
	rl->head = b;
}

static void table_grow(struct ratelimit *rl)
{
	size_t mask = rl->mask * 2 + 1;
	struct bucket **t = xcalloc(mask + 1, sizeof(*t));

	for (struct bucket *b = rl->head; b; b = b->next) {
		b->hnext = t[b->hash & mask];
		t[b->hash & mask] = b;
	}
	free(rl->table);
	rl->table = t;
	rl->mask = mask;
}

/* Drops the least recently used bucket. */
static void evict(struct ratelimit *rl)
{
	struct bucket *b = rl->tail, **pp;

	for (pp = &rl->table[b->hash & rl->mask]; *pp != b; pp = &(*pp)->hnext)
		;
	*pp = b->hnext;
	lru_unlink(rl, b);
	free(b);
	rl->count--;
}

static struct bucket *bucket_find(struct ratelimit *rl, const char *key,
				  uint64_t h)
{
	for (struct bucket *b = rl->table[h & rl->mask]; b; b = b->hnext)
		if (b->hash == h && strcmp(b->key, key) == 0)
			return b;
	return NULL;
}

static struct bucket *bucket_add(struct ratelimit *rl, const char *key,
				 uint64_t h, int64_t now_ms)
{
	size_t n = strlen(key);
	struct bucket *b;

	while (rl->count >= rl->max_keys)
		evict(rl);
	if (rl->count >= rl->mask + 1)
		table_grow(rl);
	b = xmalloc(sizeof(*b) + n + 1);
	memcpy(b->key, key, n + 1);
	b->hash = h;
	b->tokens = rl->burst;
	b->last_ms = now_ms;
	b->hnext = rl->table[h & rl->mask];
	rl->table[h & rl->mask] = b;
	lru_push(rl, b);
	rl->count++;
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
	uint64_t h;

	if (rl->max_keys == 0) {
		/* Nothing is kept: every request meets a full bucket. */
		full = rl->burst;
		decide(rl, &full, d);
		return;
	}
	h = key_hash(rl->seed, key);
	b = bucket_find(rl, key, h);
	if (b) {
		refill(rl, b, now_ms);
		lru_unlink(rl, b);
		lru_push(rl, b);
	} else {
		b = bucket_add(rl, key, h, now_ms);
	}
	decide(rl, &b->tokens, d);
}
