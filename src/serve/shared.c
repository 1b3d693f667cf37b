/*
 * shared.c - the state serve's replicas may share: the rate limiter and
 * the response cache, each one small interface with two backends, in the
 * process (util/ratelimit.c, serve/cache.c) or in Redis (serve/redis.c).
 * The rest of serve calls limiter_take(), acache_get() and acache_put()
 * and never knows which backend runs.
 *
 * Both interfaces answer through a callback.  The in-process backends
 * call it before returning (and return NULL); the Redis backends call it
 * when the reply comes (returning a handle that shared_call_cancel()
 * forgets), or before returning when Redis is down.  Every Redis wait is
 * bounded by the connection's timeout (redis.h).
 *
 * In Redis: the limiter is a GCRA (a token bucket kept as one "theoretical
 * arrival time") in a Lua script, run with EVALSHA (EVAL when the server
 * does not know it: NOSCRIPT), reading Redis' own clock (TIME), so
 * replicas' clocks do not matter and a key's check-and-set is atomic; its
 * key is PREFIX "rl:" and the client ("key:N" or the client address: never
 * an API key).  The cache stores an answer at PREFIX "cache:" and the
 * SHA-256 of the normalized request, with PX for its lifetime; Redis'
 * maxmemory policy bounds it.  When Redis cannot answer, the limiter
 * decides by the failure mode (open: allow; closed: refuse as
 * unavailable), and the cache misses and stores nothing.
 *
 * The in-process backends are shared by the workers of one server
 * (--workers), each behind its lock, so a limit is one limit whichever
 * worker a request reaches; Redis backends are one per worker, as is
 * their connection.
 */
#include "aichat/cache.h"
#include "aichat/ratelimit.h"
#include "aichat/redis.h"
#include "aichat/sha256.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS[1] the bucket; ARGV[1] microseconds a token takes to come back,
 * ARGV[2] the burst.  Returns {allowed, retry_after_us, reset_us,
 * remaining}. */
static const char gcra_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
	"local T = tonumber(ARGV[1])\n"
	"local tau = T * tonumber(ARGV[2])\n"
	"local tat = tonumber(redis.call('GET', KEYS[1])) or now\n"
	"if tat < now then tat = now end\n"
	"local new_tat = tat + T\n"
	"if now < new_tat - tau then\n"
	"  return {0, math.ceil(new_tat - tau - now), math.ceil(tat - now), 0}\n"
	"end\n"
	"redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',\n"
	"  math.ceil((new_tat - now) / 1000) + 1)\n"
	"return {1, 0, math.ceil(new_tat - now),\n"
	"  math.floor((now + tau - new_tat) / T + 1e-6)}\n";

const char *shared_script(void)
{
	return gcra_lua;
}

struct shared_call {
	struct redis_call *rc;
	int in_send;                 /* inside redis_command() */
	int done;                    /* answered while in_send */
	int retried;                 /* EVAL after NOSCRIPT */
	struct limiter *lim;
	struct acache *ac;
	char *key;                   /* the Redis key */
	limiter_fn lfn;
	acache_fn cfn;
	void *data;
};

static void call_free(struct shared_call *c)
{
	free(c->key);
	free(c);
}

void shared_call_cancel(struct shared_call *c)
{
	if (!c)
		return;
	redis_call_cancel(c->rc);
	call_free(c);
}

/* Sends c's command; NULL when it was answered at once (c is then freed),
 * else c. */
static struct shared_call *call_send(struct shared_call *c, struct redis *rs,
				     redis_reply_fn fn, int argc,
				     const char **argv, const size_t *len)
{
	c->in_send = 1;
	c->rc = redis_command(rs, fn, c, argc, argv, len);
	c->in_send = 0;
	if (c->done) {
		call_free(c);
		return NULL;
	}
	return c;
}

/* The end of c: fn has been called; c goes now, or after call_send(). */
static void call_end(struct shared_call *c)
{
	c->rc = NULL;
	if (c->in_send)
		c->done = 1;
	else
		call_free(c);
}

/* ==== the rate limiter ==== */

struct limiter {
	struct ratelimit *local;     /* in-process, or NULL */
	pthread_mutex_t lock;        /* local's, shared by the workers */
	struct redis *rs;            /* Redis, or NULL */
	const char *prefix;
	double rate, burst;
	enum redis_fail fail;
};

