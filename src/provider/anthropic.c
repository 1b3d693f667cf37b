/*
 * anthropic.c - the Anthropic Messages API.
 *
 * Requests: a caller that speaks Anthropic (serve's /v1/messages) has its
 * own request sent as it wrote it (chat_params.native).  Every other
 * request is in the OpenAI dialect and is translated field by field: the
 * system prompt and system/developer messages become the top-level system;
 * content parts become blocks (data URLs -> base64 sources, URLs -> url
 * sources, PDF files -> documents); tool_calls -> tool_use and tool
 * messages -> tool_result blocks; tools, tool_choice, stop ->
 * stop_sequences; a json_schema response format -> one forced tool whose
 * input is the answer.  A field with no Anthropic meaning is refused with
 * its name (ERR_INVALID_REQUEST); a field left at its no-op default is
 * accepted.  max_tokens is required by the API: 4096 unless given.
 *
 * Answers: events are message_start (input and cache tokens),
 * content_block_start/delta/stop (text_delta is the answer; input_json_delta
 * a tool call's arguments; thinking_delta reasoning), message_delta
 * (stop_reason and a cumulative output_tokens: replaced, never added),
 * message_stop, ping, and error, which ends the stream with the partial
 * text kept.  A caller that speaks OpenAI gets them as chat completion
 * chunks (or one completion); one that speaks Anthropic gets them as they
 * came, read without a tree when they are plain (skim_event()).
 */
#include "aichat/jscan.h"
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"
#include "aichat/xlate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define ANTHROPIC_DEFAULT_MAX_TOKENS 4096
#define MAX_BLOCKS 256

/* ==== OpenAI request -> Anthropic request ==== */

static int refuse(struct err *e, const char *field, const char *why)
{
	return err_set(e, ERR_INVALID_REQUEST, "'%s' %s", field, why);
}

static cJSON *text_block(const char *text)
{
	cJSON *b = cJSON_CreateObject();

	cJSON_AddStringToObject(b, "type", "text");
	cJSON_AddStringToObject(b, "text", text);
	return b;
}

/* A data: URL's media type and base64 payload; 0 when url is one. */
static int data_url(const char *url, char *type, size_t cap, const char **data)
{
	const char *semi, *comma;

	if (strncmp(url, "data:", 5))
		return -1;
	semi = strstr(url, ";base64,");
	comma = strchr(url, ',');
	if (!semi || !comma || semi > comma)
		return -1;
	snprintf(type, cap, "%.*s", (int)(semi - url - 5), url + 5);
	*data = semi + 8;
	return 0;
}

static cJSON *source(const char *type, const char *media, const char *data,
		     const char *url)
{
	cJSON *s = cJSON_CreateObject();

	cJSON_AddStringToObject(s, "type", type);
	if (media)
		cJSON_AddStringToObject(s, "media_type", media);
	if (data)
		cJSON_AddStringToObject(s, "data", data);
	if (url)
		cJSON_AddStringToObject(s, "url", url);
	return s;
}

/* One OpenAI content part -> one Anthropic block, or -1 with e. */
static int part_block(const cJSON *p, const char *where, cJSON *blocks,
		      struct err *e)
{
	const char *type = json_str(p, "type");
	char media[128], field[128];
	const char *data;
	cJSON *b;

	if (type && (!strcmp(type, "text") || !strcmp(type, "refusal"))) {
		const char *t = json_str(p, type);
		if (t && *t)
			cJSON_AddItemToArray(blocks, text_block(t));
		return 0;
	}
	snprintf(field, sizeof(field), "%s", where);
	if (type && !strcmp(type, "image_url")) {
		const char *url = json_str(json_obj(p, "image_url"), "url");
		b = cJSON_CreateObject();
		cJSON_AddStringToObject(b, "type", "image");
		if (url && data_url(url, media, sizeof(media), &data) == 0)
			cJSON_AddItemToObject(b, "source", source("base64", media, data, NULL));
		else
			cJSON_AddItemToObject(b, "source", source("url", NULL, NULL,
								  url ? url : ""));
		cJSON_AddItemToArray(blocks, b);
		return 0;
	}
	if (type && !strcmp(type, "file")) {
		const cJSON *f = json_obj(p, "file");
		const char *fd = json_str(f, "file_data");
		if (!fd || data_url(fd, media, sizeof(media), &data) < 0)
			return refuse(e, field, "is a file without file_data as a base64 data URL (Anthropic models take no OpenAI file ids)");
		b = cJSON_CreateObject();
		cJSON_AddStringToObject(b, "type", "document");
		cJSON_AddItemToObject(b, "source", source("base64", media, data, NULL));
		if (json_str(f, "filename"))
			cJSON_AddStringToObject(b, "title", json_str(f, "filename"));
		cJSON_AddItemToArray(blocks, b);
		return 0;
	}
	return refuse(e, field, "is a content part with no Anthropic meaning");
}

/* content (string, parts or null) -> blocks appended to blocks. */
static int content_blocks(const cJSON *content, const char *where,
			  cJSON *blocks, struct err *e)
{
	const cJSON *p;
	char at[128];
	int i = 0;

	if (cJSON_IsString(content)) {
		if (*content->valuestring)
			cJSON_AddItemToArray(blocks, text_block(content->valuestring));
		return 0;
	}
	cJSON_ArrayForEach(p, content) {
		snprintf(at, sizeof(at), "%s.content.%d", where, i++);
		if (part_block(p, at, blocks, e) < 0)
			return -1;
	}
	return 0;
}

/* The text of content (string or text parts), for system prompts. */
static void content_text(const cJSON *content, struct buf *out)
{
	const cJSON *p;

	if (cJSON_IsString(content)) {
		buf_appends(out, content->valuestring);
		return;
	}
	cJSON_ArrayForEach(p, content)
		if (json_str(p, "text"))
			buf_appends(out, json_str(p, "text"));
}

static cJSON *new_turn(cJSON *msgs, const char *role)
{
	cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1), *o;

	/* Tool results and the user's next words are one user turn. */
	if (last && !strcmp(json_str(last, "role"), role))
		return cJSON_GetObjectItemCaseSensitive(last, "content");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "role", role);
	cJSON_AddItemToArray(msgs, o);
	return cJSON_AddArrayToObject(o, "content");
}

static int tool_calls(const cJSON *m, const char *where, cJSON *blocks,
		      struct err *e)
{
	const cJSON *tc;
	char at[128];
	int i = 0;

