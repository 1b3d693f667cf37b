/*
 * streams.c - a load client for streamed (SSE) chat completions.
 *
 *     streams --port P --conns C [--host H] [--path PATH] [--body JSON]
 *             [--expect-tokens N] [--ramp-ms R] [--deadline S]
 *             [--watch-pid PID[,PID...]] [--label NAME]
 *
 * Opens C connections (spread evenly over R ms, default all at once),
 * sends one POST with BODY on each, and reads the answer on one epoll
 * loop: HTTP status, chunked framing (or Content-Length, or to EOF), and
 * in the body the SSE "data:" lines.  A data line holding "content" is a
 * content event; "[DONE]" ends the stream.  With a PATH ending in
 * /messages the stream is Anthropic's: a text_delta is a content event and
 * message_stop ends it.  Each connection is closed after its one stream.
 *
 * Per stream it records the time from connect() to the first content
 * event (TTFT) and to [DONE] (stream time).  A stream is complete when
 * the status is 200, [DONE] came, no data line held an "error", and (with
 * --expect-tokens) exactly N content events came.
 *
 * With --watch-pid it also reads that process's /proc files: CPU time
 * (utime+stime) at start and end, and every 50 ms VmRSS and Threads.
 * --watch-pid takes a comma-separated list too (nginx's master and
 * workers): CPU, RSS, VmHWM and threads are then sums over them.
 *
 * Bounded: it gives up after --deadline seconds (default 120) and
 * reports what it has.  Prints one line of key=value pairs to stdout.
 * Exit status 0 when every stream completed, 1 otherwise, 2 on usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { S_IDLE, S_CONNECTING, S_SENDING, S_HEADERS, S_BODY, S_DONE };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum fail {
	F_NONE, F_CONNECT, F_RESET, F_EOF, F_HTTP, F_NODONE, F_ERROR_EVENT,
	F_SHORT, F_TIMEOUT, F_NFAIL
};
static const char *const fail_names[F_NFAIL] = {
	"ok", "connect_error", "reset", "early_eof", "http_status", "no_done",
	"error_event", "short_stream", "timeout",
};

struct stream {
	int fd;
	enum state st;
	enum fail fail;
	size_t sent;
	int64_t t0, t_first, t_end;  /* µs */
	int64_t t_status;            /* the status line came */
	int retry_after;             /* the answer had a Retry-After */
	int status;
	int chunked;
	long long clen;              /* -1: read to EOF */
	enum chunk_state cs;
	long long chunk_left;
	int size_done;               /* the size line's digits are over */
	char hdr[4096];
	size_t hlen;
	char line[512];              /* current SSE line (prefix kept) */
	size_t llen;
	int content_events;
	int done_seen;
	int error_seen;
};

static struct stream *ss;
static int nconns;
static const char *req;
static size_t reqlen;
static int expect_tokens = -1;
static int anthropic;            /* --path ends in /messages */
static int epfd;
static int open_now;             /* streams not yet finished */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ==== watching the server process ==== */

static int watch_pid;            /* the first of watch_pids, or 0 */
static int watch_pids[64], nwatch;
static long long rss_max_kib, rss_start_kib, hwm_kib, threads_max;
static long long cpu_ticks_start, cpu_ticks_end;
static int samples;

