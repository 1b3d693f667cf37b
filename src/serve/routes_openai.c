/*
 * routes_openai.c - the /v1 routes: OpenAI's /v1/chat/completions and
 * Anthropic's /v1/messages, which relay the client's request to the
 * model's provider (in its own dialect when it speaks the client's, else
 * translated: xlate.h), and the /v1/models list.  The call itself is
 * chatroute.c's; errors on these routes take the client's shape (http.c).
 */
#include "aichat/json.h"
#include "aichat/prices.h"
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

/* ==== GET /v1/models ==== */

/* A model's price, when it (or the model its alias names) has one: US
 * dollars per million tokens, for a client that shows what an answer
 * cost (the playground does). */
static void add_pricing(const struct config *cfg, cJSON *e, const char *id)
{
	const char *target = config_alias(cfg, id);
	struct price p;
	cJSON *o;

	if (price_lookup(cfg, target ? target : id, &p) < 0)
		return;
	o = cJSON_AddObjectToObject(e, "pricing");
	cJSON_AddNumberToObject(o, "input", (double)p.input / 1e6);
	cJSON_AddNumberToObject(o, "output", (double)p.output / 1e6);
	cJSON_AddNumberToObject(o, "cached_input", (double)p.cached_input / 1e6);
	cJSON_AddNumberToObject(o, "cache_write", (double)p.cache_write / 1e6);
}

/* The answer for list l; under the hub's models_lock (another worker
 * may replace the list). */
static cJSON *models_json(const struct config *cfg, const struct models_list *l)
{
	cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");

	cJSON_AddStringToObject(o, "object", "list");
	for (size_t i = 0; i < l->n; i++) {
		const struct model_entry *m = &l->v[i];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "id", m->id);
		cJSON_AddStringToObject(e, "object", "model");
		cJSON_AddNumberToObject(e, "created", 0);
		cJSON_AddStringToObject(e, "owned_by", m->provider ? m->provider : "aichat");
		add_pricing(cfg, e, m->id);
		cJSON_AddItemToArray(data, e);
	}
	return o;
}

/* Answers srv's waiting requests with the list just put (whatever its
 * age: they asked before it came). */
static void models_ready(struct server *srv, void *data)
{
	struct req *r;

	(void)data;
	if (!srv)
		return;
	while ((r = srv->models_waiters)) {
		cJSON *o;

		srv->models_waiters = r->models_next;
		r->models_waiting = 0;
		pthread_mutex_lock(&srv->hub->models_lock);
		o = models_json(srv->cfg, srv->hub->models.list);
		pthread_mutex_unlock(&srv->hub->models_lock);
		reply_json(r, 200, o);
	}
}

/* The listing this worker ran for every worker: kept in the hub for
 * all of them, and each one's waiters answered. */
static void on_models(void *ud, struct models_list *l)
{
	struct server *srv = ud;
	struct hub *h = srv->hub;

	srv->models_job = NULL;
	/* A provider that failed is left out, and said so in the log. */
	for (size_t i = 0; i < l->nsrc; i++)
		if (l->src[i].err.code != ERR_OK)
			fprintf(stderr, "aichat: serve: models: %s: %s\n",
				l->src[i].provider, l->src[i].err.msg);
	pthread_mutex_lock(&h->models_lock);
	models_cache_put(&h->models, l, loop_now_ms());
	h->models_listing = 0;
	pthread_mutex_unlock(&h->models_lock);
	for (unsigned i = 0; i < h->n; i++)
		if (h->w[i] != srv)
			worker_post(h->w[i], models_ready, NULL);
	models_ready(srv, NULL);
}

void models_stop(struct server *srv)
{
	if (!srv->models_job)
		return;
	models_cancel(srv->models_job);
	srv->models_job = NULL;
	pthread_mutex_lock(&srv->hub->models_lock);
	srv->hub->models_listing = 0;
	pthread_mutex_unlock(&srv->hub->models_lock);
}

void models_unwait(struct req *r)
{
	struct req **p;

	if (!r->models_waiting)
		return;
	for (p = &r->srv->models_waiters; *p; p = &(*p)->models_next)
		if (*p == r) {
			*p = r->models_next;
			break;
		}
	r->models_waiting = 0;
}

void route_openai_models(struct req *r)
{
	struct server *srv = r->srv;
	struct hub *h = srv->hub;
	const struct models_list *l;
	cJSON *o = NULL;
	int start = 0;
	struct err e;

	/* One list for every worker, and one listing at a time. */
	pthread_mutex_lock(&h->models_lock);
	l = models_cache_get(&h->models, loop_now_ms());
	if (l)
		o = models_json(srv->cfg, l);
	else if (!h->models_listing)
		start = h->models_listing = 1;
	pthread_mutex_unlock(&h->models_lock);
	if (o) {
		reply_json(r, 200, o);
		return;
	}
	if (start) {
		err_clear(&e);
		srv->models_job = models_start(srv->eng, srv->cfg, NULL, 0, on_models,
					       srv, &e);
		if (!srv->models_job) {
			pthread_mutex_lock(&h->models_lock);
			h->models_listing = 0;
			pthread_mutex_unlock(&h->models_lock);
			reply_error(r, &e);
			return;
		}
	}
	r->models_next = srv->models_waiters;
	srv->models_waiters = r;
	r->models_waiting = 1;
	if (r->in_handler)
		req_suspend(r);
}