	cJSON_ArrayForEach(tc, json_arr(m, "tool_calls")) {
		const cJSON *fn = json_obj(tc, "function");
		const char *args = json_str(fn, "arguments");
		cJSON *b = cJSON_CreateObject(), *input;

		snprintf(at, sizeof(at), "%s.tool_calls.%d.function.arguments", where, i++);
		input = args && *args ? json_parse(args, strlen(args), NULL) :
			cJSON_CreateObject();
		if (!cJSON_IsObject(input)) {
			cJSON_Delete(input);
			cJSON_Delete(b);
			return refuse(e, at, "is not a JSON object (Anthropic tool input is one)");
		}
		cJSON_AddStringToObject(b, "type", "tool_use");
		cJSON_AddStringToObject(b, "id", json_str(tc, "id") ? json_str(tc, "id") : "");
		cJSON_AddStringToObject(b, "name", json_str(fn, "name") ? json_str(fn, "name") : "");
		cJSON_AddItemToObject(b, "input", input);
		cJSON_AddItemToArray(blocks, b);
	}
	return 0;
}

static int translate_messages(const struct chat_params *p, cJSON *root,
			      struct err *e)
{
	cJSON *msgs = cJSON_CreateArray();
	struct buf sys;
	char where[48];
	int rc = -1;

	cJSON_AddItemToObject(root, "messages", msgs);
	buf_init(&sys, 0);
	if (p->system)
		buf_appends(&sys, p->system);
	for (size_t i = 0; i < p->nmessages; i++) {
		const struct chat_message *cm = &p->messages[i];
		const cJSON *j = cm->json;
		const cJSON *content = j ? cJSON_GetObjectItemCaseSensitive(j, "content") : NULL;
		cJSON *blocks;

		snprintf(where, sizeof(where), "messages.%zu", i);
		if (j && json_str(j, "name")) {
			snprintf(where + strlen(where), sizeof(where) - strlen(where), ".name");
			refuse(e, where, "has no Anthropic meaning");
			goto cleanup;
		}
		if (!strcmp(cm->role, "system") || !strcmp(cm->role, "developer")) {
			if (sys.len)
				buf_appends(&sys, "\n\n");
			if (j)
				content_text(content, &sys);
			else
				buf_appends(&sys, cm->content);
			continue;
		}
		if (!strcmp(cm->role, "tool")) {
			cJSON *b = cJSON_CreateObject(), *inner = cJSON_CreateArray();
			blocks = new_turn(msgs, "user");
			cJSON_AddStringToObject(b, "type", "tool_result");
			cJSON_AddStringToObject(b, "tool_use_id", json_str(j, "tool_call_id") ?
						json_str(j, "tool_call_id") : "");
			cJSON_AddItemToObject(b, "content", inner);
			cJSON_AddItemToArray(blocks, b);
			if (content_blocks(j ? content : NULL, where, inner, e) < 0)
				goto cleanup;
			if (!j && *cm->content)
				cJSON_AddItemToArray(inner, text_block(cm->content));
			continue;
		}
		blocks = new_turn(msgs, cm->role);
		if (!j) {
			if (*cm->content)
				cJSON_AddItemToArray(blocks, text_block(cm->content));
			continue;
		}
		if (content_blocks(content, where, blocks, e) < 0 ||
		    tool_calls(j, where, blocks, e) < 0)
			goto cleanup;
	}
	if (sys.len)
		cJSON_AddStringToObject(root, "system", sys.ptr);
	rc = 0;
cleanup:
	buf_release(&sys);
	return rc;
}

/* The name of the tool that carries a json_schema answer. */
#define SCHEMA_TOOL_DEFAULT "json_output"

static int translate_format(const cJSON *rf, cJSON *root, struct err *e)
{
	const char *type = json_str(rf, "type");
	const cJSON *js = json_obj(rf, "json_schema");
	const cJSON *schema = json_obj(js, "schema");
	const char *name = json_str(js, "name");
	cJSON *tools, *t, *tc;

	if (!type || !strcmp(type, "text"))
		return 0;
	if (strcmp(type, "json_schema") && strcmp(type, "json_object"))
		return refuse(e, "response_format.type", "has no Anthropic meaning");
	if (cJSON_GetObjectItemCaseSensitive(root, "tools"))
		return refuse(e, "response_format",
			      "cannot be combined with tools for Anthropic models (it is carried by a tool of its own)");
	tools = cJSON_AddArrayToObject(root, "tools");
	t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "name", name ? name : SCHEMA_TOOL_DEFAULT);
	cJSON_AddStringToObject(t, "description",
				"Give the answer as this tool's input, following its schema.");
	if (schema) {
		cJSON_AddItemToObject(t, "input_schema", cJSON_Duplicate(schema, 1));
	} else {
		cJSON *s = cJSON_AddObjectToObject(t, "input_schema");
		cJSON_AddStringToObject(s, "type", "object");
	}
	cJSON_AddItemToArray(tools, t);
	tc = cJSON_AddObjectToObject(root, "tool_choice");
	cJSON_AddStringToObject(tc, "type", "tool");
	cJSON_AddStringToObject(tc, "name", name ? name : SCHEMA_TOOL_DEFAULT);
	return 0;
}

static int translate_tools(const cJSON *tools, cJSON *root, struct err *e)
{
	const cJSON *t;
	cJSON *out = cJSON_AddArrayToObject(root, "tools");
	char where[48];
	int i = 0;

	cJSON_ArrayForEach(t, tools) {
		const cJSON *fn = json_obj(t, "function");
		const char *type = json_str(t, "type");
		cJSON *o;

		snprintf(where, sizeof(where), "tools.%d.type", i++);
		if (!type || strcmp(type, "function") || !fn)
			return refuse(e, where, "is not \"function\": only function tools have an Anthropic meaning");
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", json_str(fn, "name") ? json_str(fn, "name") : "");
		if (json_str(fn, "description"))
			cJSON_AddStringToObject(o, "description", json_str(fn, "description"));
		/* "strict" is not sent: Anthropic has no such switch. */
		if (json_obj(fn, "parameters")) {
			cJSON_AddItemToObject(o, "input_schema",
					      cJSON_Duplicate(json_obj(fn, "parameters"), 1));
		} else {
			cJSON *s = cJSON_AddObjectToObject(o, "input_schema");
			cJSON_AddStringToObject(s, "type", "object");
		}
		cJSON_AddItemToArray(out, o);
	}
	return 0;
}

