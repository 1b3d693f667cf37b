/*
 * routes_jobs.c - background jobs over HTTP: POST /jobs queues a batch
 * (202), GET /jobs/{id} and /jobs/{id}/results report on it, DELETE
 * /jobs/{id} cancels it.  The work is the jobs service's (core/jobs.c),
 * which outlives the request; these routes only answer, with a 503 when
 * the database could not be opened at start.
 */
#include "aichat/jobs.h"
#include "internal.h"

/* POST /jobs (its body validated, in r->json), and GET and DELETE on
 * /jobs/{id}. */
void route_job(struct req *r)
{
	struct err e;
	cJSON *o;

	err_clear(&e);
	if (!r->srv->jobs) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "background jobs are unavailable: the database could not be opened");
		return;
	}
	if (r->route->response == RESP_JOB_SUBMIT) {
		o = jobs_submit(r->srv->jobs, r->json, &e);
		if (o)
			reply_json(r, 202, o);
		else
			reply_error(r, &e);
		return;
	}
	if (r->route->response == RESP_JOB_RESULTS) {
		struct buf b;
		buf_init(&b, 0);
		if (jobs_results(r->srv->jobs, r->path_id, &b, &e) < 0)
			reply_error(r, &e);
		else
			reply(r, 200, "application/x-ndjson", b.ptr, b.len);
		buf_release(&b);
		return;
	}
	o = r->route->response == RESP_JOB_CANCEL ?
	    jobs_cancel(r->srv->jobs, r->path_id, &e) :
	    jobs_status(r->srv->jobs, r->path_id, &e);
	if (!o)
		reply_error(r, &e);
	else
		reply_json(r, 200, o);
}
