/*
 * fake_openai.c - lays a generated chat answer out as the OpenAI chat
 * completions API does: one chat.completion object, or chat.completion.chunk
 * events ending in "data: [DONE]".
 *
 * Fields a request did not ask for stay out (service_tier, logprobs, the
 * extras), so an answer to a plain request is the same bytes it always was.
 */
#include <string.h>

#include "fake.h"

#define TOOL_CALL_ID "call_fake_1"

static cJSON *openai_usage(const struct chat *c)
{
	cJSON *u = cJSON_CreateObject(), *details;

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)c->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens", (double)c->completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
		(double)(c->prompt_tokens + c->completion_tokens));
	if (c->extras) {
		details = cJSON_AddObjectToObject(u, "prompt_tokens_details");
		cJSON_AddNumberToObject(details, "cached_tokens", (double)c->cached_tokens);
		details = cJSON_AddObjectToObject(u, "completion_tokens_details");
		cJSON_AddNumberToObject(details, "reasoning_tokens",
			(double)c->reasoning_tokens);
	}
	return u;
}

static cJSON *openai_head(const struct chat *c, const char *object)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "id", "chatcmpl-fake");
	cJSON_AddStringToObject(doc, "object", object);
	cJSON_AddNumberToObject(doc, "created", FAKE_CREATED);
	cJSON_AddStringToObject(doc, "model", c->model);
	if (c->service_tier)
		cJSON_AddStringToObject(doc, "service_tier", c->service_tier);
	if (c->extras)
		cJSON_AddStringToObject(doc, "system_fingerprint", "fp_fake");
	return doc;
}

/* Appends the logprob of one token (a delta) to the array content. */
static void add_logprob(cJSON *content, const char *token)
{
	cJSON *lp = cJSON_CreateObject(), *bytes;
	const char *p;

	cJSON_AddItemToArray(content, lp);
	cJSON_AddStringToObject(lp, "token", token);
	cJSON_AddNumberToObject(lp, "logprob", -0.1);
	bytes = cJSON_AddArrayToObject(lp, "bytes");
	for (p = token; *p; p++)
		cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)*p));
	cJSON_AddArrayToObject(lp, "top_logprobs");
}

/* {"id":"call_fake_1","type":"function","function":{...}}, arguments given. */
static cJSON *tool_call(const struct chat *c, const char *arguments)
{
	cJSON *call = cJSON_CreateObject(), *fn;

	cJSON_AddStringToObject(call, "id", TOOL_CALL_ID);
	cJSON_AddStringToObject(call, "type", "function");
	fn = cJSON_AddObjectToObject(call, "function");
	cJSON_AddStringToObject(fn, "name", c->tool_name);
	cJSON_AddStringToObject(fn, "arguments", arguments);
	return call;
}

/* Choice index of a chat.completion: the whole message. */
static cJSON *full_choice(const struct chat *c, long index)
{
	cJSON *choice = cJSON_CreateObject(), *msg, *lp;
	const cJSON *d;

	cJSON_AddNumberToObject(choice, "index", (double)index);
	msg = cJSON_AddObjectToObject(choice, "message");
	cJSON_AddStringToObject(msg, "role", "assistant");
	if (c->tool_name) {
		cJSON_AddNullToObject(msg, "content");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(msg, "tool_calls"),
			tool_call(c, c->tool_args));
		cJSON_AddNullToObject(msg, "refusal");
	} else {
		cJSON_AddStringToObject(msg, "content", fbuf_str(&c->text));
	}
	if (c->logprobs && c->tool_name) {
		cJSON_AddNullToObject(choice, "logprobs");
	} else if (c->logprobs) {
		lp = cJSON_AddObjectToObject(choice, "logprobs");
		lp = cJSON_AddArrayToObject(lp, "content");
		cJSON_ArrayForEach(d, c->deltas)
			add_logprob(lp, d->valuestring);
	}
	cJSON_AddStringToObject(choice, "finish_reason", c->finish);
	return choice;
}

