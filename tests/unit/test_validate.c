/*
 * test_validate.c - unit tests for request validation (src/core/validate.c
 * against the tables of src/core/schema.c).
 *
 * Table-driven: each case is a JSON body, the schema it is checked
 * against, every error it must give (loc, field, value, msg, type, in
 * order) and what some fields must hold afterwards, so that defaults filled
 * in for absent or null optional fields are checked too.  Bodies too big to
 * write out (32000-character prompts, 51 messages) are built at run time.
 */
#include "aichat/buf.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"
#include "tap.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#define CHAT (&schema_chat_request)
#define CONV (&schema_conversation_request)

struct want_err {
	const char *loc, *field, *value, *msg, *type;
};

/* A field after validation: its compact JSON, or NULL for absent. */
struct kv {
	const char *key;
	const char *json;
};

struct vcase {
	const char *name;
	const struct schema *s;
	const char *body;
	struct want_err errs[6];        /* ends with a NULL loc */
	struct kv after[6];             /* ends with a NULL key */
};

#define E(loc, field, value, msg, type) { loc, field, value, msg, type }

static const struct vcase cases[] = {
	/* ---- ChatRequest: valid bodies and defaults ---- */
	{ "chat: prompt only gets the defaults", CHAT,
	  "{\"prompt\":\"hi\"}", .errs = { { NULL } },
	  .after = { { "prompt", "\"hi\"" }, { "temperature", "0.7" },
	    { "stream", "false" }, { "max_tokens", NULL }, { "model", NULL } } },
	{ "chat: null optional fields get the defaults or go", CHAT,
	  "{\"prompt\":\"hi\",\"temperature\":null,\"stream\":null,"
	  "\"max_tokens\":null,\"model\":null,\"system\":null}", .errs = { { NULL } },
	  .after = { { "temperature", "0.7" }, { "stream", "false" },
	    { "max_tokens", NULL }, { "model", NULL }, { "system", NULL } } },
	{ "chat: values at the bounds", CHAT,
	  "{\"prompt\":\"x\",\"temperature\":0,\"max_tokens\":1,\"stream\":true}",
	  .errs = { { NULL } },
	  .after = { { "temperature", "0" }, { "max_tokens", "1" }, { "stream", "true" } } },
	{ "chat: upper bounds", CHAT,
	  "{\"prompt\":\"x\",\"temperature\":2,\"max_tokens\":16384}",
	  .errs = { { NULL } }, .after = { { "temperature", "2" }, { "max_tokens", "16384" } } },
	{ "chat: integral float is an integer", CHAT,
	  "{\"prompt\":\"x\",\"max_tokens\":100.0}", .errs = { { NULL } },
	  .after = { { "max_tokens", "100" } } },
	{ "chat: unknown fields are left alone", CHAT,
	  "{\"prompt\":\"x\",\"top_p\":\"weird\"}", .errs = { { NULL } },
	  .after = { { "top_p", "\"weird\"" } } },

	/* ---- ChatRequest: one bad field ---- */
	{ "chat: missing prompt", CHAT, "{}",
	  .errs = { E("prompt", "prompt", "", "is required", "missing") },
	  .after = { { "temperature", "0.7" } } },
	{ "chat: null prompt", CHAT, "{\"prompt\":null}",
	  .errs = { E("prompt", "prompt", "null", "must be a string", "string_type") } },
	{ "chat: empty prompt", CHAT, "{\"prompt\":\"\"}",
	  .errs = { E("prompt", "prompt", "", "must be at least 1 character",
	      "string_too_short") } },
	{ "chat: number for the prompt", CHAT, "{\"prompt\":42}",
	  .errs = { E("prompt", "prompt", "42", "must be a string", "string_type") } },
	{ "chat: array for the prompt", CHAT, "{\"prompt\":[\"a\",\"b\"]}",
	  .errs = { E("prompt", "prompt", "[\"a\",\"b\"]", "must be a string",
	      "string_type") } },
	{ "chat: temperature above 2", CHAT, "{\"prompt\":\"x\",\"temperature\":2.5}",
	  .errs = { E("temperature", "temperature", "2.5", "must be <= 2",
	      "less_than_equal") }, .after = { { "temperature", "2.5" } } },
	{ "chat: negative temperature", CHAT,
	  "{\"prompt\":\"x\",\"temperature\":-0.1}",
	  .errs = { E("temperature", "temperature", "-0.1", "must be >= 0",
	      "greater_than_equal") } },
	{ "chat: string for the temperature", CHAT,
	  "{\"prompt\":\"x\",\"temperature\":\"0.5\"}",
	  .errs = { E("temperature", "temperature", "0.5", "must be a number",
	      "float_type") } },
	{ "chat: bool for the temperature", CHAT,
	  "{\"prompt\":\"x\",\"temperature\":true}",
	  .errs = { E("temperature", "temperature", "true", "must be a number",
	      "float_type") } },
	{ "chat: fractional max_tokens", CHAT, "{\"prompt\":\"x\",\"max_tokens\":1.5}",
	  .errs = { E("max_tokens", "max_tokens", "1.5", "must be an integer",
	      "int_type") } },
	{ "chat: zero max_tokens", CHAT, "{\"prompt\":\"x\",\"max_tokens\":0}",
	  .errs = { E("max_tokens", "max_tokens", "0", "must be >= 1",
	      "greater_than_equal") } },
	{ "chat: negative max_tokens", CHAT, "{\"prompt\":\"x\",\"max_tokens\":-5}",
	  .errs = { E("max_tokens", "max_tokens", "-5", "must be >= 1",
	      "greater_than_equal") } },
	{ "chat: max_tokens one past the bound", CHAT,
	  "{\"prompt\":\"x\",\"max_tokens\":16385}",
	  .errs = { E("max_tokens", "max_tokens", "16385", "must be <= 16384",
	      "less_than_equal") } },
	{ "chat: huge integral max_tokens is out of bounds", CHAT,
	  "{\"prompt\":\"x\",\"max_tokens\":1e20}",
	  .errs = { E("max_tokens", "max_tokens", "1e+20", "must be <= 16384",
	      "less_than_equal") } },
	{ "chat: string for max_tokens", CHAT,
	  "{\"prompt\":\"x\",\"max_tokens\":\"100\"}",
	  .errs = { E("max_tokens", "max_tokens", "100", "must be an integer",
	      "int_type") } },
	{ "chat: string for stream", CHAT, "{\"prompt\":\"x\",\"stream\":\"yes\"}",
	  .errs = { E("stream", "stream", "yes", "must be true or false", "bool_type") } },
	{ "chat: number for stream", CHAT, "{\"prompt\":\"x\",\"stream\":1}",
	  .errs = { E("stream", "stream", "1", "must be true or false", "bool_type") } },
	{ "chat: number for the model", CHAT, "{\"prompt\":\"x\",\"model\":4}",
	  .errs = { E("model", "model", "4", "must be a string", "string_type") } },
	{ "chat: empty system", CHAT, "{\"prompt\":\"x\",\"system\":\"\"}",
	  .errs = { E("system", "system", "", "must be at least 1 character",
	      "string_too_short") } },
	{ "chat: control characters in the value are blanked", CHAT,
	  "{\"prompt\":\"x\",\"stream\":\"a\\nb\\tc\"}",
	  .errs = { E("stream", "stream", "a b c", "must be true or false",
	      "bool_type") } },

	/* ---- ChatRequest: not an object, several errors ---- */
	{ "chat: array body", CHAT, "[1,2]",
	  .errs = { E("body", "body", "[1,2]", "must be a JSON object", "model_type") } },
	{ "chat: string body", CHAT, "\"hello\"",
	  .errs = { E("body", "body", "hello", "must be a JSON object", "model_type") } },
	{ "chat: null body", CHAT, "null",
	  .errs = { E("body", "body", "null", "must be a JSON object", "model_type") } },
	{ "chat: number body", CHAT, "3",
	  .errs = { E("body", "body", "3", "must be a JSON object", "model_type") } },
	{ "chat: every field wrong at once", CHAT,
	  "{\"stream\":\"no\",\"max_tokens\":0,\"temperature\":9,"
	  "\"model\":\"\",\"prompt\":\"\"}",
	  .errs = { E("prompt", "prompt", "", "must be at least 1 character",
	      "string_too_short"),
	    E("model", "model", "", "must be at least 1 character",
	      "string_too_short"),
	    E("temperature", "temperature", "9", "must be <= 2",
	      "less_than_equal"),
	    E("max_tokens", "max_tokens", "0", "must be >= 1",
	      "greater_than_equal"),
	    E("stream", "stream", "no", "must be true or false", "bool_type") } },
	{ "chat: missing prompt and wrong types", CHAT,
	  "{\"temperature\":\"hot\",\"max_tokens\":2.5}",
	  .errs = { E("prompt", "prompt", "", "is required", "missing"),
	    E("temperature", "temperature", "hot", "must be a number",
	      "float_type"),
	    E("max_tokens", "max_tokens", "2.5", "must be an integer",
	      "int_type") } },

	/* ---- ConversationRequest ---- */
	{ "conversation: valid, defaults", CONV,
	  "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
	  "{\"role\":\"user\",\"content\":\"hi\"},"
	  "{\"role\":\"assistant\",\"content\":\"hello\"}]}", .errs = { { NULL } },
	  .after = { { "stream", "true" }, { "temperature", "0.7" },
	    { "max_tokens", NULL } } },
	{ "conversation: stream false kept", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":false}",
	  .errs = { { NULL } }, .after = { { "stream", "false" } } },
	{ "conversation: null stream gets the default", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":null}",
	  .errs = { { NULL } }, .after = { { "stream", "true" } } },
	{ "conversation: missing messages", CONV, "{}",
	  .errs = { E("messages", "messages", "", "is required", "missing") } },
	{ "conversation: null messages", CONV, "{\"messages\":null}",
	  .errs = { E("messages", "messages", "null", "must be an array", "list_type") } },
	{ "conversation: messages not an array", CONV, "{\"messages\":\"hi\"}",
	  .errs = { E("messages", "messages", "hi", "must be an array", "list_type") } },
	{ "conversation: messages an object", CONV,
	  "{\"messages\":{\"role\":\"user\"}}",
	  .errs = { E("messages", "messages", "{\"role\":\"user\"}", "must be an array",
	      "list_type") } },
	{ "conversation: no messages", CONV, "{\"messages\":[]}",
	  .errs = { E("messages", "messages", "[]", "must have at least 1 item",
	      "too_short") } },
	{ "conversation: bad role", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
	  "{\"role\":\"assistant\",\"content\":\"b\"},"
	  "{\"role\":\"bot\",\"content\":\"c\"}]}",
	  .errs = { E("messages.2.role", "role", "bot",
	      "must be one of: user, assistant, system", "literal_error") } },
	{ "conversation: role is case-sensitive", CONV,
	  "{\"messages\":[{\"role\":\"User\",\"content\":\"a\"}]}",
	  .errs = { E("messages.0.role", "role", "User",
	      "must be one of: user, assistant, system", "literal_error") } },
	{ "conversation: number for the role", CONV,
	  "{\"messages\":[{\"role\":1,\"content\":\"a\"}]}",
	  .errs = { E("messages.0.role", "role", "1", "must be a string",
	      "string_type") } },
	{ "conversation: missing content", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\"}]}",
	  .errs = { E("messages.1.content", "content", "", "is required", "missing") } },
	{ "conversation: empty message", CONV, "{\"messages\":[{}]}",
	  .errs = { E("messages.0.role", "role", "", "is required", "missing"),
	    E("messages.0.content", "content", "", "is required", "missing") } },
	{ "conversation: empty content", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
	  .errs = { E("messages.0.content", "content", "", "must be at least 1 character",
	      "string_too_short") } },
	{ "conversation: a message that is not an object", CONV,
	  "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},5,\"text\"]}",
	  .errs = { E("messages.1", "1", "5", "must be a JSON object", "model_type"),
	    E("messages.2", "2", "text", "must be a JSON object",
	      "model_type") } },
	{ "conversation: errors in several messages and fields", CONV,
	  "{\"messages\":[{\"role\":\"robot\",\"content\":\"a\"},"
	  "{\"role\":\"user\"},{\"role\":\"user\",\"content\":7}],"
	  "\"temperature\":-1,\"stream\":\"true\"}",
	  .errs = { E("messages.0.role", "role", "robot",
	      "must be one of: user, assistant, system", "literal_error"),
	    E("messages.1.content", "content", "", "is required", "missing"),
	    E("messages.2.content", "content", "7", "must be a string",
	      "string_type"),
	    E("temperature", "temperature", "-1", "must be >= 0",
	      "greater_than_equal"),
	    E("stream", "stream", "true", "must be true or false",
	      "bool_type") } },
	{ "conversation: non-object body", CONV, "[]",
	  .errs = { E("body", "body", "[]", "must be a JSON object", "model_type") } },
};

