/*
 * fake_answer.c - turns a response spec into a reply: the spec's own body or
 * events, a generic error, or a generated answer shaped like the real API
 * (OpenAI or Anthropic chat, streamed or not; embeddings; model lists).
 *
 * Every JSON document is built with cJSON so escaping is right whatever the
 * text holds.  Numbers that would vary (ids, timestamps) are fixed so output
 * is repeatable, and a request that uses none of the features below gets
 * the same bytes it always did: tests compare whole outputs.
 *
 * Spec fields (one JSON object per script line; all optional):
 *   status            HTTP status (200); not 200 and no body: a generic
 *                     {"error":{"message":"fake error",...}}
 *   body              the reply body (a non-string is sent as its JSON)
 *   events            a stream of these events instead (a non-string one is
 *                     sent as "data: <its JSON>\n\n")
 *   content_type, headers   replace or add reply headers
 *   delay_ms, stall_ms, stall_at, cut_after_events, cut_after_bytes, split,
 *   split_pause_us, split_seed, close   misbehave while sending (fake.h)
 *   format            "openai" or "anthropic": the chat dialect, which is
 *                     otherwise Anthropic exactly when the path ends in
 *                     /messages
 *   deltas            the answer's text, as these stream deltas: forces a
 *                     text answer (no tool call, no structured output, no
 *                     image summary)
 *   finish_reason, stop_reason   replace the generated one
 *   usage             prompt_tokens/input_tokens, completion_tokens/
 *                     output_tokens, cached_tokens, reasoning_tokens,
 *                     cache_creation_input_tokens, cache_read_input_tokens
 *                     replace the counted ones; naming any of the last four
 *                     turns "extras" on
 *   extras            true: add the fields real APIs send that the fake
 *                     leaves out by default: OpenAI "system_fingerprint":
 *                     "fp_fake" in every object, usage.prompt_tokens_details
 *                     {"cached_tokens":0} and completion_tokens_details
 *                     {"reasoning_tokens":0}; Anthropic usage
 *                     cache_creation_input_tokens and cache_read_input_tokens
 *                     (0) in message_start and whole messages
 *   models            ids listed by GET .../models and GET /api/tags
 *   repeat, repeat_at send event repeat_at (default 1) repeat times in all:
 *                     a long, fast stream (N MB as fast as the reader
 *                     takes it) that still ends by itself
 *   report            a file where the fake keeps the number of body bytes
 *                     it has sent (a decimal number padded with spaces,
 *                     rewritten every 64 KiB and at the end), so a test
 *                     can tell how far a reader let the stream go
 *   done_before_reply true: with stall_ms (and no stall_at), the request
 *                     leaves "inflight" once the stall is over, before
 *                     its reply is written (fake_upstream.c)
 *   match             see fake_script.c
 *
 * Generated chat answers (fake_chat.c decides, fake_openai.c and
 * fake_anthropic.c lay out).  A message content may be a string or an array
 * of parts; "the text" of one is its text parts joined by spaces.
 *   - Echo: the last user message's text, one delta per word (each after
 *     the first with the whitespace before it).  Tokens: prompt = words of
 *     all messages and the system prompt; completion = deltas sent (text,
 *     thinking and argument pieces), times the choices.
 *   - Tool call, when "tools" is non-empty, tool_choice is not "none" nor
 *     {"type":"none"}, and the turn is not a tool's answer: a call to the
 *     tool tool_choice names, else the first, with arguments {"query":
 *     "<last user text>"} printed compactly.  OpenAI: id "call_fake_1",
 *     message {"role":"assistant","content":null,"tool_calls":[...],
 *     "refusal":null}, finish "tool_calls"; streamed: role chunk (content
 *     null), head chunk {"index":0,"id","type","function":{"name",
 *     "arguments":""}}, then the arguments in 3 or more pieces of about
 *     8 bytes, cut on UTF-8 character boundaries.  Anthropic: content
 *     [text "Let me check.", tool_use id "toolu_fake_1" with the input
 *     object], stop "tool_use"; streamed: the text block, then the tool_use
 *     block (input {}) with input_json_delta pieces.
 *   - A tool's answer (OpenAI: the last message has role "tool"; Anthropic:
 *     the last user message has a tool_result block, the first counts):
 *     text "tool said: <its content's text>".
 *   - Images: when any message has image parts (OpenAI image_url, Anthropic
 *     image), the text starts "saw N image(s): D1, D2\n" where D is
 *     url:<url>, data:<mime>;<decoded size> bytes (a data: URL or base64
 *     source; "bad base64" when it does not decode) or <source type>:?.
 *   - OpenAI response_format: json_object gives {"echo":"<text>"};
 *     json_schema one value per schema property, in order: its first enum
 *     value, else by type (the first non-null of a list) string: the text
 *     (or "x" when empty), number/integer 42, boolean true, array [],
 *     object {}, other null.  Streamed in pieces like tool arguments.
 *   - OpenAI "logprobs": true: each choice (each streamed content chunk)
 *     has "logprobs":{"content":[{"token":<delta>,"logprob":-0.1,"bytes":
 *     [<its UTF-8 bytes>],"top_logprobs":[]}...]}; null for a tool call.
 *   - OpenAI "n" > 1 (not streamed): that many identical choices (at most
 *     128), completion tokens counted for all.
 *   - OpenAI "service_tier": echoed in every object.
 *   - Anthropic "thinking" {"type":"enabled"}: a first block {"type":
 *     "thinking","thinking":"Thinking about: <text>","signature":
 *     "sig_fake"}, <text> being the last user text or, on a tool's answer,
 *     "tool said: ..."; streamed as a thinking_delta per word, then a
 *     signature_delta.
 * GET .../models lists the models OpenAI-style, GET /api/tags Ollama-style
 * (default: llama3.2:latest); POST .../embeddings gives unit vectors that
 * depend on the input text only ("dimensions", default 8).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake.h"

#define MODIFIED_AT "2023-11-14T22:13:20Z"  /* FAKE_CREATED, as Ollama writes it */

