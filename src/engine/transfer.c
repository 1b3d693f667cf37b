/*
 * transfer.c - libcurl multi on the loop.
 *
 * curl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); the loop tells curl when a socket is ready
 * (curl_multi_socket_action).  Finished transfers are collected with
 * curl_multi_info_read after every action.
 *
 * Each transfer also has a watchdog timer for the deadlines curl does not
 * know: time to first byte and idle time between chunks.  The watchdog
 * fires at the earliest deadline and re-arms itself when data arrived in
 * the meantime, so data callbacks never touch the timer heap.
 *
 * A transfer can be paused by its owner (a client that reads slower than
 * the upstream writes): the next write callback then answers
 * CURL_WRITEFUNC_PAUSE, so curl keeps that block and stops reading the
 * socket, and TCP pushes back on the upstream.  The unpause runs from a
 * 0 ms timer, never from inside a callback: curl delivers the kept block
 * from within curl_easy_pause().  A paused transfer is never idle.
 *
 * Request headers: the ones every request to an upstream carries are one
 * list built once (struct transfer_headers, kept by the engine per
 * provider and key) that curl reads in place; a request's own headers, if
 * any, are a short list of its own whose last node points at the shared
 * one, unhooked again before it is freed.
 */
#include "aichat/dynlib.h"
#include "aichat/transfer.h"
#include "aichat/xalloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ERROR_BODY_MAX (64 * 1024)

/* libcurl's functions, resolved when the first transfer starts. */
static struct {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_reset) *easy_reset;
	__typeof__(curl_easy_pause) *easy_pause;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_multi_init) *multi_init;
	__typeof__(curl_multi_setopt) *multi_setopt;
	__typeof__(curl_multi_add_handle) *multi_add_handle;
	__typeof__(curl_multi_remove_handle) *multi_remove_handle;
	__typeof__(curl_multi_socket_action) *multi_socket_action;
	__typeof__(curl_multi_info_read) *multi_info_read;
	__typeof__(curl_multi_cleanup) *multi_cleanup;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
} cu;

#ifndef AICHAT_CURL_SONAME
#define AICHAT_CURL_SONAME "libcurl.so.4"
#endif

static int curl_load(struct err *e)
{
	static const struct dynlib_sym syms[] = {
		{ "curl_global_init", (void **)&cu.global_init },
		{ "curl_easy_init", (void **)&cu.easy_init },
		{ "curl_easy_setopt", (void **)&cu.easy_setopt },
		{ "curl_easy_getinfo", (void **)&cu.easy_getinfo },
		{ "curl_easy_cleanup", (void **)&cu.easy_cleanup },
		{ "curl_easy_reset", (void **)&cu.easy_reset },
		{ "curl_easy_pause", (void **)&cu.easy_pause },
		{ "curl_easy_strerror", (void **)&cu.easy_strerror },
		{ "curl_multi_init", (void **)&cu.multi_init },
		{ "curl_multi_setopt", (void **)&cu.multi_setopt },
		{ "curl_multi_add_handle", (void **)&cu.multi_add_handle },
		{ "curl_multi_remove_handle", (void **)&cu.multi_remove_handle },
		{ "curl_multi_socket_action", (void **)&cu.multi_socket_action },
		{ "curl_multi_info_read", (void **)&cu.multi_info_read },
		{ "curl_multi_cleanup", (void **)&cu.multi_cleanup },
		{ "curl_slist_append", (void **)&cu.slist_append },
		{ "curl_slist_free_all", (void **)&cu.slist_free_all },
	};

	return dynlib_load(AICHAT_CURL_SONAME, syms, sizeof(syms) / sizeof(syms[0]), e);
}

/* Finished easy handles kept for the next transfers: creating one costs
 * a dozen allocations; curl_easy_reset() keeps its buffers. */
#define SPARE_MAX 64

/* A curl_slist in one allocation (the nodes, then their strings), ending
 * with "Expect:"; curl only reads it. */
struct transfer_headers {
	struct curl_slist *list;
	const void *owner;               /* what the engine keeps it under */
	char *key;
};