static int translate_tool_choice(const cJSON *tc, const cJSON *parallel,
				 cJSON *root, struct err *e)
{
	cJSON *o;

	if (!tc && !cJSON_IsFalse(parallel))
		return 0;
	o = cJSON_AddObjectToObject(root, "tool_choice");
	if (!tc || (cJSON_IsString(tc) && !strcmp(tc->valuestring, "auto"))) {
		cJSON_AddStringToObject(o, "type", "auto");
	} else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "required")) {
		cJSON_AddStringToObject(o, "type", "any");
	} else if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "none")) {
		cJSON_AddStringToObject(o, "type", "none");
	} else if (json_str(json_obj(tc, "function"), "name")) {
		cJSON_AddStringToObject(o, "type", "tool");
		cJSON_AddStringToObject(o, "name", json_str(json_obj(tc, "function"), "name"));
	} else {
		return refuse(e, "tool_choice", "has no Anthropic meaning");
	}
	if (cJSON_IsFalse(parallel))
		cJSON_AddTrueToObject(o, "disable_parallel_tool_use");
	return 0;
}

/* Whether v leaves the answer as it would be without it. */
static int no_effect(const cJSON *v)
{
	if (cJSON_IsNull(v) || cJSON_IsFalse(v))
		return 1;
	if (cJSON_IsNumber(v))
		return v->valuedouble == 0;
	if (cJSON_IsObject(v) || cJSON_IsArray(v))
		return cJSON_GetArraySize(v) == 0;
	return 0;
}

static int translate_extra(const struct chat_params *p, cJSON *root,
			   struct err *e)
{
	const cJSON *f, *x = p->extra;
	double d;

	cJSON_ArrayForEach(f, x) {
		const char *k = f->string;

		if (!strcmp(k, "model") || !strcmp(k, "messages") || !strcmp(k, "stream") ||
		    !strcmp(k, "stream_options") || !strcmp(k, "max_tokens") ||
		    !strcmp(k, "max_completion_tokens") || !strcmp(k, "tools") ||
		    !strcmp(k, "tool_choice") || !strcmp(k, "parallel_tool_calls") ||
		    !strcmp(k, "response_format"))
			continue;
		if (!strcmp(k, "temperature") || !strcmp(k, "top_p") ||
		    !strcmp(k, "top_k") || !strcmp(k, "thinking")) {
			/* The same meaning under the same name. */
			cJSON_AddItemToObject(root, k, cJSON_Duplicate(f, 1));
		} else if (!strcmp(k, "stop")) {
			cJSON *ss = cJSON_IsString(f) ? cJSON_CreateArray() :
				    cJSON_Duplicate(f, 1);
			if (cJSON_IsString(f))
				cJSON_AddItemToArray(ss, cJSON_CreateString(f->valuestring));
			if (!cJSON_IsNull(f))
				cJSON_AddItemToObject(root, "stop_sequences", ss);
			else
				cJSON_Delete(ss);
		} else if (!strcmp(k, "user") && cJSON_IsString(f)) {
			cJSON_AddStringToObject(cJSON_AddObjectToObject(root, "metadata"),
						"user_id", f->valuestring);
		} else if (!strcmp(k, "n") && cJSON_IsNumber(f) && f->valuedouble == 1) {
			continue;
		} else if (!strcmp(k, "service_tier") && cJSON_IsString(f) &&
			   !strcmp(f->valuestring, "auto")) {
			cJSON_AddStringToObject(root, k, "auto");
		} else if (!strcmp(k, "modalities") && cJSON_GetArraySize(f) == 1 &&
			   cJSON_IsString(cJSON_GetArrayItem(f, 0)) &&
			   !strcmp(cJSON_GetArrayItem(f, 0)->valuestring, "text")) {
			continue;
		} else if (no_effect(f) && strcmp(k, "seed")) {
			continue;
		} else {
			return refuse(e, k, "has no meaning for Anthropic models");
		}
	}
	if (json_num(x, "max_completion_tokens", &d) == 0 ||
	    json_num(x, "max_tokens", &d) == 0)
		cJSON_AddNumberToObject(root, "max_tokens", d);
	else
		cJSON_AddNumberToObject(root, "max_tokens", p->max_tokens > 0 ?
					p->max_tokens : ANTHROPIC_DEFAULT_MAX_TOKENS);
	/* A thinking model samples at its own temperature: a default one is
	 * left out, the caller's is sent (and judged by the API). */
	if (p->temperature >= 0 && !cJSON_GetObjectItemCaseSensitive(root, "temperature") &&
	    !(p->temperature_default && cJSON_GetObjectItemCaseSensitive(root, "thinking")))
		cJSON_AddNumberToObject(root, "temperature", p->temperature);
	if (json_arr(x, "tools") && translate_tools(json_arr(x, "tools"), root, e) < 0)
		return -1;
	if (translate_tool_choice(cJSON_GetObjectItemCaseSensitive(x, "tool_choice"),
				  cJSON_GetObjectItemCaseSensitive(x, "parallel_tool_calls"),
				  root, e) < 0)
		return -1;
	if (json_obj(x, "response_format") &&
	    translate_format(json_obj(x, "response_format"), root, e) < 0)
		return -1;
	return 0;
}

/* The name of the tool a json_schema answer arrives through, or NULL. */
static const char *schema_tool(const struct chat_params *p)
{
	const cJSON *rf = json_obj(p->extra, "response_format");
	const char *type = json_str(rf, "type");

	if (!type || (strcmp(type, "json_schema") && strcmp(type, "json_object")))
		return NULL;
	return json_str(json_obj(rf, "json_schema"), "name") ?
		json_str(json_obj(rf, "json_schema"), "name") : SCHEMA_TOOL_DEFAULT;
}

/* ==== per-attempt state of an answer told in OpenAI's dialect ==== */

struct answer {
	char id[128];
	char model[128];
	long created;
	char *schema_tool;           /* json_schema answers come as this tool */
	int schema_block;            /* index of that tool's block, or -1 */
	/* Anthropic block index -> OpenAI tool call index (-1: not a tool). */
	int tool_of[MAX_BLOCKS];
	int ntools;
	double in, out, cache_read, cache_write;
	char stop[32];
	struct buf scratch;          /* a skimmed event's strings */
};

static void answer_free(void *p)
{
	struct answer *a = p;

	if (a) {
		free(a->schema_tool);
		buf_release(&a->scratch);
	}
	free(a);
}

