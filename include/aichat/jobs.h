/*
 * jobs.h - background batch jobs kept in SQLite.
 *
 * A job is a list of prompts run through the batch service, with every
 * item's result written to the database as it finishes.  After a restart
 * jobs_resume() continues queued and running jobs; finished items are
 * never redone.  Ids are "job_" and 16 hex digits; anything else is
 * refused before it reaches a query.
 */
#ifndef AICHAT_JOBS_H
#define AICHAT_JOBS_H

#include <cJSON.h>
#include <sqlite3.h>

#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/provider.h"
#include "aichat/transfer.h"

struct jobs;

/* A runner on eng using db (both borrowed); at most max_running jobs run
 * at once, the others wait as "queued". */
struct jobs *jobs_new(struct engine *eng, const struct config *cfg,
		      sqlite3 *db, int max_running, const struct llm_opts *o);
/* Stops running jobs (they stay "running" in the database, to be resumed
 * by the next process) and frees the runner. */
void jobs_free(struct jobs *j);
/* Picks up the queued and running jobs found in the database. */
void jobs_resume(struct jobs *j);

/* True when id has the shape of a job id. */
int jobs_valid_id(const char *id);
/* Stores a validated JobRequest and queues it; the new job's status
 * object (owned), or NULL with e. */
cJSON *jobs_submit(struct jobs *j, const cJSON *req, struct err *e);
/* Status object of job id, or NULL with e (ERR_NOT_FOUND). */
cJSON *jobs_status(struct jobs *j, const char *id, struct err *e);
/* Results of the finished items, one JSON line each, in input order. */
int jobs_results(struct jobs *j, const char *id, struct buf *out, struct err *e);
/* Cancels a queued or running job; its status object, or NULL with e. */
cJSON *jobs_cancel(struct jobs *j, const char *id, struct err *e);

#endif
