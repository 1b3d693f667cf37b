/*
 * workers.c - `aichat serve --workers N`: N event loops, each a struct
 * server with its own loop, engine, MHD daemon(s), writer and searcher,
 * that together behave as one server.
 *
 * What a client can observe is shared, in struct hub or behind a lock in
 * its own module: the --max-upstream slots (auth.c, hub->lock), the
 * in-process rate limiter and response cache (shared.c), budgets
 * (budget.c), /metrics (metrics.c), the connection limits (here, with
 * MHD's accept policy), the count of requests in flight (for draining).
 * Redis connections are one per worker (hiredis is not thread-safe);
 * /health and /metrics gather every worker's (redis_view()).
 *
 * Workers talk by message only: worker_post() queues a function for
 * another worker's loop and wakes it through an eventfd the loop
 * watches.  Worker 0 runs on the main thread: it reads the signals,
 * owns the jobs service (other workers hand it their /jobs calls,
 * route_job_remote()), and its loop ends last, so that a request on
 * another worker can count on it while draining.
 */
#include "aichat/jobs.h"
#include "aichat/metrics.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* ==== mailboxes ==== */

struct msg {
	worker_fn fn;
	void *data;
	struct msg *next;
};

struct mailbox {
	pthread_mutex_t lock;
	struct msg *head, *tail;
	int efd;
};

void worker_post(struct server *to, worker_fn fn, void *data)
{
	struct mailbox *mb = to->mbox;
	struct msg *m = xmalloc(sizeof(*m));
	uint64_t one = 1;
	ssize_t n;

	m->fn = fn;
	m->data = data;
	m->next = NULL;
	pthread_mutex_lock(&mb->lock);
	if (mb->tail)
		mb->tail->next = m;
	else
		mb->head = m;
	mb->tail = m;
	pthread_mutex_unlock(&mb->lock);
	n = write(mb->efd, &one, sizeof(one));
	(void)n;   /* only fails when the counter is full: the loop is awake */
}

static void on_mail(struct loop *l, int fd, int events, void *data)
{
	struct server *srv = data;
	struct mailbox *mb = srv->mbox;
	struct msg *m;
	uint64_t v;
	ssize_t n;

	(void)l;
	(void)events;
	n = read(fd, &v, sizeof(v));
	(void)n;
	pthread_mutex_lock(&mb->lock);
	m = mb->head;
	mb->head = mb->tail = NULL;
	pthread_mutex_unlock(&mb->lock);
	while (m) {
		struct msg *next = m->next;
		m->fn(srv, m->data);
		free(m);
		m = next;
	}
}

void mailbox_init(struct server *srv)
{
	struct mailbox *mb = xcalloc(1, sizeof(*mb));

	pthread_mutex_init(&mb->lock, NULL);
	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	srv->mbox = mb;
	loop_add_fd(srv->loop, mb->efd, LOOP_READ, on_mail, srv);
}

void mailbox_release(struct server *srv)
{
	struct mailbox *mb = srv->mbox;
	struct msg *m;

	if (!mb)
		return;
	loop_del_fd(srv->loop, mb->efd);
	close(mb->efd);
	m = mb->head;
	while (m) {
		struct msg *next = m->next;
		m->fn(NULL, m->data);
		free(m);
		m = next;
	}
	pthread_mutex_destroy(&mb->lock);
	free(mb);
	srv->mbox = NULL;
}

/* ==== the hub ==== */

struct ip_count {
	unsigned char addr[16];
	unsigned n;
};

void hub_init(struct hub *h, unsigned n)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->conn_lock, NULL);
	pthread_mutex_init(&h->models_lock, NULL);
	h->n = n;
	h->waiters = xcalloc(n, sizeof(*h->waiters));
	h->w = xcalloc(n, sizeof(*h->w));
	h->running = n;
}

void hub_release(struct hub *h)
{
	free(h->waiters);
	free(h->w);
	free(h->ips);
	models_cache_release(&h->models);
	pthread_mutex_destroy(&h->models_lock);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->conn_lock);
}