static struct answer *answer_of(struct llm_call *c)
{
	return llm_state(c);
}

static cJSON *chunk(struct answer *a, const char *object)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", a->id);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddNumberToObject(o, "created", (double)a->created);
	cJSON_AddStringToObject(o, "model", a->model);
	return o;
}

/* A chunk whose one choice has delta d (owned) and finish reason fr. */
static void emit_delta(struct llm_call *c, cJSON *d, const char *fr, int answer)
{
	struct answer *a = answer_of(c);
	cJSON *o = chunk(a, "chat.completion.chunk"), *ch = cJSON_CreateObject();

	cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
	cJSON_AddNumberToObject(ch, "index", 0);
	cJSON_AddItemToObject(ch, "delta", d);
	if (fr)
		cJSON_AddStringToObject(ch, "finish_reason", fr);
	else
		cJSON_AddNullToObject(ch, "finish_reason");
	llm_emit_openai(c, o, answer);
	cJSON_Delete(o);
}

static cJSON *usage_object(const struct answer *a)
{
	cJSON *u = cJSON_CreateObject();
	double prompt = a->in + a->cache_read + a->cache_write;

	cJSON_AddNumberToObject(u, "prompt_tokens", prompt);
	cJSON_AddNumberToObject(u, "completion_tokens", a->out);
	cJSON_AddNumberToObject(u, "total_tokens", prompt + a->out);
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"),
				"cached_tokens", a->cache_read);
	return u;
}

/* A usage object's counts, as json_count() reads them (-1: not a number
 * there). */
struct usage_view {
	int present;                 /* the object is there */
	double count[4];             /* by enum usage_count */
};

enum usage_count { U_IN, U_OUT, U_CACHE_READ, U_CACHE_WRITE };

static void read_usage(struct llm_call *c, const struct usage_view *u)
{
	struct answer *a = answer_of(c);
	double in = u->count[U_IN], out = u->count[U_OUT];

	if (!u->present)
		return;
	if (in >= 0)
		a->in = in;
	if (out >= 0)
		a->out = out;
	if (u->count[U_CACHE_READ] >= 0)
		a->cache_read = u->count[U_CACHE_READ];
	if (u->count[U_CACHE_WRITE] >= 0)
		a->cache_write = u->count[U_CACHE_WRITE];
	if (in >= 0 || out >= 0)
		llm_set_usage(c, in >= 0 ? (long)(a->in + a->cache_read + a->cache_write) : -1,
			      (long)out);
	if (a->cache_read >= 0)
		llm_set_cached(c, (long)a->cache_read);
	if (a->cache_write >= 0)
		llm_set_cache_write(c, (long)a->cache_write);
}

static const char *finish_name(struct answer *a, const char *stop)
{
	/* A json_schema answer is the answer, not a tool call. */
	if (a->schema_tool && !strcmp(stop, "tool_use"))
		return "stop";
	return xlate_finish_reason(stop);
}

static void start_answer(struct llm_call *c, const struct chat_params *p)
{
	struct answer *a = xcalloc(1, sizeof(*a));
	const char *st = schema_tool(p);

	a->created = (long)time(NULL);
	snprintf(a->id, sizeof(a->id), "chatcmpl-aichat");
	snprintf(a->model, sizeof(a->model), "%s", llm_model(c)->model);
	a->schema_tool = st ? xstrdup(st) : NULL;
	a->schema_block = -1;
	for (int i = 0; i < MAX_BLOCKS; i++)
		a->tool_of[i] = -1;
	buf_init(&a->scratch, 0);
	llm_set_state(c, a, answer_free);
}

/* ==== building the request ==== */

static int build(struct llm_call *c, const struct chat_params *p,
		 struct buf *url, struct buf *body, char ***headers,
		 struct err *e)
{
	const struct model_ref *m = llm_model(c);
	cJSON *root;
	char *text;

	(void)headers;

	buf_printf(url, "%s/v1/messages", m->base_url);
	if (p->native && p->dialect == DIALECT_ANTHROPIC) {
		/* The caller's own request, as it wrote it. */
		root = cJSON_Duplicate(p->native, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(root, "model");
		cJSON_AddStringToObject(root, "model", m->model);
		cJSON_DeleteItemFromObjectCaseSensitive(root, "stream");
	} else {
		root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "model", m->model);
		if (translate_messages(p, root, e) < 0 || translate_extra(p, root, e) < 0) {
			cJSON_Delete(root);
			return -1;
		}
	}
	if (p->stream)
		cJSON_AddBoolToObject(root, "stream", 1);
	text = json_print(root);
	buf_appends(body, text);
	free(text);
	cJSON_Delete(root);
	start_answer(c, p);
	return 0;
}

static char **headers(const struct model_ref *m)
{
	char **h = xcalloc(4, sizeof(*h));
	struct buf hb;
	int nh = 0;

	h[nh++] = xstrdup("Content-Type: application/json");
	h[nh++] = xstrdup("anthropic-version: " ANTHROPIC_VERSION);
	if (m->api_key) {
		buf_init(&hb, 0);
		buf_printf(&hb, "x-api-key: %s", m->api_key);
		h[nh++] = buf_detach(&hb);
	}
	return h;
}

/* ==== one streamed event, as aichat reads it ==== */

/*
 * The members of an event aichat reads, described once: from a cJSON tree
 * (view_of()) and, for a caller that speaks Anthropic and gets the event's
 * bytes as they came, skimmed from its text in one pass without a tree
 * (skim_event(), jscan.h).  The skim says no to whatever it is not sure
 * the tree would read the same -- a member it reads that comes twice, an
 * escaped member name, a string it reads that is not valid UTF-8 once
 * decoded, \u0000, a number cJSON would cut, nesting deeper than
 * JSCAN_DEPTH, anything malformed -- and the event goes the full way: the
 * same errors, the same results.  An "error" event always goes the full
 * way.  fuzz_decode checks that both read the same.
 */
int anthropic_skim = 1;

enum event_str {
	S_TYPE,                       /* type */
	S_MSG_ID, S_MSG_MODEL,        /* message.id, message.model */
	S_BLOCK_TYPE, S_BLOCK_ID, S_BLOCK_NAME,   /* content_block.* */
	S_DELTA_TYPE, S_TEXT, S_PARTIAL_JSON, S_THINKING, S_STOP,  /* delta.* */
	S_COUNT
};

enum { USAGE_MESSAGE, USAGE_TOP };

