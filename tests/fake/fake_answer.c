/*
 * fake_answer.c - turns a response spec into a reply: the spec's own body or
 * events, a generic error, or a generated answer shaped like the real API
 * (OpenAI or Anthropic chat, streamed or not; embeddings; a models list).
 *
 * Generated chat answers echo the last user message word by word, so a test
 * knows the output from its own input.  Every JSON document is built with
 * cJSON so escaping is right whatever the text holds.  Numbers that would
 * vary (ids, timestamps) are fixed so output is repeatable.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake.h"

#define CREATED 1700000000

/* ==== spec fields ==== */

static long spec_long(const cJSON *spec, const char *name, long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, name);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : def;
}

static const char *spec_str(const cJSON *spec, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void set_content_type(struct reply *rp, const char *type)
{
	free(rp->content_type);
	rp->content_type = fake_xstrdup(type);
}

/* Extra headers from the spec; a Content-Type there replaces the default. */
static void apply_headers(struct reply *rp, const cJSON *headers)
{
	const cJSON *h;
	char *printed;

	cJSON_ArrayForEach(h, headers) {
		if (!h->string)
			continue;
		printed = cJSON_IsString(h) ? NULL : cJSON_PrintUnformatted(h);
		if (strcasecmp(h->string, "content-type") == 0) {
			set_content_type(rp, printed ? printed : h->valuestring);
		} else {
			fbuf_printf(&rp->headers, "%s: %s\r\n", h->string,
				printed ? printed : h->valuestring);
		}
		free(printed);
	}
}

/* ==== JSON helpers ==== */

/* Adds doc, printed, as one event (SSE-framed when sse) and deletes it. */
static void add_json(struct reply *rp, const char *event, cJSON *doc, int sse)
{
	struct fbuf ev = { 0 };
	char *text = cJSON_PrintUnformatted(doc);

	if (sse && event)
		fbuf_printf(&ev, "event: %s\ndata: %s\n\n", event, text);
	else if (sse)
		fbuf_printf(&ev, "data: %s\n\n", text);
	else
		fbuf_puts(&ev, text);
	reply_add_event(rp, ev.ptr, ev.len);
	fbuf_release(&ev);
	free(text);
	cJSON_Delete(doc);
}

static void error_body(struct reply *rp, const char *message, const char *type,
		       const char *code)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *err = cJSON_AddObjectToObject(doc, "error");

	cJSON_AddStringToObject(err, "message", message);
	cJSON_AddStringToObject(err, "type", type);
	if (code)
		cJSON_AddStringToObject(err, "code", code);
	else
		cJSON_AddNullToObject(err, "code");
	add_json(rp, NULL, doc, 0);
	rp->chunked = 0;
}

/* ==== words ==== */

static size_t count_words(const char *s)
{
	size_t n = 0;
	int in_word = 0;

	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			n++;
		}
	}
	return n;
}

/* Appends the text of a message content: a string, or its text blocks. */
static void content_text(const cJSON *content, struct fbuf *out)
{
	const cJSON *block, *text;
	int first = 1;

	if (cJSON_IsString(content)) {
		fbuf_puts(out, content->valuestring);
		return;
	}
	cJSON_ArrayForEach(block, content) {
		text = cJSON_GetObjectItemCaseSensitive(block, "text");
		if (!cJSON_IsString(text))
			continue;
		if (!first)
			fbuf_puts(out, " ");
		fbuf_puts(out, text->valuestring);
		first = 0;
	}
}

/* ==== chat ==== */

struct chat {
	const char *model;
	int anthropic, stream, include_usage;
	cJSON *deltas;        /* owned array of strings */
	struct fbuf text;     /* the deltas joined */
	long prompt_tokens, completion_tokens;
	const char *finish;
};

/*
 * Splits text into deltas: one per word, each after the first carrying the
 * whitespace that preceded it, so joined they give back the text trimmed.
 */
static void split_words(const char *text, cJSON *deltas)
{
	const char *seg, *p = text;
	char *piece;

	while (isspace((unsigned char)*p))
		p++;
	seg = p;
	while (*p) {
		while (*p && !isspace((unsigned char)*p))
			p++;
		piece = fake_xmalloc((size_t)(p - seg) + 1);
		memcpy(piece, seg, (size_t)(p - seg));
		piece[p - seg] = '\0';
		cJSON_AddItemToArray(deltas, cJSON_CreateString(piece));
		free(piece);
		seg = p;
		while (isspace((unsigned char)*p))
			p++;
	}
}

