/*
 * redis.c - one Redis connection on the loop, through hiredis' async API.
 *
 * hiredis asks, through the ev hooks of its redisAsyncContext, to watch
 * its socket for reading and writing; those hooks keep a mask and hand it
 * to loop_add_fd(), and the loop's callback calls redisAsyncHandleRead()
 * or redisAsyncHandleWrite().  No hiredis call ever blocks.
 *
 * States: down (no context, a reconnect timer pending), connecting (a
 * context, the handshake sent: AUTH, SELECT, SCRIPT LOAD) and up (the
 * handshake answered).  Only up accepts commands; in the other two a
 * command fails at once with the reason the connection is down.  A lost
 * connection, a failed handshake or a command past its deadline drops the
 * context; hiredis then fails every pending command (reply NULL) and the
 * disconnect callback schedules the next attempt, 100 ms doubling up to
 * 2 s.
 *
 * A struct redis_call lives until hiredis calls it back (always, even on
 * free); cancelling or timing out only forgets its fn.
 */
#include "aichat/buf.h"
#include "aichat/redis.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

struct redis {
	struct loop *loop;
	struct redis_target t;
	int64_t timeout_ms;
	redisAsyncContext *ac;
	int fd;                      /* ac's socket while watched, else -1 */
	int mask;                    /* LOOP_READ | LOOP_WRITE hiredis wants */
	int up;
	int closing;                 /* redis_free(): no reconnect */
	int hs_failed;               /* a step of the handshake was refused */
	char reason[512];
	char sha[41];
	const char *script;
	int64_t backoff_ms;
	struct loop_timer *retry;
	struct redis_stats st;
	pthread_mutex_t view_mu;     /* view: what other threads read */
	struct redis_view view;
};

