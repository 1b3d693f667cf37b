/*
 * loop.h - the one event loop: epoll file events and one-shot timers.
 *
 * Everything asynchronous in aichat runs on a loop: libcurl transfers (see
 * transfer.h), the mock provider's timed tokens, signals in the CLI and,
 * in serve mode, the HTTP server's sockets.  Callbacks run on the thread
 * that called loop_run(); none of these functions is thread-safe.
 * A callback may add or delete any fd or timer, including its own.
 */
#ifndef AICHAT_LOOP_H
#define AICHAT_LOOP_H

#include <stdint.h>

/* LOOP_HUP: the peer shut its side down (EPOLLRDHUP), without waking
 * for data it sends. */
enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_HUP = 4 };

struct loop;
struct loop_timer;

/* events is a mask of LOOP_READ / LOOP_WRITE / LOOP_HUP.  Errors and
 * hangups are reported as the events the fd is watched for, so the
 * handler's own read or write sees them. */
typedef void (*loop_fd_fn)(struct loop *l, int fd, int events, void *data);
typedef void (*loop_timer_fn)(struct loop *l, void *data);

/* Owned loop; free with loop_free().  NULL (errno set) if epoll fails. */
struct loop *loop_new(void);
/* Frees the loop and any timers still pending (without calling them). */
void loop_free(struct loop *l);

/* Watches fd for the events in mask, replacing any earlier watch of fd. */
int loop_add_fd(struct loop *l, int fd, int mask, loop_fd_fn fn, void *data);
/* Stops watching fd (no-op when not watched); a parked fd leaves the
 * epoll set.  Call it before closing an fd the loop may hold. */
void loop_del_fd(struct loop *l, int fd);
/* Stops watching fd but leaves it in the epoll set, so that watching it
 * again with the same events costs no syscall (a keep-alive connection
 * between two requests).  An event that comes while it is parked takes it
 * out of the set, as loop_del_fd() would.  Only for an fd whose owner
 * calls loop_del_fd() before closing it: a closed fd leaves the kernel's
 * set by itself, and a new fd of the same number would be taken for it. */
void loop_park_fd(struct loop *l, int fd);

/* Calls fn(l, data) once, after ms milliseconds (0 = next iteration).
 * The handle is valid until the timer fires or is deleted. */
struct loop_timer *loop_add_timer(struct loop *l, int64_t ms,
				  loop_timer_fn fn, void *data);
void loop_del_timer(struct loop *l, struct loop_timer *t);

/* Runs until loop_stop() is called or nothing is left to wait for
 * (no fd watched and no timer pending).  Returns 0, or -1 if epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Monotonic clock in milliseconds. */
int64_t loop_now_ms(void);

#endif
