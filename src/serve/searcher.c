/*
 * searcher.c - serve's document searches on one worker thread; see
 * searcher.h.
 *
 * Invariants: a search is in exactly one place -- the queue, the worker
 * (s->running), or the done list -- and s->lock guards all three and
 * every search's cancelled flag.  Only the loop thread frees a search.
 */
#include "aichat/config.h"
#include "aichat/searcher.h"
#include "aichat/store.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct search {
	struct searcher *s;
	char *collection, *query;
	float *qvec;
	int dim, k;
	int64_t timeout_ms, deadline;
	search_fn fn;
	void *ud;
	int cancelled;
	int list;                      /* searcher_list(): no search */
	int describe;                  /* searcher_describe(): collection */
	struct search_result res;
	struct search *next;
};

struct searcher {
	struct loop *loop;
	long delay_ms;                 /* $AICHAT_SEARCH_DELAY_MS, for tests */
	sqlite3 *db;                   /* the worker's connection */
	int efd;                       /* worker -> loop: searches are done */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct search *queue, **queue_tail, *running, *done;
	int stop;
};

static void search_free(struct search *q)
{
	rag_hits_free(q->res.hits, q->res.n);
	free(q->res.cols);
	free(q->collection);
	free(q->query);
	free(q->qvec);
	free(q);
}

/* SQLite's progress handler: non-zero interrupts the search. */
static int past_deadline(void *data)
{
	struct search *q = data;

	return __atomic_load_n(&q->cancelled, __ATOMIC_RELAXED) ||
	       loop_now_ms() > q->deadline;
}

/* rag's vectors of the last collection are one copy in the process: the
 * searchers of several workers take turns. */
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;

static void run(struct searcher *s, struct search *q)
{
	struct err e;

	err_clear(&e);
	pthread_mutex_lock(&run_lock);
	if (s->delay_ms > 0 && !q->describe)
		usleep((useconds_t)s->delay_ms * 1000);
	/* Reading changed vectors is not the search's time: cut short, it
	 * would start again on every search.  A failure is the search's
	 * to report. */
	if (q->qvec && rag_vectors_prepare(s->db, q->collection, &e) < 0)
		err_clear(&e);
	q->deadline = loop_now_ms() + q->timeout_ms;
	sqlite3_progress_handler(s->db, 1000, past_deadline, q);
	if (q->list) {
		q->res.rc = rag_collection_list(s->db, &q->res.cols,
						&q->res.ncols, &q->res.err);
	} else if (q->describe) {
		q->res.cols = xcalloc(1, sizeof(*q->res.cols));
		q->res.rc = rag_collection_get(s->db, q->collection, q->res.cols,
					       &q->res.err);
		q->res.ncols = q->res.rc < 0 ? 0 : 1;
	} else
		q->res.rc = rag_search_hybrid(s->db, q->collection, q->query,
					      q->qvec, q->dim, q->k,
					      &q->res.hits, &q->res.n,
					      &q->res.err);
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	q->res.timed_out = q->res.rc < 0 && sqlite3_errcode(s->db) == SQLITE_INTERRUPT;
	pthread_mutex_unlock(&run_lock);
}

static void *worker(void *arg)
{
	struct searcher *s = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct search *q;
		while (!s->stop && !s->queue)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->stop)
			break;
		q = s->queue;
		s->queue = q->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		s->running = q;
		pthread_mutex_unlock(&s->lock);
		run(s, q);
		pthread_mutex_lock(&s->lock);
		s->running = NULL;
		q->next = s->done;
		s->done = q;
		while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* On the loop: the searches the worker finished, oldest first. */
static void on_done(struct loop *l, int fd, int events, void *data)
{
	struct searcher *s = data;
	struct search *list, *rev = NULL;
	uint64_t n;

	(void)l;
	(void)events;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&s->lock);
	list = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->lock);
	while (list) {
		struct search *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct search *q = rev;
		rev = q->next;
		if (!q->cancelled) {
			q->fn(q->ud, &q->res);
			q->res.hits = NULL;   /* the callee's now */
			q->res.n = 0;
		}
		search_free(q);
	}
}

