/*
 * routes_openai.c - the OpenAI-compatible routes: the objects of
 * /v1/chat/completions (a completion, or a stream of chunks) and the
 * /v1/models list.  The call itself is chatroute.c's; errors on these
 * routes take OpenAI's shape (http.c, is_openai_route()).
 *
 * Every object of one answer carries the request id as its id and the
 * model that answers; on_chat_delta() frames the streamed deltas with the
 * same envelope as openai_chunk(), without building a tree.
 */
#include "aichat/json.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* An OpenAI object of type object with its one choice, into *choice. */
static cJSON *openai_object(struct req *r, const char *object, cJSON **choice)
{
	cJSON *o = cJSON_CreateObject(), *choices;

	cJSON_AddStringToObject(o, "id", r->id);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddNumberToObject(o, "created", (double)time(NULL));
	cJSON_AddStringToObject(o, "model", r->model);
	choices = cJSON_AddArrayToObject(o, "choices");
	*choice = cJSON_CreateObject();
	cJSON_AddItemToArray(choices, *choice);
	cJSON_AddNumberToObject(*choice, "index", 0);
	return o;
}

cJSON *openai_chunk(struct req *r, const char *content, int role,
		    const char *finish)
{
	cJSON *c, *o = openai_object(r, "chat.completion.chunk", &c), *delta;

	delta = cJSON_AddObjectToObject(c, "delta");
	if (role)
		cJSON_AddStringToObject(delta, "role", "assistant");
	if (content)
		cJSON_AddStringToObject(delta, "content", content);
	if (finish)
		cJSON_AddStringToObject(c, "finish_reason", finish);
	else
		cJSON_AddNullToObject(c, "finish_reason");
	return o;
}

cJSON *openai_completion(struct req *r, const struct chat_result *res)
{
	cJSON *c, *o = openai_object(r, "chat.completion", &c), *m;

	m = cJSON_AddObjectToObject(c, "message");
	cJSON_AddStringToObject(m, "role", "assistant");
	cJSON_AddStringToObject(m, "content", res->content.ptr);
	cJSON_AddStringToObject(c, "finish_reason",
				res->finish_reason[0] ? res->finish_reason : "stop");
	cJSON_AddItemToObject(o, "usage", usage_object(res, 1));
	return o;
}

/* What an OpenAI request says beyond the chat request itself. */
void openai_chat_prepare(struct req *r, cJSON *j)
{
	double d;

	/* max_completion_tokens is the newer name of max_tokens. */
	if (json_num(j, "max_completion_tokens", &d) == 0 &&
	    !cJSON_GetObjectItemCaseSensitive(j, "max_tokens"))
		cJSON_AddNumberToObject(j, "max_tokens", d);
	r->include_usage = cJSON_IsTrue(json_path(j, "stream_options.include_usage"));
}

/* GET /v1/models: the default model, mock:echo (unless it is the
 * default) and the configured aliases. */
void route_openai_models(struct req *r)
{
	cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");
	const struct config *cfg = r->srv->cfg;
	const char *def = config_default_model(cfg);
	cJSON_AddStringToObject(o, "object", "list");
	for (size_t i = 0; i <= cfg->naliases + 1; i++) {
		const char *id = i == 0 ? def : i == 1 ? "mock:echo" :
				 cfg->aliases[i - 2].name;
		cJSON *m = cJSON_CreateObject();
		const char *colon = strchr(id, ':');
		char owner[64];
		snprintf(owner, sizeof(owner), "%.*s",
			 colon ? (int)(colon - id) : 6, colon ? id : "aichat");
		if (i == 1 && !strcmp(def, "mock:echo")) {
			cJSON_Delete(m);
			continue;
		}
		cJSON_AddStringToObject(m, "id", id);
		cJSON_AddStringToObject(m, "object", "model");
		cJSON_AddNumberToObject(m, "created", 0);
		cJSON_AddStringToObject(m, "owned_by", owner);
		cJSON_AddItemToArray(data, m);
	}
	reply_json(r, 200, o);
}
