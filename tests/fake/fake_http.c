/*
 * fake_http.c - HTTP/1.1 framing for the fake upstream: reading requests
 * (Content-Length or chunked bodies, keep-alive, Expect: 100-continue) and
 * writing replies, on purpose badly when the spec asks for it (split into
 * tiny pieces, stalled, cut short).
 *
 * Requests are read into a per-connection buffer that keeps whatever the
 * client sent past the current request, so pipelined requests work.  Limits
 * are generous but finite: 1 MiB of head, 64 MiB of body.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake.h"

#define HEAD_MAX (1024 * 1024)
#define BODY_MAX (64L * 1024 * 1024)

/* ==== reading ==== */

/* Reads more bytes into in: the count, 0 at end of stream, -1 on error. */
static ssize_t fill(int fd, struct fbuf *in)
{
	char tmp[65536];
	ssize_t n;

	do
		n = recv(fd, tmp, sizeof(tmp), 0);
	while (n == -1 && errno == EINTR);
	if (n > 0)
		fbuf_append(in, tmp, (size_t)n);
	return n;
}

/* Makes in hold at least n bytes: 0, or -1 when the stream ends first. */
static int need(int fd, struct fbuf *in, size_t n)
{
	while (in->len < n)
		if (fill(fd, in) <= 0)
			return -1;
	return 0;
}

/* Position just past the next CRLF in in, reading more as needed; 0 at EOF. */
static size_t need_line(int fd, struct fbuf *in)
{
	char *eol;

	for (;;) {
		eol = in->ptr ? memmem(in->ptr, in->len, "\r\n", 2) : NULL;
		if (eol)
			return (size_t)(eol - in->ptr) + 2;
		if (in->len > HEAD_MAX || fill(fd, in) <= 0)
			return 0;
	}
}