/* utime+stime in clock ticks, or -1. */
static long long proc_cpu_ticks(int pid)
{
	char path[64], buf[2048];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the ")" that closes comm: state is field 3, utime 14,
	 * stime 15. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p += 2;
	unsigned long long ut = 0, st = 0;
	for (int field = 3; field <= 15 && *p; field++) {
		if (field == 14)
			ut = strtoull(p, NULL, 10);
		if (field == 15)
			st = strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	return (long long)(ut + st);
}

/* Summed over every watched process; -1 when one cannot be read. */
static long long watched_cpu_ticks(void)
{
	long long sum = 0;

	for (int i = 0; i < nwatch; i++) {
		long long t = proc_cpu_ticks(watch_pids[i]);
		if (t < 0)
			return -1;
		sum += t;
	}
	return sum;
}

static void proc_sample(void)
{
	char path[64], line[256];
	long long rss = 0, hwm = 0, threads = 0;
	FILE *f;

	for (int i = 0; i < nwatch; i++) {
		snprintf(path, sizeof(path), "/proc/%d/status", watch_pids[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			long long v;
			if (sscanf(line, "VmRSS: %lld", &v) == 1)
				rss += v;
			else if (sscanf(line, "VmHWM: %lld", &v) == 1)
				hwm += v;
			else if (sscanf(line, "Threads: %lld", &v) == 1)
				threads += v;
		}
		fclose(f);
	}
	if (!samples)
		rss_start_kib = rss;
	if (rss > rss_max_kib)
		rss_max_kib = rss;
	hwm_kib = hwm;
	if (threads > threads_max)
		threads_max = threads;
	samples++;
}

/* ==== one stream ==== */

static void finish(struct stream *s, enum fail why)
{
	if (s->st == S_DONE)
		return;
	if (why == F_NONE) {
		if (s->status != 200)
			why = F_HTTP;
		else if (s->error_seen)
			why = F_ERROR_EVENT;
		else if (!s->done_seen)
			why = F_NODONE;
		else if (expect_tokens >= 0 && s->content_events != expect_tokens)
			why = F_SHORT;
	}
	s->fail = why;
	if (!s->t_end)
		s->t_end = now_us();
	if (s->fd >= 0) {
		epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
		s->fd = -1;
	}
	s->st = S_DONE;
	open_now--;
}

static void sse_line(struct stream *s)
{
	const char *l = s->line;
	size_t n = s->llen;

	if (n < 5 || memcmp(l, "data:", 5))
		return;
	if (anthropic ? memmem(l, n, "\"message_stop\"", 14) != NULL :
	    memmem(l, n, "[DONE]", 6) != NULL) {
		s->done_seen = 1;
		s->t_end = now_us();
		return;
	}
	if (memmem(l, n, "\"error\"", 7))
		s->error_seen = 1;
	/* A token; not the opening chunk that only names the role, whose
	 * content is empty. */
	if (anthropic ? memmem(l, n, "\"text_delta\"", 12) != NULL :
	    memmem(l, n, "\"content\"", 9) && !memmem(l, n, "\"content\":\"\"", 12)) {
		if (!s->content_events)
			s->t_first = now_us();
		s->content_events++;
	}
}

/* Body bytes after de-chunking: split into lines. */
static void sse_feed(struct stream *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\n') {
			if (s->llen && s->line[s->llen - 1] == '\r')
				s->llen--;
			sse_line(s);
			s->llen = 0;
		} else if (s->llen < sizeof(s->line)) {
			s->line[s->llen++] = c;
		}
	}
}