void reply_set_content_type(struct reply *rp, const char *type)
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
			reply_set_content_type(rp, printed ? printed : h->valuestring);
		} else {
			fbuf_printf(&rp->headers, "%s: %s\r\n", h->string,
				printed ? printed : h->valuestring);
		}
		free(printed);
	}
}

void reply_add_json(struct reply *rp, const char *event, cJSON *doc, int sse)
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
	reply_add_json(rp, NULL, doc, 0);
	rp->chunked = 0;
}

/* ==== chat ==== */

static void chat_answer(struct reply *rp, const cJSON *spec, const struct request *rq)
{
	struct chat c;

	chat_init(&c, spec, rq);
	rp->chunked = c.stream;
	reply_set_content_type(rp, c.stream ? "text/event-stream" : "application/json");
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
	const char *model = json_str(rq->json, "model");
	cJSON *doc = cJSON_CreateObject(), *data, *e, *u;
	long dims = json_long(rq->json, "dimensions", 8), words = 0;
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
		words += (long)fake_count_words(printed ? printed : item->valuestring);
		free(printed);
		if (!cJSON_IsArray(input))
			break;
	}
	cJSON_AddStringToObject(doc, "model", model ? model : "text-embedding-fake");
	usage = cJSON_GetObjectItemCaseSensitive(spec, "usage");
	words = json_long(usage, "prompt_tokens", words);
	u = cJSON_AddObjectToObject(doc, "usage");
	cJSON_AddNumberToObject(u, "prompt_tokens", (double)words);
	cJSON_AddNumberToObject(u, "total_tokens", (double)words);
	reply_add_json(rp, NULL, doc, 0);
}

/* The ids in the spec's "models", else the n defaults: owned strings. */
static cJSON *model_ids(const cJSON *spec, const char *const *defaults, size_t n)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(spec, "models"), *id;
	cJSON *ids = cJSON_CreateArray();
	size_t i;

	if (cJSON_IsArray(list)) {
		cJSON_ArrayForEach(id, list)
			if (cJSON_IsString(id))
				cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
	} else {
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(defaults[i]));
	}
	return ids;
}

/* OpenAI's GET /v1/models. */
static void models_answer(struct reply *rp, const cJSON *spec)
{
	static const char *const defaults[] = {
		"fake-model", "gpt-4o-mini", "gpt-4o", "text-embedding-3-small",
	};
	cJSON *ids = model_ids(spec, defaults, sizeof(defaults) / sizeof(defaults[0]));
	cJSON *doc = cJSON_CreateObject(), *data, *m;
	const cJSON *id;

	cJSON_AddStringToObject(doc, "object", "list");
	data = cJSON_AddArrayToObject(doc, "data");
	cJSON_ArrayForEach(id, ids) {
		m = cJSON_CreateObject();
		cJSON_AddItemToArray(data, m);
		cJSON_AddStringToObject(m, "id", id->valuestring);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", FAKE_CREATED);
		cJSON_AddStringToObject(m, "owned_by", "fake");
	}
	cJSON_Delete(ids);
	reply_add_json(rp, NULL, doc, 0);
}

