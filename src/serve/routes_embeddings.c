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
 *
 * A successful call is spent like a chat exchange (spend()): its usage's
 * prompt_tokens go to /metrics, the usage ledger and the key's budget,
 * priced as input when the model has a price (prices.h).
 */
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/prices.h"
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* How far from the end of an answer its "usage" is looked for: OpenAI's
 * and Ollama's put it last, after the vectors, so the answer (up to
 * 16 MiB of numbers) is never parsed whole on the loop. */
#define USAGE_TAIL 4096

/* The usage's prompt_tokens of an embeddings answer into *prompt: 0, or
 * -1 when its tail has no usage object with that count. */
static int answer_prompt_tokens(const char *body, size_t len, long *prompt)
{
	size_t from = len > USAGE_TAIL ? len - USAGE_TAIL : 0;
	const char *p = NULL, *end = body + len;
	cJSON *u;
	double d;
	int rc = -1;

	for (size_t i = len; i-- > from + 7;)
		if (!memcmp(body + i - 7, "\"usage\"", 7)) {
			p = body + i;
			break;
		}
	if (!p)
		return -1;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p == end || *p++ != ':')
		return -1;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p == end || *p != '{')
		return -1;
	u = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), NULL, 0);
	if (json_count(u, "prompt_tokens", &d) == 0) {
		*prompt = (long)d;
		rc = 0;
	}
	cJSON_Delete(u);
	return rc;
}

/* Spends r's embeddings call: its tokens and cost (spend()). */
static void spend_embeddings(struct req *r, const struct embed_reply *rep)
{
	struct chat_result res;
	struct price p;

	memset(&res, 0, sizeof(res));
	if (answer_prompt_tokens(rep->body, rep->len, &res.prompt_tokens) < 0)
		return;
	snprintf(res.model, sizeof(res.model), "%s", r->model);
	res.have_usage = 1;
	res.priced = price_lookup(r->srv->cfg, r->model, &p) == 0;
	if (res.priced)
		res.cost_micros = price_cost(&p, res.prompt_tokens, 0, 0, 0);
	spend(r, &res);
}

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
	spend_embeddings(r, rep);
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
