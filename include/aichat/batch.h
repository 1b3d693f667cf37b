/*
 * batch.h - many chat requests on one engine, at most N at a time.
 *
 * The caller is the source: the batch pulls the next request whenever a
 * slot is free (a refill-to-N loop), so a source may stream millions of
 * items in constant memory, or throttle (rate limits) by answering "not
 * yet".  One item's failure is reported for that item only and never
 * stops the others.  Used by serve's POST /batch and by `aichat batch`.
 */
#ifndef AICHAT_BATCH_H
#define AICHAT_BATCH_H

#include <stddef.h>

#include "aichat/chat.h"

struct batch;

enum batch_next { BATCH_ITEM = 1, BATCH_END = 0, BATCH_LATER = -1 };

struct batch_cbs {
	/*
	 * The next request: BATCH_ITEM with *req set (borrowed until that
	 * item's on_item returns) and *item an opaque tag for it; BATCH_END
	 * when there are no more; BATCH_LATER when none is ready yet (the
	 * source calls batch_refill() when one is).
	 */
	enum batch_next (*next)(void *ud, void **item,
				const struct chat_request **req);
	/* The item finished (success or error); r valid during the call. */
	void (*on_item)(void *ud, void *item, const struct chat_result *r);
	/* A failed attempt of the item will be retried (may be NULL). */
	void (*on_retry)(void *ud, void *item, const struct err *why,
			 int attempt, int64_t delay_ms);
	/* The source ended and every item finished.  The batch frees itself
	 * after this returns. */
	void (*on_done)(void *ud);
};

/*
 * Starts pulling on the next loop iteration (no callback comes from
 * inside batch_start).  cfg and o are borrowed until on_done or
 * batch_cancel.
 */
struct batch *batch_start(struct engine *eng, const struct config *cfg,
			  int concurrency, const struct llm_opts *o,
			  const struct batch_cbs *cbs, void *ud);
/*
 * A bound shared with other upstream calls (serve's --max-upstream): each
 * running item holds one slot of it.  take() gives b a slot (1), or says
 * none is free (0): b then waits, and the gate calls batch_grant(b) when
 * one is.  give() hands one slot back; forget() takes b out of the
 * waiters (b is going away).
 */
struct upstream_gate {
	int (*take)(void *ud, struct batch *b);
	void (*give)(void *ud);
	void (*forget)(void *ud, struct batch *b);
	void *ud;
};
/* Makes b's items wait for slots of g (borrowed until the batch ends);
 * b starts holding tokens slots already taken for it (they go back to g
 * when b no longer needs them).  Call right after batch_start. */
void batch_set_gate(struct batch *b, const struct upstream_gate *g, int tokens);
/* The gate gives b one slot: b starts its next item on the next loop
 * iteration. */
void batch_grant(struct batch *b);
/* The source has items again after BATCH_LATER. */
void batch_refill(struct batch *b);
/* Changes how many items may run at once (1..the starting value);
 * running items are not stopped, fewer are started. */
void batch_set_concurrency(struct batch *b, int n);
/* Items running now. */
int batch_running(const struct batch *b);
/* Stops every running item; no callback afterwards. */
void batch_cancel(struct batch *b);

/*
 * The result line of one item, as `aichat batch` and background jobs
 * write it: {"id", "content", "error", "model", "prompt_tokens",
 * "completion_tokens", "latency_ms", "attempts"}.  id is JSON text.
 * Owned.
 */
cJSON *batch_result_json(const char *id, const struct chat_result *r);

#endif