/* ==== checks ==== */

static int err_matches(const struct verror *got, const struct want_err *w)
{
	return !strcmp(got->loc, w->loc) && !strcmp(got->field, w->field) &&
	       !strcmp(got->value, w->value) && !strcmp(got->msg, w->msg) &&
	       got->type && !strcmp(got->type, w->type);
}

static void show_errors(const struct verrors *v)
{
	for (size_t i = 0; i < v->n; i++)
		printf("#   got %zu: loc '%s' field '%s' value '%s' msg '%s' type '%s'\n",
		       i, v->v[i].loc, v->v[i].field, v->v[i].value, v->v[i].msg,
		       v->v[i].type ? v->v[i].type : "(null)");
}

/* Validates a parsed body and checks the errors against want[0..nwant). */
static void check_errors(const char *name, const struct schema *s,
			 cJSON *body, const struct want_err *want, size_t nwant)
{
	struct verrors v = { 0 };
	size_t n, i;
	int good;

	n = schema_validate(s, body, &v);
	good = n == nwant && v.n == nwant;
	for (i = 0; good && i < nwant; i++)
		if (!err_matches(&v.v[i], &want[i]))
			good = 0;
	if (!ok(good, "%s: errors", name)) {
		printf("#   returned %zu, %zu errors, want %zu\n", n, v.n, nwant);
		show_errors(&v);
		for (i = 0; i < nwant; i++)
			printf("#   want %zu: loc '%s' field '%s' value '%s' msg '%s' type '%s'\n",
			       i, want[i].loc, want[i].field, want[i].value,
			       want[i].msg, want[i].type);
	}
	verrors_release(&v);
	ok(v.v == NULL && v.n == 0, "%s: verrors_release empties", name);
}

