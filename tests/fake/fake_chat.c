/*
 * fake_chat.c - decides a generated chat answer from the request: its text,
 * whether it calls a tool, whether a thinking block comes first, and the
 * numbers it reports (the behaviours are listed in fake_answer.c).
 *
 * Requests of both dialects are read by the same code: a field only one API
 * has is simply absent from the other's.  The answer is a pure function of
 * the request and the spec, so a test knows it from its own input.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

#define item cJSON_GetObjectItemCaseSensitive

/* Keys of the spec's "usage" that also turn the realistic extras on. */
static const char *const extra_usage[] = {
	"cached_tokens", "reasoning_tokens",
	"cache_creation_input_tokens", "cache_read_input_tokens",
};

/* ==== text ==== */

/* Appends the text of a message content: a string, or its parts' texts. */
static void content_text(const cJSON *content, struct fbuf *out)
{
	const cJSON *part, *text;
	int first = 1;

	if (cJSON_IsString(content)) {
		fbuf_puts(out, content->valuestring);
		return;
	}
	cJSON_ArrayForEach(part, content) {
		text = item(part, "text");
		if (!cJSON_IsString(text))
			continue;
		if (!first)
			fbuf_puts(out, " ");
		fbuf_puts(out, text->valuestring);
		first = 0;
	}
}

static int is_role(const cJSON *message, const char *role)
{
	const char *r = json_str(message, "role");

	return r && strcmp(r, role) == 0;
}

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

/*
 * Splits JSON text s the way a model streams it: pieces of a third of s,
 * at most 8 bytes, each cut moved forward to a UTF-8 character boundary so
 * every piece is valid text.  A tool call's arguments always give three or
 * more (they open and close with ASCII).
 */
static void split_pieces(const char *s, cJSON *pieces)
{
	size_t len = strlen(s), size = (len + 2) / 3, pos = 0, end;
	char *piece;

	if (size > 8)
		size = 8;
	while (pos < len) {
		end = pos + size < len ? pos + size : len;
		while (end < len && ((unsigned char)s[end] & 0xC0) == 0x80)
			end++;
		piece = fake_xmalloc(end - pos + 1);
		memcpy(piece, s + pos, end - pos);
		piece[end - pos] = '\0';
		cJSON_AddItemToArray(pieces, cJSON_CreateString(piece));
		free(piece);
		pos = end;
	}
}

/* ==== images ==== */