struct limiter *limiter_local_new(double per_second, double burst,
				  size_t max_keys)
{
	struct limiter *l = xcalloc(1, sizeof(*l));

	l->local = ratelimit_new(per_second, burst, max_keys);
	pthread_mutex_init(&l->lock, NULL);
	l->rate = per_second;
	l->burst = burst;
	return l;
}

struct limiter *limiter_redis_new(struct redis *rs, const char *prefix,
				  double per_second, double burst,
				  enum redis_fail fail)
{
	struct limiter *l = xcalloc(1, sizeof(*l));

	l->rs = rs;
	l->prefix = prefix;
	l->rate = per_second > 1e-9 ? per_second : 1e-9;
	l->burst = burst >= 1 ? burst : 1;
	l->fail = fail;
	return l;
}

void limiter_free(struct limiter *l)
{
	if (!l)
		return;
	if (l->local)
		pthread_mutex_destroy(&l->lock);
	ratelimit_free(l->local);
	free(l);
}

/* The decision when Redis cannot give one.  Closed refuses, as
 * unavailable (the caller answers 503); open allows. */
static void lim_failed(struct shared_call *c)
{
	struct limiter *l = c->lim;
	struct rl_decision d = { 0 };
	const char *client = c->key + strlen(l->prefix) + 3;
	int closed = l->fail == REDIS_FAIL_CLOSED ||
		     (l->fail == REDIS_FAIL_AUTO && !strncmp(client, "key:", 4));

	d.allowed = !closed;
	d.limit = (long)l->burst;
	d.remaining = -1;
	d.retry_after_s = closed ? 1 : 0;
	c->lfn(c->data, &d, 1);
}

static void lim_send(struct shared_call *c);

static void on_lim_reply(void *data, redisReply *rep, const char *why)
{
	struct shared_call *c = data;
	struct rl_decision d = { 0 };

	(void)why;
	if (rep && rep->type == REDIS_REPLY_ERROR && !c->retried &&
	    !strncmp(rep->str, "NOSCRIPT", 8)) {
		/* Redis restarted or flushed its scripts: EVAL loads it. */
		c->retried = 1;
		c->rc = NULL;
		lim_send(c);   /* c may be gone once this returns */
		return;
	}
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
		lim_failed(c);
		call_end(c);
		return;
	}
	d.allowed = rep->element[0]->integer == 1;
	d.limit = (long)c->lim->burst;
	d.retry_after_s = (double)rep->element[1]->integer / 1e6;
	if (!d.allowed && d.retry_after_s < 0.001)
		d.retry_after_s = 0.001;
	d.reset_s = (double)rep->element[2]->integer / 1e6;
	d.remaining = (long)rep->element[3]->integer;
	c->lfn(c->data, &d, 0);
	call_end(c);
}

/* EVALSHA while the server's SHA is known and not refused, else EVAL. */
static void lim_send(struct shared_call *c)
{
	struct limiter *l = c->lim;
	const char *sha = redis_script_sha(l->rs);
	char period[32], burst[32];
	const char *argv[6];
	size_t len[6];

	snprintf(period, sizeof(period), "%.3f", 1e6 / l->rate);
	snprintf(burst, sizeof(burst), "%.0f", floor(l->burst));
	argv[0] = sha && !c->retried ? "EVALSHA" : "EVAL";
	argv[1] = sha && !c->retried ? sha : gcra_lua;
	argv[2] = "1";
	argv[3] = c->key;
	argv[4] = period;
	argv[5] = burst;
	for (int i = 0; i < 6; i++)
		len[i] = strlen(argv[i]);
	c->rc = redis_command(l->rs, on_lim_reply, c, 6, argv, len);
}

