/*
 * upstream.c - a fast mock OpenAI-compatible (and Anthropic) upstream for
 * bench/serve.sh and bench/relay_ir.sh.
 *
 *     upstream [--port-file F] [--port P] [--tokens N] [--interval-ms T]
 *              [--max-seconds S]
 *
 * One thread, one epoll loop, HTTP/1.1 keep-alive.  POST .../chat/completions
 * answers a fixed small chat.completion at once, or, with "stream":true,
 * N chunks of content "tok " one every T ms (chunked transfer encoding),
 * then a finish chunk, a usage chunk if stream_options.include_usage,
 * and "data: [DONE]".  POST .../messages does the same in Anthropic's
 * dialect: a fixed message, or message_start, content_block_start, N
 * text_delta events, content_block_stop, message_delta (stop_reason,
 * usage) and message_stop.  GET /stats answers, as text, the streams in flight
 * now, the most in flight at once, how many streams started and over how
 * many ms (first to last start), all since the previous GET /stats, which
 * resets them.  Anything else is 404.  The request body is not parsed
 * beyond finding those two flags.
 *
 * Timers: every stream waits the same T between ticks, so a plain FIFO
 * is already ordered by due time; the loop sleeps until its head is due.
 * No thread or timerfd per connection: a stream costs one struct and its
 * buffers (a few KiB).  The process exits by itself after --max-seconds (default
 * 900), on SIGTERM or SIGINT, and prints its counters to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	char *in;                    /* request bytes not yet handled */
	size_t inlen, incap;
	char *out;                   /* response bytes not yet written */
	size_t outlen, outcap;
	int want_out;                /* EPOLLOUT is armed */
	int streaming;               /* a stream is in progress */
	int left;                    /* content chunks still to send */
	int usage;                   /* include_usage was asked for */
	int anthropic;               /* the stream speaks Anthropic */
	int close_after;             /* "Connection: close" was asked for */
	int64_t due;                 /* next tick, ms */
	struct conn *tnext, *tprev;  /* in the timer FIFO while streaming */
};

static struct conn **conns;      /* by fd */
static int nconns_max;
static struct conn *thead, *ttail;
static int ntokens = 50, interval_ms = 20;
static volatile sig_atomic_t stop;
static unsigned long long n_req, n_stream, n_stream_done, n_conn, n_chunks,
	n_dropped;
/* For GET /stats: streams in flight, and since the last GET /stats the
 * most in flight at once, streams started, first and last start (ms). */
static long long in_flight, w_peak, w_started;
static int64_t w_first_ms, w_last_ms;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "upstream: out of memory\n");
		exit(1);
	}
	return p;
}

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

/* ==== timer FIFO ==== */

static void timer_add(struct conn *c, int64_t due)
{
	c->due = due;
	c->tnext = NULL;
	c->tprev = ttail;
	if (ttail)
		ttail->tnext = c;
	else
		thead = c;
	ttail = c;
}

static void timer_del(struct conn *c)
{
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else if (thead == c)
		thead = c->tnext;
	else
		return;              /* not in the FIFO */
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		ttail = c->tprev;
	c->tnext = c->tprev = NULL;
}

/* ==== connections ==== */

static void conn_close(int epfd, struct conn *c)
{
	if (c->streaming) {
		timer_del(c);
		n_dropped++;
		in_flight--;
	}
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conns[c->fd] = NULL;
	free(c->in);
	free(c->out);
	free(c);
}

static void out_append(struct conn *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

/* One HTTP chunk holding s. */
static void out_chunk(struct conn *c, const char *s, size_t n)
{
	char hdr[16];
	int h = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);

	out_append(c, hdr, (size_t)h);
	out_append(c, s, n);
	out_append(c, "\r\n", 2);
}

