/*
 * server.c - `aichat serve`: the HTTP face over the chat and batch
 * services, on the engine's event loop.
 *
 * Threads: none besides the loop.  libmicrohttpd runs in "external
 * polling" mode: its epoll fd is watched by the loop, mhd.run() is called
 * on readiness and after every resume, and mhd.get_timeout() feeds one
 * loop timer.
 *
 * A request's life: on_access() is called once when headers are in, then
 * once per body piece, then once more with no data: there the route runs.
 * Work that waits for an upstream suspends the connection; when the answer
 * (or the next token) is there the connection is resumed, and on_access()
 * (or the stream's content reader) picks it up.  While suspended, MHD does
 * not watch the socket, so the loop does: a client that hangs up cancels
 * its upstream transfer at once.  on_completed() ends every request,
 * whatever happened, and writes its log line.
 */
#include "aichat/batch.h"
#include "aichat/cache.h"
#include "aichat/chat.h"
#include "aichat/convlog.h"
#include "aichat/dynlib.h"
#include "aichat/jobs.h"
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/store.h"
#include "aichat/embed.h"
#include "aichat/openapi.h"
#include "aichat/rag.h"
#include "aichat/ratelimit.h"
#include "aichat/searcher.h"
#include "aichat/serve.h"
#include "aichat/server.h"
#include "aichat/xalloc.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* libmicrohttpd's functions, resolved when serve starts (dynlib.h). */
static struct {
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_create_response_from_callback) *create_response_from_callback;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_get_timeout) *get_timeout;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_quiesce_daemon) *quiesce_daemon;
	__typeof__(MHD_resume_connection) *resume_connection;
	__typeof__(MHD_run) *run;
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_suspend_connection) *suspend_connection;
} mhd;

#ifndef AICHAT_MHD_SONAME
#define AICHAT_MHD_SONAME "libmicrohttpd.so.12"
#endif

static int mhd_load(struct err *e)
{
	static int loaded;
	static const struct dynlib_sym syms[] = {
		{ "MHD_add_response_header", (void **)&mhd.add_response_header },
		{ "MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer },
		{ "MHD_create_response_from_callback", (void **)&mhd.create_response_from_callback },
		{ "MHD_destroy_response", (void **)&mhd.destroy_response },
		{ "MHD_get_connection_info", (void **)&mhd.get_connection_info },
		{ "MHD_get_daemon_info", (void **)&mhd.get_daemon_info },
		{ "MHD_get_timeout", (void **)&mhd.get_timeout },
		{ "MHD_lookup_connection_value", (void **)&mhd.lookup_connection_value },
		{ "MHD_queue_response", (void **)&mhd.queue_response },
		{ "MHD_quiesce_daemon", (void **)&mhd.quiesce_daemon },
		{ "MHD_resume_connection", (void **)&mhd.resume_connection },
		{ "MHD_run", (void **)&mhd.run },
		{ "MHD_start_daemon", (void **)&mhd.start_daemon },
		{ "MHD_stop_daemon", (void **)&mhd.stop_daemon },
		{ "MHD_suspend_connection", (void **)&mhd.suspend_connection },
	};

	if (loaded)
		return 0;
	if (dynlib_load(AICHAT_MHD_SONAME, syms, sizeof(syms) / sizeof(syms[0]), e) < 0)
		return -1;
	loaded = 1;
	return 0;
}

void server_opts_default(struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 8000;
	o->max_queue = 100;
	o->max_body = 1024 * 1024;
	o->upstream_timeout_ms = 30000;
	o->drain_ms = 30000;
	o->keepalive_ms = 15000;
	o->max_connections = 10000;
	o->client_timeout_s = 30;
	o->cache_size = 1000;
	o->cache_ttl_ms = 300000;
	o->batch_concurrency = 10;
	o->retries = 2;
	o->rag_search_ms = 2000;
	o->rag_embed_ms = 5000;
}

struct req;

struct server {
	const struct server_opts *o;
	const struct config *cfg;
	struct loop *loop;
	struct engine *eng;
	struct MHD_Daemon *d;
	struct loop_timer *mhd_timer;
	int mhd_timer_soon;          /* mhd_timer is a 0 ms "run now" */
	struct metrics *metrics;
	struct ratelimit *rl;
	struct cache *cache;
	sqlite3 *db;
	struct jobs *jobs;
	struct searcher *searcher;   /* the rag routes' searches */
	struct req *reqs;            /* every request in flight */
	size_t active;
	int upstream_active;
	struct req *wait_head, *wait_tail;
	size_t waiting;
	int draining;
	struct loop_timer *drain_timer;
	unsigned long long seq;
	int sigfd;
};

/* An SSE stream, shared by the request and MHD's response: freed when
 * both have let go of it. */
struct stream {
	struct req *req;             /* NULL once the request is gone */
	struct buf out;              /* framed bytes not yet handed to MHD */
	int finished;                /* no more bytes will be added */
	int refs;
};

enum stream_kind { STREAM_NONE, STREAM_AICHAT, STREAM_OPENAI };

struct req {
	struct server *srv;
	struct MHD_Connection *conn;
	const struct route_info *route;
	char method[8];
	char path[128];
	char path_id[72];            /* the {id} of /jobs/{id} */
	char id[72];
	char client[72];             /* key id ("key:2") or client address */
	int64_t started;
	struct buf body;
	int too_large;
	int in_handler;              /* inside on_access: may queue directly */
	int queued;                  /* a response is queued */
	struct MHD_Response *pending;/* answer waiting for the resume */
	int pending_status;
	int status;
	int suspended;
	int watch_fd;                /* client socket watched by the loop, -1 */
	int watch_given_up;          /* the client sent more: MHD's to read */
	int client_gone;
	int holds_upstream;          /* owns one of --max-upstream slots */
	struct req *wait_next;       /* in the upstream wait queue */
	int waiting;
	/* the work */
	cJSON *json;                 /* validated body */
	struct chat_request creq;
	struct chat *chat;
	struct batch *batch;
	struct chat_request *breqs;
	size_t nbreqs, bnext;
	cJSON *bresults;
	enum stream_kind kind;
	struct stream *st;
	struct loop_timer *keepalive;
	int include_usage;
	int got_token;
	char *cache_key;
	int cacheable;
	char *chunk_prefix;          /* OpenAI chunk up to the content */
	cJSON *rag_sources;          /* /rag/query: the numbered sources */
	int64_t rag_started, retrieval_ms;
	char retrieval[8];           /* "hybrid" | "bm25" */
	char retrieval_warning[240];
	struct embed_job *embed;     /* the query being embedded */
	struct search *search;       /* the search under way (worker thread) */
	/* for the log line */
	char model[256];
	char provider[64];
	long prompt_tokens, completion_tokens;
	int have_usage;
	int64_t ttft_ms;
	char err_code[40];
	struct req *prev, *next;
};

static void req_resume(struct req *r);

/* ==== libmicrohttpd on the loop ==== */

static void mhd_run(struct server *srv);
static void mhd_run_soon(struct server *srv);

static void on_mhd_timer(struct loop *l, void *data)
{
	struct server *srv = data;

	(void)l;
	srv->mhd_timer = NULL;
	srv->mhd_timer_soon = 0;
	mhd_run(srv);
}

static void rearm_mhd_timer(struct server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (srv->mhd_timer) {
		loop_del_timer(srv->loop, srv->mhd_timer);
		srv->mhd_timer = NULL;
	}
	srv->mhd_timer_soon = 0;
	if (srv->d && mhd.get_timeout(srv->d, &ms) == MHD_YES)
		srv->mhd_timer = loop_add_timer(srv->loop,
						ms > 60000 ? 60000 : (int64_t)ms,
						on_mhd_timer, srv);
}

static void mhd_run(struct server *srv)
{
	if (!srv->d)
		return;
	mhd.run(srv->d);
	rearm_mhd_timer(srv);
}

static void mhd_run_soon(struct server *srv)
{
	if (srv->mhd_timer && srv->mhd_timer_soon)
		return;
	if (srv->mhd_timer)
		loop_del_timer(srv->loop, srv->mhd_timer);
	srv->mhd_timer = loop_add_timer(srv->loop, 0, on_mhd_timer, srv);
	srv->mhd_timer_soon = 1;
}

static void on_mhd_ready(struct loop *l, int fd, int events, void *data)
{
	(void)l;
	(void)fd;
	(void)events;
	mhd_run(data);
}

/* ==== small helpers ==== */

static void iso_time(char *dst, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
		 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100,
		 (int)(ts.tv_nsec / 1000000) % 1000);
}