struct shared_call *limiter_take(struct limiter *l, const char *client,
				 limiter_fn fn, void *data)
{
	struct shared_call *c;
	size_t n;

	if (l->local) {
		struct rl_decision d;
		pthread_mutex_lock(&l->lock);
		ratelimit_take(l->local, client, loop_now_ms(), &d);
		pthread_mutex_unlock(&l->lock);
		fn(data, &d, 0);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->lim = l;
	c->lfn = fn;
	c->data = data;
	n = strlen(l->prefix) + 3 + strlen(client) + 1;
	c->key = xmalloc(n);
	snprintf(c->key, n, "%srl:%s", l->prefix, client);
	c->in_send = 1;
	lim_send(c);
	c->in_send = 0;
	if (c->done) {
		call_free(c);
		return NULL;
	}
	return c;
}

/* ==== the response cache ==== */

struct acache {
	struct cache *local;
	pthread_mutex_t lock;        /* local's, shared by the workers */
	struct redis *rs;
	const char *prefix;
	int64_t ttl_ms;
};

struct acache *acache_local_new(size_t max_entries, int64_t ttl_ms)
{
	struct acache *a = xcalloc(1, sizeof(*a));

	a->local = cache_new(max_entries, ttl_ms);
	pthread_mutex_init(&a->lock, NULL);
	a->ttl_ms = ttl_ms;
	return a;
}

struct acache *acache_redis_new(struct redis *rs, const char *prefix,
				int64_t ttl_ms)
{
	struct acache *a = xcalloc(1, sizeof(*a));

	a->rs = rs;
	a->prefix = prefix;
	a->ttl_ms = ttl_ms;
	return a;
}

void acache_free(struct acache *a)
{
	if (!a)
		return;
	if (a->local)
		pthread_mutex_destroy(&a->lock);
	cache_free(a->local);
	free(a);
}

/* PREFIX "cache:" and the SHA-256 of key: the request is not readable
 * from Redis' keys. */
static char *redis_cache_key(const struct acache *a, const char *key,
			     size_t keylen)
{
	char hex[65];
	size_t n = strlen(a->prefix) + 6 + 64 + 1;
	char *k = xmalloc(n);

	sha256_hex(key, keylen, hex);
	snprintf(k, n, "%scache:%s", a->prefix, hex);
	return k;
}

static void on_cache_reply(void *data, redisReply *rep, const char *why)
{
	struct shared_call *c = data;

	(void)why;
	if (rep && rep->type == REDIS_REPLY_STRING)
		c->cfn(c->data, rep->str, rep->len, 0);
	else
		c->cfn(c->data, NULL, 0, !rep || rep->type == REDIS_REPLY_ERROR);
	call_end(c);
}

struct shared_call *acache_get(struct acache *a, const char *key,
			       size_t keylen, acache_fn fn, void *data)
{
	struct shared_call *c;
	const char *argv[2];
	size_t len[2];

	if (a->local) {
		size_t n = 0;
		const char *v;
		char *copy = NULL;

		/* A copy: once unlocked, another worker may evict it. */
		pthread_mutex_lock(&a->lock);
		v = cache_get(a->local, key, keylen, &n, loop_now_ms());
		if (v) {
			copy = xmalloc(n + 1);
			memcpy(copy, v, n);
			copy[n] = '\0';
		}
		pthread_mutex_unlock(&a->lock);
		fn(data, copy, n, 0);
		free(copy);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->ac = a;
	c->cfn = fn;
	c->data = data;
	c->key = redis_cache_key(a, key, keylen);
	argv[0] = "GET";
	argv[1] = c->key;
	len[0] = 3;
	len[1] = strlen(c->key);
	return call_send(c, a->rs, on_cache_reply, 2, argv, len);
}

static void on_put_reply(void *data, redisReply *rep, const char *why)
{
	(void)data;
	(void)rep;
	(void)why;
}

void acache_put(struct acache *a, const char *key, size_t keylen,
		const char *val, size_t len)
{
	const char *argv[5];
	size_t alen[5];
	char ttl[32], *k;

	if (a->local) {
		pthread_mutex_lock(&a->lock);
		cache_put(a->local, key, keylen, val, len, loop_now_ms());
		pthread_mutex_unlock(&a->lock);
		return;
	}
	if (a->ttl_ms <= 0 || !redis_up(a->rs))
		return;
	k = redis_cache_key(a, key, keylen);
	snprintf(ttl, sizeof(ttl), "%lld", (long long)a->ttl_ms);
	argv[0] = "SET", alen[0] = 3;
	argv[1] = k, alen[1] = strlen(k);
	argv[2] = val, alen[2] = len;
	argv[3] = "PX", alen[3] = 2;
	argv[4] = ttl, alen[4] = strlen(ttl);
	redis_command(a->rs, on_put_reply, NULL, 5, argv, alen);
	free(k);
}
