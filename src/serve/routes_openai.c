/*
 * routes_openai.c - the /v1 routes: OpenAI's /v1/chat/completions and
 * Anthropic's /v1/messages, which relay the client's request to the
 * model's provider (in its own dialect when it speaks the client's, else
 * translated: xlate.h), and the /v1/models list.  The call itself is
 * chatroute.c's; errors on these routes take the client's shape (http.c).
 */
#include "aichat/json.h"
#include "aichat/xalloc.h"
#include "aichat/xlate.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <stdlib.h>

const char *serve_default_model(const struct server *srv)
{
	if (srv->o->default_model)
		return srv->o->default_model;
	/* The built-in default is the CLI's convenience; a server answers
	 * only with a model someone chose. */
	if (env_get("AICHAT_MODEL") || srv->cfg->default_model)
		return config_default_model(srv->cfg);
	return NULL;
}

int v1_prepare(struct req *r, cJSON *j)
{
	const char *model = json_str(j, "model");
	struct model_ref m;
	struct err e;
	cJSON *o;
	char param[64];

	if (!model && !(model = serve_default_model(r->srv))) {
		no_default_model(r);
		return -1;
	}
	if (r->route->response == RESP_OPENAI_CHAT) {
		chat_request_from_openai(&r->creq, j, DIALECT_OPENAI);
		free(r->creq.model);
		r->creq.model = xstrdup(model);
		return 0;
	}
	/* /v1/messages: an Anthropic model gets the request as written. */
	err_clear(&e);
	if (model_resolve(r->srv->cfg, model, &m, &e) == 0 &&
	    m.ops == &provider_anthropic) {
		memset(&r->creq, 0, sizeof(r->creq));
		r->creq.temperature = -1;
		r->creq.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
		r->creq.dialect = DIALECT_ANTHROPIC;
		r->creq.native = cJSON_Duplicate(j, 1);
		r->creq.model = xstrdup(model);
		model_ref_release(&m);
		return 0;
	}
	model_ref_release(&m);
	/* Any other model (or one that does not resolve: start_chat says
	 * why) gets it translated. */
	o = xa2o_request(j, param, sizeof(param), &e);
	if (!o) {
		reply_json(r, 400, anthropic_error_object(e.code, e.msg));
		snprintf(r->err_code, sizeof(r->err_code), "%s", err_code_name(e.code));
		return -1;
	}
	chat_request_from_openai(&r->creq, o, DIALECT_ANTHROPIC);
	cJSON_Delete(o);
	free(r->creq.model);
	r->creq.model = xstrdup(model);
	return 0;
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