static const char *header(struct req *r, const char *name)
{
	return mhd.lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* X-Request-ID: the client's, if it is sane, else a new one. */
static void request_id(struct req *r)
{
	const char *in = header(r, "X-Request-ID");
	size_t o = 0;

	if (in) {
		for (const char *p = in; *p && o < 64; p++)
			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			    *p == '.' || *p == ':')
				r->id[o++] = *p;
		r->id[o] = '\0';
	}
	if (!o) {
		unsigned long long rnd = ((unsigned long long)rand() << 31) ^ (unsigned long long)rand();
		snprintf(r->id, sizeof(r->id), "req_%llx%06llx",
			 (unsigned long long)time(NULL), (++r->srv->seq ^ rnd) & 0xffffff);
	}
}

static void client_address(struct req *r)
{
	const union MHD_ConnectionInfo *ci =
		mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(r->client, sizeof(r->client), "unknown");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  r->client, sizeof(r->client));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  r->client, sizeof(r->client));
}

/* ==== responses ==== */

static void add_common_headers(struct req *r, struct MHD_Response *resp)
{
	const char *origin = r->srv->o->cors_origin;

	mhd.add_response_header(resp, "X-Request-ID", r->id);
	if (origin) {
		mhd.add_response_header(resp, "Access-Control-Allow-Origin", origin);
		mhd.add_response_header(resp, "Access-Control-Expose-Headers",
					"X-Request-ID, X-Cache, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset");
		if (strcmp(origin, "*"))
			mhd.add_response_header(resp, "Vary", "Origin");
	}
}

/* Queues resp now (inside on_access) or after the resume. */
static void send_response(struct req *r, int status, struct MHD_Response *resp)
{
	add_common_headers(r, resp);
	r->status = status;
	if (r->in_handler) {
		mhd.queue_response(r->conn, (unsigned)status, resp);
		mhd.destroy_response(resp);
		r->queued = 1;
		return;
	}
	r->pending = resp;
	r->pending_status = status;
	req_resume(r);
}

static struct MHD_Response *make_response(const char *type, const char *body,
					  size_t len)
{
	struct MHD_Response *resp = mhd.create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);

	mhd.add_response_header(resp, "Content-Type", type);
	return resp;
}

static void reply(struct req *r, int status, const char *type, const char *body,
		  size_t len)
{
	send_response(r, status, make_response(type, body, len));
}

static void reply_json(struct req *r, int status, cJSON *obj)
{
	char *text = json_print(obj);

	reply(r, status, "application/json", text, strlen(text));
	free(text);
	cJSON_Delete(obj);
}

static cJSON *error_object(const char *code, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(o, "error");

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	return o;
}

/* The OpenAI error object, for the /v1 routes. */
static cJSON *openai_error_object(enum err_code code, const char *msg,
				  const char *param)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(o, "error");
	const char *type;

	switch (code) {
	case ERR_INVALID_REQUEST: case ERR_USAGE: case ERR_PAYLOAD_TOO_LARGE:
	case ERR_NOT_FOUND: case ERR_METHOD_NOT_ALLOWED:
		type = "invalid_request_error"; break;
	case ERR_UNAUTHORIZED: type = "authentication_error"; break;
	case ERR_RATE_LIMITED: case ERR_QUOTA: type = "rate_limit_error"; break;
	default: type = "api_error"; break;
	}
	cJSON_AddStringToObject(e, "message", msg);
	cJSON_AddStringToObject(e, "type", type);
	if (param)
		cJSON_AddStringToObject(e, "param", param);
	else
		cJSON_AddNullToObject(e, "param");
	cJSON_AddStringToObject(e, "code", err_code_name(code));
	return o;
}

static int is_openai_route(const struct req *r)
{
	return r->route && (r->route->response == RESP_OPENAI_CHAT ||
			    r->route->response == RESP_OPENAI_MODELS);
}

/*
 * An error answer in the route's shape (OpenAI's on /v1, aichat's
 * elsewhere), not yet sent, so that the caller may add headers.
 */
static struct MHD_Response *error_response(struct req *r, enum err_code code,
					   const char *msg)
{
	cJSON *obj = is_openai_route(r) ? openai_error_object(code, msg, NULL) :
		     error_object(err_code_name(code), msg);
	char *text = json_print(obj);
	struct MHD_Response *resp = make_response("application/json", text,
						  strlen(text));

	cJSON_Delete(obj);
	free(text);
	snprintf(r->err_code, sizeof(r->err_code), "%s", err_code_name(code));
	return resp;
}

static void reply_error_status(struct req *r, int status, enum err_code code,
			       const char *msg)
{
	send_response(r, status, error_response(r, code, msg));
}

static void reply_error(struct req *r, const struct err *e)
{
	reply_error_status(r, err_http_status(e->code), e->code, e->msg);
}

/* 422 with every failing field, in the FastAPI/Pydantic shape; the
 * OpenAI routes answer 400 with an OpenAI error object instead. */
static void reply_validation(struct req *r, const struct verrors *ve)
{
	metrics_validation_failure(r->srv->metrics, r->route->path);
	snprintf(r->err_code, sizeof(r->err_code), "invalid_request");
	if (is_openai_route(r)) {
		char msg[400];
		snprintf(msg, sizeof(msg), "invalid value for '%s': %s",
			 ve->v[0].loc, ve->v[0].msg);
		reply_json(r, 400, openai_error_object(ERR_INVALID_REQUEST, msg,
						       ve->v[0].loc));
		return;
	}
	cJSON *o = cJSON_CreateObject(), *detail = cJSON_AddArrayToObject(o, "detail");
	for (size_t i = 0; i < ve->n; i++) {
		cJSON *d = cJSON_CreateObject(), *loc = cJSON_CreateArray();
		char part[160];
		const char *p = ve->v[i].loc;

		cJSON_AddItemToArray(detail, d);
		cJSON_AddItemToObject(d, "loc", loc);
		cJSON_AddItemToArray(loc, cJSON_CreateString("body"));
		while (*p) {
			size_t n = strcspn(p, ".");
			char *end;
			snprintf(part, sizeof(part), "%.*s", (int)n, p);
			long idx = strtol(part, &end, 10);
			if (*part && !*end)
				cJSON_AddItemToArray(loc, cJSON_CreateNumber((double)idx));
			else if (*part)
				cJSON_AddItemToArray(loc, cJSON_CreateString(part));
			p += n + (p[n] == '.');
		}
		cJSON_AddStringToObject(d, "msg", ve->v[i].msg);
		cJSON_AddStringToObject(d, "type", ve->v[i].type);
		if (ve->v[i].value[0] || strcmp(ve->v[i].type, "missing"))
			cJSON_AddStringToObject(d, "input", ve->v[i].value);
	}
	reply_json(r, 422, o);
}

/* ==== suspend, resume, and noticing a client that left ==== */

static void on_client_fd(struct loop *l, int fd, int events, void *data);
static void mhd_run_soon(struct server *srv);

static void req_suspend(struct req *r)
{
	const union MHD_ConnectionInfo *ci;

	if (r->suspended)
		return;
	mhd.suspend_connection(r->conn);
	r->suspended = 1;
	/* MHD does not watch a suspended socket, so the loop does, from the
	 * first suspend to the end of the request: adding and removing it
	 * at every token would cost two epoll_ctl calls a token. */
	if (r->watch_fd < 0 && !r->watch_given_up) {
		ci = mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && loop_add_fd(r->srv->loop, ci->connect_fd, LOOP_READ,
				      on_client_fd, r) == 0)
			r->watch_fd = ci->connect_fd;
	}
}

static void req_resume(struct req *r)
{
	if (!r->suspended)
		return;
	r->suspended = 0;
	mhd.resume_connection(r->conn);
	/* In external polling mode nothing wakes MHD for a resume: run it on
	 * the next loop iteration (never from here, which may be inside one
	 * of its callbacks). */
	mhd_run_soon(r->srv);
}

static void stop_work(struct req *r);

/* The client's socket became readable: either it sent more (a pipelined
 * request: leave it to MHD, and stop watching) or it hung up. */
static void on_client_fd(struct loop *l, int fd, int events, void *data)
{
	struct req *r = data;
	char c;
	ssize_t n;

	(void)events;
	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	loop_del_fd(l, fd);
	r->watch_fd = -1;
	if (n > 0) {
		r->watch_given_up = 1;
		return;
	}
	r->client_gone = 1;
	stop_work(r);
	if (r->st)
		r->st->finished = 1;
	if (r->suspended)
		req_resume(r);
	else
		mhd_run_soon(r->srv);
}

