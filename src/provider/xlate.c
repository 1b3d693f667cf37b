/*
 * xlate.c - OpenAI answers told in Anthropic's dialect, and Anthropic
 * requests told in OpenAI's; see xlate.h.
 *
 * The streamed translation keeps one content block open at a time, as
 * Anthropic's own streams do: text, or one tool_use per OpenAI tool call
 * (OpenAI sends a call's fragments in order, each call under its own
 * index).  message_delta waits for the end, because OpenAI reports usage
 * after the finish reason.
 */
#include "aichat/xlate.h"
#include "aichat/buf.h"
#include "aichat/json.h"
#include "aichat/xalloc.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum block { BLOCK_NONE, BLOCK_TEXT, BLOCK_TOOL };

struct xo2a {
	char *model;
	char id[96];
	int started, finished;
	enum block open;
	int nblocks;          /* blocks started so far */
	int tool_index;       /* OpenAI index of the open tool block */
	char stop[32];
	double in, out, cache_read;
	int have_usage;
};

struct xo2a *xo2a_new(const char *model)
{
	struct xo2a *x = xcalloc(1, sizeof(*x));

	x->model = xstrdup(model ? model : "");
	x->tool_index = -1;
	return x;
}

void xo2a_free(struct xo2a *x)
{
	if (!x)
		return;
	free(x->model);
	free(x);
}

const char *xlate_stop_reason(const char *finish)
{
	if (!finish || !strcmp(finish, "stop"))
		return "end_turn";
	if (!strcmp(finish, "length"))
		return "max_tokens";
	if (!strcmp(finish, "tool_calls") || !strcmp(finish, "function_call"))
		return "tool_use";
	if (!strcmp(finish, "content_filter"))
		return "refusal";
	return finish;
}

const char *xlate_finish_reason(const char *stop)
{
	if (!stop || !strcmp(stop, "end_turn") || !strcmp(stop, "stop_sequence"))
		return "stop";
	if (!strcmp(stop, "max_tokens"))
		return "length";
	if (!strcmp(stop, "tool_use"))
		return "tool_calls";
	if (!strcmp(stop, "refusal"))
		return "content_filter";
	return stop;
}

static void emit_obj(xo2a_emit_fn emit, void *ud, const char *name, cJSON *o,
		     int answer)
{
	char *text = json_print(o);

	emit(ud, name, text, strlen(text), answer);
	free(text);
	cJSON_Delete(o);
}

static cJSON *event(const char *type)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "type", type);
	return o;
}

static void read_usage(struct xo2a *x, const cJSON *u)
{
	double d;

	if (!cJSON_IsObject(u))
		return;
	/* Upstream numbers: counts, clamped (json_count), never 1e300 or
	 * negative in what the caller gets. */
	if (json_count(u, "prompt_tokens", &d) == 0)
		x->in = d;
	if (json_count(u, "completion_tokens", &d) == 0)
		x->out = d;
	if (json_count(json_obj(u, "prompt_tokens_details"), "cached_tokens", &d) == 0)
		x->cache_read = d;
	x->have_usage = 1;
}

static cJSON *usage_object(const struct xo2a *x, int with_input)
{
	cJSON *u = cJSON_CreateObject();

	if (with_input) {
		cJSON_AddNumberToObject(u, "input_tokens", x->in > x->cache_read ?
					x->in - x->cache_read : 0);
		cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
		cJSON_AddNumberToObject(u, "cache_read_input_tokens", x->cache_read);
	}
	cJSON_AddNumberToObject(u, "output_tokens", x->out);
	return u;
}

static void set_id(struct xo2a *x, const cJSON *obj)
{
	const char *id = json_str(obj, "id");

	if (!x->id[0])
		snprintf(x->id, sizeof(x->id), "msg_%.80s", id ? id : "aichat");
}

