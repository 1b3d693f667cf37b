/*
 * jobs.h - background batch jobs kept in SQLite.
 *
 * A job is a list of prompts run through the batch service, with every
 * item's result written to the database as it finishes.  Every database
 * call goes through a writer (writer.h), never on the loop thread, so a
 * database locked by another process slows jobs down and freezes nothing;
 * a write that meets a lock is tried again until it lands.
 *
 * A running job is owned by one live server: its row names the owner and
 * a lease the owner renews (every third of $AICHAT_JOB_LEASE_MS, 30 s by
 * default).  Another server resumes it only once the lease has expired,
 * or at once when the owner was a process of the same host that is gone.
 * Every change of a job's or an item's state is guarded by the state it
 * expects (and by the owner), so two servers on one database never run an
 * item twice nor count it twice.  Finished items are never redone.
 *
 * A job that ends (done or failed) with a callback_url has its callback
 * pending in the same write; the owner POSTs the final status, counts
 * each attempt (callback_attempts, callback_error) and tries again after
 * 1, 2, 4 and 8 s until a 2xx answer (delivered) or the fifth failure
 * (failed; a URL that is not http(s) fails at once).  It keeps the job's
 * lease meanwhile, and a callback still pending when its owner is gone is
 * sent by the server that takes it over, as a job is resumed.
 * $AICHAT_TEST_CALLBACK_HOLD_MS (tests only) delays the first attempt.  Ids
 * are "job_" and 16 hex digits; anything else is refused before it
 * reaches a query.
 */
#ifndef AICHAT_JOBS_H
#define AICHAT_JOBS_H

#include <cJSON.h>

#include "aichat/batch.h"
#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/provider.h"
#include "aichat/transfer.h"
#include "aichat/writer.h"

struct jobs;
struct jobs_call;

/* A runner on eng whose SQLite work goes through w (both borrowed); at
 * most max_running jobs run at once here, the others wait as "queued";
 * items take slots of gate (NULL: no shared bound). */
struct jobs *jobs_new(struct engine *eng, const struct config *cfg,
		      struct writer *w, int max_running, const struct llm_opts *o,
		      const struct upstream_gate *gate);
/* Called on the loop with each finished item's result, job_id and the
 * number of the API key that submitted the job (0: none), wherever the
 * job runs (after a restart too): its spending is that key's. */
typedef void (*jobs_spend_fn)(void *ud, const char *job_id, int key,
			      const struct chat_result *res);
void jobs_set_spend(struct jobs *j, jobs_spend_fn fn, void *ud);
/* Looks for queued jobs, and for running ones whose owner is gone, now
 * and then periodically. */
void jobs_resume(struct jobs *j);
/* Stops running jobs and queues the end of their leases (they stay
 * "running", for the next server to resume at once).  Call before
 * writer_free(), then jobs_free(). */
void jobs_stop(struct jobs *j);
void jobs_free(struct jobs *j);

/* True when id has the shape of a job id. */
int jobs_valid_id(const char *id);

/*
 * A job's callback, the same with either backend: its final status POSTed
 * to its callback_url, until answered 2xx, at most JOBS_CB_ATTEMPTS
 * times, JOBS_CB_BACKOFF_MS after the first failure and twice as long
 * after each next one.
 */
#define JOBS_CB_ATTEMPTS 5
#define JOBS_CB_BACKOFF_MS 1000
/* The body: status without the callback's own state (owned; free()). */
char *jobs_callback_body(const cJSON *status);
/* 1 when the POST's answer r delivered the callback (2xx); else 0, and
 * why in what ("HTTP 500", or the transport's error). */
int jobs_callback_outcome(const struct transfer_result *r, char *what,
			  size_t cap);
/* POSTs body (borrowed until on_done or cancel) to url; the transfer, or
 * NULL with e filled (no callback runs then). */
struct transfer *jobs_callback_post(struct engine *eng, const char *url,
				    const char *body, int64_t connect_ms,
				    int64_t total_ms,
				    const struct transfer_cbs *cbs, void *ud,
				    struct err *e);

/*
 * The answer of a call: status is the job's status object (owned by the
 * callee, NULL on error), results the finished items as JSON lines in
 * input order (jobs_results only), e the error when status is NULL.
 */
typedef void (*jobs_reply_fn)(void *ud, cJSON *status, const struct buf *results,
			      const struct err *e);

/* Each queues its work and calls fn later, on the loop; NULL with e when
 * it cannot be queued (ERR_OVERLOADED: the writer's queue is full;
 * ERR_NOT_FOUND: not a job id).  jobs_submit stores a validated
 * JobRequest, submitted with API key number key (0: none), and queues
 * the job; jobs_cancel cancels a queued or running
 * one (an answer of its status either way). */
struct jobs_call *jobs_submit(struct jobs *j, const cJSON *req, int key,
			      jobs_reply_fn fn, void *ud, struct err *e);
struct jobs_call *jobs_status(struct jobs *j, const char *id,
			      jobs_reply_fn fn, void *ud, struct err *e);
struct jobs_call *jobs_results(struct jobs *j, const char *id,
			       jobs_reply_fn fn, void *ud, struct err *e);
struct jobs_call *jobs_cancel(struct jobs *j, const char *id,
			      jobs_reply_fn fn, void *ud, struct err *e);
/* The newest jobs first, at most limit: status is {"object": "list",
 * "data": [status...]}. */
#define JOBS_LIST_MAX 100
struct jobs_call *jobs_list(struct jobs *j, int limit,
			    jobs_reply_fn fn, void *ud, struct err *e);
/* fn will not be called (what was asked is still done). */
void jobs_call_cancel(struct jobs_call *c);

/* Shared by both job backends (jobs.c, serve/rjobs.c): the time now as
 * "YYYY-MM-DDTHH:MM:SSZ" (UTC), and bytes (at most 16) random bytes as
 * lowercase hex into dst (2 * bytes + 1 long), for ids. */
void jobs_now_iso(char *dst, size_t cap);
void jobs_random_hex(char *dst, int bytes);

#endif
