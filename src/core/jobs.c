/*
 * jobs.c - background batch jobs in SQLite; see jobs.h.
 *
 * Each running job is a batch whose source pages its queued items out of
 * the database in input order; each finished item is one UPDATE of its
 * row and of the job's counters, in one transaction, so a crash at any
 * moment loses at most the items in flight.  Statements are prepared,
 * ids are checked for their shape before any query.
 */
#include "aichat/batch.h"
#include "aichat/jobs.h"
#include "aichat/json.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PAGE 64

struct job_item {
	struct run_job *rj;
	long idx;
	char *item_id;
	struct chat_request req;
};

struct run_job {
	struct jobs *j;
	char id[40];
	char *model, *callback;
	double temperature;
	int max_tokens;
	struct batch *batch;
	struct job_item *page[PAGE];
	int npage, pos;
	long cursor;                  /* last idx handed out */
	int exhausted;
	struct run_job *next;
};

struct jobs {
	struct engine *eng;
	const struct config *cfg;
	sqlite3 *db;
	int max_running, running;
	struct llm_opts o;
	struct run_job *list;
	struct loop_timer *kick;
};

static void now_iso(char *dst, size_t cap)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(dst, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
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

static int db_fail(struct jobs *j, struct err *e)
{
	return err_set(e, ERR_IO, "database: %s", sqlite3_errmsg(j->db));
}

/* ==== reading ==== */

static cJSON *status_json(struct jobs *j, const char *id, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *o = NULL;
	static const char *sql =
		"SELECT id, status, model, concurrency, total, succeeded, failed,"
		" created_at, started_at, finished_at FROM jobs WHERE id = ?";

	if (!jobs_valid_id(id)) {
		err_set(e, ERR_NOT_FOUND, "no job '%.64s' (job ids look like job_0123456789abcdef)", id);
		return NULL;
	}
	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
		db_fail(j, e);
		return NULL;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
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
	} else {
		err_set(e, ERR_NOT_FOUND, "no job '%s'", id);
	}
	sqlite3_finalize(st);
	return o;
}

cJSON *jobs_status(struct jobs *j, const char *id, struct err *e)
{
	return status_json(j, id, e);
}

int jobs_results(struct jobs *j, const char *id, struct buf *out, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *s = status_json(j, id, e);

	if (!s)
		return -1;
	cJSON_Delete(s);
	if (sqlite3_prepare_v2(j->db, "SELECT result FROM job_items WHERE job_id = ?"
			       " AND result IS NOT NULL ORDER BY idx", -1, &st, NULL) != SQLITE_OK)
		return db_fail(j, e);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		buf_appends(out, (const char *)sqlite3_column_text(st, 0));
		buf_putc(out, '\n');
	}
	sqlite3_finalize(st);
	return 0;
}

/* ==== writing ==== */