/* The size of the data base64 text s encodes; -1 when s is not base64. */
static long base64_size(const char *s)
{
	long n = 0, pad = 0;
	unsigned char ch;

	for (; *s; s++) {
		ch = (unsigned char)*s;
		if (isspace(ch))
			continue;
		if (ch == '=') {
			pad++;
			continue;
		}
		if (pad || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			     (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
			return -1;
		n++;
	}
	if (pad > 2 || n % 4 == 1 || (pad && (n + pad) % 4))
		return -1;
	return n * 6 / 8;
}

/* "data:MIME;N bytes" (or "...;bad base64") for a data: URL. */
static void describe_data_url(const char *url, struct fbuf *out)
{
	const char *type = url + 5, *comma = strchr(type, ',');
	size_t type_len = strcspn(type, ";,");
	long size;

	if (!comma) {
		fbuf_puts(out, "data:bad");
		return;
	}
	size = comma - type >= 7 && strncmp(comma - 7, ";base64", 7) == 0 ?
		base64_size(comma + 1) : (long)strlen(comma + 1);
	fbuf_printf(out, "data:%.*s;", (int)type_len, type);
	if (size < 0)
		fbuf_puts(out, "bad base64");
	else
		fbuf_printf(out, "%ld bytes", size);
}

/*
 * If part is an image (OpenAI "image_url", Anthropic "image"), appends its
 * description to out, after ", " unless it is the first (n == 0), and
 * returns 1; else returns 0.
 */
static int describe_image(const cJSON *part, int n, struct fbuf *out)
{
	const char *type = json_str(part, "type"), *kind, *url, *data;
	const cJSON *source;
	long size;

	if (!type || (strcmp(type, "image_url") != 0 && strcmp(type, "image") != 0))
		return 0;
	if (n > 0)
		fbuf_puts(out, ", ");
	if (strcmp(type, "image_url") == 0) {
		url = json_str(item(part, "image_url"), "url");
		if (!url)
			url = json_str(part, "image_url");
		if (url && strncmp(url, "data:", 5) == 0)
			describe_data_url(url, out);
		else
			fbuf_printf(out, "url:%s", url ? url : "");
		return 1;
	}
	source = item(part, "source");
	kind = json_str(source, "type");
	if (kind && strcmp(kind, "base64") == 0) {
		data = json_str(source, "data");
		size = base64_size(data ? data : "");
		fbuf_printf(out, "data:%s;", json_str(source, "media_type") ?
			json_str(source, "media_type") : "");
		if (size < 0)
			fbuf_puts(out, "bad base64");
		else
			fbuf_printf(out, "%ld bytes", size);
	} else if (kind && strcmp(kind, "url") == 0) {
		url = json_str(source, "url");
		fbuf_printf(out, "url:%s", url ? url : "");
	} else {
		fbuf_printf(out, "%s:?", kind ? kind : "");
	}
	return 1;
}

/* ==== tools and structured output ==== */

/* The first "tool_result" block of an Anthropic message, or NULL. */
static const cJSON *tool_result(const cJSON *message)
{
	const cJSON *content = item(message, "content"), *block;
	const char *type;

	if (!cJSON_IsArray(content))
		return NULL;
	cJSON_ArrayForEach(block, content) {
		type = json_str(block, "type");
		if (type && strcmp(type, "tool_result") == 0)
			return block;
	}
	return NULL;
}

/*
 * The name of the tool the answer calls: the one tool_choice names, else
 * the first of "tools".  NULL when there are no tools or tool_choice is
 * "none" (OpenAI) or {"type":"none"} (Anthropic).
 */
static const char *chosen_tool(const cJSON *body)
{
	const cJSON *tools = item(body, "tools"), *choice = item(body, "tool_choice");
	const char *type = json_str(choice, "type"), *name;

	if (!cJSON_IsArray(tools) || !tools->child)
		return NULL;
	if ((cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0) ||
	    (type && strcmp(type, "none") == 0))
		return NULL;
	name = json_str(item(choice, "function"), "name");
	if (!name)
		name = json_str(choice, "name");
	if (!name)
		name = json_str(item(tools->child, "function"), "name");
	if (!name)
		name = json_str(tools->child, "name");
	return name;
}

/* A value of JSON schema s: its first enum value, else one per type. */
static cJSON *schema_sample(const cJSON *s, const char *text)
{
	const cJSON *type = item(s, "type"), *values = item(s, "enum"), *t;
	const char *name = cJSON_IsString(type) ? type->valuestring : "";

	if (cJSON_IsArray(values) && values->child)
		return cJSON_Duplicate(values->child, 1);
	cJSON_ArrayForEach(t, (cJSON_IsArray(type) ? type : NULL)) {
		if (cJSON_IsString(t) && strcmp(t->valuestring, "null") != 0) {
			name = t->valuestring;
			break;
		}
	}
	if (strcmp(name, "string") == 0)
		return cJSON_CreateString(*text ? text : "x");
	if (strcmp(name, "number") == 0 || strcmp(name, "integer") == 0)
		return cJSON_CreateNumber(42);
	if (strcmp(name, "boolean") == 0)
		return cJSON_CreateTrue();
	if (strcmp(name, "array") == 0)
		return cJSON_CreateArray();
	if (strcmp(name, "object") == 0)
		return cJSON_CreateObject();
	return cJSON_CreateNull();
}

/*
 * The content OpenAI's response_format asks for, as an owned JSON text:
 * {"echo": text} for json_object, one sample per property of the schema for
 * json_schema.  NULL for any other format (or none).
 */
static char *structured_text(const cJSON *format, const char *text)
{
	const char *type = json_str(format, "type");
	const cJSON *props, *p;
	cJSON *doc;
	char *printed;

	if (!type)
		return NULL;
	if (strcmp(type, "json_object") == 0) {
		doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "echo", text);
	} else if (strcmp(type, "json_schema") == 0) {
		doc = cJSON_CreateObject();
		props = item(item(item(format, "json_schema"), "schema"), "properties");
		cJSON_ArrayForEach(p, (cJSON_IsObject(props) ? props : NULL))
			cJSON_AddItemToObject(doc, p->string, schema_sample(p, text));
	} else {
		return NULL;
	}
	printed = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return printed;
}

/* Calls tool name with {"query": text} as its arguments. */
static void call_tool(struct chat *c, const char *name, const char *text)
{
	c->tool_name = name;
	c->tool_input = cJSON_CreateObject();
	cJSON_AddStringToObject(c->tool_input, "query", text);
	c->tool_args = cJSON_PrintUnformatted(c->tool_input);
	c->tool_pieces = cJSON_CreateArray();
	split_pieces(c->tool_args, c->tool_pieces);
}

/* ==== the answer ==== */

/* The answer's text when neither the spec nor a tool call decides it. */
static void generated_text(struct chat *c, const cJSON *body, const char *said,
			   const char *images, int nimages)
{
	struct fbuf text = { 0 };
	char *json = c->anthropic ? NULL :
		structured_text(item(body, "response_format"), said);

	if (json) {
		split_pieces(json, c->deltas);
		free(json);
		return;
	}
	if (nimages)
		fbuf_printf(&text, "saw %d image(s): %s\n", nimages, images);
	fbuf_puts(&text, said);
	split_words(fbuf_str(&text), c->deltas);
	fbuf_release(&text);
}

static void chat_usage(struct chat *c, const cJSON *spec)
{
	const cJSON *usage = item(spec, "usage");
	size_t i;

	c->prompt_tokens = json_long(usage, "input_tokens", c->prompt_tokens);
	c->prompt_tokens = json_long(usage, "prompt_tokens", c->prompt_tokens);
	c->completion_tokens = json_long(usage, "output_tokens", c->completion_tokens);
	c->completion_tokens = json_long(usage, "completion_tokens", c->completion_tokens);
	c->cached_tokens = json_long(usage, "cached_tokens", 0);
	c->reasoning_tokens = json_long(usage, "reasoning_tokens", 0);
	c->cache_creation = json_long(usage, "cache_creation_input_tokens", 0);
	c->cache_read = json_long(usage, "cache_read_input_tokens", 0);
	c->extras = cJSON_IsTrue(item(spec, "extras"));
	for (i = 0; i < sizeof(extra_usage) / sizeof(extra_usage[0]); i++)
		if (item(usage, extra_usage[i]))
			c->extras = 1;
}

void chat_init(struct chat *c, const cJSON *spec, const struct request *rq)
{
	const cJSON *body = rq->json, *m, *part, *last = NULL, *last_user = NULL;
	const cJSON *deltas, *d, *result;
	const char *format = json_str(spec, "format"), *think, *tool;
	struct fbuf words = { 0 }, said = { 0 }, images = { 0 };
	int nimages = 0, tool_turn = 0;

	memset(c, 0, sizeof(*c));
	c->model = json_str(body, "model");
	if (!c->model)
		c->model = "fake-model";
	c->anthropic = format ? strcmp(format, "anthropic") == 0 :
		fake_ends_with(rq->path, "/messages");
	c->stream = cJSON_IsTrue(item(body, "stream"));
	c->include_usage = cJSON_IsTrue(item(item(body, "stream_options"),
		"include_usage"));
	c->service_tier = json_str(body, "service_tier");
	c->logprobs = cJSON_IsTrue(item(body, "logprobs"));
	c->choices = c->stream ? 1 : json_long(body, "n", 1);
	if (c->choices < 1 || c->choices > 128)
		c->choices = 1;

	/* Prompt size: words of every message and of the system prompt. */
	cJSON_ArrayForEach(m, item(body, "messages")) {
		if (is_role(m, "user"))
			last_user = m;
		last = m;
		content_text(item(m, "content"), &words);
		fbuf_puts(&words, " ");
		/* (a string content has no child: no parts) */
		cJSON_ArrayForEach(part, item(m, "content"))
			nimages += describe_image(part, nimages, &images);
	}
	content_text(item(body, "system"), &words);
	c->prompt_tokens = (long)fake_count_words(fbuf_str(&words));
	fbuf_release(&words);

	/* What the answer talks about: the user's text, or what a tool said. */
	if (is_role(last, "tool")) {
		fbuf_puts(&said, "tool said: ");
		content_text(item(last, "content"), &said);
		tool_turn = 1;
	} else if ((result = tool_result(last_user)) != NULL) {
		fbuf_puts(&said, "tool said: ");
		content_text(item(result, "content"), &said);
		tool_turn = 1;
	} else if (last_user) {
		content_text(item(last_user, "content"), &said);
	}

	deltas = item(spec, "deltas");
	c->deltas = cJSON_CreateArray();
	if (cJSON_IsArray(deltas)) {
		cJSON_ArrayForEach(d, deltas)
			if (cJSON_IsString(d))
				cJSON_AddItemToArray(c->deltas,
					cJSON_CreateString(d->valuestring));
	} else if (!tool_turn && (tool = chosen_tool(body)) != NULL) {
		call_tool(c, tool, fbuf_str(&said));
		if (c->anthropic)
			cJSON_AddItemToArray(c->deltas, cJSON_CreateString("Let me check."));
	} else {
		generated_text(c, body, fbuf_str(&said), fbuf_str(&images), nimages);
	}
	cJSON_ArrayForEach(d, c->deltas)
		fbuf_puts(&c->text, d->valuestring);

	think = json_str(item(body, "thinking"), "type");
	if (c->anthropic && think && strcmp(think, "enabled") == 0) {
		fbuf_printf(&words, "Thinking about: %s", fbuf_str(&said));
		c->thinking = cJSON_CreateArray();
		split_words(fbuf_str(&words), c->thinking);
		fbuf_release(&words);
	}
	c->completion_tokens = c->choices * (cJSON_GetArraySize(c->deltas) +
		cJSON_GetArraySize(c->thinking) + cJSON_GetArraySize(c->tool_pieces));
	chat_usage(c, spec);

	c->finish = json_str(spec, "finish_reason");
	if (c->anthropic && json_str(spec, "stop_reason"))
		c->finish = json_str(spec, "stop_reason");
	if (!c->finish && c->tool_name)
		c->finish = c->anthropic ? "tool_use" : "tool_calls";
	if (!c->finish)
		c->finish = c->anthropic ? "end_turn" : "stop";
	fbuf_release(&said);
	fbuf_release(&images);
}

void chat_release(struct chat *c)
{
	cJSON_Delete(c->thinking);
	cJSON_Delete(c->deltas);
	fbuf_release(&c->text);
	cJSON_Delete(c->tool_input);
	free(c->tool_args);
	cJSON_Delete(c->tool_pieces);
}