/* ==== listening ==== */

int reuseport_listen(const struct sockaddr *sa, int port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const struct sockaddr *a = sa;
	socklen_t len = sa->sa_family == AF_INET6 ? sizeof(sin6) : sizeof(sin);
	int fd, one = 1, saved;

	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		if (!sin6.sin6_port)
			sin6.sin6_port = htons((uint16_t)port);
		a = (struct sockaddr *)&sin6;
	} else {
		memcpy(&sin, sa, sizeof(sin));
		if (!sin.sin_port)
			sin.sin_port = htons((uint16_t)port);
		a = (struct sockaddr *)&sin;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    (sa->sa_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, a, len) < 0 || listen(fd, 4096) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* ==== connection limits over every worker ==== */

static void addr_key(const struct sockaddr *addr, unsigned char key[16])
{
	memset(key, 0, 16);
	if (addr->sa_family == AF_INET)
		memcpy(key, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	else if (addr->sa_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)addr)->sin6_addr, 16);
}

static struct ip_count *ip_find(struct hub *h, const unsigned char key[16])
{
	for (size_t i = 0; i < h->nips; i++)
		if (!memcmp(h->ips[i].addr, key, 16))
			return &h->ips[i];
	return NULL;
}

enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
			      socklen_t addrlen)
{
	struct server *srv = cls;
	struct hub *h = srv->hub;
	const struct server_opts *o = srv->o;
	unsigned char key[16];
	struct ip_count *ip;
	enum MHD_Result ok = MHD_YES;

	(void)addrlen;
	addr_key(addr, key);
	pthread_mutex_lock(&h->conn_lock);
	ip = ip_find(h, key);
	if (h->conns >= o->max_connections ||
	    (o->max_connections_per_ip && ip && ip->n >= o->max_connections_per_ip)) {
		ok = MHD_NO;
	} else {
		if (!ip) {
			if (h->nips == h->capips) {
				h->capips = h->capips ? 2 * h->capips : 16;
				h->ips = xrealloc(h->ips, h->capips * sizeof(*h->ips));
			}
			ip = &h->ips[h->nips++];
			memcpy(ip->addr, key, 16);
			ip->n = 0;
		}
		ip->n++;
		h->conns++;
	}
	pthread_mutex_unlock(&h->conn_lock);
	return ok;
}

void conn_closed(struct server *srv, struct MHD_Connection *c)
{
	struct hub *h = srv->hub;
	const union MHD_ConnectionInfo *ci;
	unsigned char key[16];
	struct ip_count *ip;

	if (h->n < 2)
		return;
	ci = mhd.get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return;
	addr_key(ci->client_addr, key);
	pthread_mutex_lock(&h->conn_lock);
	if ((ip = ip_find(h, key))) {
		if (--ip->n == 0)
			*ip = h->ips[--h->nips];
		h->conns--;
	}
	pthread_mutex_unlock(&h->conn_lock);
}

/* ==== draining and stopping ==== */

static void stop_loop(struct server *srv, void *data)
{
	(void)data;
	if (srv)
		loop_stop(srv->loop);
}

/* Another worker's loop has ended: worker 0 may be the last. */
static void peer_ended(struct server *srv, void *data)
{
	(void)data;
	if (srv && srv->draining && srv->active == 0)
		worker_idle(srv);
}

void worker_idle(struct server *srv)
{
	if (srv->worker != 0 ||
	    __atomic_load_n(&srv->hub->running, __ATOMIC_SEQ_CST) == 1)
		loop_stop(srv->loop);
}

/* Stop accepting, and stop once nothing is in flight (the drain timer
 * ends what is still there after --drain-timeout). */
void server_drain(struct server *srv);

static void drain_msg(struct server *srv, void *data)
{
	(void)data;
	if (srv && !srv->draining)
		server_drain(srv);
}

