/*
 * chat.c - the chat service; see chat.h.
 */
#include "aichat/chat.h"
#include "aichat/json.h"
#include "aichat/prices.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct chat {
	struct llm_call *call;
	const struct chat_cbs *cbs;
	void *ud;
	struct chat_result res;
	int discard_text;
	struct price price;            /* when res.priced */
};

/* Does s (NULL: any) declare field name? */
static int declares(const struct schema *s, const char *name)
{
	return !s || schema_field(s, name);
}

void chat_request_from_json(struct chat_request *req, const cJSON *obj,
			    const struct schema *s)
{
	const char *v;
	const cJSON *msgs, *m;
	double d;

	memset(req, 0, sizeof(*req));
	if ((v = json_str(obj, "model")))
		req->model = xstrdup(v);
	if (declares(s, "system") && (v = json_str(obj, "system")))
		req->system = xstrdup(v);
	req->temperature = json_num(obj, "temperature", &d) == 0 ? d : -1;
	/* The tables fill in a default: a model that takes no temperature
	 * may leave it out.  A face that knows better clears this. */
	req->temperature_default = 1;
	req->max_tokens = json_num(obj, "max_tokens", &d) == 0 ?
		json_clamp_int(d, 0, INT_MAX) : 0;
	req->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "stream"));
	if (declares(s, "prompt") && (v = json_str(obj, "prompt"))) {
		req->messages = xcalloc(1, sizeof(*req->messages));
		req->messages[0].role = xstrdup("user");
		req->messages[0].content = xstrdup(v);
		req->nmessages = 1;
	} else if (declares(s, "messages") && (msgs = json_arr(obj, "messages"))) {
		size_t n = (size_t)cJSON_GetArraySize(msgs), i = 0;
		req->messages = xcalloc(n ? n : 1, sizeof(*req->messages));
		cJSON_ArrayForEach(m, msgs) {
			req->messages[i].role = xstrdup(json_str(m, "role"));
			req->messages[i].content = xstrdup(json_str(m, "content"));
			i++;
		}
		req->nmessages = n;
	}
}

void chat_request_add(struct chat_request *req, const char *role,
		      const char *content, cJSON *json)
{
	struct chat_message *m;

	req->messages = xrealloc(req->messages,
				 (req->nmessages + 1) * sizeof(*req->messages));
	m = &req->messages[req->nmessages++];
	m->role = xstrdup(role);
	m->content = xstrdup(content ? content : "");
	m->json = json;
}

/* The text of OpenAI content: a string, or its text parts joined. */
static char *content_text(const cJSON *content)
{
	const cJSON *p;
	struct buf b;

	if (cJSON_IsString(content))
		return xstrdup(content->valuestring);
	buf_init(&b, 0);
	cJSON_ArrayForEach(p, content)
		if (json_str(p, "text"))
			buf_appends(&b, json_str(p, "text"));
	return buf_detach(&b);
}

void chat_request_from_openai(struct chat_request *req, const cJSON *obj,
			      enum dialect dialect)
{
	const cJSON *m, *f;

	memset(req, 0, sizeof(*req));
	req->temperature = -1;
	req->dialect = dialect;
	if (json_str(obj, "model"))
		req->model = xstrdup(json_str(obj, "model"));
	req->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "stream"));
	cJSON_ArrayForEach(m, json_arr(obj, "messages")) {
		char *text = content_text(cJSON_GetObjectItemCaseSensitive(m, "content"));
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
		int plain = cJSON_IsString(c) && cJSON_GetArraySize(m) == 2;

		chat_request_add(req, json_str(m, "role"), text,
				 plain ? NULL : cJSON_Duplicate(m, 1));
		free(text);
	}
	req->extra = cJSON_CreateObject();
	cJSON_ArrayForEach(f, obj)
		if (strcmp(f->string, "model") && strcmp(f->string, "messages") &&
		    strcmp(f->string, "stream"))
			cJSON_AddItemToObject(req->extra, f->string, cJSON_Duplicate(f, 1));
}

void chat_request_release(struct chat_request *req)
{
	for (size_t i = 0; i < req->nmessages; i++) {
		free((char *)req->messages[i].role);
		free((char *)req->messages[i].content);
		cJSON_Delete((cJSON *)req->messages[i].json);
	}
	free(req->messages);
	free(req->model);
	free(req->system);
	cJSON_Delete(req->extra);
	cJSON_Delete(req->native);
	memset(req, 0, sizeof(*req));
}

cJSON *chat_result_json(const struct chat_result *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "content", r->content.ptr);
	cJSON_AddStringToObject(o, "model", r->model);
	if (r->have_usage) {
		cJSON_AddNumberToObject(o, "prompt_tokens", (double)r->prompt_tokens);
		cJSON_AddNumberToObject(o, "completion_tokens",
					(double)r->completion_tokens);
		cJSON_AddNumberToObject(o, "total_tokens",
					(double)(r->prompt_tokens + r->completion_tokens));
	} else {
		cJSON_AddNullToObject(o, "prompt_tokens");
		cJSON_AddNullToObject(o, "completion_tokens");
		cJSON_AddNullToObject(o, "total_tokens");
	}
	if (r->finish_reason[0])
		cJSON_AddStringToObject(o, "finish_reason", r->finish_reason);
	else
		cJSON_AddNullToObject(o, "finish_reason");
	if (r->err.code != ERR_OK) {
		cJSON *e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "code", err_code_name(r->err.code));
		cJSON_AddStringToObject(e, "message", r->err.msg);
	}
	return o;
}