struct redis_call {
	struct redis *rs;
	redis_reply_fn fn;           /* NULL once cancelled or timed out */
	void *data;
	struct loop_timer *timer;
	double sent;                 /* monotonic seconds */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void connect_now(struct redis *rs);

/* Copies the loop thread's state where other threads read it. */
static void publish(struct redis *rs)
{
	pthread_mutex_lock(&rs->view_mu);
	rs->view.up = rs->up;
	snprintf(rs->view.reason, sizeof(rs->view.reason), "%s", rs->up ? "" : rs->reason);
	rs->view.st = rs->st;
	pthread_mutex_unlock(&rs->view_mu);
}

/* ==== parsing the URL ==== */

static int parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int redis_url_parse(const char *url, struct redis_target *t, struct err *e)
{
	const char *p, *at, *slash, *colon, *host;
	size_t hn;
	long v;

	memset(t, 0, sizeof(*t));
	t->port = 6379;
	if (!strncmp(url, "rediss://", 9))
		return err_set(e, ERR_USAGE, "invalid Redis URL '%.128s': rediss:// (TLS) is not supported by the hiredis aichat is built with; use redis:// or unix://",
			       url);
	if (!strncmp(url, "unix://", 7)) {
		p = url + 7;
		if (*p != '/' || strlen(p) >= sizeof(t->path) || !p[1])
			return err_set(e, ERR_USAGE, "invalid Redis URL '%.128s': expected unix:///PATH (an absolute path)",
				       url);
		snprintf(t->path, sizeof(t->path), "%s", p);
		snprintf(t->shown, sizeof(t->shown), "unix://%.250s", p);
		return 0;
	}
	if (strncmp(url, "redis://", 8))
		return err_set(e, ERR_USAGE, "invalid Redis URL '%.128s': expected redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH",
			       url);
	p = url + 8;
	slash = strchr(p, '/');
	at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
	if (at) {
		const char *pw = memchr(p, ':', (size_t)(at - p));
		/* "user:password@" or ":password@"; Redis 6 users are not
		 * sent (AUTH with the password alone is the default user). */
		pw = pw ? pw + 1 : p;
		if ((size_t)(at - pw) >= sizeof(t->password) || at == pw)
			return err_set(e, ERR_USAGE, "invalid Redis URL: the password is empty or longer than 255 bytes");
		memcpy(t->password, pw, (size_t)(at - pw));
		host = at + 1;
	} else {
		host = p;
	}
	hn = slash ? (size_t)(slash - host) : strlen(host);
	colon = memchr(host, ':', hn);
	if (colon) {
		if (parse_int(colon + 1, hn - (size_t)(colon + 1 - host), 1, 65535, &v) < 0)
			return err_set(e, ERR_USAGE, "invalid Redis URL '%s': the port must be 1 to 65535",
				       at ? "(password hidden)" : url);
		t->port = (int)v;
		hn = (size_t)(colon - host);
	}
	if (hn == 0 || hn >= sizeof(t->host))
		return err_set(e, ERR_USAGE, "invalid Redis URL '%.128s': no host",
			       at ? "(password hidden)" : url);
	memcpy(t->host, host, hn);
	if (slash && slash[1]) {
		if (parse_int(slash + 1, strlen(slash + 1), 0, 100000, &v) < 0)
			return err_set(e, ERR_USAGE, "invalid Redis URL '%.128s': the database must be a number",
				       at ? "(password hidden)" : url);
		t->db = (int)v;
	}
	snprintf(t->shown, sizeof(t->shown), "redis://%s%.200s:%d/%d",
		 t->password[0] ? ":***@" : "", t->host, t->port, t->db);
	return 0;
}

/* ==== hiredis on the loop ==== */

static void on_fd(struct loop *l, int fd, int events, void *data)
{
	struct redis *rs = data;
	redisAsyncContext *ac = rs->ac;

	(void)l;
	(void)fd;
	if (ac && (events & LOOP_READ))
		redisAsyncHandleRead(ac);
	/* The read may have freed the context (a lost connection). */
	if (rs->ac == ac && ac && (events & LOOP_WRITE))
		redisAsyncHandleWrite(ac);
}

static void watch(struct redis *rs)
{
	if (rs->fd < 0)
		return;
	if (rs->mask)
		loop_add_fd(rs->loop, rs->fd, rs->mask, on_fd, rs);
	else
		loop_del_fd(rs->loop, rs->fd);
}

static void ev_add_read(void *p) { struct redis *rs = p; rs->mask |= LOOP_READ; watch(rs); }
static void ev_del_read(void *p) { struct redis *rs = p; rs->mask &= ~LOOP_READ; watch(rs); }
static void ev_add_write(void *p) { struct redis *rs = p; rs->mask |= LOOP_WRITE; watch(rs); }
static void ev_del_write(void *p) { struct redis *rs = p; rs->mask &= ~LOOP_WRITE; watch(rs); }

static void ev_cleanup(void *p)
{
	struct redis *rs = p;

	if (rs->fd >= 0)
		loop_del_fd(rs->loop, rs->fd);
	rs->fd = -1;
	rs->mask = 0;
}

/* ==== down, and coming back ==== */

static void on_retry(struct loop *l, void *data)
{
	struct redis *rs = data;

	(void)l;
	rs->retry = NULL;
	connect_now(rs);
}

static void schedule_retry(struct redis *rs)
{
	if (rs->closing || rs->retry)
		return;
	rs->retry = loop_add_timer(rs->loop, rs->backoff_ms, on_retry, rs);
	rs->backoff_ms = rs->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			 rs->backoff_ms * 2;
}

static void set_down(struct redis *rs, const char *why)
{
	if (rs->up || !rs->reason[0])
		rs->st.errors++;
	rs->up = 0;
	/* Redis' own words (an error reply, hiredis' errstr) reach /health
	 * and the log: one clean line. */
	trust_clean(rs->reason, sizeof(rs->reason), why, strlen(why));
	publish(rs);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *rs = ac->ev.data;

	(void)status;
	if (rs->ac != ac)
		return;
	rs->ac = NULL;
	if (!rs->reason[0] || rs->up)
		set_down(rs, ac->err ? ac->errstr : "connection closed");
	rs->up = 0;
	publish(rs);
	schedule_retry(rs);
}

/* A connection that never came up: hiredis frees the context after this,
 * without calling on_disconnect(). */
static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *rs = ac->ev.data;
	char why[512];

	if (status == REDIS_OK || rs->ac != ac)
		return;
	rs->ac = NULL;
	snprintf(why, sizeof(why), "cannot connect to %.300s: %.150s", rs->t.shown,
		 ac->errstr);
	if (strcmp(rs->reason, why))
		set_down(rs, why);
	schedule_retry(rs);
}

/* Drops the context (not from inside a hiredis callback): its pending
 * commands fail, on_disconnect() runs. */
