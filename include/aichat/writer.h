/*
 * writer.h - the store's writes (and serve's other SQLite work), off the
 * event loop.
 *
 * With another process holding the database's write lock, one SQLite call
 * waits for seconds; on the loop thread that would freeze every request.
 * So serve hands each piece of store work to one worker thread with its
 * own connection: the worker runs the pieces in order, and the loop learns
 * of each through an eventfd and calls its done callback on its own
 * thread.  The queue is bounded for work a client asked for
 * (writer_submit() says no when it is full: answer 503); work the server
 * owes itself (a finished job item) is always taken, its amount bounded
 * by its callers.
 */
#ifndef AICHAT_WRITER_H
#define AICHAT_WRITER_H

#include <sqlite3.h>
#include <stddef.h>

#include "aichat/err.h"
#include "aichat/loop.h"

struct writer;
struct writer_op;

/* run()'s answer when the work should be tried again (the database is
 * busy or locked): the worker waits a little and runs it again, until it
 * succeeds or the writer is being freed. */
#define WRITER_RETRY 1

struct writer_ops {
	/* On the worker thread, with its connection: 0, -1, or WRITER_RETRY.
	 * arg is the op's alone while it runs. */
	int (*run)(sqlite3 *db, void *arg);
	/* On the loop thread, once per op, with run()'s last answer (-1 when
	 * it never ran).  cancelled: the op was cancelled or the writer is
	 * being freed; done only frees arg then. */
	void (*done)(void *arg, int rc, int cancelled);
	/* 1: run() is statements that may share a transaction (it opens
	 * none itself): ops of these ops queued one after another run in
	 * one BEGIN IMMEDIATE ... COMMIT, a commit for many (the usage
	 * ledger's rows under load).  When any of them fails, or the commit
	 * does, the transaction is rolled back and each runs again alone. */
	int batch;
};

/* Opens its own connection to the store (store_open(NULL)) and starts the
 * worker; at most max_queue bounded ops wait at once.  NULL with e. */
struct writer *writer_new(struct loop *loop, size_t max_queue, struct err *e);
/* Runs what is queued once more (no retries), stops the worker, calls
 * every done callback still owed (cancelled), and frees the writer. */
void writer_free(struct writer *w);

enum { WRITER_BOUNDED = 0, WRITER_ALWAYS = 1 };

/* Queues ops->run(db, arg), then ops->done(arg, ...) on the loop.  NULL
 * when flags is WRITER_BOUNDED and the queue is full (nothing queued,
 * arg still the caller's). */
struct writer_op *writer_submit(struct writer *w, const struct writer_ops *ops,
				void *arg, int flags);
/* The op's done will be called with cancelled set; a run under way
 * finishes, a queued one still runs (what was asked is written). */
void writer_cancel(struct writer_op *op);
/* Ops queued or running now. */
size_t writer_pending(struct writer *w);
/* For tests: $AICHAT_WRITER_BUSY_MS, the worker's busy timeout per try. */

#endif
