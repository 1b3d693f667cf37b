/*
 * test_openapi.c - unit tests for the OpenAPI document and the /docs page
 * (src/serve/openapi.c).
 *
 * Expectations come from the tables where they can: every route of
 * serve_routes must be an operation with the request body, security and
 * error responses its flags call for, and every field of every request
 * schema (followed through items) must carry exactly the type, bounds,
 * enum, default and help of its row.  A few hard-coded spot checks pin the
 * DESIGN.md limits and the response shapes, which live only in
 * openapi.c.  Every $ref anywhere in the document must resolve; the walk
 * that checks this is itself checked on a copy with a schema removed.
 */
#include "aichat/openapi.h"
#include "aichat/schema.h"
#include "aichat/serve.h"
#include "tap.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define REF_PREFIX "#/components/schemas/"

static cJSON *doc, *schemas;

static const cJSON *get(const cJSON *o, const char *key)
{
	return o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = get(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* obj[key] is the string want. */
static int str_is(const cJSON *o, const char *key, const char *want)
{
	const char *v = str(o, key);

	return v && !strcmp(v, want);
}

/* obj[key] is a number equal to want. */
static int num_is(const cJSON *o, const char *key, double want)
{
	const cJSON *v = get(o, key);

	return cJSON_IsNumber(v) && v->valuedouble == want;
}

/* The schema name a "$ref" names, or NULL when it is not one of ours. */
static const char *ref_name(const char *ref)
{
	size_t n = strlen(REF_PREFIX);

	return ref && !strncmp(ref, REF_PREFIX, n) ? ref + n : NULL;
}

/* node is {"$ref": "#/components/schemas/<name>"} (maybe with siblings). */
static int is_ref_to(const cJSON *node, const char *name)
{
	const char *n = ref_name(str(node, "$ref"));

	return n && !strcmp(n, name);
}

/* Array arr holds the string s. */
static int has_string(const cJSON *arr, const char *s)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && !strcmp(it->valuestring, s))
			return 1;
	return 0;
}

static const cJSON *operation(const struct route_info *r)
{
	char m[8];
	size_t i;

	for (i = 0; r->method[i] && i < sizeof(m) - 1; i++)
		m[i] = (char)tolower((unsigned char)r->method[i]);
	m[i] = '\0';
	return get(get(get(doc, "paths"), r->path), m);
}

static const cJSON *media(const cJSON *resp, const char *mt)
{
	return get(get(resp, "content"), mt);
}

static int is_openai(const struct route_info *r)
{
	return r->response == RESP_OPENAI_CHAT || r->response == RESP_OPENAI_MODELS ||
	       r->response == RESP_OPENAI_EMBEDDINGS;
}

/* The /v1 routes: a bad body is a 400 in the route's own error shape. */
static int is_v1(const struct route_info *r)
{
	return is_openai(r) || r->response == RESP_ANTHROPIC;
}

/* ==== the top of the document ==== */

static void check_top(void)
{
	const cJSON *ss = get(get(doc, "components"), "securitySchemes");
	const cJSON *b = get(ss, "bearerAuth"), *k = get(ss, "apiKey");

	is_str(str(doc, "openapi"), "3.1.0", "openapi is 3.1.0");
	is_str(str(get(doc, "info"), "title"), "aichat", "info.title");
	is_str(str(get(doc, "info"), "version"), AICHAT_VERSION,
	       "info.version is AICHAT_VERSION");
	ok(cJSON_IsObject(schemas), "components.schemas is an object");
	ok(str_is(b, "type", "http") && str_is(b, "scheme", "bearer"),
	   "bearerAuth is an http bearer scheme");
	ok(str_is(k, "type", "apiKey") && str_is(k, "in", "header") &&
	   str_is(k, "name", "X-API-Key"), "apiKey is the X-API-Key header");
	ok(!get(doc, "security"), "no global security (only per operation)");
}

/* ==== routes ==== */

/* Why the security of op does not fit auth, or NULL. */
static const char *security_bad(const cJSON *op, int auth)
{
	const cJSON *sec = get(op, "security"), *it;
	int bearer = 0, key = 0;

	if (!auth)
		return sec ? "security on a route without auth" : NULL;
	if (!cJSON_IsArray(sec))
		return "no security";
	cJSON_ArrayForEach(it, sec) {
		if (cJSON_IsArray(get(it, "bearerAuth")))
			bearer = 1;
		if (cJSON_IsArray(get(it, "apiKey")))
			key = 1;
	}
	if (!bearer || !key)
		return "security lacks bearerAuth or apiKey";
	return NULL;
}