/* Ollama's GET /api/tags; the digest is derived from the name. */
static void tags_answer(struct reply *rp, const cJSON *spec)
{
	static const char *const defaults[] = { "llama3.2:latest" };
	cJSON *ids = model_ids(spec, defaults, 1);
	cJSON *doc = cJSON_CreateObject(), *list, *m, *details;
	const cJSON *id;
	char digest[65];
	uint64_t state;
	int i;

	list = cJSON_AddArrayToObject(doc, "models");
	cJSON_ArrayForEach(id, ids) {
		state = fnv1a(id->valuestring);
		for (i = 0; i < 4; i++)
			snprintf(digest + 16 * i, 17, "%016llx",
				(unsigned long long)splitmix(&state));
		m = cJSON_CreateObject();
		cJSON_AddItemToArray(list, m);
		cJSON_AddStringToObject(m, "name", id->valuestring);
		cJSON_AddStringToObject(m, "model", id->valuestring);
		cJSON_AddStringToObject(m, "modified_at", MODIFIED_AT);
		cJSON_AddNumberToObject(m, "size", 2019393189);
		cJSON_AddStringToObject(m, "digest", digest);
		details = cJSON_AddObjectToObject(m, "details");
		cJSON_AddStringToObject(details, "parent_model", "");
		cJSON_AddStringToObject(details, "format", "gguf");
		cJSON_AddStringToObject(details, "family", "llama");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(details, "families"),
			cJSON_CreateString("llama"));
		cJSON_AddStringToObject(details, "parameter_size", "3.2B");
		cJSON_AddStringToObject(details, "quantization_level", "Q4_K_M");
	}
	cJSON_Delete(ids);
	reply_add_json(rp, NULL, doc, 0);
}

/* ==== dispatch ==== */

static void generated_answer(struct reply *rp, const cJSON *spec,
			     const struct request *rq)
{
	const char *path = rq->path;
	int get = strcmp(rq->method, "GET") == 0;
	int post = strcmp(rq->method, "POST") == 0;
	char msg[256];

	reply_set_content_type(rp, "application/json");
	if (get && fake_ends_with(path, "/models")) {
		models_answer(rp, spec);
	} else if (get && fake_ends_with(path, "/api/tags")) {
		tags_answer(rp, spec);
	} else if (post && fake_ends_with(path, "/embeddings")) {
		embeddings_answer(rp, spec, rq);
	} else if (json_str(spec, "format") || fake_ends_with(path, "/chat/completions") ||
		   fake_ends_with(path, "/messages") ||
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
	const char *type = json_str(spec, "content_type");
	char *printed;

	rp->status = (int)json_long(spec, "status", 200);
	rp->delay_ms = json_long(spec, "delay_ms", 0);
	rp->stall_ms = json_long(spec, "stall_ms", 0);
	rp->stall_at = json_long(spec, "stall_at", -1);
	rp->cut_after_events = json_long(spec, "cut_after_events", -1);
	rp->cut_after_bytes = json_long(spec, "cut_after_bytes", -1);
	rp->split = json_long(spec, "split", 0);
	rp->split_pause_us = json_long(spec, "split_pause_us", rp->split_pause_us);
	rp->seed = (unsigned)json_long(spec, "split_seed", (long)rp->seed);
	rp->close = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "close"));
	rp->repeat = json_long(spec, "repeat", 1);
	rp->repeat_at = json_long(spec, "repeat_at", 1);
	if (json_str(spec, "report"))
		rp->report = fake_xstrdup(json_str(spec, "report"));

	if (body) {
		/* A non-string body is sent as its JSON text. */
		printed = cJSON_IsString(body) ? NULL : cJSON_PrintUnformatted(body);
		reply_add_event(rp, printed ? printed : body->valuestring,
			strlen(printed ? printed : body->valuestring));
		free(printed);
		reply_set_content_type(rp, "application/json");
	} else if (cJSON_IsArray(events)) {
		/* A non-string event is sent as "data: <its JSON>\n\n". */
		cJSON_ArrayForEach(ev, events) {
			if (cJSON_IsString(ev))
				reply_add_event(rp, ev->valuestring,
					strlen(ev->valuestring));
			else
				reply_add_json(rp, NULL, cJSON_Duplicate(ev, 1), 1);
		}
		rp->chunked = 1;
		reply_set_content_type(rp, "text/event-stream");
	} else if (rp->status != 200) {
		reply_set_content_type(rp, "application/json");
		error_body(rp, "fake error", "server_error", NULL);
	} else {
		generated_answer(rp, spec, rq);
	}
	if (type)
		reply_set_content_type(rp, type);
	apply_headers(rp, cJSON_GetObjectItemCaseSensitive(spec, "headers"));
}