/* Body bytes as they came off the socket; 1 when the body is complete. */
static int body_feed(struct stream *s, const char *p, size_t n)
{
	if (!s->chunked) {
		if (s->clen >= 0 && (long long)n > s->clen)
			n = (size_t)s->clen;
		sse_feed(s, p, n);
		if (s->clen >= 0) {
			s->clen -= (long long)n;
			return s->clen == 0;
		}
		return 0;
	}
	while (n) {
		switch (s->cs) {
		case CH_SIZE: {
			/* Hex digits, maybe ";extensions", then CRLF. */
			char c = *p++;
			int d = c >= '0' && c <= '9' ? c - '0' :
				c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			n--;
			if (c == '\n') {
				s->cs = s->chunk_left ? CH_DATA : CH_TRAILER;
				s->size_done = 0;
				s->llen = 0;
			} else if (!s->size_done && d >= 0) {
				s->chunk_left = s->chunk_left * 16 + d;
			} else {
				s->size_done = 1;
			}
			break;
		}
		case CH_DATA: {
			size_t k = (long long)n < s->chunk_left ? n : (size_t)s->chunk_left;
			sse_feed(s, p, k);
			p += k;
			n -= k;
			s->chunk_left -= (long long)k;
			if (!s->chunk_left)
				s->cs = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			if (*p == '\n') {
				s->cs = CH_SIZE;
				s->chunk_left = 0;
			}
			p++;
			n--;
			break;
		case CH_TRAILER:
			/* Lines until an empty one. */
			if (*p == '\n') {
				if (s->llen == 0)
					return 1;
				s->llen = 0;
			} else if (*p != '\r') {
				s->llen++;
			}
			p++;
			n--;
			break;
		}
	}
	return 0;
}

static int parse_headers(struct stream *s, size_t hend)
{
	char *h = s->hdr;

	if (hend < 12 || strncmp(h, "HTTP/1.", 7))
		return -1;
	s->status = atoi(h + 9);
	s->t_status = now_us();
	s->clen = -1;
	for (char *p = strstr(h, "\r\n"); p && p < h + hend; p = strstr(p + 2, "\r\n")) {
		char *l = p + 2;
		if (!strncasecmp(l, "Transfer-Encoding:", 18) && strstr(l, "chunked") &&
		    strstr(l, "chunked") < strstr(l, "\r\n"))
			s->chunked = 1;
		else if (!strncasecmp(l, "Content-Length:", 15))
			s->clen = atoll(l + 15);
		else if (!strncasecmp(l, "Retry-After:", 12))
			s->retry_after = 1;
	}
	if (s->chunked)
		s->clen = -1;
	return 0;
}

static void on_readable(struct stream *s)
{
	char buf[16384];

	for (;;) {
		ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			finish(s, F_RESET);
			return;
		}
		if (r == 0) {
			if (s->st == S_BODY && !s->chunked && s->clen < 0)
				finish(s, F_NONE);       /* body to EOF: done */
			else if (s->st == S_BODY && s->done_seen)
				finish(s, F_NONE);
			else
				finish(s, F_EOF);
			return;
		}
		const char *p = buf;
		size_t n = (size_t)r;
		if (s->st == S_HEADERS || s->st == S_SENDING) {
			size_t take = n < sizeof(s->hdr) - 1 - s->hlen ?
				      n : sizeof(s->hdr) - 1 - s->hlen;
			memcpy(s->hdr + s->hlen, p, take);
			s->hlen += take;
			s->hdr[s->hlen] = '\0';
			char *e = strstr(s->hdr, "\r\n\r\n");
			if (!e) {
				if (s->hlen >= sizeof(s->hdr) - 1) {
					finish(s, F_HTTP);
					return;
				}
				continue;
			}
			size_t hend = (size_t)(e - s->hdr) + 4;
			size_t before = s->hlen - take;   /* header bytes from earlier reads */
			if (parse_headers(s, hend) < 0) {
				finish(s, F_HTTP);
				return;
			}
			s->st = S_BODY;
			p += hend - before;
			n -= hend - before;
			if (!s->chunked && s->clen == 0) {
				finish(s, F_NONE);
				return;
			}
		}
		if (body_feed(s, p, n)) {
			finish(s, F_NONE);
			return;
		}
	}
}

static void on_writable(struct stream *s)
{
	if (s->st == S_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			finish(s, F_CONNECT);
			return;
		}
		s->st = S_SENDING;
	}
	while (s->sent < reqlen) {
		ssize_t w = send(s->fd, req + s->sent, reqlen - s->sent, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			finish(s, F_RESET);
			return;
		}
		s->sent += (size_t)w;
	}
	s->st = S_HEADERS;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(s - ss) };
	epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static char connect_err[64];

static void start(struct stream *s, const struct sockaddr_in *sin)
{
	s->t0 = now_us();
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	open_now++;
	if (s->fd < 0) {
		snprintf(connect_err, sizeof(connect_err), "socket: %s", strerror(errno));
		finish(s, F_CONNECT);
		return;
	}
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0 &&
	    errno != EINPROGRESS) {
		snprintf(connect_err, sizeof(connect_err), "connect: %s", strerror(errno));
		finish(s, F_CONNECT);
		return;
	}
	s->st = S_CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN,
				  .data.u32 = (uint32_t)(s - ss) };
	epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