int chat_result_whole(const struct chat_result *r, struct err *e)
{
	if (!r->content_truncated)
		return 0;
	return err_set(e, ERR_UPSTREAM_PROTOCOL,
		       "the answer is larger than %zu MiB, too large to keep whole",
		       CHAT_CONTENT_MAX >> 20);
}

/* Every delta goes on to the caller; the result keeps the first
 * CHAT_CONTENT_MAX bytes, so an endless answer cannot grow it forever. */
static void on_delta(void *ud, const char *s, size_t n)
{
	struct chat *c = ud;
	struct buf *b = &c->res.content;

	if (c->discard_text) {
		/* Nothing kept: the caller has it. */
	} else if (!c->res.content_truncated && b->len + n <= CHAT_CONTENT_MAX) {
		buf_append(b, s, n);
	} else if (!c->res.content_truncated) {
		size_t k = CHAT_CONTENT_MAX - b->len;

		/* Not inside a UTF-8 character: s[k] would start the rest. */
		while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
			k--;
		buf_append(b, s, k);
		c->res.content_truncated = 1;
	}
	c->cbs->on_delta(c->ud, s, n);
}

static void on_retry(void *ud, const struct err *why, int attempt,
		     int64_t delay_ms)
{
	struct chat *c = ud;

	if (c->cbs->on_retry)
		c->cbs->on_retry(c->ud, why, attempt, delay_ms);
}

static void on_done(void *ud, const struct llm_result *r)
{
	struct chat *c = ud;

	c->call = NULL;
	c->res.err = r->err;
	c->res.prompt_tokens = r->prompt_tokens;
	c->res.completion_tokens = r->completion_tokens;
	c->res.have_usage = r->have_usage;
	c->res.cached_tokens = r->cached_tokens;
	c->res.cache_write_tokens = r->cache_write_tokens;
	if (c->res.priced && r->have_usage)
		c->res.cost_micros = price_cost(&c->price, r->prompt_tokens,
						r->cached_tokens,
						r->cache_write_tokens,
						r->completion_tokens);
	memcpy(c->res.finish_reason, r->finish_reason, sizeof(c->res.finish_reason));
	c->res.attempts = r->attempts;
	c->res.retry_after = r->retry_after;
	c->res.first_token_ms = r->first_token_ms;
	c->res.total_ms = r->total_ms;
	c->cbs->on_done(c->ud, &c->res);
	chat_cancel(c);
}

static void on_event(void *ud, const char *name, const char *data, size_t n)
{
	struct chat *c = ud;

	if (c->cbs->on_event)
		c->cbs->on_event(c->ud, name, data, n);
}

static void on_reasoning(void *ud, const char *s, size_t n)
{
	struct chat *c = ud;

	if (c->cbs->on_reasoning)
		c->cbs->on_reasoning(c->ud, s, n);
}

static const struct llm_cbs llm_cbs = {
	.on_delta = on_delta,
	.on_retry = on_retry,
	.on_done = on_done,
	.on_event = on_event,
	.on_reasoning = on_reasoning,
};

struct chat *chat_start(struct engine *eng, const struct config *cfg,
			const struct chat_request *req, const struct llm_opts *o,
			const struct chat_cbs *cbs, void *ud, struct err *e)
{
	struct model_ref m;
	struct chat_params p = {
		.system = req->system,
		.messages = req->messages,
		.nmessages = req->nmessages,
		.temperature = req->temperature,
		.temperature_default = req->temperature_default,
		.max_tokens = req->max_tokens,
		.stream = req->stream,
		.extra = req->extra,
		.dialect = req->dialect,
		.native = req->native,
	};
	struct chat *c;

	if (model_resolve(cfg, req->model, &m, e) < 0) {
		model_ref_release(&m);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->cbs = cbs;
	c->ud = ud;
	c->discard_text = req->discard_text;
	buf_init(&c->res.content, 0);
	snprintf(c->res.model, sizeof(c->res.model), "%s", m.full);
	c->res.priced = price_lookup(cfg, m.full, &c->price) == 0;
	c->call = llm_call_start(eng, &m, &p, o, &llm_cbs, c, e);
	model_ref_release(&m);
	if (!c->call) {
		buf_release(&c->res.content);
		free(c);
		return NULL;
	}
	return c;
}

void chat_cancel(struct chat *c)
{
	if (!c)
		return;
	llm_call_cancel(c->call);
	buf_release(&c->res.content);
	free(c);
}

void chat_pause(struct chat *c, int on)
{
	if (c)
		llm_call_pause(c->call, on);
}

const struct chat_result *chat_progress(const struct chat *c)
{
	return &c->res;
}

static long estimate_tokens(const char *s)
{
	return s ? (long)(strlen(s) + 3) / 4 + 4 : 0;
}

size_t chat_fit_budget(struct chat_request *req, long budget)
{
	long total = estimate_tokens(req->system);
	size_t dropped = 0, i = 0;

	if (budget <= 0)
		return 0;
	for (size_t k = 0; k < req->nmessages; k++)
		total += estimate_tokens(req->messages[k].content);
	/* Oldest first, never a system message nor the last message. */
	while (total > budget && i + 1 < req->nmessages) {
		struct chat_message *m = &req->messages[i];
		if (!strcmp(m->role, "system")) {
			i++;
			continue;
		}
		total -= estimate_tokens(m->content);
		free((char *)m->role);
		free((char *)m->content);
		cJSON_Delete((cJSON *)m->json);
		memmove(m, m + 1, (req->nmessages - i - 1) * sizeof(*m));
		req->nmessages--;
		dropped++;
	}
	return dropped;
}

long chat_estimate_tokens(const struct chat_request *req)
{
	long total = estimate_tokens(req->system);

	for (size_t k = 0; k < req->nmessages; k++)
		total += estimate_tokens(req->messages[k].content);
	return total;
}