static void start_message(struct xo2a *x, xo2a_emit_fn emit, void *ud)
{
	cJSON *o = event("message_start"), *m;

	x->started = 1;
	m = cJSON_AddObjectToObject(o, "message");
	cJSON_AddStringToObject(m, "id", x->id[0] ? x->id : "msg_aichat");
	cJSON_AddStringToObject(m, "type", "message");
	cJSON_AddStringToObject(m, "role", "assistant");
	cJSON_AddStringToObject(m, "model", x->model);
	cJSON_AddArrayToObject(m, "content");
	cJSON_AddNullToObject(m, "stop_reason");
	cJSON_AddNullToObject(m, "stop_sequence");
	cJSON_AddItemToObject(m, "usage", usage_object(x, 1));
	emit_obj(emit, ud, "message_start", o, 0);
}

static void close_block(struct xo2a *x, xo2a_emit_fn emit, void *ud)
{
	cJSON *o;

	if (x->open == BLOCK_NONE)
		return;
	o = event("content_block_stop");
	cJSON_AddNumberToObject(o, "index", x->nblocks - 1);
	emit_obj(emit, ud, "content_block_stop", o, 0);
	x->open = BLOCK_NONE;
	x->tool_index = -1;
}

static void open_block(struct xo2a *x, xo2a_emit_fn emit, void *ud,
		       cJSON *block, enum block kind)
{
	cJSON *o = event("content_block_start");

	close_block(x, emit, ud);
	cJSON_AddNumberToObject(o, "index", x->nblocks++);
	cJSON_AddItemToObject(o, "content_block", block);
	emit_obj(emit, ud, "content_block_start", o, 0);
	x->open = kind;
}

static void block_delta(struct xo2a *x, xo2a_emit_fn emit, void *ud,
			const char *type, const char *key, const char *s)
{
	cJSON *o = event("content_block_delta"), *d;

	cJSON_AddNumberToObject(o, "index", x->nblocks - 1);
	d = cJSON_AddObjectToObject(o, "delta");
	cJSON_AddStringToObject(d, "type", type);
	cJSON_AddStringToObject(d, key, s);
	emit_obj(emit, ud, "content_block_delta", o, 1);
}

static void text_delta(struct xo2a *x, xo2a_emit_fn emit, void *ud,
		       const char *s)
{
	if (!s || !*s)
		return;
	if (x->open != BLOCK_TEXT) {
		cJSON *b = event("text");
		cJSON_AddStringToObject(b, "text", "");
		open_block(x, emit, ud, b, BLOCK_TEXT);
	}
	block_delta(x, emit, ud, "text_delta", "text", s);
}

static void tool_delta(struct xo2a *x, xo2a_emit_fn emit, void *ud,
		       const cJSON *tc)
{
	double d = 0;
	const cJSON *fn = json_obj(tc, "function");
	const char *id = json_str(tc, "id"), *name = json_str(fn, "name");
	const char *args = json_str(fn, "arguments");
	int idx;

	/* An upstream's number: clamped before it becomes an int. */
	json_num(tc, "index", &d);
	idx = json_clamp_int(d, 0, INT_MAX);
	if (x->open != BLOCK_TOOL || idx != x->tool_index || id) {
		cJSON *b = event("tool_use");
		cJSON_AddStringToObject(b, "id", id ? id : "toolu_aichat");
		cJSON_AddStringToObject(b, "name", name ? name : "");
		cJSON_AddObjectToObject(b, "input");
		open_block(x, emit, ud, b, BLOCK_TOOL);
		x->tool_index = idx;
	}
	if (args && *args)
		block_delta(x, emit, ud, "input_json_delta", "partial_json", args);
}