/* Why the responses of op do not fit route r, or NULL. */
static const char *responses_bad(const struct route_info *r, const cJSON *op)
{
	static const char *const errors[] = { "400", "401", "413", "429",
					      "502", "503", "504" };
	const cJSON *rs = get(op, "responses"), *it, *v;
	const char *err_schema = is_openai(r) ? "OpenAIErrorResponse" :
				 r->response == RESP_ANTHROPIC ? "AnthropicErrorResponse" :
				 "ErrorResponse";
	int body = r->request != NULL;
	size_t i;

	/* POST /jobs answers 202 Accepted; everything else 200. */
	const char *okst = r->response == RESP_JOB_SUBMIT ? "202" : "200";

	if (!cJSON_IsObject(rs) || !get(rs, okst))
		return "no 200 (202 for a job submission)";
	cJSON_ArrayForEach(it, rs)
		if (!str(it, "description"))
			return "a response without a description";
	if (!get(rs, "422") != !(body && !is_v1(r)))
		return "422 not exactly on the aichat routes with a body";
	if (!get(rs, "400") != !(body && is_v1(r)))
		return "400 not exactly on the /v1 routes with a body";
	if (!get(rs, "401") != !r->auth)
		return "401 not exactly on the auth routes";
	if (!get(rs, "429") != !r->auth)
		return "429 not exactly on the auth routes";
	if (!get(rs, "413") != !body)
		return "413 not exactly on the routes with a body";
	if (r->request && r->response != RESP_JOB_SUBMIT &&
	    r->response != RESP_RAG_SEARCH && !get(rs, "503"))
		return "a route with a body (an upstream call) has no 503";
	if (!get(rs, "404") != !strstr(r->path, "{id}"))
		return "404 not exactly on the routes with a job id";
	if (!r->request && (get(rs, "502") || get(rs, "503") || get(rs, "504")))
		return "upstream errors on a route without upstream";
	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		v = get(rs, errors[i]);
		if (v && !is_ref_to(get(media(v, "application/json"), "schema"),
				    err_schema))
			return "an error is not in the route's error shape";
	}
	v = get(media(get(rs, "422"), "application/json"), "schema");
	if (get(rs, "422") && (!is_ref_to(cJSON_GetArrayItem(get(v, "oneOf"), 0),
					  "ValidationError")))
		return "422 is not a ValidationError";
	if (!media(get(rs, okst), "text/event-stream") != !r->streams)
		return "text/event-stream not exactly on the streaming routes";
	return NULL;
}

static void check_routes(void)
{
	const cJSON *paths = get(doc, "paths"), *p, *op;
	const char *seen_ids[64];
	size_t i, j, nops = 0, nids = 0;

	for (i = 0; i < serve_nroutes; i++) {
		const struct route_info *r = &serve_routes[i];
		const char *why = NULL, *id;

		op = operation(r);
		if (!ok(cJSON_IsObject(op), "%s %s is in paths", r->method, r->path))
			continue;
		is_str(str(op, "summary"), r->summary, "%s %s: summary", r->method,
		       r->path);
		id = str(op, "operationId");
		for (j = 0; id && j < nids; j++)
			if (!strcmp(seen_ids[j], id))
				why = "operationId not unique";
		if (!id)
			why = "no operationId";
		else if (nids < sizeof(seen_ids) / sizeof(seen_ids[0]))
			seen_ids[nids++] = id;
		if (!why && r->request &&
		    !is_ref_to(get(media(get(op, "requestBody"), "application/json"),
				   "schema"), r->request->name))
			why = "requestBody is not a $ref to its schema";
		if (!why && r->request && !cJSON_IsTrue(get(get(op, "requestBody"),
							   "required")))
			why = "requestBody not required";
		if (!why && !r->request && get(op, "requestBody"))
			why = "requestBody on a route without a body";
		if (!why)
			why = security_bad(op, r->auth);
		if (!why)
			why = responses_bad(r, op);
		if (!ok(!why, "%s %s: body, security and responses fit the table",
			r->method, r->path))
			printf("#   %s\n", why);
	}
	cJSON_ArrayForEach(p, paths)
		cJSON_ArrayForEach(op, p)
			nops++;
	is_int(nops, serve_nroutes, "no operation beyond the route table");
}

