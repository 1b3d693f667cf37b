/*
 * jobs.c - background batch jobs in SQLite; see jobs.h.
 *
 * Each running job is a batch whose source pages its queued items out of
 * the database in input order; each finished item is one UPDATE of its
 * row and of the job's counters, in one transaction, so a crash at any
 * moment loses at most the items in flight and the results not yet
 * written (no more than the job's concurrency of each).  Every statement runs on the
 * writer's thread (the functions named db_*, with the writer's
 * connection); their answers come back to the loop in the *_done
 * callbacks.  A write that fails is rolled back and tried again
 * (WRITER_RETRY), so no finished item is lost while the server lives.
 * A job's callback is sent at least once: pending from the write of the
 * final status, under the job's lease, until answered 2xx or out of
 * attempts (see "callbacks" below).
 * Statements are prepared, ids are checked for their shape before any
 * query.
 */
#include "aichat/batch.h"
#include "aichat/config.h"
#include "aichat/jobs.h"
#include "aichat/json.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PAGE 64

struct job_item {
	struct run_job *rj;
	long idx;
	char *item_id;
	struct chat_request req;
	struct job_item *prev, *next;  /* in rj->out while it runs */
};

struct run_job {
	struct jobs *j;
	char id[40];
	char *model, *callback;
	double temperature;
	int max_tokens, concurrency;
	int key;                      /* the API key that submitted it, 0 */
	struct batch *batch;
	struct job_item *page[PAGE];
	int npage, pos;
	struct job_item *out;         /* handed to the batch, not finished: a
				       * cancelled batch leaves them here */
	long cursor;                  /* last idx handed out */
	int exhausted, loading;
	int writes;                   /* item results on their way to the db */
	int batch_done;               /* every item ran; results may be pending */
	int finishing;                /* the final status is being written */
	int lost;                     /* no longer ours: cancelled, or the
				       * lease went to another server */
	long long lease_until;        /* wall ms: our lease holds until then */
	struct run_job *next;
};

struct jobs {
	struct engine *eng;
	const struct config *cfg;
	struct writer *w;
	const struct upstream_gate *gate;
	int max_running, running;
	struct llm_opts o;
	struct run_job *list;
	struct loop_timer *kick, *renew_timer;
	struct cbsend *cbs;           /* callbacks held, under way or waiting */
	int scanning, sweeping, stopping;
	long long lease_ms;
	long long cb_hold_ms;         /* $AICHAT_TEST_CALLBACK_HOLD_MS */
	char owner[96];               /* "host:pid:random", this server */
	char host[64];
	jobs_spend_fn spend;
	void *spend_ud;
};

void jobs_now_iso(char *dst, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(dst, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Wall-clock milliseconds: leases are compared across processes. */
static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jobs_valid_id(const char *id)
{
	if (strncmp(id, "job_", 4) || strlen(id) != 20)
		return 0;
	for (const char *p = id + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* WRITER_RETRY when the database was busy or locked, else -1 with e. */
static int db_fail(sqlite3 *db, struct err *e)
{
	int rc = sqlite3_errcode(db);

	if (e)
		err_set(e, ERR_IO, "database: %s", sqlite3_errmsg(db));
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WRITER_RETRY : -1;
}

/* Rolls back what is open and returns db_fail(). */
static int db_abort(sqlite3 *db, struct err *e)
{
	int rc = db_fail(db, e);

	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ==== reading (on the writer's thread) ==== */

/* The status object of id into *out (NULL and ERR_NOT_FOUND when there is
 * no such job); 0, or db_fail(). */
static int db_status(sqlite3 *db, const char *id, cJSON **out, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *o = NULL;
	int rc;
	static const char *sql =
		"SELECT id, status, model, concurrency, total, succeeded, failed,"
		" created_at, started_at, finished_at, callback_status,"
		" callback_attempts, callback_error FROM jobs WHERE id = ?";

	*out = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, e);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		long total = sqlite3_column_int64(st, 4);
		long ok = sqlite3_column_int64(st, 5), bad = sqlite3_column_int64(st, 6);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 0));
		cJSON_AddStringToObject(o, "status", (const char *)sqlite3_column_text(st, 1));
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			cJSON_AddStringToObject(o, "model", (const char *)sqlite3_column_text(st, 2));
		else
			cJSON_AddNullToObject(o, "model");
		cJSON_AddNumberToObject(o, "concurrency", sqlite3_column_int(st, 3));
		cJSON *c = cJSON_AddObjectToObject(o, "counts");
		cJSON_AddNumberToObject(c, "total", (double)total);
		cJSON_AddNumberToObject(c, "done", (double)(ok + bad));
		cJSON_AddNumberToObject(c, "succeeded", (double)ok);
		cJSON_AddNumberToObject(c, "failed", (double)bad);
		cJSON_AddNumberToObject(c, "pending", (double)(total - ok - bad));
		for (int k = 7; k <= 9; k++) {
			const char *name = k == 7 ? "created_at" : k == 8 ? "started_at" : "finished_at";
			if (sqlite3_column_type(st, k) != SQLITE_NULL)
				cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, k));
			else
				cJSON_AddNullToObject(o, name);
		}
		/* A job with a callback, once it has ended. */
		if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
			cJSON_AddStringToObject(o, "callback_status",
						(const char *)sqlite3_column_text(st, 10));
			cJSON_AddNumberToObject(o, "callback_attempts", sqlite3_column_int(st, 11));
			if (sqlite3_column_type(st, 12) != SQLITE_NULL)
				cJSON_AddStringToObject(o, "callback_error",
							(const char *)sqlite3_column_text(st, 12));
			else
				cJSON_AddNullToObject(o, "callback_error");
		}
	} else if (rc != SQLITE_DONE) {
		rc = db_fail(db, e);
		sqlite3_finalize(st);
		return rc;
	} else {
		err_set(e, ERR_NOT_FOUND, "no job '%s'", id);
	}
	sqlite3_finalize(st);
	*out = o;
	return 0;
}

void jobs_random_hex(char *dst, int bytes)
{
	unsigned char b[16];
	static const char hex[] = "0123456789abcdef";

	if (bytes > 16)
		bytes = 16;
	if (getrandom(b, (size_t)bytes, 0) != (ssize_t)bytes)
		for (int i = 0; i < bytes; i++)
			b[i] = (unsigned char)rand();
	for (int i = 0; i < bytes; i++) {
		dst[2 * i] = hex[b[i] >> 4];
		dst[2 * i + 1] = hex[b[i] & 15];
	}
	dst[2 * bytes] = '\0';
}

