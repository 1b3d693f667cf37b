/*
 * auth.c - who may call serve, and how much: API keys, the per-client
 * rate limit (the token buckets of util/ratelimit.c) and the
 * --max-upstream gate.
 *
 * check_auth() and check_rate() run once the route is known, before the
 * body is read, and send the refusal themselves (401, 429); with a shared
 * limiter (shared.c) the request waits, suspended, for its verdict.  A request
 * with a valid key is limited per key, any other per client address: a
 * wrong key costs a token before its 401.  The gate
 * hands out --max-upstream slots: a request holds at most one
 * (holds_upstream) and waits for one in a FIFO of at most --max-queue
 * requests (503 past that); a slot given back goes to the oldest waiter.
 */
#include "aichat/metrics.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ==== API keys ==== */

/* Constant time in the length of the candidate key. */
static int key_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
	return diff == 0;
}

/* 0 when allowed; otherwise the 401 has been sent. */
int check_auth(struct req *r)
{
	const struct server_opts *o = r->srv->o;
	const char *auth = header(r, "Authorization"), *given = NULL;
	int match = -1;

	if (!o->nkeys || !r->route->auth)
		return 0;
	if (auth && !strncasecmp(auth, "Bearer ", 7))
		given = auth + 7;
	else
		given = header(r, "X-API-Key");
	if (given)
		/* Compare with every key, so the time taken does not say
		 * which one (or whether any) was close. */
		for (size_t i = 0; i < o->nkeys; i++)
			if (key_equal(given, o->api_keys[i]) && match < 0)
				match = (int)i;
	if (match >= 0) {
		snprintf(r->client, sizeof(r->client), "key:%d", match + 1);
		r->key = match + 1;
		return 0;
	}
	/* A failed key spends its address's budget too, so that guessing
	 * keys is as slow as --rate-limit: check_rate() answers. */
	r->auth_failed = given ? 2 : 1;
	return 0;
}

static void reply_unauthorized(struct req *r)
{
	struct MHD_Response *resp = error_response(r, ERR_UNAUTHORIZED,
		r->auth_failed == 2 ? "invalid API key" :
		"missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'");

	mhd.add_response_header(resp, "WWW-Authenticate", "Bearer");
	send_response(r, 401, resp);
}

/* ==== Host, without keys (DNS rebinding) ==== */

/* Does the Host value h name a host we answer as?  h is "name",
 * "name:port", "[v6]" or "[v6]:port"; name is compared without case. */
static int host_allowed(const struct server *srv, const char *h)
{
	const struct server_opts *o = srv->o;
	const char *end, *p;
	char name[256];
	size_t n;

	if (h[0] == '[') {
		if (!(end = strchr(h, ']')))
			return 0;
		end++;
	} else {
		end = h + strcspn(h, ":");
	}
	if (*end && *end != ':')
		return 0;
	for (p = *end ? end + 1 : end; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	n = (size_t)(end - h);
	if (!n || n >= sizeof(name))
		return 0;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)tolower((unsigned char)h[i]);
	name[n] = '\0';
	if (!strcmp(name, "localhost") || !strcmp(name, "127.0.0.1") ||
	    !strcmp(name, "[::1]"))
		return 1;
	for (size_t i = 0; i < o->nallow_hosts + 1; i++) {
		/* the configured names, then the address we listen on */
		const char *a = i < o->nallow_hosts ? o->allow_hosts[i] : o->host;
		size_t an = strlen(a);

		if (!strcasecmp(name, a))
			return 1;
		/* an IPv6 address given without its brackets */
		if (name[0] == '[' && an == n - 2 && !strncasecmp(name + 1, a, an))
			return 1;
	}
	return 0;
}

int check_host(struct req *r)
{
	const char *h;
	char shown[104], msg[300];
	size_t o = 0;

	if (r->srv->o->nkeys || r->via_unix)
		return 0;
	h = header(r, "Host");
	if (!h || host_allowed(r->srv, h))
		return 0;
	/* Echo it bounded, printable ASCII only. */
	for (const char *p = h; *p && o < sizeof(shown) - 4; p++)
		shown[o++] = *p > ' ' && *p < 127 && *p != '\'' ? *p : '?';
	if (h[o])
		shown[o++] = '.', shown[o++] = '.', shown[o++] = '.';
	shown[o] = '\0';
	snprintf(msg, sizeof(msg),
		 "Host '%s' is not allowed: a server without API keys answers only to localhost, 127.0.0.1, [::1], its --host and each --allow-host",
		 shown);
	reply_error_status(r, 403, ERR_FORBIDDEN, msg);
	return -1;
}