/* ==== report ==== */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array, in ms. */
static double pct_ms(const int64_t *v, int n, double p)
{
	if (n <= 0)
		return -1;
	int i = (int)(p / 100.0 * n + 0.999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return v[i] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: streams --port P --conns C [--host H] [--path PATH] [--body JSON]\n"
		"               [--expect-tokens N] [--ramp-ms R] [--deadline S]\n"
		"               [--watch-pid PID[,PID...]] [--label NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = "/v1/chat/completions";
	const char *label = "run";
	const char *body = "{\"model\":\"openai:bench\",\"messages\":[{\"role\":\"user\","
			   "\"content\":\"hi\"}],\"stream\":true}";
	int port = 0, ramp_ms = 0;
	double deadline_s = 120;
	struct rlimit rl;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *a = argv[i], *v = argv[++i];
		if (!strcmp(a, "--host")) host = v;
		else if (!strcmp(a, "--port")) port = atoi(v);
		else if (!strcmp(a, "--path")) path = v;
		else if (!strcmp(a, "--body")) body = v;
		else if (!strcmp(a, "--conns")) nconns = atoi(v);
		else if (!strcmp(a, "--expect-tokens")) expect_tokens = atoi(v);
		else if (!strcmp(a, "--ramp-ms")) ramp_ms = atoi(v);
		else if (!strcmp(a, "--deadline")) deadline_s = atof(v);
		else if (!strcmp(a, "--watch-pid")) {
			for (const char *p = v; *p && nwatch < 64; ) {
				int pid = atoi(p);
				if (pid > 0)
					watch_pids[nwatch++] = pid;
				p += strcspn(p, ",");
				p += *p == ',';
			}
			watch_pid = nwatch ? watch_pids[0] : 0;
		}
		else if (!strcmp(a, "--label")) label = v;
		else usage();
	}
	anthropic = strlen(path) >= 9 && !strcmp(path + strlen(path) - 9, "/messages");
	if (port <= 0 || nconns <= 0 || nconns > 1000000 || deadline_s <= 0 || ramp_ms < 0)
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if ((long long)rl.rlim_cur < (long long)nconns + 16)
			fprintf(stderr, "streams: warning: fd limit %llu < %d connections\n",
				(unsigned long long)rl.rlim_cur, nconns);
	}

	char *r = NULL;
	int rn = asprintf(&r, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
			  "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
			  "Content-Length: %zu\r\n\r\n%s", path, host, port, strlen(body), body);
	if (rn < 0)
		return 1;
	req = r;
	reqlen = (size_t)rn;

	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "streams: --host must be an IPv4 address\n");
		return 2;
	}
	ss = calloc((size_t)nconns, sizeof(*ss));
	for (int i = 0; i < nconns; i++)
		ss[i].fd = -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);

	if (watch_pid) {
		cpu_ticks_start = watched_cpu_ticks();
		proc_sample();
	}
	int64_t t_start = now_us(), deadline = t_start + (int64_t)(deadline_s * 1e6);
	int64_t next_sample = t_start + 50000;
	int started = 0, timed_out = 0;
	struct epoll_event evs[512];

	while (started < nconns || open_now > 0) {
		int64_t now = now_us();
		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		/* Start the connections that are due by now. */
		while (started < nconns &&
		       (ramp_ms == 0 ||
			now - t_start >= (int64_t)ramp_ms * 1000 * started / nconns)) {
			start(&ss[started++], &sin);
			if (ramp_ms && (started & 63) == 0)
				now = now_us();
		}
		int64_t wake = deadline;
		if (started < nconns) {
			int64_t due = t_start + (int64_t)ramp_ms * 1000 * started / nconns;
			if (due < wake)
				wake = due;
		}
		if (watch_pid && next_sample < wake)
			wake = next_sample;
		int timeout = wake > now ? (int)((wake - now + 999) / 1000) : 0;
		int n = epoll_wait(epfd, evs, 512, timeout);
		for (int i = 0; i < n; i++) {
			struct stream *s = &ss[evs[i].data.u32];
			if (s->st == S_DONE)
				continue;
			if ((evs[i].events & (EPOLLERR | EPOLLHUP)) && s->st == S_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				snprintf(connect_err, sizeof(connect_err), "connect: %s",
					 strerror(err));
				finish(s, F_CONNECT);
				continue;
			}
			if (evs[i].events & EPOLLOUT)
				on_writable(s);
			if (s->st != S_DONE && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
				on_readable(s);
		}
		if (watch_pid && now_us() >= next_sample) {
			proc_sample();
			next_sample += 50000;
		}
	}
	int64_t wall = now_us() - t_start;
	if (watch_pid) {
		proc_sample();
		cpu_ticks_end = watched_cpu_ticks();
	}

	/* Whatever is still open timed out. */
	int with_headers = 0, with_tokens = 0, never_started = nconns - started;
	for (int i = 0; i < nconns; i++) {
		struct stream *s = &ss[i];
		if (s->st == S_DONE)
			continue;
		if (s->st == S_BODY)
			with_headers++;
		if (s->content_events)
			with_tokens++;
		if (s->st != S_IDLE)
			finish(s, F_TIMEOUT);
		else
			s->fail = F_TIMEOUT;
	}

	size_t cap = (size_t)nconns & 0xfffff;
	int64_t *ttft = calloc(cap, sizeof(*ttft));
	int64_t *dur = calloc(cap, sizeof(*dur));
	int64_t *rej = calloc(cap, sizeof(*rej));
	int nt = 0, nd = 0, nr = 0, rej_no_ra = 0;
	int fails[F_NFAIL] = { 0 }, statuses[6] = { 0 };
	long long tokens = 0;
	for (int i = 0; i < nconns; i++) {
		struct stream *s = &ss[i];
		fails[s->fail]++;
		tokens += s->content_events;
		if (s->status >= 100 && s->status < 600)
			statuses[s->status / 100]++;
		/* Refused for load: how fast, and whether told when to retry. */
		if (s->status == 429 || s->status == 503) {
			rej[nr++] = s->t_status - s->t0;
			if (!s->retry_after)
				rej_no_ra++;
		}
		if (s->fail != F_NONE)
			continue;
		if (s->t_first)
			ttft[nt++] = s->t_first - s->t0;
		dur[nd++] = s->t_end - s->t0;
	}
	qsort(ttft, (size_t)nt, sizeof(*ttft), cmp_i64);
	qsort(dur, (size_t)nd, sizeof(*dur), cmp_i64);
	qsort(rej, (size_t)nr, sizeof(*rej), cmp_i64);

	printf("label=%s conns=%d completed=%d failed=%d tokens=%lld wall_ms=%.0f "
	       "ttft_p50_ms=%.1f ttft_p99_ms=%.1f ttft_max_ms=%.1f "
	       "stream_p50_ms=%.1f stream_p99_ms=%.1f stream_max_ms=%.1f",
	       label, nconns, fails[F_NONE], nconns - fails[F_NONE], tokens,
	       wall / 1000.0, pct_ms(ttft, nt, 50), pct_ms(ttft, nt, 99),
	       pct_ms(ttft, nt, 100), pct_ms(dur, nd, 50), pct_ms(dur, nd, 99),
	       pct_ms(dur, nd, 100));
	for (int f = 1; f < F_NFAIL; f++)
		if (fails[f])
			printf(" %s=%d", fail_names[f], fails[f]);
	for (int c = 3; c < 6; c++)
		if (statuses[c])
			printf(" status_%dxx=%d", c, statuses[c]);
	if (nr)
		printf(" refused=%d refused_p50_ms=%.3f refused_p99_ms=%.3f "
		       "refused_max_ms=%.3f refused_without_retry_after=%d", nr,
		       pct_ms(rej, nr, 50), pct_ms(rej, nr, 99), pct_ms(rej, nr, 100),
		       rej_no_ra);
	if (timed_out)
		printf(" timed_out_with_headers=%d timed_out_with_tokens=%d never_started=%d",
		       with_headers, with_tokens, never_started);
	if (watch_pid) {
		long hz = sysconf(_SC_CLK_TCK);
		double cpu_us = cpu_ticks_start >= 0 && cpu_ticks_end >= 0 ?
			(double)(cpu_ticks_end - cpu_ticks_start) * 1e6 / (double)hz : -1;
		printf(" cpu_us=%.0f rss_start_kib=%lld rss_max_kib=%lld hwm_kib=%lld "
		       "threads_max=%lld samples=%d", cpu_us, rss_start_kib, rss_max_kib,
		       hwm_kib, threads_max, samples);
	}
	if (connect_err[0])
		printf(" last_connect_error=\"%s\"", connect_err);
	printf("\n");
	fflush(stdout);
	free(ttft);
	free(dur);
	free(rej);
	free(r);
	return fails[F_NONE] == nconns ? 0 : 1;
}