static void check_case(const struct vcase *c)
{
	cJSON *body = cJSON_Parse(c->body);
	size_t nwant = 0;

	if (!ok(body != NULL, "%s: body parses", c->name))
		return;
	while (nwant < sizeof(c->errs) / sizeof(c->errs[0]) && c->errs[nwant].loc)
		nwant++;
	check_errors(c->name, c->s, body, c->errs, nwant);
	for (size_t i = 0; i < sizeof(c->after) / sizeof(c->after[0]) &&
	     c->after[i].key; i++) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(body,
								  c->after[i].key);
		char *text = n ? cJSON_PrintUnformatted(n) : NULL;

		is_str(text, c->after[i].json, "%s: afterwards %s", c->name,
		       c->after[i].key);
		free(text);
	}
	cJSON_Delete(body);
}

/* ==== bodies built at run time ==== */

static char *repeat(const char *unit, size_t times)
{
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < times; i++)
		buf_appends(&b, unit);
	return buf_detach(&b);
}

/* Whether s is well-formed UTF-8. */
static int utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int k = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 :
			(*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
		if (k < 0)
			return 0;
		p++;
		while (k--) {
			if ((*p & 0xC0) != 0x80)
				return 0;
			p++;
		}
	}
	return 1;
}

struct long_prompt {
	const char *name;
	const char *unit;      /* one character */
	size_t count;
	const char *type;      /* NULL: valid */
	const char *msg;
};