static void chat_init(struct chat *c, const cJSON *spec, const struct request *rq)
{
	const cJSON *body = rq->json, *messages, *m, *role, *last_user = NULL;
	const cJSON *deltas, *d, *usage, *opts;
	const char *format = spec_str(spec, "format");
	struct fbuf words = { 0 };

	memset(c, 0, sizeof(*c));
	c->model = spec_str(body, "model");
	if (!c->model)
		c->model = "fake-model";
	c->anthropic = format ? strcmp(format, "anthropic") == 0 :
		ends_with(rq->path, "/messages");
	c->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "stream"));
	opts = cJSON_GetObjectItemCaseSensitive(body, "stream_options");
	c->include_usage = cJSON_IsTrue(
		cJSON_GetObjectItemCaseSensitive(opts, "include_usage"));

	/* Prompt size: words of every message and of the system prompt. */
	messages = cJSON_GetObjectItemCaseSensitive(body, "messages");
	cJSON_ArrayForEach(m, messages) {
		role = cJSON_GetObjectItemCaseSensitive(m, "role");
		if (cJSON_IsString(role) && strcmp(role->valuestring, "user") == 0)
			last_user = m;
		content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &words);
		fbuf_puts(&words, " ");
	}
	content_text(cJSON_GetObjectItemCaseSensitive(body, "system"), &words);
	c->prompt_tokens = (long)count_words(fbuf_str(&words));
	fbuf_release(&words);

	deltas = cJSON_GetObjectItemCaseSensitive(spec, "deltas");
	c->deltas = cJSON_CreateArray();
	if (cJSON_IsArray(deltas)) {
		cJSON_ArrayForEach(d, deltas)
			if (cJSON_IsString(d))
				cJSON_AddItemToArray(c->deltas,
					cJSON_CreateString(d->valuestring));
	} else if (last_user) {
		content_text(cJSON_GetObjectItemCaseSensitive(last_user, "content"),
			&words);
		split_words(fbuf_str(&words), c->deltas);
		fbuf_release(&words);
	}
	cJSON_ArrayForEach(d, c->deltas)
		fbuf_puts(&c->text, d->valuestring);
	c->completion_tokens = cJSON_GetArraySize(c->deltas);

	usage = cJSON_GetObjectItemCaseSensitive(spec, "usage");
	c->prompt_tokens = spec_long(usage, "input_tokens", c->prompt_tokens);
	c->prompt_tokens = spec_long(usage, "prompt_tokens", c->prompt_tokens);
	c->completion_tokens = spec_long(usage, "output_tokens", c->completion_tokens);
	c->completion_tokens = spec_long(usage, "completion_tokens", c->completion_tokens);

	c->finish = spec_str(spec, "finish_reason");
	if (c->anthropic && spec_str(spec, "stop_reason"))
		c->finish = spec_str(spec, "stop_reason");
	if (!c->finish)
		c->finish = c->anthropic ? "end_turn" : "stop";
}

static void chat_release(struct chat *c)
{
	cJSON_Delete(c->deltas);
	fbuf_release(&c->text);
}

static cJSON *openai_usage(const struct chat *c)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)c->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens", (double)c->completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
		(double)(c->prompt_tokens + c->completion_tokens));
	return u;
}

static cJSON *openai_head(const struct chat *c, const char *object)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "id", "chatcmpl-fake");
	cJSON_AddStringToObject(doc, "object", object);
	cJSON_AddNumberToObject(doc, "created", CREATED);
	cJSON_AddStringToObject(doc, "model", c->model);
	return doc;
}

/* A chunk with one choice whose delta is delta (taken over). */
static cJSON *openai_chunk(const struct chat *c, cJSON *delta, const char *finish)
{
	cJSON *doc = openai_head(c, "chat.completion.chunk");
	cJSON *choice = cJSON_CreateObject();

	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "choices"), choice);
	cJSON_AddNumberToObject(choice, "index", 0);
	cJSON_AddItemToObject(choice, "delta", delta);
	if (finish)
		cJSON_AddStringToObject(choice, "finish_reason", finish);
	else
		cJSON_AddNullToObject(choice, "finish_reason");
	return doc;
}