struct event_view {
	const char *str[S_COUNT];     /* NULL: absent or not a string */
	double index;                 /* index, -1 when not a number */
	struct usage_view usage[2];   /* message.usage, usage */
};

enum member_kind { M_STR, M_INDEX, M_COUNT, M_OBJ };

struct member {
	const char *name;
	enum member_kind kind;
	int slot;                     /* M_STR: enum event_str; M_COUNT: enum
				       * usage_count; M_OBJ: a usage view, or -1 */
	const struct member *sub;     /* M_OBJ: its members, NULL-named last */
};

static const struct member usage_members[] = {
	{ "input_tokens", M_COUNT, U_IN, NULL },
	{ "output_tokens", M_COUNT, U_OUT, NULL },
	{ "cache_read_input_tokens", M_COUNT, U_CACHE_READ, NULL },
	{ "cache_creation_input_tokens", M_COUNT, U_CACHE_WRITE, NULL },
	{ NULL, M_STR, 0, NULL },
};

static const struct member message_members[] = {
	{ "id", M_STR, S_MSG_ID, NULL },
	{ "model", M_STR, S_MSG_MODEL, NULL },
	{ "usage", M_OBJ, USAGE_MESSAGE, usage_members },
	{ NULL, M_STR, 0, NULL },
};

static const struct member block_members[] = {
	{ "type", M_STR, S_BLOCK_TYPE, NULL },
	{ "id", M_STR, S_BLOCK_ID, NULL },
	{ "name", M_STR, S_BLOCK_NAME, NULL },
	{ NULL, M_STR, 0, NULL },
};

static const struct member delta_members[] = {
	{ "type", M_STR, S_DELTA_TYPE, NULL },
	{ "text", M_STR, S_TEXT, NULL },
	{ "partial_json", M_STR, S_PARTIAL_JSON, NULL },
	{ "thinking", M_STR, S_THINKING, NULL },
	{ "stop_reason", M_STR, S_STOP, NULL },
	{ NULL, M_STR, 0, NULL },
};

static const struct member event_members[] = {
	{ "type", M_STR, S_TYPE, NULL },
	{ "index", M_INDEX, 0, NULL },
	{ "message", M_OBJ, -1, message_members },
	{ "usage", M_OBJ, USAGE_TOP, usage_members },
	{ "content_block", M_OBJ, -1, block_members },
	{ "delta", M_OBJ, -1, delta_members },
	{ NULL, M_STR, 0, NULL },
};

static void view_init(struct event_view *v)
{
	for (int i = 0; i < S_COUNT; i++)
		v->str[i] = NULL;
	v->index = -1;
	for (int i = 0; i < 2; i++) {
		v->usage[i].present = 0;
		for (int j = 0; j < 4; j++)
			v->usage[i].count[j] = -1;
	}
}

/* The members of obj (a tree) that m names; u: the usage view of an
 * object of counts. */
static void view_from(const cJSON *obj, const struct member *m,
		      struct event_view *v, struct usage_view *u)
{
	for (; m->name; m++) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, m->name);

		if (m->kind == M_STR && cJSON_IsString(n))
			v->str[m->slot] = n->valuestring;
		else if (m->kind == M_INDEX && cJSON_IsNumber(n))
			v->index = n->valuedouble;
		else if (m->kind == M_COUNT)
			json_count(obj, m->name, &u->count[m->slot]);
		else if (m->kind == M_OBJ && cJSON_IsObject(n))
			view_from(n, m->sub, v, m->slot >= 0 ? &v->usage[m->slot] : NULL);
	}
	if (u)
		u->present = 1;
}

static void view_of(const cJSON *root, struct event_view *v)
{
	view_init(v);
	view_from(root, event_members, v, NULL);
}

/* The object whose '{' is at s->p, its members that m names read into v
 * (strings decoded onto out, each followed by a NUL, at offsets in at[]).
 * 0, or -1: take the full way. */
static int skim_object(struct jscan *s, const struct member *m, int depth,
		       struct event_view *v, struct usage_view *u,
		       struct buf *out, size_t *at)
{
	const char *name;
	size_t nlen;
	unsigned seen = 0;
	int first = 1, rc;

	if (u)
		u->present = 1;
	s->p++;
	while ((rc = jscan_more(s, '}', &first, &name, &nlen)) > 0) {
		const struct member *k = m;
		int have = 0;

		while (k->name && (k->name[0] != *name || !jscan_named(name, nlen, k->name)))
			k++;
		if (!k->name) {
			rc = jscan_value(s, depth + 1);
		} else if (seen & 1u << (k - m)) {
			return -1;           /* cJSON reads the first; not sure */
		} else if (k->kind == M_STR) {
			size_t from = out->len;
			seen |= 1u << (k - m);
			rc = jscan_text(s, out, &have, depth + 1);
			if (have) {
				at[k->slot] = from;
				buf_putc(out, '\0');
			}
		} else if (k->kind == M_INDEX) {
			seen |= 1u << (k - m);
			if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
				rc = jscan_number(s, &v->index);
			else
				rc = jscan_value(s, depth + 1);
		} else if (k->kind == M_COUNT) {
			seen |= 1u << (k - m);
			rc = jscan_count(s, &u->count[k->slot], depth + 1);
		} else {
			seen |= 1u << (k - m);
			if (*s->p == '{' && depth + 1 < JSCAN_DEPTH)
				rc = skim_object(s, k->sub, depth + 1, v,
						 k->slot >= 0 ? &v->usage[k->slot] : NULL,
						 out, at);
			else
				rc = jscan_value(s, depth + 1);
		}
		if (rc < 0)
			return -1;
	}
	return rc;
}

/* The event's text read as view_of() would read its tree, strings kept
 * in out (cleared first); 0, or -1: take the full way. */
static int skim_event(const char *text, size_t len, struct buf *out,
		      struct event_view *v)
{
	struct jscan s = { text, text + len };
	size_t at[S_COUNT];

	view_init(v);
	buf_clear(out);
	for (int i = 0; i < S_COUNT; i++)
		at[i] = (size_t)-1;
	jscan_ws(&s);
	if (s.p >= s.end || *s.p != '{' ||
	    skim_object(&s, event_members, 0, v, NULL, out, at) < 0)
		return -1;
	jscan_ws(&s);
	/* Whitespace only after the object; what aichat reads, UTF-8 only
	 * (the strings are NUL-separated: one check holds for each). */
	if (s.p != s.end || trust_utf8_invalid(out->ptr, out->len) >= 0)
		return -1;
	for (int i = 0; i < S_COUNT; i++)
		if (at[i] != (size_t)-1)
			v->str[i] = out->ptr + at[i];
	return 0;
}