/* The whole message, for a non-streamed answer. */
static void whole_message(struct xo2a *x, const cJSON *obj, xo2a_emit_fn emit,
			  void *ud)
{
	const cJSON *ch = cJSON_GetArrayItem(json_arr(obj, "choices"), 0);
	const cJSON *msg = json_obj(ch, "message"), *tc;
	const char *text = json_str(msg, "content");
	const char *refusal = json_str(msg, "refusal");
	cJSON *o = cJSON_CreateObject(), *content;

	set_id(x, obj);
	read_usage(x, json_obj(obj, "usage"));
	cJSON_AddStringToObject(o, "id", x->id);
	cJSON_AddStringToObject(o, "type", "message");
	cJSON_AddStringToObject(o, "role", "assistant");
	cJSON_AddStringToObject(o, "model", x->model);
	content = cJSON_AddArrayToObject(o, "content");
	if ((text && *text) || (refusal && *refusal)) {
		cJSON *b = event("text");
		cJSON_AddStringToObject(b, "text", text && *text ? text : refusal);
		cJSON_AddItemToArray(content, b);
	}
	cJSON_ArrayForEach(tc, json_arr(msg, "tool_calls")) {
		const cJSON *fn = json_obj(tc, "function");
		const char *args = json_str(fn, "arguments");
		cJSON *b = event("tool_use"), *input = NULL;

		cJSON_AddStringToObject(b, "id", json_str(tc, "id") ? json_str(tc, "id") : "");
		cJSON_AddStringToObject(b, "name", json_str(fn, "name") ? json_str(fn, "name") : "");
		if (args)
			input = json_parse(args, strlen(args), NULL);
		if (!cJSON_IsObject(input)) {
			/* Anthropic's input is an object: keep what the model
			 * wrote where the client can still see it. */
			cJSON_Delete(input);
			input = cJSON_CreateObject();
			if (args && *args)
				cJSON_AddStringToObject(input, "_raw_arguments", args);
		}
		cJSON_AddItemToObject(b, "input", input);
		cJSON_AddItemToArray(content, b);
	}
	cJSON_AddStringToObject(o, "stop_reason",
				xlate_stop_reason(json_str(ch, "finish_reason")));
	cJSON_AddNullToObject(o, "stop_sequence");
	cJSON_AddItemToObject(o, "usage", usage_object(x, 1));
	x->finished = 1;
	emit_obj(emit, ud, NULL, o, 1);
}

void xo2a_feed(struct xo2a *x, const cJSON *obj, xo2a_emit_fn emit, void *ud)
{
	const cJSON *ch, *d, *tc;
	const char *object = json_str(obj, "object"), *fr;

	if (x->finished)
		return;
	if (object && !strcmp(object, "chat.completion")) {
		whole_message(x, obj, emit, ud);
		return;
	}
	set_id(x, obj);
	if (!x->started)
		start_message(x, emit, ud);
	read_usage(x, json_obj(obj, "usage"));
	ch = cJSON_GetArrayItem(json_arr(obj, "choices"), 0);
	if (!ch)
		return;
	d = json_obj(ch, "delta");
	text_delta(x, emit, ud, json_str(d, "content"));
	text_delta(x, emit, ud, json_str(d, "refusal"));
	cJSON_ArrayForEach(tc, json_arr(d, "tool_calls"))
		tool_delta(x, emit, ud, tc);
	if ((fr = json_str(ch, "finish_reason"))) {
		close_block(x, emit, ud);
		snprintf(x->stop, sizeof(x->stop), "%s", xlate_stop_reason(fr));
	}
}

void xo2a_finish(struct xo2a *x, xo2a_emit_fn emit, void *ud)
{
	cJSON *o, *d;

	if (x->finished)
		return;
	if (!x->started)
		start_message(x, emit, ud);
	close_block(x, emit, ud);
	o = event("message_delta");
	d = cJSON_AddObjectToObject(o, "delta");
	cJSON_AddStringToObject(d, "stop_reason", x->stop[0] ? x->stop : "end_turn");
	cJSON_AddNullToObject(d, "stop_sequence");
	cJSON_AddItemToObject(o, "usage", usage_object(x, x->have_usage));
	emit_obj(emit, ud, "message_delta", o, 0);
	emit_obj(emit, ud, "message_stop", event("message_stop"), 0);
	x->finished = 1;
}

/* ==== Anthropic request -> OpenAI request ==== */

