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
 * upstream's events and body as they came (llm_emit_event), read without
 * a tree when they are plain (skim()), one that speaks Anthropic gets
 * them translated (xlate.h).
 */
#include "aichat/jscan.h"
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
	char *text;

	(void)headers;

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
		return -1;
	}
	text = json_print(root);
	buf_appends(body, text);
	free(text);
	cJSON_Delete(root);
	return 0;
}

static char **headers(const struct model_ref *m)
{
	char **h = xcalloc(3, sizeof(*h));
	int nh = 0;

	h[nh++] = xstrdup("Content-Type: application/json");
	if (m->api_key)
		h[nh++] = header("Authorization: Bearer %s", m->api_key);
	return h;
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

/* ==== the same-dialect fast path: what aichat reads, without a tree ==== */

/*
 * A client that speaks OpenAI gets the upstream's chunks and body as
 * bytes, so aichat needs no tree of them, only what it reads: the first
 * choice's content (time to first token, the conversation log) and
 * finish_reason, the usage, and whether choices has an element (a usage
 * chunk aichat asked for on its own is not passed on).  skim() finds these
 * in one pass (jscan.h) that checks the whole text as strict JSON, reading
 * each member the way cJSON_GetObjectItemCaseSensitive would (the first of
 * a name).  Whatever it is not sure the full parse would read the same --
 * an "error" that is not null, an escaped member name, a raw control byte
 * or \u0000 in a string, a first choice that is not an object, a number of
 * 64 bytes or more (cJSON cuts it), nesting deeper than JSCAN_DEPTH, text
 * that is not UTF-8, anything malformed -- makes it say no, and the event
 * or body goes the full way (cJSON): the same errors, the same results.
 */
int openai_skim = 1;

struct skimmed {
	int choices;             /* choices is an array with an element */
	int body;                /* its first has the delta/message object */
	int have_text;
	struct buf text;         /* that object's content, decoded */
	int have_finish;
	struct buf finish;       /* the first choice's finish_reason, decoded */
	int usage;               /* usage is an object */
	double prompt, completion, cached;  /* -1: not a number there */
};

/* The usage object at s->p (its '{'). */
static int sk_usage(struct jscan *s, struct skimmed *k)
{
	const char *name;
	size_t nlen;
	int first = 1, rc, seen_p = 0, seen_c = 0, seen_d = 0;

	s->p++;
	while ((rc = jscan_more(s, '}', &first, &name, &nlen)) > 0) {
		if (!seen_p && jscan_named(name, nlen, "prompt_tokens")) {
			seen_p = 1;
			rc = jscan_count(s, &k->prompt, 3);
		} else if (!seen_c && jscan_named(name, nlen, "completion_tokens")) {
			seen_c = 1;
			rc = jscan_count(s, &k->completion, 3);
		} else if (!seen_d && jscan_named(name, nlen, "prompt_tokens_details") &&
			   *s->p == '{') {
			int f2 = 1, seen_k = 0;
			seen_d = 1;
			s->p++;
			while ((rc = jscan_more(s, '}', &f2, &name, &nlen)) > 0) {
				if (!seen_k && jscan_named(name, nlen, "cached_tokens")) {
					seen_k = 1;
					rc = jscan_count(s, &k->cached, 4);
				} else {
					rc = jscan_value(s, 4);
				}
				if (rc < 0)
					return -1;
			}
		} else {
			if (jscan_named(name, nlen, "prompt_tokens_details"))
				seen_d = 1;
			rc = jscan_value(s, 3);
		}
		if (rc < 0)
			return -1;
	}
	return rc;
}

/* The first choice at s->p: its body_name object's content, and its
 * finish_reason. */
static int sk_choice(struct jscan *s, const char *body_name, struct skimmed *k)
{
	const char *name;
	size_t nlen;
	int first = 1, rc, seen_b = 0, seen_f = 0;

	if (*s->p != '{')
		return -1;
	s->p++;
	while ((rc = jscan_more(s, '}', &first, &name, &nlen)) > 0) {
		if (!seen_b && jscan_named(name, nlen, body_name)) {
			seen_b = 1;
			if (*s->p == '{') {
				int f2 = 1, seen_t = 0;
				k->body = 1;
				s->p++;
				while ((rc = jscan_more(s, '}', &f2, &name, &nlen)) > 0) {
					if (!seen_t && jscan_named(name, nlen, "content")) {
						seen_t = 1;
						if (*s->p == '"') {
							k->have_text = 1;
							rc = jscan_string(s, &k->text);
						} else {
							rc = jscan_value(s, 4);
						}
					} else {
						rc = jscan_value(s, 4);
					}
					if (rc < 0)
						return -1;
				}
			} else {
				rc = jscan_value(s, 3);
			}
		} else if (!seen_f && jscan_named(name, nlen, "finish_reason")) {
			seen_f = 1;
			if (*s->p == '"') {
				k->have_finish = 1;
				rc = jscan_string(s, &k->finish);
			} else {
				rc = jscan_value(s, 3);
			}
		} else {
			rc = jscan_value(s, 3);
		}
		if (rc < 0)
			return -1;
	}
	return rc;
}

static void skimmed_init(struct skimmed *k)
{
	memset(k, 0, sizeof(*k));
	buf_init(&k->text, 0);
	buf_init(&k->finish, 0);
	k->prompt = k->completion = k->cached = -1;
}

static void skimmed_release(struct skimmed *k)
{
	buf_release(&k->text);
	buf_release(&k->finish);
}

/* 0 with k filled when all of text could be read without a tree (and
 * its content is valid UTF-8), else -1: take the full way. */
static int skim(const char *text, size_t len, const char *body_name,
		struct skimmed *k)
{
	struct jscan s = { text, text + len };
	const char *name;
	size_t nlen;
	int first = 1, rc, seen_c = 0, seen_u = 0, seen_e = 0;

	jscan_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	while ((rc = jscan_more(&s, '}', &first, &name, &nlen)) > 0) {
		if (!seen_c && jscan_named(name, nlen, "choices")) {
			seen_c = 1;
			if (*s.p == '[') {
				int f2 = 1;
				s.p++;
				if ((rc = jscan_more(&s, ']', &f2, NULL, NULL)) > 0) {
					k->choices = 1;
					if (sk_choice(&s, body_name, k) < 0)
						return -1;
					while ((rc = jscan_more(&s, ']', &f2, NULL, NULL)) > 0)
						if (jscan_value(&s, 2) < 0)
							return -1;
				}
			} else {
				rc = jscan_value(&s, 1);
			}
		} else if (!seen_u && jscan_named(name, nlen, "usage")) {
			seen_u = 1;
			if (*s.p == '{') {
				k->usage = 1;
				rc = sk_usage(&s, k);
			} else {
				rc = jscan_value(&s, 1);
			}
		} else if (!seen_e && jscan_named(name, nlen, "error")) {
			seen_e = 1;
			rc = jscan_word(&s, "null", 4);
		} else {
			rc = jscan_value(&s, 1);
		}
		if (rc < 0)
			return -1;
	}
	if (rc < 0)
		return -1;
	jscan_ws(&s);
	if (s.p != s.end)
		return -1;
	return trust_utf8_invalid(k->text.ptr, k->text.len) < 0 ? 0 : -1;
}

/* What skim() found, told to the call as the full way would. */
static void skimmed_apply(struct llm_call *c, const struct skimmed *k)
{
	if (k->have_text)
		llm_emit(c, k->text.ptr, k->text.len);
	if (k->have_finish)
		llm_set_finish(c, k->finish.ptr);
	if (k->usage) {
		llm_set_usage(c, (long)k->prompt, (long)k->completion);
		if (k->cached >= 0)
			llm_set_cached(c, (long)k->cached);
	}
}

/* A chunk for an OpenAI client, skimmed: 0 when done, -1 to parse it. */
static int fast_event(struct llm_call *c, const struct sse_event *ev)
{
	struct skimmed k;
	int rc = -1;

	skimmed_init(&k);
	if (skim(ev->data, ev->data_len, "delta", &k) == 0) {
		skimmed_apply(c, &k);
		/* The usage chunk aichat asked for on its own is not passed on. */
		if (k.choices || !k.usage || llm_wants_usage(c))
			llm_emit_event(c, "", ev->data, ev->data_len, k.choices);
		rc = 0;
	}
	skimmed_release(&k);
	return rc;
}

/* A whole answer for an OpenAI client, skimmed: 0 when done, -1 to parse
 * it. */
static int fast_body(struct llm_call *c, const char *body, size_t len)
{
	struct skimmed k;
	int rc = -1;

	skimmed_init(&k);
	if (skim(body, len, "message", &k) == 0 && k.body) {
		skimmed_apply(c, &k);
		llm_emit_event(c, NULL, body, len, 1);
		llm_mark_complete(c);
		rc = 0;
	}
	skimmed_release(&k);
	return rc;
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
	if (openai_skim && llm_dialect(c) == DIALECT_OPENAI && strcmp(ev->event, "error") &&
	    fast_event(c, ev) == 0)
		return 0;
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
	cJSON *root;
	const cJSON *choices, *ch, *msg;
	const char *text, *fr;
	int rc = -1;

	if (openai_skim && llm_dialect(c) == DIALECT_OPENAI && fast_body(c, body, len) == 0)
		return 0;
	root = json_parse(body, len, NULL);
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
	.headers = headers,
	.stream_event = stream_event,
	.parse_body = parse_body,
};