/* stamp_column is one of our own literals, never input. */
static int set_status(struct jobs *j, const char *id, const char *status,
		      const char *stamp_column)
{
	char when[32], sql[160];
	sqlite3_stmt *st;
	int rc;

	now_iso(when, sizeof(when));
	snprintf(sql, sizeof(sql), "UPDATE jobs SET status = ?, %s = ? WHERE id = ?",
		 stamp_column);
	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, when, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static void random_id(char *dst)
{
	unsigned char b[8];
	static const char hex[] = "0123456789abcdef";

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	memcpy(dst, "job_", 4);
	for (int i = 0; i < 8; i++) {
		dst[4 + 2 * i] = hex[b[i] >> 4];
		dst[5 + 2 * i] = hex[b[i] & 15];
	}
	dst[20] = '\0';
}

static void schedule(struct jobs *j);

cJSON *jobs_submit(struct jobs *j, const cJSON *req, struct err *e)
{
	const cJSON *items = json_arr(req, "items"), *it;
	sqlite3_stmt *job = NULL, *ins = NULL;
	char id[24], when[32];
	double d;
	long idx = 0;
	cJSON *o = NULL;

	random_id(id);
	now_iso(when, sizeof(when));
	if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(j, e);
		return NULL;
	}
	if (sqlite3_prepare_v2(j->db, "INSERT INTO jobs (id, status, model, temperature,"
			       " max_tokens, concurrency, callback_url, total, created_at)"
			       " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)", -1, &job, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(j->db, "INSERT INTO job_items (job_id, idx, item_id, prompt)"
			       " VALUES (?, ?, ?, ?)", -1, &ins, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(job, 1, id, -1, SQLITE_STATIC);
	if (json_str(req, "model"))
		sqlite3_bind_text(job, 2, json_str(req, "model"), -1, SQLITE_STATIC);
	if (json_num(req, "temperature", &d) == 0)
		sqlite3_bind_double(job, 3, d);
	if (json_num(req, "max_tokens", &d) == 0)
		sqlite3_bind_int(job, 4, json_clamp_int(d, 1, INT_MAX));
	json_num(req, "concurrency", &d);
	sqlite3_bind_int(job, 5, json_clamp_int(d, 1, INT_MAX));
	if (json_str(req, "callback_url"))
		sqlite3_bind_text(job, 6, json_str(req, "callback_url"), -1, SQLITE_STATIC);
	sqlite3_bind_int(job, 7, cJSON_GetArraySize(items));
	sqlite3_bind_text(job, 8, when, -1, SQLITE_STATIC);
	if (sqlite3_step(job) != SQLITE_DONE)
		goto fail;
	cJSON_ArrayForEach(it, items) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, idx++);
		sqlite3_bind_text(ins, 3, json_str(it, "id"), -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 4, json_str(it, "prompt"), -1, SQLITE_STATIC);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(job);
	sqlite3_finalize(ins);
	if (sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(j, e);
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		return NULL;
	}
	o = status_json(j, id, e);
	schedule(j);
	return o;
fail:
	db_fail(j, e);
	sqlite3_finalize(job);
	sqlite3_finalize(ins);
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return NULL;
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
	for (struct run_job **pp = &j->list; *pp; pp = &(*pp)->next)
		if (*pp == rj) {
			*pp = rj->next;
			break;
		}
	free(rj->model);
	free(rj->callback);
	free(rj);
}

/* The next page of queued items after the cursor. */
static void load_page(struct run_job *rj)
{
	sqlite3_stmt *st;

	rj->npage = rj->pos = 0;
	if (sqlite3_prepare_v2(rj->j->db, "SELECT idx, item_id, prompt FROM job_items"
			       " WHERE job_id = ? AND state = 'queued' AND idx > ?"
			       " ORDER BY idx LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		rj->exhausted = 1;
		return;
	}
	sqlite3_bind_text(st, 1, rj->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, rj->cursor);
	sqlite3_bind_int(st, 3, PAGE);
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct job_item *it = xcalloc(1, sizeof(*it));
		it->rj = rj;
		it->idx = (long)sqlite3_column_int64(st, 0);
		it->item_id = xstrdup((const char *)sqlite3_column_text(st, 1));
		it->req.messages = xcalloc(1, sizeof(*it->req.messages));
		it->req.messages[0].role = xstrdup("user");
		it->req.messages[0].content = xstrdup((const char *)sqlite3_column_text(st, 2));
		it->req.nmessages = 1;
		it->req.model = rj->model ? xstrdup(rj->model) : NULL;
		it->req.temperature = rj->temperature;
		it->req.max_tokens = rj->max_tokens;
		it->req.stream = 1;
		rj->page[rj->npage++] = it;
		rj->cursor = it->idx;
	}
	sqlite3_finalize(st);
	if (rj->npage == 0)
		rj->exhausted = 1;
}

static enum batch_next next_item(void *ud, void **tag,
				 const struct chat_request **req)
{
	struct run_job *rj = ud;
	struct job_item *it;

	if (rj->pos == rj->npage && !rj->exhausted)
		load_page(rj);
	if (rj->pos == rj->npage)
		return BATCH_END;
	it = rj->page[rj->pos++];
	*tag = it;
	*req = &it->req;
	return BATCH_ITEM;
}

static void on_item(void *ud, void *tag, const struct chat_result *res)
{
	struct run_job *rj = ud;
	struct job_item *it = tag;
	sqlite3 *db = rj->j->db;
	sqlite3_stmt *st;
	char *idjson, *line;
	cJSON *id = cJSON_CreateString(it->item_id), *o;
	int ok = res->err.code == ERR_OK;

	idjson = json_print(id);
	cJSON_Delete(id);
	o = batch_result_json(idjson, res);
	line = json_print(o);
	cJSON_Delete(o);
	free(idjson);
	sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (sqlite3_prepare_v2(db, "UPDATE job_items SET state = ?, result = ?"
			       " WHERE job_id = ? AND idx = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, ok ? "done" : "failed", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, line, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, rj->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, it->idx);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(db, ok ? "UPDATE jobs SET succeeded = succeeded + 1 WHERE id = ?"
			       : "UPDATE jobs SET failed = failed + 1 WHERE id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, rj->id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	free(line);
	item_free(it);
}

static void callback_done(void *ud, struct transfer_result *r)
{
	(void)ud;
	(void)r;
}

static const struct transfer_cbs callback_cbs = { .on_done = callback_done };

/* POSTs the final status to the job's callback_url; fire and forget. */
static void notify(struct run_job *rj, const cJSON *status)
{
	static const char *const headers[] = {
		"Content-Type: application/json", NULL
	};
	struct transfer_req req = { 0 };
	char *body;

	if (!rj->callback || (strncmp(rj->callback, "http://", 7) &&
			      strncmp(rj->callback, "https://", 8)))
		return;
	body = json_print(status);
	req.url = rj->callback;
	req.headers = headers;
	req.body = body;
	req.body_len = strlen(body);
	req.connect_ms = 5000;
	req.total_ms = 10000;
	transfer_start(rj->j->eng, &req, &callback_cbs, NULL, NULL);
	free(body);
}

static void on_job_done(void *ud)
{
	struct run_job *rj = ud;
	struct jobs *j = rj->j;
	cJSON *s;
	struct err e;

	rj->batch = NULL;
	s = status_json(j, rj->id, &e);
	if (s) {
		const cJSON *c = json_obj(s, "counts");
		double total = 0, failed = 0;
		json_num(c, "total", &total);
		json_num(c, "failed", &failed);
		set_status(j, rj->id, total > 0 && failed == total ? "failed" : "done",
			   "finished_at");
		cJSON_Delete(s);
		s = status_json(j, rj->id, &e);
		if (s)
			notify(rj, s);
		cJSON_Delete(s);
	}
	j->running--;
	run_free(rj);
	schedule(j);
}

static const struct batch_cbs job_cbs = {
	.next = next_item,
	.on_item = on_item,
	.on_done = on_job_done,
};

static void start_job(struct jobs *j, const char *id)
{
	struct run_job *rj = xcalloc(1, sizeof(*rj));
	sqlite3_stmt *st;
	int conc = 10;

	rj->j = j;
	snprintf(rj->id, sizeof(rj->id), "%s", id);
	rj->temperature = -1;
	rj->cursor = -1;
	if (sqlite3_prepare_v2(j->db, "SELECT model, temperature, max_tokens, concurrency,"
			       " callback_url FROM jobs WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			if (sqlite3_column_type(st, 0) != SQLITE_NULL)
				rj->model = xstrdup((const char *)sqlite3_column_text(st, 0));
			if (sqlite3_column_type(st, 1) != SQLITE_NULL)
				rj->temperature = sqlite3_column_double(st, 1);
			rj->max_tokens = sqlite3_column_int(st, 2);
			conc = sqlite3_column_int(st, 3);
			if (sqlite3_column_type(st, 4) != SQLITE_NULL)
				rj->callback = xstrdup((const char *)sqlite3_column_text(st, 4));
		}
		sqlite3_finalize(st);
	}
	/* started_at keeps the first start across restarts. */
	if (sqlite3_prepare_v2(j->db, "UPDATE jobs SET status = 'running',"
			       " started_at = COALESCE(started_at, ?) WHERE id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		char when[32];
		now_iso(when, sizeof(when));
		sqlite3_bind_text(st, 1, when, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
	rj->next = j->list;
	j->list = rj;
	j->running++;
	rj->batch = batch_start(j->eng, j->cfg, conc, &j->o, &job_cbs, rj);
}

/* Starts waiting jobs, oldest first, while there is room. */
static void run_queue(struct jobs *j)
{
	while (j->running < j->max_running) {
		sqlite3_stmt *st;
		char id[40] = "";

		if (sqlite3_prepare_v2(j->db, "SELECT id FROM jobs WHERE status = 'queued'"
				       " ORDER BY created_at, rowid LIMIT 1", -1, &st, NULL) != SQLITE_OK)
			return;
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (!id[0])
			return;
		start_job(j, id);
	}
}

static void on_kick(struct loop *l, void *data)
{
	struct jobs *j = data;

	(void)l;
	j->kick = NULL;
	run_queue(j);
}

static void schedule(struct jobs *j)
{
	if (!j->kick)
		j->kick = loop_add_timer(engine_loop(j->eng), 0, on_kick, j);
}

void jobs_resume(struct jobs *j)
{
	sqlite3_stmt *st;
	char **ids = NULL;
	size_t n = 0;

	/* Jobs a previous process was running: continue them first. */
	if (sqlite3_prepare_v2(j->db, "SELECT id FROM jobs WHERE status = 'running'"
			       " ORDER BY created_at, rowid", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			ids = xrealloc(ids, (n + 1) * sizeof(*ids));
			ids[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
	}
	for (size_t i = 0; i < n; i++) {
		start_job(j, ids[i]);
		free(ids[i]);
	}
	free(ids);
	schedule(j);
}

cJSON *jobs_cancel(struct jobs *j, const char *id, struct err *e)
{
	cJSON *s = status_json(j, id, e);
	const char *status;

	if (!s)
		return NULL;
	status = json_str(s, "status");
	if (strcmp(status, "queued") && strcmp(status, "running"))
		return s;   /* already over: nothing to cancel */
	for (struct run_job *rj = j->list; rj; rj = rj->next)
		if (!strcmp(rj->id, id)) {
			j->running--;
			run_free(rj);
			break;
		}
	set_status(j, id, "cancelled", "finished_at");
	cJSON_Delete(s);
	schedule(j);
	return status_json(j, id, e);
}

struct jobs *jobs_new(struct engine *eng, const struct config *cfg,
		      sqlite3 *db, int max_running, const struct llm_opts *o)
{
	struct jobs *j = xcalloc(1, sizeof(*j));

	j->eng = eng;
	j->cfg = cfg;
	j->db = db;
	j->max_running = max_running > 0 ? max_running : 1;
	j->o = *o;
	return j;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	while (j->list)
		run_free(j->list);
	if (j->kick)
		loop_del_timer(engine_loop(j->eng), j->kick);
	free(j);
}