/* ==== rate limit ==== */

static void on_rate(void *data, const struct rl_decision *d, int unavailable)
{
	struct req *r = data;

	r->rl = *d;
	r->rate_decided = 1;
	r->rate_unavailable = unavailable;
	if (r->kv) {
		r->kv = NULL;
		req_resume(r);
	}
}

int rate_answer(struct req *r)
{
	const struct rl_decision *d = &r->rl;
	char v[32];

	if (r->rate_decided && !d->allowed) {
		struct MHD_Response *resp;

		metrics_rate_limited(r->srv->metrics, r->route->path);
		if (r->rate_unavailable) {
			/* --redis-fail closed: no verdict, so no entry. */
			resp = error_response(r, ERR_OVERLOADED,
				"rate limit unavailable (Redis is down), try again later");
			mhd.add_response_header(resp, "Retry-After", "1");
			send_response(r, 503, resp);
			return -1;
		}
		resp = error_response(r, ERR_RATE_LIMITED,
				      "rate limit exceeded, try again later");
		snprintf(v, sizeof(v), "%ld", (long)(d->retry_after_s + 0.999));
		mhd.add_response_header(resp, "Retry-After", v);
		snprintf(v, sizeof(v), "%ld", d->limit);
		mhd.add_response_header(resp, "X-RateLimit-Limit", v);
		snprintf(v, sizeof(v), "%ld", d->remaining);
		mhd.add_response_header(resp, "X-RateLimit-Remaining", v);
		snprintf(v, sizeof(v), "%ld", (long)(d->reset_s + 0.999));
		mhd.add_response_header(resp, "X-RateLimit-Reset", v);
		send_response(r, 429, resp);
		return -1;
	}
	if (r->auth_failed) {
		reply_unauthorized(r);
		return -1;
	}
	return 0;
}

int check_rate(struct req *r)
{
	if (!r->srv->lim || !r->route->auth)
		return rate_answer(r);
	r->kv = limiter_take(r->srv->lim, r->client, on_rate, r);
	if (!r->kv)
		return rate_answer(r);
	req_suspend(r);
	return 1;
}

/* ==== the upstream gate (--max-upstream) ==== */

/*
 * The slots are the hub's, shared by every worker (hub->lock).  A worker
 * whose request or batch finds none free counts it in its waiters under
 * the same lock, so that whoever gives a slot back, on any worker, sees
 * it and wakes that worker's loop (gate_wake()), which takes the slot if
 * it is still free: never more than --max-upstream calls at once, and no
 * waiter left asleep while a slot is free.
 */

/* Takes a slot for one of srv's waiters: 1 when taken (the waiter is no
 * longer counted), 0 when none is free. */
static int slot_take_waiter(struct server *srv)
{
	struct hub *h = srv->hub;
	int ok;

	pthread_mutex_lock(&h->lock);
	ok = !srv->o->max_upstream || h->upstream_active < srv->o->max_upstream;
	if (ok) {
		h->upstream_active++;
		h->waiters[srv->worker]--;
	}
	pthread_mutex_unlock(&h->lock);
	return ok;
}

/* One of srv's waiters leaves the queue without a slot. */
static void slot_unwait(struct server *srv, int is_req)
{
	struct hub *h = srv->hub;

	pthread_mutex_lock(&h->lock);
	h->waiters[srv->worker]--;
	if (is_req)
		h->reqwaiting--;
	pthread_mutex_unlock(&h->lock);
}

/* Hands free slots to srv's waiters, oldest first within each queue; the
 * requests' queue and the batches' (items of /batch and of jobs) take
 * turns when both wait. */
static void grant_waiters(struct server *srv)
{
	while ((srv->wait_head || srv->nbwait) && slot_take_waiter(srv)) {
		srv->upstream_active++;
		if (srv->nbwait && (!srv->wait_head || srv->grant_batch_next)) {
			struct batch *b = srv->bwait[0];
			memmove(srv->bwait, srv->bwait + 1, --srv->nbwait * sizeof(*srv->bwait));
			srv->grant_batch_next = 0;
			batch_grant(b);
			continue;
		}
		struct req *w = srv->wait_head;
		srv->wait_head = w->wait_next;
		if (!srv->wait_head)
			srv->wait_tail = NULL;
		pthread_mutex_lock(&srv->hub->lock);
		srv->hub->reqwaiting--;
		pthread_mutex_unlock(&srv->hub->lock);
		srv->waiting--;
		w->waiting = 0;
		w->holds_upstream = 1;
		srv->grant_batch_next = 1;
		start_upstream_work(w);
	}
}

