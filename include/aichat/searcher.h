/*
 * searcher.h - serve's document searches, off the event loop.
 *
 * A search of a large collection reads SQLite for milliseconds (tens at a
 * million chunks), and the first hybrid search of a collection reads all
 * its vectors (half a second for 600 MB).  On the loop thread that would
 * stall every stream.  So one worker thread, with its own connection to
 * the store, runs the searches in order; the loop learns of each result
 * through an eventfd and calls back on its own thread.  One thread for
 * all searches, not one per request.  Listing the collections with their
 * counts (GET /rag/collections) scans as much, and runs there too, as
 * does the read of one collection's settings a rag route starts with.
 *
 * The worker is the only thread of serve that calls the rag service (its
 * in-memory copy of vectors included).
 */
#ifndef AICHAT_SEARCHER_H
#define AICHAT_SEARCHER_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/err.h"
#include "aichat/loop.h"
#include "aichat/rag.h"

struct searcher;
struct search;

struct search_result {
	int rc;                        /* 0, or -1 with err */
	int timed_out;                 /* -1 because the time limit passed */
	struct err err;
	struct rag_hit *hits;          /* the callee's: rag_hits_free() */
	size_t n;
	struct rag_collection *cols;   /* searcher_list(): borrowed for the
					* callback */
	size_t ncols;
};

/* Called on the loop thread, once per search not cancelled. */
typedef void (*search_fn)(void *ud, struct search_result *res);

/* Opens its own connection to the store and starts the worker; NULL with
 * e when either fails. */
struct searcher *searcher_new(struct loop *loop, struct err *e);
/* Stops the worker (a search under way is interrupted) and frees it; no
 * callback runs afterwards. */
void searcher_free(struct searcher *s);

/*
 * Queues rag_search_hybrid(collection, query, qvec, dim, k) (qvec is
 * copied; NULL: BM25 alone).  The search itself may take timeout_ms once
 * the worker starts it, reading changed vectors excepted; then it is
 * interrupted and the result says timed_out.  Never NULL.
 */
struct search *searcher_start(struct searcher *s, const char *collection,
			      const char *query, const float *qvec, int dim,
			      int k, int64_t timeout_ms, search_fn fn, void *ud);
/* Queues rag_collection_list() (every collection, counted), within
 * timeout_ms once the worker starts it; fn gets the list in res->cols.
 * Never NULL; search_cancel() forgets it like a search. */
struct search *searcher_list(struct searcher *s, int64_t timeout_ms,
			     search_fn fn, void *ud);
/* Queues rag_collection_get(collection): fn gets it as res->cols[0]
 * (ncols 1), or rc -1 with err when there is no such collection.  The
 * rag routes ask it first, to learn whether to embed the query. */
struct search *searcher_describe(struct searcher *s, const char *collection,
				 int64_t timeout_ms, search_fn fn, void *ud);
/* Forgets a search (interrupting it when under way): fn will not run. */
void search_cancel(struct search *q);

#endif
