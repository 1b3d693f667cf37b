/*
 * anthropic.c - the Anthropic Messages API.
 *
 * The system prompt is a top-level field (system messages of a conversation
 * are joined into it); max_tokens is required, 4096 unless given.  Stream
 * events: message_start (input tokens), content_block_delta (text_delta is
 * the answer; other delta types are not), message_delta (stop_reason and a
 * cumulative output_tokens: replaced, never added), message_stop, ping, and
 * error, which ends the stream with the partial text kept.
 */
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096

static int build(struct llm_call *c, const struct chat_params *p,
		 struct buf *url, struct buf *body, char ***headers,
		 struct err *e)
{
	const struct model_ref *m = llm_model(c);
	cJSON *root = cJSON_CreateObject(), *msgs;
	char **h = xcalloc(4, sizeof(*h));
	struct buf sys, hb;
	char *text;
	int nh = 0;

	(void)e;
	buf_init(&sys, 0);
	buf_printf(url, "%s/v1/messages", m->base_url);
	cJSON_AddStringToObject(root, "model", m->model);
	cJSON_AddNumberToObject(root, "max_tokens", p->max_tokens > 0 ?
				p->max_tokens : ANTHROPIC_DEFAULT_MAX_TOKENS);
	if (p->system)
		buf_appends(&sys, p->system);
	msgs = cJSON_CreateArray();
	for (size_t i = 0; i < p->nmessages; i++) {
		const struct chat_message *cm = &p->messages[i];
		if (!strcmp(cm->role, "system")) {
			if (sys.len)
				buf_appends(&sys, "\n\n");
			buf_appends(&sys, cm->content);
			continue;
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToArray(msgs, o);
		cJSON_AddStringToObject(o, "role", cm->role);
		cJSON_AddStringToObject(o, "content", cm->content);
	}
	if (sys.len)
		cJSON_AddStringToObject(root, "system", sys.ptr);
	cJSON_AddItemToObject(root, "messages", msgs);
	if (p->temperature >= 0)
		cJSON_AddNumberToObject(root, "temperature", p->temperature);
	if (p->stream)
		cJSON_AddBoolToObject(root, "stream", 1);
	text = json_print(root);
	buf_appends(body, text);
	free(text);
	cJSON_Delete(root);
	buf_release(&sys);

	h[nh++] = xstrdup("Content-Type: application/json");
	h[nh++] = xstrdup("anthropic-version: " ANTHROPIC_VERSION);
	if (m->api_key) {
		buf_init(&hb, 0);
		buf_printf(&hb, "x-api-key: %s", m->api_key);
		h[nh++] = buf_detach(&hb);
	}
	*headers = h;
	return 0;
}

/* Anthropic stop reasons in the OpenAI vocabulary every face speaks. */
static const char *finish_name(const char *stop)
{
	if (!strcmp(stop, "end_turn") || !strcmp(stop, "stop_sequence"))
		return "stop";
	if (!strcmp(stop, "max_tokens"))
		return "length";
	if (!strcmp(stop, "tool_use"))
		return "tool_calls";
	return stop;
}

static void read_usage(struct llm_call *c, const cJSON *u)
{
	double in, out;

	if (!u)
		return;
	if (json_num(u, "input_tokens", &in) < 0)
		in = -1;
	if (json_num(u, "output_tokens", &out) < 0)
		out = -1;
	if (in >= 0 || out >= 0)
		llm_set_usage(c, (long)in, (long)out);
}

static int error_event(struct llm_call *c, const cJSON *root, struct err *e)
{
	const cJSON *eo = json_obj(root, "error");
	const char *type = eo ? json_str(eo, "type") : NULL;
	const char *msg = eo ? json_str(eo, "message") : NULL;
	char clean[160] = "";

	if (msg)
		llm_clean_message(llm_model(c), clean, sizeof(clean), msg,
				  strlen(msg));
	return err_set(e, type && !strcmp(type, "overloaded_error") ?
		       ERR_OVERLOADED : type && !strcmp(type, "rate_limit_error") ?
		       ERR_RATE_LIMITED : ERR_UPSTREAM_ERROR,
		       "%s stream error: %s%s%s", llm_model(c)->provider,
		       type ? type : "error", *clean ? ": " : "", clean);
}

static int stream_event(struct llm_call *c, const struct sse_event *ev,
			struct err *e)
{
	cJSON *root;
	const char *type;
	int rc = 0;

	if (ev->data_len == 0)
		return 0;
	root = json_parse(ev->data, ev->data_len, NULL);
	if (!root)
		return llm_malformed(c, "JSON in stream", ev->data, ev->data_len, e);
	type = *ev->event ? ev->event : json_str(root, "type");
	if (!type)
		type = "";
	if (!strcmp(type, "message_start")) {
		read_usage(c, json_path(root, "message.usage"));
	} else if (!strcmp(type, "content_block_delta")) {
		const cJSON *d = json_obj(root, "delta");
		const char *dt = d ? json_str(d, "type") : NULL;
		const char *text = d ? json_str(d, "text") : NULL;
		if (dt && !strcmp(dt, "text_delta") && text)
			llm_emit(c, text, strlen(text));
	} else if (!strcmp(type, "message_delta")) {
		const char *stop = json_str(json_obj(root, "delta"), "stop_reason");
		if (stop)
			llm_set_finish(c, finish_name(stop));
		read_usage(c, json_obj(root, "usage"));
	} else if (!strcmp(type, "message_stop")) {
		llm_mark_complete(c);
	} else if (!strcmp(type, "error")) {
		rc = error_event(c, root, e);
	}
	cJSON_Delete(root);
	return rc;
}

static int parse_body(struct llm_call *c, const char *body, size_t len,
		      struct err *e)
{
	cJSON *root = json_parse(body, len, NULL);
	const cJSON *content, *blk;
	const char *stop;
	int rc = -1;

	if (!root)
		return llm_malformed(c, "JSON answer", body, len, e);
	if (json_obj(root, "error")) {
		error_event(c, root, e);
		goto cleanup;
	}
	content = json_arr(root, "content");
	if (!content) {
		llm_malformed(c, "answer (no content)", body, len, e);
		goto cleanup;
	}
	cJSON_ArrayForEach(blk, content) {
		const char *bt = json_str(blk, "type"), *text = json_str(blk, "text");
		if (bt && !strcmp(bt, "text") && text)
			llm_emit(c, text, strlen(text));
	}
	stop = json_str(root, "stop_reason");
	if (stop)
		llm_set_finish(c, finish_name(stop));
	read_usage(c, json_obj(root, "usage"));
	llm_mark_complete(c);
	rc = 0;
cleanup:
	cJSON_Delete(root);
	return rc;
}

const struct provider_ops provider_anthropic = {
	.kind = "anthropic",
	.build = build,
	.stream_event = stream_event,
	.parse_body = parse_body,
};