struct searcher *searcher_new(struct loop *loop, struct err *e)
{
	struct searcher *s = xcalloc(1, sizeof(*s));
	sigset_t all, old;
	int rc;

	s->loop = loop;
	s->efd = -1;
	if (env_get("AICHAT_SEARCH_DELAY_MS"))
		s->delay_ms = atol(env_get("AICHAT_SEARCH_DELAY_MS"));
	s->queue_tail = &s->queue;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if (store_open(NULL, &s->db, e) < 0)
		goto fail;
	if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
	    loop_add_fd(loop, s->efd, LOOP_READ, on_done, s) < 0) {
		err_set(e, ERR_INTERNAL, "cannot start the search thread: %s", strerror(errno));
		goto fail;
	}
	/* Signals are the loop's (serve reads them from a signalfd): the
	 * worker starts with all of them blocked, so none is delivered to it. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&s->thread, NULL, worker, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		err_set(e, ERR_INTERNAL, "cannot start the search thread: %s", strerror(rc));
		loop_del_fd(loop, s->efd);
		goto fail;
	}
	return s;
fail:
	if (s->efd >= 0)
		close(s->efd);
	store_close(s->db);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
	return NULL;
}

void searcher_free(struct searcher *s)
{
	struct search *q;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	if (s->running) {
		__atomic_store_n(&s->running->cancelled, 1, __ATOMIC_RELAXED);
		sqlite3_interrupt(s->db);
	}
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	while ((q = s->queue)) {
		s->queue = q->next;
		search_free(q);
	}
	while ((q = s->done)) {
		s->done = q->next;
		search_free(q);
	}
	loop_del_fd(s->loop, s->efd);
	close(s->efd);
	store_close(s->db);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}

/* Puts q, filled in but for these, at the end of the queue. */
static struct search *queue(struct searcher *s, struct search *q,
			    int64_t timeout_ms, search_fn fn, void *ud)
{
	q->s = s;
	q->timeout_ms = timeout_ms;
	q->fn = fn;
	q->ud = ud;
	pthread_mutex_lock(&s->lock);
	*s->queue_tail = q;
	s->queue_tail = &q->next;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	return q;
}

struct search *searcher_start(struct searcher *s, const char *collection,
			      const char *query, const float *qvec, int dim,
			      int k, int64_t timeout_ms, search_fn fn, void *ud)
{
	struct search *q = xcalloc(1, sizeof(*q));

	q->collection = xstrdup(collection);
	q->query = xstrdup(query);
	if (qvec && dim > 0) {
		q->qvec = xmalloc((size_t)dim * sizeof(*q->qvec));
		memcpy(q->qvec, qvec, (size_t)dim * sizeof(*q->qvec));
		q->dim = dim;
	}
	q->k = k;
	return queue(s, q, timeout_ms, fn, ud);
}

struct search *searcher_list(struct searcher *s, int64_t timeout_ms,
			     search_fn fn, void *ud)
{
	struct search *q = xcalloc(1, sizeof(*q));

	q->list = 1;
	return queue(s, q, timeout_ms, fn, ud);
}

struct search *searcher_describe(struct searcher *s, const char *collection,
				 int64_t timeout_ms, search_fn fn, void *ud)
{
	struct search *q = xcalloc(1, sizeof(*q));

	q->describe = 1;
	q->collection = xstrdup(collection);
	return queue(s, q, timeout_ms, fn, ud);
}

void search_cancel(struct search *q)
{
	struct searcher *s = q->s;
	struct search **p;

	pthread_mutex_lock(&s->lock);
	for (p = &s->queue; *p && *p != q; p = &(*p)->next)
		;
	if (*p) {
		/* Not started: gone at once. */
		*p = q->next;
		if (!s->queue)
			s->queue_tail = &s->queue;
		else if (s->queue_tail == &q->next)
			s->queue_tail = p;
		pthread_mutex_unlock(&s->lock);
		search_free(q);
		return;
	}
	/* Under way or done: freed by on_done, without its callback. */
	__atomic_store_n(&q->cancelled, 1, __ATOMIC_RELAXED);
	if (s->running == q)
		sqlite3_interrupt(s->db);
	pthread_mutex_unlock(&s->lock);
}