/* The hard-coded ones: what each kind of route answers with 200. */
static void check_route_spots(void)
{
	size_t i;

	for (i = 0; i < serve_nroutes; i++) {
		const struct route_info *r = &serve_routes[i];
		const cJSON *ok200 = get(get(operation(r), "responses"),
					 r->response == RESP_JOB_SUBMIT ? "202" : "200");
		const char *want = NULL, *mt = "application/json";

		switch (r->response) {
		case RESP_CHAT: want = "ChatResponse"; break;
		case RESP_BATCH: want = "BatchResponse"; break;
		case RESP_OPENAI_CHAT: want = "ChatCompletion"; break;
		case RESP_OPENAI_MODELS: want = "ModelList"; break;
		case RESP_OPENAI_EMBEDDINGS: want = "EmbeddingList"; break;
		case RESP_ANTHROPIC: want = "AnthropicMessageResponse"; break;
		case RESP_HEALTH: want = "HealthResponse"; break;
		case RESP_METRICS: mt = "text/plain"; break;
		case RESP_OPENAPI: break;
		case RESP_HTML: mt = "text/html"; break;
		case RESP_JOB_SUBMIT:
		case RESP_JOB_STATUS:
		case RESP_JOB_CANCEL: want = "JobStatus"; break;
		case RESP_JOB_LIST: want = "JobList"; break;
		case RESP_JOB_RESULTS: mt = "application/x-ndjson"; break;
		case RESP_RAG_QUERY: want = "RAGResponse"; break;
		case RESP_RAG_SEARCH: want = "RAGSearchResponse"; break;
		case RESP_RAG_COLLECTIONS: want = "RAGCollections"; break;
		case RESP_PLAYGROUND:
			mt = !strcmp(r->path, "/playground.js") ? "text/javascript" :
			     !strcmp(r->path, "/playground.css") ? "text/css" :
			     "text/html";
			break;
		}
		ok(media(ok200, mt) && (!want ||
		   is_ref_to(get(media(ok200, mt), "schema"), want)),
		   "%s %s: 200 is %s%s%s", r->method, r->path, mt,
		   want ? " " : "", want ? want : "");
	}
}

static void check_stream_docs(void)
{
	const struct route_info *r;
	const char *d;
	size_t i;

	for (i = 0; i < serve_nroutes; i++) {
		r = &serve_routes[i];
		if (!r->streams)
			continue;
		d = str(get(media(get(get(operation(r), "responses"), "200"),
				  "text/event-stream"), "schema"), "description");
		if (r->response == RESP_OPENAI_CHAT)
			ok(d && strstr(d, "chat.completion.chunk") &&
			   strstr(d, "data: [DONE]"),
			   "%s: the stream is described as OpenAI chunks then [DONE]",
			   r->path);
		else if (r->response == RESP_ANTHROPIC)
			ok(d && strstr(d, "message_start") && strstr(d, "message_stop") &&
			   strstr(d, "content_block_delta") && strstr(d, "event: error"),
			   "%s: the stream is described as Anthropic's events", r->path);
		else
			ok(d && strstr(d, "data: {\"content\":") &&
			   strstr(d, "event: usage") && strstr(d, "data: [DONE]") &&
			   strstr(d, "event: error") &&
			   strstr(d, "{\"error\":{\"code\""),
			   "%s: the stream framing is described", r->path);
	}
}

/* ==== schemas, from the tables ==== */

static const char *type_of(enum field_type t)
{
	switch (t) {
	case FIELD_STRING: return "string";
	case FIELD_NUMBER: return "number";
	case FIELD_INTEGER: return "integer";
	case FIELD_BOOL: return "boolean";
	case FIELD_ARRAY: return "array";
	case FIELD_OBJECT: return "object";
	case FIELD_ANY: break;
	}
	return "?";
}

/* The bound keyword lo/hi holds f's bound when it has one, else is absent. */
static int bound_is(const cJSON *p, const char *key, double v, int has)
{
	return has ? num_is(p, key, v) : get(p, key) == NULL;
}

