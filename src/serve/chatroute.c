/*
 * chatroute.c - what the routes that call a chat model share (/chat,
 * /conversation, /v1/chat/completions, /rag/query): the answer cache, the
 * start of the call, and its deltas and result in the route's shape:
 * aichat's JSON or SSE, OpenAI's completion or chunks, or a RAGResponse.
 *
 * A call holds an upstream slot from start_chat() until on_chat_done()
 * gives it back; a delta that comes after its stream is finished (the
 * client left) is dropped, not framed.  A stream its client does not
 * drain pauses the call (STREAM_PAUSE_AT), so a fast upstream never
 * grows it without bound.
 */
#include "aichat/cache.h"
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void note_result(struct req *r, const struct chat_result *res)
{
	const char *colon = strchr(res->model, ':');

	snprintf(r->model, sizeof(r->model), "%s", res->model);
	snprintf(r->provider, sizeof(r->provider), "%.*s",
		 colon ? (int)(colon - res->model) : 0, res->model);
	r->prompt_tokens = res->prompt_tokens;
	r->completion_tokens = res->completion_tokens;
	r->have_usage = res->have_usage;
	if (res->first_token_ms >= 0)
		r->ttft_ms = res->first_token_ms;
	spend(r, res);
	if (res->first_token_ms >= 0)
		metrics_ttft(r->srv->metrics, res->model,
			     res->first_token_ms / 1000.0);
	if (res->err.code != ERR_OK) {
		snprintf(r->err_code, sizeof(r->err_code), "%s",
			 err_code_name(res->err.code));
		if (res->err.code != ERR_CANCELLED)
			metrics_upstream_error(r->srv->metrics, r->provider,
					       err_code_name(res->err.code));
	}
}

/*
 * One delta of aichat's own stream, framed straight into the stream's
 * buffer: the hot path of /chat, so no JSON tree.  The /v1 routes pass on
 * the provider's events instead (on_chat_event); their deltas only build
 * the result for the log and the cache.
 */
/* After a delta or event was framed: a stream its client is not
 * draining pauses the upstream. */
static void check_backlog(struct req *r)
{
	if (!r->upstream_paused && r->chat && stream_backlog(r->st) >= STREAM_PAUSE_AT) {
		r->upstream_paused = 1;
		chat_pause(r->chat, 1);
		metrics_stream_paused(r->srv->metrics);
	}
}

void stream_drained(struct req *r)
{
	if (!r->upstream_paused || !r->st || stream_backlog(r->st) >= STREAM_RESUME_AT)
		return;
	r->upstream_paused = 0;
	chat_pause(r->chat, 0);
}

static void on_chat_delta(void *ud, const char *s, size_t n)
{
	struct req *r = ud;
	struct buf *out;

	if (!r->st || r->st->finished || r->kind != STREAM_AICHAT)
		return;
	r->got_token = 1;
	out = &r->st->out;
	buf_appends(out, "data: {\"content\":");
	json_quote(out, s, n);
	buf_appends(out, "}\n\n");
	check_backlog(r);
	req_resume(r);
}

/*
 * One event of the answer in the client's dialect, as the provider sent it
 * or translated: framed as SSE when streaming, else the whole answer,
 * kept for on_chat_done.
 */
static void on_chat_event(void *ud, const char *name, const char *data,
			  size_t n)
{
	struct req *r = ud;
	struct buf *out;

	if (!name) {
		buf_clear(&r->answer);
		buf_append(&r->answer, data, n);
		return;
	}
	if (!r->st || r->st->finished)
		return;
	r->got_token = 1;
	out = &r->st->out;
	if (r->kind == STREAM_ANTHROPIC && *name) {
		buf_appends(out, "event: ");
		buf_appends(out, name);
		buf_putc(out, '\n');
	}
	buf_appends(out, "data: ");
	buf_append(out, data, n);
	buf_appends(out, "\n\n");
	check_backlog(r);
	req_resume(r);
}

cJSON *usage_object(const struct chat_result *res, int openai)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)res->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens",
				(double)res->completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
				(double)(res->prompt_tokens + res->completion_tokens));
	if (!openai && res->finish_reason[0])
		cJSON_AddStringToObject(u, "finish_reason", res->finish_reason);
	return u;
}

/*
 * An upstream failure as an error answer.  A 429 or 503 says when to try
 * again: the upstream's Retry-After when it gave one, else a second.
 */
static void reply_upstream_error(struct req *r, const struct chat_result *res)
{
	int status = err_http_status(res->err.code);
	struct MHD_Response *resp = error_response(r, res->err.code, res->err.msg);

	if (status == 429 || status == 503) {
		char v[24];
		double s = res->retry_after > 0 ? res->retry_after : 1;
		snprintf(v, sizeof(v), "%.0f", ceil(s));
		mhd.add_response_header(resp, "Retry-After", v);
	}
	send_response(r, status, resp);
}

