/*
 * fake.h - internals shared by the files of the fake upstream (tests/fake/).
 *
 * The fake is a small HTTP/1.1 server that plays an OpenAI- or
 * Anthropic-style LLM API for the bats tests: fake_upstream.c accepts
 * connections and logs requests, fake_http.c reads requests and writes
 * replies, fake_script.c picks the response spec for each request and
 * fake_answer.c turns a spec into a reply.  A generated chat answer is
 * decided by fake_chat.c from the request and written in its dialect by
 * fake_openai.c or fake_anthropic.c.  It is a test tool: one thread per
 * connection, and out-of-memory aborts.
 */
#ifndef FAKE_H
#define FAKE_H

#include <stddef.h>

#include <cJSON.h>

/* Every "created" timestamp the fake writes. */
#define FAKE_CREATED 1700000000

/* ==== byte buffer ==== */

/* Growable buffer: ptr is NULL until the first append, then NUL-terminated. */
struct fbuf {
	char *ptr;
	size_t len, cap;
};

void fbuf_append(struct fbuf *b, const void *p, size_t n);
void fbuf_puts(struct fbuf *b, const char *s);
void fbuf_printf(struct fbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void fbuf_consume(struct fbuf *b, size_t n);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void fbuf_release(struct fbuf *b);
/* The content as a C string: "" while nothing was appended. */
const char *fbuf_str(const struct fbuf *b);

void *fake_xmalloc(size_t n);
void *fake_xrealloc(void *p, size_t n);
char *fake_xstrdup(const char *s);

/* Sleeps ms milliseconds (EINTR restarts the rest). */
void fake_sleep_ms(long ms);
void fake_sleep_us(long us);

/* ==== requests ==== */

struct request {
	char *method;     /* owned: "POST" */
	char *target;     /* owned: request target as sent, with any query */
	char *path;       /* owned: target without the query */
	cJSON *headers;   /* owned object: lower-cased name -> value */
	struct fbuf body; /* decoded body (Content-Length or chunked) */
	cJSON *json;      /* owned: the body parsed as JSON, NULL if it is not */
	int keep_alive;   /* the client allows another request on this connection */
};

/*
 * Reads one request from fd into rq; in holds bytes read past the previous
 * request and keeps those read past this one.  Returns 0 with rq filled (the
 * caller releases it), 1 when the client closed cleanly between requests, or
 * an HTTP status (400, 413, 431) for a malformed request, or -1 on a read
 * error.  A request with "Expect: 100-continue" gets its interim response.
 */
int http_read_request(int fd, struct fbuf *in, struct request *rq);
void request_release(struct request *rq);

/* ==== replies ==== */

/*
 * One reply: its head, its body as a list of events (a content-length body
 * is one event) and how to misbehave while sending it.  Durations and counts
 * of -1 mean "not set".
 */
struct reply {
	int status;
	char *content_type;     /* owned */
	struct fbuf headers;    /* extra header lines, each ending in CRLF */
	int chunked;            /* a stream: Transfer-Encoding: chunked */
	struct fbuf *events;    /* owned array of nevents buffers */
	size_t nevents;
	long delay_ms;          /* pause between events */
	long stall_ms;          /* pause before event stall_at ... */
	long stall_at;          /* ... (-1: before the status line) */
	long cut_after_events;  /* close abruptly after this many events */
	long cut_after_bytes;   /* close abruptly after this many body bytes */
	long split;             /* body written in pieces of 1..split bytes */
	long split_pause_us;
	unsigned seed;          /* PRNG seed for the piece sizes */
	int close;              /* Connection: close after the reply */
	long repeat;            /* event repeat_at is sent this many times ... */
	long repeat_at;         /* ... (an endless-looking stream, bounded) */
	char *report;           /* owned: file that tracks the body bytes sent */
};

void reply_init(struct reply *rp);
void reply_release(struct reply *rp);
/* Appends one event (a copy of n bytes of p). */
void reply_add_event(struct reply *rp, const char *p, size_t n);

/*
 * Fills rp (initialised by the caller) from a response spec for request rq.
 * Never fails: a spec the fake cannot honour becomes a 500 reply saying why.
 */
void answer_build(struct reply *rp, const cJSON *spec, const struct request *rq);

/* Replaces the reply's Content-Type. */
void reply_set_content_type(struct reply *rp, const char *type);
/*
 * Appends doc, printed compactly, as one event and deletes doc: framed as
 * "data: ...\n\n" when sse (preceded by "event: EVENT\n" when event is not
 * NULL), else bare.
 */
void reply_add_json(struct reply *rp, const char *event, cJSON *doc, int sse);

/*
 * Writes rp to fd.  keep_alive says whether the connection stays open
 * afterwards (it decides the Connection header).  Returns 0 when the
 * connection may serve another request, -1 when it must be closed (write
 * error, a cut reply, or no keep-alive).
 */
int http_send_reply(int fd, const struct reply *rp, int keep_alive);

/* ==== JSON fields ==== */

/* obj's number field name as a long; def when it is absent or not a number. */
long json_long(const cJSON *obj, const char *name, long def);
/* obj's string field name (borrowed); NULL when absent or not a string. */
const char *json_str(const cJSON *obj, const char *name);
/* A new object {"type": type}. */
cJSON *json_typed(const char *type);
int fake_ends_with(const char *s, const char *suffix);
/* Words of s: runs of non-space bytes. */
size_t fake_count_words(const char *s);

/* ==== chat answers ==== */

/*
 * A generated chat answer, decided from the request and the spec by
 * chat_init (fake_chat.c) in terms both dialects share; openai_answer and
 * anthropic_answer only lay it out.  Token counts are one per delta sent.
 */
struct chat {
	const char *model;          /* borrowed: the request's, or "fake-model" */
	const char *service_tier;   /* borrowed: the request's, NULL without one */
	int anthropic, stream, include_usage;
	int extras;                 /* add the realistic fields real APIs send */
	int logprobs;               /* OpenAI: the request asked for logprobs */
	long choices;               /* OpenAI non-streamed: the request's "n" */
	cJSON *thinking;            /* owned strings: thinking deltas, or NULL */
	cJSON *deltas;              /* owned strings: the text, as streamed */
	struct fbuf text;           /* the deltas joined */
	const char *tool_name;      /* borrowed: the tool called, NULL if none */
	cJSON *tool_input;          /* owned: the call's arguments object */
	char *tool_args;            /* owned: tool_input printed */
	cJSON *tool_pieces;         /* owned strings: tool_args, as streamed */
	long prompt_tokens, completion_tokens;
	long cached_tokens, reasoning_tokens;  /* OpenAI usage details */
	long cache_creation, cache_read;       /* Anthropic cache usage */
	const char *finish;         /* finish_reason or stop_reason */
};

/* Fills c from request rq and the spec; chat_release frees it. */
void chat_init(struct chat *c, const cJSON *spec, const struct request *rq);
void chat_release(struct chat *c);
/* Add c's events to rp, in the OpenAI or the Anthropic dialect. */
void openai_answer(struct reply *rp, const struct chat *c);
void anthropic_answer(struct reply *rp, const struct chat *c);

/* ==== script ==== */

/*
 * Loads the script file path (NULL or missing: no script) and returns the
 * response spec for a request with this raw body: an owned cJSON object,
 * never NULL.  Thread-safe: the sequence position is shared by all
 * connections, and restarts at the first line whenever the script's content
 * changes.  A line that is not a JSON object yields a 500 spec naming it.
 */
cJSON *script_select(const char *path, const char *body);

#endif