/* Writes what it can; -1 when the connection is dead. */
static int conn_flush(int epfd, struct conn *c)
{
	while (c->outlen) {
		ssize_t w = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			break;
		}
		memmove(c->out, c->out + w, c->outlen - (size_t)w);
		c->outlen -= (size_t)w;
	}
	int want = c->outlen > 0;
	if (want != c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
					  .data.fd = c->fd };
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want;
	}
	return 0;
}

/* Where needle occurs in [p, p+n), or NULL. */
static const char *find(const char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle));
}

/* "key" : true somewhere in the body (whitespace allowed around ':'). */
static int json_flag(const char *body, size_t n, const char *key)
{
	const char *p = body, *end = body + n;

	while ((p = find(p, (size_t)(end - p), key))) {
		const char *q = p + strlen(key);
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
			q++;
		if (q < end && *q == ':') {
			q++;
			while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
				q++;
			return end - q >= 4 && !memcmp(q, "true", 4);
		}
		p = q;
	}
	return 0;
}

static const char completion[] =
	"{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
	"\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	"\"content\":\"Hello from the bench upstream.\"},\"finish_reason\":\"stop\"}],"
	"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11}}";

static const char chunk_tok[] =
	"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
	"\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"
	"\"delta\":{\"content\":\"tok \"},\"finish_reason\":null}]}\n\n";

static const char chunk_finish[] =
	"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
	"\"created\":1700000000,\"model\":\"bench\",\"choices\":[{\"index\":0,"
	"\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";

static const char message[] =
	"{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\","
	"\"model\":\"bench\",\"content\":[{\"type\":\"text\",\"text\":"
	"\"Hello from the bench upstream.\"}],\"stop_reason\":\"end_turn\","
	"\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}";

static const char a_start[] =
	"event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
	"{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\","
	"\"model\":\"bench\",\"content\":[],\"stop_reason\":null,"
	"\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,"
	"\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
	"\"output_tokens\":1}}}\n\n"
	"event: content_block_start\ndata: {\"type\":\"content_block_start\","
	"\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";

static const char a_tok[] =
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
	"\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok \"}}\n\n";

static void simple_reply(struct conn *c, int status, const char *reason,
			 const char *type, const char *body)
{
	char hdr[256];
	size_t n = strlen(body);
	int h = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
			 status, reason, type, n,
			 c->close_after ? "Connection: close\r\n" : "");

	out_append(c, hdr, (size_t)h);
	out_append(c, body, n);
}

/* One whole request is in c->in[0..hlen+blen); answer it. */
static void handle(struct conn *c, const char *req, size_t hlen, size_t blen)
{
	const char *sp1 = memchr(req, ' ', hlen), *sp2;
	const char *body = req + hlen;

	n_req++;
	sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - req)) : NULL;
	if (!sp1 || !sp2) {
		c->close_after = 1;
		simple_reply(c, 400, "Bad Request", "text/plain", "bad request\n");
		return;
	}
	size_t plen = (size_t)(sp2 - sp1 - 1);
	const char *path = sp1 + 1, *q = memchr(path, '?', plen);
	if (q)
		plen = (size_t)(q - path);
	if ((size_t)(sp1 - req) == 3 && !memcmp(req, "GET", 3) &&
	    plen == 6 && !memcmp(path, "/stats", 6)) {
		char b[256];
		snprintf(b, sizeof(b), "in_flight=%lld peak=%lld started=%lld span_ms=%lld\n",
			 in_flight, w_peak, w_started,
			 w_started ? (long long)(w_last_ms - w_first_ms) : 0LL);
		w_peak = in_flight;
		w_started = 0;
		simple_reply(c, 200, "OK", "text/plain", b);
		return;
	}
	static const char suffix[] = "/chat/completions", asuffix[] = "/messages";
	int post = (size_t)(sp1 - req) == 4 && !memcmp(req, "POST", 4);
	c->anthropic = post && plen >= sizeof(asuffix) - 1 &&
		!memcmp(path + plen - (sizeof(asuffix) - 1), asuffix, sizeof(asuffix) - 1);
	if (!post || (!c->anthropic && (plen < sizeof(suffix) - 1 ||
	    memcmp(path + plen - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1)))) {
		simple_reply(c, 404, "Not Found", "application/json",
			     "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\"}}");
		return;
	}
	if (!json_flag(body, blen, "\"stream\"")) {
		simple_reply(c, 200, "OK", "application/json",
			     c->anthropic ? message : completion);
		return;
	}
	n_stream++;
	in_flight++;
	if (in_flight > w_peak)
		w_peak = in_flight;
	w_last_ms = now_ms();
	if (!w_started++)
		w_first_ms = w_last_ms;
	c->usage = json_flag(body, blen, "\"include_usage\"");
	c->streaming = 1;
	c->left = ntokens;
	static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
	out_append(c, hdr, sizeof(hdr) - 1);
	if (c->anthropic)
		out_chunk(c, a_start, sizeof(a_start) - 1);
	int64_t due = now_ms() + interval_ms;
	timer_add(c, ttail && ttail->due > due ? ttail->due : due);
}

