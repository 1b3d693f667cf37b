/*
 * http.c - serve's HTTP plumbing: libmicrohttpd on the engine's loop,
 * responses in the route's shape, suspend and resume, and SSE streams.
 *
 * MHD runs in "external polling" mode: its epoll fd is one fd of the loop,
 * MHD_run() is called on readiness and, through a 0 ms timer, after every
 * resume, and MHD_get_timeout() feeds one loop timer.  A response is queued
 * directly only inside on_access (r->in_handler); anywhere else it waits in
 * r->pending and the connection is resumed, for on_access to queue it.
 * While a connection is suspended MHD does not watch its socket, so the
 * loop does: a client that hangs up has its work stopped at once.
 */
#include "aichat/dynlib.h"
#include "aichat/json.h"
#include "aichat/metrics.h"
#include "aichat/xalloc.h"
#include "aichat/trust.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* libmicrohttpd's functions, resolved when serve starts (dynlib.h). */
struct mhd_api mhd;

#ifndef AICHAT_MHD_SONAME
#define AICHAT_MHD_SONAME "libmicrohttpd.so.12"
#endif

int mhd_load(struct err *e)
{
	static int loaded;
	static const struct dynlib_sym syms[] = {
		{ "MHD_add_response_header", (void **)&mhd.add_response_header },
		{ "MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer },
		{ "MHD_create_response_from_callback", (void **)&mhd.create_response_from_callback },
		{ "MHD_destroy_response", (void **)&mhd.destroy_response },
		{ "MHD_get_connection_info", (void **)&mhd.get_connection_info },
		{ "MHD_get_connection_values", (void **)&mhd.get_connection_values },
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

/* ==== libmicrohttpd on the loop ==== */

static void mhd_run(struct server *srv);

static void on_mhd_timer(struct loop *l, void *data)
{
	struct server *srv = data;

	(void)l;
	srv->mhd_timer = NULL;
	srv->mhd_timer_soon = 0;
	mhd_run(srv);
}

void rearm_mhd_timer(struct server *srv)
{
	MHD_UNSIGNED_LONG_LONG ms = (MHD_UNSIGNED_LONG_LONG)-1, t;

	if (srv->mhd_timer) {
		loop_del_timer(srv->loop, srv->mhd_timer);
		srv->mhd_timer = NULL;
	}
	srv->mhd_timer_soon = 0;
	for (size_t i = 0; i < srv->nls; i++) {
		struct listener *ls = &srv->ls[i];
		const union MHD_DaemonInfo *di;
		unsigned conns;

		if (!ls->d)
			continue;
		/* At --max-connections (or the fd limit) MHD takes its
		 * listening socket out of its epoll set, and puts it back only
		 * at the start of a run: once connections have closed, run it
		 * again now, even when it has no timeout to give (all
		 * connections timed out together). */
		di = mhd.get_daemon_info(ls->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		conns = di ? di->num_connections : 0;
		if (conns < ls->conns)
			ms = 0;
		else if (mhd.get_timeout(ls->d, &t) == MHD_YES && t < ms)
			ms = t;
		ls->conns = conns;
	}
	if (ms != (MHD_UNSIGNED_LONG_LONG)-1)
		srv->mhd_timer = loop_add_timer(srv->loop,
						ms > 60000 ? 60000 : (int64_t)ms,
						on_mhd_timer, srv);
}

static void mhd_run(struct server *srv)
{
	for (size_t i = 0; i < srv->nls; i++)
		if (srv->ls[i].d)
			mhd.run(srv->ls[i].d);
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

void on_mhd_ready(struct loop *l, int fd, int events, void *data)
{
	struct listener *ls = data;

	(void)l;
	(void)fd;
	(void)events;
	/* MHD accepts at most 10 connections a run (in epoll mode): under a
	 * burst of new clients that alone held 5,000 concurrent streams to
	 * about 2,000 (bench/RESULTS.md).  So run again while the kernel's
	 * accept queue still holds some and the last run took one, a bounded
	 * number of times. */
	for (int k = 0; k < 64 && ls->d; k++) {
		const union MHD_DaemonInfo *di;
		unsigned before, after;
		struct pollfd p;

		di = mhd.get_daemon_info(ls->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		before = di ? di->num_connections : 0;
		mhd.run(ls->d);
		di = mhd.get_daemon_info(ls->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		after = di ? di->num_connections : 0;
		if (after <= before)
			break;
		di = mhd.get_daemon_info(ls->d, MHD_DAEMON_INFO_LISTEN_FD);
		if (!di || di->listen_fd < 0)
			break;
		p.fd = di->listen_fd;
		p.events = POLLIN;
		if (poll(&p, 1, 0) != 1)
			break;
	}
	rearm_mhd_timer(ls->srv);
}

/* ==== the unix socket (--unix) ==== */

int unix_listen(struct server *srv, const char *path, struct err *e)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd = -1, probe;

	if (!*path || strlen(path) >= sizeof(sun.sun_path))
		return err_set(e, ERR_USAGE,
			       "invalid value '%.64s' for '--unix': must be a path of 1..%zu bytes",
			       path, sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, ERR_USAGE,
				       "refusing to listen on '%.200s': it exists and is not a socket",
				       path);
		/* A socket file: in use if someone answers, else left
		 * behind by a server that died, and replaced. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 &&
		    connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			return err_set(e, ERR_USAGE,
				       "refusing to listen on '%.200s': another server is listening on it",
				       path);
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) < 0 && errno != ENOENT)
			return err_set(e, ERR_IO, "cannot remove the stale socket '%.200s': %s",
				       path, strerror(errno));
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot create a unix socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		err_set(e, ERR_IO, "cannot listen on '%.200s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* Bound but not yet listening, nobody can connect: narrow the mode
	 * before listen() (umask is the process's, shared with threads). */
	if (chmod(path, 0600) < 0 || stat(path, &st) < 0 ||
	    listen(fd, 4096) < 0) {
		err_set(e, ERR_IO, "cannot listen on '%.200s': %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	srv->unix_path = xstrdup(path);
	srv->unix_dev = st.st_dev;
	srv->unix_ino = st.st_ino;
	return fd;
}

void unix_unlink(struct server *srv)
{
	struct stat st;

	if (!srv->unix_path)
		return;
	/* Another server may have replaced a file we no longer serve. */
	if (lstat(srv->unix_path, &st) == 0 && st.st_dev == srv->unix_dev &&
	    st.st_ino == srv->unix_ino)
		unlink(srv->unix_path);
	free(srv->unix_path);
	srv->unix_path = NULL;
}

/* ==== connections: --request-timeout, and clients that hung up ==== */

#define CONN_SWEEP_MS 250

static void on_conn_sweep(struct loop *l, void *data);
static void client_hung_up(struct req *r);

/* Has the peer of fd closed its side (with or without bytes unread)? */
static int half_closed(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLRDHUP };

	return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void conn_sweep_soon(struct server *srv)
{
	if (!srv->conn_timer)
		srv->conn_timer = loop_add_timer(srv->loop, CONN_SWEEP_MS,
						 on_conn_sweep, srv);
}

static void recv_unlink(struct conn *c)
{
	struct server *srv = c->srv;

	if (!c->receiving)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->recv_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		srv->recv_tail = c->prev;
	c->prev = c->next = NULL;
	c->receiving = 0;
}

/* Appends c (now receiving) to the list; the list is oldest first
 * because since is always now. */
static void recv_append(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->receiving || c->ended)
		return;
	c->since = loop_now_ms();
	c->rdhup = 0;
	c->prev = srv->recv_tail;
	c->next = NULL;
	if (srv->recv_tail)
		srv->recv_tail->next = c;
	else
		srv->recv_head = c;
	srv->recv_tail = c;
	c->receiving = 1;
	if (!srv->conn_timer)
		srv->conn_timer = loop_add_timer(srv->loop, CONN_SWEEP_MS,
						 on_conn_sweep, srv);
}

void raw_reply(struct server *srv, int fd, const char *status,
	       const char *id, const char *json)
{
	struct buf b;
	const char *origin = srv->o->cors_origin;

	buf_init(&b, 0);
	buf_printf(&b, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
		   "Content-Length: %zu\r\nX-Request-ID: %s\r\n", status,
		   strlen(json), id);
	if (origin)
		buf_printf(&b, "Access-Control-Allow-Origin: %s\r\n"
			   "Access-Control-Expose-Headers: X-Request-ID\r\n", origin);
	buf_printf(&b, "Connection: close\r\n\r\n%s", json);
	/* A client already gone has nothing to be told: no error. */
	if (send(fd, b.ptr, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		(void)0;
	buf_release(&b);
}

void raw_reply_error(struct req *r, const char *status, enum err_code code,
		     const char *msg)
{
	const union MHD_ConnectionInfo *ci =
		mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	cJSON *obj = route_error_object(r, code, msg, NULL);
	char *text = json_print(obj);

	if (ci) {
		raw_reply(r->srv, ci->connect_fd, status, r->id, text);
		/* The answer, then our FIN; what the client still sends is
		 * read and dropped until MHD is told to close. */
		shutdown(ci->connect_fd, SHUT_WR);
	}
	r->status = atoi(status);
	r->raw_answered = 1;
	snprintf(r->err_code, sizeof(r->err_code), "%s", err_code_name(code));
	cJSON_Delete(obj);
	free(text);
}

/* Ends c: with a 408 of ours when timed_out (MHD is sending nothing on a
 * receiving connection, so the bytes are ours to write), then a shutdown
 * that MHD sees as the client closing. */
static void conn_cut(struct conn *c, int timed_out)
{
	struct server *srv = c->srv;

	recv_unlink(c);
	c->ended = 1;
	if (timed_out) {
		char id[72], body[200];

		if (c->r)
			snprintf(id, sizeof(id), "%s", c->r->id);
		else
			new_request_id(srv, id, sizeof(id));
		snprintf(body, sizeof(body),
			 "{\"error\":{\"code\":\"request_timeout\",\"message\":\"request not received within %.0f s (--request-timeout)\"}}",
			 srv->o->request_timeout_ms / 1000.0);
		raw_reply(srv, c->fd, "408 Request Timeout", id, body);
		if (c->r) {
			c->r->status = 408;
			snprintf(c->r->err_code, sizeof(c->r->err_code), "request_timeout");
		}
	}
	shutdown(c->fd, SHUT_RDWR);
	mhd_run_soon(srv);
}

/* Every CONN_SWEEP_MS while connections are receiving: cuts those past
 * --request-timeout, and those whose client has closed its side (seen on
 * two sweeps in a row, so that MHD has had its chance at a request that
 * came whole with its FIN). */
static void on_conn_sweep(struct loop *l, void *data)
{
	struct server *srv = data;
	int64_t now = loop_now_ms();
	struct conn *c, *next, *batch[256];
	struct pollfd pf[256];
	size_t n;

	srv->conn_timer = NULL;
	while ((c = srv->recv_head) && c->since + srv->o->request_timeout_ms <= now)
		conn_cut(c, 1);
	for (c = srv->recv_head; c;) {
		for (n = 0; c && n < 256; c = c->next, n++) {
			batch[n] = c;
			pf[n].fd = c->fd;
			pf[n].events = POLLRDHUP;
			pf[n].revents = 0;
		}
		if (poll(pf, n, 0) < 0)
			break;
		next = c;
		for (size_t i = 0; i < n; i++) {
			if (!(pf[i].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
				batch[i]->rdhup = 0;
			} else if (batch[i]->rdhup) {
				if (batch[i] == next)
					next = next->next;
				conn_cut(batch[i], 0);
			} else {
				batch[i]->rdhup = 1;
			}
		}
		c = next;
	}
	/* Requests at work whose client sent more than its request: the
	 * loop cannot watch for a hang-up behind those bytes, so look. */
	int watching = 0;
	for (struct req *r = srv->reqs, *rn; r; r = rn) {
		const union MHD_ConnectionInfo *ci;

		rn = r->next;
		if (!r->watch_given_up || r->client_gone)
			continue;
		ci = mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && half_closed(ci->connect_fd))
			client_hung_up(r);
		else
			watching = 1;
	}
	if (srv->recv_head || watching)
		srv->conn_timer = loop_add_timer(l, CONN_SWEEP_MS, on_conn_sweep, srv);
}

void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
		   enum MHD_ConnectionNotificationCode toe)
{
	struct server *srv = cls;
	struct conn *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = xcalloc(1, sizeof(*c));
		c->srv = srv;
		c->c = mc;
		ci = mhd.get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		*socket_context = c;
		if (c->fd >= 0)
			recv_append(c);
		metrics_worker_connection(srv->metrics, srv->worker);
		return;
	}
	conn_closed(srv, mc);
	if (!c)
		return;
	/* Closed next by MHD: a watch parked on it goes first (loop.h). */
	if (c->fd >= 0)
		loop_del_fd(srv->loop, c->fd);
	recv_unlink(c);
	if (c->r)
		c->r->cs = NULL;
	free(c);
	*socket_context = NULL;
}

void conn_received(struct req *r)
{
	if (r->cs)
		recv_unlink(r->cs);
}

void conn_request_ended(struct req *r)
{
	struct conn *c = r->cs;

	if (!c)
		return;
	c->r = NULL;
	r->cs = NULL;
	recv_append(c);
}

/* ==== small helpers ==== */

const char *header(struct req *r, const char *name)
{
	return mhd.lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* X-Request-ID: the client's, if it is sane, else a new one. */
void request_id(struct req *r)
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
	if (!o)
		new_request_id(r->srv, r->id, sizeof(r->id));
}

void new_request_id(struct server *srv, char *dst, size_t cap)
{
	unsigned long long rnd = ((unsigned long long)rand() << 31) ^ (unsigned long long)rand();

	snprintf(dst, cap, "req_%llx%06llx", (unsigned long long)time(NULL),
		 (++srv->seq ^ rnd) & 0xffffff);
}

/* The item after the last comma of an X-Forwarded-For, spaces trimmed,
 * as inet_ntop writes it, into dst; 0 when it is an address, else -1. */
static int last_forwarded(const char *xff, char *dst, size_t cap)
{
	const char *p = strrchr(xff, ',');
	char item[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n;

	p = p ? p + 1 : xff;
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (!n || n >= sizeof(item) || p[n + strspn(p + n, " \t")])
		return -1;
	memcpy(item, p, n);
	item[n] = '\0';
	if (inet_pton(AF_INET, item, bin) == 1)
		return inet_ntop(AF_INET, bin, dst, (socklen_t)cap) ? 0 : -1;
	if (inet_pton(AF_INET6, item, bin) == 1)
		return inet_ntop(AF_INET6, bin, dst, (socklen_t)cap) ? 0 : -1;
	return -1;
}

/* A request from a proxy of --trust-proxy: the client is the address the
 * proxy added last to X-Forwarded-For (the items before it are whatever
 * the client sent, and prove nothing).  Without one that parses, the
 * client stays the proxy. */
static void forwarded_address(struct req *r)
{
	const struct server_opts *o = r->srv->o;
	const char *xff;
	char addr[INET6_ADDRSTRLEN];
	size_t i;

	for (i = 0; i < o->ntrusted_proxies; i++)
		if (!strcmp(r->client, o->trusted_proxies[i]))
			break;
	if (i == o->ntrusted_proxies || !(xff = header(r, "X-Forwarded-For")))
		return;
	if (last_forwarded(xff, addr, sizeof(addr)) == 0)
		snprintf(r->client, sizeof(r->client), "%s", addr);
}

void client_address(struct req *r)
{
	const union MHD_ConnectionInfo *ci =
		mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(r->client, sizeof(r->client), "unknown");
	if (r->via_unix || (sa && sa->sa_family == AF_UNIX))
		snprintf(r->client, sizeof(r->client), "unix");
	else if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  r->client, sizeof(r->client));
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
			  r->client, sizeof(r->client));
	forwarded_address(r);
}

/* ==== responses ==== */

static void add_common_headers(struct req *r, struct MHD_Response *resp)
{
	const char *origin = r->srv->o->cors_origin;

	mhd.add_response_header(resp, "X-Request-ID", r->id);
	budget_headers(r, resp);
	if (origin) {
		mhd.add_response_header(resp, "Access-Control-Allow-Origin", origin);
		mhd.add_response_header(resp, "Access-Control-Expose-Headers",
					"X-Request-ID, X-Cache, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Budget-Limit, X-Budget-Remaining");
		if (strcmp(origin, "*"))
			mhd.add_response_header(resp, "Vary", "Origin");
	}
}

/* Queues resp now (inside on_access) or after the resume. */
void send_response(struct req *r, int status, struct MHD_Response *resp)
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

struct MHD_Response *make_response(const char *type, const char *body,
				   size_t len)
{
	struct MHD_Response *resp = mhd.create_response_from_buffer(
		len, (void *)body, MHD_RESPMEM_MUST_COPY);

	mhd.add_response_header(resp, "Content-Type", type);
	return resp;
}

void reply(struct req *r, int status, const char *type, const char *body,
	   size_t len)
{
	send_response(r, status, make_response(type, body, len));
}

void reply_json(struct req *r, int status, cJSON *obj)
{
	char *text = json_print(obj);

	reply(r, status, "application/json", text, strlen(text));
	free(text);
	cJSON_Delete(obj);
}

cJSON *error_object(const char *code, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(o, "error");

	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddItemToObject(e, "message", trust_json_string(msg));
	return o;
}

/* The OpenAI error object, for the /v1 routes. */
cJSON *openai_error_object(enum err_code code, const char *msg,
			   const char *param)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *e = cJSON_AddObjectToObject(o, "error");
	const char *type;

	switch (code) {
	case ERR_INVALID_REQUEST: case ERR_USAGE: case ERR_PAYLOAD_TOO_LARGE:
	case ERR_NOT_FOUND: case ERR_METHOD_NOT_ALLOWED: case ERR_FORBIDDEN:
	case ERR_UNSUPPORTED_MEDIA: case ERR_HEADERS_TOO_LARGE:
	case ERR_URI_TOO_LONG:
		type = "invalid_request_error"; break;
	case ERR_UNAUTHORIZED: type = "authentication_error"; break;
	case ERR_RATE_LIMITED: case ERR_QUOTA: type = "rate_limit_error"; break;
	default: type = "api_error"; break;
	}
	cJSON_AddItemToObject(e, "message", trust_json_string(msg));
	cJSON_AddStringToObject(e, "type", type);
	if (param)
		cJSON_AddStringToObject(e, "param", param);
	else
		cJSON_AddNullToObject(e, "param");
	cJSON_AddStringToObject(e, "code", err_code_name(code));
	return o;
}

int is_openai_route(const struct req *r)
{
	return r->route && (r->route->response == RESP_OPENAI_CHAT ||
			    r->route->response == RESP_OPENAI_MODELS ||
			    r->route->response == RESP_OPENAI_EMBEDDINGS);
}

int is_anthropic_route(const struct req *r)
{
	return r->route && r->route->response == RESP_ANTHROPIC;
}

cJSON *anthropic_error_object(enum err_code code, const char *msg)
{
	cJSON *o = cJSON_CreateObject(), *e;
	const char *type;

	switch (code) {
	case ERR_INVALID_REQUEST: case ERR_USAGE: case ERR_PAYLOAD_TOO_LARGE:
	case ERR_METHOD_NOT_ALLOWED: case ERR_UNSUPPORTED_MEDIA:
	case ERR_HEADERS_TOO_LARGE: case ERR_URI_TOO_LONG:
		type = code == ERR_PAYLOAD_TOO_LARGE ? "request_too_large" :
		       "invalid_request_error";
		break;
	case ERR_FORBIDDEN: type = "permission_error"; break;
	case ERR_NOT_FOUND: type = "not_found_error"; break;
	case ERR_UNAUTHORIZED: type = "authentication_error"; break;
	case ERR_RATE_LIMITED: case ERR_QUOTA: type = "rate_limit_error"; break;
	case ERR_OVERLOADED: type = "overloaded_error"; break;
	case ERR_UPSTREAM_TIMEOUT: type = "timeout_error"; break;
	default: type = "api_error"; break;
	}
	cJSON_AddStringToObject(o, "type", "error");
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddItemToObject(e, "message", trust_json_string(msg));
	return o;
}

cJSON *route_error_object(const struct req *r, enum err_code code,
			  const char *msg, const char *param)
{
	if (is_openai_route(r))
		return openai_error_object(code, msg, param);
	if (is_anthropic_route(r))
		return anthropic_error_object(code, msg);
	return error_object(err_code_name(code), msg);
}

void push_error(struct req *r, enum err_code code, const char *msg)
{
	if (r->kind == STREAM_OPENAI)
		push_data(r, NULL, openai_error_object(code, msg, NULL));
	else if (r->kind == STREAM_ANTHROPIC)
		push_data(r, "error", anthropic_error_object(code, msg));
	else
		push_data(r, "error", error_object(err_code_name(code), msg));
}

/*
 * An error answer in the route's shape (OpenAI's on /v1, aichat's
 * elsewhere), not yet sent, so that the caller may add headers.
 */
struct MHD_Response *error_response(struct req *r, enum err_code code,
				    const char *msg)
{
	cJSON *obj = route_error_object(r, code, msg, NULL);
	char *text = json_print(obj);
	struct MHD_Response *resp = make_response("application/json", text,
						  strlen(text));

	cJSON_Delete(obj);
	free(text);
	snprintf(r->err_code, sizeof(r->err_code), "%s", err_code_name(code));
	return resp;
}

void reply_error_status(struct req *r, int status, enum err_code code,
			const char *msg)
{
	send_response(r, status, error_response(r, code, msg));
}

void reply_error(struct req *r, const struct err *e)
{
	reply_error_status(r, err_http_status(e->code), e->code, e->msg);
}

/* A dotted path as OpenAI names a param: messages.0.content ->
 * messages[0].content. */
void openai_param(const char *loc, char *dst, size_t cap)
{
	size_t o = 0;

	for (const char *p = loc; *p && o + 2 < cap;) {
		size_t n = strcspn(p, ".");
		int index = n > 0 && strspn(p, "0123456789") == n;

		if (index && o + n + 3 < cap) {
			dst[o++] = '[';
			memcpy(dst + o, p, n);
			o += n;
			dst[o++] = ']';
		} else {
			if (p != loc && o + 1 < cap)
				dst[o++] = '.';
			if (n > cap - o - 1)
				n = cap - o - 1;
			memcpy(dst + o, p, n);
			o += n;
		}
		p += n + (p[n] == '.');
	}
	dst[o] = '\0';
}

/* 422 with every failing field, in the FastAPI/Pydantic shape; the
 * OpenAI and Anthropic routes answer 400 with their error object instead. */
void reply_validation(struct req *r, const struct verrors *ve)
{
	metrics_validation_failure(r->srv->metrics, r->route->path);
	snprintf(r->err_code, sizeof(r->err_code), "invalid_request");
	if (is_openai_route(r) || is_anthropic_route(r)) {
		char msg[400], param[200];
		openai_param(ve->v[0].loc, param, sizeof(param));
		snprintf(msg, sizeof(msg), "invalid value for '%s': %s",
			 is_anthropic_route(r) ? ve->v[0].loc : param, ve->v[0].msg);
		reply_json(r, 400, route_error_object(r, ERR_INVALID_REQUEST, msg,
						      param));
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
static void client_hung_up(struct req *r);

void req_suspend(struct req *r)
{
	const union MHD_ConnectionInfo *ci;

	if (r->suspended)
		return;
	mhd.suspend_connection(r->conn);
	r->suspended = 1;
	/* MHD does not watch a suspended socket, so the loop does, from the
	 * first suspend to the end of the request: adding and removing it
	 * at every token would cost two epoll_ctl calls a token.  For a
	 * hang-up only (a pipelined request does not wake it), so between
	 * two requests of a connection it stays parked in the epoll set
	 * (on_completed) and the next request's watch costs no syscall;
	 * on_connection() takes it out before MHD closes the socket. */
	if (r->watch_fd < 0 && !r->watch_given_up) {
		ci = mhd.get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && loop_add_fd(r->srv->loop, ci->connect_fd, LOOP_HUP,
				      on_client_fd, r) == 0)
			r->watch_fd = ci->connect_fd;
	}
}

void req_resume(struct req *r)
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

/* The client's socket says its peer shut down (or failed): it hung up,
 * unless bytes of a pipelined request wait and its side is still open
 * (leave them to MHD, and stop watching). */
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
	if (n > 0 && !half_closed(fd)) {
		/* Pipelined bytes, MHD's to read: the sweep looks for a
		 * hang-up behind them from now on. */
		r->watch_given_up = 1;
		conn_sweep_soon(r->srv);
		return;
	}
	client_hung_up(r);
}

static void client_hung_up(struct req *r)
{
	/* A client that closes once its answer is given whole (curl after
	 * one request) has not left anything. */
	if (r->status && (!r->st || r->st->complete))
		return;
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

void stream_unref(struct stream *st)
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
	if (stream_backlog(st)) {
		n = stream_backlog(st) < max ? stream_backlog(st) : max;
		memcpy(buf, st->out.ptr + st->sent, n);
		st->sent += n;
		/* Moved down only once half is sent: a slow client's backlog
		 * is not moved at every block. */
		if (st->sent == st->out.len) {
			buf_clear(&st->out);
			st->sent = 0;
		} else if (st->sent >= 64 * 1024 && st->sent * 2 >= st->out.len) {
			buf_consume(&st->out, st->sent);
			st->sent = 0;
		}
		if (st->req)
			stream_drained(st->req);
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

void stream_push(struct req *r, const char *s, size_t n)
{
	if (!r->st || r->st->finished)
		return;
	buf_append(&r->st->out, s, n);
	req_resume(r);
}

void stream_end(struct req *r)
{
	if (!r->st)
		return;
	r->st->finished = 1;
	r->st->complete = 1;
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

void start_stream(struct req *r, enum stream_kind kind)
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

void push_data(struct req *r, const char *event, cJSON *obj)
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
