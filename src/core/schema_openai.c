/*
 * schema_openai.c - the OpenAI chat completion request, in the shape
 * OpenAI documents: what /v1/chat/completions accepts; and Anthropic's
 * Messages request, what /v1/messages accepts.
 *
 * These tables check types, required fields, roles and content parts, and
 * the bounds OpenAI itself sets (temperature 0..2, top_p 0..1, penalties
 * -2..2, up to 4 stop sequences, 128 tools, 2048 embedding inputs); not
 * the seed's /chat limits.  The embeddings request (/v1/embeddings) is
 * here too.
 * The request's size is bounded by --max-body and its messages by
 * OPENAI_MAX_MESSAGES.  A field not named here is forwarded unchecked, so
 * a field OpenAI adds later still reaches the provider.  Where a value may
 * take several shapes (content: a string, parts or null), a check function
 * says which.
 */
#include "aichat/schema.h"

#include <stdio.h>
#include <string.h>

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define NB FIELD_NO_BOUND
/* Integers that must still fit a C int. */
#define INT_BOUND 2147483647.0

/* ==== shapes the tables cannot say ==== */

/* loc.field into dst; a path too long for an error's loc is cut there
 * anyway (struct verror). */
static void at(char *dst, size_t cap, const char *loc, const char *field)
{
	if (snprintf(dst, cap, "%s.%s", loc, field) >= (int)cap)
		dst[cap - 1] = '\0';
}

static int is_type(const cJSON *v, const char *type)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");

	return cJSON_IsString(t) && !strcmp(t->valuestring, type);
}

static const cJSON *member(const cJSON *v, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(v, name);
}

/* A string member that must be present. */
static int need_string(const cJSON *obj, const char *name, const char *loc,
		       struct verrors *out)
{
	const cJSON *v = member(obj, name);
	char where[192];

	at(where, sizeof(where), loc, name);
	if (!v) {
		verrors_add(out, where, NULL, "missing", "is required");
		return -1;
	}
	if (!cJSON_IsString(v)) {
		verrors_add(out, where, v, "string_type", "must be a string");
		return -1;
	}
	return 0;
}

static void check_url(const cJSON *url, const char *loc, struct verrors *out)
{
	const char *u = url->valuestring;

	if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8) &&
	    strncmp(u, "data:", 5))
		verrors_add(out, loc, url, "url_parsing",
			    "must be an http(s) URL or a data: URL");
	else if (!strncmp(u, "data:", 5) && !strstr(u, ";base64,"))
		verrors_add(out, loc, url, "url_parsing",
			    "must be a base64 data URL (data:TYPE;base64,...)");
}

/*
 * One content part.  allowed lists the part types this role may send.
 */
