/*
 * routes_jobs.c - background jobs over HTTP: POST /jobs queues a batch
 * (202), GET /jobs/{id} and /jobs/{id}/results report on it, DELETE
 * /jobs/{id} cancels it, GET /jobs lists the newest.  The work is the
 * jobs service's (jobq.c: SQLite, or Redis with --redis), which outlives
 * the request; each route suspends until the answer comes back
 * (r->jobcall), and a call that cannot be made now (a full writer queue,
 * Redis down, the database not opened at start) is a 503 with
 * Retry-After.  The jobs are worker 0's: on another worker the call is
 * handed over (workers.c).
 */
#include "internal.h"

static void on_answer(void *ud, cJSON *status, const struct buf *results,
		      const struct err *e)
{
	struct req *r = ud;

	r->jobcall = NULL;
	if (!status)
		reply_error(r, e);
	else if (r->route->response == RESP_JOB_RESULTS) {
		reply(r, 200, "application/x-ndjson", results->ptr, results->len);
		cJSON_Delete(status);
	} else
		reply_json(r, r->route->response == RESP_JOB_SUBMIT ? 202 : 200, status);
}

enum jobq_op job_route_op(enum route_response kind)
{
	switch (kind) {
	case RESP_JOB_SUBMIT:
		return JOBQ_SUBMIT;
	case RESP_JOB_RESULTS:
		return JOBQ_RESULTS;
	case RESP_JOB_CANCEL:
		return JOBQ_CANCEL;
	case RESP_JOB_LIST:
		return JOBQ_LIST;
	default:
		return JOBQ_STATUS;
	}
}

void reply_job_error(struct req *r, const struct err *e)
{
	if (e->code == ERR_OVERLOADED) {
		struct MHD_Response *resp = error_response(r, e->code, e->msg);
		mhd.add_response_header(resp, "Retry-After", "1");
		send_response(r, 503, resp);
	} else {
		reply_error(r, e);
	}
}

/* POST /jobs (its body validated, in r->json), GET /jobs, and GET and
 * DELETE on /jobs/{id}. */
void route_job(struct req *r)
{
	struct err e;

	if (r->srv->worker) {
		route_job_remote(r);
		return;
	}
	if (!r->srv->jq) {
		reply_error_status(r, 503, ERR_OVERLOADED, JOBS_OFF_MSG);
		return;
	}
	err_clear(&e);
	r->jobcall = jobq_call(r->srv->jq, job_route_op(r->route->response), r->json,
			       r->path_id, r->key, JOBS_LIST_MAX, on_answer, r, &e);
	if (r->jobcall)
		req_suspend(r);
	else
		reply_job_error(r, &e);
}