/* Why property p does not describe field f, or NULL. */
static const char *field_bad(const struct field *f, const cJSON *p)
{
	static const char *const all_bounds[] = { "minLength", "maxLength",
		"minimum", "maximum", "minItems", "maxItems" };
	const char *lo = NULL, *hi = NULL;
	int count = 0;
	size_t i, n;

	if (!cJSON_IsObject(p))
		return "no property";
	switch (f->type) {
	case FIELD_STRING: lo = "minLength"; hi = "maxLength"; count = 1; break;
	case FIELD_NUMBER:
	case FIELD_INTEGER: lo = "minimum"; hi = "maximum"; break;
	case FIELD_ARRAY: lo = "minItems"; hi = "maxItems"; count = 1; break;
	case FIELD_BOOL:
	case FIELD_OBJECT:
	case FIELD_ANY: break;
	}
	if (f->type == FIELD_ANY) {
		/* Its types, from the checks table, as a list. */
		const struct schema_check *sc = schema_check_for(f);
		char *t = cJSON_PrintUnformatted(get(p, "type")), want[128] = "[";
		int same;
		if (sc && sc->any_of)
			for (const char *q = sc->any_of; *q; q++) {
				if (q == sc->any_of || q[-1] == '|')
					strcat(want, q == sc->any_of ? "\"" : ",\"");
				if (*q != '|')
					strncat(want, q, 1);
				if (q[1] == '|' || !q[1])
					strcat(want, "\"");
			}
		strcat(want, "]");
		same = t && (sc && sc->any_of ? !strcmp(t, want) : !strcmp(t, "null"));
		free(t);
		if (!same)
			return "wrong types";
	} else if (f->type == FIELD_OBJECT && f->items) {
		if (!is_ref_to(p, f->items->name))
			return "not a $ref to its schema";
	} else if (!str_is(p, "type", type_of(f->type))) {
		return "wrong type";
	}
	if (f->type == FIELD_ARRAY && f->items &&
	    !is_ref_to(get(p, "items"), f->items->name))
		return "items not a $ref to its schema";
	for (i = 0; i < sizeof(all_bounds) / sizeof(all_bounds[0]); i++) {
		const char *k = all_bounds[i];
		if (lo && (!strcmp(k, lo) || !strcmp(k, hi)))
			continue;
		if (get(p, k))
			return "a bound keyword of another type";
	}
	if (lo && !bound_is(p, lo, f->min, count ? f->min >= 0 :
			    f->min != FIELD_NO_BOUND))
		return "wrong lower bound";
	if (hi && !bound_is(p, hi, f->max, count ? f->max >= 0 :
			    f->max != FIELD_NO_BOUND))
		return "wrong upper bound";
	if (f->enums) {
		const cJSON *e = get(p, "enum");
		for (n = 0; f->enums[n]; n++)
			if (!has_string(e, f->enums[n]))
				return "enum lacks a value";
		if (cJSON_GetArraySize(e) != (int)n)
			return "enum has extra values";
	} else if (get(p, "enum")) {
		return "enum on a field without one";
	}
	if (f->def) {
		cJSON *want = cJSON_Parse(f->def);
		int same = want && cJSON_Compare(get(p, "default"), want, 1);
		cJSON_Delete(want);
		if (!same)
			return "wrong default";
	} else if (get(p, "default")) {
		return "default on a field without one";
	}
	if (f->help ? !str_is(p, "description", f->help) : get(p, "description") != NULL)
		return "description is not the help";
	return NULL;
}

/* Checks schema s and, once each, the schemas its fields name. */
static void check_schema(const struct schema *s, const char **seen,
			 size_t *nseen, size_t max)
{
	const cJSON *c, *props, *req;
	const char *why;
	size_t i, nreq = 0;

	for (i = 0; i < *nseen; i++)
		if (!strcmp(seen[i], s->name))
			return;
	if (*nseen < max)
		seen[(*nseen)++] = s->name;
	c = get(schemas, s->name);
	if (!ok(cJSON_IsObject(c), "schema %s is in components", s->name))
		return;
	props = get(c, "properties");
	req = get(c, "required");
	ok(str_is(c, "type", "object"),
	   "%s: type object", s->name);
	is_int(cJSON_GetArraySize(props), s->nfields,
	       "%s: one property per field", s->name);
	for (i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];

		why = field_bad(f, get(props, f->name));
		if (!why && !has_string(req, f->name) != !f->required)
			why = f->required ? "not in required" : "in required";
		if (!ok(!why, "%s.%s fits its row", s->name, f->name))
			printf("#   %s\n", why);
		nreq += f->required != 0;
	}
	is_int(req ? cJSON_GetArraySize(req) : 0, nreq,
	       "%s: required lists the required fields only", s->name);
	for (i = 0; i < s->nfields; i++)
		if (s->fields[i].items)
			check_schema(s->fields[i].items, seen, nseen, max);
}