static void check_part(const cJSON *p, const char *loc, const char *role,
		       const char *const *allowed, struct verrors *out)
{
	const cJSON *t = member(p, "type"), *sub;
	char where[192], list[96] = "";
	int ok = 0;

	if (!cJSON_IsObject(p)) {
		verrors_add(out, loc, p, "model_type", "must be a JSON object");
		return;
	}
	at(where, sizeof(where), loc, "type");
	if (!cJSON_IsString(t)) {
		verrors_add(out, where, t, t ? "string_type" : "missing",
			    t ? "must be a string" : "is required");
		return;
	}
	for (const char *const *a = allowed; *a; a++) {
		ok |= !strcmp(*a, t->valuestring);
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
			 a == allowed ? "" : ", ", *a);
	}
	if (!ok) {
		verrors_add(out, where, t, "literal_error",
			    "must be one of: %s (in a %s message)", list, role);
		return;
	}
	if (is_type(p, "text")) {
		need_string(p, "text", loc, out);
	} else if (is_type(p, "refusal")) {
		need_string(p, "refusal", loc, out);
	} else if (is_type(p, "image_url")) {
		at(where, sizeof(where), loc, "image_url");
		sub = member(p, "image_url");
		if (!cJSON_IsObject(sub)) {
			verrors_add(out, where, sub, sub ? "model_type" : "missing",
				    sub ? "must be a JSON object" : "is required");
			return;
		}
		if (need_string(sub, "url", where, out) == 0) {
			char u[200];
			at(u, sizeof(u), where, "url");
			check_url(member(sub, "url"), u, out);
		}
		const cJSON *d = member(sub, "detail");
		if (d && (!cJSON_IsString(d) || (strcmp(d->valuestring, "auto") &&
		    strcmp(d->valuestring, "low") && strcmp(d->valuestring, "high")))) {
			char u[200];
			at(u, sizeof(u), where, "detail");
			verrors_add(out, u, d, "literal_error", "must be one of: auto, low, high");
		}
	} else if (is_type(p, "input_audio")) {
		at(where, sizeof(where), loc, "input_audio");
		sub = member(p, "input_audio");
		if (!cJSON_IsObject(sub)) {
			verrors_add(out, where, sub, sub ? "model_type" : "missing",
				    sub ? "must be a JSON object" : "is required");
			return;
		}
		need_string(sub, "data", where, out);
		need_string(sub, "format", where, out);
	} else if (is_type(p, "file")) {
		at(where, sizeof(where), loc, "file");
		sub = member(p, "file");
		if (!cJSON_IsObject(sub)) {
			verrors_add(out, where, sub, sub ? "model_type" : "missing",
				    sub ? "must be a JSON object" : "is required");
			return;
		}
		if (!cJSON_IsString(member(sub, "file_data")) &&
		    !cJSON_IsString(member(sub, "file_id")))
			verrors_add(out, where, sub, "missing",
				    "needs file_data (a base64 data URL) or file_id");
	}
}

static const char *const parts_user[] = { "text", "image_url", "input_audio",
					  "file", NULL };
static const char *const parts_text[] = { "text", NULL };
static const char *const parts_assistant[] = { "text", "refusal", NULL };

/* content: a string, an array of parts, or (assistant only) null. */
static void check_content(const cJSON *c, const char *loc, const char *role,
			  int may_be_null, struct verrors *out)
{
	const char *const *allowed = !strcmp(role, "user") ? parts_user :
		!strcmp(role, "assistant") ? parts_assistant : parts_text;
	const cJSON *p;
	char where[192];
	int i = 0;

	if (!c || cJSON_IsNull(c)) {
		if (!may_be_null)
			verrors_add(out, loc, c, "missing", c ?
				    "must not be null in a %s message" : "is required", role);
		return;
	}
	if (cJSON_IsString(c))
		return;
	if (!cJSON_IsArray(c)) {
		verrors_add(out, loc, c, "content_type",
			    "must be a string or an array of content parts");
		return;
	}
	cJSON_ArrayForEach(p, c) {
		if (snprintf(where, sizeof(where), "%s.%d", loc, i++) >= (int)sizeof(where))
			where[sizeof(where) - 1] = '\0';
		check_part(p, where, role, allowed, out);
	}
}

/* Rules across a message's fields, by role. */
static void check_message(const cJSON *m, const char *loc, struct verrors *out)
{
	const cJSON *role = member(m, "role");
	const char *r = role->valuestring;  /* the table checked it */
	char where[192];
	int calls = cJSON_GetArraySize(member(m, "tool_calls")) > 0 ||
		    cJSON_IsObject(member(m, "function_call")) ||
		    cJSON_IsObject(member(m, "audio"));

	at(where, sizeof(where), loc, "content");
	check_content(member(m, "content"), where, r,
		      !strcmp(r, "assistant") && (calls || member(m, "refusal")), out);
	if (!strcmp(r, "tool")) {
		at(where, sizeof(where), loc, "tool_call_id");
		if (!member(m, "tool_call_id"))
			verrors_add(out, where, NULL, "missing",
				    "is required in a tool message");
	}
	if (strcmp(r, "assistant") && member(m, "tool_calls")) {
		at(where, sizeof(where), loc, "tool_calls");
		verrors_add(out, where, member(m, "tool_calls"), "extra_forbidden",
			    "is allowed only in an assistant message");
	}
}

static void check_refusal(const cJSON *v, const char *loc, struct verrors *out)
{
	if (!cJSON_IsString(v) && !cJSON_IsNull(v))
		verrors_add(out, loc, v, "string_type", "must be a string or null");
}