/* ==== SSE streams ==== */

static void stream_unref(struct stream *st)
{
	if (--st->refs == 0) {
		buf_release(&st->out);
		free(st);
	}
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	size_t n;

	(void)pos;
	if (st->out.len) {
		n = st->out.len < max ? st->out.len : max;
		memcpy(buf, st->out.ptr, n);
		buf_consume(&st->out, n);
		return (ssize_t)n;
	}
	if (st->finished || !st->req)
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing to send yet: sleep until stream_push() resumes us. */
	req_suspend(st->req);
	return 0;
}

static void stream_free_cb(void *cls)
{
	stream_unref(cls);
}

static void stream_push(struct req *r, const char *s, size_t n)
{
	if (!r->st || r->st->finished)
		return;
	buf_append(&r->st->out, s, n);
	req_resume(r);
}

static void stream_end(struct req *r)
{
	if (!r->st)
		return;
	r->st->finished = 1;
	req_resume(r);
}

static void on_keepalive(struct loop *l, void *data)
{
	struct req *r = data;

	r->keepalive = NULL;
	if (r->got_token || !r->st || r->st->finished)
		return;
	stream_push(r, ": keep-alive\n\n", 14);
	r->keepalive = loop_add_timer(l, r->srv->o->keepalive_ms, on_keepalive, r);
}

static void start_stream(struct req *r, enum stream_kind kind)
{
	struct stream *st = xcalloc(1, sizeof(*st));
	struct MHD_Response *resp;

	st->req = r;
	st->refs = 2;
	buf_init(&st->out, 0);
	r->st = st;
	r->kind = kind;
	resp = mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 2048,
						 stream_read, st, stream_free_cb);
	mhd.add_response_header(resp, "Content-Type", "text/event-stream");
	mhd.add_response_header(resp, "Cache-Control", "no-cache");
	mhd.add_response_header(resp, "X-Accel-Buffering", "no");
	metrics_streams_add(r->srv->metrics, 1);
	r->keepalive = loop_add_timer(r->srv->loop, r->srv->o->keepalive_ms,
				      on_keepalive, r);
	send_response(r, 200, resp);
}

/* ==== the chat routes ==== */

static void note_result(struct req *r, const struct chat_result *res)
{
	const char *colon = strchr(res->model, ':');

	snprintf(r->model, sizeof(r->model), "%s", res->model);
	snprintf(r->provider, sizeof(r->provider), "%.*s",
		 colon ? (int)(colon - res->model) : 0, res->model);
	r->prompt_tokens = res->prompt_tokens;
	r->completion_tokens = res->completion_tokens;
	r->have_usage = res->have_usage;
	if (res->first_token_ms >= 0)
		r->ttft_ms = res->first_token_ms;
	if (res->have_usage)
		metrics_tokens(r->srv->metrics, res->model, res->prompt_tokens,
			       res->completion_tokens);
	if (res->first_token_ms >= 0)
		metrics_ttft(r->srv->metrics, res->model,
			     res->first_token_ms / 1000.0);
	if (res->err.code != ERR_OK) {
		snprintf(r->err_code, sizeof(r->err_code), "%s",
			 err_code_name(res->err.code));
		if (res->err.code != ERR_CANCELLED)
			metrics_upstream_error(r->srv->metrics, r->provider,
					       err_code_name(res->err.code));
	}
}

/* An OpenAI object of type object with its one choice, into *choice. */
static cJSON *openai_object(struct req *r, const char *object, cJSON **choice)
{
	cJSON *o = cJSON_CreateObject(), *choices;

	cJSON_AddStringToObject(o, "id", r->id);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddNumberToObject(o, "created", (double)time(NULL));
	cJSON_AddStringToObject(o, "model", r->model);
	choices = cJSON_AddArrayToObject(o, "choices");
	*choice = cJSON_CreateObject();
	cJSON_AddItemToArray(choices, *choice);
	cJSON_AddNumberToObject(*choice, "index", 0);
	return o;
}

static cJSON *openai_chunk(struct req *r, const char *content, int role,
			   const char *finish)
{
	cJSON *c, *o = openai_object(r, "chat.completion.chunk", &c), *delta;

	delta = cJSON_AddObjectToObject(c, "delta");
	if (role)
		cJSON_AddStringToObject(delta, "role", "assistant");
	if (content)
		cJSON_AddStringToObject(delta, "content", content);
	if (finish)
		cJSON_AddStringToObject(c, "finish_reason", finish);
	else
		cJSON_AddNullToObject(c, "finish_reason");
	return o;
}

static void push_data(struct req *r, const char *event, cJSON *obj)
{
	struct buf b;
	char *text = json_print(obj);

	buf_init(&b, 0);
	if (event)
		buf_printf(&b, "event: %s\n", event);
	buf_appends(&b, "data: ");
	buf_appends(&b, text);
	buf_appends(&b, "\n\n");
	stream_push(r, b.ptr, b.len);
	buf_release(&b);
	free(text);
	cJSON_Delete(obj);
}

/*
 * One delta, framed straight into the stream's buffer: the hot path of
 * serve, so no JSON tree and no allocation once the buffer has grown.
 * The OpenAI chunk's fixed part is the same for every token of a stream.
 */
static void on_chat_delta(void *ud, const char *s, size_t n)
{
	struct req *r = ud;
	struct buf *out;

	if (!r->st || r->st->finished)
		return;
	r->got_token = 1;
	out = &r->st->out;
	if (r->kind == STREAM_OPENAI) {
		if (!r->chunk_prefix) {
			struct buf p;
			buf_init(&p, 0);
			buf_printf(&p, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
				   "\"created\":%lld,\"model\":", r->id, (long long)time(NULL));
			json_quote(&p, r->model, strlen(r->model));
			buf_appends(&p, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":");
			r->chunk_prefix = buf_detach(&p);
		}
		buf_appends(out, r->chunk_prefix);
		json_quote(out, s, n);
		buf_appends(out, "},\"finish_reason\":null}]}\n\n");
	} else {
		buf_appends(out, "data: {\"content\":");
		json_quote(out, s, n);
		buf_appends(out, "}\n\n");
	}
	req_resume(r);
}

static cJSON *usage_object(const struct chat_result *res, int openai)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)res->prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens",
				(double)res->completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens",
				(double)(res->prompt_tokens + res->completion_tokens));
	if (!openai && res->finish_reason[0])
		cJSON_AddStringToObject(u, "finish_reason", res->finish_reason);
	return u;
}

static cJSON *openai_completion(struct req *r, const struct chat_result *res)
{
	cJSON *c, *o = openai_object(r, "chat.completion", &c), *m;

	m = cJSON_AddObjectToObject(c, "message");
	cJSON_AddStringToObject(m, "role", "assistant");
	cJSON_AddStringToObject(m, "content", res->content.ptr);
	cJSON_AddStringToObject(c, "finish_reason",
				res->finish_reason[0] ? res->finish_reason : "stop");
	cJSON_AddItemToObject(o, "usage", usage_object(res, 1));
	return o;
}

static void release_upstream(struct req *r);

/* --log-conversations: /conversation exchanges go to the same log as
 * the CLI's, each request as one conversation. */
static void log_conversation(struct req *r, const struct chat_result *res)
{
	char id[CONVLOG_ID_MAX];
	struct err e;

	if (!r->srv->o->log_conversations || !r->srv->db ||
	    strcmp(r->route->path, "/conversation") ||
	    (res->err.code != ERR_OK && !res->content.len))
		return;
	if (convlog_record_all(r->srv->db, id, &r->creq, res, &e) < 0)
		fprintf(stderr, "aichat: serve: could not log request %s: %s\n",
			r->id, e.msg);
}

/* RAGResponse: the answer, its numbered sources, timings and usage. */
static cJSON *rag_response(struct req *r, const struct chat_result *res)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "answer", res->content.ptr);
	cJSON_AddItemToObject(o, "sources", cJSON_Duplicate(r->rag_sources, 1));
	cJSON_AddNumberToObject(o, "retrieval_latency_ms", (double)r->retrieval_ms);
	cJSON_AddStringToObject(o, "retrieval", r->retrieval);
	if (r->retrieval_warning[0])
		cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
	cJSON_AddStringToObject(o, "model", res->model);
	if (res->have_usage) {
		cJSON_AddNumberToObject(o, "prompt_tokens", (double)res->prompt_tokens);
		cJSON_AddNumberToObject(o, "completion_tokens", (double)res->completion_tokens);
	} else {
		cJSON_AddNullToObject(o, "prompt_tokens");
		cJSON_AddNullToObject(o, "completion_tokens");
	}
	return o;
}