void gate_wake(struct server *srv, void *data)
{
	(void)data;
	if (!srv)
		return;
	__atomic_store_n(&srv->gate_wake_posted, 0, __ATOMIC_SEQ_CST);
	grant_waiters(srv);
}

/* Gives one slot of srv's back: the other workers with waiters are
 * woken, then srv's own waiters served. */
static void slot_give(struct server *srv)
{
	struct hub *h = srv->hub;

	srv->upstream_active--;
	if (!srv->o->max_upstream)
		return;
	pthread_mutex_lock(&h->lock);
	h->upstream_active--;
	for (unsigned i = 0; i < h->n; i++) {
		struct server *w = h->w[i];
		if (w != srv && h->waiters[i] &&
		    !__atomic_exchange_n(&w->gate_wake_posted, 1, __ATOMIC_SEQ_CST))
			worker_post(w, gate_wake, NULL);
	}
	pthread_mutex_unlock(&h->lock);
	grant_waiters(srv);
}

void release_upstream(struct req *r)
{
	if (!r->holds_upstream)
		return;
	r->holds_upstream = 0;
	slot_give(r->srv);
}

/* The gate batches see (struct upstream_gate): the same slots. */
static int gate_take(void *ud, struct batch *b)
{
	struct server *srv = ud;
	struct hub *h = srv->hub;
	int max = srv->o->max_upstream, ok;

	pthread_mutex_lock(&h->lock);
	ok = !max || (h->upstream_active < max && !srv->wait_head && !srv->nbwait);
	if (!ok)
		h->waiters[srv->worker]++;
	else if (max)
		h->upstream_active++;
	pthread_mutex_unlock(&h->lock);
	if (ok) {
		srv->upstream_active++;
		return 1;
	}
	if (srv->nbwait == srv->capbwait) {
		srv->capbwait = srv->capbwait ? 2 * srv->capbwait : 8;
		srv->bwait = xrealloc(srv->bwait, srv->capbwait * sizeof(*srv->bwait));
	}
	srv->bwait[srv->nbwait++] = b;
	return 0;
}

static void gate_give(void *ud)
{
	slot_give(ud);
}

static void gate_forget(void *ud, struct batch *b)
{
	struct server *srv = ud;

	for (size_t i = 0; i < srv->nbwait; i++)
		if (srv->bwait[i] == b) {
			memmove(srv->bwait + i, srv->bwait + i + 1,
				(srv->nbwait - i - 1) * sizeof(*srv->bwait));
			srv->nbwait--;
			slot_unwait(srv, 0);
			return;
		}
}

void upstream_gate_init(struct server *srv)
{
	srv->gate.take = gate_take;
	srv->gate.give = gate_give;
	srv->gate.forget = gate_forget;
	srv->gate.ud = srv;
}

void unqueue(struct req *r)
{
	struct server *srv = r->srv;
	struct req **pp = &srv->wait_head, *prev = NULL;

	if (!r->waiting)
		return;
	while (*pp && *pp != r) {
		prev = *pp;
		pp = &(*pp)->wait_next;
	}
	if (*pp) {
		*pp = r->wait_next;
		if (srv->wait_tail == r)
			srv->wait_tail = prev;
		srv->waiting--;
		slot_unwait(srv, 1);
	}
	r->waiting = 0;
}

void acquire_upstream(struct req *r)
{
	struct server *srv = r->srv;
	struct hub *h = srv->hub;
	const struct server_opts *o = srv->o;
	int taken = 0, full = 0;

	if (o->max_upstream) {
		pthread_mutex_lock(&h->lock);
		if (h->upstream_active < o->max_upstream) {
			h->upstream_active++;
			taken = 1;
		} else if (h->reqwaiting >= (size_t)o->max_queue) {
			full = 1;
		} else {
			h->reqwaiting++;
			h->waiters[srv->worker]++;
		}
		pthread_mutex_unlock(&h->lock);
	}
	if (!o->max_upstream || taken) {
		r->holds_upstream = 1;
		srv->upstream_active++;
		start_upstream_work(r);
		return;
	}
	if (full) {
		struct MHD_Response *resp = error_response(r, ERR_OVERLOADED,
			"server busy: too many upstream calls in flight, try again");

		mhd.add_response_header(resp, "Retry-After", "1");
		send_response(r, 503, resp);
		return;
	}
	r->waiting = 1;
	r->wait_next = NULL;
	if (srv->wait_tail)
		srv->wait_tail->wait_next = r;
	else
		srv->wait_head = r;
	srv->wait_tail = r;
	srv->waiting++;
	req_suspend(r);
}