/* Case-insensitive header value as a number, or -1. */
static long header_num(const char *h, size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = h; p && p < h + n; ) {
		const char *eol = memmem(p, (size_t)(h + n - p), "\r\n", 2);
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':')
			return strtol(p + nl + 1, NULL, 10);
		p = eol + 2;
	}
	return -1;
}

static int header_has(const char *h, size_t n, const char *name, const char *val)
{
	size_t nl = strlen(name);

	for (const char *p = h; p < h + n; ) {
		const char *eol = memmem(p, (size_t)(h + n - p), "\r\n", 2);
		if (!eol)
			break;
		if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			for (const char *v = p + nl + 1; v + strlen(val) <= eol; v++)
				if (!strncasecmp(v, val, strlen(val)))
					return 1;
		}
		p = eol + 2;
	}
	return 0;
}

/* Handles every whole request in c->in, unless a stream is running
 * (a pipelined request waits for the stream to end). */
static void process_input(struct conn *c)
{
	while (!c->streaming && !c->close_after) {
		const char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
		if (!end) {
			if (c->inlen > 65536)
				c->close_after = 1;
			return;
		}
		size_t hlen = (size_t)(end - c->in) + 4;
		long cl = header_num(c->in, hlen, "Content-Length");
		if (cl < 0)
			cl = 0;
		if (c->inlen < hlen + (size_t)cl)
			return;
		if (header_has(c->in, hlen, "Connection", "close"))
			c->close_after = 1;
		handle(c, c->in, hlen, (size_t)cl);
		memmove(c->in, c->in + hlen + cl, c->inlen - hlen - (size_t)cl);
		c->inlen -= hlen + (size_t)cl;
	}
}

static void on_readable(int epfd, struct conn *c)
{
	for (;;) {
		if (c->incap - c->inlen < 4096) {
			c->incap = c->incap ? c->incap * 2 : 8192;
			c->in = xrealloc(c->in, c->incap);
		}
		ssize_t r = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (r == 0) {
			conn_close(epfd, c);
			return;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_close(epfd, c);
			return;
		}
		c->inlen += (size_t)r;
		if (c->inlen > (1u << 22)) {
			conn_close(epfd, c);
			return;
		}
	}
	process_input(c);
	if (conn_flush(epfd, c) < 0 || (c->close_after && !c->outlen && !c->streaming))
		conn_close(epfd, c);
}