static void on_chat_done(void *ud, const struct chat_result *res)
{
	struct req *r = ud;

	r->chat = NULL;
	note_result(r, res);
	release_upstream(r);
	log_conversation(r, res);
	if (r->st) {
		if (res->err.code != ERR_OK) {
			if (r->kind == STREAM_OPENAI)
				push_data(r, NULL, openai_error_object(res->err.code,
								       res->err.msg, NULL));
			else
				push_data(r, "error", error_object(
						  err_code_name(res->err.code),
						  res->err.msg));
		} else if (r->kind == STREAM_OPENAI) {
			push_data(r, NULL, openai_chunk(r, NULL, 0,
				res->finish_reason[0] ? res->finish_reason : "stop"));
			if (r->include_usage) {
				cJSON *o = openai_chunk(r, NULL, 0, NULL);
				cJSON_ReplaceItemInObject(o, "choices", cJSON_CreateArray());
				cJSON_AddItemToObject(o, "usage", usage_object(res, 1));
				push_data(r, NULL, o);
			}
			stream_push(r, "data: [DONE]\n\n", 14);
		} else {
			push_data(r, "usage", usage_object(res, 0));
			stream_push(r, "data: [DONE]\n\n", 14);
		}
		stream_end(r);
		return;
	}
	if (res->err.code != ERR_OK) {
		reply_error(r, &res->err);
		return;
	}
	cJSON *o = r->route->response == RESP_OPENAI_CHAT ? openai_completion(r, res) :
		   r->route->response == RESP_RAG_QUERY ? rag_response(r, res) :
		   chat_result_json(res);
	if (r->cacheable && r->srv->cache) {
		char *text = json_print(o);
		cache_put(r->srv->cache, r->cache_key, strlen(r->cache_key), text,
			  strlen(text), loop_now_ms());
		free(text);
	}
	reply_json(r, 200, o);
}

static const struct chat_cbs chat_cbs = {
	.on_delta = on_chat_delta,
	.on_done = on_chat_done,
};

static void llm_opts_for(struct req *r, struct llm_opts *lo, int stream)
{
	llm_opts_default(lo);
	lo->retries = r->srv->o->retries;
	if (!stream && r->srv->o->upstream_timeout_ms)
		lo->total_ms = r->srv->o->upstream_timeout_ms;
}

/* Model name errors are the client's: 422 on the model field. */
static void reply_start_error(struct req *r, const struct err *e)
{
	if (e->code == ERR_CONFIG && (strstr(e->msg, "unknown") ||
				      strstr(e->msg, "invalid model"))) {
		struct verrors ve = { 0 };
		ve.v = xcalloc(1, sizeof(*ve.v));
		ve.n = 1;
		snprintf(ve.v[0].loc, sizeof(ve.v[0].loc), "model");
		snprintf(ve.v[0].field, sizeof(ve.v[0].field), "model");
		snprintf(ve.v[0].msg, sizeof(ve.v[0].msg), "%.150s", e->msg);
		ve.v[0].type = "value_error";
		snprintf(ve.v[0].value, sizeof(ve.v[0].value), "%s",
			 r->creq.model ? r->creq.model : "");
		reply_validation(r, &ve);
		verrors_release(&ve);
		return;
	}
	if (e->code == ERR_INVALID_REQUEST) {
		reply_error_status(r, is_openai_route(r) ? 400 : 422, e->code, e->msg);
		return;
	}
	reply_error(r, e);
}

static void start_chat(struct req *r)
{
	struct llm_opts lo;
	struct err e;

	err_clear(&e);
	llm_opts_for(r, &lo, r->creq.stream);
	r->chat = chat_start(r->srv->eng, r->srv->cfg, &r->creq, &lo, &chat_cbs,
			     r, &e);
	if (!r->chat) {
		release_upstream(r);
		reply_start_error(r, &e);
		return;
	}
	snprintf(r->model, sizeof(r->model), "%s", chat_progress(r->chat)->model);
	if (r->creq.stream) {
		start_stream(r, r->route->response == RESP_OPENAI_CHAT ?
			     STREAM_OPENAI : STREAM_AICHAT);
		/* OpenAI streams open with the assistant's role. */
		if (r->kind == STREAM_OPENAI) {
			cJSON *o = openai_chunk(r, "", 1, NULL);
			push_data(r, NULL, o);
		}
		/* A RAG answer says where it comes from before it starts. */
		if (r->route->response == RESP_RAG_QUERY) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToObject(o, "sources", cJSON_Duplicate(r->rag_sources, 1));
			cJSON_AddNumberToObject(o, "retrieval_latency_ms",
						(double)r->retrieval_ms);
			cJSON_AddStringToObject(o, "retrieval", r->retrieval);
			if (r->retrieval_warning[0])
				cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
			push_data(r, "metadata", o);
		}
	}
	else if (r->in_handler)
		req_suspend(r);
}

/* ==== batch ==== */

static enum batch_next batch_next_item(void *ud, void **item,
				       const struct chat_request **req)
{
	struct req *r = ud;

	if (r->bnext >= r->nbreqs)
		return BATCH_END;
	*item = (void *)(uintptr_t)r->bnext;
	*req = &r->breqs[r->bnext++];
	return BATCH_ITEM;
}

static void on_batch_item(void *ud, void *tag, const struct chat_result *res)
{
	struct req *r = ud;
	cJSON *item = cJSON_GetArrayItem(r->bresults, (int)(uintptr_t)tag);

	if (res->err.code == ERR_OK) {
		cJSON_ReplaceItemInObject(item, "content",
					  cJSON_CreateString(res->content.ptr));
	} else {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "code", err_code_name(res->err.code));
		cJSON_AddStringToObject(e, "message", res->err.msg);
		cJSON_ReplaceItemInObject(item, "error", e);
	}
	if (res->have_usage) {
		r->prompt_tokens += res->prompt_tokens;
		r->completion_tokens += res->completion_tokens;
		r->have_usage = 1;
		metrics_tokens(r->srv->metrics, res->model, res->prompt_tokens,
			       res->completion_tokens);
	}
	if (res->model[0])
		snprintf(r->model, sizeof(r->model), "%s", res->model);
}

static void on_batch_done(void *ud)
{
	struct req *r = ud;
	cJSON *o = cJSON_CreateObject();

	r->batch = NULL;
	release_upstream(r);
	cJSON_AddItemToObject(o, "results", r->bresults);
	r->bresults = NULL;
	reply_json(r, 200, o);
}

static const struct batch_cbs batch_cbs = {
	.next = batch_next_item,
	.on_item = on_batch_item,
	.on_done = on_batch_done,
};

static void start_batch(struct req *r)
{
	const cJSON *items = json_arr(r->json, "items"), *it;
	const char *model = json_str(r->json, "model");
	struct llm_opts lo;
	size_t i = 0;
	double d;

	r->nbreqs = (size_t)cJSON_GetArraySize(items);
	r->breqs = xcalloc(r->nbreqs, sizeof(*r->breqs));
	r->bresults = cJSON_CreateArray();
	cJSON_ArrayForEach(it, items) {
		cJSON *one = cJSON_CreateObject(), *res = cJSON_CreateObject();

		cJSON_AddStringToObject(one, "prompt", json_str(it, "prompt"));
		if (model)
			cJSON_AddStringToObject(one, "model", model);
		if (json_num(r->json, "temperature", &d) == 0)
			cJSON_AddNumberToObject(one, "temperature", d);
		if (json_num(r->json, "max_tokens", &d) == 0)
			cJSON_AddNumberToObject(one, "max_tokens", d);
		chat_request_from_json(&r->breqs[i++], one);
		cJSON_Delete(one);
		cJSON_AddStringToObject(res, "id", json_str(it, "id"));
		cJSON_AddNullToObject(res, "content");
		cJSON_AddNullToObject(res, "error");
		cJSON_AddItemToArray(r->bresults, res);
	}
	llm_opts_for(r, &lo, 0);
	r->batch = batch_start(r->srv->eng, r->srv->cfg,
			       r->srv->o->batch_concurrency, &lo, &batch_cbs, r);
	if (r->in_handler)
		req_suspend(r);
}

/* ==== the upstream gate (--max-upstream) ==== */

static void start_upstream_work(struct req *r)
{
	if (r->route->response == RESP_BATCH)
		start_batch(r);
	else
		start_chat(r);
}

