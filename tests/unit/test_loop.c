/*
 * test_loop.c - unit tests for the event loop (src/engine/loop.c).
 *
 * Timer cases are tables: timers to add (delay, and what the callback does
 * when it fires: delete another timer, add one, stop the loop) and the
 * order in which they must fire.  File events use a pipe.  Delays are a few
 * milliseconds so the whole file runs well under a second; order is checked
 * against each timer's deadline as the loop itself computes it.
 */
#include "aichat/loop.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==== timer tables ==== */

enum act {
	ACT_NONE,
	ACT_DEL,        /* delete timer arg */
	ACT_ADD,        /* add a new timer, id arg, after ms2 */
	ACT_STOP,       /* loop_stop() */
};

struct tspec {
	int id;         /* 0 ends the list */
	int ms;
	enum act act;
	int arg;
	int ms2;
};

struct tcase {
	const char *name;
	struct tspec timers[10];
	int del_before[4];      /* ids deleted before loop_run(), 0 ends */
	const char *order;      /* ids that fire, in order */
	const char *after_rerun;/* ids that fire on a second loop_run() */
};

#define TM(id, ms) { id, ms, ACT_NONE, 0, 0 }
#define TDO(id, ms, act, arg, ms2) { id, ms, act, arg, ms2 }

static const struct tcase tcases[] = {
	{ "in order of deadline, not insertion",
	  { TM(1, 30), TM(2, 10), TM(3, 20), TM(4, 0), TM(5, 5) },
	  { 0 }, "4 5 2 3 1", "" },
	{ "one timer", { TM(1, 1) }, { 0 }, "1", "" },
	{ "deleting the head", { TM(1, 5), TM(2, 10), TM(3, 15) }, { 1 },
	  "2 3", "" },
	{ "deleting a middle timer", { TM(1, 5), TM(2, 10), TM(3, 15), TM(4, 20) },
	  { 3 }, "1 2 4", "" },
	{ "deleting the last added", { TM(1, 5), TM(2, 1), TM(3, 3) }, { 3 },
	  "2 1", "" },
	{ "deleting every timer", { TM(1, 5), TM(2, 1) }, { 2, 1 }, "", "" },
	{ "deleting from inside a callback",
	  { TDO(1, 2, ACT_DEL, 3, 0), TM(2, 4), TM(3, 8), TM(4, 12) },
	  { 0 }, "1 2 4", "" },
	{ "deleting a due timer from inside a callback",
	  { TDO(1, 0, ACT_DEL, 2, 0), TM(2, 0), TM(3, 0) },
	  { 0 }, "1 3", "" },
	{ "deleting the next head from inside a callback",
	  { TDO(1, 2, ACT_DEL, 2, 0), TM(2, 6), TM(3, 10) },
	  { 0 }, "1 3", "" },
	{ "adding from a callback with a later deadline",
	  { TDO(1, 2, ACT_ADD, 9, 20), TM(2, 6), TM(3, 10) },
	  { 0 }, "1 2 3 9", "" },
	{ "adding from a callback with an earlier deadline",
	  { TDO(1, 2, ACT_ADD, 9, 2), TM(2, 10), TM(3, 15) },
	  { 0 }, "1 9 2 3", "" },
	{ "adding a 0 ms timer from a callback",
	  { TDO(1, 2, ACT_ADD, 9, 0), TM(2, 8) },
	  { 0 }, "1 9 2", "" },
	{ "stop from a callback leaves the rest pending",
	  { TDO(1, 2, ACT_STOP, 0, 0), TM(2, 6), TM(3, 10) },
	  { 0 }, "1", "2 3" },
	{ "stop from the last callback",
	  { TM(1, 1), TDO(2, 3, ACT_STOP, 0, 0) },
	  { 0 }, "1 2", "" },
};

struct tstate {
	struct loop *l;
	const struct tcase *c;
	struct loop_timer *handle[16];  /* by id; NULL once fired or deleted */
	char log[128];
};