static int refuse(struct err *e, char *param, size_t cap, const char *path,
		  const char *why)
{
	snprintf(param, cap, "%s", path);
	return err_set(e, ERR_INVALID_REQUEST, "'%s' %s", path, why);
}

/* Anthropic content (a string or blocks) -> OpenAI parts, text only when
 * every block is text.  tool_result blocks go to *tools as tool messages;
 * tool_use blocks to *calls.  Returns -1 with e for an unknown block. */
static int blocks_to_parts(const cJSON *content, const char *role,
			   const char *path, cJSON **parts, cJSON *tools,
			   cJSON *calls, char *param, size_t cap, struct err *e)
{
	const cJSON *b;
	char where[96];
	int i = 0;

	*parts = NULL;
	if (cJSON_IsString(content)) {
		*parts = cJSON_CreateString(content->valuestring);
		return 0;
	}
	*parts = cJSON_CreateArray();
	cJSON_ArrayForEach(b, content) {
		const char *type = json_str(b, "type");
		cJSON *p = NULL;

		snprintf(where, sizeof(where), "%s.content.%d", path, i++);
		if (!type)
			return refuse(e, param, cap, where, "has no type");
		if (!strcmp(type, "text")) {
			p = event("text");
			cJSON_AddStringToObject(p, "text", json_str(b, "text") ?
						json_str(b, "text") : "");
		} else if (!strcmp(type, "image") || !strcmp(type, "document")) {
			const cJSON *src = json_obj(b, "source");
			const char *st = json_str(src, "type");
			int image = !strcmp(type, "image");
			struct buf url;

			buf_init(&url, 0);
			if (st && !strcmp(st, "base64")) {
				buf_printf(&url, "data:%s;base64,", json_str(src, "media_type") ?
					   json_str(src, "media_type") : "application/octet-stream");
				buf_appends(&url, json_str(src, "data") ? json_str(src, "data") : "");
			} else if (st && !strcmp(st, "url") && image) {
				buf_appends(&url, json_str(src, "url") ? json_str(src, "url") : "");
			} else {
				buf_release(&url);
				return refuse(e, param, cap, where,
					      "has a source type with no OpenAI meaning (base64 images and documents, and image URLs, are translated)");
			}
			if (image) {
				p = event("image_url");
				cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "image_url"),
							"url", url.ptr);
			} else {
				cJSON *f;
				p = event("file");
				f = cJSON_AddObjectToObject(p, "file");
				cJSON_AddStringToObject(f, "filename", json_str(b, "title") ?
							json_str(b, "title") : "document");
				cJSON_AddStringToObject(f, "file_data", url.ptr);
			}
			buf_release(&url);
		} else if (!strcmp(type, "tool_use") && !strcmp(role, "assistant")) {
			cJSON *tc = cJSON_CreateObject(), *fn;
			char *args = json_print(cJSON_GetObjectItemCaseSensitive(b, "input"));
			cJSON_AddStringToObject(tc, "id", json_str(b, "id") ? json_str(b, "id") : "");
			cJSON_AddStringToObject(tc, "type", "function");
			fn = cJSON_AddObjectToObject(tc, "function");
			cJSON_AddStringToObject(fn, "name", json_str(b, "name") ? json_str(b, "name") : "");
			cJSON_AddStringToObject(fn, "arguments", args);
			free(args);
			cJSON_AddItemToArray(calls, tc);
			continue;
		} else if (!strcmp(type, "tool_result") && !strcmp(role, "user")) {
			cJSON *tm = cJSON_CreateObject(), *tparts = NULL;
			const cJSON *tc = cJSON_GetObjectItemCaseSensitive(b, "content");
			cJSON_AddStringToObject(tm, "role", "tool");
			cJSON_AddStringToObject(tm, "tool_call_id", json_str(b, "tool_use_id") ?
						json_str(b, "tool_use_id") : "");
			if (tc && blocks_to_parts(tc, "tool", where, &tparts, NULL, NULL,
						  param, cap, e) < 0) {
				cJSON_Delete(tparts);
				cJSON_Delete(tm);
				return -1;
			}
			cJSON_AddItemToObject(tm, "content", tparts ? tparts : cJSON_CreateString(""));
			cJSON_AddItemToArray(tools, tm);
			continue;
		} else if (!strcmp(type, "thinking") || !strcmp(type, "redacted_thinking")) {
			/* An earlier answer's reasoning: only Anthropic models
			 * can read it back, and it is not part of the answer. */
			continue;
		} else {
			return refuse(e, param, cap, where,
				      "is a content block with no OpenAI meaning");
		}
		cJSON_AddItemToArray(*parts, p);
	}
	return 0;
}