struct engine {
	struct loop *loop;
	struct transfer_headers *kept[ENGINE_HEADERS_MAX];
	int nkept;
	CURLM *multi;
	struct loop_timer *timer;
	struct transfer *list;   /* running transfers, for engine_free */
	CURL *spare[SPARE_MAX];
	int nspare;
	unsigned char *ours;     /* by fd: a socket curl opened through
				  * open_socket(), so closed through
				  * close_socket() */
	int nours;
};

/* A fresh easy handle: a spare one, reset, or a new one. */
static CURL *easy_get(struct engine *eng)
{
	return eng->nspare ? eng->spare[--eng->nspare] : cu.easy_init();
}

static void easy_put(struct engine *eng, CURL *easy)
{
	if (eng->nspare < SPARE_MAX) {
		cu.easy_reset(easy);
		eng->spare[eng->nspare++] = easy;
	} else {
		cu.easy_cleanup(easy);
	}
}

struct transfer {
	struct engine *eng;
	CURL *easy;
	struct curl_slist *headers;    /* this request's own, or NULL */
	struct curl_slist *tail;       /* its last node, when it points at a
					* shared list */
	const struct transfer_cbs *cbs;
	void *ud;
	size_t body_len;          /* of the borrowed body, 0: none */
	struct transfer_result res;
	char content_type[128];
	int64_t started, last_activity;
	int64_t first_byte_ms, idle_ms;
	struct loop_timer *watchdog;
	struct err fail;          /* set by transfer_fail or the watchdog */
	int paused;               /* the owner wants no more data for now */
	int curl_paused;          /* curl holds a block (CURL_WRITEFUNC_PAUSE) */
	struct loop_timer *unpause;
	struct transfer *prev, *next;
};

static void check_done(struct engine *eng);

/* ---- curl <-> loop glue ---- */

static void on_socket_ready(struct loop *l, int fd, int events, void *data)
{
	struct engine *eng = data;
	int running, mask = 0;

	(void)l;
	if (events & LOOP_READ)
		mask |= CURL_CSELECT_IN;
	if (events & LOOP_WRITE)
		mask |= CURL_CSELECT_OUT;
	cu.multi_socket_action(eng->multi, fd, mask, &running);
	check_done(eng);
}

/*
 * curl's connections are opened and closed through these, so that the
 * loop can keep an idle one in its epoll set between two requests
 * (loop_park_fd): a keep-alive connection then costs no epoll_ctl per
 * request.  Any other socket curl watches (a resolver's) is let go.
 */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
				 struct curl_sockaddr *a)
{
	struct engine *eng = clientp;
	int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	(void)purpose;
	if (fd < 0)
		return CURL_SOCKET_BAD;
	if (fd >= eng->nours) {
		int n = eng->nours ? eng->nours : 64;
		while (n <= fd)
			n *= 2;
		eng->ours = xrealloc(eng->ours, (size_t)n);
		memset(eng->ours + eng->nours, 0, (size_t)(n - eng->nours));
		eng->nours = n;
	}
	eng->ours[fd] = 1;
	return fd;
}

static int close_socket(void *clientp, curl_socket_t fd)
{
	struct engine *eng = clientp;

	if (fd >= 0 && fd < eng->nours)
		eng->ours[fd] = 0;
	loop_del_fd(eng->loop, fd);
	return close(fd);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
		     void *socketp)
{
	struct engine *eng = userp;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s >= 0 && s < eng->nours && eng->ours[s])
			loop_park_fd(eng->loop, s);
		else
			loop_del_fd(eng->loop, s);
		return 0;
	}
	int mask = (what & CURL_POLL_IN ? LOOP_READ : 0) |
		   (what & CURL_POLL_OUT ? LOOP_WRITE : 0);
	loop_add_fd(eng->loop, s, mask, on_socket_ready, eng);
	return 0;
}

