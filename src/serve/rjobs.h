/*
 * rjobs.h - background jobs kept in Redis (serve --redis), so that every
 * replica sees and runs every job.  The same calls and answers as the
 * SQLite jobs (jobs.h): the routes do not tell them apart.
 *
 * A job is a hash (PREFIX "job:" ID) with its settings and counters, and
 * its finished items a hash (... ":results", one field per item index);
 * PREFIX "jobs" lists the ids by submission time.  Its items wait in one
 * stream (PREFIX "jobs:q") read through the consumer group "run": each
 * replica takes as many as it has free upstream slots (the gate of
 * --max-upstream), and keeps the ones it holds claimed (XCLAIM) every
 * third of the visibility timeout.  An item whose replica died is idle
 * for the whole timeout and another replica takes it over.
 *
 * A job's concurrency holds across all replicas: each item taken gets a
 * lease in the job's ":run" set, renewed with its claim and ended with
 * its result; a lease not renewed lapses after the visibility timeout,
 * so a dead replica's slots come back with its items.  An item of a job
 * at its limit is parked: it stays pending in the group, held by the
 * consumer "wait" and listed in the job's ":wait" set, and the items
 * behind it are taken; it is taken again, oldest first, once its job
 * has room.  Taking is one script, so no item is given to two replicas;
 * only a replica stalled past the timeout (its items taken over) runs
 * calls that no lease counts.
 *
 * A result is written with HSETNX, and the counters move only when that
 * wrote, so an item that ran twice counts once.  The job's last result
 * also puts its id in PREFIX "jobs:callbacks" when it has a callback_url
 * and claims the callback for the replica that wrote it (SET NX PX, the
 * visibility timeout); that replica POSTs the final status.  A 2xx
 * answer marks it delivered; a failure holds the claim for a backoff (1,
 * 2, 4, 8 s), after which the beat of any replica claims and sends it
 * again; the fifth failure marks it failed.  A sender that died loses its
 * claim the same way.  So the callback is sent at least once (twice only
 * when a sender outlives its claim), and GET /jobs/ID shows its state.
 * $AICHAT_TEST_CALLBACK_HOLD_MS (tests only) delays the first attempt.
 *
 * A cancelled job's items are dropped wherever they wait; items already
 * running finish and their results are not recorded.  Nothing secret is
 * stored: the submitting API key is its number.
 */
#ifndef AICHAT_SERVE_RJOBS_H
#define AICHAT_SERVE_RJOBS_H

#include <cJSON.h>

#include "aichat/batch.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/jobs.h"
#include "aichat/redis.h"
#include "aichat/transfer.h"

struct rjobs;
struct rjobs_call;

/* A runner on eng taking items from Redis through rs (all borrowed, as is
 * prefix); at most concurrency items run here at once, each holding a
 * slot of gate.  The visibility timeout is $AICHAT_JOB_LEASE_MS (30 s by
 * default, as for the SQLite jobs' lease); an idle replica looks for
 * items every $AICHAT_JOB_POLL_MS (1 s; a job posted to it, at once). */
struct rjobs *rjobs_new(struct engine *eng, const struct config *cfg,
			struct redis *rs, const char *prefix,
			const struct llm_opts *o, const struct upstream_gate *gate,
			int concurrency);
/* As jobs_set_spend(): fn sees every finished call of an item. */
void rjobs_set_spend(struct rjobs *q, jobs_spend_fn fn, void *ud);
/* Starts taking items. */
void rjobs_start(struct rjobs *q);
/* Stops running items (another replica takes them over); commands under
 * way may still answer, until the connection is freed. */
void rjobs_stop(struct rjobs *q);
/* After redis_free(). */
void rjobs_free(struct rjobs *q);

/* As jobs_submit() and the others: fn runs later, on the loop, unless
 * rjobs_call_cancel() comes first; NULL with e when the call cannot be
 * made (ERR_OVERLOADED: Redis is down; ERR_NOT_FOUND: not a job id).
 * rjobs_list answers {"object": "list", "data": [status...]}, the newest
 * job first, at most limit of them. */
struct rjobs_call *rjobs_submit(struct rjobs *q, const cJSON *req, int key,
				jobs_reply_fn fn, void *ud, struct err *e);
struct rjobs_call *rjobs_status(struct rjobs *q, const char *id,
				jobs_reply_fn fn, void *ud, struct err *e);
struct rjobs_call *rjobs_results(struct rjobs *q, const char *id,
				 jobs_reply_fn fn, void *ud, struct err *e);
struct rjobs_call *rjobs_cancel(struct rjobs *q, const char *id,
				jobs_reply_fn fn, void *ud, struct err *e);
struct rjobs_call *rjobs_list(struct rjobs *q, int limit,
			      jobs_reply_fn fn, void *ud, struct err *e);
/* fn will not be called (NULL-safe). */
void rjobs_call_cancel(struct rjobs_call *c);

#endif
