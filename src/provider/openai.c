/*
 * openai.c - the OpenAI chat completions wire format, spoken by OpenAI
 * and by every compatible server (Ollama, vLLM, llama.cpp, ...).
 *
 * Stream: a role chunk, content deltas, a chunk with finish_reason, with
 * stream_options.include_usage a last chunk whose choices is empty (or
 * null) carrying usage, then "data: [DONE]".  An "error" object may come
 * inside a 200 stream.
 *
 * Requests carry every field the caller gave (chat_params.extra) and its
 * messages as it wrote them; a caller that speaks OpenAI gets the
 * upstream's events and body as they came (llm_emit_event), one that
 * speaks Anthropic gets them translated (xlate.h).
 */
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>

static char *header(const char *fmt, const char *v)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, fmt, v);
	return buf_detach(&b);
}

static void add_message(cJSON *arr, const struct chat_message *cm)
{
	cJSON *m;

	if (cm->json) {
		cJSON_AddItemToArray(arr, cJSON_Duplicate(cm->json, 1));
		return;
	}
	m = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, m);
	cJSON_AddStringToObject(m, "role", cm->role);
	cJSON_AddStringToObject(m, "content", cm->content);
}

/* Fields of extra aichat sets itself. */
static int own_field(const char *name)
{
	return !strcmp(name, "model") || !strcmp(name, "messages") ||
	       !strcmp(name, "stream");
}

static int build(struct llm_call *c, const struct chat_params *p,
		 struct buf *url, struct buf *body, char ***headers,
		 struct err *e)
{
	const struct model_ref *m = llm_model(c);
	cJSON *root = cJSON_CreateObject(), *msgs;
	const cJSON *f;
	char **h = xcalloc(3, sizeof(*h));
	int nh = 0;
	char *text;

	buf_printf(url, "%s/chat/completions", m->base_url);
	cJSON_AddStringToObject(root, "model", m->model);
	msgs = cJSON_AddArrayToObject(root, "messages");
	if (p->system) {
		struct chat_message sm = { "system", p->system, NULL };
		add_message(msgs, &sm);
	}
	for (size_t i = 0; i < p->nmessages; i++)
		add_message(msgs, &p->messages[i]);
	/* Every field the caller sent, as it sent it. */
	cJSON_ArrayForEach(f, p->extra)
		if (f->string && !own_field(f->string))
			cJSON_AddItemToObject(root, f->string, cJSON_Duplicate(f, 1));
	if (p->temperature >= 0 && !cJSON_GetObjectItemCaseSensitive(root, "temperature"))
		cJSON_AddNumberToObject(root, "temperature", p->temperature);
	if (p->max_tokens > 0 && !cJSON_GetObjectItemCaseSensitive(root, "max_tokens") &&
	    !cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens"))
		cJSON_AddNumberToObject(root, "max_tokens", p->max_tokens);
	cJSON_AddBoolToObject(root, "stream", p->stream);
	if (p->stream) {
		/* Usage is asked for always (metrics, logs, the CLI's -v); a
		 * caller who did not ask for it does not get its chunk. */
		cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
		if (!cJSON_IsObject(so)) {
			cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");
			so = cJSON_AddObjectToObject(root, "stream_options");
		}
		cJSON_DeleteItemFromObjectCaseSensitive(so, "include_usage");
		cJSON_AddBoolToObject(so, "include_usage", 1);
	} else {
		cJSON_DeleteItemFromObjectCaseSensitive(root, "stream_options");
	}
	if (model_family_apply(m, root, p->temperature_default, e) < 0) {
		cJSON_Delete(root);
		free(h);
		return -1;
	}
	text = json_print(root);
	buf_appends(body, text);
	free(text);
	cJSON_Delete(root);
	h[nh++] = xstrdup("Content-Type: application/json");
	if (m->api_key)
		h[nh++] = header("Authorization: Bearer %s", m->api_key);
	*headers = h;
	return 0;
}

static void read_usage(struct llm_call *c, const cJSON *root)
{
	const cJSON *u = json_obj(root, "usage");
	double pt, ct;

	if (!u)
		return;
	if (json_count(u, "prompt_tokens", &pt) < 0)
		pt = -1;
	if (json_count(u, "completion_tokens", &ct) < 0)
		ct = -1;
	llm_set_usage(c, (long)pt, (long)ct);
	if (json_count(json_obj(u, "prompt_tokens_details"), "cached_tokens", &pt) == 0)
		llm_set_cached(c, (long)pt);
}

static int error_object(struct llm_call *c, const cJSON *root, struct err *e)
{
	const cJSON *eo = cJSON_GetObjectItemCaseSensitive(root, "error");
	const char *msg = NULL, *type = NULL;
	char clean[160] = "";

	if (!eo || cJSON_IsNull(eo))
		return 0;
	if (cJSON_IsObject(eo)) {
		msg = json_str(eo, "message");
		type = json_str(eo, "type");
	} else if (cJSON_IsString(eo)) {
		msg = eo->valuestring;
	}
	if (msg)
		trust_clean(clean, sizeof(clean), msg, strlen(msg));
	return err_set(e, type && strstr(type, "overloaded") ? ERR_OVERLOADED :
		       ERR_UPSTREAM_ERROR, "%s stream error: %s",
		       llm_model(c)->provider, *clean ? clean : "unknown error");
}

static int stream_event(struct llm_call *c, const struct sse_event *ev,
			struct err *e)
{
	cJSON *root;
	const cJSON *choices, *ch;
	int rc = 0;