static void on_curl_timer(struct loop *l, void *data)
{
	struct engine *eng = data;
	int running;

	(void)l;
	eng->timer = NULL;
	cu.multi_socket_action(eng->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(eng);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct engine *eng = userp;

	(void)multi;
	if (eng->timer) {
		loop_del_timer(eng->loop, eng->timer);
		eng->timer = NULL;
	}
	if (timeout_ms >= 0)
		eng->timer = loop_add_timer(eng->loop, timeout_ms,
					    on_curl_timer, eng);
	return 0;
}

struct engine *engine_new(struct loop *l)
{
	struct engine *eng = xcalloc(1, sizeof(*eng));

	eng->loop = l;
	return eng;
}

/*
 * libcurl (and the TLS library under it) is loaded and set up on the
 * first transfer, so work that never touches the network -- the mock
 * model, a usage error, a search -- does not pay for it (dynlib.h).
 */
static int engine_ready(struct engine *eng, struct err *e)
{
	/* Once per process, whichever engine (serve's workers each have
	 * one, on its own thread) starts the first transfer. */
	static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
	static int global_done;
	int rc = 0;

	if (eng->multi)
		return 0;
	if (!__atomic_load_n(&global_done, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&global_lock);
		if (!global_done) {
			if (curl_load(e) < 0)
				rc = -1;
			else if (cu.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
				rc = err_set(e, ERR_INTERNAL, "cannot initialise libcurl");
			else
				__atomic_store_n(&global_done, 1, __ATOMIC_RELEASE);
		}
		pthread_mutex_unlock(&global_lock);
		if (rc < 0)
			return -1;
	}
	eng->multi = cu.multi_init();
	if (!eng->multi)
		return err_set(e, ERR_INTERNAL, "cannot initialise libcurl");
	cu.multi_setopt(eng->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	cu.multi_setopt(eng->multi, CURLMOPT_SOCKETDATA, eng);
	cu.multi_setopt(eng->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	cu.multi_setopt(eng->multi, CURLMOPT_TIMERDATA, eng);
	/* Connections stay in the multi's pool for reuse by later
	 * transfers to the same host. */
	cu.multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, 256L);
	return 0;
}

struct loop *engine_loop(struct engine *eng)
{
	return eng->loop;
}

/* ---- one transfer ---- */

static void transfer_free(struct transfer *t)
{
	struct engine *eng = t->eng;

	if (t->watchdog)
		loop_del_timer(eng->loop, t->watchdog);
	if (t->unpause)
		loop_del_timer(eng->loop, t->unpause);
	if (t->prev)
		t->prev->next = t->next;
	else
		eng->list = t->next;
	if (t->next)
		t->next->prev = t->prev;
	cu.multi_remove_handle(eng->multi, t->easy);
	/* A handle paused with a block in hand is not reused: unpausing it
	 * would deliver that block to a transfer that is gone. */
	if (t->curl_paused)
		cu.easy_cleanup(t->easy);
	else
		easy_put(eng, t->easy);
	if (t->tail)
		t->tail->next = NULL;
	cu.slist_free_all(t->headers);
	buf_release(&t->res.error_body);
	free(t);
}

void engine_free(struct engine *eng)
{
	if (!eng)
		return;
	while (eng->list)
		transfer_free(eng->list);
	if (eng->timer)
		loop_del_timer(eng->loop, eng->timer);
	while (eng->nkept)
		transfer_headers_free(eng->kept[--eng->nkept]);
	while (eng->nspare)
		cu.easy_cleanup(eng->spare[--eng->nspare]);
	if (eng->multi)
		cu.multi_cleanup(eng->multi);
	free(eng->ours);
	free(eng);
}

static int is_2xx(long s)
{
	return s >= 200 && s < 300;
}

static void arm_watchdog(struct transfer *t);

static void touch(struct transfer *t)
{
	t->last_activity = loop_now_ms();
	if (!t->res.first_byte_at) {
		/* From now on the idle deadline applies, which may be
		 * earlier than the first-byte one the watchdog waits for. */
		t->res.first_byte_at = t->last_activity;
		if (t->watchdog)
			loop_del_timer(t->eng->loop, t->watchdog);
		t->watchdog = NULL;
		arm_watchdog(t);
	}
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	size_t len = size * n;

	touch(t);
	if (!t->res.status)
		cu.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->res.status);
	if (!is_2xx(t->res.status)) {
		/* Keep what fits of an error body; the rest is dropped. */
		size_t room = ERROR_BODY_MAX - t->res.error_body.len;
		buf_append(&t->res.error_body, p, len < room ? len : room);
		return len;
	}
	if (t->paused) {
		/* Not taken: curl keeps it and delivers it again on unpause. */
		t->curl_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (t->cbs->on_data && t->cbs->on_data(t->ud, p, len) != 0) {
		if (t->fail.code == ERR_OK)
			err_set(&t->fail, ERR_CANCELLED, "transfer aborted");
		return CURL_WRITEFUNC_ERROR;
	}
	return len;
}

/* Retry-After: delta seconds or an HTTP date. */
static double parse_retry_after(const char *v)
{
	char *end;
	double d;
	struct tm tm;

	while (*v == ' ' || *v == '\t')
		v++;
	d = strtod(v, &end);
	if (end != v && d >= 0) {
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (*end == '\0')
			return d;
	}
	memset(&tm, 0, sizeof(tm));
	if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
		time_t when = timegm(&tm), now = time(NULL);
		return when > now ? (double)(when - now) : 0;
	}
	return -1;
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	size_t len = size * n;
	char line[256];
	size_t l = len < sizeof(line) - 1 ? len : sizeof(line) - 1;

	touch(t);
	memcpy(line, p, l);
	line[l] = '\0';
	while (l && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		line[--l] = '\0';
	if (!strncmp(line, "HTTP/", 5)) {
		/* A new response (after a 100 Continue or a redirect). */
		t->res.retry_after = -1;
		t->content_type[0] = '\0';
	} else if (!strncasecmp(line, "retry-after:", 12)) {
		t->res.retry_after = parse_retry_after(line + 12);
	} else if (!strncasecmp(line, "content-type:", 13)) {
		const char *v = line + 13;
		while (*v == ' ')
			v++;
		snprintf(t->content_type, sizeof(t->content_type), "%.127s", v);
	}
	return len;
}

static void on_watchdog(struct loop *l, void *data)
{
	struct transfer *t = data;
	int64_t now = loop_now_ms(), deadline;
	struct transfer_result *r = &t->res;
	const struct transfer_cbs *cbs;
	void *ud;

	(void)l;
	t->watchdog = NULL;
	if (t->paused || t->curl_paused) {
		/* Silence we asked for is not a stall. */
		t->last_activity = now;
		arm_watchdog(t);
		return;
	}
	if (!r->first_byte_at)
		deadline = t->started + t->first_byte_ms;
	else
		deadline = t->last_activity + t->idle_ms;
	if (now < deadline) {
		arm_watchdog(t);
		return;
	}
	if (!r->first_byte_at)
		err_set(&r->err, ERR_UPSTREAM_TIMEOUT,
			"no response within %.3g s", t->first_byte_ms / 1000.0);
	else
		err_set(&r->err, ERR_UPSTREAM_TIMEOUT,
			"stream stalled: no data for %.3g s", t->idle_ms / 1000.0);
	cu.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &r->status);
	r->content_type = t->content_type;
	cbs = t->cbs;
	ud = t->ud;
	/* Detach from curl first so on_done may start new transfers. */
	cu.multi_remove_handle(t->eng->multi, t->easy);
	cbs->on_done(ud, r);
	transfer_free(t);
}

static void arm_watchdog(struct transfer *t)
{
	int64_t deadline, now = loop_now_ms();

	if (!t->res.first_byte_at) {
		if (!t->first_byte_ms)
			return;
		deadline = t->started + t->first_byte_ms;
	} else {
		if (!t->idle_ms)
			return;
		deadline = t->last_activity + t->idle_ms;
	}
	t->watchdog = loop_add_timer(t->eng->loop, deadline - now, on_watchdog, t);
}

static void map_curl_error(struct transfer *t, CURLcode rc, const char *detail)
{
	struct err *e = &t->res.err;
	const char *what = detail && *detail ? detail : cu.easy_strerror(rc);

	if (t->fail.code != ERR_OK) {
		*e = t->fail;
		return;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		/* curl's own limit and our first-byte watchdog may both be due
		 * (a caller giving one time for both): say it the same way
		 * whichever timer the loop ran first. */
		if (!t->res.first_byte_at && t->first_byte_ms &&
		    loop_now_ms() - t->started >= t->first_byte_ms)
			err_set(e, ERR_UPSTREAM_TIMEOUT, "no response within %.3g s",
				t->first_byte_ms / 1000.0);
		else
			err_set(e, ERR_UPSTREAM_TIMEOUT, "timed out: %s", what);
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		err_set(e, ERR_UPSTREAM_UNREACHABLE, "cannot connect: %s", what);
		break;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
		if (t->res.first_byte_at)
			err_set(e, ERR_UPSTREAM_PROTOCOL,
				"connection cut mid-response: %s", what);
		else
			err_set(e, ERR_UPSTREAM_UNREACHABLE,
				"connection failed: %s", what);
		break;
	default:
		err_set(e, ERR_UPSTREAM_ERROR, "%s", what);
		break;
	}
}

static void check_done(struct engine *eng)
{
	CURLMsg *msg;
	int left;

	while ((msg = cu.multi_info_read(eng->multi, &left))) {
		struct transfer *t = NULL;

		if (msg->msg != CURLMSG_DONE)
			continue;
		cu.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		if (!t)
			continue;
		CURLcode rc = msg->data.result;
		cu.easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->res.status);
		t->res.content_type = t->content_type;
		if (rc != CURLE_OK)
			map_curl_error(t, rc, NULL);
		cu.multi_remove_handle(eng->multi, t->easy);
		t->cbs->on_done(t->ud, &t->res);
		transfer_free(t);
	}
}

struct transfer *transfer_start(struct engine *eng,
				const struct transfer_req *req,
				const struct transfer_cbs *cbs, void *ud,
				struct err *e)
{
	struct transfer *t;

	if (engine_ready(eng, e) < 0)
		return NULL;
	t = xcalloc(1, sizeof(*t));
	t->eng = eng;
	t->cbs = cbs;
	t->ud = ud;
	t->res.retry_after = -1;
	t->res.content_type = t->content_type;
	buf_init(&t->res.error_body, 0);
	t->easy = easy_get(eng);
	if (!t->easy) {
		free(t);
		err_set(e, ERR_INTERNAL, "cannot create a curl handle");
		return NULL;
	}
	for (const char *const *h = req->headers; h && *h; h++)
		t->headers = cu.slist_append(t->headers, *h);
	if (req->shared && t->headers) {
		for (t->tail = t->headers; t->tail->next; t->tail = t->tail->next)
			;
		t->tail->next = req->shared->list;
	} else if (!req->shared) {
		/* Stream bodies must not wait for a 100-continue round trip. */
		t->headers = cu.slist_append(t->headers, "Expect:");
	}
	cu.easy_setopt(t->easy, CURLOPT_URL, req->url);
	cu.easy_setopt(t->easy, CURLOPT_HTTPHEADER,
		       t->headers ? t->headers : req->shared ? req->shared->list : NULL);
	if (req->body) {
		/* The caller's, not copied (transfer.h): with a prompt of
		 * 100 KB, a copy per held stream is most of its memory. */
		cu.easy_setopt(t->easy, CURLOPT_POSTFIELDS, req->body);
		t->body_len = req->body_len;
		cu.easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
	}
	cu.easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, write_cb);
	cu.easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
	cu.easy_setopt(t->easy, CURLOPT_HEADERFUNCTION, header_cb);
	cu.easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
	cu.easy_setopt(t->easy, CURLOPT_PRIVATE, t);
	cu.easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	cu.easy_setopt(t->easy, CURLOPT_OPENSOCKETDATA, t->eng);
	cu.easy_setopt(t->easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
	cu.easy_setopt(t->easy, CURLOPT_CLOSESOCKETDATA, t->eng);
	cu.easy_setopt(t->easy, CURLOPT_ACCEPT_ENCODING, "");
	cu.easy_setopt(t->easy, CURLOPT_TCP_NODELAY, 1L);
	/* LLM answers arrive in small pieces: 4 KiB per transfer instead
	 * of 16 matters when a server holds thousands of streams. */
	cu.easy_setopt(t->easy, CURLOPT_BUFFERSIZE, 4096L);
	cu.easy_setopt(t->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	cu.easy_setopt(t->easy, CURLOPT_USERAGENT, "aichat/" AICHAT_VERSION);
	cu.easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->connect_ms)
		cu.easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)req->connect_ms);
	if (req->total_ms)
		cu.easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)req->total_ms);
	t->first_byte_ms = req->first_byte_ms;
	t->idle_ms = req->idle_ms;
	t->started = t->last_activity = loop_now_ms();
	if (cu.multi_add_handle(eng->multi, t->easy) != CURLM_OK) {
		easy_put(eng, t->easy);
		if (t->tail)
			t->tail->next = NULL;
		cu.slist_free_all(t->headers);
		free(t);
		err_set(e, ERR_INTERNAL, "cannot start the transfer");
		return NULL;
	}
	t->next = eng->list;
	if (eng->list)
		eng->list->prev = t;
	eng->list = t;
	arm_watchdog(t);
	return t;
}

