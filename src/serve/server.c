/*
 * server.c - `aichat serve`: the HTTP face over the chat, batch, jobs and
 * rag services, on the engine's event loop.  This file holds the options,
 * the routing, the end of every request, signals and draining, and start
 * and stop; the rest of serve is listed in internal.h.
 *
 * Threads: one per worker (--workers, workers.c; worker 0 is the main
 * thread), each with its own loop.  libmicrohttpd runs in "external
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
#include "aichat/cache.h"
#include "aichat/jobs.h"
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/store.h"
#include "aichat/openapi.h"
#include "aichat/rag.h"
#include "aichat/redis.h"
#include "rjobs.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
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

void server_opts_default(struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 8000;
	o->tcp = 1;
	o->max_queue = 100;
	o->max_body = 1024 * 1024;
	o->upstream_timeout_ms = 30000;
	o->drain_ms = 30000;
	o->keepalive_ms = 15000;
	o->max_connections = 10000;
	o->client_timeout_s = 30;
	o->request_timeout_ms = 30000;
	o->max_connections_per_ip = 1000;
	o->cache_size = 1000;
	o->cache_ttl_ms = 300000;
	o->batch_concurrency = 10;
	o->retries = 2;
	o->rag_search_ms = 2000;
	o->rag_embed_ms = 5000;
	o->redis_prefix = "aichat:";
	o->redis_timeout_ms = 100;
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
		/* HEAD is GET without the body (MHD leaves it out). */
		if (!strcmp(serve_routes[i].method, method) ||
		    (!strcmp(method, "HEAD") &&
		     !strcmp(serve_routes[i].method, "GET")))
			return &serve_routes[i];
	}
	return NULL;
}

void start_upstream_work(struct req *r)
{
	if (r->route->response == RESP_BATCH)
		start_batch(r);
	else if (r->route->response == RESP_OPENAI_EMBEDDINGS)
		start_embeddings(r);
	else
		start_chat(r);
}

/* Every worker's Redis connection, as one: up while all are. */
static void redis_gather(const struct server *srv, struct redis_view *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->up = 1;
	for (unsigned i = 0; i < srv->hub->n; i++) {
		struct redis_view v;
		if (!srv->hub->w[i]->redis)
			continue;
		redis_view(srv->hub->w[i]->redis, &v);
		redis_view_add(sum, &v);
	}
}