	if (ev->data_len == 0)
		return 0;
	if (sse_is_done(ev)) {
		llm_mark_complete(c);
		llm_stream_end(c);
		return 0;
	}
	root = json_parse(ev->data, ev->data_len, NULL);
	if (!root)
		return llm_malformed(c, "JSON in stream", ev->data, ev->data_len, e);
	/* Its text reaches clients in aichat's own JSON (translated, or
	 * as /chat's deltas): valid UTF-8 only. */
	json_make_utf8(root);
	if (!strcmp(ev->event, "error") || error_object(c, root, e) < 0) {
		if (e->code == ERR_OK)
			err_set(e, ERR_UPSTREAM_ERROR, "%s stream error",
				llm_model(c)->provider);
		rc = -1;
		goto cleanup;
	}
	choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	ch = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	if (ch) {
		const cJSON *delta = json_obj(ch, "delta");
		const char *text = delta ? json_str(delta, "content") : NULL;
		const char *fr = json_str(ch, "finish_reason");

		if (text)
			llm_emit(c, text, strlen(text));
		if (fr)
			llm_set_finish(c, fr);
	}
	read_usage(c, root);
	/* The usage chunk aichat asked for on its own is not passed on. */
	if (llm_dialect(c) == DIALECT_OPENAI &&
	    (ch || !json_obj(root, "usage") || llm_wants_usage(c)))
		llm_emit_event(c, "", ev->data, ev->data_len, ch != NULL);
	else if (llm_dialect(c) == DIALECT_ANTHROPIC)
		llm_emit_openai(c, root, ch != NULL);
cleanup:
	cJSON_Delete(root);
	return rc;
}

static int parse_body(struct llm_call *c, const char *body, size_t len,
		      struct err *e)
{
	cJSON *root = json_parse(body, len, NULL);
	const cJSON *choices, *ch, *msg;
	const char *text, *fr;
	int rc = -1;

	if (!root)
		return llm_malformed(c, "JSON answer", body, len, e);
	/* Its text reaches clients in aichat's own JSON (translated, or
	 * as /chat's deltas): valid UTF-8 only. */
	json_make_utf8(root);
	if (error_object(c, root, e) < 0)
		goto cleanup;
	choices = json_arr(root, "choices");
	ch = choices ? cJSON_GetArrayItem(choices, 0) : NULL;
	msg = ch ? json_obj(ch, "message") : NULL;
	if (!msg) {
		llm_malformed(c, "answer (no choices[0].message)", body, len, e);
		goto cleanup;
	}
	text = json_str(msg, "content");
	if (text)
		llm_emit(c, text, strlen(text));
	fr = json_str(ch, "finish_reason");
	if (fr)
		llm_set_finish(c, fr);
	read_usage(c, root);
	if (llm_dialect(c) == DIALECT_OPENAI)
		llm_emit_event(c, NULL, body, len, 1);
	else if (llm_dialect(c) == DIALECT_ANTHROPIC)
		llm_emit_openai(c, root, 1);
	llm_mark_complete(c);
	rc = 0;
cleanup:
	cJSON_Delete(root);
	return rc;
}

const struct provider_ops provider_openai = {
	.kind = "openai",
	.build = build,
	.stream_event = stream_event,
	.parse_body = parse_body,
};