/* The jobs' own work never gives up while the server runs: whatever
 * failed is rolled back and tried again (the writer waits between). */
static int db_retry(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return WRITER_RETRY;
}

/* ==== calls from the routes ==== */

enum call_kind { CALL_SUBMIT, CALL_STATUS, CALL_RESULTS, CALL_CANCEL, CALL_LIST };

struct jobs_call {
	struct jobs *j;
	enum call_kind kind;
	char id[24];
	cJSON *req;                   /* CALL_SUBMIT: the body, a copy */
	int key;                      /* CALL_SUBMIT: the API key's number;
				       * CALL_LIST: how many at most */
	cJSON *status;
	struct buf results;
	struct err e;
	struct writer_op *op;
	jobs_reply_fn fn;
	void *ud;
};

static int db_submit(sqlite3 *db, struct jobs_call *c)
{
	const cJSON *items = json_arr(c->req, "items"), *it;
	sqlite3_stmt *job = NULL, *ins = NULL;
	char when[32];
	double d;
	long idx = 0;
	int rc;

	jobs_now_iso(when, sizeof(when));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_abort(db, &c->e);
	if (sqlite3_prepare_v2(db, "INSERT INTO jobs (id, status, model, temperature,"
			       " max_tokens, concurrency, callback_url, total, created_at, api_key)"
			       " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)", -1, &job, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO job_items (job_id, idx, item_id, prompt)"
			       " VALUES (?, ?, ?, ?)", -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(job, 1, c->id, -1, SQLITE_STATIC);
	if (json_str(c->req, "model"))
		sqlite3_bind_text(job, 2, json_str(c->req, "model"), -1, SQLITE_STATIC);
	if (json_num(c->req, "temperature", &d) == 0)
		sqlite3_bind_double(job, 3, d);
	if (json_num(c->req, "max_tokens", &d) == 0)
		sqlite3_bind_int(job, 4, json_clamp_int(d, 1, INT_MAX));
	d = 10;
	json_num(c->req, "concurrency", &d);
	sqlite3_bind_int(job, 5, json_clamp_int(d, 1, INT_MAX));
	if (json_str(c->req, "callback_url"))
		sqlite3_bind_text(job, 6, json_str(c->req, "callback_url"), -1, SQLITE_STATIC);
	sqlite3_bind_int(job, 7, cJSON_GetArraySize(items));
	sqlite3_bind_text(job, 8, when, -1, SQLITE_STATIC);
	if (c->key > 0)
		sqlite3_bind_int(job, 9, c->key);
	if (sqlite3_step(job) != SQLITE_DONE)
		goto fail;
	cJSON_ArrayForEach(it, items) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, idx++);
		sqlite3_bind_text(ins, 3, json_str(it, "id"), -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, json_str(it, "prompt"), -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(job);
	sqlite3_finalize(ins);
	job = ins = NULL;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* Stored: reading it back is not worth a retry of the insert. */
	db_status(db, c->id, &c->status, &c->e);
	return 0;
fail:
	rc = db_fail(db, &c->e);
	sqlite3_finalize(job);
	sqlite3_finalize(ins);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int db_results(sqlite3 *db, struct jobs_call *c)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = db_status(db, c->id, &c->status, &c->e)) != 0 || !c->status)
		return rc;
	if (sqlite3_prepare_v2(db, "SELECT result FROM job_items WHERE job_id = ?"
			       " AND result IS NOT NULL ORDER BY idx", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	buf_clear(&c->results);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		buf_appends(&c->results, (const char *)sqlite3_column_text(st, 0));
		buf_putc(&c->results, '\n');
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
fail:
	rc = db_fail(db, &c->e);
	cJSON_Delete(c->status);
	c->status = NULL;
	return rc;
}

/* Cancels a queued or running job (guarded by the status it had); an
 * owner elsewhere sees it when it renews its lease. */
static int db_cancel(sqlite3 *db, struct jobs_call *c)
{
	sqlite3_stmt *st;
	char when[32];
	int rc;

	jobs_now_iso(when, sizeof(when));
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET status = 'cancelled', finished_at = ?,"
			       " owner = NULL WHERE id = ? AND status IN ('queued', 'running')",
			       -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, &c->e);
	sqlite3_bind_text(st, 1, when, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, &c->e);
	return db_status(db, c->id, &c->status, &c->e);
}

/* The newest jobs' statuses, as a list object. */
static int db_list(sqlite3 *db, struct jobs_call *c)
{
	sqlite3_stmt *st;
	cJSON *data;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT id FROM jobs ORDER BY created_at DESC, rowid DESC"
			       " LIMIT ?", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, &c->e);
	sqlite3_bind_int(st, 1, c->key);
	c->status = cJSON_CreateObject();
	cJSON_AddStringToObject(c->status, "object", "list");
	data = cJSON_AddArrayToObject(c->status, "data");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *one = NULL;
		char id[40];
		snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 0));
		if ((rc = db_status(db, id, &one, &c->e)) != 0)
			break;
		if (one)
			cJSON_AddItemToArray(data, one);
		rc = SQLITE_ROW;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	cJSON_Delete(c->status);
	c->status = NULL;
	return rc == SQLITE_ROW ? db_fail(db, &c->e) : rc;
}

static int call_run(sqlite3 *db, void *arg)
{
	struct jobs_call *c = arg;

	err_clear(&c->e);
	cJSON_Delete(c->status);
	c->status = NULL;
	switch (c->kind) {
	case CALL_SUBMIT:
		return db_submit(db, c);
	case CALL_RESULTS:
		return db_results(db, c);
	case CALL_CANCEL:
		return db_cancel(db, c);
	case CALL_LIST:
		return db_list(db, c);
	case CALL_STATUS:
		break;
	}
	return db_status(db, c->id, &c->status, &c->e);
}

static void schedule(struct jobs *j);
static void drop_run(struct run_job *rj);

static void call_done(void *arg, int rc, int cancelled)
{
	struct jobs_call *c = arg;
	struct jobs *j = c->j;

	if (c->kind == CALL_CANCEL && c->status &&
	    !strcmp(json_str(c->status, "status"), "cancelled"))
		for (struct run_job *rj = j->list; rj; rj = rj->next)
			if (!strcmp(rj->id, c->id)) {
				rj->lost = 1;
				drop_run(rj);
				break;
			}
	if (c->kind == CALL_SUBMIT && c->status)
		schedule(j);
	if (!cancelled) {
		if (rc != 0 && !c->status && c->e.code == ERR_OK)
			err_set(&c->e, ERR_IO, "database: the job could not be written");
		c->fn(c->ud, c->status, &c->results, &c->e);
		c->status = NULL;   /* the callee's */
	}
	cJSON_Delete(c->status);
	cJSON_Delete(c->req);
	buf_release(&c->results);
	free(c);
}