static void drop(struct redis *rs, const char *why)
{
	redisAsyncContext *ac = rs->ac;

	if (!ac)
		return;
	set_down(rs, why);
	redisAsyncFree(ac);
	/* on_disconnect() ran if hiredis thought it connected; if not,
	 * the context is gone all the same. */
	if (rs->ac == ac) {
		rs->ac = NULL;
		schedule_retry(rs);
	}
}

/* ==== the handshake ==== */

static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *rs = ac->ev.data;
	redisReply *rep = reply;
	long step = (long)(intptr_t)priv;   /* 0 AUTH, 1 SELECT, 2 SCRIPT LOAD */
	char why[512];

	if (!rep || rs->ac != ac || rs->hs_failed)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		/* The first refusal is the reason; what follows it fails
		 * for the same one (NOAUTH after a failed AUTH). */
		rs->hs_failed = 1;
		snprintf(why, sizeof(why), "%s refused: %.150s",
			 step == 0 ? "AUTH" : step == 1 ? "SELECT" : "SCRIPT LOAD",
			 rep->str);
		set_down(rs, why);
		/* Not from inside this callback: disconnect once it returns. */
		redisAsyncDisconnect(ac);
		return;
	}
	if (step != 2)
		return;
	if (rep->type == REDIS_REPLY_STRING && rep->len == 40)
		memcpy(rs->sha, rep->str, 41);
	rs->up = 1;
	rs->reason[0] = '\0';
	rs->backoff_ms = BACKOFF_MIN_MS;
	publish(rs);
}

