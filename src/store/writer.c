/*
 * writer.c - serve's SQLite work on one worker thread; see writer.h.
 *
 * Invariants: an op is in exactly one place -- the queue, the worker
 * (w->running, a list: a batch), or the done list -- and w->lock guards
 * all three and the counts.  The done list is newest first (finish()
 * reverses it).  Only the loop thread calls done callbacks and frees ops; only
 * the loop thread reads or writes an op's cancelled flag.
 */
#include "aichat/config.h"
#include "aichat/store.h"
#include "aichat/writer.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Ops of one batch kind run in one transaction, this many at most. */
#define WRITER_BATCH_MAX 256

struct writer_op {
	const struct writer_ops *ops;
	void *arg;
	int bounded;
	int rc;                        /* run()'s last answer; -1 before */
	int cancelled;                 /* loop thread only */
	struct writer_op *next;
};

struct writer {
	struct loop *loop;
	sqlite3 *db;                   /* the worker's connection */
	int efd;                       /* worker -> loop: ops are done */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct writer_op *queue, **queue_tail, *running, *done;
	size_t bounded, max_bounded, pending;
	int stop;
};

/* Sleeps ms unless the writer is told to stop; 1 when it was. */
static int pause_ms(struct writer *w, long ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &ts) == 0)
		;
	stop = w->stop;
	pthread_mutex_unlock(&w->lock);
	return stop;
}

/* Runs one op until it goes through, fails, or (stopping) once. */
static void run_one(struct writer *w, struct writer_op *op, int stopping)
{
	long backoff = 20;

	/* Busy or locked: again, a little later, until it goes through or
	 * the writer stops (then once more is all). */
	while ((op->rc = op->ops->run(w->db, op->arg)) == WRITER_RETRY && !stopping) {
		stopping = pause_ms(w, backoff);
		if (backoff < 500)
			backoff *= 2;
	}
}

/*
 * A run of batch ops in one transaction: one commit (one WAL append and
 * its locks) for all of them instead of one each.  Anything short of
 * every op going through and the commit too rolls the transaction back,
 * and each op runs again alone, as unbatched ops do.
 */
static void run_batch(struct writer *w, struct writer_op *list, int stopping)
{
	struct writer_op *op;
	int ok = sqlite3_exec(w->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;

	for (op = list; ok && op; op = op->next)
		ok = (op->rc = op->ops->run(w->db, op->arg)) == 0;
	if (ok && sqlite3_exec(w->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return;
	if (!sqlite3_get_autocommit(w->db))
		sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
	for (op = list; op; op = op->next)
		run_one(w, op, stopping);
}

static void *worker(void *arg)
{
	struct writer *w = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct writer_op *op, *last;
		int stopping, n = 1;

		while (!w->stop && !w->queue)
			pthread_cond_wait(&w->wake, &w->lock);
		if (!w->queue)
			break;            /* stopping, and nothing left */
		/* The op first in line, with the ops of the same batch kind
		 * right behind it. */
		op = last = w->queue;
		if (op->ops->batch)
			while (last->next && last->next->ops == op->ops &&
			       n < WRITER_BATCH_MAX) {
				last = last->next;
				n++;
			}
		w->queue = last->next;
		if (!w->queue)
			w->queue_tail = &w->queue;
		last->next = NULL;
		w->running = op;
		stopping = w->stop;
		pthread_mutex_unlock(&w->lock);
		if (n > 1)
			run_batch(w, op, stopping);
		else
			run_one(w, op, stopping);
		pthread_mutex_lock(&w->lock);
		w->running = NULL;
		while (op) {
			struct writer_op *next = op->next;
			op->next = w->done;
			w->done = op;
			op = next;
		}
		while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* On the loop (or in writer_free): the done callbacks owed, oldest
 * first. */
static void finish(struct writer *w, int cancel_all)
{
	struct writer_op *list, *rev = NULL;

	pthread_mutex_lock(&w->lock);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->lock);
	while (list) {
		struct writer_op *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct writer_op *op = rev;
		rev = op->next;
		pthread_mutex_lock(&w->lock);
		w->pending--;
		if (op->bounded)
			w->bounded--;
		pthread_mutex_unlock(&w->lock);
		op->ops->done(op->arg, op->rc, op->cancelled || cancel_all);
		free(op);
	}
}

static void on_done(struct loop *l, int fd, int events, void *data)
{
	uint64_t n;

	(void)l;
	(void)events;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	finish(data, 0);
}

struct writer *writer_new(struct loop *loop, size_t max_queue, struct err *e)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	sigset_t all, old;
	const char *busy = env_get("AICHAT_WRITER_BUSY_MS");
	int rc;

	w->loop = loop;
	w->efd = -1;
	w->max_bounded = max_queue ? max_queue : 1;
	w->queue_tail = &w->queue;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (store_open(NULL, &w->db, e) < 0)
		goto fail;
	/* Each try waits this long for a lock; the worker tries again. */
	sqlite3_busy_timeout(w->db, busy ? atoi(busy) : 1000);
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    loop_add_fd(loop, w->efd, LOOP_READ, on_done, w) < 0) {
		err_set(e, ERR_INTERNAL, "cannot start the database thread: %s", strerror(errno));
		goto fail;
	}
	/* Signals are the loop's: none is delivered to the worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the database thread: %s", strerror(rc));
		loop_del_fd(loop, w->efd);
		goto fail;
	}
	return w;
fail:
	if (w->efd >= 0)
		close(w->efd);
	store_close(w->db);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
	return NULL;
}

void writer_free(struct writer *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_broadcast(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	finish(w, 1);
	loop_del_fd(w->loop, w->efd);
	close(w->efd);
	store_close(w->db);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->wake);
	free(w);
}

struct writer_op *writer_submit(struct writer *w, const struct writer_ops *ops,
				void *arg, int flags)
{
	struct writer_op *op;

	pthread_mutex_lock(&w->lock);
	if (flags == WRITER_BOUNDED && w->bounded >= w->max_bounded) {
		pthread_mutex_unlock(&w->lock);
		return NULL;
	}
	op = xcalloc(1, sizeof(*op));
	op->ops = ops;
	op->arg = arg;
	op->rc = -1;
	op->bounded = flags == WRITER_BOUNDED;
	w->bounded += (size_t)op->bounded;
	w->pending++;
	*w->queue_tail = op;
	w->queue_tail = &op->next;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return op;
}

void writer_cancel(struct writer_op *op)
{
	if (op)
		op->cancelled = 1;
}

size_t writer_pending(struct writer *w)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->pending;
	pthread_mutex_unlock(&w->lock);
	return n;
}