static void check_request_schemas(void)
{
	const char *seen[64];
	size_t i, nseen = 0;

	for (i = 0; i < serve_nroutes; i++)
		if (serve_routes[i].request)
			check_schema(serve_routes[i].request, seen, &nseen,
				     sizeof(seen) / sizeof(seen[0]));
	ok(nseen >= 5, "the walk saw the nested schemas too (%zu)", nseen);
}

/* Every component: an object whose required names are properties. */
static void check_components(void)
{
	const cJSON *c, *it;
	const char *bad = NULL;

	cJSON_ArrayForEach(c, schemas) {
		if (!cJSON_IsObject(get(c, "properties")))
			bad = c->string;
		cJSON_ArrayForEach(it, get(c, "required"))
			if (!cJSON_IsString(it) ||
			    !get(get(c, "properties"), it->valuestring))
				bad = c->string;
	}
	if (!ok(!bad, "every component's required names are properties"))
		printf("#   %s\n", bad);
}

/* ==== hard-coded spot checks ==== */

static const cJSON *prop(const char *schema, const char *name)
{
	return get(get(get(schemas, schema), "properties"), name);
}

/* p's type is the array [t, "null"]. */
static int nullable(const cJSON *p, const char *t)
{
	const cJSON *ty = get(p, "type");

	return cJSON_IsArray(ty) && cJSON_GetArraySize(ty) == 2 &&
	       has_string(ty, t) && has_string(ty, "null");
}

static void check_spots(void)
{
	const cJSON *p, *role, *any, *loc;

	p = prop("ChatRequest", "temperature");
	ok(num_is(p, "minimum", 0) && num_is(p, "maximum", 2) &&
	   num_is(p, "default", 0.7), "ChatRequest.temperature 0..2, default 0.7");
	p = prop("ChatRequest", "prompt");
	ok(num_is(p, "minLength", 1) && num_is(p, "maxLength", 32000),
	   "ChatRequest.prompt 1..32000 characters");
	ok(has_string(get(get(schemas, "ChatRequest"), "required"), "prompt"),
	   "ChatRequest requires prompt");
	p = prop("ConversationRequest", "messages");
	ok(num_is(p, "minItems", 1) && num_is(p, "maxItems", 50) &&
	   is_ref_to(get(p, "items"), "Message"),
	   "ConversationRequest.messages 1..50 of Message");
	role = get(prop("Message", "role"), "enum");
	ok(cJSON_GetArraySize(role) == 3 && has_string(role, "user") &&
	   has_string(role, "assistant") && has_string(role, "system"),
	   "Message.role is one of user, assistant, system");
	p = prop("ChatRequest", "max_tokens");
	ok(num_is(p, "minimum", 1) && num_is(p, "maximum", 16384) &&
	   str_is(p, "type", "integer"),
	   "max_tokens is an integer 1..16384");
	p = prop("BatchRequest", "items");
	ok(num_is(p, "minItems", 1) && num_is(p, "maxItems", 100),
	   "BatchRequest.items 1..100");
	ok(cJSON_IsTrue(get(prop("ConversationRequest", "stream"), "default")),
	   "ConversationRequest.stream defaults to true");

	ok(nullable(prop("ChatResponse", "prompt_tokens"), "integer") &&
	   nullable(prop("ChatResponse", "completion_tokens"), "integer") &&
	   nullable(prop("ChatResponse", "total_tokens"), "integer"),
	   "ChatResponse token counts are nullable integers");
	ok(nullable(prop("ChatResponse", "finish_reason"), "string"),
	   "ChatResponse.finish_reason is a nullable string");
	p = prop("ChatResponse", "content");
	ok(str_is(p, "type", "string") && !get(p, "default"),
	   "ChatResponse.content is a plain string");
	ok(is_ref_to(get(prop("BatchResponse", "results"), "items"), "BatchResult"),
	   "BatchResponse.results are BatchResults");
	ok(nullable(prop("BatchResult", "content"), "string"),
	   "BatchResult.content is a nullable string");
	any = get(prop("BatchResult", "error"), "anyOf");
	ok(is_ref_to(cJSON_GetArrayItem(any, 0), "ErrorObject") &&
	   str_is(cJSON_GetArrayItem(any, 1), "type", "null"),
	   "BatchResult.error is an ErrorObject or null");
	ok(is_ref_to(prop("ErrorResponse", "error"), "ErrorObject") &&
	   prop("ErrorObject", "code") && prop("ErrorObject", "message"),
	   "ErrorResponse is {error: {code, message}}");
	p = prop("ValidationError", "detail");
	ok(is_ref_to(get(p, "items"), "ValidationErrorDetail"),
	   "ValidationError.detail is a list");
	loc = get(get(prop("ValidationErrorDetail", "loc"), "items"), "type");
	ok(has_string(loc, "string") && has_string(loc, "integer") &&
	   prop("ValidationErrorDetail", "msg") &&
	   prop("ValidationErrorDetail", "type"),
	   "ValidationErrorDetail is {loc: [string|integer], msg, type}");
	ok(has_string(get(prop("HealthResponse", "status"), "enum"), "ok"),
	   "HealthResponse.status is ok");
	ok(has_string(get(prop("ChatCompletion", "object"), "enum"), "chat.completion") &&
	   has_string(get(prop("ChatCompletionChunk", "object"), "enum"),
		      "chat.completion.chunk") &&
	   is_ref_to(get(prop("ModelList", "data"), "items"), "Model"),
	   "OpenAI ChatCompletion, ChatCompletionChunk and ModelList");
	ok(nullable(prop("ChatCompletionChunkChoice", "finish_reason"), "string"),
	   "a chunk's finish_reason is nullable");
	p = get(get(get(doc, "paths"), "/health"), "get");
	ok(p && !get(p, "security"), "/health has no security");
	ok(get(get(get(get(doc, "paths"), "/chat"), "post"), "security") != NULL,
	   "/chat has security");
}

