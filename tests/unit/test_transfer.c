/*
 * test_transfer.c - unit tests for request headers on transfers
 * (src/engine/transfer.c): a list built once (transfer_headers_new()) is
 * sent as it is by every transfer that shares it, a request's own headers
 * go with it, and an engine keeps one list per owner and key.
 *
 * A thread plays the upstream: it accepts connections on 127.0.0.1, keeps
 * each request's head and answers 200 "ok".  Each transfer runs on the
 * loop until its on_done stops it.
 */
#include "aichat/loop.h"
#include "aichat/transfer.h"
#include "tap.h"

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADS 8

static int lfd, port;
static char heads[HEADS][4096];
static int nheads;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* One request per connection: reads its head and its body
 * (Content-Length), answers, closes. */
static void *upstream(void *arg)
{
	(void)arg;
	for (int i = 0; i < HEADS; i++) {
		int fd = accept(lfd, NULL, NULL);
		char buf[4096];
		size_t n = 0;
		ssize_t r;
		static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
			"Connection: close\r\n\r\nok";

		if (fd < 0)
			return NULL;
		while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0) {
			n += (size_t)r;
			buf[n] = '\0';
			if (strstr(buf, "\r\n\r\n"))
				break;
		}
		buf[n] = '\0';
		const char *cl = strcasestr(buf, "\r\nContent-Length:");
		char *end = strstr(buf, "\r\n\r\n");
		long body = cl ? strtol(cl + 17, NULL, 10) : 0;
		long have = end ? (long)(buf + n - (end + 4)) : 0;
		char sink[4096];
		while (have < body && (r = read(fd, sink, sizeof(sink))) > 0)
			have += r;
		if (end)
			end[2] = '\0';
		pthread_mutex_lock(&lock);
		snprintf(heads[nheads++], sizeof(heads[0]), "%s", buf);
		pthread_mutex_unlock(&lock);
		if (write(fd, answer, sizeof(answer) - 1) < 0)
			perror("write");
		close(fd);
	}
	return NULL;
}

struct run {
	struct loop *l;
	long status;
	struct err err;
};

static int on_data(void *ud, const char *p, size_t n)
{
	(void)ud;
	(void)p;
	(void)n;
	return 0;
}

static void on_done(void *ud, struct transfer_result *r)
{
	struct run *x = ud;

	x->status = r->status;
	x->err = r->err;
	loop_stop(x->l);
}

static const struct transfer_cbs cbs = { on_data, on_done };

/* One POST of a 1.1 MiB body (curl would ask for a 100-continue) with
 * these headers; the head the upstream saw, or "". */
static const char *get(struct engine *eng, struct loop *l,
		       const struct transfer_headers *shared, const char *const *own)
{
	static char body[1100 * 1024] = "x";
	struct transfer_req req = { 0 };
	struct run x = { l, 0, { 0 } };
	char url[64];
	struct err e;
	int before = nheads;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	req.url = url;
	req.shared = shared;
	req.headers = own;
	req.body = body;
	req.body_len = sizeof(body);
	req.total_ms = 5000;
	if (!transfer_start(eng, &req, &cbs, &x, &e)) {
		printf("# transfer_start: %s\n", e.msg);
		return "";
	}
	loop_run(l);
	if (x.status != 200)
		printf("# status %ld: %s\n", x.status, x.err.msg);
	pthread_mutex_lock(&lock);
	const char *h = nheads > before ? heads[nheads - 1] : "";
	pthread_mutex_unlock(&lock);
	return h;
}

/* Lines of head that are exactly line (case-sensitive names as sent). */
static int has_line(const char *head, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = head; (p = strstr(p, line)); p += n)
		if (p > head && p[-1] == '\n' && !strncmp(p + n, "\r\n", 2))
			return 1;
	return 0;
}

static int has_name(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
		if (!strncasecmp(p + 1, name, n) && p[1 + n] == ':')
			return 1;
	return 0;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	pthread_t th;
	struct loop *l = loop_new();
	struct engine *eng = engine_new(l);
	static const char *const shared_h[] = { "Content-Type: application/json",
						"x-api-key: k-one", NULL };
	static const char *const other_h[] = { "x-api-key: k-two", NULL };
	static const char *const own[] = { "anthropic-beta: tools-1", "X-Trace: t", NULL };
	struct transfer_headers *sh = transfer_headers_new(shared_h);
	struct transfer_headers *oh = transfer_headers_new(other_h);
	const char *h;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 8) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		return perror("listen"), 1;
	port = ntohs(a.sin_port);
	pthread_create(&th, NULL, upstream, NULL);

	is_int(engine_headers(eng, &port, "k-one") == NULL, 1, "an engine keeps no list at first");
	ok(engine_keep_headers(eng, &port, "k-one", sh) == sh, "it keeps one under (owner, key)");
	ok(engine_keep_headers(eng, &port, NULL, oh) == oh, "and one under (owner, no key)");
	ok(engine_headers(eng, &port, "k-one") == sh, "found by owner and key");
	ok(engine_headers(eng, &port, NULL) == oh, "found by owner and no key");
	ok(engine_headers(eng, &port, "k-on") == NULL, "not by a key one byte short");
	ok(engine_headers(eng, &lfd, "k-one") == NULL, "nor by another owner");

	for (int i = 0; i < 2; i++) {
		h = get(eng, l, sh, NULL);
		ok(has_line(h, "Content-Type: application/json") && has_line(h, "x-api-key: k-one"),
		   "transfer %d: the shared headers are sent", i + 1);
		ok(!has_name(h, "Expect"), "transfer %d: no Expect: 100-continue", i + 1);
	}
	h = get(eng, l, sh, own);
	ok(has_line(h, "anthropic-beta: tools-1") && has_line(h, "X-Trace: t"),
	   "a request's own headers are sent");
	ok(has_line(h, "x-api-key: k-one") && has_line(h, "Content-Type: application/json"),
	   "with the shared ones");
	h = get(eng, l, sh, NULL);
	ok(!has_name(h, "anthropic-beta") && !has_name(h, "X-Trace"),
	   "and not by the next request that shares the list");
	ok(has_line(h, "x-api-key: k-one"), "whose shared headers are whole");
	h = get(eng, l, oh, own);
	ok(has_line(h, "x-api-key: k-two") && !has_line(h, "x-api-key: k-one") &&
	   has_line(h, "X-Trace: t"), "another list with the same own headers");
	h = get(eng, l, NULL, own);
	ok(has_line(h, "X-Trace: t") && !has_name(h, "x-api-key") && !has_name(h, "Expect"),
	   "own headers alone, no shared list");
	h = get(eng, l, NULL, NULL);
	ok(*h && !has_name(h, "x-api-key") && !has_name(h, "Expect"), "no headers at all");

	engine_free(eng);     /* frees the lists it keeps */
	loop_free(l);
	close(lfd);
	return tap_done();
}