int anthropic_skims(const char *data, size_t len)
{
	struct event_view v;
	struct buf out;
	int rc;

	buf_init(&out, 0);
	rc = skim_event(data, len, &out, &v);
	buf_release(&out);
	return rc;
}

/* ==== answers ==== */

static int error_event(struct llm_call *c, const cJSON *root, struct err *e)
{
	const cJSON *eo = json_obj(root, "error");
	const char *type = eo ? json_str(eo, "type") : NULL;
	const char *msg = eo ? json_str(eo, "message") : NULL;
	char clean[160] = "", ctype[48] = "";

	if (msg)
		trust_clean(clean, sizeof(clean), msg, strlen(msg));
	if (type)
		trust_clean(ctype, sizeof(ctype), type, strlen(type));
	return err_set(e, type && !strcmp(type, "overloaded_error") ?
		       ERR_OVERLOADED : type && !strcmp(type, "rate_limit_error") ?
		       ERR_RATE_LIMITED : ERR_UPSTREAM_ERROR,
		       "%s stream error: %s%s%s", llm_model(c)->provider,
		       *ctype ? ctype : "error", *clean ? ": " : "", clean);
}

static void block_start(struct llm_call *c, const struct event_view *v)
{
	struct answer *a = answer_of(c);
	const char *type = v->str[S_BLOCK_TYPE], *name = v->str[S_BLOCK_NAME];
	const char *id = v->str[S_BLOCK_ID];
	double idx = v->index;
	cJSON *d, *tc, *fn;

	if (!type || strcmp(type, "tool_use") || idx < 0 || idx >= MAX_BLOCKS)
		return;
	if (a->schema_tool && name && !strcmp(name, a->schema_tool)) {
		a->schema_block = (int)idx;
		return;
	}
	a->tool_of[(int)idx] = a->ntools++;
	if (llm_dialect(c) != DIALECT_OPENAI)
		return;
	d = cJSON_CreateObject();
	tc = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "tool_calls"), tc);
	cJSON_AddNumberToObject(tc, "index", a->tool_of[(int)idx]);
	cJSON_AddStringToObject(tc, "id", id ? id : "");
	cJSON_AddStringToObject(tc, "type", "function");
	fn = cJSON_AddObjectToObject(tc, "function");
	cJSON_AddStringToObject(fn, "name", name ? name : "");
	cJSON_AddStringToObject(fn, "arguments", "");
	emit_delta(c, d, NULL, 1);
}

static void text_out(struct llm_call *c, const char *text)
{
	cJSON *d;

	if (!text || !*text)
		return;
	llm_emit(c, text, strlen(text));
	if (llm_dialect(c) != DIALECT_OPENAI)
		return;
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "content", text);
	emit_delta(c, d, NULL, 1);
}

static void block_delta(struct llm_call *c, const struct event_view *v)
{
	struct answer *a = answer_of(c);
	const char *dt = v->str[S_DELTA_TYPE];
	double idx = v->index;

	if (!dt)
		return;
	if (!strcmp(dt, "text_delta")) {
		text_out(c, v->str[S_TEXT]);
	} else if (!strcmp(dt, "input_json_delta")) {
		const char *frag = v->str[S_PARTIAL_JSON];
		int i = idx >= 0 && idx < MAX_BLOCKS ? (int)idx : -1;

		if (i >= 0 && i == a->schema_block) {
			text_out(c, frag);
		} else if (i >= 0 && a->tool_of[i] >= 0 && frag && *frag &&
			   llm_dialect(c) == DIALECT_OPENAI) {
			cJSON *o = cJSON_CreateObject(), *tc = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "tool_calls"), tc);
			cJSON_AddNumberToObject(tc, "index", a->tool_of[i]);
			cJSON_AddStringToObject(cJSON_AddObjectToObject(tc, "function"),
						"arguments", frag);
			emit_delta(c, o, NULL, 1);
		}
	} else if (!strcmp(dt, "thinking_delta")) {
		const char *t = v->str[S_THINKING];
		if (t && *t) {
			llm_emit_reasoning(c, t, strlen(t));
			if (llm_dialect(c) == DIALECT_OPENAI) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "reasoning_content", t);
				emit_delta(c, o, NULL, 1);
			}
		}
	}
}

/* One event other than an error, of this type, read into v. */
static void on_event(struct llm_call *c, const struct sse_event *ev,
		     const char *type, const struct event_view *v)
{
	struct answer *a = answer_of(c);

	/* A caller that speaks Anthropic gets the event as it came. */
	if (llm_dialect(c) == DIALECT_ANTHROPIC && strcmp(type, "ping"))
		llm_emit_event(c, type, ev->data, ev->data_len,
			       !strcmp(type, "content_block_delta"));
	if (!strcmp(type, "message_start")) {
		/* A new attempt's answer: nothing of an earlier one counts. */
		for (int i = 0; i < MAX_BLOCKS; i++)
			a->tool_of[i] = -1;
		a->ntools = 0;
		a->schema_block = -1;
		a->in = a->out = a->cache_read = a->cache_write = 0;
		a->stop[0] = '\0';
		if (v->str[S_MSG_ID])
			snprintf(a->id, sizeof(a->id), "chatcmpl-%.100s", v->str[S_MSG_ID]);
		if (v->str[S_MSG_MODEL])
			snprintf(a->model, sizeof(a->model), "%s", v->str[S_MSG_MODEL]);
		read_usage(c, &v->usage[USAGE_MESSAGE]);
		if (llm_dialect(c) == DIALECT_OPENAI) {
			cJSON *d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "role", "assistant");
			cJSON_AddStringToObject(d, "content", "");
			emit_delta(c, d, NULL, 0);
		}
	} else if (!strcmp(type, "content_block_start")) {
		block_start(c, v);
	} else if (!strcmp(type, "content_block_delta")) {
		block_delta(c, v);
	} else if (!strcmp(type, "message_delta")) {
		const char *stop = v->str[S_STOP];
		read_usage(c, &v->usage[USAGE_TOP]);
		if (stop) {
			snprintf(a->stop, sizeof(a->stop), "%s", stop);
			llm_set_finish(c, finish_name(a, stop));
			if (llm_dialect(c) == DIALECT_OPENAI)
				emit_delta(c, cJSON_CreateObject(), finish_name(a, stop), 0);
		}
	} else if (!strcmp(type, "message_stop")) {
		llm_mark_complete(c);
		if (llm_dialect(c) == DIALECT_OPENAI && llm_wants_usage(c)) {
			cJSON *o = chunk(a, "chat.completion.chunk");
			cJSON_AddArrayToObject(o, "choices");
			cJSON_AddItemToObject(o, "usage", usage_object(a));
			llm_emit_openai(c, o, 0);
			cJSON_Delete(o);
		}
	}
}