static void openai_answer(struct reply *rp, const struct chat *c)
{
	cJSON *doc, *delta, *choice, *msg;
	const cJSON *d;

	if (!c->stream) {
		doc = openai_head(c, "chat.completion");
		choice = cJSON_CreateObject();
		cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "choices"), choice);
		cJSON_AddNumberToObject(choice, "index", 0);
		msg = cJSON_AddObjectToObject(choice, "message");
		cJSON_AddStringToObject(msg, "role", "assistant");
		cJSON_AddStringToObject(msg, "content", fbuf_str(&c->text));
		cJSON_AddStringToObject(choice, "finish_reason", c->finish);
		cJSON_AddItemToObject(doc, "usage", openai_usage(c));
		add_json(rp, NULL, doc, 0);
		return;
	}
	delta = cJSON_CreateObject();
	cJSON_AddStringToObject(delta, "role", "assistant");
	cJSON_AddStringToObject(delta, "content", "");
	add_json(rp, NULL, openai_chunk(c, delta, NULL), 1);
	cJSON_ArrayForEach(d, c->deltas) {
		delta = cJSON_CreateObject();
		cJSON_AddStringToObject(delta, "content", d->valuestring);
		add_json(rp, NULL, openai_chunk(c, delta, NULL), 1);
	}
	add_json(rp, NULL, openai_chunk(c, cJSON_CreateObject(), c->finish), 1);
	if (c->include_usage) {
		doc = openai_head(c, "chat.completion.chunk");
		cJSON_AddArrayToObject(doc, "choices");
		cJSON_AddItemToObject(doc, "usage", openai_usage(c));
		add_json(rp, NULL, doc, 1);
	}
	reply_add_event(rp, "data: [DONE]\n\n", 14);
}

static cJSON *typed(const char *type)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "type", type);
	return doc;
}

static void anthropic_answer(struct reply *rp, const struct chat *c)
{
	cJSON *doc, *msg, *block, *usage, *delta;
	const cJSON *d;

	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "id", "msg_fake");
	cJSON_AddStringToObject(msg, "type", "message");
	cJSON_AddStringToObject(msg, "role", "assistant");
	cJSON_AddStringToObject(msg, "model", c->model);
	if (!c->stream) {
		block = typed("text");
		cJSON_AddStringToObject(block, "text", fbuf_str(&c->text));
		cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "content"), block);
		cJSON_AddStringToObject(msg, "stop_reason", c->finish);
		cJSON_AddNullToObject(msg, "stop_sequence");
		usage = cJSON_AddObjectToObject(msg, "usage");
		cJSON_AddNumberToObject(usage, "input_tokens", (double)c->prompt_tokens);
		cJSON_AddNumberToObject(usage, "output_tokens", (double)c->completion_tokens);
		add_json(rp, NULL, msg, 0);
		return;
	}
	cJSON_AddArrayToObject(msg, "content");
	cJSON_AddNullToObject(msg, "stop_reason");
	cJSON_AddNullToObject(msg, "stop_sequence");
	usage = cJSON_AddObjectToObject(msg, "usage");
	cJSON_AddNumberToObject(usage, "input_tokens", (double)c->prompt_tokens);
	cJSON_AddNumberToObject(usage, "output_tokens", 1);
	doc = typed("message_start");
	cJSON_AddItemToObject(doc, "message", msg);
	add_json(rp, "message_start", doc, 1);

	doc = typed("content_block_start");
	cJSON_AddNumberToObject(doc, "index", 0);
	block = typed("text");
	cJSON_AddStringToObject(block, "text", "");
	cJSON_AddItemToObject(doc, "content_block", block);
	add_json(rp, "content_block_start", doc, 1);

	add_json(rp, "ping", typed("ping"), 1);

	cJSON_ArrayForEach(d, c->deltas) {
		doc = typed("content_block_delta");
		cJSON_AddNumberToObject(doc, "index", 0);
		delta = typed("text_delta");
		cJSON_AddStringToObject(delta, "text", d->valuestring);
		cJSON_AddItemToObject(doc, "delta", delta);
		add_json(rp, "content_block_delta", doc, 1);
	}

	doc = typed("content_block_stop");
	cJSON_AddNumberToObject(doc, "index", 0);
	add_json(rp, "content_block_stop", doc, 1);

	doc = typed("message_delta");
	delta = cJSON_AddObjectToObject(doc, "delta");
	cJSON_AddStringToObject(delta, "stop_reason", c->finish);
	cJSON_AddNullToObject(delta, "stop_sequence");
	usage = cJSON_AddObjectToObject(doc, "usage");
	cJSON_AddNumberToObject(usage, "output_tokens", (double)c->completion_tokens);
	add_json(rp, "message_delta", doc, 1);

	add_json(rp, "message_stop", typed("message_stop"), 1);
}