static void tick(int epfd, struct conn *c)
{
	timer_del(c);
	if (c->anthropic)
		out_chunk(c, a_tok, sizeof(a_tok) - 1);
	else
		out_chunk(c, chunk_tok, sizeof(chunk_tok) - 1);
	n_chunks++;
	if (--c->left > 0) {
		/* No drift from a late tick, and the FIFO stays sorted. */
		int64_t due = c->due + interval_ms;
		timer_add(c, ttail && ttail->due > due ? ttail->due : due);
	} else {
		char u[256];
		int n = snprintf(u, sizeof(u),
			"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
			"\"created\":1700000000,\"model\":\"bench\",\"choices\":[],"
			"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
			ntokens, ntokens + 5);
		if (c->anthropic) {
			n = snprintf(u, sizeof(u),
				"event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
				"\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\","
				"\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
				"\"usage\":{\"output_tokens\":%d}}\n\n", ntokens);
			out_chunk(c, u, (size_t)n);
			static const char stop[] =
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
			out_chunk(c, stop, sizeof(stop) - 1);
		} else {
			out_chunk(c, chunk_finish, sizeof(chunk_finish) - 1);
			if (c->usage)
				out_chunk(c, u, (size_t)n);
			out_chunk(c, "data: [DONE]\n\n", 14);
		}
		out_append(c, "0\r\n\r\n", 5);
		c->streaming = 0;
		n_stream_done++;
		in_flight--;
		process_input(c);    /* a pipelined request, if any */
	}
	if (conn_flush(epfd, c) < 0 ||
	    (c->close_after && !c->outlen && !c->streaming))
		conn_close(epfd, c);
}

static void accept_all(int epfd, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				fprintf(stderr, "upstream: accept: %s\n", strerror(errno));
			return;
		}
		if (fd >= nconns_max) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c)
			exit(1);
		c->fd = fd;
		conns[fd] = c;
		n_conn++;
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: upstream [--port-file F] [--port P] [--tokens N] "
		"[--interval-ms T] [--max-seconds S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	int port = 0, max_seconds = 900;
	struct rlimit rl;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port-file"))
			port_file = argv[++i];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tokens"))
			ntokens = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--interval-ms"))
			interval_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-seconds"))
			max_seconds = atoi(argv[++i]);
		else
			usage();
	}
	if (ntokens < 1 || interval_ms < 0 || max_seconds < 1)
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	nconns_max = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
	conns = calloc((size_t)nconns_max, sizeof(*conns));

	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((uint16_t)port) };
	socklen_t sl = sizeof(sin);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 65535) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0) {
		perror("upstream: listen");
		return 1;
	}
	port = ntohs(sin.sin_port);
	if (port_file) {
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
		    rename(tmp, port_file) < 0) {
			perror(port_file);
			return 1;
		}
	}
	fprintf(stderr, "upstream: listening on 127.0.0.1:%d, %d tokens every %d ms, fd limit %d\n",
		port, ntokens, interval_ms, nconns_max);

	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);

	int64_t deadline = now_ms() + (int64_t)max_seconds * 1000;
	struct epoll_event evs[256];
	while (!stop) {
		int64_t now = now_ms(), timeout = deadline - now;
		if (timeout <= 0) {
			fprintf(stderr, "upstream: --max-seconds reached\n");
			break;
		}
		if (thead && thead->due - now < timeout)
			timeout = thead->due > now ? thead->due - now : 0;
		int n = epoll_wait(epfd, evs, 256, (int)timeout);
		if (n < 0 && errno != EINTR) {
			perror("upstream: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				accept_all(epfd, lfd);
				continue;
			}
			struct conn *c = conns[fd];
			if (!c)
				continue;
			if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
				conn_close(epfd, c);
				continue;
			}
			if (evs[i].events & EPOLLOUT) {
				if (conn_flush(epfd, c) < 0) {
					conn_close(epfd, c);
					continue;
				}
				if (c->close_after && !c->outlen && !c->streaming) {
					conn_close(epfd, c);
					continue;
				}
			}
			if (evs[i].events & EPOLLIN)
				on_readable(epfd, c);
		}
		now = now_ms();
		while (thead && thead->due <= now)
			tick(epfd, thead);
	}
	fprintf(stderr, "upstream: connections=%llu requests=%llu streams=%llu "
		"streams_done=%llu streams_dropped=%llu chunks=%llu\n",
		n_conn, n_req, n_stream, n_stream_done, n_dropped, n_chunks);
	return 0;
}
