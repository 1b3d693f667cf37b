/*
 * routes_seed.c - the reference design's routes, beyond the chat call
 * they share with the others (chatroute.c): POST /batch, whose items run
 * on the batch service at --batch-concurrency and are answered in input
 * order, and --log-conversations for /conversation.
 *
 * Each running item of a batch holds one upstream slot; each item's content
 * or error lands in its own place of r->bresults, sent when the last is
 * done.
 */
#include "aichat/convlog.h"
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* One exchange on its way to the log, copied: the request may be gone
 * before the writer's thread gets to it. */
struct log_op {
	char rid[72];
	struct chat_request req;
	struct chat_result res;
	struct err e;
};

static int log_run(sqlite3 *db, void *arg)
{
	struct log_op *l = arg;
	char id[CONVLOG_ID_MAX];
	int rc;

	err_clear(&l->e);
	if (convlog_record_all(db, id, &l->req, &l->res, &l->e) == 0)
		return 0;
	rc = sqlite3_errcode(db);
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WRITER_RETRY : -1;
}

static void log_done(void *arg, int rc, int cancelled)
{
	struct log_op *l = arg;

	(void)cancelled;
	if (rc != 0)
		fprintf(stderr, "aichat: serve: could not log request %s: %s\n",
			l->rid, l->e.code ? l->e.msg : "the server stopped first");
	chat_request_release(&l->req);
	buf_release(&l->res.content);
	free(l);
}

static const struct writer_ops log_ops = { .run = log_run, .done = log_done };

/* --log-conversations: /conversation exchanges go to the same log as
 * the CLI's, each request as one conversation, written by the writer's
 * thread (a locked database is waited for there, never here). */
void log_conversation(struct req *r, const struct chat_result *res)
{
	struct log_op *l;

	if (!r->srv->o->log_conversations || !r->srv->writer ||
	    strcmp(r->route->path, "/conversation") ||
	    (res->err.code != ERR_OK && !res->content.len))
		return;
	if (res->content_truncated)
		fprintf(stderr, "aichat: serve: request %s: the answer is larger than %zu MiB: the conversation log keeps its first %zu MiB\n",
			r->id, CHAT_CONTENT_MAX >> 20, CHAT_CONTENT_MAX >> 20);
	l = xcalloc(1, sizeof(*l));
	snprintf(l->rid, sizeof(l->rid), "%s", r->id);
	l->req.model = r->creq.model ? xstrdup(r->creq.model) : NULL;
	l->req.system = r->creq.system ? xstrdup(r->creq.system) : NULL;
	l->req.temperature = r->creq.temperature;
	for (size_t i = 0; i < r->creq.nmessages; i++)
		chat_request_add(&l->req, r->creq.messages[i].role,
				 r->creq.messages[i].content, NULL);
	l->res = *res;
	buf_init(&l->res.content, 0);
	buf_append(&l->res.content, res->content.ptr, res->content.len);
	if (!writer_submit(r->srv->writer, &log_ops, l, WRITER_BOUNDED)) {
		fprintf(stderr, "aichat: serve: could not log request %s: too many database writes waiting\n",
			r->id);
		chat_request_release(&l->req);
		buf_release(&l->res.content);
		free(l);
	}
}

/* ==== batch ==== */

static enum batch_next batch_next_item(void *ud, void **item,
				       const struct chat_request **req)
{
	struct req *r = ud;

	if (r->bnext >= r->nbreqs)
		return BATCH_END;
	*item = (void *)(uintptr_t)r->bnext;
	*req = &r->breqs[r->bnext++];
	return BATCH_ITEM;
}

static void on_batch_item(void *ud, void *tag, const struct chat_result *res)
{
	struct req *r = ud;
	cJSON *item = cJSON_GetArrayItem(r->bresults, (int)(uintptr_t)tag);

	if (res->err.code == ERR_OK) {
		cJSON_ReplaceItemInObject(item, "content",
					  cJSON_CreateString(res->content.ptr));
	} else {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "code", err_code_name(res->err.code));
		cJSON_AddStringToObject(e, "message", res->err.msg);
		cJSON_ReplaceItemInObject(item, "error", e);
	}
	if (res->have_usage) {
		r->prompt_tokens += res->prompt_tokens;
		r->completion_tokens += res->completion_tokens;
		r->have_usage = 1;
	}
	spend(r, res);
	if (res->model[0])
		snprintf(r->model, sizeof(r->model), "%s", res->model);
}

static void on_batch_done(void *ud)
{
	struct req *r = ud;
	cJSON *o = cJSON_CreateObject();

	r->batch = NULL;
	release_upstream(r);
	cJSON_AddItemToObject(o, "results", r->bresults);
	r->bresults = NULL;
	reply_json(r, 200, o);
}

static const struct batch_cbs batch_cbs = {
	.next = batch_next_item,
	.on_item = on_batch_item,
	.on_done = on_batch_done,
};

void start_batch(struct req *r)
{
	const cJSON *items = json_arr(r->json, "items"), *it;
	const char *model = json_str(r->json, "model");
	struct llm_opts lo;
	size_t i = 0;
	double d;

	r->nbreqs = (size_t)cJSON_GetArraySize(items);
	r->breqs = xcalloc(r->nbreqs, sizeof(*r->breqs));
	r->bresults = cJSON_CreateArray();
	cJSON_ArrayForEach(it, items) {
		cJSON *one = cJSON_CreateObject(), *res = cJSON_CreateObject();

		cJSON_AddStringToObject(one, "prompt", json_str(it, "prompt"));
		if (model)
			cJSON_AddStringToObject(one, "model", model);
		if (json_num(r->json, "temperature", &d) == 0)
			cJSON_AddNumberToObject(one, "temperature", d);
		if (json_num(r->json, "max_tokens", &d) == 0)
			cJSON_AddNumberToObject(one, "max_tokens", d);
		chat_request_from_json(&r->breqs[i++], one, NULL);
		cJSON_Delete(one);
		cJSON_AddStringToObject(res, "id", json_str(it, "id"));
		cJSON_AddNullToObject(res, "content");
		cJSON_AddNullToObject(res, "error");
		cJSON_AddItemToArray(r->bresults, res);
	}
	llm_opts_for(r, &lo, 0);
	r->batch = batch_start(r->srv->eng, r->srv->cfg,
			       r->srv->o->batch_concurrency, &lo, &batch_cbs, r);
	/* The request's slot becomes its first item's; the others take
	 * their own (--max-upstream bounds every upstream call). */
	batch_set_gate(r->batch, &r->srv->gate, r->holds_upstream);
	r->holds_upstream = 0;
	if (r->in_handler)
		req_suspend(r);
}
