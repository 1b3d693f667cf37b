/*
 * redis.h - one Redis connection, driven by hiredis' async API on the
 * loop (loop.h): no thread, no blocking call.
 *
 * The connection is made in the background and made again, with backoff,
 * whenever it is lost; while it is down every command fails at once, so a
 * caller never waits for a Redis that is not there.  A command that is
 * not answered within the timeout fails too, and the connection is then
 * presumed broken: it is dropped and made again.  Everything runs on the
 * loop's thread.
 */
#ifndef AICHAT_REDIS_H
#define AICHAT_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/err.h"
#include "aichat/loop.h"

struct redis;
struct redis_call;
struct redisReply;

/* Where a redis:// or unix:// URL points (redis_url_parse()). */
struct redis_target {
	char host[256];              /* "" for a unix socket */
	int port;
	char path[256];              /* the unix socket, or "" */
	char password[256];          /* "" = no AUTH */
	int db;
	char shown[300];             /* the URL without its password */
};

/* Parses redis://[:PASSWORD@]HOST[:PORT][/DB] (port 6379, db 0) or
 * unix:///PATH into t.  -1 with e (ERR_USAGE) naming what is wrong;
 * rediss:// is refused, as the hiredis this is built with has no TLS. */
int redis_url_parse(const char *url, struct redis_target *t, struct err *e);

/*
 * The reply to one command: reply is NULL when the command failed (Redis
 * down, connection lost, timed out), and why then says so; otherwise it is
 * borrowed for the call (an error reply, REDIS_REPLY_ERROR, included).
 */
typedef void (*redis_reply_fn)(void *data, struct redisReply *reply,
			       const char *why);

/* A new connection to t (copied), started on l: commands fail until it is
 * up.  timeout_ms bounds every command.  Free with redis_free(). */
struct redis *redis_new(struct loop *l, const struct redis_target *t,
			int64_t timeout_ms);

/* Closes the connection: pending commands fail (their fn runs). */
void redis_free(struct redis *rs);

/*
 * Sends a command (argc arguments, binary-safe).  When the connection is
 * down, fn runs before this returns and NULL is returned; otherwise fn runs
 * later, exactly once, unless redis_call_cancel() is called first.
 */
struct redis_call *redis_command(struct redis *rs, redis_reply_fn fn,
				 void *data, int argc, const char **argv,
				 const size_t *argvlen);

/* fn of call will not run (call is NULL-safe).  The call must be pending. */
void redis_call_cancel(struct redis_call *call);

/* 1 when connected (and authenticated), else 0. */
int redis_up(const struct redis *rs);

/* Why the connection is down ("" when up): borrowed. */
const char *redis_reason(const struct redis *rs);

/* The URL, without its password: borrowed. */
const char *redis_shown(const struct redis *rs);

/* Counters for /metrics: failed commands and lost connections, and the
 * round trips of answered commands (count and total seconds). */
struct redis_stats {
	unsigned long long errors;
	unsigned long long roundtrips;
	double roundtrip_seconds;
	unsigned long long reconnects;
};

/* What the connection shows other threads (serve --workers: one
 * connection per worker, /health and /metrics gather them all). */
struct redis_view {
	int up;
	char reason[512];            /* why it is down, "" when up */
	struct redis_stats st;
};

/* A copy of rs's state, taken under its lock: any thread may ask, while
 * rs lives. */
void redis_view(struct redis *rs, struct redis_view *v);

/* Adds v to sum: the counters add up, sum is up only while every
 * connection is, and its reason is the first one down's. */
void redis_view_add(struct redis_view *sum, const struct redis_view *v);

struct buf;
/* Appends v's metrics to out, in Prometheus' text format:
 * aichat_redis_up, aichat_redis_errors_total,
 * aichat_redis_roundtrip_seconds (sum and count), aichat_redis_connects_total. */
void redis_metrics(const struct redis_view *v, struct buf *out);

/* The SHA-1 the server gave for script (loaded with SCRIPT LOAD at each
 * connection), or NULL while unknown: then EVAL it. */
const char *redis_script_sha(const struct redis *rs);

/* The script the connection loads (set before it is up; borrowed, must
 * outlive rs). */
void redis_set_script(struct redis *rs, const char *script);

#endif