static int send_all(int fd, const void *p, size_t n)
{
	const char *s = p;
	ssize_t w;

	while (n > 0) {
		w = send(fd, s, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Parses the head (request line and headers, NUL-terminated, CRLFs intact)
 * into rq.  Returns 0 or 400.  Repeated headers are joined with ", ".
 */
static int parse_head(char *head, struct request *rq)
{
	char *line, *next, *sp1, *sp2, *colon, *p, *value;
	cJSON *old;
	struct fbuf joined = { 0 };

	next = strstr(head, "\r\n");
	if (!next)
		return 400;
	*next = '\0';
	next += 2;
	line = head;
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
		return 400;
	*sp1 = *sp2 = '\0';
	rq->method = fake_xstrdup(line);
	rq->target = fake_xstrdup(sp1 + 1);
	rq->path = fake_xstrdup(sp1 + 1);
	rq->path[strcspn(rq->path, "?#")] = '\0';
	rq->keep_alive = strcmp(sp2 + 1, "HTTP/1.0") != 0;
	rq->headers = cJSON_CreateObject();

	for (line = next; *line; line = next) {
		next = strstr(line, "\r\n");
		if (!next)
			break;
		*next = '\0';
		next += 2;
		if (!*line)
			break;
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		*colon = '\0';
		for (p = line; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		value = trim(colon + 1);
		old = cJSON_GetObjectItemCaseSensitive(rq->headers, line);
		if (cJSON_IsString(old)) {
			fbuf_printf(&joined, "%s, %s", old->valuestring, value);
			cJSON_ReplaceItemInObjectCaseSensitive(rq->headers, line,
				cJSON_CreateString(joined.ptr));
			fbuf_release(&joined);
		} else {
			cJSON_AddStringToObject(rq->headers, line, value);
		}
	}
	return 0;
}

static const char *header(const struct request *rq, const char *name)
{
	cJSON *h = cJSON_GetObjectItemCaseSensitive(rq->headers, name);

	return cJSON_IsString(h) ? h->valuestring : NULL;
}

/* Whether the comma-separated header value list contains token. */
static int has_token(const char *list, const char *token)
{
	size_t n = strlen(token);
	const char *p = list;

	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (strncasecmp(p, token, n) == 0 &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == ';'))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

/* Decodes a chunked body from in into rq->body: 0, -1 (EOF), 400 or 413. */
static int read_chunked(int fd, struct fbuf *in, struct request *rq)
{
	size_t end, size;
	char *stop;

	for (;;) {
		end = need_line(fd, in);
		if (!end)
			return -1;
		errno = 0;
		size = strtoul(in->ptr, &stop, 16);
		if (stop == in->ptr || errno)
			return 400;
		fbuf_consume(in, end);
		if (size == 0)
			break;
		if (size > (size_t)BODY_MAX - rq->body.len)
			return 413;
		if (need(fd, in, size + 2) == -1)
			return -1;
		fbuf_append(&rq->body, in->ptr, size);
		fbuf_consume(in, size + 2);
	}
	/* Trailers up to the empty line, ignored. */
	for (;;) {
		end = need_line(fd, in);
		if (!end)
			return -1;
		fbuf_consume(in, end);
		if (end == 2)
			return 0;
	}
}

int http_read_request(int fd, struct fbuf *in, struct request *rq)
{
	const char *te, *cl, *conn, *expect;
	char *head, *end, *stop;
	size_t head_len;
	long length = 0;
	ssize_t n;
	int rc;

	memset(rq, 0, sizeof(*rq));
	for (;;) {
		/* Tolerate stray CRLFs between requests (RFC 9112 2.2). */
		while (in->len >= 2 && in->ptr[0] == '\r' && in->ptr[1] == '\n')
			fbuf_consume(in, 2);
		end = in->ptr ? memmem(in->ptr, in->len, "\r\n\r\n", 4) : NULL;
		if (end)
			break;
		if (in->len > HEAD_MAX)
			return 431;
		n = fill(fd, in);
		if (n == 0 && in->len == 0)
			return 1;
		if (n <= 0)
			return -1;
	}
	head_len = (size_t)(end - in->ptr) + 4;
	head = fake_xmalloc(head_len + 1);
	memcpy(head, in->ptr, head_len);
	head[head_len] = '\0';
	fbuf_consume(in, head_len);
	rc = parse_head(head, rq);
	free(head);
	if (rc)
		return rc;

	conn = header(rq, "connection");
	if (conn && has_token(conn, "close"))
		rq->keep_alive = 0;
	else if (conn && has_token(conn, "keep-alive"))
		rq->keep_alive = 1;

	te = header(rq, "transfer-encoding");
	cl = header(rq, "content-length");
	if (te && !has_token(te, "chunked"))
		return 400;
	if (!te && cl) {
		errno = 0;
		length = strtol(cl, &stop, 10);
		if (stop == cl || *stop || errno || length < 0)
			return 400;
		if (length > BODY_MAX)
			return 413;
	}
	expect = header(rq, "expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 && (te || length > 0)) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		if (send_all(fd, cont, sizeof(cont) - 1) == -1)
			return -1;
	}
	if (te) {
		rc = read_chunked(fd, in, rq);
		if (rc)
			return rc;
	} else if (length > 0) {
		if (need(fd, in, (size_t)length) == -1)
			return -1;
		fbuf_append(&rq->body, in->ptr, (size_t)length);
		fbuf_consume(in, (size_t)length);
	}
	rq->json = cJSON_ParseWithOpts(fbuf_str(&rq->body), NULL, 1);
	return 0;
}

void request_release(struct request *rq)
{
	free(rq->method);
	free(rq->target);
	free(rq->path);
	cJSON_Delete(rq->headers);
	cJSON_Delete(rq->json);
	fbuf_release(&rq->body);
	memset(rq, 0, sizeof(*rq));
}

/* ==== replies ==== */

void reply_init(struct reply *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->status = 200;
	rp->delay_ms = 0;
	rp->stall_ms = 0;
	rp->stall_at = -1;
	rp->cut_after_events = -1;
	rp->cut_after_bytes = -1;
	rp->split = 0;
	rp->split_pause_us = 300;
	rp->seed = 0x2545f491u;
	rp->repeat = 1;
	rp->repeat_at = 1;
}

void reply_release(struct reply *rp)
{
	size_t i;

	for (i = 0; i < rp->nevents; i++)
		fbuf_release(&rp->events[i]);
	free(rp->events);
	free(rp->content_type);
	free(rp->report);
	fbuf_release(&rp->headers);
	memset(rp, 0, sizeof(*rp));
}

void reply_add_event(struct reply *rp, const char *p, size_t n)
{
	struct fbuf *ev;

	rp->events = fake_xrealloc(rp->events,
		(rp->nevents + 1) * sizeof(*rp->events));
	ev = &rp->events[rp->nevents++];
	memset(ev, 0, sizeof(*ev));
	fbuf_append(ev, p, n);
}

static const char *reason(int status)
{
	static const struct { int status; const char *text; } table[] = {
		{ 200, "OK" }, { 201, "Created" }, { 204, "No Content" },
		{ 400, "Bad Request" }, { 401, "Unauthorized" },
		{ 403, "Forbidden" }, { 404, "Not Found" },
		{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
		{ 413, "Content Too Large" }, { 422, "Unprocessable Content" },
		{ 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 502, "Bad Gateway" },
		{ 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
		{ 529, "Overloaded" },
	};
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].status == status)
			return table[i].text;
	return "Status";
}

/* Sends one piece of body: its own chunk in a stream, raw bytes otherwise. */
static int send_piece(int fd, const struct reply *rp, const char *p, size_t n)
{
	struct fbuf chunk = { 0 };
	int rc;

	if (n == 0)
		return 0;
	if (!rp->chunked)
		return send_all(fd, p, n);
	fbuf_printf(&chunk, "%zx\r\n", n);
	fbuf_append(&chunk, p, n);
	fbuf_puts(&chunk, "\r\n");
	rc = send_all(fd, chunk.ptr, chunk.len);
	fbuf_release(&chunk);
	return rc;
}

/* xorshift32: fixed seed per reply, so a split pattern repeats run to run. */
static unsigned next_random(unsigned *state)
{
	unsigned x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/*
 * Sends the bytes gathered in run: whole when not splitting, else in pieces
 * of 1..split bytes with a pause between them so they arrive as separate
 * reads.  Empties run.
 */
static int flush_run(int fd, const struct reply *rp, struct fbuf *run,
		     unsigned *state)
{
	size_t off = 0, n;
	int rc = 0;

	while (off < run->len && rc == 0) {
		n = 1 + next_random(state) % (unsigned)rp->split;
		if (n > run->len - off)
			n = run->len - off;
		if (off > 0)
			fake_sleep_us(rp->split_pause_us);
		rc = send_piece(fd, rp, run->ptr + off, n);
		off += n;
	}
	run->len = 0;
	return rc;
}

static int send_head(int fd, const struct reply *rp, int keep_alive)
{
	struct fbuf head = { 0 };
	size_t i, total = 0;
	int rc;

	fbuf_printf(&head, "HTTP/1.1 %d %s\r\n", rp->status, reason(rp->status));
	fbuf_puts(&head, "Server: fake-upstream\r\n");
	if (rp->content_type)
		fbuf_printf(&head, "Content-Type: %s\r\n", rp->content_type);
	if (rp->chunked) {
		fbuf_puts(&head, "Transfer-Encoding: chunked\r\n");
		fbuf_puts(&head, "Cache-Control: no-cache\r\n");
	} else {
		for (i = 0; i < rp->nevents; i++)
			total += rp->events[i].len;
		fbuf_printf(&head, "Content-Length: %zu\r\n", total);
	}
	if (!keep_alive)
		fbuf_puts(&head, "Connection: close\r\n");
	fbuf_append(&head, fbuf_str(&rp->headers), rp->headers.len);
	fbuf_puts(&head, "\r\n");
	rc = send_all(fd, head.ptr, head.len);
	fbuf_release(&head);
	return rc;
}

/*
 * The report file of a reply: the body bytes sent so far, as a number
 * padded to a fixed width so that each rewrite replaces the last whole.
 */
static void report_sent(const struct reply *rp, int *fd, size_t sent)
{
	char line[32];
	int n;

	if (!rp->report)
		return;
	if (*fd < 0)
		*fd = open(rp->report, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%20zu\n", sent);
	if (pwrite(*fd, line, (size_t)n, 0) != n)
		perror("fake_upstream: report");
}

/* The event sent in position i of a reply whose event repeat_at is sent
 * repeat times. */
static const struct fbuf *event_at(const struct reply *rp, size_t i)
{
	size_t at = (size_t)rp->repeat_at, times = (size_t)rp->repeat;

	if (i <= at)
		return &rp->events[i];
	if (i < at + times)
		return &rp->events[at];
	return &rp->events[i - (times - 1)];
}

int http_send_reply(int fd, const struct reply *rp, int keep_alive)
{
	struct fbuf run = { 0 };
	unsigned state = rp->seed ? rp->seed : 1;
	int cut = rp->cut_after_events >= 0 || rp->cut_after_bytes >= 0;
	size_t i, nev = rp->nevents, take, sent = 0, reported = 0;
	size_t budget = rp->cut_after_bytes >= 0 ? (size_t)rp->cut_after_bytes : SIZE_MAX;
	const struct fbuf *ev;
	long pause;
	int rc = 0, report_fd = -1;

	if (rp->repeat > 1 && rp->repeat_at >= 0 && (size_t)rp->repeat_at < nev)
		nev += (size_t)rp->repeat - 1;
	else
		nev = rp->nevents;  /* event_at() is the identity */
	report_sent(rp, &report_fd, 0);

	if (cut)
		keep_alive = 0;
	if (rp->stall_at < 0)
		fake_sleep_ms(rp->stall_ms);
	if (send_head(fd, rp, keep_alive) == -1)
		return -1;
	if (rp->cut_after_events >= 0 && (size_t)rp->cut_after_events < nev)
		nev = (size_t)rp->cut_after_events;

	for (i = 0; i < nev && rc == 0 && budget > 0; i++) {
		pause = i > 0 ? rp->delay_ms : 0;
		if (rp->stall_at >= 0 && (size_t)rp->stall_at == i)
			pause += rp->stall_ms;
		if (pause > 0) {
			if (rp->split > 0)
				rc = flush_run(fd, rp, &run, &state);
			fake_sleep_ms(pause);
		}
		ev = nev == rp->nevents ? &rp->events[i] : event_at(rp, i);
		take = ev->len < budget ? ev->len : budget;
		if (rp->cut_after_bytes >= 0)
			budget -= take;
		if (rc == 0 && rp->split > 0)
			fbuf_append(&run, fbuf_str(ev), take);
		else if (rc == 0)
			rc = send_piece(fd, rp, fbuf_str(ev), take);
		if (rc == 0)
			sent += take;
		if (sent - reported >= 64 * 1024) {
			report_sent(rp, &report_fd, sent);
			reported = sent;
		}
	}
	if (rc == 0 && rp->split > 0)
		rc = flush_run(fd, rp, &run, &state);
	fbuf_release(&run);
	if (rc == 0 && rp->stall_at >= 0 && (size_t)rp->stall_at >= rp->nevents && !cut)
		fake_sleep_ms(rp->stall_ms);
	if (rc == 0 && cut)
		rc = -1;
	if (rc == 0 && rp->chunked)
		rc = send_all(fd, "0\r\n\r\n", 5);
	report_sent(rp, &report_fd, sent);
	if (report_fd >= 0)
		close(report_fd);
	return rc == 0 && keep_alive ? 0 : -1;
}
