/*
 * fake_upstream.c - a fake LLM API server for the bats tests.
 *
 *   fake_upstream --port-file FILE --log FILE [--script FILE]
 *
 * Listens on 127.0.0.1 on a port the kernel picks, writes that port to the
 * port file (atomically: FILE.tmp, then rename) once it accepts connections,
 * and serves HTTP/1.1 until SIGTERM or SIGINT, then exits 0.  Each request is
 * appended to the log as one JSON line before it is answered, so a test can
 * see what arrived even when the answer stalls; the answer follows the script
 * (see fake_script.c and fake_answer.c, and tests/helpers.bash for use).
 *
 * One detached thread per connection.  A signal ends the process at once
 * with _exit(0): every log line is already written whole by one write(2), so
 * nothing is lost, and threads stalled on purpose need not be woken.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake.h"

static const char *script_path;
static int log_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static long requests_seen;
static long in_flight;        /* requests logged and not yet answered */
/* The same, per body "model" (the first 32 models seen). */
static struct {
	char model[64];
	long n;
} model_flight[32];

/* The in-flight counter of rq's body model, or NULL (none, or no room).
 * Under log_lock. */
static long *model_counter(const struct request *rq)
{
	const cJSON *m = rq->json ? cJSON_GetObjectItemCaseSensitive(rq->json, "model") : NULL;
	size_t i;

	if (!cJSON_IsString(m) || strlen(m->valuestring) >= sizeof(model_flight[0].model))
		return NULL;
	for (i = 0; i < sizeof(model_flight) / sizeof(model_flight[0]); i++) {
		if (!model_flight[i].model[0])
			snprintf(model_flight[i].model, sizeof(model_flight[i].model), "%s",
				 m->valuestring);
		if (!strcmp(model_flight[i].model, m->valuestring))
			return &model_flight[i].n;
	}
	return NULL;
}

struct conn {
	int fd;
	long id;  /* 1-based, in accept order */
};

static void on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

/*
 * Appends {"n","conn","inflight","method","path","headers","body"} for rq
 * to the log (inflight: the requests being answered, this one included;
 * with a body "model", also "inflight_model": those of the same model),
 * body parsed when it is JSON, else as a string.  One write per line, under
 * the lock, so lines never interleave and come in request-number order.
 */
static void log_request(const struct request *rq, long conn)
{
	cJSON *doc;
	char *text;
	size_t len, off = 0;
	ssize_t n;
	long *mc;

	pthread_mutex_lock(&log_lock);
	doc = cJSON_CreateObject();
	cJSON_AddNumberToObject(doc, "n", (double)++requests_seen);
	cJSON_AddNumberToObject(doc, "conn", (double)conn);
	/* This one included: the peak over the log is the most requests
	 * the fake ever held at once. */
	cJSON_AddNumberToObject(doc, "inflight", (double)++in_flight);
	if ((mc = model_counter(rq)))
		cJSON_AddNumberToObject(doc, "inflight_model", (double)++*mc);
	cJSON_AddStringToObject(doc, "method", rq->method);
	cJSON_AddStringToObject(doc, "path", rq->target);
	cJSON_AddItemToObject(doc, "headers", cJSON_Duplicate(rq->headers, 1));
	if (rq->json)
		cJSON_AddItemToObject(doc, "body", cJSON_Duplicate(rq->json, 1));
	else
		cJSON_AddStringToObject(doc, "body", fbuf_str(&rq->body));
	text = cJSON_PrintUnformatted(doc);
	len = strlen(text);
	text[len++] = '\n';  /* replaces the NUL: text is not a string after this */
	while (log_fd != -1 && off < len) {
		n = write(log_fd, text + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("fake_upstream: log");
			break;
		}
		off += (size_t)n;
	}
	pthread_mutex_unlock(&log_lock);
	free(text);
	cJSON_Delete(doc);
}

/* Answers a request that could not be parsed, then the connection closes. */
static void refuse(int fd, int status)
{
	struct reply rp;
	const char *body = "{\"error\":{\"message\":\"fake: malformed request\","
		"\"type\":\"invalid_request_error\",\"code\":null}}";

	reply_init(&rp);
	rp.status = status;
	rp.content_type = fake_xstrdup("application/json");
	reply_add_event(&rp, body, strlen(body));
	http_send_reply(fd, &rp, 0);
	reply_release(&rp);
}

