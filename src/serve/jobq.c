/*
 * jobq.c - serve's background jobs behind one small interface with two
 * backends: the SQLite jobs (core/jobs.c, one server and its workers) and
 * the jobs in Redis (rjobs.c, every replica).  The routes (routes_jobs.c)
 * and the hand-over between workers (workers.c) call jobq_call() and never
 * know which backend runs; only server.c, which makes it, does.
 *
 * A call is a small handle around the backend's own, so that one cancel
 * reaches either.  Neither backend answers before returning: a call that
 * cannot be made returns NULL with e, else fn runs later on the loop,
 * exactly once, unless jobq_call_cancel() comes first.
 */
#include "aichat/jobs.h"
#include "aichat/xalloc.h"
#include "internal.h"
#include "rjobs.h"

#include <stdlib.h>

struct jobq {
	struct jobs *local;          /* one of the two */
	struct rjobs *redis;
};

struct jobq_call {
	const struct jobq *q;
	void *h;                     /* the backend's call */
	jobs_reply_fn fn;
	void *ud;
};

struct jobq *jobq_local_new(struct jobs *j)
{
	struct jobq *q = xcalloc(1, sizeof(*q));

	q->local = j;
	return q;
}

struct jobq *jobq_redis_new(struct rjobs *rq)
{
	struct jobq *q = xcalloc(1, sizeof(*q));

	q->redis = rq;
	return q;
}

static void on_answer(void *ud, cJSON *status, const struct buf *results,
		      const struct err *e)
{
	struct jobq_call *c = ud;
	jobs_reply_fn fn = c->fn;
	void *fud = c->ud;

	free(c);
	fn(fud, status, results, e);
}

static void *local_call(struct jobs *j, enum jobq_op op, const cJSON *body,
			const char *id, int key, int limit,
			struct jobq_call *c, struct err *e)
{
	switch (op) {
	case JOBQ_SUBMIT:
		return jobs_submit(j, body, key, on_answer, c, e);
	case JOBQ_RESULTS:
		return jobs_results(j, id, on_answer, c, e);
	case JOBQ_CANCEL:
		return jobs_cancel(j, id, on_answer, c, e);
	case JOBQ_LIST:
		return jobs_list(j, limit, on_answer, c, e);
	default:
		return jobs_status(j, id, on_answer, c, e);
	}
}

static void *redis_call(struct rjobs *rq, enum jobq_op op, const cJSON *body,
			const char *id, int key, int limit,
			struct jobq_call *c, struct err *e)
{
	switch (op) {
	case JOBQ_SUBMIT:
		return rjobs_submit(rq, body, key, on_answer, c, e);
	case JOBQ_RESULTS:
		return rjobs_results(rq, id, on_answer, c, e);
	case JOBQ_CANCEL:
		return rjobs_cancel(rq, id, on_answer, c, e);
	case JOBQ_LIST:
		return rjobs_list(rq, limit, on_answer, c, e);
	default:
		return rjobs_status(rq, id, on_answer, c, e);
	}
}

struct jobq_call *jobq_call(struct jobq *q, enum jobq_op op, const cJSON *body,
			    const char *id, int key, int limit,
			    jobs_reply_fn fn, void *ud, struct err *e)
{
	struct jobq_call *c;

	if (!q) {
		err_set(e, ERR_OVERLOADED, JOBS_OFF_MSG);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->fn = fn;
	c->ud = ud;
	c->h = q->redis ? redis_call(q->redis, op, body, id, key, limit, c, e)
			: local_call(q->local, op, body, id, key, limit, c, e);
	if (!c->h) {
		free(c);
		return NULL;
	}
	return c;
}

void jobq_call_cancel(struct jobq_call *c)
{
	if (!c)
		return;
	if (c->q->redis)
		rjobs_call_cancel(c->h);
	else
		jobs_call_cancel(c->h);
	free(c);
}

void jobq_stop(struct jobq *q)
{
	if (!q)
		return;
	if (q->redis)
		rjobs_stop(q->redis);
	else
		jobs_stop(q->local);
}

void jobq_free(struct jobq *q)
{
	if (!q)
		return;
	if (q->redis)
		rjobs_free(q->redis);
	else
		jobs_free(q->local);
	free(q);
}