/* stop: a string, up to 4 strings, or null. */
static void check_stop(const cJSON *v, const char *loc, struct verrors *out)
{
	const cJSON *s;

	if (cJSON_IsString(v) || cJSON_IsNull(v))
		return;
	if (!cJSON_IsArray(v)) {
		verrors_add(out, loc, v, "stop_type",
			    "must be a string or an array of strings");
		return;
	}
	if (cJSON_GetArraySize(v) > 4) {
		verrors_add(out, loc, v, "too_long",
			    "must have at most 4 items (got %d)", cJSON_GetArraySize(v));
		return;
	}
	cJSON_ArrayForEach(s, v)
		if (!cJSON_IsString(s)) {
			verrors_add(out, loc, s, "string_type",
				    "must hold only strings");
			return;
		}
}

/* tool_choice: none, auto, required, or {"type":"function","function":{"name":..}}. */
static void check_tool_choice(const cJSON *v, const char *loc,
			      struct verrors *out)
{
	const cJSON *fn;
	char where[192];

	if (cJSON_IsNull(v))
		return;
	if (cJSON_IsString(v)) {
		if (strcmp(v->valuestring, "none") && strcmp(v->valuestring, "auto") &&
		    strcmp(v->valuestring, "required"))
			verrors_add(out, loc, v, "literal_error",
				    "must be one of: none, auto, required, or an object naming a function");
		return;
	}
	if (!cJSON_IsObject(v)) {
		verrors_add(out, loc, v, "tool_choice_type",
			    "must be a string or an object naming a function");
		return;
	}
	at(where, sizeof(where), loc, "type");
	if (!is_type(v, "function")) {
		verrors_add(out, where, member(v, "type"), "literal_error",
			    "must be \"function\"");
		return;
	}
	fn = member(v, "function");
	at(where, sizeof(where), loc, "function");
	if (!cJSON_IsObject(fn)) {
		verrors_add(out, where, fn, fn ? "model_type" : "missing",
			    fn ? "must be a JSON object" : "is required");
		return;
	}
	need_string(fn, "name", where, out);
}

/* A name or an id both APIs restrict to a-z, A-Z, 0-9, _ and - (a
 * function or tool name, a tool call's id): anything else would be
 * refused upstream, and would reach logs and terminals as it is. */
static void check_ident(const cJSON *v, const char *loc, struct verrors *out)
{
	const char *p = v->valuestring;

	if (!*p) {
		verrors_add(out, loc, v, "string_too_short",
			    "must not be empty");
		return;
	}
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
			verrors_add(out, loc, v, "string_pattern_mismatch",
				    "must hold only letters, digits, '_' and '-'");
			return;
		}
}

/* A function name: 1..64 of a-z, A-Z, 0-9, _ and -, as OpenAI requires
 * (the length is the table's). */
static void check_function_name(const cJSON *v, const char *loc,
				struct verrors *out)
{
	check_ident(v, loc, out);
}

/* A string member that must be present and be an identifier. */
static void need_ident(const cJSON *obj, const char *name, const char *loc,
		       struct verrors *out)
{
	char where[192];

	if (need_string(obj, name, loc, out) < 0)
		return;
	at(where, sizeof(where), loc, name);
	check_ident(member(obj, name), where, out);
}

static void check_json_schema_format(const cJSON *rf, const char *loc,
				     struct verrors *out)
{
	char where[192];

	at(where, sizeof(where), loc, "json_schema");
	if (is_type(rf, "json_schema") && !member(rf, "json_schema"))
		verrors_add(out, where, NULL, "missing",
			    "is required when type is json_schema");
}

/* modalities: an array of strings. */
static void check_strings(const cJSON *v, const char *loc, struct verrors *out)
{
	const cJSON *s;

	if (cJSON_IsNull(v))
		return;
	if (!cJSON_IsArray(v)) {
		verrors_add(out, loc, v, "list_type", "must be an array of strings");
		return;
	}
	cJSON_ArrayForEach(s, v)
		if (!cJSON_IsString(s)) {
			verrors_add(out, loc, s, "string_type", "must hold only strings");
			return;
		}
}

