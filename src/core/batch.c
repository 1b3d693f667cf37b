/*
 * batch.c - bounded-concurrency runs of chat requests; see batch.h.
 *
 * A refill-to-N loop: start items until N run, and start the next one
 * whenever one finishes.  An item that cannot even start (unknown model)
 * is an error result for that item, like any other failure.
 */
#include "aichat/batch.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	struct batch *b;
	size_t index;
	struct chat *chat;
};

struct batch {
	struct engine *eng;
	const struct config *cfg;
	const struct chat_request *reqs;
	size_t n, next, done;
	int concurrency;
	struct llm_opts o;
	const struct batch_cbs *cbs;
	void *ud;
	struct slot *slots;
	struct loop_timer *kick;
};

static void refill(struct batch *b);

static void on_delta(void *ud, const char *s, size_t n)
{
	(void)ud;
	(void)s;
	(void)n;
}

/* Reports item s's result; returns 1 when that was the last item (the
 * batch is gone then). */
static int report(struct batch *b, size_t index, const struct chat_result *r)
{
	b->done++;
	b->cbs->on_item(b->ud, index, r);
	if (b->done < b->n)
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

	s->chat = NULL;
	if (!report(b, s->index, r))
		refill(b);
}

static const struct chat_cbs item_cbs = {
	.on_delta = on_delta,
	.on_done = on_done,
};

/* Fills free slots in input order.  An item that cannot start is
 * reported at once and its slot reused: a loop, not recursion, so a
 * long run of bad items cannot exhaust the stack. */
static void refill(struct batch *b)
{
	int k = 0;

	while (k < b->concurrency && b->next < b->n) {
		struct slot *s = &b->slots[k];
		struct chat_result r;

		if (s->chat) {
			k++;
			continue;
		}
		s->index = b->next++;
		memset(&r, 0, sizeof(r));
		buf_init(&r.content, 0);
		s->chat = chat_start(b->eng, b->cfg, &b->reqs[s->index], &b->o,
				     &item_cbs, s, &r.err);
		if (!s->chat) {
			const char *m = b->reqs[s->index].model;
			snprintf(r.model, sizeof(r.model), "%s", m ? m : "");
			if (report(b, s->index, &r))
				return;
		}
	}
}

static void on_kick(struct loop *l, void *data)
{
	struct batch *b = data;

	(void)l;
	b->kick = NULL;
	refill(b);
}

struct batch *batch_start(struct engine *eng, const struct config *cfg,
			  const struct chat_request *reqs, size_t n,
			  int concurrency, const struct llm_opts *o,
			  const struct batch_cbs *cbs, void *ud)
{
	struct batch *b = xcalloc(1, sizeof(*b));

	b->eng = eng;
	b->cfg = cfg;
	b->reqs = reqs;
	b->n = n;
	b->concurrency = concurrency > 0 ? concurrency : 1;
	b->o = *o;
	b->cbs = cbs;
	b->ud = ud;
	b->slots = xcalloc((size_t)b->concurrency, sizeof(*b->slots));
	for (int k = 0; k < b->concurrency; k++)
		b->slots[k].b = b;
	b->kick = loop_add_timer(engine_loop(eng), 0, on_kick, b);
	return b;
}

void batch_cancel(struct batch *b)
{
	if (!b)
		return;
	for (int k = 0; k < b->concurrency; k++)
		chat_cancel(b->slots[k].chat);
	if (b->kick)
		loop_del_timer(engine_loop(b->eng), b->kick);
	free(b->slots);
	free(b);
}