static const struct writer_ops call_ops = { .run = call_run, .done = call_done };

static struct jobs_call *call_new(struct jobs *j, enum call_kind kind, const char *id,
				  const cJSON *req, int key, jobs_reply_fn fn,
				  void *ud, struct err *e)
{
	struct jobs_call *c;

	if (kind != CALL_SUBMIT && kind != CALL_LIST && !jobs_valid_id(id)) {
		err_set(e, ERR_NOT_FOUND, "no job '%.64s' (job ids look like job_0123456789abcdef)", id);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->j = j;
	c->kind = kind;
	if (kind == CALL_SUBMIT) {
		memcpy(c->id, "job_", 4);
		jobs_random_hex(c->id + 4, 8);
		c->req = cJSON_Duplicate(req, 1);
		c->key = key;
	} else if (kind == CALL_LIST) {
		c->key = key;
	} else {
		snprintf(c->id, sizeof(c->id), "%s", id);
	}
	buf_init(&c->results, 0);
	c->fn = fn;
	c->ud = ud;
	c->op = writer_submit(j->w, &call_ops, c, WRITER_BOUNDED);
	if (!c->op) {
		cJSON_Delete(c->req);
		buf_release(&c->results);
		free(c);
		err_set(e, ERR_OVERLOADED, "server busy: too many database writes waiting, try again");
		return NULL;
	}
	return c;
}

struct jobs_call *jobs_submit(struct jobs *j, const cJSON *req, int key,
			      jobs_reply_fn fn, void *ud, struct err *e)
{
	return call_new(j, CALL_SUBMIT, NULL, req, key, fn, ud, e);
}

void jobs_set_spend(struct jobs *j, jobs_spend_fn fn, void *ud)
{
	j->spend = fn;
	j->spend_ud = ud;
}

struct jobs_call *jobs_status(struct jobs *j, const char *id,
			      jobs_reply_fn fn, void *ud, struct err *e)
{
	return call_new(j, CALL_STATUS, id, NULL, 0, fn, ud, e);
}

struct jobs_call *jobs_results(struct jobs *j, const char *id,
			       jobs_reply_fn fn, void *ud, struct err *e)
{
	return call_new(j, CALL_RESULTS, id, NULL, 0, fn, ud, e);
}

struct jobs_call *jobs_cancel(struct jobs *j, const char *id,
			      jobs_reply_fn fn, void *ud, struct err *e)
{
	return call_new(j, CALL_CANCEL, id, NULL, 0, fn, ud, e);
}

struct jobs_call *jobs_list(struct jobs *j, int limit,
			    jobs_reply_fn fn, void *ud, struct err *e)
{
	return call_new(j, CALL_LIST, NULL, NULL, limit > 0 ? limit : 1, fn, ud, e);
}

void jobs_call_cancel(struct jobs_call *c)
{
	if (c)
		writer_cancel(c->op);
}

/* ==== running ==== */

static void item_free(struct job_item *it)
{
	if (!it)
		return;
	free(it->item_id);
	chat_request_release(&it->req);
	free(it);
}

static void run_free(struct run_job *rj)
{
	struct jobs *j = rj->j;

	batch_cancel(rj->batch);
	for (int k = rj->pos; k < rj->npage; k++)
		item_free(rj->page[k]);
	while (rj->out) {
		struct job_item *it = rj->out;
		rj->out = it->next;
		item_free(it);
	}
	for (struct run_job **pp = &j->list; *pp; pp = &(*pp)->next)
		if (*pp == rj) {
			*pp = rj->next;
			break;
		}
	free(rj->model);
	free(rj->callback);
	free(rj);
}

static void finish(struct run_job *rj);

/* rj's batch is over (done, or stopped): once its results are written,
 * the job ends here -- its final status written, or, when it is no longer
 * ours, just forgotten.  While the server stops, jobs_free() frees it. */
static void maybe_end(struct run_job *rj)
{
	struct jobs *j = rj->j;

	if (j->stopping || rj->batch || rj->writes || rj->loading || rj->finishing)
		return;
	if (!rj->lost && rj->batch_done) {
		finish(rj);
		return;
	}
	if (!rj->lost)
		return;
	j->running--;
	run_free(rj);
	schedule(j);
}

/* Stops running rj now (cancelled, or no longer ours). */
static void drop_run(struct run_job *rj)
{
	if (rj->j->stopping)
		return;
	batch_cancel(rj->batch);
	rj->batch = NULL;
	maybe_end(rj);
}

/* -- the next page of queued items after the cursor -- */

struct page_op {
	struct run_job *rj;
	char id[40];
	long cursor;
	int n;
	long idx[PAGE];
	char *item_id[PAGE], *prompt[PAGE];
};

static int page_run(sqlite3 *db, void *arg)
{
	struct page_op *p = arg;
	sqlite3_stmt *st;
	int rc;

	for (int k = 0; k < p->n; k++) {
		free(p->item_id[k]);
		free(p->prompt[k]);
	}
	p->n = 0;
	if (sqlite3_prepare_v2(db, "SELECT idx, item_id, prompt FROM job_items"
			       " WHERE job_id = ? AND state = 'queued' AND idx > ?"
			       " ORDER BY idx LIMIT ?", -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, p->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, p->cursor);
	sqlite3_bind_int(st, 3, PAGE);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && p->n < PAGE) {
		p->idx[p->n] = (long)sqlite3_column_int64(st, 0);
		p->item_id[p->n] = xstrdup((const char *)sqlite3_column_text(st, 1));
		p->prompt[p->n] = xstrdup((const char *)sqlite3_column_text(st, 2));
		p->n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_retry(db);
	return 0;
}

static void page_done(void *arg, int rc, int cancelled)
{
	struct page_op *p = arg;
	struct run_job *rj = p->rj;

	if (!cancelled) {
		rj->loading = 0;
		if (rc == 0) {
			rj->npage = rj->pos = 0;
			for (int k = 0; k < p->n; k++) {
				struct job_item *it = xcalloc(1, sizeof(*it));
				it->rj = rj;
				it->idx = p->idx[k];
				it->item_id = p->item_id[k];
				p->item_id[k] = NULL;
				it->req.messages = xcalloc(1, sizeof(*it->req.messages));
				it->req.messages[0].role = xstrdup("user");
				it->req.messages[0].content = p->prompt[k];
				p->prompt[k] = NULL;
				it->req.nmessages = 1;
				it->req.model = rj->model ? xstrdup(rj->model) : NULL;
				it->req.temperature = rj->temperature;
				it->req.max_tokens = rj->max_tokens;
				it->req.stream = 1;
				rj->page[rj->npage++] = it;
				rj->cursor = it->idx;
			}
			if (rj->npage == 0)
				rj->exhausted = 1;
		}
		if (rj->batch)
			batch_refill(rj->batch);
		else
			maybe_end(rj);
	}
	for (int k = 0; k < p->n; k++) {
		free(p->item_id[k]);
		free(p->prompt[k]);
	}
	free(p);
}

static const struct writer_ops page_ops = { .run = page_run, .done = page_done };

static enum batch_next next_item(void *ud, void **tag,
				 const struct chat_request **req)
{
	struct run_job *rj = ud;
	struct job_item *it;

	/* Results not yet written hold items back: memory stays bounded
	 * while the database is locked, and a crash loses at most the
	 * items in flight and as many results on their way to the db. */
	if (rj->writes >= rj->concurrency)
		return BATCH_LATER;
	/* No new item without a lease that holds: once it runs out another
	 * server may take the job (renew_done() refills). */
	if (wall_ms() >= rj->lease_until)
		return BATCH_LATER;
	if (rj->pos == rj->npage && !rj->exhausted) {
		if (!rj->loading) {
			struct page_op *p = xcalloc(1, sizeof(*p));
			p->rj = rj;
			snprintf(p->id, sizeof(p->id), "%s", rj->id);
			p->cursor = rj->cursor;
			rj->loading = 1;
			writer_submit(rj->j->w, &page_ops, p, WRITER_ALWAYS);
		}
		return BATCH_LATER;
	}
	if (rj->pos == rj->npage)
		return BATCH_END;
	it = rj->page[rj->pos++];
	it->next = rj->out;
	if (rj->out)
		rj->out->prev = it;
	rj->out = it;
	*tag = it;
	*req = &it->req;
	return BATCH_ITEM;
}

/* -- one finished item -- */

struct item_op {
	struct run_job *rj;
	char id[40];
	const char *owner;            /* the jobs' */
	long idx;
	int ok;
	char *line;
	int applied;                  /* 0: the item or the job was not ours */
};

static int item_run(sqlite3 *db, void *arg)
{
	struct item_op *w = arg;
	sqlite3_stmt *st;

	w->applied = 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_retry(db);
	/* Only a queued item of a job this server runs: never twice. */
	if (sqlite3_prepare_v2(db, "UPDATE job_items SET state = ?1, result = ?2"
			       " WHERE job_id = ?3 AND idx = ?4 AND state = 'queued'"
			       " AND EXISTS (SELECT 1 FROM jobs WHERE id = ?3"
			       " AND status = 'running' AND owner = ?5)", -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, w->ok ? "done" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, w->line, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, w->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, w->idx);
	sqlite3_bind_text(st, 5, w->owner, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return db_retry(db);
	}
	sqlite3_finalize(st);
	w->applied = sqlite3_changes(db) == 1;
	if (w->applied) {
		if (sqlite3_prepare_v2(db, w->ok ?
				       "UPDATE jobs SET succeeded = succeeded + 1 WHERE id = ?" :
				       "UPDATE jobs SET failed = failed + 1 WHERE id = ?",
				       -1, &st, NULL) != SQLITE_OK)
			return db_retry(db);
		sqlite3_bind_text(st, 1, w->id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return db_retry(db);
		}
		sqlite3_finalize(st);
	}
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		w->applied = 0;
		return db_retry(db);
	}
	return 0;
}

static void item_done(void *arg, int rc, int cancelled)
{
	struct item_op *w = arg;
	struct run_job *rj = w->rj;

	if (!cancelled) {
		rj->writes--;
		/* Not applied: the job is no longer ours (cancelled, or its
		 * lease went elsewhere); whoever has it runs the item. */
		if (rc != 0 || !w->applied) {
			if (!rj->lost) {
				rj->lost = 1;
				batch_cancel(rj->batch);
				rj->batch = NULL;
			}
		}
		if (rj->batch)
			batch_refill(rj->batch);
		else
			maybe_end(rj);
	}
	free(w->line);
	free(w);
}

static const struct writer_ops item_ops = { .run = item_run, .done = item_done };

static void on_item(void *ud, void *tag, const struct chat_result *res)
{
	struct run_job *rj = ud;
	struct job_item *it = tag;
	struct item_op *w = xcalloc(1, sizeof(*w));
	cJSON *id = cJSON_CreateString(it->item_id), *o;
	char *idjson;

	idjson = json_print(id);
	cJSON_Delete(id);
	o = batch_result_json(idjson, res);
	free(idjson);
	w->line = json_print(o);
	cJSON_Delete(o);
	w->rj = rj;
	snprintf(w->id, sizeof(w->id), "%s", rj->id);
	w->owner = rj->j->owner;
	w->idx = it->idx;
	w->ok = res->err.code == ERR_OK;
	if (it->prev)
		it->prev->next = it->next;
	else
		rj->out = it->next;
	if (it->next)
		it->next->prev = it->prev;
	if (rj->j->spend)
		rj->j->spend(rj->j->spend_ud, rj->id, rj->key, res);
	rj->writes++;
	writer_submit(rj->j->w, &item_ops, w, WRITER_ALWAYS);
	item_free(it);
}

/* -- callbacks: at least once, by the job's owner -- */

/*
 * A job that ends with a callback_url has its callback marked pending in
 * the same write as its final status; the owner then POSTs that status
 * (without the callback's own fields).  A 2xx answer marks it delivered;
 * any other outcome is counted (attempts, error) and tried again after
 * 1, 2, 4 and 8 s, the fifth failure marks it failed (a URL that is not
 * http(s): the first).  The owner keeps the job's lease while its
 * callback is pending; a server that stops ends it, one that dies lets it
 * run out, and the server that resumes jobs then claims the callback (see
 * cb_sweep) and sends it again.  So it comes twice only when a sender
 * outlives its lease, or stops or dies between a POST and the record of
 * its answer.
 */

#define CB_SWEEP 16                   /* pending callbacks claimed at once */

struct cbsend {
	struct jobs *j;
	char id[40];
	char *url, *body;
	struct transfer *t;
	struct loop_timer *timer;     /* the test hold, or a backoff */
	int recording;                /* an attempt on its way to the db */
	int lost;                     /* the lease went to another server */
	int hopeless;                 /* not an http(s) URL: one attempt */
	struct cbsend *next;
};

static int owner_gone(const struct jobs *j, const char *owner);

static void cb_free(struct cbsend *cb)
{
	struct jobs *j = cb->j;

	for (struct cbsend **pp = &j->cbs; *pp; pp = &(*pp)->next)
		if (*pp == cb) {
			*pp = cb->next;
			break;
		}
	if (cb->timer)
		loop_del_timer(engine_loop(j->eng), cb->timer);
	transfer_cancel(cb->t);
	free(cb->url);
	free(cb->body);
	free(cb);
}

/* cb is no longer ours: dropped now, or once its attempt is recorded. */
static void cb_drop(struct cbsend *cb)
{
	if (cb->recording)
		cb->lost = 1;
	else
		cb_free(cb);
}

struct cb_record_op {
	struct cbsend *cb;
	char id[40];
	const char *owner;            /* the jobs' */
	int ok, allowed;
	char what[160];
	int applied;                  /* 0: not pending, or not ours */
	int attempts, pending;
};

/* Counts the attempt, guarded by the owner and the pending state. */
static int cb_record_run(sqlite3 *db, void *arg)
{
	struct cb_record_op *o = arg;
	sqlite3_stmt *st;
	int rc;

	o->applied = o->attempts = o->pending = 0;
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET callback_attempts = callback_attempts + 1,"
			       " callback_status = CASE WHEN ?1 THEN 'delivered'"
			       " WHEN callback_attempts + 1 >= ?2 THEN 'failed' ELSE 'pending' END,"
			       " callback_error = CASE WHEN ?1 THEN NULL ELSE ?3 END"
			       " WHERE id = ?4 AND owner = ?5 AND callback_status = 'pending'"
			       " RETURNING callback_attempts, callback_status = 'pending'",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_int(st, 1, o->ok);
	sqlite3_bind_int(st, 2, o->allowed);
	sqlite3_bind_text(st, 3, o->what, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, o->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, o->owner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		o->applied = 1;
		o->attempts = sqlite3_column_int(st, 0);
		o->pending = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		o->applied = 0;
		return db_retry(db);
	}
	return 0;
}

static void cb_send(struct cbsend *cb);

static void on_cb_timer(struct loop *l, void *data)
{
	struct cbsend *cb = data;

	(void)l;
	cb->timer = NULL;
	cb_send(cb);
}

static void cb_record_done(void *arg, int rc, int cancelled)
{
	struct cb_record_op *o = arg;
	struct cbsend *cb = o->cb;

	if (!cancelled)
		cb->recording = 0;
	/* While the server stops, jobs_free() frees cb. */
	if (!cancelled && !cb->j->stopping) {
		if (rc == 0 && o->applied && o->pending && !cb->lost)
			cb->timer = loop_add_timer(engine_loop(cb->j->eng),
						   (int64_t)JOBS_CB_BACKOFF_MS << (o->attempts - 1),
						   on_cb_timer, cb);
		else
			cb_free(cb);   /* delivered, failed, or not ours */
	}
	free(o);
}

static const struct writer_ops cb_record_ops = { .run = cb_record_run,
						 .done = cb_record_done };

/* An attempt of cb is over: ok, or what went wrong. */
static void cb_attempted(struct cbsend *cb, int ok, const char *what)
{
	struct cb_record_op *o = xcalloc(1, sizeof(*o));

	o->cb = cb;
	snprintf(o->id, sizeof(o->id), "%s", cb->id);
	o->owner = cb->j->owner;
	o->ok = ok;
	o->allowed = cb->hopeless ? 1 : JOBS_CB_ATTEMPTS;
	snprintf(o->what, sizeof(o->what), "%s", what);
	cb->recording = 1;
	writer_submit(cb->j->w, &cb_record_ops, o, WRITER_ALWAYS);
}

static void callback_done(void *ud, struct transfer_result *r)
{
	struct cbsend *cb = ud;
	char what[160];
	int ok = jobs_callback_outcome(r, what, sizeof(what));

	cb->t = NULL;
	cb_attempted(cb, ok, what);
}

static const struct transfer_cbs callback_cbs = { .on_done = callback_done };

char *jobs_callback_body(const cJSON *status)
{
	cJSON *copy = cJSON_Duplicate(status, 1);
	char *body;

	cJSON_DeleteItemFromObject(copy, "callback_status");
	cJSON_DeleteItemFromObject(copy, "callback_attempts");
	cJSON_DeleteItemFromObject(copy, "callback_error");
	body = json_print(copy);
	cJSON_Delete(copy);
	return body;
}

int jobs_callback_outcome(const struct transfer_result *r, char *what,
			  size_t cap)
{
	int ok = r->err.code == ERR_OK && r->status >= 200 && r->status < 300;

	if (cap)
		*what = '\0';
	if (!ok && r->err.code != ERR_OK)
		snprintf(what, cap, "%.150s", r->err.msg);
	else if (!ok)
		snprintf(what, cap, "HTTP %ld", r->status);
	return ok;
}

struct transfer *jobs_callback_post(struct engine *eng, const char *url,
				    const char *body, int64_t connect_ms,
				    int64_t total_ms,
				    const struct transfer_cbs *cbs, void *ud,
				    struct err *e)
{
	static const char *const headers[] = {
		"Content-Type: application/json", NULL
	};
	struct transfer_req req = { 0 };

	req.url = url;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	req.connect_ms = connect_ms;
	req.total_ms = total_ms;
	err_clear(e);
	return transfer_start(eng, &req, cbs, ud, e);
}

/* POSTs cb's body to its URL; the answer is counted in callback_done. */
static void cb_send(struct cbsend *cb)
{
	struct err e;

	cb->t = jobs_callback_post(cb->j->eng, cb->url, cb->body, 5000, 10000,
				   &callback_cbs, cb, &e);
	if (!cb->t)
		cb_attempted(cb, 0, e.msg);
}

/* Sends the pending callback of job id, whose lease is ours: status (the
 * job's final status object, borrowed) to url.  hold: wait the test hold
 * ($AICHAT_TEST_CALLBACK_HOLD_MS) first. */
static void cb_start(struct jobs *j, const char *id, const char *url,
		     const cJSON *status, int hold)
{
	struct cbsend *cb = xcalloc(1, sizeof(*cb));

	cb->j = j;
	snprintf(cb->id, sizeof(cb->id), "%s", id);
	cb->url = xstrdup(url);
	cb->body = jobs_callback_body(status);
	cb->next = j->cbs;
	j->cbs = cb;
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		cb->hopeless = 1;
		cb_attempted(cb, 0, "not an http(s) URL");
	} else if (hold && j->cb_hold_ms > 0) {
		cb->timer = loop_add_timer(engine_loop(j->eng), j->cb_hold_ms, on_cb_timer, cb);
	} else {
		cb_send(cb);
	}
}

/* -- the pending callbacks of servers that are gone -- */

struct cb_sweep_op {
	struct jobs *j;
	int n;
	char id[CB_SWEEP][40];
	char *url[CB_SWEEP];
	cJSON *status[CB_SWEEP];
};

static void cb_sweep_clear(struct cb_sweep_op *s)
{
	for (int k = 0; k < s->n; k++) {
		free(s->url[k]);
		cJSON_Delete(s->status[k]);
	}
	s->n = 0;
}

/* Claims the pending callbacks whose owner's lease ran out (or whose
 * owner was a process of this host that is gone), as claim_run() claims
 * a job, with their final statuses. */
static int cb_sweep_run(sqlite3 *db, void *arg)
{
	struct cb_sweep_op *s = arg;
	struct jobs *j = s->j;
	sqlite3_stmt *st;
	long long now = wall_ms();
	int rc = SQLITE_DONE;

	cb_sweep_clear(s);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_retry(db);
	if (sqlite3_prepare_v2(db, "SELECT id, owner, lease_until, callback_url FROM jobs"
			       " WHERE callback_status = 'pending' AND (owner IS NULL OR owner != ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, j->owner, -1, SQLITE_STATIC);
	while (s->n < CB_SWEEP && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *owner = (const char *)sqlite3_column_text(st, 1);
		int expired = sqlite3_column_type(st, 2) == SQLITE_NULL ||
			      sqlite3_column_int64(st, 2) < now;

		if (sqlite3_column_type(st, 3) == SQLITE_NULL ||
		    (owner && !expired && !owner_gone(j, owner)))
			continue;     /* a live server sends it */
		snprintf(s->id[s->n], sizeof(s->id[0]), "%s", (const char *)sqlite3_column_text(st, 0));
		s->url[s->n] = xstrdup((const char *)sqlite3_column_text(st, 3));
		s->status[s->n] = NULL;
		s->n++;
	}
	sqlite3_finalize(st);
	if (s->n < CB_SWEEP && rc != SQLITE_DONE) {
		cb_sweep_clear(s);
		return db_retry(db);
	}
	/* In one transaction with the read: nobody changed them since. */
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ?"
			       " AND callback_status = 'pending'", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	for (int k = 0; k < s->n; k++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, j->owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now + j->lease_ms);
		sqlite3_bind_text(st, 3, s->id[k], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			goto fail;
		}
		if (db_status(db, s->id[k], &s->status[k], NULL) != 0 || !s->status[k]) {
			sqlite3_finalize(st);
			goto fail;
		}
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	cb_sweep_clear(s);
	return db_retry(db);
}

static void cb_sweep_done(void *arg, int rc, int cancelled)
{
	struct cb_sweep_op *s = arg;
	struct jobs *j = s->j;

	if (!cancelled) {
		j->sweeping = 0;
		if (rc == 0 && !j->stopping)
			for (int k = 0; k < s->n; k++)
				cb_start(j, s->id[k], s->url[k], s->status[k], 0);
	}
	cb_sweep_clear(s);
	free(s);
}

static const struct writer_ops cb_sweep_ops = { .run = cb_sweep_run, .done = cb_sweep_done };

/* Looks for pending callbacks to take over, unless a look is under way. */
static void cb_sweep(struct jobs *j)
{
	struct cb_sweep_op *s;

	if (j->stopping || j->sweeping)
		return;
	s = xcalloc(1, sizeof(*s));
	s->j = j;
	j->sweeping = 1;
	writer_submit(j->w, &cb_sweep_ops, s, WRITER_ALWAYS);
}

/* -- the end of a job -- */

struct finish_op {
	struct run_job *rj;
	char id[40];
	const char *owner;
	int again;                    /* items still queued: run them */
	int applied;
	cJSON *status;
};

static int finish_run(sqlite3 *db, void *arg)
{
	struct finish_op *f = arg;
	sqlite3_stmt *st;
	long queued = 0, total = 0, failed = 0;
	char when[32];
	int rc;

	f->again = f->applied = 0;
	cJSON_Delete(f->status);
	f->status = NULL;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_retry(db);
	if (sqlite3_prepare_v2(db, "SELECT total, failed, (SELECT count(*) FROM job_items"
			       " WHERE job_id = ?1 AND state = 'queued') FROM jobs WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, f->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		total = sqlite3_column_int64(st, 0);
		failed = sqlite3_column_int64(st, 1);
		queued = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_retry(db);
	if (queued > 0) {
		f->again = 1;
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	jobs_now_iso(when, sizeof(when));
	/* With a callback_url, its callback is pending from here, under the
	 * lease this server keeps renewing. */
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET status = ?, finished_at = ?,"
			       " callback_status = CASE WHEN callback_url IS NULL THEN NULL"
			       " ELSE 'pending' END,"
			       " callback_attempts = CASE WHEN callback_url IS NULL THEN NULL"
			       " ELSE 0 END, callback_error = NULL"
			       " WHERE id = ? AND status = 'running' AND owner = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, total > 0 && failed == total ? "failed" : "done", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 2, when, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, f->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, f->owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_retry(db);
	f->applied = sqlite3_changes(db) == 1;
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		f->applied = 0;
		return db_retry(db);
	}
	if (f->applied)
		db_status(db, f->id, &f->status, NULL);
	return 0;
}

static const struct batch_cbs job_cbs;

static void finish_done(void *arg, int rc, int cancelled)
{
	struct finish_op *f = arg;
	struct run_job *rj = f->rj;
	struct jobs *j = rj->j;

	if (!cancelled) {
		rj->finishing = 0;
		if (rc == 0 && f->again && !rj->lost) {
			/* Items a page missed: one more pass over the queued. */
			rj->cursor = -1;
			rj->exhausted = rj->batch_done = 0;
			rj->batch = batch_start(j->eng, j->cfg, rj->concurrency, &j->o,
						&job_cbs, rj);
			batch_set_gate(rj->batch, j->gate, 0);
		} else {
			/* Stopping: the next server sends it. */
			if (f->status && rj->callback && !j->stopping &&
			    cJSON_GetObjectItem(f->status, "callback_status"))
				cb_start(j, rj->id, rj->callback, f->status, 1);
			rj->lost = 1;     /* over, for this server */
			maybe_end(rj);
		}
	}
	cJSON_Delete(f->status);
	free(f);
}

static const struct writer_ops finish_ops = { .run = finish_run, .done = finish_done };

static void finish(struct run_job *rj)
{
	struct finish_op *f = xcalloc(1, sizeof(*f));

	f->rj = rj;
	snprintf(f->id, sizeof(f->id), "%s", rj->id);
	f->owner = rj->j->owner;
	rj->finishing = 1;
	writer_submit(rj->j->w, &finish_ops, f, WRITER_ALWAYS);
}

static void on_job_done(void *ud)
{
	struct run_job *rj = ud;

	rj->batch = NULL;
	rj->batch_done = 1;
	maybe_end(rj);
}

static const struct batch_cbs job_cbs = {
	.next = next_item,
	.on_item = on_item,
	.on_done = on_job_done,
};

/* ==== owning: claims and leases ==== */

/* Is owner ("host:pid:random") a process of this host that is gone? */
static int owner_gone(const struct jobs *j, const char *owner)
{
	size_t n = strlen(j->host);
	long pid;
	char *end;

	if (strncmp(owner, j->host, n) || owner[n] != ':')
		return 0;
	pid = strtol(owner + n + 1, &end, 10);
	if (*end != ':' || pid <= 0)
		return 0;
	if (pid == (long)getpid())
		return strcmp(owner, j->owner) != 0;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

struct claim_op {
	struct jobs *j;
	int claimed;
	long long until;
	char id[40];
	char *model, *callback;
	double temperature;
	int max_tokens, concurrency, key;
};

/* Claims one job: a running one whose owner is gone first, else the
 * oldest queued one; each claim an UPDATE guarded by what was read. */
static int claim_run(sqlite3 *db, void *arg)
{
	struct claim_op *c = arg;
	struct jobs *j = c->j;
	sqlite3_stmt *st, *up;
	long long now = wall_ms();
	char when[32];
	int rc;

	c->claimed = 0;
	jobs_now_iso(when, sizeof(when));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_retry(db);
	if (sqlite3_prepare_v2(db, "SELECT id, status, owner, lease_until FROM jobs"
			       " WHERE status IN ('queued', 'running')"
			       " AND (owner IS NULL OR owner != ?)"
			       " ORDER BY status = 'running' DESC, created_at, rowid",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, j->owner, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *status = (const char *)sqlite3_column_text(st, 1);
		const char *owner = (const char *)sqlite3_column_text(st, 2);
		int expired = sqlite3_column_type(st, 3) == SQLITE_NULL ||
			      sqlite3_column_int64(st, 3) < now;

		if (!strcmp(status, "running") && owner && !expired && !owner_gone(j, owner))
			continue;     /* a live server runs it */
		snprintf(c->id, sizeof(c->id), "%s", (const char *)sqlite3_column_text(st, 0));
		break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return rc == SQLITE_DONE ? 0 : db_retry(db);
	}
	/* In one transaction with the read: nobody changed it since. */
	if (sqlite3_prepare_v2(db, "UPDATE jobs SET status = 'running', owner = ?,"
			       " lease_until = ?, started_at = COALESCE(started_at, ?)"
			       " WHERE id = ? AND status IN ('queued', 'running')", -1, &up,
			       NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(up, 1, j->owner, -1, SQLITE_STATIC);
	c->until = now + j->lease_ms;
	sqlite3_bind_int64(up, 2, c->until);
	sqlite3_bind_text(up, 3, when, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(up, 4, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(up);
	sqlite3_finalize(up);
	if (rc != SQLITE_DONE || sqlite3_changes(db) != 1)
		return db_retry(db);
	if (sqlite3_prepare_v2(db, "SELECT model, temperature, max_tokens, concurrency,"
			       " callback_url, api_key FROM jobs WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
	free(c->model);
	free(c->callback);
	c->model = c->callback = NULL;
	c->temperature = -1;
	c->concurrency = 10;
	if (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			c->model = xstrdup((const char *)sqlite3_column_text(st, 0));
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			c->temperature = sqlite3_column_double(st, 1);
		c->max_tokens = sqlite3_column_int(st, 2);
		c->concurrency = sqlite3_column_int(st, 3);
		if (sqlite3_column_type(st, 4) != SQLITE_NULL)
			c->callback = xstrdup((const char *)sqlite3_column_text(st, 4));
		c->key = sqlite3_column_int(st, 5);
	}
	sqlite3_finalize(st);
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		return db_retry(db);
	c->claimed = 1;
	return 0;
}

static void claim_done(void *arg, int rc, int cancelled)
{
	struct claim_op *c = arg;
	struct jobs *j = c->j;

	if (!cancelled && !j->stopping) {
		j->scanning = 0;
		if (rc == 0 && c->claimed) {
			struct run_job *rj = xcalloc(1, sizeof(*rj));
			rj->j = j;
			snprintf(rj->id, sizeof(rj->id), "%s", c->id);
			rj->model = c->model;
			rj->callback = c->callback;
			c->model = c->callback = NULL;
			rj->temperature = c->temperature;
			rj->max_tokens = c->max_tokens;
			rj->concurrency = c->concurrency > 0 ? c->concurrency : 1;
			rj->key = c->key;
			rj->cursor = -1;
			rj->lease_until = c->until;
			rj->next = j->list;
			j->list = rj;
			j->running++;
			rj->batch = batch_start(j->eng, j->cfg, rj->concurrency, &j->o,
						&job_cbs, rj);
			batch_set_gate(rj->batch, j->gate, 0);
			schedule(j);   /* maybe another */
		}
	}
	free(c->model);
	free(c->callback);
	free(c);
}

static const struct writer_ops claim_ops = { .run = claim_run, .done = claim_done };

static void on_kick(struct loop *l, void *data)
{
	struct jobs *j = data;
	struct claim_op *c;

	(void)l;
	j->kick = NULL;
	if (j->stopping || j->scanning || j->running >= j->max_running)
		return;
	c = xcalloc(1, sizeof(*c));
	c->j = j;
	j->scanning = 1;
	writer_submit(j->w, &claim_ops, c, WRITER_ALWAYS);
}

/* Looks for a job to run on the next loop iteration. */
static void schedule(struct jobs *j)
{
	if (!j->kick && !j->stopping)
		j->kick = loop_add_timer(engine_loop(j->eng), 0, on_kick, j);
}

/* -- renewing the leases of the jobs this server runs -- */

struct renew_op {
	struct jobs *j;
	size_t n;
	char (*ids)[40];
	int *lost;
	long long *until;
};

static int renew_run(sqlite3 *db, void *arg)
{
	struct renew_op *r = arg;
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(db, "UPDATE jobs SET lease_until = ? WHERE id = ? AND owner = ?"
			       " AND (status = 'running' OR callback_status = 'pending')",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	for (size_t i = 0; i < r->n; i++) {
		sqlite3_reset(st);
		r->until[i] = wall_ms() + r->j->lease_ms;
		sqlite3_bind_int64(st, 1, r->until[i]);
		sqlite3_bind_text(st, 2, r->ids[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->j->owner, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return db_retry(db);
		}
		r->lost[i] = sqlite3_changes(db) == 0;
	}
	sqlite3_finalize(st);
	return 0;
}

static void renew_done(void *arg, int rc, int cancelled)
{
	struct renew_op *r = arg;
	struct jobs *j = r->j;

	if (!cancelled && rc == 0)
		for (size_t i = 0; i < r->n; i++) {
			for (struct cbsend *cb = j->cbs; cb; cb = cb->next)
				if (!strcmp(cb->id, r->ids[i])) {
					if (r->lost[i])
						cb_drop(cb);
					break;
				}
			for (struct run_job *rj = j->list; rj; rj = rj->next) {
				if (strcmp(rj->id, r->ids[i]) || rj->lost || rj->finishing)
					continue;
				if (r->lost[i]) {
					rj->lost = 1;
					drop_run(rj);
				} else {
					rj->lease_until = r->until[i];
					if (rj->batch)
						batch_refill(rj->batch);
				}
				break;
			}
		}
	free(r->ids);
	free(r->lost);
	free(r->until);
	free(r);
}

static const struct writer_ops renew_ops = { .run = renew_run, .done = renew_done };

/* Every third of a lease: renews this server's leases (of the jobs it
 * runs and of the callbacks it sends), and looks for work (a job, or a
 * pending callback, whose owner is gone). */
static void on_renew(struct loop *l, void *data)
{
	struct jobs *j = data;
	struct renew_op *r;
	size_t n = 0;

	j->renew_timer = loop_add_timer(l, j->lease_ms / 3, on_renew, j);
	for (struct run_job *rj = j->list; rj; rj = rj->next)
		n++;
	for (struct cbsend *cb = j->cbs; cb; cb = cb->next)
		n++;
	if (n) {
		r = xcalloc(1, sizeof(*r));
		r->j = j;
		r->ids = xcalloc(n, sizeof(*r->ids));
		r->lost = xcalloc(n, sizeof(*r->lost));
		r->until = xcalloc(n, sizeof(*r->until));
		for (struct run_job *rj = j->list; rj; rj = rj->next)
			snprintf(r->ids[r->n++], sizeof(r->ids[0]), "%s", rj->id);
		for (struct cbsend *cb = j->cbs; cb; cb = cb->next)
			snprintf(r->ids[r->n++], sizeof(r->ids[0]), "%s", cb->id);
		writer_submit(j->w, &renew_ops, r, WRITER_ALWAYS);
	}
	schedule(j);
	cb_sweep(j);
}

void jobs_resume(struct jobs *j)
{
	if (!j->renew_timer)
		j->renew_timer = loop_add_timer(engine_loop(j->eng), j->lease_ms / 3,
						on_renew, j);
	schedule(j);
	cb_sweep(j);
}

/* -- stopping: the leases end, for the next server to resume at once -- */

struct release_op {
	char owner[96];
};

static int release_run(sqlite3 *db, void *arg)
{
	struct release_op *r = arg;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "UPDATE jobs SET lease_until = 0 WHERE owner = ?"
			       " AND (status = 'running' OR callback_status = 'pending')",
			       -1, &st, NULL) != SQLITE_OK)
		return db_retry(db);
	sqlite3_bind_text(st, 1, r->owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_retry(db);
}

static void release_done(void *arg, int rc, int cancelled)
{
	(void)rc;
	(void)cancelled;
	free(arg);
}

static const struct writer_ops release_ops = { .run = release_run, .done = release_done };

void jobs_stop(struct jobs *j)
{
	struct release_op *r;

	if (!j || j->stopping)
		return;
	j->stopping = 1;
	for (struct run_job *rj = j->list; rj; rj = rj->next) {
		batch_cancel(rj->batch);
		rj->batch = NULL;
	}
	/* Their attempts not counted: still pending, for the next server.
	 * Freed by jobs_free(), once no write points to them. */
	for (struct cbsend *cb = j->cbs; cb; cb = cb->next) {
		if (cb->timer)
			loop_del_timer(engine_loop(j->eng), cb->timer);
		transfer_cancel(cb->t);
		cb->timer = NULL;
		cb->t = NULL;
	}
	if (j->kick)
		loop_del_timer(engine_loop(j->eng), j->kick);
	if (j->renew_timer)
		loop_del_timer(engine_loop(j->eng), j->renew_timer);
	j->kick = j->renew_timer = NULL;
	r = xcalloc(1, sizeof(*r));
	snprintf(r->owner, sizeof(r->owner), "%s", j->owner);
	writer_submit(j->w, &release_ops, r, WRITER_ALWAYS);
}

struct jobs *jobs_new(struct engine *eng, const struct config *cfg,
		      struct writer *w, int max_running, const struct llm_opts *o,
		      const struct upstream_gate *gate)
{
	struct jobs *j = xcalloc(1, sizeof(*j));
	const char *lease = env_get("AICHAT_JOB_LEASE_MS");
	const char *hold = env_get("AICHAT_TEST_CALLBACK_HOLD_MS");
	char rnd[17];

	j->eng = eng;
	j->cfg = cfg;
	j->w = w;
	j->gate = gate;
	j->max_running = max_running > 0 ? max_running : 1;
	j->o = *o;
	j->lease_ms = lease ? atoll(lease) : 30000;
	if (j->lease_ms < 300)
		j->lease_ms = 300;
	j->cb_hold_ms = hold && atoll(hold) > 0 ? atoll(hold) : 0;
	if (gethostname(j->host, sizeof(j->host)) < 0)
		snprintf(j->host, sizeof(j->host), "localhost");
	j->host[sizeof(j->host) - 1] = '\0';
	for (char *p = j->host; *p; p++)
		if (*p == ':')
			*p = '_';
	jobs_random_hex(rnd, 8);
	snprintf(j->owner, sizeof(j->owner), "%s:%ld:%s", j->host, (long)getpid(), rnd);
	return j;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	while (j->list)
		run_free(j->list);
	while (j->cbs)
		cb_free(j->cbs);
	free(j);
}