/* ==== the tables ==== */

static const char *const openai_roles[] = { "system", "developer", "user",
					     "assistant", "tool", "function", NULL };

static const struct field function_call_fields[] = {
	{ "name", FIELD_STRING, 1, NULL, 1, 64, NULL, NULL, "the function called" },
	{ "arguments", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "its arguments, as JSON text" },
};

static const struct schema schema_function_call = {
	"FunctionCall", function_call_fields, NFIELDS(function_call_fields)
};

static const char *const function_type[] = { "function", NULL };

static const struct field tool_call_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, 1, NB, NULL, NULL, "the call's id" },
	{ "type", FIELD_STRING, 1, NULL, NB, NB, function_type, NULL, "function" },
	{ "function", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_function_call,
	  "the function and its arguments" },
};

const struct schema schema_openai_tool_call = {
	"ToolCall", tool_call_fields, NFIELDS(tool_call_fields)
};

static const struct field openai_message_fields[] = {
	{ "role", FIELD_STRING, 1, NULL, NB, NB, openai_roles, NULL,
	  "system, developer, user, assistant or tool" },
	{ "content", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "a string, an array of content parts (text, image_url, input_audio, file), "
	  "or null in an assistant message with tool_calls" },
	{ "name", FIELD_STRING, 0, NULL, 1, 64, NULL, NULL,
	  "the participant's name" },
	{ "tool_call_id", FIELD_STRING, 0, NULL, 1, NB, NULL, NULL,
	  "tool messages: the call this answers" },
	{ "tool_calls", FIELD_ARRAY, 0, NULL, NB, NB, NULL, &schema_openai_tool_call,
	  "assistant messages: the tools the model called" },
	{ "refusal", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "assistant messages: a refusal" },
};

const struct schema schema_openai_message = {
	"ChatCompletionMessage", openai_message_fields,
	NFIELDS(openai_message_fields)
};

static const struct field function_fields[] = {
	{ "name", FIELD_STRING, 1, NULL, 1, 64, NULL, NULL,
	  "the function's name: letters, digits, _ and -" },
	{ "description", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "what it does, for the model" },
	{ "parameters", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "its arguments, as a JSON Schema" },
	{ "strict", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "follow the schema exactly" },
};

static const struct schema schema_function = {
	"FunctionDefinition", function_fields, NFIELDS(function_fields)
};

static const struct field tool_fields[] = {
	{ "type", FIELD_STRING, 1, NULL, NB, NB, function_type, NULL, "function" },
	{ "function", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_function,
	  "the function the model may call" },
};

const struct schema schema_openai_tool = {
	"Tool", tool_fields, NFIELDS(tool_fields)
};

static const struct field json_schema_fields[] = {
	{ "name", FIELD_STRING, 1, NULL, 1, 64, NULL, NULL,
	  "the format's name" },
	{ "description", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "what the format is for" },
	{ "schema", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "the answer's JSON Schema" },
	{ "strict", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "follow the schema exactly" },
};

static const struct schema schema_json_schema = {
	"JSONSchemaFormat", json_schema_fields, NFIELDS(json_schema_fields)
};

static const char *const format_types[] = { "text", "json_object",
					     "json_schema", NULL };

static const struct field response_format_fields[] = {
	{ "type", FIELD_STRING, 1, NULL, NB, NB, format_types, NULL,
	  "text, json_object or json_schema" },
	{ "json_schema", FIELD_OBJECT, 0, NULL, NB, NB, NULL, &schema_json_schema,
	  "the schema, with type json_schema" },
};

const struct schema schema_openai_response_format = {
	"ResponseFormat", response_format_fields, NFIELDS(response_format_fields)
};

static const struct field stream_options_fields[] = {
	{ "include_usage", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "send a last chunk with token usage" },
};

const struct schema schema_openai_stream_options = {
	"StreamOptions", stream_options_fields, NFIELDS(stream_options_fields)
};