/*
 * A chunk with one choice whose delta is delta (taken over), carrying the
 * logprob of token when it is not NULL.
 */
static cJSON *openai_chunk(const struct chat *c, cJSON *delta, const char *token,
			   const char *finish)
{
	cJSON *doc = openai_head(c, "chat.completion.chunk");
	cJSON *choice = cJSON_CreateObject(), *lp;

	cJSON_AddItemToArray(cJSON_AddArrayToObject(doc, "choices"), choice);
	cJSON_AddNumberToObject(choice, "index", 0);
	cJSON_AddItemToObject(choice, "delta", delta);
	if (token) {
		lp = cJSON_AddObjectToObject(choice, "logprobs");
		add_logprob(cJSON_AddArrayToObject(lp, "content"), token);
	}
	if (finish)
		cJSON_AddStringToObject(choice, "finish_reason", finish);
	else
		cJSON_AddNullToObject(choice, "finish_reason");
	return doc;
}

/*
 * The delta of a streamed tool call: {"tool_calls":[{"index":0,...}]} with
 * the call's id, type and name in the head (the first one), then only
 * arguments.
 */
static cJSON *call_delta(const struct chat *c, const char *arguments, int head)
{
	cJSON *delta = cJSON_CreateObject(), *call = cJSON_CreateObject(), *fn;

	cJSON_AddItemToArray(cJSON_AddArrayToObject(delta, "tool_calls"), call);
	cJSON_AddNumberToObject(call, "index", 0);
	if (head) {
		cJSON_AddStringToObject(call, "id", TOOL_CALL_ID);
		cJSON_AddStringToObject(call, "type", "function");
	}
	fn = cJSON_AddObjectToObject(call, "function");
	if (head)
		cJSON_AddStringToObject(fn, "name", c->tool_name);
	cJSON_AddStringToObject(fn, "arguments", arguments);
	return delta;
}

void openai_answer(struct reply *rp, const struct chat *c)
{
	cJSON *doc, *delta, *choices;
	const cJSON *d;
	long i;

	if (!c->stream) {
		doc = openai_head(c, "chat.completion");
		choices = cJSON_AddArrayToObject(doc, "choices");
		for (i = 0; i < c->choices; i++)
			cJSON_AddItemToArray(choices, full_choice(c, i));
		cJSON_AddItemToObject(doc, "usage", openai_usage(c));
		reply_add_json(rp, NULL, doc, 0);
		return;
	}
	delta = cJSON_CreateObject();
	cJSON_AddStringToObject(delta, "role", "assistant");
	if (c->tool_name)
		cJSON_AddNullToObject(delta, "content");
	else
		cJSON_AddStringToObject(delta, "content", "");
	reply_add_json(rp, NULL, openai_chunk(c, delta, NULL, NULL), 1);
	if (c->tool_name) {
		reply_add_json(rp, NULL, openai_chunk(c, call_delta(c, "", 1), NULL,
			NULL), 1);
		cJSON_ArrayForEach(d, c->tool_pieces)
			reply_add_json(rp, NULL, openai_chunk(c,
				call_delta(c, d->valuestring, 0), NULL, NULL), 1);
	}
	cJSON_ArrayForEach(d, c->deltas) {
		delta = cJSON_CreateObject();
		cJSON_AddStringToObject(delta, "content", d->valuestring);
		reply_add_json(rp, NULL, openai_chunk(c, delta,
			c->logprobs ? d->valuestring : NULL, NULL), 1);
	}
	reply_add_json(rp, NULL, openai_chunk(c, cJSON_CreateObject(), NULL,
		c->finish), 1);
	if (c->include_usage) {
		doc = openai_head(c, "chat.completion.chunk");
		cJSON_AddArrayToObject(doc, "choices");
		cJSON_AddItemToObject(doc, "usage", openai_usage(c));
		reply_add_json(rp, NULL, doc, 1);
	}
	reply_add_event(rp, "data: [DONE]\n\n", 14);
}