/* An event for a caller that speaks Anthropic, skimmed: 0 when done, -1
 * to parse it. */
static int fast_event(struct llm_call *c, const struct sse_event *ev)
{
	struct answer *a = answer_of(c);
	struct event_view v;
	const char *type;

	if (skim_event(ev->data, ev->data_len, &a->scratch, &v) < 0)
		return -1;
	type = *ev->event ? ev->event : v.str[S_TYPE] ? v.str[S_TYPE] : "";
	if (!strcmp(type, "error"))
		return -1;
	on_event(c, ev, type, &v);
	return 0;
}

static int stream_event(struct llm_call *c, const struct sse_event *ev,
			struct err *e)
{
	struct event_view v;
	cJSON *root;
	const char *type;
	int rc = 0;

	if (ev->data_len == 0)
		return 0;
	if (anthropic_skim && llm_dialect(c) == DIALECT_ANTHROPIC &&
	    strcmp(ev->event, "error") && fast_event(c, ev) == 0)
		return 0;
	root = json_parse(ev->data, ev->data_len, NULL);
	if (!root)
		return llm_malformed(c, "JSON in stream", ev->data, ev->data_len, e);
	/* Its text reaches clients in aichat's own JSON (translated, or
	 * as /chat's deltas): valid UTF-8 only. */
	json_make_utf8(root);
	type = *ev->event ? ev->event : json_str(root, "type");
	if (!type)
		type = "";
	if (!strcmp(type, "error"))
		rc = error_event(c, root, e);
	else {
		view_of(root, &v);
		on_event(c, ev, type, &v);
	}
	cJSON_Delete(root);
	return rc;
}

/* A whole Anthropic message as an OpenAI chat completion. */
static void emit_completion(struct llm_call *c, const cJSON *root,
			    const char *text, const char *reasoning)
{
	struct answer *a = answer_of(c);
	cJSON *o = chunk(a, "chat.completion"), *ch = cJSON_CreateObject(), *m;
	cJSON *calls = cJSON_CreateArray();
	const cJSON *blk;
	int i = 0;

	cJSON_ArrayForEach(blk, json_arr(root, "content")) {
		const char *bt = json_str(blk, "type");
		cJSON *tc, *fn;
		char *args;

		i++;
		if (!bt || strcmp(bt, "tool_use") || (a->schema_tool && json_str(blk, "name") &&
						       !strcmp(json_str(blk, "name"), a->schema_tool)))
			continue;
		tc = cJSON_CreateObject();
		cJSON_AddStringToObject(tc, "id", json_str(blk, "id") ? json_str(blk, "id") : "");
		cJSON_AddStringToObject(tc, "type", "function");
		fn = cJSON_AddObjectToObject(tc, "function");
		cJSON_AddStringToObject(fn, "name", json_str(blk, "name") ? json_str(blk, "name") : "");
		args = json_print(cJSON_GetObjectItemCaseSensitive(blk, "input"));
		cJSON_AddStringToObject(fn, "arguments", args);
		free(args);
		cJSON_AddItemToArray(calls, tc);
	}
	(void)i;
	cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
	cJSON_AddNumberToObject(ch, "index", 0);
	m = cJSON_AddObjectToObject(ch, "message");
	cJSON_AddStringToObject(m, "role", "assistant");
	if (*text || !cJSON_GetArraySize(calls))
		cJSON_AddStringToObject(m, "content", text);
	else
		cJSON_AddNullToObject(m, "content");
	if (reasoning && *reasoning)
		cJSON_AddStringToObject(m, "reasoning_content", reasoning);
	cJSON_AddNullToObject(m, "refusal");
	if (cJSON_GetArraySize(calls))
		cJSON_AddItemToObject(m, "tool_calls", calls);
	else
		cJSON_Delete(calls);
	cJSON_AddStringToObject(ch, "finish_reason", a->stop[0] ?
				finish_name(a, a->stop) : "stop");
	cJSON_AddItemToObject(o, "usage", usage_object(a));
	llm_emit_openai(c, o, 1);
	cJSON_Delete(o);
}

/* ==== a whole answer ==== */

/* What aichat reads of a message body besides its content. */
static const struct member body_members[] = {
	{ "id", M_STR, S_MSG_ID, NULL },
	{ "model", M_STR, S_MSG_MODEL, NULL },
	{ "stop_reason", M_STR, S_STOP, NULL },
	{ "usage", M_OBJ, USAGE_TOP, usage_members },
	{ NULL, M_STR, 0, NULL },
};

enum { B_TYPE, B_TEXT, B_THINKING, B_COUNT };

/* What aichat reads of one content block (when no schema tool is asked
 * for, whose input would need the tree). */
static const struct member content_members[] = {
	{ "type", M_STR, B_TYPE, NULL },
	{ "text", M_STR, B_TEXT, NULL },
	{ "thinking", M_STR, B_THINKING, NULL },
	{ NULL, M_STR, 0, NULL },
};

/* The answer's text and reasoning, their blocks joined in order, and its
 * other members (the way the tree is read in parse_body()); 0, or -1:
 * take the full way (also for an error, or content that is not an
 * array). */
static int skim_body(const char *body, size_t len, struct buf *out,
		     struct event_view *v, struct buf *text, struct buf *reasoning)
{
	struct jscan s = { body, body + len };
	const char *name;
	size_t nlen, at[S_COUNT];
	int first = 1, rc, seen_content = 0, seen_error = 0, seen_usage = 0;