static void chat_answer(struct reply *rp, const cJSON *spec, const struct request *rq)
{
	struct chat c;

	chat_init(&c, spec, rq);
	rp->chunked = c.stream;
	set_content_type(rp, c.stream ? "text/event-stream" : "application/json");
	if (c.anthropic)
		anthropic_answer(rp, &c);
	else
		openai_answer(rp, &c);
	chat_release(&c);
}

/* ==== embeddings and models ==== */

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Square root by Newton's method: the fake links no libm. */
static double root(double x)
{
	double r = x > 1 ? x : 1;
	int i;

	for (i = 0; i < 60; i++)
		r = 0.5 * (r + x / r);
	return r;
}

/* A unit vector of dims values derived from the hash of text only. */
static cJSON *embedding_of(const char *text, int dims)
{
	double *v = fake_xmalloc((size_t)dims * sizeof(*v)), norm = 0, x;
	uint64_t state = fnv1a(text);
	cJSON *arr = cJSON_CreateArray();
	int i;

	for (i = 0; i < dims; i++) {
		v[i] = (double)(splitmix(&state) >> 11) / (double)(1ull << 53) * 2 - 1;
		norm += v[i] * v[i];
	}
	norm = root(norm);
	for (i = 0; i < dims; i++) {
		x = norm > 0 ? v[i] / norm : 0;
		/* Six decimals keep the JSON short and the same everywhere. */
		x = (double)(long long)(x * 1e6 + (x < 0 ? -0.5 : 0.5)) / 1e6;
		cJSON_AddItemToArray(arr, cJSON_CreateNumber(x));
	}
	free(v);
	return arr;
}

static void embeddings_answer(struct reply *rp, const cJSON *spec,
			      const struct request *rq)
{
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(rq->json, "input");
	const cJSON *item, *usage;
	const char *model = spec_str(rq->json, "model");
	cJSON *doc = cJSON_CreateObject(), *data, *e, *u;
	long dims = spec_long(rq->json, "dimensions", 8), words = 0;
	char *printed;
	int index = 0;

	if (dims < 1 || dims > 4096)
		dims = 8;
	cJSON_AddStringToObject(doc, "object", "list");
	data = cJSON_AddArrayToObject(doc, "data");
	for (item = cJSON_IsArray(input) ? input->child : input; item; item = item->next) {
		printed = cJSON_IsString(item) ? NULL : cJSON_PrintUnformatted(item);
		e = cJSON_CreateObject();
		cJSON_AddItemToArray(data, e);
		cJSON_AddStringToObject(e, "object", "embedding");
		cJSON_AddNumberToObject(e, "index", index++);
		cJSON_AddItemToObject(e, "embedding",
			embedding_of(printed ? printed : item->valuestring, (int)dims));
		words += (long)count_words(printed ? printed : item->valuestring);
		free(printed);
		if (!cJSON_IsArray(input))
			break;
	}
	cJSON_AddStringToObject(doc, "model", model ? model : "text-embedding-fake");
	usage = cJSON_GetObjectItemCaseSensitive(spec, "usage");
	words = spec_long(usage, "prompt_tokens", words);
	u = cJSON_AddObjectToObject(doc, "usage");
	cJSON_AddNumberToObject(u, "prompt_tokens", (double)words);
	cJSON_AddNumberToObject(u, "total_tokens", (double)words);
	add_json(rp, NULL, doc, 0);
}

