/*
 * routes_embeddings.c - POST /v1/embeddings: OpenAI's embeddings request,
 * relayed by model (embed.h).  An OpenAI-compatible provider gets the
 * client's body as written, the model its own id, and its answer goes
 * back as it came; mock:embed answers offline in the same shape; a model
 * without an embeddings API (anthropic, mock:echo) is a 400 on model.
 *
 * The model is required: the server's -m names a chat model, which
 * cannot embed.  The call holds an upstream slot like a chat call, runs
 * on the loop as r->embed, and is cancelled when the client leaves
 * (stop_work()).  Answers are not cached.
 */
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Resolves the body's model into m; -1 with the error answered. */
static int resolve_model(struct req *r, struct embed_model *m)
{
	const char *model = json_str(r->json, "model");
	struct err e;

	err_clear(&e);
	if (embed_resolve(r->srv->cfg, model, m, &e) == 0)
		return 0;
	embed_model_release(m);
	reply_call_error(r, &e, model);
	return -1;
}

void route_embeddings(struct req *r)
{
	struct embed_model m;

	if (resolve_model(r, &m) < 0)
		return;
	embed_model_release(&m);
	acquire_upstream(r);
}

static void on_embeddings_done(void *ud, const struct embed_reply *rep)
{
	struct req *r = ud;

	r->embed = NULL;
	release_upstream(r);
	if (rep->err.code != ERR_OK) {
		if (rep->err.code != ERR_CANCELLED)
			metrics_upstream_error(r->srv->metrics, r->provider,
					       err_code_name(rep->err.code));
		reply_error(r, &rep->err);
		return;
	}
	reply(r, 200, "application/json", rep->body, rep->len);
}

void start_embeddings(struct req *r)
{
	struct embed_model m;
	struct llm_opts lo;
	struct err e;

	if (resolve_model(r, &m) < 0) {
		release_upstream(r);
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", embed_model_name(&m));
	snprintf(r->provider, sizeof(r->provider), "%s", m.ref.provider);
	err_clear(&e);
	llm_opts_for(r, &lo, 0);
	r->embed = embed_relay_start(r->srv->eng, &m, r->json, &lo,
				     on_embeddings_done, r, &e);
	embed_model_release(&m);
	if (!r->embed) {
		release_upstream(r);
		reply_call_error(r, &e, r->model);
		return;
	}
	if (r->in_handler)
		req_suspend(r);
}
