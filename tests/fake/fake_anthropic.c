/*
 * fake_anthropic.c - lays a generated chat answer out as the Anthropic
 * Messages API does: one message object, or the message_start ...
 * message_stop event stream.
 *
 * Content blocks come in the API's order: thinking (when asked for), text,
 * tool_use (when a tool is called), numbered from 0 in that order.  Fields a
 * request did not ask for stay out, so an answer to a plain request is the
 * same bytes it always was.
 */
#include <stdlib.h>

#include "fake.h"

#define TOOL_USE_ID "toolu_fake_1"
#define SIGNATURE "sig_fake"

/* {"input_tokens":..[, cache fields],"output_tokens":output} */
static cJSON *start_usage(const struct chat *c, long output)
{
	cJSON *usage = cJSON_CreateObject();

	cJSON_AddNumberToObject(usage, "input_tokens", (double)c->prompt_tokens);
	if (c->extras) {
		cJSON_AddNumberToObject(usage, "cache_creation_input_tokens",
			(double)c->cache_creation);
		cJSON_AddNumberToObject(usage, "cache_read_input_tokens",
			(double)c->cache_read);
	}
	cJSON_AddNumberToObject(usage, "output_tokens", (double)output);
	return usage;
}

/* The strings of deltas joined. */
static char *joined(const cJSON *deltas)
{
	struct fbuf b = { 0 };
	const cJSON *d;

	cJSON_ArrayForEach(d, deltas)
		fbuf_puts(&b, d->valuestring);
	return b.ptr ? b.ptr : fake_xstrdup("");
}

static cJSON *thinking_block(const char *thinking, const char *signature)
{
	cJSON *block = json_typed("thinking");

	cJSON_AddStringToObject(block, "thinking", thinking);
	if (signature)
		cJSON_AddStringToObject(block, "signature", signature);
	return block;
}

static cJSON *tool_use_block(const struct chat *c, cJSON *input)
{
	cJSON *block = json_typed("tool_use");

	cJSON_AddStringToObject(block, "id", TOOL_USE_ID);
	cJSON_AddStringToObject(block, "name", c->tool_name);
	cJSON_AddItemToObject(block, "input", input);
	return block;
}

static void full_message(struct reply *rp, const struct chat *c, cJSON *msg)
{
	cJSON *content = cJSON_AddArrayToObject(msg, "content"), *block;
	char *thinking;

	if (c->thinking) {
		thinking = joined(c->thinking);
		cJSON_AddItemToArray(content, thinking_block(thinking, SIGNATURE));
		free(thinking);
	}
	block = json_typed("text");
	cJSON_AddStringToObject(block, "text", fbuf_str(&c->text));
	cJSON_AddItemToArray(content, block);
	if (c->tool_name)
		cJSON_AddItemToArray(content, tool_use_block(c,
			cJSON_Duplicate(c->tool_input, 1)));
	cJSON_AddStringToObject(msg, "stop_reason", c->finish);
	cJSON_AddNullToObject(msg, "stop_sequence");
	cJSON_AddItemToObject(msg, "usage", start_usage(c, c->completion_tokens));
	reply_add_json(rp, NULL, msg, 0);
}

/* ==== stream ==== */

/*
 * A stream's content blocks, each sent as block_start (the block taken
 * over), block_delta..., block_stop.
 */
struct block_stream {
	struct reply *rp;
	int index;   /* of the next block */
	int pinged;  /* the ping after the first block start was sent */
};

static void block_start(struct block_stream *bs, cJSON *block)
{
	cJSON *doc = json_typed("content_block_start");

	cJSON_AddNumberToObject(doc, "index", bs->index);
	cJSON_AddItemToObject(doc, "content_block", block);
	reply_add_json(bs->rp, "content_block_start", doc, 1);
	if (!bs->pinged)
		reply_add_json(bs->rp, "ping", json_typed("ping"), 1);
	bs->pinged = 1;
}

/* A content_block_delta {"type": type, field: value}. */
static void block_delta(struct block_stream *bs, const char *type,
			const char *field, const char *value)
{
	cJSON *doc = json_typed("content_block_delta"), *delta = json_typed(type);

	cJSON_AddNumberToObject(doc, "index", bs->index);
	cJSON_AddStringToObject(delta, field, value);
	cJSON_AddItemToObject(doc, "delta", delta);
	reply_add_json(bs->rp, "content_block_delta", doc, 1);
}

static void block_stop(struct block_stream *bs)
{
	cJSON *doc = json_typed("content_block_stop");

	cJSON_AddNumberToObject(doc, "index", bs->index++);
	reply_add_json(bs->rp, "content_block_stop", doc, 1);
}

static void stream_message(struct reply *rp, const struct chat *c, cJSON *msg)
{
	struct block_stream bs = { rp, 0, 0 };
	cJSON *doc, *block, *delta, *usage;
	const cJSON *d;

	cJSON_AddArrayToObject(msg, "content");
	cJSON_AddNullToObject(msg, "stop_reason");
	cJSON_AddNullToObject(msg, "stop_sequence");
	cJSON_AddItemToObject(msg, "usage", start_usage(c, 1));
	doc = json_typed("message_start");
	cJSON_AddItemToObject(doc, "message", msg);
	reply_add_json(rp, "message_start", doc, 1);

	if (c->thinking) {
		block_start(&bs, thinking_block("", NULL));
		cJSON_ArrayForEach(d, c->thinking)
			block_delta(&bs, "thinking_delta", "thinking", d->valuestring);
		block_delta(&bs, "signature_delta", "signature", SIGNATURE);
		block_stop(&bs);
	}

	block = json_typed("text");
	cJSON_AddStringToObject(block, "text", "");
	block_start(&bs, block);
	cJSON_ArrayForEach(d, c->deltas)
		block_delta(&bs, "text_delta", "text", d->valuestring);
	block_stop(&bs);

	if (c->tool_name) {
		block_start(&bs, tool_use_block(c, cJSON_CreateObject()));
		cJSON_ArrayForEach(d, c->tool_pieces)
			block_delta(&bs, "input_json_delta", "partial_json",
				d->valuestring);
		block_stop(&bs);
	}

	doc = json_typed("message_delta");
	delta = cJSON_AddObjectToObject(doc, "delta");
	cJSON_AddStringToObject(delta, "stop_reason", c->finish);
	cJSON_AddNullToObject(delta, "stop_sequence");
	usage = cJSON_AddObjectToObject(doc, "usage");
	cJSON_AddNumberToObject(usage, "output_tokens", (double)c->completion_tokens);
	reply_add_json(rp, "message_delta", doc, 1);

	reply_add_json(rp, "message_stop", json_typed("message_stop"), 1);
}

void anthropic_answer(struct reply *rp, const struct chat *c)
{
	cJSON *msg = cJSON_CreateObject();

	cJSON_AddStringToObject(msg, "id", "msg_fake");
	cJSON_AddStringToObject(msg, "type", "message");
	cJSON_AddStringToObject(msg, "role", "assistant");
	cJSON_AddStringToObject(msg, "model", c->model);
	if (c->stream)
		stream_message(rp, c, msg);
	else
		full_message(rp, c, msg);
}
