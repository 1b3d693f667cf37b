/*
 * batch.h - many chat requests on one engine, at most N at a time.
 *
 * Items start in input order and the pool is refilled as each finishes;
 * one item's failure is reported for that item only and never stops the
 * others.  Used by serve's POST /batch (and by `aichat batch`).
 */
#ifndef AICHAT_BATCH_H
#define AICHAT_BATCH_H

#include <stddef.h>

#include "aichat/chat.h"

struct batch;

struct batch_cbs {
	/* Item i finished (success or error); r valid during the call. */
	void (*on_item)(void *ud, size_t i, const struct chat_result *r);
	/* Every item finished.  The batch frees itself after this returns. */
	void (*on_done)(void *ud);
};

/*
 * Starts n requests, at most concurrency at once.  reqs, cfg and o are
 * borrowed until on_done (or batch_cancel); nothing runs until the loop
 * does, so no callback comes from inside batch_start.
 */
struct batch *batch_start(struct engine *eng, const struct config *cfg,
			  const struct chat_request *reqs, size_t n,
			  int concurrency, const struct llm_opts *o,
			  const struct batch_cbs *cbs, void *ud);
/* Stops every running item; no callback afterwards. */
void batch_cancel(struct batch *b);

#endif