	view_init(v);
	buf_clear(out);
	for (int i = 0; i < S_COUNT; i++)
		at[i] = (size_t)-1;
	jscan_ws(&s);
	if (s.p >= s.end || *s.p != '{')
		return -1;
	s.p++;
	while ((rc = jscan_more(&s, '}', &first, &name, &nlen)) > 0) {
		if (jscan_named(name, nlen, "error")) {
			if (seen_error++ || *s.p == '{')
				return -1;
			rc = jscan_value(&s, 1);
		} else if (jscan_named(name, nlen, "content")) {
			int f2 = 1;

			if (seen_content++ || *s.p != '[')
				return -1;
			s.p++;
			while ((rc = jscan_more(&s, ']', &f2, NULL, NULL)) > 0) {
				size_t bat[B_COUNT] = { (size_t)-1, (size_t)-1, (size_t)-1 };
				size_t from = out->len;
				const char *type;

				if (*s.p != '{') {
					rc = jscan_value(&s, 2);   /* no members: read as none */
				} else if ((rc = skim_object(&s, content_members, 2, v, NULL,
							     out, bat)) == 0 && bat[B_TYPE] != (size_t)-1) {
					type = out->ptr + bat[B_TYPE];
					if (!strcmp(type, "text") && bat[B_TEXT] != (size_t)-1)
						buf_appends(text, out->ptr + bat[B_TEXT]);
					else if (!strcmp(type, "thinking") && bat[B_THINKING] != (size_t)-1)
						buf_appends(reasoning, out->ptr + bat[B_THINKING]);
				}
				if (rc < 0 || trust_utf8_invalid(out->ptr + from, out->len - from) >= 0)
					return -1;
				buf_truncate(out, from);
			}
		} else {
			/* The other members as an object of body_members. */
			const struct member *k = body_members;

			while (k->name && (k->name[0] != *name || !jscan_named(name, nlen, k->name)))
				k++;
			if (!k->name) {
				rc = jscan_value(&s, 1);
			} else if (k->kind == M_STR) {
				int have = 0;
				size_t from = out->len;

				if (at[k->slot] != (size_t)-1)
					return -1;       /* given twice */
				rc = jscan_text(&s, out, &have, 1);
				if (have) {
					at[k->slot] = from;
					buf_putc(out, '\0');
				} else {
					at[k->slot] = (size_t)-2;    /* seen, not a string */
				}
			} else {
				if (seen_usage++)
					return -1;       /* given twice */
				if (*s.p == '{')
					rc = skim_object(&s, usage_members, 1, v,
							 &v->usage[USAGE_TOP], out, at);
				else
					rc = jscan_value(&s, 1);
			}
		}
		if (rc < 0)
			return -1;
	}
	if (rc < 0 || !seen_content)
		return -1;
	jscan_ws(&s);
	if (s.p != s.end || trust_utf8_invalid(out->ptr, out->len) >= 0)
		return -1;
	for (int i = 0; i < S_COUNT; i++)
		if (at[i] < (size_t)-2)
			v->str[i] = out->ptr + at[i];
	return 0;
}

/* What parse_body() and fast_body() do alike once the answer is read. */
static void body_read(struct llm_call *c, const struct event_view *v,
		      const struct buf *text, const struct buf *reasoning)
{
	struct answer *a = answer_of(c);
	const char *stop = v->str[S_STOP];

	if (v->str[S_MSG_ID])
		snprintf(a->id, sizeof(a->id), "chatcmpl-%.100s", v->str[S_MSG_ID]);
	if (v->str[S_MSG_MODEL])
		snprintf(a->model, sizeof(a->model), "%s", v->str[S_MSG_MODEL]);
	if (reasoning->len)
		llm_emit_reasoning(c, reasoning->ptr, reasoning->len);
	llm_emit(c, text->ptr, text->len);
	if (stop) {
		snprintf(a->stop, sizeof(a->stop), "%s", stop);
		llm_set_finish(c, finish_name(a, stop));
	}
	read_usage(c, &v->usage[USAGE_TOP]);
}

/* A whole answer for a caller that speaks Anthropic, skimmed: 0 when
 * done, -1 to parse it. */
static int fast_body(struct llm_call *c, const char *body, size_t len)
{
	struct answer *a = answer_of(c);
	struct event_view v;
	struct buf text, reasoning;
	int rc = -1;

	buf_init(&text, 0);
	buf_init(&reasoning, 0);
	if (!a->schema_tool &&
	    skim_body(body, len, &a->scratch, &v, &text, &reasoning) == 0) {
		body_read(c, &v, &text, &reasoning);
		llm_emit_event(c, NULL, body, len, 1);
		llm_mark_complete(c);
		rc = 0;
	}
	buf_release(&text);
	buf_release(&reasoning);
	return rc;
}

static int parse_body(struct llm_call *c, const char *body, size_t len,
		      struct err *e)
{
	cJSON *root;
	struct answer *a;
	const cJSON *content, *blk;
	struct buf text, reasoning;
	struct event_view v;
	int rc = -1;

	if (anthropic_skim && llm_dialect(c) == DIALECT_ANTHROPIC &&
	    fast_body(c, body, len) == 0)
		return 0;
	root = json_parse(body, len, NULL);
	if (!root)
		return llm_malformed(c, "JSON answer", body, len, e);
	/* Its text reaches clients in aichat's own JSON (translated, or
	 * as /chat's deltas): valid UTF-8 only. */
	json_make_utf8(root);
	a = answer_of(c);
	buf_init(&text, 0);
	buf_init(&reasoning, 0);
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
		const char *bt = json_str(blk, "type"), *t = json_str(blk, "text");
		if (bt && !strcmp(bt, "text") && t) {
			buf_appends(&text, t);
		} else if (bt && !strcmp(bt, "thinking") && json_str(blk, "thinking")) {
			buf_appends(&reasoning, json_str(blk, "thinking"));
		} else if (bt && !strcmp(bt, "tool_use") && a->schema_tool &&
			   json_str(blk, "name") && !strcmp(json_str(blk, "name"), a->schema_tool)) {
			char *in = json_print(cJSON_GetObjectItemCaseSensitive(blk, "input"));
			buf_appends(&text, in);
			free(in);
		}
	}
	view_init(&v);
	view_from(root, body_members, &v, NULL);
	body_read(c, &v, &text, &reasoning);
	if (llm_dialect(c) == DIALECT_ANTHROPIC)
		llm_emit_event(c, NULL, body, len, 1);
	else if (llm_dialect(c) == DIALECT_OPENAI)
		emit_completion(c, root, text.ptr, reasoning.ptr);
	llm_mark_complete(c);
	rc = 0;
cleanup:
	buf_release(&text);
	buf_release(&reasoning);
	cJSON_Delete(root);
	return rc;
}

const struct provider_ops provider_anthropic = {
	.kind = "anthropic",
	.build = build,
	.headers = headers,
	.stream_event = stream_event,
	.parse_body = parse_body,
};