static void release_upstream(struct req *r)
{
	struct server *srv = r->srv;

	if (!r->holds_upstream)
		return;
	r->holds_upstream = 0;
	srv->upstream_active--;
	while (srv->wait_head && (!srv->o->max_upstream ||
				  srv->upstream_active < srv->o->max_upstream)) {
		struct req *w = srv->wait_head;
		srv->wait_head = w->wait_next;
		if (!srv->wait_head)
			srv->wait_tail = NULL;
		srv->waiting--;
		w->waiting = 0;
		w->holds_upstream = 1;
		srv->upstream_active++;
		start_upstream_work(w);
	}
}

static void unqueue(struct req *r)
{
	struct server *srv = r->srv;
	struct req **pp = &srv->wait_head, *prev = NULL;

	if (!r->waiting)
		return;
	while (*pp && *pp != r) {
		prev = *pp;
		pp = &(*pp)->wait_next;
	}
	if (*pp) {
		*pp = r->wait_next;
		if (srv->wait_tail == r)
			srv->wait_tail = prev;
		srv->waiting--;
	}
	r->waiting = 0;
}

static void acquire_upstream(struct req *r)
{
	struct server *srv = r->srv;
	const struct server_opts *o = srv->o;

	if (!o->max_upstream || srv->upstream_active < o->max_upstream) {
		r->holds_upstream = 1;
		srv->upstream_active++;
		start_upstream_work(r);
		return;
	}
	if (srv->waiting >= (size_t)o->max_queue) {
		struct MHD_Response *resp = error_response(r, ERR_OVERLOADED,
			"server busy: too many upstream calls in flight, try again");

		mhd.add_response_header(resp, "Retry-After", "1");
		send_response(r, 503, resp);
		return;
	}
	r->waiting = 1;
	r->wait_next = NULL;
	if (srv->wait_tail)
		srv->wait_tail->wait_next = r;
	else
		srv->wait_head = r;
	srv->wait_tail = r;
	srv->waiting++;
	req_suspend(r);
}

/* Cancels upstream work; no callback of it runs afterwards. */
static void stop_work(struct req *r)
{
	if (r->chat) {
		chat_cancel(r->chat);
		r->chat = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	if (r->batch) {
		batch_cancel(r->batch);
		r->batch = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	if (r->embed) {
		embed_cancel(r->embed);
		r->embed = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	if (r->search) {
		search_cancel(r->search);
		r->search = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	unqueue(r);
	release_upstream(r);
}

/* ==== routing ==== */

/* Does path match the template ("{id}" is one non-empty segment)?  The
 * segment is copied to id. */
static int path_match(const char *tpl, const char *path, char *id, size_t cap)
{
	while (*tpl && *path) {
		if (!strncmp(tpl, "{id}", 4)) {
			size_t n = strcspn(path, "/");
			if (!n)
				return 0;
			snprintf(id, cap, "%.*s", (int)n, path);
			tpl += 4;
			path += n;
			continue;
		}
		if (*tpl++ != *path++)
			return 0;
	}
	return !*tpl && !*path;
}

static const struct route_info *find_route(struct req *r, const char *method,
					   int *path_known)
{
	*path_known = 0;
	for (size_t i = 0; i < serve_nroutes; i++) {
		if (!path_match(serve_routes[i].path, r->path, r->path_id,
				sizeof(r->path_id)))
			continue;
		*path_known = 1;
		if (!strcmp(serve_routes[i].method, method))
			return &serve_routes[i];
	}
	return NULL;
}

/* Constant time in the length of the candidate key. */
static int key_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
	return diff == 0;
}

/* 0 when allowed; otherwise the 401 has been sent. */
static int check_auth(struct req *r)
{
	const struct server_opts *o = r->srv->o;
	const char *auth = header(r, "Authorization"), *given = NULL;
	int match = -1;

	if (!o->nkeys || !r->route->auth)
		return 0;
	if (auth && !strncasecmp(auth, "Bearer ", 7))
		given = auth + 7;
	else
		given = header(r, "X-API-Key");
	if (given)
		/* Compare with every key, so the time taken does not say
		 * which one (or whether any) was close. */
		for (size_t i = 0; i < o->nkeys; i++)
			if (key_equal(given, o->api_keys[i]) && match < 0)
				match = (int)i;
	if (match >= 0) {
		snprintf(r->client, sizeof(r->client), "key:%d", match + 1);
		return 0;
	}
	struct MHD_Response *resp = error_response(r, ERR_UNAUTHORIZED, given ?
		"invalid API key" :
		"missing API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'");

	mhd.add_response_header(resp, "WWW-Authenticate", "Bearer");
	send_response(r, 401, resp);
	return -1;
}

/* 0 when allowed; otherwise the 429 has been sent. */
static int check_rate(struct req *r)
{
	struct rl_decision d;
	char v[32];

	if (!r->srv->rl || !r->route->auth)
		return 0;
	ratelimit_take(r->srv->rl, r->client, loop_now_ms(), &d);
	if (d.allowed)
		return 0;
	metrics_rate_limited(r->srv->metrics, r->route->path);
	struct MHD_Response *resp = error_response(r, ERR_RATE_LIMITED,
		"rate limit exceeded, try again later");

	snprintf(v, sizeof(v), "%ld", (long)(d.retry_after_s + 0.999));
	mhd.add_response_header(resp, "Retry-After", v);
	snprintf(v, sizeof(v), "%ld", d.limit);
	mhd.add_response_header(resp, "X-RateLimit-Limit", v);
	snprintf(v, sizeof(v), "%ld", d.remaining);
	mhd.add_response_header(resp, "X-RateLimit-Remaining", v);
	snprintf(v, sizeof(v), "%ld", (long)(d.reset_s + 0.999));
	mhd.add_response_header(resp, "X-RateLimit-Reset", v);
	send_response(r, 429, resp);
	return -1;
}

/* GET and DELETE on /jobs/{id}. */
static void route_job(struct req *r)
{
	struct err e;
	cJSON *o;

	err_clear(&e);
	if (!r->srv->jobs) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "background jobs are unavailable: the database could not be opened");
		return;
	}
	if (r->route->response == RESP_JOB_RESULTS) {
		struct buf b;
		buf_init(&b, 0);
		if (jobs_results(r->srv->jobs, r->path_id, &b, &e) < 0)
			reply_error(r, &e);
		else
			reply(r, 200, "application/x-ndjson", b.ptr, b.len);
		buf_release(&b);
		return;
	}
	o = r->route->response == RESP_JOB_CANCEL ?
	    jobs_cancel(r->srv->jobs, r->path_id, &e) :
	    jobs_status(r->srv->jobs, r->path_id, &e);
	if (!o)
		reply_error(r, &e);
	else
		reply_json(r, 200, o);
}

static void route_simple(struct req *r)
{
	struct buf b;
	char *doc;

	switch (r->route->response) {
	case RESP_HEALTH:
		reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
		return;
	case RESP_METRICS:
		buf_init(&b, 0);
		metrics_render(r->srv->metrics, &b);
		reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.ptr, b.len);
		buf_release(&b);
		return;
	case RESP_OPENAPI:
		doc = openapi_document();
		reply(r, 200, "application/json", doc, strlen(doc));
		free(doc);
		return;
	case RESP_HTML: {
		const char *html = openapi_docs_html();
		reply(r, 200, "text/html; charset=utf-8", html, strlen(html));
		return;
	}
	case RESP_JOB_STATUS:
	case RESP_JOB_CANCEL:
	case RESP_JOB_RESULTS:
		route_job(r);
		return;
	case RESP_OPENAI_MODELS: {
		cJSON *o = cJSON_CreateObject(), *data = cJSON_AddArrayToObject(o, "data");
		const struct config *cfg = r->srv->cfg;
		const char *def = config_default_model(cfg);
		cJSON_AddStringToObject(o, "object", "list");
		for (size_t i = 0; i <= cfg->naliases + 1; i++) {
			const char *id = i == 0 ? def : i == 1 ? "mock:echo" :
					 cfg->aliases[i - 2].name;
			cJSON *m = cJSON_CreateObject();
			const char *colon = strchr(id, ':');
			char owner[64];
			snprintf(owner, sizeof(owner), "%.*s",
				 colon ? (int)(colon - id) : 6, colon ? id : "aichat");
			if (i == 1 && !strcmp(def, "mock:echo")) {
				cJSON_Delete(m);
				continue;
			}
			cJSON_AddStringToObject(m, "id", id);
			cJSON_AddStringToObject(m, "object", "model");
			cJSON_AddNumberToObject(m, "created", 0);
			cJSON_AddStringToObject(m, "owned_by", owner);
			cJSON_AddItemToArray(data, m);
		}
		reply_json(r, 200, o);
		return;
	}
	default:
		return;
	}
}

