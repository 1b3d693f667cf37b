/*
 * fuzz_validate.c - request validation over every schema (src/core/
 * schema.c, schema_openai.c, validate.c).
 *
 * Input: a byte choosing the schema, then a JSON body.  Properties: what
 * passes once passes again, unchanged, once printed and parsed back
 * (defaults filled in the first time are not filled differently the
 * second); in what passes, every field the table describes has its type
 * and lies within its bounds (numbers, characters, items, enums), at
 * every depth; every error has a loc, a type and a message, and shows
 * its value without control characters.  A ChatRequest or a
 * ConversationRequest that passes becomes a chat request (and is freed);
 * an Anthropic request that passes and translates to OpenAI
 * (xa2o_request) gives a body the OpenAI table accepts (but for the
 * names and ids of tools: see below).
 *
 * Bodies with a key twice or text that is not UTF-8 are left out: they
 * are refused before validation (issue 11, items 9 and 18), not by it.
 */
#include "fuzz.h"

#include "aichat/chat.h"
#include "aichat/json.h"
#include "aichat/schema.h"
#include "aichat/xlate.h"

#include <math.h>
#include <string.h>

static const struct schema *const schemas[] = {
	&schema_chat_request, &schema_conversation_request, &schema_message,
	&schema_batch_request, &schema_batch_item, &schema_openai_chat_request,
	&schema_openai_stream_options, &schema_openai_message,
	&schema_openai_tool, &schema_openai_tool_call,
	&schema_openai_response_format, &schema_anthropic_request,
	&schema_anthropic_message, &schema_openai_embeddings_request,
	&schema_rag_request, &schema_rag_search_request, &schema_job_request,
};
#define NSCHEMAS (sizeof(schemas) / sizeof(schemas[0]))

/* A key twice, or a key or string that is not UTF-8. */
static int refused_before(const cJSON *j)
{
	if (cJSON_IsString(j) &&
	    !fuzz_utf8_valid((const unsigned char *)j->valuestring, strlen(j->valuestring)))
		return 1;
	for (const cJSON *c = j ? j->child : NULL; c; c = c->next) {
		if (c->string && !fuzz_utf8_valid((const unsigned char *)c->string,
						  strlen(c->string)))
			return 1;
		if (cJSON_IsObject(j))
			for (const cJSON *d = c->next; d; d = d->next)
				if (c->string && d->string && !strcmp(c->string, d->string))
					return 1;
		if (refused_before(c))
			return 1;
	}
	return 0;
}

/* Every described field of obj has its type and is within its bounds. */
static void within(const struct schema *s, const cJSON *obj, const char *loc)
{
	FUZZ_CHECK(cJSON_IsObject(obj), "%s: %s is not an object", s->name, loc);
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, f->name);
		double v;

		if (!n) {
			FUZZ_CHECK(!f->required, "%s.%s: required, absent", loc, f->name);
			continue;
		}
		switch (f->type) {
		case FIELD_ANY:
			break;
		case FIELD_STRING:
			FUZZ_CHECK(cJSON_IsString(n), "%s.%s: not a string", loc, f->name);
			v = (double)utf8_length(n->valuestring);
			if (f->enums) {
				const char *const *e = f->enums;
				while (*e && strcmp(*e, n->valuestring))
					e++;
				FUZZ_CHECK(*e, "%s.%s: '%s' not in its enum", loc, f->name,
					   n->valuestring);
			}
			FUZZ_CHECK((f->min < 0 || v >= f->min) && (f->max < 0 || v <= f->max),
				   "%s.%s: %g characters", loc, f->name, v);
			break;
		case FIELD_NUMBER:
		case FIELD_INTEGER:
			FUZZ_CHECK(cJSON_IsNumber(n), "%s.%s: not a number", loc, f->name);
			v = n->valuedouble;
			FUZZ_CHECK(isfinite(v), "%s.%s = %g", loc, f->name, v);
			FUZZ_CHECK(f->type != FIELD_INTEGER || v == floor(v),
				   "%s.%s = %g not whole", loc, f->name, v);
			FUZZ_CHECK((f->min == FIELD_NO_BOUND || v >= f->min) &&
				   (f->max == FIELD_NO_BOUND || v <= f->max),
				   "%s.%s = %g out of [%g, %g]", loc, f->name, v, f->min, f->max);
			break;
		case FIELD_BOOL:
			FUZZ_CHECK(cJSON_IsBool(n), "%s.%s: not a bool", loc, f->name);
			break;
		case FIELD_OBJECT:
			FUZZ_CHECK(cJSON_IsObject(n), "%s.%s: not an object", loc, f->name);
			if (f->items)
				within(f->items, n, f->name);
			break;
		case FIELD_ARRAY: {
			int count = cJSON_GetArraySize(n);
			const cJSON *it;

			FUZZ_CHECK(cJSON_IsArray(n), "%s.%s: not an array", loc, f->name);
			FUZZ_CHECK((f->min < 0 || count >= f->min) &&
				   (f->max < 0 || count <= f->max),
				   "%s.%s: %d items", loc, f->name, count);
			if (f->items)
				cJSON_ArrayForEach(it, n)
					within(f->items, it, f->name);
			break;
		}
		}
	}
}