static void on_chat_done(void *ud, const struct chat_result *res)
{
	struct req *r = ud;

	r->chat = NULL;
	note_result(r, res);
	release_upstream(r);
	log_conversation(r, res);
	if (r->st) {
		if (res->err.code != ERR_OK) {
			push_error(r, res->err.code, res->err.msg);
		} else if (r->kind == STREAM_OPENAI) {
			stream_push(r, "data: [DONE]\n\n", 14);
		} else if (r->kind == STREAM_ANTHROPIC) {
			/* message_stop was the provider's last event. */
		} else {
			push_data(r, "usage", usage_object(res, 0));
			stream_push(r, "data: [DONE]\n\n", 14);
		}
		stream_end(r);
		return;
	}
	if (res->err.code != ERR_OK) {
		reply_upstream_error(r, res);
		return;
	}
	if (r->route->response == RESP_OPENAI_CHAT ||
	    r->route->response == RESP_ANTHROPIC) {
		/* The provider's answer, as it came or translated. */
		if (r->cacheable && r->srv->cache)
			acache_put(r->srv->cache, r->cache_key, strlen(r->cache_key),
				   r->answer.ptr, r->answer.len);
		reply(r, 200, "application/json", r->answer.ptr, r->answer.len);
		return;
	}
	cJSON *o = r->route->response == RESP_RAG_QUERY ? rag_response(r, res) :
		   chat_result_json(res);
	if (r->cacheable && r->srv->cache) {
		char *text = json_print(o);
		acache_put(r->srv->cache, r->cache_key, strlen(r->cache_key), text,
			   strlen(text));
		free(text);
	}
	reply_json(r, 200, o);
}

static const struct chat_cbs chat_cbs = {
	.on_delta = on_chat_delta,
	.on_done = on_chat_done,
	.on_event = on_chat_event,
};

void llm_opts_for(struct req *r, struct llm_opts *lo, int stream)
{
	llm_opts_default(lo);
	lo->retries = r->srv->o->retries;
	if (!stream && r->srv->o->upstream_timeout_ms)
		lo->total_ms = r->srv->o->upstream_timeout_ms;
}

void no_default_model(struct req *r)
{
	struct verrors ve = { 0 };

	verrors_add(&ve, "model", NULL, "missing",
		    "is required: this server has no default model (start it with -m MODEL, or set AICHAT_MODEL)");
	reply_validation(r, &ve);
	verrors_release(&ve);
}

void reply_call_error(struct req *r, const struct err *e, const char *model)
{
	/* Model name errors are the client's: 422 (400) on the model field. */
	if (e->code == ERR_CONFIG && (strstr(e->msg, "unknown") ||
				      strstr(e->msg, "invalid model") ||
				      strstr(e->msg, "no embeddings API"))) {
		struct verrors ve = { 0 };
		ve.v = xcalloc(1, sizeof(*ve.v));
		ve.n = 1;
		snprintf(ve.v[0].loc, sizeof(ve.v[0].loc), "model");
		snprintf(ve.v[0].field, sizeof(ve.v[0].field), "model");
		snprintf(ve.v[0].msg, sizeof(ve.v[0].msg), "%.150s", e->msg);
		ve.v[0].type = "value_error";
		snprintf(ve.v[0].value, sizeof(ve.v[0].value), "%s",
			 model ? model : "");
		reply_validation(r, &ve);
		verrors_release(&ve);
		return;
	}
	if (e->code == ERR_INVALID_REQUEST) {
		/* The provider names the field first: "'seed' has no ...". */
		char param[64] = "";
		const char *end = e->msg[0] == '\'' ? strchr(e->msg + 1, '\'') : NULL;
		if (end)
			snprintf(param, sizeof(param), "%.*s", (int)(end - e->msg - 1),
				 e->msg + 1);
		if (is_openai_route(r) || is_anthropic_route(r)) {
			char p[96];
			openai_param(param, p, sizeof(p));
			reply_json(r, 400, route_error_object(r, e->code, e->msg,
							      *p ? p : NULL));
			snprintf(r->err_code, sizeof(r->err_code), "%s",
				 err_code_name(e->code));
		} else {
			reply_error_status(r, 422, e->code, e->msg);
		}
		return;
	}
	reply_error(r, e);
}

/* A /v1 request's prompt is in its call's body once the call started:
 * the tree and the messages read from it are not used again (its cache
 * key, if any, is made), so a request held while its answer comes keeps
 * its prompt once, not three times. */