static void *serve_conn(void *arg)
{
	struct conn *c = arg;
	struct fbuf in = { 0 };
	struct request rq;
	struct reply rp;
	cJSON *spec;
	long *mc;
	int rc, counted;

	for (;;) {
		rc = http_read_request(c->fd, &in, &rq);
		if (rc != 0) {
			if (rc > 1)
				refuse(c->fd, rc);
			request_release(&rq);
			break;
		}
		log_request(&rq, c->id);
		spec = script_select(script_path, fbuf_str(&rq.body));
		reply_init(&rp);
		answer_build(&rp, spec, &rq);
		counted = 1;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "done_before_reply")) &&
		    rp.stall_at < 0) {
			/* The request stops counting once its stall is over,
			 * before a byte of the reply: a client that starts its
			 * next call on reading this one never overlaps it in
			 * "inflight". */
			fake_sleep_ms(rp.stall_ms);
			rp.stall_ms = 0;
			pthread_mutex_lock(&log_lock);
			in_flight--;
			if ((mc = model_counter(&rq)))
				--*mc;
			pthread_mutex_unlock(&log_lock);
			counted = 0;
		}
		rc = http_send_reply(c->fd, &rp, rq.keep_alive && !rp.close);
		if (counted) {
			pthread_mutex_lock(&log_lock);
			in_flight--;
			if ((mc = model_counter(&rq)))
				--*mc;
			pthread_mutex_unlock(&log_lock);
		}
		reply_release(&rp);
		cJSON_Delete(spec);
		request_release(&rq);
		if (rc != 0)
			break;
	}
	close(c->fd);
	fbuf_release(&in);
	free(c);
	return NULL;
}

static int write_port_file(const char *path, int port)
{
	size_t n = strlen(path) + 5;
	char *tmp = fake_xmalloc(n);
	FILE *f;
	int rc = -1;

	snprintf(tmp, n, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f) {
		fprintf(f, "%d\n", port);
		if (fclose(f) == 0 && rename(tmp, path) == 0)
			rc = 0;
	}
	if (rc)
		fprintf(stderr, "fake_upstream: cannot write '%s': %s\n", path,
			strerror(errno));
	free(tmp);
	return rc;
}

static int usage(FILE *out, int status)
{
	fputs("usage: fake_upstream --port-file FILE --log FILE [--script FILE]\n",
		out);
	return status;
}

int main(int argc, char **argv)
{
	const char *port_file = NULL, *log_path = NULL;
	struct sockaddr_in addr;
	socklen_t addr_len = sizeof(addr);
	struct sigaction sa;
	pthread_attr_t attr;
	pthread_t thread;
	struct conn *c;
	long conns = 0;
	int i, lfd, fd, one = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return usage(stdout, 0);
		if (i + 1 >= argc)
			return usage(stderr, 2);
		if (strcmp(argv[i], "--port-file") == 0)
			port_file = argv[++i];
		else if (strcmp(argv[i], "--log") == 0)
			log_path = argv[++i];
		else if (strcmp(argv[i], "--script") == 0)
			script_path = argv[++i];
		else
			return usage(stderr, 2);
	}
	if (!port_file || !log_path)
		return usage(stderr, 2);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (log_fd == -1) {
		fprintf(stderr, "fake_upstream: cannot open '%s': %s\n", log_path,
			strerror(errno));
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = 0;
	if (lfd == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) == -1 ||
	    listen(lfd, 128) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &addr_len) == -1) {
		perror("fake_upstream: listen");
		return 1;
	}
	if (write_port_file(port_file, ntohs(addr.sin_port)) == -1)
		return 1;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EINTR && errno != ECONNABORTED) {
				perror("fake_upstream: accept");
				fake_sleep_ms(10);  /* EMFILE and the like: no busy loop */
			}
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = fake_xmalloc(sizeof(*c));
		c->fd = fd;
		c->id = ++conns;
		if (pthread_create(&thread, &attr, serve_conn, c) != 0) {
			perror("fake_upstream: thread");
			close(fd);
			free(c);
		}
	}
}