/* A list of text parts as one string when that is all it holds. */
static cJSON *simplify(cJSON *parts)
{
	const cJSON *p;
	struct buf b;

	if (!cJSON_IsArray(parts))
		return parts;
	cJSON_ArrayForEach(p, parts)
		if (strcmp(json_str(p, "type"), "text"))
			return parts;
	buf_init(&b, 0);
	cJSON_ArrayForEach(p, parts)
		buf_appends(&b, json_str(p, "text"));
	cJSON_Delete(parts);
	parts = cJSON_CreateString(b.ptr);
	buf_release(&b);
	return parts;
}

static int copy_messages(const cJSON *areq, cJSON *msgs, char *param,
			 size_t cap, struct err *e)
{
	const cJSON *sys = cJSON_GetObjectItemCaseSensitive(areq, "system"), *m;
	char path[64];
	int i = 0;

	if (sys && !cJSON_IsNull(sys)) {
		cJSON *parts = NULL, *o;
		if (blocks_to_parts(sys, "system", "system", &parts, NULL, NULL,
				    param, cap, e) < 0) {
			cJSON_Delete(parts);
			return -1;
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "role", "system");
		cJSON_AddItemToObject(o, "content", simplify(parts));
		cJSON_AddItemToArray(msgs, o);
	}
	cJSON_ArrayForEach(m, json_arr(areq, "messages")) {
		const char *role = json_str(m, "role");
		cJSON *parts = NULL, *tools = cJSON_CreateArray(),
		      *calls = cJSON_CreateArray(), *o, *t;

		snprintf(path, sizeof(path), "messages.%d", i++);
		if (blocks_to_parts(cJSON_GetObjectItemCaseSensitive(m, "content"),
				    role, path, &parts, tools, calls, param, cap, e) < 0) {
			cJSON_Delete(parts);
			cJSON_Delete(tools);
			cJSON_Delete(calls);
			return -1;
		}
		/* Tool results answer the previous assistant turn: they come
		 * first, each as its own tool message. */
		while ((t = cJSON_DetachItemFromArray(tools, 0)))
			cJSON_AddItemToArray(msgs, t);
		cJSON_Delete(tools);
		if (!cJSON_IsArray(parts) || cJSON_GetArraySize(parts))
			parts = simplify(parts);
		if (cJSON_GetArraySize(calls) || !cJSON_IsArray(parts) ||
		    cJSON_GetArraySize(parts)) {
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "role", role);
			if (cJSON_IsArray(parts) && !cJSON_GetArraySize(parts)) {
				cJSON_Delete(parts);
				cJSON_AddNullToObject(o, "content");
			} else {
				cJSON_AddItemToObject(o, "content", parts);
			}
			if (cJSON_GetArraySize(calls))
				cJSON_AddItemToObject(o, "tool_calls", calls);
			else
				cJSON_Delete(calls);
			cJSON_AddItemToArray(msgs, o);
		} else {
			cJSON_Delete(parts);
			cJSON_Delete(calls);
		}
	}
	return 0;
}

static int copy_tools(const cJSON *areq, cJSON *out, char *param, size_t cap,
		      struct err *e)
{
	const cJSON *t, *tc = json_obj(areq, "tool_choice");
	cJSON *tools;
	char path[48];
	int i = 0;