static void connect_now(struct redis *rs)
{
	redisAsyncContext *ac;
	char why[512];

	rs->st.reconnects++;
	publish(rs);
	ac = rs->t.path[0] ? redisAsyncConnectUnix(rs->t.path) :
	     redisAsyncConnect(rs->t.host, rs->t.port);
	if (!ac || ac->err) {
		snprintf(why, sizeof(why), "cannot connect to %.300s: %.150s", rs->t.shown,
			 ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		if (strcmp(rs->reason, why))
			set_down(rs, why);
		schedule_retry(rs);
		return;
	}
	rs->ac = ac;
	rs->hs_failed = 0;
	rs->fd = ac->c.fd;
	rs->mask = 0;
	ac->ev.data = rs;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (rs->t.password[0])
		redisAsyncCommand(ac, on_handshake, (void *)(intptr_t)0, "AUTH %s",
				  rs->t.password);
	if (rs->t.db)
		redisAsyncCommand(ac, on_handshake, (void *)(intptr_t)1, "SELECT %d",
				  rs->t.db);
	redisAsyncCommand(ac, on_handshake, (void *)(intptr_t)2,
			  "SCRIPT LOAD %s", rs->script ? rs->script : "return 1");
}

struct redis *redis_new(struct loop *l, const struct redis_target *t,
			int64_t timeout_ms)
{
	struct redis *rs = xcalloc(1, sizeof(*rs));

	rs->loop = l;
	rs->t = *t;
	rs->timeout_ms = timeout_ms > 0 ? timeout_ms : 100;
	rs->fd = -1;
	rs->backoff_ms = BACKOFF_MIN_MS;
	snprintf(rs->reason, sizeof(rs->reason), "connecting to %s", t->shown);
	pthread_mutex_init(&rs->view_mu, NULL);
	publish(rs);
	/* The first attempt runs from the loop, once the script is set. */
	rs->retry = loop_add_timer(l, 0, on_retry, rs);
	return rs;
}

void redis_set_script(struct redis *rs, const char *script)
{
	rs->script = script;
}

void redis_free(struct redis *rs)
{
	if (!rs)
		return;
	rs->closing = 1;
	if (rs->retry)
		loop_del_timer(rs->loop, rs->retry);
	if (rs->ac) {
		redisAsyncContext *ac = rs->ac;
		rs->ac = NULL;
		redisAsyncFree(ac);
	}
	pthread_mutex_destroy(&rs->view_mu);
	free(rs);
}

/* ==== commands ==== */

static void call_fail(struct redis_call *c, const char *why)
{
	redis_reply_fn fn = c->fn;

	c->fn = NULL;
	if (c->timer)
		loop_del_timer(c->rs->loop, c->timer);
	c->timer = NULL;
	if (fn)
		fn(c->data, NULL, why);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_call *c = priv;
	struct redis *rs = ac->ev.data;
	redisReply *rep = reply;
	redis_reply_fn fn = c->fn;

	if (c->timer)
		loop_del_timer(rs->loop, c->timer);
	c->timer = NULL;
	c->fn = NULL;
	if (!rep) {
		/* Lost with its connection: counted once, as the loss. */
		if (fn)
			fn(c->data, NULL, rs->reason[0] ? rs->reason :
			   "connection lost");
		free(c);
		return;
	}
	if (rep->type == REDIS_REPLY_ERROR)
		rs->st.errors++;
	rs->st.roundtrips++;
	rs->st.roundtrip_seconds += now_s() - c->sent;
	publish(rs);
	if (fn)
		fn(c->data, rep, NULL);
	free(c);
}

static void on_deadline(struct loop *l, void *data)
{
	struct redis_call *c = data;
	struct redis *rs = c->rs;
	char why[120];
	unsigned long long before;

	(void)l;
	c->timer = NULL;
	snprintf(why, sizeof(why), "no reply within %lld ms",
		 (long long)rs->timeout_ms);
	call_fail(c, why);
	/* A Redis that does not answer in time is treated as gone.  One
	 * failure, counted once: as the connection lost, else here. */
	before = rs->st.errors;
	drop(rs, why);
	if (rs->st.errors == before)
		rs->st.errors++;
	publish(rs);
}

struct redis_call *redis_command(struct redis *rs, redis_reply_fn fn,
				 void *data, int argc, const char **argv,
				 const size_t *argvlen)
{
	struct redis_call *c;

	if (!rs->up || !rs->ac) {
		rs->st.errors++;
		publish(rs);
		fn(data, NULL, rs->reason[0] ? rs->reason : "not connected");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->rs = rs;
	c->fn = fn;
	c->data = data;
	c->sent = now_s();
	if (redisAsyncCommandArgv(rs->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
		free(c);
		rs->st.errors++;
		publish(rs);
		fn(data, NULL, "command not sent");
		return NULL;
	}
	c->timer = loop_add_timer(rs->loop, rs->timeout_ms, on_deadline, c);
	return c;
}

void redis_call_cancel(struct redis_call *c)
{
	if (!c)
		return;
	c->fn = NULL;
	if (c->timer)
		loop_del_timer(c->rs->loop, c->timer);
	c->timer = NULL;
}

int redis_up(const struct redis *rs)
{
	return rs && rs->up;
}

const char *redis_reason(const struct redis *rs)
{
	return rs->up ? "" : rs->reason;
}

const char *redis_shown(const struct redis *rs)
{
	return rs->t.shown;
}

void redis_view(struct redis *rs, struct redis_view *v)
{
	pthread_mutex_lock(&rs->view_mu);
	*v = rs->view;
	pthread_mutex_unlock(&rs->view_mu);
}

void redis_view_add(struct redis_view *sum, const struct redis_view *v)
{
	if (sum->up && !v->up)
		snprintf(sum->reason, sizeof(sum->reason), "%s", v->reason);
	sum->up = sum->up && v->up;
	sum->st.errors += v->st.errors;
	sum->st.roundtrips += v->st.roundtrips;
	sum->st.roundtrip_seconds += v->st.roundtrip_seconds;
	sum->st.reconnects += v->st.reconnects;
}

const char *redis_script_sha(const struct redis *rs)
{
	return rs->sha[0] ? rs->sha : NULL;
}

void redis_metrics(const struct redis_view *v, struct buf *out)
{
	buf_printf(out,
		"# HELP aichat_redis_up 1 when the Redis connection (--redis) is up\n"
		"# TYPE aichat_redis_up gauge\n"
		"aichat_redis_up %d\n"
		"# HELP aichat_redis_errors_total Redis commands that failed or timed out, and connections lost\n"
		"# TYPE aichat_redis_errors_total counter\n"
		"aichat_redis_errors_total %llu\n"
		"# HELP aichat_redis_roundtrip_seconds Time from sending a Redis command to its reply\n"
		"# TYPE aichat_redis_roundtrip_seconds summary\n"
		"aichat_redis_roundtrip_seconds_sum %.6f\n"
		"aichat_redis_roundtrip_seconds_count %llu\n"
		"# HELP aichat_redis_connects_total Attempts to connect to Redis\n"
		"# TYPE aichat_redis_connects_total counter\n"
		"aichat_redis_connects_total %llu\n",
		v->up, v->st.errors, v->st.roundtrip_seconds,
		v->st.roundtrips, v->st.reconnects);
}