struct tref {
	struct tstate *st;
	int id;
	const struct tspec *spec;       /* NULL for timers added by callbacks */
};

static struct tref refs[16];

static void on_timer(struct loop *l, void *data)
{
	struct tref *r = data;
	struct tstate *st = r->st;

	st->handle[r->id] = NULL;
	snprintf(st->log + strlen(st->log), sizeof(st->log) - strlen(st->log),
		 "%s%d", st->log[0] ? " " : "", r->id);
	if (!r->spec)
		return;
	switch (r->spec->act) {
	case ACT_DEL:
		loop_del_timer(l, st->handle[r->spec->arg]);
		st->handle[r->spec->arg] = NULL;
		break;
	case ACT_ADD:
		refs[r->spec->arg] = (struct tref){ st, r->spec->arg, NULL };
		st->handle[r->spec->arg] = loop_add_timer(l, r->spec->ms2, on_timer,
							   &refs[r->spec->arg]);
		break;
	case ACT_STOP:
		loop_stop(l);
		break;
	case ACT_NONE:
		break;
	}
}

static void check_tcase(const struct tcase *c)
{
	struct tstate st = { 0 };
	int rc;

	st.l = loop_new();
	st.c = c;
	if (!ok(st.l != NULL, "%s: loop_new", c->name))
		return;
	for (const struct tspec *t = c->timers; t->id; t++) {
		refs[t->id] = (struct tref){ &st, t->id, t };
		st.handle[t->id] = loop_add_timer(st.l, t->ms, on_timer, &refs[t->id]);
	}
	for (const int *d = c->del_before; *d; d++) {
		loop_del_timer(st.l, st.handle[*d]);
		st.handle[*d] = NULL;
	}
	rc = loop_run(st.l);
	is_int(rc, 0, "%s: loop_run returns 0", c->name);
	is_str(st.log, c->order, "%s: order", c->name);
	st.log[0] = '\0';
	rc = loop_run(st.l);
	is_int(rc, 0, "%s: second loop_run returns 0", c->name);
	is_str(st.log, c->after_rerun, "%s: second run", c->name);
	loop_free(st.l);
}

/* ==== many timers ==== */

struct many {
	int64_t lo, hi;         /* deadline bounds, as the loop computes it */
	int64_t *max_lo;
	int *fired, *bad_order, *early;
};

static void on_many(struct loop *l, void *data)
{
	struct many *m = data;

	(void)l;
	(*m->fired)++;
	if (m->hi < *m->max_lo)
		(*m->bad_order)++;
	if (m->lo > *m->max_lo)
		*m->max_lo = m->lo;
	if (loop_now_ms() < m->lo)
		(*m->early)++;
}

static void test_many_timers(void)
{
	enum { N = 10000 };
	struct many *m = calloc(N, sizeof(*m));
	struct loop_timer **h = calloc(N, sizeof(*h));
	struct loop *l = loop_new();
	int64_t max_lo = 0, start;
	int fired = 0, bad = 0, early = 0, deleted = 0;

	srand(12345);
	start = loop_now_ms();
	for (int i = 0; i < N; i++) {
		int ms = rand() % 150;

		m[i] = (struct many){ 0, 0, &max_lo, &fired, &bad, &early };
		m[i].lo = loop_now_ms() + ms;
		h[i] = loop_add_timer(l, ms, on_many, &m[i]);
		m[i].hi = loop_now_ms() + ms;
	}
	/* Delete every seventh, from all over the heap. */
	for (int i = 0; i < N; i += 7) {
		loop_del_timer(l, h[i]);
		deleted++;
	}
	is_int(loop_run(l), 0, "10000 timers: loop_run returns 0");
	is_int(fired, N - deleted, "10000 timers: every live timer fired once");
	is_int(bad, 0, "10000 timers: fired in deadline order");
	is_int(early, 0, "10000 timers: none fired early");
	ok(loop_now_ms() - start < 600, "10000 timers: done in time (%lld ms)",
	   (long long)(loop_now_ms() - start));
	loop_free(l);
	free(h);
	free(m);
}