/* A cached answer, if the request may use the cache and one is there. */
static int try_cache(struct req *r)
{
	struct server *srv = r->srv;
	const char *opt_in = header(r, "X-AIChat-Cache");
	cJSON *key;
	const char *hit;
	size_t len;

	if (!srv->cache || r->creq.stream)
		return 0;
	if (r->creq.temperature != 0 && !(opt_in && !strcmp(opt_in, "1")))
		return 0;
	/* The normalized request: what can change the answer. */
	key = cJSON_CreateObject();
	cJSON_AddStringToObject(key, "route", r->route->path);
	cJSON_AddStringToObject(key, "model", r->creq.model ? r->creq.model :
				config_default_model(srv->cfg));
	if (r->creq.system)
		cJSON_AddStringToObject(key, "system", r->creq.system);
	cJSON *msgs = cJSON_AddArrayToObject(key, "messages");
	for (size_t i = 0; i < r->creq.nmessages; i++) {
		cJSON *m = cJSON_CreateArray();
		cJSON_AddItemToArray(m, cJSON_CreateString(r->creq.messages[i].role));
		cJSON_AddItemToArray(m, cJSON_CreateString(r->creq.messages[i].content));
		cJSON_AddItemToArray(msgs, m);
	}
	cJSON_AddNumberToObject(key, "temperature", r->creq.temperature);
	cJSON_AddNumberToObject(key, "max_tokens", r->creq.max_tokens);
	r->cache_key = json_print(key);
	cJSON_Delete(key);
	r->cacheable = 1;
	hit = cache_get(srv->cache, r->cache_key, strlen(r->cache_key), &len,
			loop_now_ms());
	metrics_cache(srv->metrics, hit != NULL);
	if (!hit)
		return 0;
	struct MHD_Response *resp = make_response("application/json", hit, len);
	mhd.add_response_header(resp, "X-Cache", "HIT");
	send_response(r, 200, resp);
	return 1;
}

static void on_searched(void *ud, struct search_result *res);

/*
 * Retrieval for the rag routes, once the query vector is known (qvec NULL:
 * BM25 alone; why, when not NULL, says why hybrid search was not
 * possible): the search runs on the searcher's thread, within
 * --rag-search-timeout, and on_searched() goes on.
 */
static void rag_continue(struct req *r, const float *qvec, int dim,
			 const char *why)
{
	cJSON *j = r->json;
	double k = 5;

	json_num(j, "top_k", &k);
	snprintf(r->retrieval, sizeof(r->retrieval), "%s", qvec ? "hybrid" : "bm25");
	if (why)
		snprintf(r->retrieval_warning, sizeof(r->retrieval_warning),
			 "searched with BM25 only: %.200s", why);
	r->search = searcher_start(r->srv->searcher, json_str(j, "collection"),
				   json_str(j, "query"), qvec, dim, (int)k,
				   r->srv->o->rag_search_ms, on_searched, r);
	if (r->in_handler)
		req_suspend(r);
}

/* The search is done: /rag/search answers here; /rag/query builds its
 * prompt and goes on to the model. */
static void on_searched(void *ud, struct search_result *res)
{
	struct req *r = ud;
	cJSON *j = r->json;
	struct rag_hit *hits = res->hits;
	size_t n = res->n;
	const char *why = r->retrieval_warning[0] ? r->retrieval_warning : NULL;

	r->search = NULL;
	r->retrieval_ms = loop_now_ms() - r->rag_started;
	if (res->rc < 0) {
		if (res->timed_out)
			reply_error_status(r, 504, ERR_UPSTREAM_TIMEOUT,
					   "document search took longer than --rag-search-timeout");
		else
			reply_error_status(r, res->err.code == ERR_NOT_FOUND ? 404 : 422,
					   res->err.code == ERR_NOT_FOUND ? ERR_NOT_FOUND :
					   ERR_INVALID_REQUEST, res->err.msg);
		return;
	}
	r->rag_sources = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *src = cJSON_CreateObject(), *lines = cJSON_CreateArray();
		cJSON_AddNumberToObject(src, "n", (double)(i + 1));
		cJSON_AddStringToObject(src, "path", hits[i].path);
		cJSON_AddItemToArray(lines, cJSON_CreateNumber(hits[i].line_first));
		cJSON_AddItemToArray(lines, cJSON_CreateNumber(hits[i].line_last));
		cJSON_AddItemToObject(src, "lines", lines);
		cJSON_AddNumberToObject(src, "score", hits[i].score);
		cJSON_AddStringToObject(src, "snippet", hits[i].snippet);
		cJSON_AddItemToArray(r->rag_sources, src);
	}
	if (r->route->response == RESP_RAG_SEARCH) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "results", r->rag_sources);
		r->rag_sources = NULL;
		cJSON_AddNumberToObject(o, "retrieval_latency_ms", (double)r->retrieval_ms);
		cJSON_AddStringToObject(o, "retrieval", r->retrieval);
		if (why)
			cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
		rag_hits_free(hits, n);
		reply_json(r, 200, o);
		return;
	}
	if (!n) {
		rag_hits_free(hits, n);
		reply_error_status(r, 404, ERR_NOT_FOUND,
				   "no passage of the collection matches the question; nothing was sent");
		return;
	}
	/* The question with its numbered sources, as `aichat rag query`. */
	struct buf prompt;
	buf_init(&prompt, 0);
	rag_prompt(&prompt, json_str(j, "query"), hits, n);
	rag_hits_free(hits, n);
	memset(&r->creq, 0, sizeof(r->creq));
	if (json_str(j, "model"))
		r->creq.model = xstrdup(json_str(j, "model"));
	r->creq.temperature = -1;
	r->creq.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
	r->creq.messages = xcalloc(1, sizeof(*r->creq.messages));
	r->creq.messages[0].role = xstrdup("user");
	r->creq.messages[0].content = buf_detach(&prompt);
	r->creq.nmessages = 1;
	acquire_upstream(r);
}

static void on_query_embedded(void *ud, const struct embed_result *res)
{
	struct req *r = ud;

	r->embed = NULL;
	if (res->dim > 0 && !res->failed)
		rag_continue(r, res->vecs, res->dim, NULL);
	else
		rag_continue(r, NULL, 0, res->err.code != ERR_OK ? res->err.msg :
			     "the query could not be embedded");
}

/*
 * The rag routes: a collection with vectors has the query embedded first
 * (on the loop, within --rag-embed-timeout), then hybrid search; otherwise
 * BM25 at once.
 * An embedding provider that fails means BM25, and the answer says so.
 */
static void route_rag(struct req *r)
{
	const char *collection = json_str(r->json, "collection");
	struct rag_collection c;
	struct embed_model m;
	struct llm_opts lo;
	struct err e;
	const char *q;

	err_clear(&e);
	r->rag_started = loop_now_ms();
	if (!r->srv->db || !r->srv->searcher) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "document search is unavailable: the database could not be opened");
		return;
	}
	if (rag_name_check(collection, &e) < 0) {
		reply_error_status(r, 422, ERR_INVALID_REQUEST, e.msg);
		return;
	}
	if (rag_collection_get(r->srv->db, collection, &c, &e) < 0 || !c.embed_model[0]) {
		/* rag_search says what is wrong with a missing collection. */
		rag_continue(r, NULL, 0, NULL);
		return;
	}
	if (embed_resolve(r->srv->cfg, c.embed_model, &m, &e) < 0) {
		embed_model_release(&m);
		rag_continue(r, NULL, 0, e.msg);
		return;
	}
	llm_opts_default(&lo);
	lo.retries = 0;
	lo.total_ms = r->srv->o->rag_embed_ms;
	q = json_str(r->json, "query");
	r->embed = embed_start(r->srv->eng, &m, &q, 1, &lo, on_query_embedded, r, &e);
	embed_model_release(&m);
	if (!r->embed) {
		rag_continue(r, NULL, 0, e.msg);
		return;
	}
	if (r->in_handler)
		req_suspend(r);
}