static void add_model(cJSON *data, const char *id)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddItemToArray(data, m);
	cJSON_AddStringToObject(m, "id", id);
	cJSON_AddStringToObject(m, "object", "model");
	cJSON_AddNumberToObject(m, "created", CREATED);
	cJSON_AddStringToObject(m, "owned_by", "fake");
}

/* The spec's "models" (an array of ids) or a fixed list. */
static void models_answer(struct reply *rp, const cJSON *spec)
{
	static const char *const ids[] = {
		"fake-model", "gpt-4o-mini", "gpt-4o", "text-embedding-3-small",
	};
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(spec, "models"), *id;
	cJSON *doc = cJSON_CreateObject(), *data;
	size_t i;

	cJSON_AddStringToObject(doc, "object", "list");
	data = cJSON_AddArrayToObject(doc, "data");
	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(id, list)
			if (cJSON_IsString(id))
				add_model(data, id->valuestring);
	} else {
		for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
			add_model(data, ids[i]);
	}
	add_json(rp, NULL, doc, 0);
}

/* ==== dispatch ==== */

static void generated_answer(struct reply *rp, const cJSON *spec,
			     const struct request *rq)
{
	const char *path = rq->path;
	int get = strcmp(rq->method, "GET") == 0;
	int post = strcmp(rq->method, "POST") == 0;
	char msg[256];

	set_content_type(rp, "application/json");
	if (get && ends_with(path, "/models")) {
		models_answer(rp, spec);
	} else if (post && ends_with(path, "/embeddings")) {
		embeddings_answer(rp, spec, rq);
	} else if (spec_str(spec, "format") || ends_with(path, "/chat/completions") ||
		   ends_with(path, "/messages") ||
		   (post && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(rq->json,
			"messages")))) {
		chat_answer(rp, spec, rq);
	} else {
		rp->status = 404;
		snprintf(msg, sizeof(msg), "fake: no route for %.16s %.200s",
			rq->method, rq->target);
		error_body(rp, msg, "invalid_request_error", "not_found");
	}
}

void answer_build(struct reply *rp, const cJSON *spec, const struct request *rq)
{
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(spec, "body");
	const cJSON *events = cJSON_GetObjectItemCaseSensitive(spec, "events");
	const cJSON *ev;
	const char *type = spec_str(spec, "content_type");
	char *printed;

	rp->status = (int)spec_long(spec, "status", 200);
	rp->delay_ms = spec_long(spec, "delay_ms", 0);
	rp->stall_ms = spec_long(spec, "stall_ms", 0);
	rp->stall_at = spec_long(spec, "stall_at", -1);
	rp->cut_after_events = spec_long(spec, "cut_after_events", -1);
	rp->cut_after_bytes = spec_long(spec, "cut_after_bytes", -1);
	rp->split = spec_long(spec, "split", 0);
	rp->split_pause_us = spec_long(spec, "split_pause_us", rp->split_pause_us);
	rp->seed = (unsigned)spec_long(spec, "split_seed", (long)rp->seed);
	rp->close = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "close"));

	if (body) {
		/* A non-string body is sent as its JSON text. */
		printed = cJSON_IsString(body) ? NULL : cJSON_PrintUnformatted(body);
		reply_add_event(rp, printed ? printed : body->valuestring,
			strlen(printed ? printed : body->valuestring));
		free(printed);
		set_content_type(rp, "application/json");
	} else if (cJSON_IsArray(events)) {
		/* A non-string event is sent as "data: <its JSON>\n\n". */
		cJSON_ArrayForEach(ev, events) {
			if (cJSON_IsString(ev))
				reply_add_event(rp, ev->valuestring,
					strlen(ev->valuestring));
			else
				add_json(rp, NULL, cJSON_Duplicate(ev, 1), 1);
		}
		rp->chunked = 1;
		set_content_type(rp, "text/event-stream");
	} else if (rp->status != 200) {
		set_content_type(rp, "application/json");
		error_body(rp, "fake error", "server_error", NULL);
	} else {
		generated_answer(rp, spec, rq);
	}
	if (type)
		set_content_type(rp, type);
	apply_headers(rp, cJSON_GetObjectItemCaseSensitive(spec, "headers"));
}