/* ==== a self-rearming 0 ms timer does not starve a file event ==== */

struct starve {
	int wr;
	int64_t start;
	int ticks, written_at, seen_at;
};

static void on_tick(struct loop *l, void *data)
{
	struct starve *s = data;

	s->ticks++;
	/* Stop once the fd was served, or give up after a while instead of
	 * spinning forever. */
	if (s->seen_at >= 0 || loop_now_ms() - s->start > 500)
		return;
	loop_add_timer(l, 0, on_tick, s);
}

static void on_starve_write(struct loop *l, void *data)
{
	struct starve *s = data;

	(void)l;
	s->written_at = s->ticks;
	if (write(s->wr, "x", 1) != 1)
		perror("write");
}

static void on_starve_fd(struct loop *l, int fd, int events, void *data)
{
	struct starve *s = data;
	char c;

	(void)events;
	if (read(fd, &c, 1) == 1)
		s->seen_at = s->ticks;
	loop_del_fd(l, fd);
}

static void test_no_starvation(void)
{
	struct loop *l = loop_new();
	struct starve s = { 0 };
	int p[2];

	if (pipe(p) < 0) {
		perror("pipe");
		exit(1);
	}
	s.wr = p[1];
	s.start = loop_now_ms();
	s.written_at = s.seen_at = -1;
	loop_add_timer(l, 0, on_tick, &s);
	loop_add_timer(l, 3, on_starve_write, &s);
	loop_add_fd(l, p[0], LOOP_READ, on_starve_fd, &s);
	is_int(loop_run(l), 0, "0 ms re-armed timer: loop_run returns");
	ok(s.written_at > 0, "0 ms re-armed timer: a later timer still ran (after %d ticks)",
	   s.written_at);
	ok(s.seen_at >= 0 && s.seen_at - s.written_at <= 3,
	   "0 ms re-armed timer: the fd event ran within a few ticks "
	   "(written at %d, read at %d)", s.written_at, s.seen_at);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

/* ==== file events on a pipe ==== */

struct pipe_state {
	int rd, wr;
	int reads, writes, last_events;
	char got[64];
	int del_self;
	int stop_self;
};

static void on_readable(struct loop *l, int fd, int events, void *data)
{
	struct pipe_state *s = data;
	ssize_t n;

	s->reads++;
	s->last_events = events;
	n = read(fd, s->got + strlen(s->got), sizeof(s->got) - strlen(s->got) - 1);
	if (n <= 0 || s->del_self)
		loop_del_fd(l, fd);
	if (s->stop_self)
		loop_stop(l);
}

static void on_write_timer(struct loop *l, void *data)
{
	struct pipe_state *s = data;

	(void)l;
	if (write(s->wr, "late", 4) != 4)
		perror("write");
}

static void on_close_timer(struct loop *l, void *data)
{
	struct pipe_state *s = data;

	(void)l;
	close(s->wr);
	s->wr = -1;
}

static void make_pipe(struct pipe_state *s)
{
	int p[2];

	memset(s, 0, sizeof(*s));
	if (pipe(p) < 0) {
		perror("pipe");
		exit(1);
	}
	s->rd = p[0];
	s->wr = p[1];
	fcntl(s->rd, F_SETFL, O_NONBLOCK);
}

static void close_pipe(struct pipe_state *s)
{
	if (s->rd >= 0)
		close(s->rd);
	if (s->wr >= 0)
		close(s->wr);
}

static void on_writable(struct loop *l, int fd, int events, void *data)
{
	struct pipe_state *s = data;

	s->writes++;
	s->last_events = events;
	loop_del_fd(l, fd);
}

static void on_never_loop(struct loop *l, void *data)
{
	(void)l;
	(void)data;
}

static void test_fd_events(void)
{
	struct pipe_state s;
	struct loop *l = loop_new();

	/* Written before the run: one read, the callback deletes itself. */
	make_pipe(&s);
	s.del_self = 1;
	if (write(s.wr, "hello", 5) != 5)
		perror("write");
	is_int(loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s), 0,
	       "pipe: loop_add_fd");
	is_int(loop_run(l), 0, "pipe: loop_run returns when the fd is deleted");
	is_int(s.reads, 1, "pipe: one read callback");
	is_str(s.got, "hello", "pipe: data read");
	ok(s.last_events & LOOP_READ, "pipe: LOOP_READ reported");
	close_pipe(&s);

	/* Written from a timer while the loop waits; closed later: EOF. */
	make_pipe(&s);
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	loop_add_timer(l, 3, on_write_timer, &s);
	loop_add_timer(l, 8, on_close_timer, &s);
	is_int(loop_run(l), 0, "pipe: loop_run with a writer timer");
	is_str(s.got, "late", "pipe: data written during the run");
	ok(s.reads >= 2, "pipe: read then end of file (%d reads)", s.reads);
	ok(s.last_events & LOOP_READ, "pipe: hangup reported as readable");
	close_pipe(&s);

	/* Stop from an fd callback; the fd stays watched until deleted. */
	make_pipe(&s);
	s.stop_self = 1;
	if (write(s.wr, "a", 1) != 1)
		perror("write");
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	is_int(loop_run(l), 0, "pipe: loop_stop from an fd callback");
	is_int(s.reads, 1, "pipe: one read before stopping");
	s.stop_self = 0;
	s.del_self = 1;
	if (write(s.wr, "b", 1) != 1)
		perror("write");
	is_int(loop_run(l), 0, "pipe: loop_run again after a stop");
	is_str(s.got, "ab", "pipe: the watch survived the stop");
	close_pipe(&s);

	/* Writable end of a pipe whose reader is gone: error as writable. */
	make_pipe(&s);
	close(s.rd);
	s.rd = -1;
	loop_add_fd(l, s.wr, LOOP_WRITE, on_writable, &s);
	is_int(loop_run(l), 0, "pipe: write watch");
	is_int(s.writes, 1, "pipe: one write callback");
	ok(s.last_events & LOOP_WRITE, "pipe: error reported as writable");
	close_pipe(&s);

	/* Re-adding an fd replaces its watch. */
	make_pipe(&s);
	s.del_self = 1;
	if (write(s.wr, "z", 1) != 1)
		perror("write");
	loop_add_fd(l, s.rd, LOOP_WRITE, on_writable, &s);
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	is_int(loop_run(l), 0, "pipe: replaced watch");
	is_int(s.reads, 1, "pipe: the new handler ran");
	is_int(s.writes, 0, "pipe: the old handler did not");
	close_pipe(&s);

	/* Deleting an fd that is not watched is a no-op. */
	loop_del_fd(l, 1000);
	loop_del_fd(l, -1);
	is_int(loop_add_fd(l, -1, LOOP_READ, on_readable, &s), -1,
	       "loop_add_fd of -1 fails");
	is_int(loop_run(l), 0, "empty loop returns at once");
	loop_free(l);
}

