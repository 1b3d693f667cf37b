/*
 * loop.c - epoll event loop with a binary min-heap of timers.
 *
 * File handlers live in an array indexed by fd.  Timers sit in a heap
 * ordered by deadline; each timer knows its heap index so deletion is
 * O(log n).  Handlers may change registrations from inside a callback:
 * epoll events for an fd that was deleted (or re-added for another
 * purpose) during the same iteration are checked against a generation
 * counter and dropped.  A parked fd (loop_park_fd) stays in the epoll set
 * with no handler: watched again with the same events it costs no
 * syscall; an event while parked takes it out of the set.
 */
#include "aichat/loop.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct fd_slot {
	loop_fd_fn fn;
	void *data;
	int mask;
	unsigned gen;
	int parked;     /* in the epoll set as mask, with no handler */
};

struct loop_timer {
	int64_t when;
	loop_timer_fn fn;
	void *data;
	size_t idx;
};

struct loop {
	int epfd;
	int stop;
	struct fd_slot *fds;
	int nfds_cap;
	int nwatched;
	struct loop_timer **heap;
	size_t nheap, heap_cap;
};

int64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *l = xcalloc(1, sizeof(*l));

	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	free(l->fds);
	close(l->epfd);
	free(l);
}

int loop_add_fd(struct loop *l, int fd, int mask, loop_fd_fn fn, void *data)
{
	struct epoll_event ev = { 0 };
	int op;

	if (fd < 0)
		return -1;
	if (fd >= l->nfds_cap) {
		int cap = l->nfds_cap ? l->nfds_cap : 64;
		while (cap <= fd)
			cap *= 2;
		l->fds = xrealloc(l->fds, (size_t)cap * sizeof(*l->fds));
		memset(l->fds + l->nfds_cap, 0,
		       (size_t)(cap - l->nfds_cap) * sizeof(*l->fds));
		l->nfds_cap = cap;
	}
	if (l->fds[fd].parked && l->fds[fd].mask == mask) {
		/* Still in the set as it should be: no syscall.  Its
		 * generation stays the one the kernel holds. */
		l->fds[fd].parked = 0;
		l->fds[fd].fn = fn;
		l->fds[fd].data = data;
		l->nwatched++;
		return 0;
	}
	op = l->fds[fd].fn || l->fds[fd].parked ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	ev.events = (mask & LOOP_READ ? EPOLLIN : 0) |
		    (mask & LOOP_WRITE ? EPOLLOUT : 0) |
		    (mask & LOOP_HUP ? EPOLLRDHUP : 0);
	ev.data.u64 = (uint64_t)fd | ((uint64_t)(l->fds[fd].gen + 1) << 32);
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0) {
		/* The fd was closed and reused behind our back: start over. */
		if (op == EPOLL_CTL_MOD && errno == ENOENT)
			op = EPOLL_CTL_ADD;
		else if (op == EPOLL_CTL_ADD && errno == EEXIST)
			op = EPOLL_CTL_MOD;
		else
			return -1;
		if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
			return -1;
	}
	if (!l->fds[fd].fn)
		l->nwatched++;
	l->fds[fd].parked = 0;
	l->fds[fd].gen++;
	l->fds[fd].fn = fn;
	l->fds[fd].data = data;
	l->fds[fd].mask = mask;
	return 0;
}

void loop_del_fd(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds_cap || (!l->fds[fd].fn && !l->fds[fd].parked))
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (l->fds[fd].fn)
		l->nwatched--;
	l->fds[fd].fn = NULL;
	l->fds[fd].data = NULL;
	l->fds[fd].mask = 0;
	l->fds[fd].parked = 0;
	l->fds[fd].gen++;
}

void loop_park_fd(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds_cap || !l->fds[fd].fn)
		return;
	l->fds[fd].fn = NULL;
	l->fds[fd].data = NULL;
	l->fds[fd].parked = 1;
	l->nwatched--;
}

/* ---- timer heap ---- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = a;
	l->heap[b]->idx = b;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->when <= l->heap[i]->when)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->when < l->heap[m]->when)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[m]->when)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

struct loop_timer *loop_add_timer(struct loop *l, int64_t ms,
				  loop_timer_fn fn, void *data)
{
	struct loop_timer *t = xmalloc(sizeof(*t));

	t->when = loop_now_ms() + (ms > 0 ? ms : 0);
	t->fn = fn;
	t->data = data;
	if (l->nheap == l->heap_cap) {
		l->heap_cap = l->heap_cap ? l->heap_cap * 2 : 16;
		l->heap = xrealloc(l->heap, l->heap_cap * sizeof(*l->heap));
	}
	t->idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->idx);
	return t;
}

static void heap_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = t->idx;

	l->nheap--;
	if (i != l->nheap) {
		l->heap[i] = l->heap[l->nheap];
		l->heap[i]->idx = i;
		heap_down(l, i);
		heap_up(l, i);
	}
}

void loop_del_timer(struct loop *l, struct loop_timer *t)
{
	if (!t)
		return;
	heap_remove(l, t);
	free(t);
}

static void run_timers(struct loop *l)
{
	int64_t now = loop_now_ms();
	/* Timers added by a handler with 0 ms run on the next iteration, so
	 * a handler that re-arms itself cannot starve file events. */
	size_t budget = l->nheap;

	while (budget-- && l->nheap && l->heap[0]->when <= now && !l->stop) {
		struct loop_timer *t = l->heap[0];
		loop_timer_fn fn = t->fn;
		void *data = t->data;

		heap_remove(l, t);
		free(t);
		fn(l, data);
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[64];

	l->stop = 0;
	while (!l->stop && (l->nwatched > 0 || l->nheap > 0)) {
		int timeout = -1;

		if (l->nheap) {
			int64_t d = l->heap[0]->when - loop_now_ms();
			timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
		}
		int n = epoll_wait(l->epfd, evs, 64, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			int fd = (int)(evs[i].data.u64 & 0xffffffffu);
			unsigned gen = (unsigned)(evs[i].data.u64 >> 32);
			struct fd_slot *s;
			int mask = 0;

			if (fd >= l->nfds_cap)
				continue;
			s = &l->fds[fd];
			if (s->gen != gen)
				continue;
			if (s->parked) {
				/* No one watches it now (an idle connection
				 * the server closed): out of the set, so a
				 * level-triggered event does not come back. */
				loop_del_fd(l, fd);
				continue;
			}
			if (!s->fn)
				continue;
			if (evs[i].events & EPOLLIN)
				mask |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				mask |= LOOP_WRITE;
			if (evs[i].events & EPOLLRDHUP)
				mask |= LOOP_HUP;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				mask |= s->mask ? s->mask : LOOP_READ;
			s->fn(l, fd, mask, s->data);
		}
		if (!l->stop)
			run_timers(l);
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}