	if (json_arr(areq, "tools")) {
		tools = cJSON_AddArrayToObject(out, "tools");
		cJSON_ArrayForEach(t, json_arr(areq, "tools")) {
			const char *type = json_str(t, "type");
			cJSON *o, *fn;

			snprintf(path, sizeof(path), "tools.%d", i++);
			if (type && strcmp(type, "custom"))
				return refuse(e, param, cap, path,
					      "is a server tool with no OpenAI meaning");
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "type", "function");
			fn = cJSON_AddObjectToObject(o, "function");
			cJSON_AddStringToObject(fn, "name", json_str(t, "name"));
			if (json_str(t, "description"))
				cJSON_AddStringToObject(fn, "description", json_str(t, "description"));
			if (json_obj(t, "input_schema"))
				cJSON_AddItemToObject(fn, "parameters",
					cJSON_Duplicate(json_obj(t, "input_schema"), 1));
			cJSON_AddItemToArray(tools, o);
		}
	}
	if (tc) {
		const char *type = json_str(tc, "type");
		if (!type || !strcmp(type, "auto")) {
			cJSON_AddStringToObject(out, "tool_choice", "auto");
		} else if (!strcmp(type, "any")) {
			cJSON_AddStringToObject(out, "tool_choice", "required");
		} else if (!strcmp(type, "none")) {
			cJSON_AddStringToObject(out, "tool_choice", "none");
		} else if (!strcmp(type, "tool")) {
			cJSON *o = cJSON_AddObjectToObject(out, "tool_choice");
			cJSON_AddStringToObject(o, "type", "function");
			cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "function"),
						"name", json_str(tc, "name") ? json_str(tc, "name") : "");
		}
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(tc, "disable_parallel_tool_use")))
			cJSON_AddFalseToObject(out, "parallel_tool_calls");
	}
	return 0;
}

cJSON *xa2o_request(const cJSON *areq, char *param, size_t cap, struct err *e)
{
	/* Fields with the same meaning and name on both sides. */
	static const char *const same[] = { "model", "max_tokens", "temperature",
					    "top_p", "stream", NULL };
	/* Fields translated below, or hints with no effect on the answer. */
	static const char *const handled[] = { "system", "messages", "tools",
		"tool_choice", "stop_sequences", "metadata", NULL };
	cJSON *out = cJSON_CreateObject();
	const cJSON *f, *uid;

	*param = '\0';
	cJSON_ArrayForEach(f, areq) {
		int known = 0;
		for (const char *const *s = same; *s && !known; s++)
			if (!strcmp(f->string, *s)) {
				cJSON_AddItemToObject(out, f->string, cJSON_Duplicate(f, 1));
				known = 1;
			}
		for (const char *const *s = handled; *s && !known; s++)
			known = !strcmp(f->string, *s);
		if (!known) {
			refuse(e, param, cap, f->string,
			       "has no meaning for a model that speaks the OpenAI dialect");
			goto fail;
		}
	}
	if (copy_messages(areq, cJSON_AddArrayToObject(out, "messages"), param,
			  cap, e) < 0 || copy_tools(areq, out, param, cap, e) < 0)
		goto fail;
	if ((f = json_arr(areq, "stop_sequences")))
		cJSON_AddItemToObject(out, "stop", cJSON_Duplicate(f, 1));
	if ((f = json_obj(areq, "metadata"))) {
		cJSON_ArrayForEach(uid, f)
			if (strcmp(uid->string, "user_id")) {
				refuse(e, param, cap, "metadata",
				       "holds a key other than user_id");
				goto fail;
			}
		if (json_str(f, "user_id"))
			cJSON_AddStringToObject(out, "user", json_str(f, "user_id"));
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(areq, "stream"))) {
		cJSON *so = cJSON_AddObjectToObject(out, "stream_options");
		cJSON_AddTrueToObject(so, "include_usage");
	}
	return out;
fail:
	cJSON_Delete(out);
	return NULL;
}