/* A parked fd: not watched (the loop returns), still in the set; watched
 * again, its events come; an event while parked takes it out, once. */
static void on_park_timer(struct loop *l, void *data)
{
	struct pipe_state *s = data;

	loop_add_fd(l, s->rd, LOOP_READ, on_readable, s);
}

static void test_park(void)
{
	struct pipe_state s;
	struct loop *l = loop_new();

	make_pipe(&s);
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	loop_park_fd(l, s.rd);
	is_int(loop_run(l), 0, "park: a parked fd alone does not keep the loop running");
	/* Readable while parked: the event takes it out of the set, and
	 * nothing is called. */
	if (write(s.wr, "p", 1) != 1)
		perror("write");
	loop_add_timer(l, 5, on_never_loop, NULL);
	is_int(loop_run(l), 0, "park: an event on a parked fd");
	is_int(s.reads, 0, "park: no handler called while parked");
	/* Watched again (the same events): the byte waiting is read. */
	s.del_self = 1;
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	is_int(loop_run(l), 0, "park: watched again after the event");
	is_int(s.reads, 1, "park: its handler runs");
	is_str(s.got, "p", "park: the byte that came while parked");
	/* Parked, then watched again from a timer before any event; a byte
	 * written after comes through. */
	s.del_self = 0;
	s.stop_self = 1;
	loop_add_fd(l, s.rd, LOOP_READ, on_readable, &s);
	loop_park_fd(l, s.rd);
	loop_add_timer(l, 2, on_park_timer, &s);
	loop_add_timer(l, 4, on_write_timer, &s);
	is_int(loop_run(l), 0, "park: unparked from a timer");
	is_str(s.got, "plate", "park: read once watched again, no syscall needed");
	/* Deleted while parked: gone for good. */
	loop_park_fd(l, s.rd);
	loop_del_fd(l, s.rd);
	if (write(s.wr, "x", 1) != 1)
		perror("write");
	loop_add_timer(l, 3, on_never_loop, NULL);
	is_int(loop_run(l), 0, "park: deleted while parked");
	is_int(s.reads, 2, "park: no call after the delete");
	/* Parking what is not watched is a no-op. */
	loop_park_fd(l, 1000);
	loop_park_fd(l, -1);
	close_pipe(&s);
	loop_free(l);
}