/* The body is complete: parse, validate, run. */
static void route_body(struct req *r)
{
	size_t pos = 0;
	struct verrors ve = { 0 };
	cJSON *j;

	j = json_parse(r->body.ptr, r->body.len, &pos);
	if (!j) {
		int line, col;
		char msg[160];
		json_position(r->body.ptr, pos, &line, &col);
		snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d",
			 line, col);
		metrics_validation_failure(r->srv->metrics, r->route->path);
		snprintf(r->err_code, sizeof(r->err_code), "invalid_request");
		if (is_openai_route(r)) {
			reply_json(r, 400, openai_error_object(ERR_INVALID_REQUEST,
							       msg, NULL));
			return;
		}
		cJSON *o = cJSON_CreateObject(), *detail = cJSON_AddArrayToObject(o, "detail");
		cJSON *d = cJSON_CreateObject(), *loc = cJSON_CreateArray();
		cJSON_AddItemToArray(detail, d);
		cJSON_AddItemToArray(loc, cJSON_CreateString("body"));
		cJSON_AddItemToArray(loc, cJSON_CreateNumber((double)pos));
		cJSON_AddItemToObject(d, "loc", loc);
		cJSON_AddStringToObject(d, "msg", msg);
		cJSON_AddStringToObject(d, "type", "json_invalid");
		reply_json(r, 422, o);
		return;
	}
	if (schema_validate(r->route->request, j, &ve)) {
		reply_validation(r, &ve);
		verrors_release(&ve);
		cJSON_Delete(j);
		return;
	}
	r->json = j;
	if (r->route->response == RESP_OPENAI_CHAT) {
		double d;
		/* max_completion_tokens is the newer name of max_tokens. */
		if (json_num(j, "max_completion_tokens", &d) == 0 &&
		    !cJSON_GetObjectItemCaseSensitive(j, "max_tokens"))
			cJSON_AddNumberToObject(j, "max_tokens", d);
		r->include_usage = cJSON_IsTrue(json_path(j, "stream_options.include_usage"));
	}
	if (r->route->response == RESP_JOB_SUBMIT) {
		struct err e;
		cJSON *o;
		err_clear(&e);
		if (!r->srv->jobs) {
			reply_error_status(r, 503, ERR_OVERLOADED,
					   "background jobs are unavailable: the database could not be opened");
			return;
		}
		o = jobs_submit(r->srv->jobs, j, &e);
		if (o)
			reply_json(r, 202, o);
		else
			reply_error(r, &e);
		return;
	}
	if (r->route->response == RESP_RAG_QUERY ||
	    r->route->response == RESP_RAG_SEARCH) {
		route_rag(r);
		return;
	}
	if (r->route->response != RESP_BATCH) {
		chat_request_from_json(&r->creq, j);
		if (try_cache(r))
			return;
	}
	acquire_upstream(r);
}

static void route(struct req *r)
{
	if (r->too_large) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
			 r->srv->o->max_body);
		reply_error_status(r, 413, ERR_PAYLOAD_TOO_LARGE, msg);
		return;
	}
	if (r->route->request)
		route_body(r);
	else
		route_simple(r);
}

/* Checks that need only the headers; 0 when the request may go on. */
static int early_checks(struct req *r, const char *method)
{
	int known;
	const char *cl;

	if (!strcmp(method, "OPTIONS") && r->srv->o->cors_origin) {
		struct MHD_Response *resp = make_response("text/plain", "", 0);
		mhd.add_response_header(resp, "Access-Control-Allow-Methods",
					"GET, POST, DELETE, OPTIONS");
		mhd.add_response_header(resp, "Access-Control-Allow-Headers",
					"Authorization, Content-Type, X-API-Key, X-Request-ID, X-AIChat-Cache");
		mhd.add_response_header(resp, "Access-Control-Max-Age", "600");
		send_response(r, 204, resp);
		return -1;
	}
	r->route = find_route(r, method, &known);
	if (!r->route) {
		char msg[200];
		if (known) {
			snprintf(msg, sizeof(msg), "method %s not allowed on %.100s",
				 method, r->path);
			reply_error_status(r, 405, ERR_METHOD_NOT_ALLOWED, msg);
		} else {
			snprintf(msg, sizeof(msg), "no route %.100s (see /docs)", r->path);
			reply_error_status(r, 404, ERR_NOT_FOUND, msg);
		}
		return -1;
	}
	if (check_auth(r) < 0 || check_rate(r) < 0)
		return -1;
	cl = header(r, "Content-Length");
	if (cl && strtoull(cl, NULL, 10) > r->srv->o->max_body) {
		r->too_large = 1;
		route(r);
		return -1;
	}
	if (r->srv->draining && r->route->request) {
		struct MHD_Response *resp = error_response(r, ERR_OVERLOADED,
							   "server is shutting down");

		mhd.add_response_header(resp, "Retry-After", "5");
		send_response(r, 503, resp);
		return -1;
	}
	return 0;
}

static struct req *req_new(struct server *srv, struct MHD_Connection *conn,
			   const char *url, const char *method)
{
	struct req *r = xcalloc(1, sizeof(*r));

	r->srv = srv;
	r->conn = conn;
	r->watch_fd = -1;
	r->ttft_ms = -1;
	r->started = loop_now_ms();
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->path, sizeof(r->path), "%s", url);
	buf_init(&r->body, srv->o->max_body);
	client_address(r);
	request_id(r);
	r->next = srv->reqs;
	if (srv->reqs)
		srv->reqs->prev = r;
	srv->reqs = r;
	srv->active++;
	return r;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	struct server *srv = cls;
	struct req *r = *con_cls;

	(void)version;
	if (!r) {
		r = req_new(srv, conn, url, method);
		*con_cls = r;
		r->in_handler = 1;
		early_checks(r, method);
		r->in_handler = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->queued && !r->too_large &&
		    buf_append(&r->body, upload, *upload_size) < 0)
			r->too_large = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	r->in_handler = 1;
	if (r->pending) {
		mhd.queue_response(conn, (unsigned)r->pending_status, r->pending);
		mhd.destroy_response(r->pending);
		r->pending = NULL;
		r->queued = 1;
	} else if (!r->queued && !r->chat && !r->batch && !r->waiting &&
		   !r->embed && !r->search && !r->client_gone) {
		route(r);
	} else if (!r->queued && !r->client_gone) {
		/* Resumed with nothing to send yet (a queue slot opened). */
		req_suspend(r);
	} else if (!r->queued) {
		/* The client left before its answer: close the connection. */
		r->in_handler = 0;
		return MHD_NO;
	}
	r->in_handler = 0;
	return MHD_YES;
}

/* ==== the end of every request ==== */

static void log_request(struct req *r, enum MHD_RequestTerminationCode why)
{
	int64_t ms = loop_now_ms() - r->started;
	char when[40];
	struct buf b;

	iso_time(when, sizeof(when));
	buf_init(&b, 0);
	if (r->srv->o->log_text) {
		buf_printf(&b, "%s %s %s %s %d %lldms", when, r->id, r->method,
			   r->path, r->status, (long long)ms);
		if (r->model[0])
			buf_printf(&b, " model=%s", r->model);
		if (r->ttft_ms >= 0)
			buf_printf(&b, " ttft=%lldms", (long long)r->ttft_ms);
		if (r->have_usage)
			buf_printf(&b, " tokens=%ld+%ld", r->prompt_tokens,
				   r->completion_tokens);
		buf_printf(&b, " client=%s", r->client);
		if (r->err_code[0])
			buf_printf(&b, " error=%s", r->err_code);
		if (why == MHD_REQUEST_TERMINATED_CLIENT_ABORT || r->client_gone)
			buf_appends(&b, " client_disconnected");
	} else {
		cJSON *o = cJSON_CreateObject();
		char *text;
		cJSON_AddStringToObject(o, "time", when);
		cJSON_AddStringToObject(o, "request_id", r->id);
		cJSON_AddStringToObject(o, "method", r->method);
		cJSON_AddStringToObject(o, "path", r->path);
		cJSON_AddNumberToObject(o, "status", r->status);
		cJSON_AddNumberToObject(o, "duration_ms", (double)ms);
		if (r->ttft_ms >= 0)
			cJSON_AddNumberToObject(o, "ttft_ms", (double)r->ttft_ms);
		if (r->model[0]) {
			cJSON_AddStringToObject(o, "model", r->model);
			cJSON_AddStringToObject(o, "provider", r->provider);
		}
		if (r->have_usage) {
			cJSON_AddNumberToObject(o, "prompt_tokens", (double)r->prompt_tokens);
			cJSON_AddNumberToObject(o, "completion_tokens",
						(double)r->completion_tokens);
		}
		cJSON_AddStringToObject(o, "client", r->client);
		if (r->err_code[0])
			cJSON_AddStringToObject(o, "error", r->err_code);
		if (why == MHD_REQUEST_TERMINATED_CLIENT_ABORT || r->client_gone)
			cJSON_AddBoolToObject(o, "client_disconnected", 1);
		text = json_print(o);
		buf_appends(&b, text);
		free(text);
		cJSON_Delete(o);
	}
	buf_putc(&b, '\n');
	fwrite(b.ptr, 1, b.len, stderr);
	buf_release(&b);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
			 void **con_cls, enum MHD_RequestTerminationCode why)
{
	struct server *srv = cls;
	struct req *r = *con_cls;
	const char *route = r && r->route ? r->route->path : "unmatched";

	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->client_gone &&
	    (r->chat || r->batch || r->embed || r->search || r->st))
		r->client_gone = 1;
	stop_work(r);
	if (r->watch_fd >= 0)
		loop_del_fd(srv->loop, r->watch_fd);
	if (r->keepalive)
		loop_del_timer(srv->loop, r->keepalive);
	if (r->st) {
		metrics_streams_add(srv->metrics, -1);
		r->st->req = NULL;
		r->st->finished = 1;
		stream_unref(r->st);
	}
	if (r->pending)
		mhd.destroy_response(r->pending);
	if (!r->status && (r->client_gone || why != MHD_REQUEST_TERMINATED_COMPLETED_OK))
		r->status = 499;   /* the client closed the request (nginx's code) */
	metrics_request(srv->metrics, route, r->method, r->status,
			(loop_now_ms() - r->started) / 1000.0);
	log_request(r, why);
	cJSON_Delete(r->json);
	cJSON_Delete(r->bresults);
	chat_request_release(&r->creq);
	for (size_t i = 0; i < r->nbreqs; i++)
		chat_request_release(&r->breqs[i]);
	free(r->breqs);
	free(r->cache_key);
	free(r->chunk_prefix);
	cJSON_Delete(r->rag_sources);
	buf_release(&r->body);
	if (r->prev)
		r->prev->next = r->next;
	else
		srv->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
	srv->active--;
	if (srv->draining && srv->active == 0)
		loop_stop(srv->loop);
}