static void check_errors(const struct verrors *ve)
{
	for (size_t i = 0; i < ve->n; i++) {
		const struct verror *v = &ve->v[i];

		FUZZ_CHECK(v->type && *v->type && *v->msg, "error %zu at '%s'", i, v->loc);
		for (const char *p = v->value; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20, "control byte in value '%s'",
				   v->value);
	}
}

static int ends(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && !strcmp(s + n - t, tail);
}

/* Validates j against s; on success returns its text (owned), else NULL. */
static char *passes(const struct schema *s, cJSON *j)
{
	struct verrors ve = { 0 };
	size_t n = schema_validate(s, j, &ve);

	FUZZ_CHECK(n == ve.n, "%zu errors, %zu listed", n, ve.n);
	check_errors(&ve);
	verrors_release(&ve);
	return n ? NULL : json_print(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const struct schema *s = schemas[fuzz_byte(&in) % NSCHEMAS];
	cJSON *j = json_parse((const char *)in.p, in.n, NULL), *again;
	char *first, *second;

	if (!j || refused_before(j)) {
		cJSON_Delete(j);
		return 0;
	}
	first = passes(s, j);
	if (!first) {
		cJSON_Delete(j);
		return 0;
	}
	within(s, j, s->name);
	again = json_parse(first, strlen(first), NULL);
	FUZZ_CHECK(again != NULL, "printed body does not parse: %s", first);
	second = passes(s, again);
	FUZZ_CHECK(second != NULL, "%s passed once, not twice: %s", s->name, first);
	FUZZ_CHECK(!strcmp(first, second), "%s changed:\n%s\n%s", s->name, first, second);

	if (s == &schema_chat_request || s == &schema_conversation_request) {
		struct chat_request req;

		chat_request_from_json(&req, j, s);
		chat_request_release(&req);
	} else if (s == &schema_anthropic_request) {
		char param[128];
		struct err e;
		cJSON *o;

		err_clear(&e);
		o = xa2o_request(j, param, sizeof(param), &e);
		if (o) {
			struct verrors ve = { 0 };
			char *text = json_print(o);

			schema_validate(&schema_openai_chat_request, o, &ve);
			for (size_t i = 0; i < ve.n; i++) {
				/* Known gap, left to the schema tables' owner: the
				 * Anthropic tables want a tool's name and a tool_use
				 * or tool_result id to be strings, not non-empty nor
				 * (for names) Anthropic's own 1..64 of [A-Za-z0-9_-]
				 * as OpenAI's do; the upstream refuses them. */
				if (ends(ve.v[i].loc, ".function.name") ||
				    ends(ve.v[i].loc, ".id") || ends(ve.v[i].loc, ".tool_call_id"))
					continue;
				FUZZ_CHECK(0, "Anthropic request passes, its OpenAI translation "
					   "does not: %s: %s (%s)", ve.v[i].loc, ve.v[i].msg, text);
			}
			verrors_release(&ve);
			free(text);
			cJSON_Delete(o);
		} else {
			FUZZ_CHECK(e.code == ERR_INVALID_REQUEST && *e.msg,
				   "translation failed with no error");
		}
	}
	free(first);
	free(second);
	cJSON_Delete(again);
	cJSON_Delete(j);
	return 0;
}