static void route_simple(struct req *r)
{
	struct redis_view rv;
	struct buf b;
	char *doc;

	switch (r->route->response) {
	case RESP_HEALTH:
		if (r->srv->redis) {
			/* Serving still, with what Redis held bypassed or
			 * decided by --redis-fail: degraded, with why. */
			cJSON *h = cJSON_CreateObject();
			redis_gather(r->srv, &rv);
			cJSON_AddStringToObject(h, "status", rv.up ? "ok" : "degraded");
			cJSON_AddStringToObject(h, "redis", rv.up ? "up" : "down");
			if (!rv.up)
				cJSON_AddStringToObject(h, "reason", rv.reason);
			reply_json(r, 200, h);
			return;
		}
		reply(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
		return;
	case RESP_METRICS:
		buf_init(&b, 0);
		metrics_render(r->srv->metrics, &b);
		if (r->srv->redis) {
			redis_gather(r->srv, &rv);
			redis_metrics(&rv, &b);
		}
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
	case RESP_JOB_LIST:
		route_job(r);
		return;
	case RESP_OPENAI_MODELS:
		route_openai_models(r);
		return;
	case RESP_RAG_COLLECTIONS:
		route_rag_collections(r);
		return;
	case RESP_PLAYGROUND:
		route_playground(r);
		return;
	default:
		return;
	}
}

/* The body is complete: parse, validate, run. */
static void route_body(struct req *r)
{
	size_t pos = 0;
	struct verrors ve = { 0 };
	struct json_issue iss;
	cJSON *j;

	j = json_parse_strict(r->body.ptr, r->body.len, &pos, &iss);
	if (!j && iss.type) {
		/* Valid JSON that no reader could trust (json.h). */
		verrors_add(&ve, iss.loc, NULL, iss.type, "%s", iss.msg);
		reply_validation(r, &ve);
		verrors_release(&ve);
		return;
	}
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
	/* Read: a held stream keeps its prompt once, not once more as the
	 * bytes it came in. */
	buf_release(&r->body);
	if (schema_validate(r->route->request, j, &ve)) {
		reply_validation(r, &ve);
		verrors_release(&ve);
		cJSON_Delete(j);
		return;
	}
	r->json = j;
	if (r->route->response == RESP_JOB_SUBMIT) {
		route_job(r);
		return;
	}
	if (r->route->response == RESP_RAG_QUERY ||
	    r->route->response == RESP_RAG_SEARCH) {
		route_rag(r);
		return;
	}
	if (r->route->response == RESP_OPENAI_EMBEDDINGS) {
		route_embeddings(r);
		return;
	}
	if (r->route->response == RESP_OPENAI_CHAT ||
	    r->route->response == RESP_ANTHROPIC) {
		if (v1_prepare(r, j) < 0)
			return;
	} else if (r->route->response != RESP_BATCH) {
		chat_request_from_json(&r->creq, j, r->route->request);
		if (!r->creq.model && serve_default_model(r->srv))
			r->creq.model = xstrdup(serve_default_model(r->srv));
		if (!r->creq.model) {
			no_default_model(r);
			return;
		}
	}
	if (r->route->response != RESP_BATCH && try_cache(r))
		return;
	acquire_upstream(r);
}

static void route(struct req *r)
{
	if (r->cache_ready) {
		/* Resumed with the cache's answer (try_cache()). */
		r->cache_ready = 0;
		if (!cache_answer(r))
			acquire_upstream(r);
		return;
	}
	if (r->too_large) {
		char msg[96];
		struct MHD_Response *resp;
		snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
			 r->srv->o->max_body);
		resp = error_response(r, ERR_PAYLOAD_TOO_LARGE, msg);
		/* The rest of the body is not read: the connection cannot
		 * carry another request. */
		mhd.add_response_header(resp, "Connection", "close");
		send_response(r, 413, resp);
		return;
	}
	if (r->route->request)
		route_body(r);
	else
		route_simple(r);
}

/* Is the Content-Type ct application/json, with or without parameters
 * ("; charset=utf-8")?  Browsers send a body without a CORS preflight
 * only as text/plain, form data or with no type: none of them passes. */
static int is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (!ct)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, "application/json", n))
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return !*ct || *ct == ';';
}

/* A request's head, and its target, at most: past them 431 and 414
 * (MHD's own, HTML, only past its 16 KiB per connection). */
#define MAX_HEAD 8192
#define MAX_TARGET 8192

static enum MHD_Result add_arg_len(void *cls, enum MHD_ValueKind kind,
				   const char *key, const char *value)
{
	size_t *n = cls;

	(void)kind;
	*n += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
	return MHD_YES;
}

static int after_rate_checks(struct req *r);

/* Checks that need only the headers; 0 when the request may go on, 1
 * when it waits for the rate limiter (suspended), -1 when answered. */
static int early_checks(struct req *r, const char *method, const char *url)
{
	int known;
	const union MHD_ConnectionInfo *ci;
	size_t target = strlen(url);

	r->route = find_route(r, method, &known);
	mhd.get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, add_arg_len,
				  &target);
	if (target > MAX_TARGET) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request target longer than %d bytes",
			 MAX_TARGET);
		reply_error_status(r, 414, ERR_URI_TOO_LONG, msg);
		return -1;
	}
	ci = mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	if (ci && ci->header_size > MAX_HEAD) {
		char msg[96];
		snprintf(msg, sizeof(msg), "request head larger than %d bytes",
			 MAX_HEAD);
		reply_error_status(r, 431, ERR_HEADERS_TOO_LARGE, msg);
		return -1;
	}

	/* Both framings at once (RFC 9112 6.1): a proxy in front may have
	 * read the body by one and MHD reads it by the other, so what follows
	 * on the connection cannot be trusted: refuse, and close it. */
	if (header(r, "Content-Length") && header(r, "Transfer-Encoding")) {
		struct MHD_Response *resp = error_response(r, ERR_INVALID_REQUEST,
			"Content-Length and Transfer-Encoding together: send one of them");

		mhd.add_response_header(resp, "Connection", "close");
		send_response(r, 400, resp);
		return -1;
	}
	if (check_host(r) < 0)
		return -1;
	if (!strcmp(method, "OPTIONS") && r->srv->o->cors_origin) {
		struct MHD_Response *resp = make_response("text/plain", "", 0);
		mhd.add_response_header(resp, "Access-Control-Allow-Methods",
					"GET, HEAD, POST, DELETE, OPTIONS");
		mhd.add_response_header(resp, "Access-Control-Allow-Headers",
					"Authorization, Content-Type, X-API-Key, X-Request-ID, X-AIChat-Cache");
		mhd.add_response_header(resp, "Access-Control-Max-Age", "600");
		send_response(r, 204, resp);
		return -1;
	}
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
	if (check_auth(r) < 0)
		return -1;
	switch (check_rate(r)) {
	case 0:
		return after_rate_checks(r);
	case 1:
		r->early_wait = 1;   /* on_access() goes on once resumed */
		return 1;
	default:
		return -1;
	}
}