/* ==== signals and draining ==== */

static void hard_stop(struct loop *l, void *data)
{
	struct server *srv = data;

	srv->drain_timer = NULL;
	loop_stop(l);
}

static void on_drain_timeout(struct loop *l, void *data)
{
	struct server *srv = data;

	(void)l;
	srv->drain_timer = NULL;
	/* Time is up: end what is left with an error the client can see. */
	for (struct req *r = srv->reqs; r; r = r->next) {
		if (r->st && !r->st->finished) {
			stop_work(r);
			push_data(r, r->kind == STREAM_OPENAI ? NULL : "error",
				  r->kind == STREAM_OPENAI ?
				  openai_error_object(ERR_OVERLOADED, "server shutting down", NULL) :
				  error_object("overloaded", "server shutting down"));
			stream_end(r);
		} else if ((r->chat || r->batch || r->waiting) && !r->queued &&
			   !r->pending) {
			stop_work(r);
			reply_error_status(r, 503, ERR_OVERLOADED,
					   "server shutting down");
		}
	}
	/* Give MHD a moment to flush those, then stop regardless. */
	srv->drain_timer = loop_add_timer(srv->loop, 2000, hard_stop, srv);
}

static void on_signal(struct loop *l, int fd, int events, void *data)
{
	struct server *srv = data;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (srv->draining) {
		loop_stop(l);   /* a second signal: stop now */
		return;
	}
	srv->draining = 1;
	fprintf(stderr, "aichat: %s: draining %zu request%s (up to %.0f s)\n",
		si.ssi_signo == SIGINT ? "interrupt" : "terminate", srv->active,
		srv->active == 1 ? "" : "s", srv->o->drain_ms / 1000.0);
	/* Stop accepting: close the listening socket, keep the others. */
	int lfd = mhd.quiesce_daemon(srv->d);
	if (lfd >= 0)
		close(lfd);
	if (srv->active == 0) {
		loop_stop(l);
		return;
	}
	srv->drain_timer = loop_add_timer(l, srv->o->drain_ms, on_drain_timeout, srv);
}

/* ==== start and stop ==== */

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int is_loopback(const char *host)
{
	return !strcmp(host, "127.0.0.1") || !strcmp(host, "localhost") ||
	       !strcmp(host, "::1") || !strncmp(host, "127.", 4);
}

int server_run(const struct server_opts *o, const struct config *cfg,
	       struct err *e)
{
	struct server srv = { 0 };
	struct sockaddr_in sin = { 0 };
	struct sockaddr_in6 sin6 = { 0 };
	struct sockaddr *sa;
	/* No MHD_USE_ERROR_LOG: stderr carries one line per request, and a
	 * client that leaves mid-stream is already in its line. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *di;
	const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
	sigset_t mask, old;
	int rc = -1, port;

	if (!is_loopback(host) && !o->nkeys && !o->insecure_no_auth)
		return err_set(e, ERR_USAGE,
			       "refusing to listen on %s without an API key: set --api-key or AICHAT_API_KEYS, or pass --insecure-no-auth",
			       host);
	if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		return err_set(e, ERR_USAGE,
			       "invalid value '%.64s' for '--host': must be an IPv4 or IPv6 address",
			       o->host);
	}
	if (mhd_load(e) < 0)
		return -1;
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	srv.o = o;
	srv.cfg = cfg;
	srv.sigfd = -1;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	srv.loop = loop_new();
	srv.eng = srv.loop ? engine_new(srv.loop) : NULL;
	if (!srv.eng) {
		err_set(e, ERR_INTERNAL, "cannot start the event loop");
		goto cleanup;
	}
	srv.metrics = metrics_new();
	if (o->rate_per_second > 0)
		srv.rl = ratelimit_new(o->rate_per_second, o->rate_burst, 100000);
	if (o->cache_size)
		srv.cache = cache_new(o->cache_size, o->cache_ttl_ms);
	{
		struct err dbe;
		struct llm_opts lo;
		llm_opts_default(&lo);
		lo.retries = o->retries;
		if (store_open(NULL, &srv.db, &dbe) == 0) {
			srv.jobs = jobs_new(srv.eng, cfg, srv.db, 2, &lo);
			jobs_resume(srv.jobs);
			if (!(srv.searcher = searcher_new(srv.loop, &dbe)))
				fprintf(stderr, "aichat: serve: document search off: %s\n", dbe.msg);
		} else {
			fprintf(stderr, "aichat: serve: background jobs off: %s\n", dbe.msg);
		}
	}
	srv.d = mhd.start_daemon(flags, 0, NULL, NULL, on_access, &srv,
		MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, o->client_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, &srv,
		MHD_OPTION_END);
	if (!srv.d) {
		err_set(e, ERR_IO, "cannot listen on %s:%d: %s", o->host, o->port,
			strerror(errno ? errno : EADDRINUSE));
		goto cleanup;
	}
	di = mhd.get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
	port = di ? di->port : o->port;
	di = mhd.get_daemon_info(srv.d, MHD_DAEMON_INFO_EPOLL_FD);
	loop_add_fd(srv.loop, di->epoll_fd, LOOP_READ, on_mhd_ready, &srv);
	rearm_mhd_timer(&srv);

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	srv.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	loop_add_fd(srv.loop, srv.sigfd, LOOP_READ, on_signal, &srv);

	fprintf(stderr, "aichat: listening on http://%s%s%s:%d\n",
		sa->sa_family == AF_INET6 ? "[" : "", host,
		sa->sa_family == AF_INET6 ? "]" : "", port);
	fflush(stderr);
	loop_run(srv.loop);
	fprintf(stderr, "aichat: stopped\n");
	rc = 0;
	/* Requests still open are ended by MHD_stop_daemon (on_completed). */
	mhd.stop_daemon(srv.d);
	srv.d = NULL;
	loop_del_fd(srv.loop, srv.sigfd);
	close(srv.sigfd);
	sigprocmask(SIG_SETMASK, &old, NULL);
cleanup:
	if (srv.d)
		mhd.stop_daemon(srv.d);
	if (srv.drain_timer)
		loop_del_timer(srv.loop, srv.drain_timer);
	if (srv.mhd_timer)
		loop_del_timer(srv.loop, srv.mhd_timer);
	jobs_free(srv.jobs);
	searcher_free(srv.searcher);
	store_close(srv.db);
	rag_vectors_release();
	engine_free(srv.eng);
	metrics_free(srv.metrics);
	ratelimit_free(srv.rl);
	cache_free(srv.cache);
	loop_free(srv.loop);
	return rc;
}