/* ==== every $ref resolves ==== */

/* Counts the $refs below node into *n and the broken ones into *bad. */
static void walk_refs(const cJSON *node, const cJSON *comps, size_t *n,
		      size_t *bad)
{
	const cJSON *it;

	cJSON_ArrayForEach(it, node) {
		if (it->string && !strcmp(it->string, "$ref")) {
			const char *name = cJSON_IsString(it) ?
					   ref_name(it->valuestring) : NULL;
			(*n)++;
			if (!name || !get(comps, name))
				(*bad)++;
		}
		if (cJSON_IsObject(it) || cJSON_IsArray(it))
			walk_refs(it, comps, n, bad);
	}
}

static void check_refs(void)
{
	cJSON *copy;
	size_t n = 0, bad = 0;

	walk_refs(doc, schemas, &n, &bad);
	ok(n > 20 && bad == 0, "all %zu $refs resolve (%zu broken)", n, bad);

	/* The walk must catch a missing one, or the check above is empty. */
	copy = cJSON_Duplicate(doc, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(copy, "components"),
			"schemas"), "Message");
	n = bad = 0;
	walk_refs(copy, get(get(copy, "components"), "schemas"), &n, &bad);
	ok(bad >= 1, "the walk finds the $refs to a removed schema (%zu)", bad);
	cJSON_Delete(copy);
}

/* ==== the /docs page ==== */

static void check_html(void)
{
	const char *h = openapi_docs_html();

	ok(h && !strncmp(h, "<!DOCTYPE html>", 15), "docs: an HTML page");
	ok(!strstr(h, "http://") && !strstr(h, "https://") && !strstr(h, "//cdn"),
	   "docs: no absolute URL to another host");
	ok(!strstr(h, "<script src") && !strstr(h, "<link") &&
	   !strstr(h, "@import") && !strstr(h, "url("),
	   "docs: no external script, style sheet or font");
	ok(strstr(h, "fetch(\"/openapi.json\")") != NULL,
	   "docs: fetches /openapi.json");
	ok(strstr(h, "textContent") && !strstr(h, "innerHTML") &&
	   !strstr(h, "outerHTML") && !strstr(h, "document.write") &&
	   !strstr(h, "insertAdjacentHTML"),
	   "docs: text goes into the DOM as textContent only");
	ok(strstr(h, "<script>") && strstr(h, "<style>") && strstr(h, "</html>"),
	   "docs: inline script and style");
}

int main(void)
{
	char *text = openapi_document(), *again;

	doc = cJSON_Parse(text);
	if (!ok(doc != NULL, "the document is JSON")) {
		free(text);
		return tap_done();
	}
	schemas = (cJSON *)get(get(doc, "components"), "schemas");
	check_top();
	check_routes();
	check_route_spots();
	check_stream_docs();
	check_request_schemas();
	check_components();
	check_spots();
	check_refs();
	check_html();
	again = openapi_document();
	ok(!strcmp(text, again), "the document is the same every time");
	free(again);
	free(text);
	cJSON_Delete(doc);
	return tap_done();
}