static void drop_prompt(struct req *r)
{
	int stream = r->creq.stream;

	if (r->route->response != RESP_OPENAI_CHAT &&
	    r->route->response != RESP_ANTHROPIC)
		return;
	chat_request_release(&r->creq);
	r->creq.stream = stream;
	cJSON_Delete(r->json);
	r->json = NULL;
}

void start_chat(struct req *r)
{
	struct llm_opts lo;
	struct err e;

	err_clear(&e);
	llm_opts_for(r, &lo, r->creq.stream);
	/* A stream's text goes to its client as it comes; the result keeps
	 * it only for the conversation log. */
	r->creq.discard_text = r->creq.stream &&
		!(r->srv->o->log_conversations && !strcmp(r->route->path, "/conversation"));
	r->chat = chat_start(r->srv->eng, r->srv->cfg, &r->creq, &lo, &chat_cbs,
			     r, &e);
	if (!r->chat) {
		release_upstream(r);
		reply_call_error(r, &e, r->creq.model);
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", chat_progress(r->chat)->model);
	drop_prompt(r);
	if (r->creq.stream) {
		start_stream(r, r->route->response == RESP_OPENAI_CHAT ? STREAM_OPENAI :
			     r->route->response == RESP_ANTHROPIC ? STREAM_ANTHROPIC :
			     STREAM_AICHAT);
		/* A RAG answer says where it comes from before it starts. */
		if (r->route->response == RESP_RAG_QUERY)
			push_data(r, "metadata", rag_metadata(r));
	}
	else if (r->in_handler)
		req_suspend(r);
}

/* The cache's answer: kept in r (a copy: the value is borrowed). */
static void on_cache(void *data, const char *val, size_t len, int failed)
{
	struct req *r = data;

	metrics_cache(r->srv->metrics, val != NULL);
	if (val) {
		r->cache_val = xmalloc(len + 1);
		memcpy(r->cache_val, val, len);
		r->cache_val[len] = '\0';
		r->cache_len = len;
	} else if (failed) {
		/* The cache is bypassed: no hit, and the answer is not
		 * stored where it could not be read. */
		r->cacheable = 0;
	}
	r->cache_ready = 1;
	if (r->kv) {
		r->kv = NULL;
		req_resume(r);
	}
}

/* A cached answer, if the request may use the cache and one is there. */
int try_cache(struct req *r)
{
	struct server *srv = r->srv;
	const char *opt_in = header(r, "X-AIChat-Cache");
	cJSON *key;

	int v1 = r->route->response == RESP_OPENAI_CHAT ||
		 r->route->response == RESP_ANTHROPIC;
	double t = r->creq.temperature;

	if (!srv->cache || r->creq.stream)
		return 0;
	if (v1 && json_num(r->json, "temperature", &t) < 0)
		t = -1;  /* the provider's default: not deterministic */
	if (t != 0 && !(opt_in && !strcmp(opt_in, "1")))
		return 0;
	/* The normalized request: what can change the answer. */
	key = cJSON_CreateObject();
	cJSON_AddStringToObject(key, "route", r->route->path);
	cJSON_AddStringToObject(key, "model", r->creq.model ? r->creq.model :
				config_default_model(srv->cfg));
	if (v1) {
		/* Every field counts; only their order does not. */
		char *canon = json_canonical(r->json);
		cJSON_AddStringToObject(key, "body", canon);
		free(canon);
		goto lookup;
	}
	if (r->creq.system)
		cJSON_AddStringToObject(key, "system", r->creq.system);
	cJSON *msgs = cJSON_AddArrayToObject(key, "messages");
	for (size_t i = 0; i < r->creq.nmessages; i++) {
		cJSON *m = cJSON_CreateArray();
		cJSON_AddItemToArray(m, cJSON_CreateString(r->creq.messages[i].role));
		cJSON_AddItemToArray(m, cJSON_CreateString(r->creq.messages[i].content));
		cJSON_AddItemToArray(msgs, m);
	}
	cJSON_AddNumberToObject(key, "temperature", r->creq.temperature);
	cJSON_AddNumberToObject(key, "max_tokens", r->creq.max_tokens);
lookup:
	r->cache_key = json_print(key);
	cJSON_Delete(key);
	r->cacheable = 1;
	r->kv = acache_get(srv->cache, r->cache_key, strlen(r->cache_key),
			   on_cache, r);
	if (r->kv) {
		req_suspend(r);
		return 1;
	}
	r->cache_ready = 0;
	return cache_answer(r);
}

int cache_answer(struct req *r)
{
	struct MHD_Response *resp;

	if (!r->cache_val)
		return 0;
	resp = make_response("application/json", r->cache_val, r->cache_len);
	mhd.add_response_header(resp, "X-Cache", "HIT");
	send_response(r, 200, resp);
	return 1;
}