/* ==== header lists built once ==== */

struct transfer_headers *transfer_headers_new(const char *const *h)
{
	static const char expect[] = "Expect:";
	struct transfer_headers *th;
	size_t n = 1, bytes = sizeof(expect);
	char *at;

	for (const char *const *p = h; p && *p; p++, n++)
		bytes += strlen(*p) + 1;
	th = xmalloc(sizeof(*th) + n * sizeof(struct curl_slist) + bytes);
	th->list = (struct curl_slist *)(th + 1);
	th->owner = NULL;
	th->key = NULL;
	at = (char *)(th->list + n);
	for (size_t i = 0; i < n; i++) {
		const char *src = i + 1 < n ? h[i] : expect;
		size_t len = strlen(src) + 1;

		memcpy(at, src, len);
		th->list[i].data = at;
		th->list[i].next = i + 1 < n ? &th->list[i + 1] : NULL;
		at += len;
	}
	return th;
}

void transfer_headers_free(struct transfer_headers *th)
{
	if (!th)
		return;
	free(th->key);
	free(th);
}

const struct transfer_headers *engine_headers(struct engine *eng,
					      const void *owner, const char *key)
{
	for (int i = 0; i < eng->nkept; i++) {
		const struct transfer_headers *th = eng->kept[i];

		if (th->owner == owner && (th->key && key ? !strcmp(th->key, key) :
					   th->key == key))
			return th;
	}
	return NULL;
}

