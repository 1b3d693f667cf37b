/*
 * routes_jobs.c - background jobs over HTTP: POST /jobs queues a batch
 * (202), GET /jobs/{id} and /jobs/{id}/results report on it, DELETE
 * /jobs/{id} cancels it.  The work is the jobs service's (core/jobs.c),
 * which outlives the request; its database work runs on the writer's
 * thread, so each route suspends until the answer comes back (r->jobcall),
 * and a full writer queue is a 503 with Retry-After.  503 too when the
 * database could not be opened at start.
 */
#include "aichat/jobs.h"
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

/* POST /jobs (its body validated, in r->json), and GET and DELETE on
 * /jobs/{id}. */
void route_job(struct req *r)
{
	struct jobs *j = r->srv->jobs;
	struct err e;

	err_clear(&e);
	if (r->srv->worker) {
		/* Worker 0 runs the jobs: the call is its (workers.c). */
		route_job_remote(r);
		return;
	}
	if (!j) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "background jobs are unavailable: the database could not be opened");
		return;
	}
	switch (r->route->response) {
	case RESP_JOB_SUBMIT:
		r->jobcall = jobs_submit(j, r->json, r->key, on_answer, r, &e);
		break;
	case RESP_JOB_RESULTS:
		r->jobcall = jobs_results(j, r->path_id, on_answer, r, &e);
		break;
	case RESP_JOB_CANCEL:
		r->jobcall = jobs_cancel(j, r->path_id, on_answer, r, &e);
		break;
	default:
		r->jobcall = jobs_status(j, r->path_id, on_answer, r, &e);
		break;
	}
	if (r->jobcall) {
		req_suspend(r);
	} else if (e.code == ERR_OVERLOADED) {
		struct MHD_Response *resp = error_response(r, e.code, e.msg);
		mhd.add_response_header(resp, "Retry-After", "1");
		send_response(r, 503, resp);
	} else {
		reply_error(r, &e);
	}
}