/* The checks after the rate limit; 0 when the request may go on. */
static int after_rate_checks(struct req *r)
{
	const char *cl;

	if (check_budget(r) < 0)
		return -1;
	if (r->route->request && !is_json_type(header(r, "Content-Type"))) {
		char msg[200];
		const char *ct = header(r, "Content-Type");
		snprintf(msg, sizeof(msg), "Content-Type must be application/json, not '%.60s'",
			 ct ? ct : "");
		for (char *p = msg; *p; p++)
			if (*p < ' ' || *p == 127)
				*p = '?';
		reply_error_status(r, 415, ERR_UNSUPPORTED_MEDIA, ct ? msg :
				   "Content-Type must be application/json (none was sent)");
		return -1;
	}
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
	buf_init(&r->answer, 0);
	{
		const union MHD_ConnectionInfo *ci =
			mhd.get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
		for (size_t i = 0; ci && i < srv->nls; i++)
			if (srv->ls[i].is_unix && srv->ls[i].d == ci->daemon)
				r->via_unix = 1;
		ci = mhd.get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->cs = ci ? ci->socket_context : NULL;
		if (r->cs)
			r->cs->r = r;
	}
	client_address(r);
	request_id(r);
	r->next = srv->reqs;
	if (srv->reqs)
		srv->reqs->prev = r;
	srv->reqs = r;
	srv->active++;
	__atomic_add_fetch(&srv->hub->active, 1, __ATOMIC_SEQ_CST);
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
	if (r && r->early_wait) {
		/* Resumed with the limiter's verdict: the checks go on
		 * where check_rate() left them. */
		if (r->client_gone)
			return MHD_NO;   /* it left while waiting: close */
		if (r->kv) {
			req_suspend(r);
			return MHD_YES;
		}
		r->early_wait = 0;
		r->in_handler = 1;
		if (rate_answer(r) == 0)
			after_rate_checks(r);
		r->in_handler = 0;
		if (r->queued)
			conn_received(r);
		if (r->queued || !*upload_size)
			return MHD_YES;
	}
	if (!r) {
		r = req_new(srv, conn, url, method);
		*con_cls = r;
		r->in_handler = 1;
		early_checks(r, method, url);
		r->in_handler = 0;
		if (r->queued)
			conn_received(r);
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->raw_answered) {
			/* Give the client a moment to read the 413 before the
			 * close, whose unread bytes would reset it. */
			r->dropped += *upload_size;
			*upload_size = 0;
			return r->dropped > 1024 * 1024 ? MHD_NO : MHD_YES;
		}
		if (!r->queued && !r->too_large &&
		    buf_append(&r->body, upload, *upload_size) < 0) {
			/* Past --max-body (a chunked body says its size only
			 * at its end): answer now, not after the last byte;
			 * MHD sends nothing before it, so the 413 is ours to
			 * write. */
			char msg[96];
			r->too_large = 1;
			snprintf(msg, sizeof(msg), "request body larger than %zu bytes",
				 srv->o->max_body);
			raw_reply_error(r, "413 Content Too Large",
					ERR_PAYLOAD_TOO_LARGE, msg);
			conn_received(r);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	conn_received(r);
	if (r->raw_answered)
		return MHD_NO;   /* answered: close */
	r->in_handler = 1;
	if (r->pending) {
		mhd.queue_response(conn, (unsigned)r->pending_status, r->pending);
		mhd.destroy_response(r->pending);
		r->pending = NULL;
		r->queued = 1;
	} else if (!r->queued && !r->chat && !r->batch && !r->waiting &&
		   !r->embed && !r->search && !r->jobcall && !r->xjob && !r->kv &&
		   !r->client_gone) {
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

/* Cancels upstream work; no callback of it runs afterwards. */
void stop_work(struct req *r)
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
	if (r->jobcall) {
		jobq_call_cancel(r->jobcall);
		r->jobcall = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	if (r->xjob) {
		xjob_cancel(r);
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	if (r->kv) {
		shared_call_cancel(r->kv);
		r->kv = NULL;
		snprintf(r->err_code, sizeof(r->err_code), "cancelled");
	}
	models_unwait(r);
	unqueue(r);
	release_upstream(r);
}

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

/* ,"name":"s" in the JSON log line, s as valid UTF-8 (a client's bytes
 * may not be: malformed ones become U+FFFD). */
static void log_string(struct buf *b, const char *name, const char *s)
{
	size_t n = strlen(s);

	buf_printf(b, ",\"%s\":", name);
	if (trust_utf8_invalid(s, n) < 0) {
		json_quote(b, s, n);
	} else {
		struct buf t;
		buf_init(&t, 0);
		trust_utf8(&t, s, n);
		json_quote(b, t.ptr, t.len);
		buf_release(&t);
	}
}

/* ,"name":d in the JSON log line. */
static void log_number(struct buf *b, const char *name, double d)
{
	buf_printf(b, ",\"%s\":", name);
	json_number(b, d);
}

static void log_request(struct req *r, enum MHD_RequestTerminationCode why)
{
	int64_t ms = loop_now_ms() - r->started;
	char when[40];
	struct buf b;

	iso_time(when, sizeof(when));
	if (r->model[0] && !r->provider[0]) {
		/* Cancelled before its result: the provider from the model
		 * the call was started with ("openai:gpt-4o-mini"). */
		const char *colon = strchr(r->model, ':');
		snprintf(r->provider, sizeof(r->provider), "%.*s",
			 colon ? (int)(colon - r->model) : 0, r->model);
	}
	buf_init(&b, 0);
	if (r->srv->o->log_text) {
		/* What the client chose is escaped (trust.h): a path with
		 * %0a or %1b can neither forge a line nor reach a terminal. */
		buf_printf(&b, "%s %s ", when, r->id);
		trust_escape(&b, r->method, strlen(r->method));
		buf_putc(&b, ' ');
		trust_escape(&b, r->path, strlen(r->path));
		buf_printf(&b, " %d %lldms", r->status, (long long)ms);
		if (r->model[0]) {
			buf_appends(&b, " model=");
			trust_escape(&b, r->model, strlen(r->model));
		}
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
		/* Written out, not built as a tree: the line cJSON would
		 * print, members in this order. */
		buf_appends(&b, "{\"time\":");
		json_quote(&b, when, strlen(when));
		log_string(&b, "request_id", r->id);
		log_string(&b, "method", r->method);
		log_string(&b, "path", r->path);
		log_number(&b, "status", r->status);
		log_number(&b, "duration_ms", (double)ms);
		if (r->ttft_ms >= 0)
			log_number(&b, "ttft_ms", (double)r->ttft_ms);
		if (r->model[0]) {
			log_string(&b, "model", r->model);
			log_string(&b, "provider", r->provider);
		}
		if (r->have_usage) {
			log_number(&b, "prompt_tokens", (double)r->prompt_tokens);
			log_number(&b, "completion_tokens", (double)r->completion_tokens);
		}
		log_string(&b, "client", r->client);
		if (r->err_code[0])
			log_string(&b, "error", r->err_code);
		if (why == MHD_REQUEST_TERMINATED_CLIENT_ABORT || r->client_gone)
			buf_appends(&b, ",\"client_disconnected\":true");
		buf_putc(&b, '}');
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
		loop_park_fd(srv->loop, r->watch_fd);  /* for the next request */
	if (r->keepalive)
		loop_del_timer(srv->loop, r->keepalive);
	if (r->st) {
		metrics_streams_add(srv->metrics, -1);
		/* Gone before its end (stream_end() not reached): the client
		 * left, and its upstream call was cancelled (stop_work()). */
		if (!r->st->complete)
			metrics_stream_cancelled(srv->metrics, route);
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
	free(r->cache_val);
	buf_release(&r->answer);
	cJSON_Delete(r->rag_sources);
	buf_release(&r->body);
	conn_request_ended(r);
	if (r->prev)
		r->prev->next = r->next;
	else
		srv->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r);
	srv->active--;
	__atomic_sub_fetch(&srv->hub->active, 1, __ATOMIC_SEQ_CST);
	if (srv->draining && srv->active == 0)
		worker_idle(srv);
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
			push_error(r, ERR_OVERLOADED, "server shutting down");
			stream_end(r);
		} else if ((r->chat || r->batch || r->embed || r->waiting || r->jobcall ||
			    r->xjob) &&
			   !r->queued && !r->pending) {
			stop_work(r);
			reply_error_status(r, 503, ERR_OVERLOADED,
					   "server shutting down");
		}
	}
	/* Give MHD a moment to flush those, then stop regardless. */
	srv->drain_timer = loop_add_timer(srv->loop, 2000, hard_stop, srv);
}

/* Stops accepting, and srv's loop once nothing is in flight; what is
 * still there after --drain-timeout is ended then. */
void server_drain(struct server *srv);
void server_drain(struct server *srv)
{
	srv->draining = 1;
	/* Stop accepting: close the listening sockets, keep the others. */
	for (size_t i = 0; i < srv->nls; i++) {
		int lfd = srv->ls[i].d ? mhd.quiesce_daemon(srv->ls[i].d) : -1;
		if (lfd >= 0)
			close(lfd);
	}
	unix_unlink(srv);
	if (srv->active == 0) {
		worker_idle(srv);
		return;
	}
	srv->drain_timer = loop_add_timer(srv->loop, srv->o->drain_ms, on_drain_timeout, srv);
}

static void on_signal(struct loop *l, int fd, int events, void *data)
{
	struct server *srv = data;
	struct signalfd_siginfo si;
	size_t active;

	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (srv->draining) {
		workers_drain(srv, 1);
		loop_stop(l);   /* a second signal: stop now */
		return;
	}
	active = __atomic_load_n(&srv->hub->active, __ATOMIC_SEQ_CST);
	fprintf(stderr, "aichat: %s: draining %zu request%s (up to %.0f s)\n",
		si.ssi_signo == SIGINT ? "interrupt" : "terminate", active,
		active == 1 ? "" : "s", srv->o->drain_ms / 1000.0);
	workers_drain(srv, 0);
	server_drain(srv);
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

/* Starts one daemon on srv's loop: on the address sa, or on the
 * listening fd lfd (taken, whatever happens) when lfd >= 0; sa NULL: the
 * unix socket.  With several workers the connection limits are counted
 * by the server (accept_policy()), not by each daemon. */
static int start_listener(struct server *srv, const struct sockaddr *sa,
			  int lfd, struct err *e)
{
	const struct server_opts *o = srv->o;
	struct listener *ls = &srv->ls[srv->nls];
	/* No MHD_USE_ERROR_LOG: stderr carries one line per request, and a
	 * client that leaves mid-stream is already in its line. */
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *di;
	int shared = srv->hub->n > 1;

	if (sa && sa->sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	ls->srv = srv;
	ls->is_unix = !sa;
	ls->d = mhd.start_daemon(flags, 0, shared ? accept_policy : NULL,
		shared ? srv : NULL, on_access, srv,
		lfd < 0 ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_LISTEN_SOCKET,
		lfd < 0 ? (intptr_t)sa : (intptr_t)lfd,
		MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, o->client_timeout_s,
		/* Room past the limits early_checks() enforces, so that
		 * their answers are ours (JSON, X-Request-ID), not MHD's. */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		shared ? 0u : o->max_connections_per_ip,
		MHD_OPTION_END);
	if (!ls->d) {
		if (sa)
			return err_set(e, ERR_IO, "cannot listen on %s:%d: %s", o->host,
				       o->port, strerror(errno ? errno : EADDRINUSE));
		close(lfd);
		return err_set(e, ERR_IO, "cannot serve on '%.200s'", o->unix_path);
	}
	srv->nls++;
	di = mhd.get_daemon_info(ls->d, MHD_DAEMON_INFO_EPOLL_FD);
	loop_add_fd(srv->loop, di->epoll_fd, LOOP_READ, on_mhd_ready, ls);
	return 0;
}

/* What the workers share, made once before them: metrics, the
 * in-process limiter and cache, the database (for budgets' start). */
struct shared_state {
	struct metrics *metrics;
	struct limiter *lim;
	struct acache *cache;
	sqlite3 *db;
};

/* Sets up worker srv (srv->o, cfg, hub and worker set): its loop,
 * engine, mailbox, Redis connection, writer, searcher, and on worker 0
 * the jobs service.  -1 with e when the loop cannot start. */
static int worker_init(struct server *srv, const struct shared_state *sh,
		       struct err *e)
{
	const struct server_opts *o = srv->o;
	struct err dbe;
	struct llm_opts lo;

	srv->loop = loop_new();
	srv->eng = srv->loop ? engine_new(srv->loop) : NULL;
	if (!srv->eng)
		return err_set(e, ERR_INTERNAL, "cannot start the event loop");
	mailbox_init(srv);
	srv->metrics = sh->metrics;
	srv->lim = sh->lim;
	srv->cache = sh->cache;
	srv->db = sh->db;
	if (o->redis_url) {
		struct redis_target t;
		if (redis_url_parse(o->redis_url, &t, e) < 0)
			return -1;
		srv->redis = redis_new(srv->loop, &t, o->redis_timeout_ms);
		redis_set_script(srv->redis, shared_script());
		if (o->rate_per_second > 0)
			srv->lim = limiter_redis_new(srv->redis, o->redis_prefix,
						     o->rate_per_second, o->rate_burst,
						     (enum redis_fail)o->redis_fail);
		if (o->cache_size && o->cache_ttl_ms > 0)
			srv->cache = acache_redis_new(srv->redis, o->redis_prefix,
						      o->cache_ttl_ms);
	}
	llm_opts_default(&lo);
	lo.retries = o->retries;
	upstream_gate_init(srv);
	if (srv->redis && srv->worker == 0) {
		/* Jobs in Redis: every replica sees and runs them; here,
		 * worker 0 does, as it runs the SQLite jobs without Redis. */
		struct rjobs *rq = rjobs_new(srv->eng, srv->cfg, srv->redis, o->redis_prefix,
					     &lo, &srv->gate,
					     o->max_upstream > 0 ? o->max_upstream : 20);
		rjobs_set_spend(rq, spend_job_item, srv);
		rjobs_start(rq);
		srv->jq = jobq_redis_new(rq);
	}
	if (!srv->db)
		return 0;
	err_clear(&dbe);
	if (!(srv->writer = writer_new(srv->loop, o->max_queue ? (size_t)o->max_queue : 1,
				       &dbe))) {
		if (srv->worker == 0)
			fprintf(stderr, "aichat: serve: background jobs off: %s\n", dbe.msg);
		return 0;
	}
	if (srv->worker == 0 && !srv->redis && store_read_only_why(srv->db)) {
		/* A database shipped read-only (RAG collections): searches
		 * work, jobs could not be kept. */
		fprintf(stderr, "aichat: serve: background jobs off: the database is read-only (%s); --redis keeps them in Redis\n",
			store_read_only_why(srv->db));
	} else if (srv->worker == 0 && !srv->redis) {
		struct jobs *j = jobs_new(srv->eng, srv->cfg, srv->writer, 2, &lo, &srv->gate);
		jobs_set_spend(j, spend_job_item, srv);
		jobs_resume(j);
		srv->jq = jobq_local_new(j);
	}
	if (!(srv->searcher = searcher_new(srv->loop, &dbe)) && srv->worker == 0)
		fprintf(stderr, "aichat: serve: document search off: %s\n", dbe.msg);
	return 0;
}

/* After srv's loop has ended: the requests still open end, its daemons
 * stop. */
static void worker_stop(struct server *srv)
{
	/* Requests still open are ended by MHD_stop_daemon (on_completed),
	 * which aborts the process if any is still suspended (a second
	 * signal while streams wait for their model): their work stops, and
	 * they are resumed and run once first. */
	for (struct req *r = srv->reqs; r; r = r->next) {
		stop_work(r);
		if (r->st)
			r->st->finished = 1;
		if (r->suspended) {
			r->suspended = 0;
			mhd.resume_connection(r->conn);
		}
	}
	for (size_t i = 0; i < srv->nls; i++)
		mhd.run(srv->ls[i].d);
	for (size_t i = 0; i < srv->nls; i++) {
		mhd.stop_daemon(srv->ls[i].d);
		srv->ls[i].d = NULL;
	}
}

/* Frees what worker_init() made, the jobs last but one: they stop, the
 * writer writes what is queued, then the jobs (which those writes point
 * to) go. */
static void worker_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nls; i++)
		if (srv->ls[i].d)
			mhd.stop_daemon(srv->ls[i].d);
	unix_unlink(srv);
	if (!srv->loop)
		return;
	if (srv->drain_timer)
		loop_del_timer(srv->loop, srv->drain_timer);
	if (srv->mhd_timer)
		loop_del_timer(srv->loop, srv->mhd_timer);
	if (srv->conn_timer)
		loop_del_timer(srv->loop, srv->conn_timer);
	jobq_stop(srv->jq);
	writer_free(srv->writer);
	free(srv->bwait);
	models_stop(srv);
	searcher_free(srv->searcher);
	engine_free(srv->eng);
	if (srv->redis) {
		limiter_free(srv->lim);
		acache_free(srv->cache);
		redis_free(srv->redis);
	}
	/* Last: the Redis replies redis_free() fails may still be its. */
	jobq_free(srv->jq);
}

int server_run(const struct server_opts *o, const struct config *cfg,
	       struct err *e)
{
	unsigned n = o->workers > 0 ? (unsigned)o->workers : 1, started = 0;
	struct server *ws = NULL;
	struct hub hub;
	struct shared_state sh = { 0 };
	pthread_t *threads = NULL;
	struct sockaddr_in sin = { 0 };
	struct sockaddr_in6 sin6 = { 0 };
	struct sockaddr *sa = NULL;
	const union MHD_DaemonInfo *di;
	const char *host = !strcmp(o->host, "localhost") ? "127.0.0.1" : o->host;
	sigset_t mask, old;
	int rc = -1, port = 0, ufd = -1, masked = 0;

	/* A prompt of 128 KiB or more gets pages of its own, given back when
	 * it is freed: without this, glibc raises the threshold after the
	 * first such block is freed, and the bursts of big uploads leave
	 * their memory to the process for good. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (o->tcp && !is_loopback(host) && !o->nkeys && !o->insecure_no_auth)
		return err_set(e, ERR_USAGE,
			       "refusing to listen on %s without an API key: set --api-key or AICHAT_API_KEYS, or pass --insecure-no-auth",
			       host);
	if (!o->tcp) {
		/* --unix alone */
	} else if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&sin;
	} else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)o->port);
		sa = (struct sockaddr *)&sin6;
	} else {
		return err_set(e, ERR_USAGE,
			       "invalid value '%.64s' for '--host': must be an IPv4 or IPv6 address",
			       o->host);
	}
	if (mhd_load(e) < 0)
		return -1;
	if (!sa)
		n = 1;   /* the unix socket alone is one worker's */
	hub_init(&hub, n);
	ws = xcalloc(n, sizeof(*ws));
	for (unsigned i = 0; i < n; i++) {
		ws[i].o = o;
		ws[i].cfg = cfg;
		ws[i].sigfd = -1;
		ws[i].hub = &hub;
		ws[i].worker = i;
		hub.w[i] = &ws[i];
	}
	/* The unix socket is worker 0's alone. */
	if (o->unix_path && (ufd = unix_listen(&ws[0], o->unix_path, e)) < 0)
		goto cleanup;
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	/* Blocked in every thread: worker 0 reads them (signalfd). */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	masked = 1;
	sh.metrics = metrics_new();
	if (!o->redis_url) {
		if (o->rate_per_second > 0)
			sh.lim = limiter_local_new(o->rate_per_second, o->rate_burst,
						   100000);
		if (o->cache_size)
			sh.cache = acache_local_new(o->cache_size, o->cache_ttl_ms);
	}
	{
		struct err dbe;
		if (store_open(NULL, &sh.db, &dbe) < 0) {
			sh.db = NULL;
			fprintf(stderr, "aichat: serve: background jobs off: %s\n", dbe.msg);
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (worker_init(&ws[i], &sh, e) < 0)
			goto cleanup;
	if (budget_init(&ws[0], e) < 0)
		goto cleanup;
	for (unsigned i = 1; i < n; i++)
		ws[i].spend = ws[0].spend;
	if (sa && n == 1) {
		if (start_listener(&ws[0], sa, -1, e) < 0)
			goto cleanup;
		di = mhd.get_daemon_info(ws[0].ls[0].d, MHD_DAEMON_INFO_BIND_PORT);
		port = di ? di->port : o->port;
	} else if (sa) {
		/* One SO_REUSEPORT socket per worker: the kernel spreads the
		 * connections over them, and no loop wakes for another's. */
		for (unsigned i = 0; i < n; i++) {
			int fd = reuseport_listen(sa, port);
			if (fd < 0) {
				err_set(e, ERR_IO, "cannot listen on %s:%d: %s", o->host,
					o->port, strerror(errno));
				goto cleanup;
			}
			if (start_listener(&ws[i], sa, fd, e) < 0)
				goto cleanup;
			if (i == 0) {
				di = mhd.get_daemon_info(ws[0].ls[0].d,
							 MHD_DAEMON_INFO_BIND_PORT);
				port = di ? di->port : o->port;
			}
		}
	}
	if (ufd >= 0) {
		int fd = ufd;
		ufd = -1;
		if (start_listener(&ws[0], NULL, fd, e) < 0)
			goto cleanup;
	}
	for (unsigned i = 0; i < n; i++)
		rearm_mhd_timer(&ws[i]);

	ws[0].sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	loop_add_fd(ws[0].loop, ws[0].sigfd, LOOP_READ, on_signal, &ws[0]);

	if (sa)
		fprintf(stderr, "aichat: listening on http://%s%s%s:%d\n",
			sa->sa_family == AF_INET6 ? "[" : "", host,
			sa->sa_family == AF_INET6 ? "]" : "", port);
	if (ws[0].unix_path)
		fprintf(stderr, "aichat: listening on unix:%s\n", ws[0].unix_path);
	fflush(stderr);
	threads = xcalloc(n, sizeof(*threads));
	for (started = 1; started < n; started++)
		if (pthread_create(&threads[started], NULL, worker_main, &ws[started])) {
			/* Fewer loops than asked: those that run serve all;
			 * the others' sockets close. */
			hub.running -= n - started;
			for (unsigned i = started; i < n; i++) {
				for (size_t k = 0; k < ws[i].nls; k++) {
					mhd.stop_daemon(ws[i].ls[k].d);
					ws[i].ls[k].d = NULL;
				}
				ws[i].nls = 0;
			}
			break;
		}
	loop_run(ws[0].loop);
	/* A second signal, or worker 0's drain time is up: the others stop
	 * too (after a clean drain they have already). */
	workers_drain(&ws[0], 1);
	for (unsigned i = 1; i < started; i++)
		pthread_join(threads[i], NULL);
	fprintf(stderr, "aichat: stopped\n");
	rc = 0;
	for (unsigned i = 0; i < n; i++)
		worker_stop(&ws[i]);
	loop_del_fd(ws[0].loop, ws[0].sigfd);
	close(ws[0].sigfd);
cleanup:
	if (ufd >= 0)
		close(ufd);
	for (unsigned i = 0; i < n; i++)
		worker_free(&ws[i]);
	/* Messages still in a mailbox (a jobs answer for a worker that has
	 * stopped) only free what they carry. */
	for (unsigned i = 0; i < n; i++)
		if (ws[i].loop)
			mailbox_release(&ws[i]);
	store_close(sh.db);
	rag_vectors_release();
	metrics_free(sh.metrics);
	limiter_free(sh.lim);
	acache_free(sh.cache);
	free(ws[0].spend);
	for (unsigned i = 0; i < n; i++)
		loop_free(ws[i].loop);
	free(ws);
	free(threads);
	hub_release(&hub);
	/* SIGINT and SIGTERM stay blocked once they have been: one that
	 * comes while the server cleans up (a second signal) would otherwise
	 * kill the process on the way out of a clean drain. */
	if (masked && rc < 0)
		sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