const struct transfer_headers *engine_keep_headers(struct engine *eng,
						   const void *owner, const char *key,
						   struct transfer_headers *th)
{
	if (eng->nkept >= ENGINE_HEADERS_MAX)
		return NULL;
	th->owner = owner;
	th->key = key ? xstrdup(key) : NULL;
	eng->kept[eng->nkept++] = th;
	return th;
}

void transfer_cancel(struct transfer *t)
{
	if (t)
		transfer_free(t);
}

int transfer_body_sent(struct transfer *t)
{
	curl_off_t up = 0;

	if (!t->body_len)
		return 1;
	if (cu.easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK)
		return 0;
	return up >= (curl_off_t)t->body_len;
}

int transfer_fail(struct transfer *t, const struct err *e)
{
	t->fail = *e;
	return 1;
}

static void on_unpause(struct loop *l, void *data)
{
	struct transfer *t = data;
	struct engine *eng = t->eng;

	(void)l;
	t->unpause = NULL;
	if (t->paused || !t->curl_paused)
		return;
	t->curl_paused = 0;
	t->last_activity = loop_now_ms();
	/* May call write_cb (the kept block) before it returns, which may
	 * pause the transfer again. */
	cu.easy_pause(t->easy, CURLPAUSE_CONT);
	check_done(eng);
}

void transfer_pause(struct transfer *t, int on)
{
	if (!t || t->paused == !!on)
		return;
	t->paused = !!on;
	if (!on && t->curl_paused && !t->unpause)
		t->unpause = loop_add_timer(t->eng->loop, 0, on_unpause, t);
}