/* An fd deleted by an earlier callback of the same iteration is not called. */
struct pair {
	int rd[2], wr[2];
	int calls;
};

static void on_pair(struct loop *l, int fd, int events, void *data)
{
	struct pair *p = data;
	char buf[8];

	(void)events;
	p->calls++;
	if (read(fd, buf, sizeof(buf)) < 0)
		perror("read");
	loop_del_fd(l, p->rd[0]);
	loop_del_fd(l, p->rd[1]);
}

static void test_delete_other_fd(void)
{
	struct loop *l = loop_new();
	struct pair p = { 0 };
	int a[2], b[2];

	if (pipe(a) < 0 || pipe(b) < 0) {
		perror("pipe");
		exit(1);
	}
	p.rd[0] = a[0];
	p.rd[1] = b[0];
	if (write(a[1], "1", 1) != 1 || write(b[1], "2", 1) != 1)
		perror("write");
	loop_add_fd(l, a[0], LOOP_READ, on_pair, &p);
	loop_add_fd(l, b[0], LOOP_READ, on_pair, &p);
	is_int(loop_run(l), 0, "two fds: loop_run");
	is_int(p.calls, 1, "two fds: the one deleted by the other is not called");
	loop_free(l);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

/* loop_free() frees pending timers without calling them. */
static void on_never(struct loop *l, void *data)
{
	(void)l;
	(*(int *)data)++;
}

static void test_free_pending(void)
{
	struct loop *l = loop_new();
	int calls = 0;

	for (int i = 0; i < 40; i++)
		loop_add_timer(l, 10000 + i, on_never, &calls);
	loop_free(l);
	is_int(calls, 0, "loop_free: pending timers are not called");
	lives_ok(loop_free(NULL), "loop_free(NULL) is a no-op");
}

int main(void)
{
	int64_t start = loop_now_ms();

	for (size_t i = 0; i < sizeof(tcases) / sizeof(tcases[0]); i++)
		check_tcase(&tcases[i]);
	test_many_timers();
	test_no_starvation();
	test_fd_events();
	test_delete_other_fd();
	test_park();
	test_free_pending();
	ok(loop_now_ms() - start < 1500, "whole file ran in %lld ms",
	   (long long)(loop_now_ms() - start));
	return tap_done();
}