static void test_prompt_lengths(void)
{
	static const struct long_prompt t[] = {
		{ "32000 ascii characters", "a", 32000, NULL, NULL },
		{ "32000 two-byte characters", "\xC3\xA9", 32000, NULL, NULL },
		{ "32000 four-byte characters", "\xF0\x9F\x98\x80", 32000, NULL, NULL },
		{ "32001 ascii characters", "a", 32001, "string_too_long",
		  "must be at most 32000 characters (got 32001)" },
		{ "32001 two-byte characters", "\xC3\xA9", 32001, "string_too_long",
		  "must be at most 32000 characters (got 32001)" },
		{ "one character", "\xE2\x82\xAC", 1, NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *p = repeat(t[i].unit, t[i].count);
		cJSON *body = cJSON_CreateObject();
		struct verrors v = { 0 };
		size_t n;

		cJSON_AddStringToObject(body, "prompt", p);
		is_int(utf8_length(p), t[i].count, "%s: utf8_length", t[i].name);
		n = schema_validate(CHAT, body, &v);
		if (!t[i].type) {
			if (!ok(n == 0 && v.n == 0, "%s: valid", t[i].name))
				show_errors(&v);
		} else if (ok(n == 1 && v.n == 1, "%s: one error", t[i].name)) {
			const struct verror *e = &v.v[0];

			is_str(e->type, t[i].type, "%s: type", t[i].name);
			is_str(e->msg, t[i].msg, "%s: msg", t[i].name);
			is_str(e->loc, "prompt", "%s: loc", t[i].name);
			is_str(e->field, "prompt", "%s: field", t[i].name);
			ok(strlen(e->value) < sizeof(e->value) &&
			   strlen(e->value) > 3 &&
			   !strcmp(e->value + strlen(e->value) - 3, "..."),
			   "%s: value shortened with '...'", t[i].name);
			ok(!strncmp(e->value, p, strlen(e->value) - 3),
			   "%s: value is the start of the prompt", t[i].name);
			ok(utf8_valid(e->value), "%s: value is valid UTF-8",
			   t[i].name);
		} else {
			show_errors(&v);
		}
		verrors_release(&v);
		cJSON_Delete(body);
		free(p);
	}
}

/* Long wrong-typed values are rendered short, without a cut character. */
static void test_value_shortened(void)
{
	static const struct {
		const char *name;
		const char *unit;
		size_t count;
	} t[] = {
		{ "ascii", "a", 200 },
		{ "two-byte", "\xC3\xA9", 100 },
		{ "three-byte", "\xE2\x82\xAC", 100 },
		{ "four-byte", "\xF0\x9F\x98\x80", 100 },
		{ "mixed", "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 40 },
	};
	struct verror probe;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *s = repeat(t[i].unit, t[i].count);
		cJSON *body = cJSON_CreateObject();
		struct verrors v = { 0 };
		const char *val;
		size_t len;

		cJSON_AddStringToObject(body, "prompt", "x");
		cJSON_AddStringToObject(body, "temperature", s);
		schema_validate(CHAT, body, &v);
		if (!ok(v.n == 1, "shortened %s: one error", t[i].name)) {
			show_errors(&v);
			goto next;
		}
		val = v.v[0].value;
		len = strlen(val);
		ok(len < sizeof(probe.value) && len >= 40,
		   "shortened %s: length %zu fits and is not tiny", t[i].name, len);
		ok(len > 3 && !strcmp(val + len - 3, "..."),
		   "shortened %s: ends with '...'", t[i].name);
		ok(!strncmp(val, s, len - 3), "shortened %s: starts like the value",
		   t[i].name);
		ok(utf8_valid(val), "shortened %s: valid UTF-8", t[i].name);
next:
		verrors_release(&v);
		cJSON_Delete(body);
		free(s);
	}

	/* The value shown is the client's text: cleaned by the trust
	 * boundary (no escape, valid UTF-8) before it is echoed. */
	{
		cJSON *body = cJSON_CreateObject();
		struct verrors v = { 0 };

		cJSON_AddStringToObject(body, "prompt", "x");
		cJSON_AddStringToObject(body, "temperature", "\x1b]0;t\x07hot\xff\nx");
		schema_validate(CHAT, body, &v);
		if (ok(v.n == 1, "hostile value: one error"))
			is_str(v.v[0].value, "hot\xef\xbf\xbd x", "hostile value: shown cleaned");
		verrors_release(&v);
		cJSON_Delete(body);
	}

	/* A long non-string value is rendered as compact JSON, shortened. */
	{
		cJSON *body = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(body, "temperature");
		struct verrors v = { 0 };

		cJSON_AddStringToObject(body, "prompt", "x");
		for (int k = 0; k < 100; k++)
			cJSON_AddItemToArray(arr, cJSON_CreateNumber(k));
		schema_validate(CHAT, body, &v);
		if (ok(v.n == 1, "shortened array: one error")) {
			const char *val = v.v[0].value;

			ok(!strncmp(val, "[0,1,2,3,4,5,6,7,8,9,10,", 24) &&
			   !strcmp(val + strlen(val) - 3, "..."),
			   "shortened array: '%s'", val);
			is_str(v.v[0].type, "float_type", "shortened array: type");
		}
		verrors_release(&v);
		cJSON_Delete(body);
	}
}

static void test_many_messages(void)
{
	static const struct {
		int count;
		const char *type;
		const char *msg;
	} t[] = {
		{ 1, NULL, NULL },
		{ 50, NULL, NULL },
		{ 51, "too_long", "must have at most 50 items (got 51)" },
		{ 500, "too_long", "must have at most 50 items (got 500)" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cJSON *body = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(body, "messages");
		struct verrors v = { 0 };

		for (int k = 0; k < t[i].count; k++) {
			cJSON *m = cJSON_CreateObject();

			cJSON_AddStringToObject(m, "role", k % 2 ? "assistant" : "user");
			cJSON_AddStringToObject(m, "content", "hi");
			cJSON_AddItemToArray(arr, m);
		}
		schema_validate(CONV, body, &v);
		if (!t[i].type) {
			if (!ok(v.n == 0, "%d messages: valid", t[i].count))
				show_errors(&v);
		} else if (ok(v.n == 1, "%d messages: one error", t[i].count)) {
			const struct verror *e = &v.v[0];

			is_str(e->type, t[i].type, "%d messages: type", t[i].count);
			is_str(e->msg, t[i].msg, "%d messages: msg", t[i].count);
			is_str(e->loc, "messages", "%d messages: loc", t[i].count);
			is_str(e->field, "messages", "%d messages: field", t[i].count);
			ok(!strncmp(e->value, "[{\"role\":\"user\",\"content\":\"hi\"}", 31) &&
			   strlen(e->value) > 3 &&
			   !strcmp(e->value + strlen(e->value) - 3, "..."),
			   "%d messages: value is the array, shortened", t[i].count);
		} else {
			show_errors(&v);
		}
		verrors_release(&v);
		cJSON_Delete(body);
	}
}

static void test_utf8_length(void)
{
	static const struct {
		const char *s;
		size_t n;
	} t[] = {
		{ "", 0 },
		{ "abc", 3 },
		{ "\xC3\xA9", 1 },
		{ "\xE2\x82\xAC", 1 },
		{ "\xF0\x9F\x98\x80", 1 },
		{ "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z", 5 },
		{ "caf\xC3\xA9 \xC3\xA0 la cr\xC3\xA8me", 15 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(utf8_length(t[i].s), t[i].n, "utf8_length case %zu", i);
}

static void test_misc(void)
{
	struct verrors v = { 0 };
	cJSON *a = cJSON_Parse("{\"temperature\":5}");
	cJSON *b = cJSON_Parse("{\"prompt\":\"x\",\"stream\":0}");

	/* Errors are appended; the return counts only the new ones. */
	is_int(schema_validate(CHAT, a, &v), 2, "first call adds two errors");
	is_int(schema_validate(CHAT, b, &v), 1, "second call returns only its own");
	is_int(v.n, 3, "errors accumulate");
	if (v.n == 3)
		is_str(v.v[2].loc, "stream", "appended error last");
	verrors_release(&v);
	cJSON_Delete(a);
	cJSON_Delete(b);

	ok(schema_field(CHAT, "prompt") != NULL, "schema_field finds prompt");
	ok(schema_field(CHAT, "messages") == NULL,
	   "schema_field: messages is not a ChatRequest field");
	ok(schema_field(CONV, "messages") != NULL &&
	   schema_field(CONV, "messages")->items == &schema_message,
	   "schema_field: messages has Message items");
	ok(schema_field(CHAT, "Prompt") == NULL, "schema_field is case-sensitive");
	ok(schema_field(&schema_message, "role") != NULL &&
	   schema_field(&schema_message, "role")->enums != NULL,
	   "schema_field: role has an enum");
}

/* schema_lift: the CLI's copy loses the caps of the user's text and
 * nothing else; the HTTP table keeps them. */
static void test_lift(void)
{
	static const char *const text[] = { "prompt", "system", "content", "messages", NULL };
	struct schema *chat = schema_lift(CHAT, text), *conv = schema_lift(CONV, text);
	char *long_text = repeat("a", 40000);
	cJSON *body = cJSON_CreateObject(), *arr;

	cJSON_AddStringToObject(body, "prompt", long_text);
	cJSON_AddStringToObject(body, "system", long_text);
	check_errors("lifted: a 40000-character prompt and system prompt", chat, body,
		     NULL, 0);
	{
		const struct want_err w[] = {
			{ "prompt", "prompt", "", "must be at most 32000 characters (got 40000)",
			  "string_too_long" },
			{ "system", "system", "", "must be at most 32000 characters (got 40000)",
			  "string_too_long" },
		};
		struct verrors v = { 0 };
		schema_validate(CHAT, body, &v);
		ok(v.n == 2 && !strcmp(v.v[0].msg, w[0].msg) && !strcmp(v.v[1].msg, w[1].msg),
		   "lifted: the HTTP table still caps both");
		verrors_release(&v);
	}
	cJSON_Delete(body);
	body = cJSON_Parse("{\"prompt\":\"\",\"temperature\":5,\"max_tokens\":0,"
			   "\"model\":\"\"}");
	{
		const struct want_err w[] = {
			{ "prompt", "prompt", "", "must be at least 1 character", "string_too_short" },
			{ "model", "model", "", "must be at least 1 character", "string_too_short" },
			{ "temperature", "temperature", "5", "must be <= 2", "less_than_equal" },
			{ "max_tokens", "max_tokens", "0", "must be >= 1", "greater_than_equal" },
		};
		check_errors("lifted: every other bound stays", chat, body, w, 4);
	}
	cJSON_Delete(body);
	body = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(body, "messages");
	for (int k = 0; k < 60; k++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "role", k % 2 ? "assistant" : "robot");
		cJSON_AddStringToObject(m, "content", long_text);
		cJSON_AddItemToArray(arr, m);
	}
	{
		struct verrors v = { 0 };
		/* 60 long messages: only the 30 bad roles remain errors. */
		schema_validate(conv, body, &v);
		is_int(v.n, 30, "lifted: messages and their content are uncapped, roles checked");
		if (v.n)
			is_str(v.v[0].loc, "messages.0.role", "lifted: a role error's loc");
		verrors_release(&v);
	}
	cJSON_Delete(body);
	free(long_text);
	schema_free(chat);
	schema_free(conv);
	schema_free(NULL);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_prompt_lengths();
	test_value_shortened();
	test_many_messages();
	test_utf8_length();
	test_misc();
	test_lift();
	return tap_done();
}
