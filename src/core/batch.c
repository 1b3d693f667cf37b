/*
 * batch.c - bounded-concurrency runs of chat requests; see batch.h.
 *
 * A refill-to-N loop over a pulled source: start items until the limit
 * runs, start the next whenever one finishes.  An item that cannot even
 * start (unknown model) is an error result for that item, like any other
 * failure.  The loop is iterative, so a long run of such items cannot
 * exhaust the stack.
 */
#include "aichat/batch.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct batch *b;
	void *item;
	struct chat *chat;
};

struct batch {
	struct engine *eng;
	const struct config *cfg;
	int max, limit, running;
	int ended;                  /* the source said BATCH_END */
	int in_refill;
	struct llm_opts o;
	const struct batch_cbs *cbs;
	void *ud;
	struct slot *slots;
	struct loop_timer *kick;
	const struct upstream_gate *gate;
	int tokens;                 /* gate slots held, no item on them */
	int waiting;                /* in the gate's waiters */
};

static void on_delta(void *ud, const char *s, size_t n)
{
	(void)ud;
	(void)s;
	(void)n;
}

static void on_retry(void *ud, const struct err *why, int attempt,
		     int64_t delay_ms)
{
	struct slot *s = ud;

	if (s->b->cbs->on_retry)
		s->b->cbs->on_retry(s->b->ud, s->item, why, attempt, delay_ms);
}

/* Returns 1 when the batch is finished (and gone). */
static int maybe_done(struct batch *b)
{
	if (!b->ended || b->running)
		return 0;
	const struct batch_cbs *cbs = b->cbs;
	void *ud = b->ud;
	batch_cancel(b);
	cbs->on_done(ud);
	return 1;
}

static void on_done(void *ud, const struct chat_result *r)
{
	struct slot *s = ud;
	struct batch *b = s->b;
	void *item = s->item;
	struct chat_result whole = *r;

	/* An item's result is its answer: one too large to keep whole is
	 * the item's error, never a cut answer. */
	if (whole.err.code == ERR_OK)
		chat_result_whole(r, &whole.err);
	r = &whole;
	s->chat = NULL;
	s->item = NULL;
	b->running--;
	/* The slot goes back at once: whoever waited longest has it next. */
	if (b->gate)
		b->gate->give(b->gate->ud);
	/* A refill asked for from inside on_item waits for the one below,
	 * which may free the batch. */
	b->in_refill = 1;
	b->cbs->on_item(b->ud, item, r);
	b->in_refill = 0;
	batch_refill(b);
}

static const struct chat_cbs item_cbs = {
	.on_delta = on_delta,
	.on_retry = on_retry,
	.on_done = on_done,
};

/* Slots held with no item to run on them go back to the gate: the
 * source has nothing ready, or b has all the items it may run. */
static void give_back(struct batch *b)
{
	if (!b->gate)
		return;
	while (b->tokens > 0) {
		b->tokens--;
		b->gate->give(b->gate->ud);
	}
}

void batch_refill(struct batch *b)
{
	/* on_item may call back into here through the source; one level
	 * of refill at a time is enough. */
	if (b->in_refill)
		return;
	b->in_refill = 1;
	for (int k = 0; k < b->max && b->running < b->limit && !b->ended; k++) {
		struct slot *s = &b->slots[k];
		const struct chat_request *req;
		struct chat_result r;
		enum batch_next n;

		if (s->chat)
			continue;
		/* A slot of the shared bound first: without one, wait. */
		if (b->gate && !b->tokens) {
			if (b->waiting || !b->gate->take(b->gate->ud, b)) {
				b->waiting = 1;
				break;
			}
			b->tokens++;
		}
		n = b->cbs->next(b->ud, &s->item, &req);
		if (n == BATCH_END) {
			b->ended = 1;
			break;
		}
		if (n == BATCH_LATER)
			break;
		memset(&r, 0, sizeof(r));
		buf_init(&r.content, 0);
		s->chat = chat_start(b->eng, b->cfg, req, &b->o, &item_cbs, s, &r.err);
		if (s->chat) {
			b->running++;
			if (b->gate)
				b->tokens--;
			continue;
		}
		snprintf(r.model, sizeof(r.model), "%s", req->model ? req->model : "");
		r.first_token_ms = -1;
		void *item = s->item;
		s->item = NULL;
		b->cbs->on_item(b->ud, item, &r);
		k--;            /* the slot is free again */
	}
	b->in_refill = 0;
	give_back(b);
	maybe_done(b);
}

static void on_kick(struct loop *l, void *data)
{
	struct batch *b = data;

	(void)l;
	b->kick = NULL;
	batch_refill(b);
}

struct batch *batch_start(struct engine *eng, const struct config *cfg,
			  int concurrency, const struct llm_opts *o,
			  const struct batch_cbs *cbs, void *ud)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	b->eng = eng;
	b->cfg = cfg;
	b->max = b->limit = concurrency > 0 ? concurrency : 1;
	b->o = *o;
	b->cbs = cbs;
	b->ud = ud;
	b->slots = xcalloc((size_t)b->max, sizeof(*b->slots));
	for (int k = 0; k < b->max; k++)
		b->slots[k].b = b;
	b->kick = loop_add_timer(engine_loop(eng), 0, on_kick, b);
	return b;
}

void batch_set_gate(struct batch *b, const struct upstream_gate *g, int tokens)
{
	b->gate = g;
	b->tokens = tokens;
}

void batch_grant(struct batch *b)
{
	b->waiting = 0;
	b->tokens++;
	if (!b->kick)
		b->kick = loop_add_timer(engine_loop(b->eng), 0, on_kick, b);
}

void batch_set_concurrency(struct batch *b, int n)
{
	b->limit = n < 1 ? 1 : n > b->max ? b->max : n;
}

int batch_running(const struct batch *b)
{
	return b->running;
}

void batch_cancel(struct batch *b)
{
	if (!b)
		return;
	for (int k = 0; k < b->max; k++)
		if (b->slots[k].chat) {
			chat_cancel(b->slots[k].chat);
			b->tokens++;
		}
	if (b->gate && b->waiting)
		b->gate->forget(b->gate->ud, b);
	give_back(b);
	if (b->kick)
		loop_del_timer(engine_loop(b->eng), b->kick);
	free(b->slots);
	free(b);
}

cJSON *batch_result_json(const char *id, const struct chat_result *res)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *idn = cJSON_Parse(id);

	cJSON_AddItemToObject(o, "id", idn ? idn : cJSON_CreateString(id));
	if (res->err.code == ERR_OK) {
		cJSON_AddStringToObject(o, "content", res->content.ptr);
		cJSON_AddNullToObject(o, "error");
	} else {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddNullToObject(o, "content");
		cJSON_AddStringToObject(e, "code", err_code_name(res->err.code));
		cJSON_AddStringToObject(e, "message", res->err.msg);
		cJSON_AddItemToObject(o, "error", e);
	}
	if (res->model[0])
		cJSON_AddStringToObject(o, "model", res->model);
	else
		cJSON_AddNullToObject(o, "model");
	if (res->have_usage) {
		cJSON_AddNumberToObject(o, "prompt_tokens", (double)res->prompt_tokens);
		cJSON_AddNumberToObject(o, "completion_tokens",
					(double)res->completion_tokens);
	} else {
		cJSON_AddNullToObject(o, "prompt_tokens");
		cJSON_AddNullToObject(o, "completion_tokens");
	}
	cJSON_AddNumberToObject(o, "latency_ms", (double)res->total_ms);
	cJSON_AddNumberToObject(o, "attempts", res->attempts);
	return o;
}