void workers_drain(struct server *srv, int now)
{
	struct hub *h = srv->hub;

	if (now)
		__atomic_store_n(&h->hard_stop, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 1; i < h->n; i++)
		worker_post(h->w[i], now ? stop_loop : drain_msg, NULL);
}

void *worker_main(void *arg)
{
	struct server *srv = arg;
	struct hub *h = srv->hub;

	loop_run(srv->loop);
	__atomic_sub_fetch(&h->running, 1, __ATOMIC_SEQ_CST);
	worker_post(h->w[0], peer_ended, NULL);
	return NULL;
}

/* ==== /jobs on a worker other than 0 ==== */

/* One /jobs call handed to worker 0.  It belongs to whichever thread
 * holds the message it travels in; cancelled is set by r's worker when r
 * stops waiting, and then the last to see it frees it. */
struct xjob {
	struct server *from;
	struct req *r;
	int cancelled;               /* atomic */
	enum route_response kind;
	cJSON *body;                 /* POST /jobs */
	char id[72];
	int key;
	cJSON *status;               /* the answer */
	struct buf results;
	struct err e;
	int off;                     /* worker 0 has no jobs */
};

static void xjob_free(struct xjob *x)
{
	cJSON_Delete(x->body);
	cJSON_Delete(x->status);
	buf_release(&x->results);
	free(x);
}

/* Back on r's worker: r gets the answer, unless it stopped waiting. */
static void xjob_back(struct server *srv, void *data)
{
	struct xjob *x = data;
	struct req *r = x->r;

	if (!srv || __atomic_load_n(&x->cancelled, __ATOMIC_SEQ_CST)) {
		xjob_free(x);
		return;
	}
	r->xjob = NULL;
	if (!x->status && x->off) {
		reply_error_status(r, 503, ERR_OVERLOADED, JOBS_OFF_MSG);
	} else if (!x->status) {
		reply_job_error(r, &x->e);
	} else if (x->kind == RESP_JOB_RESULTS) {
		reply(r, 200, "application/x-ndjson", x->results.ptr, x->results.len);
	} else {
		reply_json(r, x->kind == RESP_JOB_SUBMIT ? 202 : 200, x->status);
		x->status = NULL;
	}
	xjob_free(x);
}

static void xjob_answer(void *ud, cJSON *status, const struct buf *results,
			const struct err *e)
{
	struct xjob *x = ud;

	x->status = status;
	if (status && results)
		buf_append(&x->results, results->ptr, results->len);
	if (!status && e)
		x->e = *e;
	worker_post(x->from, xjob_back, x);
}

/* On worker 0: makes the call. */
static void xjob_run(struct server *srv, void *data)
{
	struct xjob *x = data;

	if (!srv || __atomic_load_n(&x->cancelled, __ATOMIC_SEQ_CST)) {
		xjob_free(x);
		return;
	}
	err_clear(&x->e);
	if (!srv->jq) {
		x->off = 1;
		worker_post(x->from, xjob_back, x);
		return;
	}
	/* The call, once made, always answers (xjob_answer), even when the
	 * request has left meanwhile: x goes back then, to be freed. */
	if (!jobq_call(srv->jq, job_route_op(x->kind), x->body, x->id, x->key,
		       JOBS_LIST_MAX, xjob_answer, x, &x->e))
		worker_post(x->from, xjob_back, x);
}

void route_job_remote(struct req *r)
{
	struct xjob *x = xcalloc(1, sizeof(*x));

	x->from = r->srv;
	x->r = r;
	x->kind = r->route->response;
	x->body = r->json ? cJSON_Duplicate(r->json, 1) : NULL;
	snprintf(x->id, sizeof(x->id), "%s", r->path_id);
	x->key = r->key;
	buf_init(&x->results, 0);
	r->xjob = x;
	worker_post(r->srv->hub->w[0], xjob_run, x);
	req_suspend(r);
}

void xjob_cancel(struct req *r)
{
	if (!r->xjob)
		return;
	__atomic_store_n(&r->xjob->cancelled, 1, __ATOMIC_SEQ_CST);
	r->xjob = NULL;
}