static const struct field openai_chat_fields[] = {
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name (default: the server's -m)" },
	{ "messages", FIELD_ARRAY, 1, NULL, 1, OPENAI_MAX_MESSAGES, NULL,
	  &schema_openai_message, "the conversation so far, oldest first" },
	{ "temperature", FIELD_NUMBER, 0, NULL, 0, 2, NULL, NULL,
	  "sampling temperature" },
	{ "top_p", FIELD_NUMBER, 0, NULL, 0, 1, NULL, NULL,
	  "nucleus sampling mass" },
	{ "n", FIELD_INTEGER, 0, NULL, 1, 128, NULL, NULL,
	  "answers to generate" },
	{ "max_tokens", FIELD_INTEGER, 0, NULL, 1, INT_BOUND, NULL, NULL,
	  "upper bound on tokens generated" },
	{ "max_completion_tokens", FIELD_INTEGER, 0, NULL, 1, INT_BOUND, NULL, NULL,
	  "upper bound on tokens generated, reasoning included" },
	{ "stream", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "stream chat.completion.chunk objects as Server-Sent Events" },
	{ "stream_options", FIELD_OBJECT, 0, NULL, NB, NB, NULL,
	  &schema_openai_stream_options, "options of the stream" },
	{ "stop", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "up to 4 sequences where the answer stops" },
	{ "seed", FIELD_INTEGER, 0, NULL, NB, NB, NULL, NULL,
	  "for repeatable sampling (forwarded as written, never converted)" },
	{ "presence_penalty", FIELD_NUMBER, 0, NULL, -2, 2, NULL, NULL,
	  "penalty for tokens already present" },
	{ "frequency_penalty", FIELD_NUMBER, 0, NULL, -2, 2, NULL, NULL,
	  "penalty by token frequency" },
	{ "logit_bias", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "token id -> bias" },
	{ "logprobs", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "return log probabilities" },
	{ "top_logprobs", FIELD_INTEGER, 0, NULL, 0, 20, NULL, NULL,
	  "most likely tokens per position" },
	{ "tools", FIELD_ARRAY, 0, NULL, 0, 128, NULL, &schema_openai_tool,
	  "functions the model may call" },
	{ "tool_choice", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "none, auto, required, or a function to call" },
	{ "parallel_tool_calls", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "allow several tool calls in one answer" },
	{ "response_format", FIELD_OBJECT, 0, NULL, NB, NB, NULL,
	  &schema_openai_response_format, "text, json_object or json_schema" },
	{ "user", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "the end user's id" },
	{ "metadata", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "key-value pairs for the provider" },
	{ "reasoning_effort", FIELD_STRING, 0, NULL, 1, 32, NULL, NULL,
	  "reasoning models: how hard to think (minimal, low, medium, high)" },
	{ "modalities", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "output types: [\"text\"], [\"text\", \"audio\"]" },
	{ "prediction", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "predicted output" },
	{ "service_tier", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "processing tier" },
	{ "store", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "let the provider store the completion" },
	{ "thinking", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "Anthropic models: {\"type\":\"enabled\",\"budget_tokens\":N}" },
};

const struct schema schema_openai_chat_request = {
	"ChatCompletionRequest", openai_chat_fields, NFIELDS(openai_chat_fields)
};

/* ==== the Anthropic Messages request (/v1/messages) ==== */

/* One content block: its type, and what a known type requires.  Types
 * this table does not know pass: the Anthropic API judges them. */
static void check_block(const cJSON *b, const char *loc, const char *role,
			struct verrors *out)
{
	const cJSON *t = member(b, "type");
	char where[192];

	if (!cJSON_IsObject(b)) {
		verrors_add(out, loc, b, "model_type", "must be a JSON object");
		return;
	}
	at(where, sizeof(where), loc, "type");
	if (!cJSON_IsString(t)) {
		verrors_add(out, where, t, t ? "string_type" : "missing",
			    t ? "must be a string" : "is required");
		return;
	}
	if (is_type(b, "text")) {
		need_string(b, "text", loc, out);
	} else if (is_type(b, "image") || is_type(b, "document")) {
		const cJSON *src = member(b, "source");
		at(where, sizeof(where), loc, "source");
		if (!cJSON_IsObject(src))
			verrors_add(out, where, src, src ? "model_type" : "missing",
				    src ? "must be a JSON object" : "is required");
		else
			need_string(src, "type", where, out);
	} else if (is_type(b, "tool_use")) {
		if (strcmp(role, "assistant"))
			verrors_add(out, where, t, "literal_error",
				    "tool_use is allowed only in an assistant message");
		need_ident(b, "id", loc, out);
		need_ident(b, "name", loc, out);
		at(where, sizeof(where), loc, "input");
		if (!cJSON_IsObject(member(b, "input")))
			verrors_add(out, where, member(b, "input"), "model_type",
				    "must be a JSON object");
	} else if (is_type(b, "tool_result")) {
		const cJSON *c = member(b, "content");
		if (strcmp(role, "user"))
			verrors_add(out, where, t, "literal_error",
				    "tool_result is allowed only in a user message");
		need_ident(b, "tool_use_id", loc, out);
		at(where, sizeof(where), loc, "content");
		if (c && !cJSON_IsString(c) && !cJSON_IsArray(c))
			verrors_add(out, where, c, "content_type",
				    "must be a string or an array of blocks");
	}
}

static void check_blocks(const cJSON *c, const char *loc, const char *role,
			 struct verrors *out)
{
	const cJSON *b;
	char where[192];
	int i = 0;

	if (cJSON_IsString(c))
		return;
	if (!cJSON_IsArray(c)) {
		verrors_add(out, loc, c, "content_type",
			    "must be a string or an array of content blocks");
		return;
	}
	cJSON_ArrayForEach(b, c) {
		if (snprintf(where, sizeof(where), "%s.%d", loc, i++) >= (int)sizeof(where))
			where[sizeof(where) - 1] = '\0';
		check_block(b, where, role, out);
	}
}

/* The blocks are checked with the message, which knows the role. */
static void check_anthropic_message_content(const cJSON *v, const char *loc,
					    struct verrors *out)
{
	if (!cJSON_IsString(v) && !cJSON_IsArray(v))
		verrors_add(out, loc, v, "content_type",
			    "must be a string or an array of content blocks");
}

static void check_anthropic_message(const cJSON *m, const char *loc,
				    struct verrors *out)
{
	char where[192];

	at(where, sizeof(where), loc, "content");
	check_blocks(member(m, "content"), where, member(m, "role")->valuestring, out);
}

/* system: a string or text blocks. */
static void check_system(const cJSON *v, const char *loc, struct verrors *out)
{
	check_blocks(v, loc, "system", out);
}

static void check_anthropic_tool_choice(const cJSON *v, const char *loc,
					struct verrors *out)
{
	const cJSON *t = member(v, "type");
	char where[192];

	at(where, sizeof(where), loc, "type");
	if (!cJSON_IsString(t) || (strcmp(t->valuestring, "auto") &&
	    strcmp(t->valuestring, "any") && strcmp(t->valuestring, "tool") &&
	    strcmp(t->valuestring, "none"))) {
		verrors_add(out, where, t, t ? "literal_error" : "missing",
			    t ? "must be one of: auto, any, tool, none" : "is required");
		return;
	}
	if (!strcmp(t->valuestring, "tool"))
		need_ident(v, "name", loc, out);
}

static const char *const anthropic_roles[] = { "user", "assistant", NULL };

static const struct field anthropic_message_fields[] = {
	{ "role", FIELD_STRING, 1, NULL, NB, NB, anthropic_roles, NULL,
	  "user or assistant" },
	{ "content", FIELD_ANY, 1, NULL, NB, NB, NULL, NULL,
	  "a string or an array of content blocks (text, image, document, "
	  "tool_use, tool_result, ...)" },
};

const struct schema schema_anthropic_message = {
	"AnthropicMessage", anthropic_message_fields,
	NFIELDS(anthropic_message_fields)
};

static const struct field anthropic_tool_fields[] = {
	{ "name", FIELD_STRING, 1, NULL, 1, 128, NULL, NULL, "the tool's name" },
	{ "description", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "what it does, for the model" },
	{ "input_schema", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "its input, as a JSON Schema" },
};

static const struct schema schema_anthropic_tool = {
	"AnthropicTool", anthropic_tool_fields, NFIELDS(anthropic_tool_fields)
};

static const struct field anthropic_fields[] = {
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name (default: the server's -m)" },
	{ "max_tokens", FIELD_INTEGER, 1, NULL, 1, INT_BOUND, NULL, NULL,
	  "upper bound on tokens generated" },
	{ "messages", FIELD_ARRAY, 1, NULL, 1, OPENAI_MAX_MESSAGES, NULL,
	  &schema_anthropic_message, "the conversation so far, oldest first" },
	{ "system", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "system prompt: a string or text blocks" },
	{ "stop_sequences", FIELD_ANY, 0, NULL, NB, NB, NULL, NULL,
	  "strings where the answer stops" },
	{ "stream", FIELD_BOOL, 0, NULL, NB, NB, NULL, NULL,
	  "stream the answer as Anthropic's Server-Sent Events" },
	{ "temperature", FIELD_NUMBER, 0, NULL, 0, 1, NULL, NULL,
	  "sampling temperature" },
	{ "top_p", FIELD_NUMBER, 0, NULL, 0, 1, NULL, NULL, "nucleus sampling mass" },
	{ "top_k", FIELD_INTEGER, 0, NULL, 0, INT_BOUND, NULL, NULL,
	  "sample from the k most likely tokens" },
	{ "tools", FIELD_ARRAY, 0, NULL, NB, NB, NULL, &schema_anthropic_tool,
	  "tools the model may use" },
	{ "tool_choice", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "auto, any, tool (with name) or none" },
	{ "metadata", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "{\"user_id\": ...}" },
	{ "thinking", FIELD_OBJECT, 0, NULL, NB, NB, NULL, NULL,
	  "{\"type\":\"enabled\",\"budget_tokens\":N}" },
};

const struct schema schema_anthropic_request = {
	"AnthropicMessagesRequest", anthropic_fields, NFIELDS(anthropic_fields)
};

/* ==== the OpenAI embeddings request (/v1/embeddings) ==== */

/* A token id: a whole number >= 0 that fits an int. */
static int is_token(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 &&
	       v->valuedouble <= INT_BOUND &&
	       v->valuedouble == (double)(long long)v->valuedouble;
}

/* An array of token ids, not empty. */
static int check_tokens(const cJSON *v, const char *loc, struct verrors *out)
{
	const cJSON *t;

	if (!cJSON_GetArraySize(v)) {
		verrors_add(out, loc, v, "too_short", "must not be empty");
		return -1;
	}
	cJSON_ArrayForEach(t, v)
		if (!is_token(t)) {
			verrors_add(out, loc, t, "int_type",
				    "must hold only token ids (integers >= 0)");
			return -1;
		}
	return 0;
}

/*
 * input: a string, an array of strings, an array of token ids, or an
 * array of such arrays; 1..EMBED_INPUT_MAX inputs, none empty, one kind
 * per request, as OpenAI takes it.
 */
static void check_embedding_input(const cJSON *v, const char *loc,
				  struct verrors *out)
{
	const cJSON *first = cJSON_IsArray(v) ? v->child : NULL, *it;
	char where[192];
	int n = cJSON_GetArraySize(v), i = 0;

	if (cJSON_IsString(v)) {
		if (!*v->valuestring)
			verrors_add(out, loc, v, "string_too_short", "must not be empty");
		return;
	}
	if (!cJSON_IsArray(v)) {
		verrors_add(out, loc, v, "input_type",
			    "must be a string, an array of strings, or token ids");
		return;
	}
	if (n < 1 || n > EMBEDDINGS_MAX_INPUTS) {
		verrors_add(out, loc, v, n ? "too_long" : "too_short",
			    "must have 1..%d items (got %d)", EMBEDDINGS_MAX_INPUTS, n);
		return;
	}
	if (is_token(first)) {
		check_tokens(v, loc, out);
		return;
	}
	cJSON_ArrayForEach(it, v) {
		if (snprintf(where, sizeof(where), "%s.%d", loc, i++) >= (int)sizeof(where))
			where[sizeof(where) - 1] = '\0';
		if (cJSON_IsArray(first) && cJSON_IsArray(it)) {
			if (check_tokens(it, where, out) < 0)
				return;
		} else if (cJSON_IsString(first) && cJSON_IsString(it)) {
			if (!*it->valuestring) {
				verrors_add(out, where, it, "string_too_short",
					    "must not be empty");
				return;
			}
		} else {
			verrors_add(out, where, it, "input_type", cJSON_IsArray(first) ?
				    "must be an array of token ids, like the first input" :
				    cJSON_IsString(first) ? "must be a string, like the first input" :
				    "must be a string or an array of token ids");
			return;
		}
	}
}

static const char *const encoding_formats[] = { "float", "base64", NULL };

static const struct field embeddings_fields[] = {
	{ "model", FIELD_STRING, 1, NULL, 1, 200, NULL, NULL,
	  "an embedding model: provider:model of an OpenAI-compatible provider "
	  "(openai, ollama, a config provider of kind openai), an alias, or "
	  "mock:embed; required (the server's -m is a chat model)" },
	{ "input", FIELD_ANY, 1, NULL, NB, NB, NULL, NULL,
	  "the text to embed: a string, an array of 1..2048 strings, an array "
	  "of token ids, or an array of arrays of token ids" },
	{ "encoding_format", FIELD_STRING, 0, NULL, NB, NB, encoding_formats, NULL,
	  "float (the provider's default) or base64 (little-endian float32)" },
	{ "dimensions", FIELD_INTEGER, 0, NULL, 1, INT_BOUND, NULL, NULL,
	  "the length of each embedding, for models that can shorten theirs" },
	{ "user", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "the end user's id" },
};

const struct schema schema_openai_embeddings_request = {
	"EmbeddingsRequest", embeddings_fields, NFIELDS(embeddings_fields)
};

/* ==== the checks, by schema and field ==== */

/* /conversation takes its prompt and system prompt as messages only: a
 * "prompt" or "system" there would either be ignored or, read, bypass
 * the messages' bounds, so it is refused. */
static void check_conversation(const cJSON *o, const char *loc,
			       struct verrors *out)
{
	static const struct {
		const char *name, *msg;
	} moved[] = {
		{ "prompt", "is not a field of ConversationRequest: send it as a message with role user" },
		{ "system", "is not a field of ConversationRequest: send it as a message with role system" },
	};
	char where[192];

	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++) {
		if (!member(o, moved[i].name))
			continue;
		if (*loc)
			at(where, sizeof(where), loc, moved[i].name);
		else
			snprintf(where, sizeof(where), "%s", moved[i].name);
		verrors_add(out, where, member(o, moved[i].name), "extra_forbidden",
			    "%s", moved[i].msg);
	}
}

const struct schema_check schema_checks[] = {
	{ &schema_conversation_request, NULL, check_conversation, NULL },
	{ &schema_openai_message, "content", NULL, "string|array|null" },
	{ &schema_openai_message, "refusal", check_refusal, "string|null" },
	{ &schema_openai_message, NULL, check_message, NULL },
	{ &schema_function, "name", check_function_name, NULL },
	{ &schema_json_schema, "name", check_function_name, NULL },
	{ &schema_openai_response_format, NULL, check_json_schema_format, NULL },
	{ &schema_openai_chat_request, "stop", check_stop, "string|array|null" },
	{ &schema_openai_chat_request, "tool_choice", check_tool_choice,
	  "string|object|null" },
	{ &schema_openai_chat_request, "modalities", check_strings, "array|null" },
	{ &schema_anthropic_message, "content", check_anthropic_message_content,
	  "string|array" },
	{ &schema_anthropic_message, NULL, check_anthropic_message, NULL },
	{ &schema_anthropic_request, "system", check_system, "string|array" },
	{ &schema_anthropic_request, "stop_sequences", check_strings, "array" },
	{ &schema_anthropic_request, "tool_choice", check_anthropic_tool_choice, NULL },
	{ &schema_anthropic_tool, "name", check_function_name, NULL },
	{ &schema_openai_embeddings_request, "input", check_embedding_input,
	  "string|array" },
	{ NULL, NULL, NULL, NULL },
};
