/*
 * test_sse.c - unit tests for the event-stream parser (src/provider/sse_parse.c).
 *
 * Table-driven: each case is an input byte string and the events it must
 * yield.  Every case is fed whole, split in two at every byte position, and
 * one byte at a time, and each run must give exactly the same transcript:
 * the events (type, id, retry, data, whether it is the [DONE] marker), a
 * marker where sse_finish() was called, the return code and the error.
 * The input is always copied to the end of a page followed by an unreadable
 * page, so reading one byte past a feed crashes the test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "aichat/sse.h"
#include "aichat/xalloc.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STOP_RC 7

struct want {
	const char *event;
	const char *data;
	const char *id;
	long retry;
	size_t data_len;        /* 0: strlen(data) */
};

struct sse_case {
	const char *name;
	const char *in;
	size_t len;
	size_t max_line;        /* 0: the default cap */
	int rc;                 /* 0, -1 or STOP_RC */
	const char *err;        /* message expected with rc -1 */
	int stop_at;            /* callback returns STOP_RC at this event */
	int at_finish;          /* how many of the events sse_finish() gives */
	const struct want *ev;  /* ends with a NULL data */
};

#define IN(s) s, sizeof(s) - 1
#define EV(type, d, id) { type, d, id, -1, 0 }
#define EVR(type, d, id, r) { type, d, id, r, 0 }
#define END { NULL, NULL, NULL, 0, 0 }
#define EVENTS(...) (const struct want[]){ __VA_ARGS__, END }
#define NONE (const struct want[]){ END }

#define OAI_HEAD "{\"id\":\"chatcmpl-9x\",\"object\":\"chat.completion.chunk\"," \
	"\"created\":1700000000,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,"
#define OAI(delta, fin) OAI_HEAD "\"delta\":" delta ",\"finish_reason\":" fin "}]}"

#define ANT_START "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01X\"," \
	"\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":" \
	"\"claude-3-5-sonnet-20241022\",\"stop_reason\":null,\"stop_sequence\":null," \
	"\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}"
#define ANT_BLOCK "{\"type\":\"content_block_start\",\"index\":0," \
	"\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"
#define ANT_DELTA(t) "{\"type\":\"content_block_delta\",\"index\":0," \
	"\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}"
#define ANT_MDELTA "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":" \
	"\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}"

static const struct sse_case cases[] = {
	{ "empty input", IN(""), .ev = NONE },
	{ "blank lines only", IN("\n\n\r\n\r\r\r\n"), .ev = NONE },
	{ "lf", IN("data: hello\n\n"), .ev = EVENTS(EV("", "hello", "")) },
	{ "crlf", IN("data: hello\r\n\r\ndata: world\r\n\r\n"),
	  .ev = EVENTS(EV("", "hello", ""), EV("", "world", "")) },
	{ "cr", IN("data: a\r\rdata: b\r\r"),
	  .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "mixed endings", IN("data: a\r\ndata: b\n\rdata: c\r\r\ndata: d\n\n"),
	  .ev = EVENTS(EV("", "a\nb", ""), EV("", "c", ""), EV("", "d", "")) },
	{ "crlf is one line ending", IN("data: a\r\ndata: b\r\n\r\n"),
	  .ev = EVENTS(EV("", "a\nb", "")) },
	{ "cr then a non-lf byte", IN("data: a\rdata: b\r\n\n"),
	  .ev = EVENTS(EV("", "a\nb", "")) },
	{ "cr cr lf", IN("data: a\r\r\ndata: b\r\n\r\n"),
	  .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "leading blank lines", IN("\r\n\r\n\n\rdata: a\r\n\r\n"),
	  .ev = EVENTS(EV("", "a", "")) },
	{ "bom at start", IN("\xEF\xBB\xBF" "data: bom\n\n"),
	  .ev = EVENTS(EV("", "bom", "")) },
	{ "bom then a blank line", IN("\xEF\xBB\xBF\ndata: x\n\n"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "only the first bom is skipped",
	  IN("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\ndata: y\n\n"),
	  .ev = EVENTS(EV("", "y", "")) },
	{ "bom at the start of a later line",
	  IN("data: a\n\n\xEF\xBB\xBF" "data: b\n\n"),
	  .ev = EVENTS(EV("", "a", "")) },
	{ "bom inside data is kept", IN("data: \xEF\xBB\xBFx\n\n"),
	  .ev = EVENTS(EV("", "\xEF\xBB\xBFx", "")) },
	{ "partial bom is part of the field name",
	  IN("\xEF\xBB" "data: x\n\ndata: y\n\n"),
	  .ev = EVENTS(EV("", "y", "")) },
	{ "partial bom then lf", IN("\xEF\ndata: z\n\n"),
	  .ev = EVENTS(EV("", "z", "")) },
	{ "stream of a partial bom", IN("\xEF\xBB"), .ev = NONE },
	{ "stream of a bom", IN("\xEF\xBB\xBF"), .ev = NONE },
	{ "data without space", IN("data:hello\n\n"),
	  .ev = EVENTS(EV("", "hello", "")) },
	{ "two spaces keep one", IN("data:  hello\n\n"),
	  .ev = EVENTS(EV("", " hello", "")) },
	{ "tab is not stripped", IN("data:\thello\n\n"),
	  .ev = EVENTS(EV("", "\thello", "")) },
	{ "trailing spaces kept", IN("data: a  \n\n"),
	  .ev = EVENTS(EV("", "a  ", "")) },
	{ "multi-line data", IN("data: a\ndata:\ndata: c\n\n"),
	  .ev = EVENTS(EV("", "a\n\nc", "")) },
	{ "colons in value", IN("data: {\"a\":\"b:c\"}\n\n"),
	  .ev = EVENTS(EV("", "{\"a\":\"b:c\"}", "")) },
	{ "comments and keep-alives",
	  IN(": keep-alive\n\n:\n\ndata: x\n: in the middle\ndata: y\n\n:ping\r\n\r\n"),
	  .ev = EVENTS(EV("", "x\ny", "")) },
	{ "event id retry",
	  IN("event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n"),
	  .ev = EVENTS(EVR("delta", "x", "7", 1500), EVR("", "y", "7", 1500)) },
	{ "event after data in the same event", IN("data: x\nevent: late\n\n"),
	  .ev = EVENTS(EV("late", "x", "")) },
	{ "last event field wins", IN("event: a\nevent: b\ndata: x\n\n"),
	  .ev = EVENTS(EV("b", "x", "")) },
	{ "event value keeps inner spaces", IN("event:  x \ndata: d\n\n"),
	  .ev = EVENTS(EV(" x ", "d", "")) },
	{ "invalid retry ignored",
	  IN("retry: 10\ndata: a\n\nretry: 1x\ndata: b\n\nretry: -5\ndata: c\n\n"
	     "retry:\ndata: d\n\nretry:  20\ndata: e\n\n"
	     "retry: 99999999999999999999999\ndata: f\n\nretry:30\ndata: g\n\n"
	     "retry: 0\ndata: h\n\nretry: +4\ndata: i\n\n"),
	  .ev = EVENTS(EVR("", "a", "", 10), EVR("", "b", "", 10),
		       EVR("", "c", "", 10), EVR("", "d", "", 10),
		       EVR("", "e", "", 10), EVR("", "f", "", 10),
		       EVR("", "g", "", 30), EVR("", "h", "", 0),
		       EVR("", "i", "", 0)) },
	{ "unknown fields ignored",
	  IN("foo: bar\ndata: x\nDATA: y\nData: z\n data: w\ndatas: v\nevent2: e\n\n"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "field with no colon", IN("data\ndata\n\ndata\n\n"),
	  .ev = EVENTS(EV("", "\n", ""), EV("", "", "")) },
	{ "event with no colon", IN("event: a\nevent\ndata: x\n\n"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "id with no colon resets it", IN("id: 5\ndata: a\n\nid\ndata: b\n\n"),
	  .ev = EVENTS(EV("", "a", "5"), EV("", "b", "")) },
	{ "empty data event", IN("data:\n\ndata: \n\n"),
	  .ev = EVENTS(EV("", "", ""), EV("", "", "")) },
	{ "event only is not dispatched", IN("event: ping\n\ndata: x\n\n"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "id persists", IN("id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n"),
	  .ev = EVENTS(EV("", "a", "1"), EV("", "b", "1"), EV("", "c", "2")) },
	{ "id with nul ignored", IN("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n"),
	  .ev = EVENTS(EV("", "a", "1"), EV("", "b", "1")) },
	{ "id with colon", IN("id: a:b\ndata: x\n\n"),
	  .ev = EVENTS(EV("", "x", "a:b")) },
	{ "data with nul", IN("data: a\0b\n\n"),
	  .ev = EVENTS({ "", "a\0b", "", -1, 3 }) },
	{ "utf-8 kept byte for byte",
	  IN("data: h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\n\n"
	     "event: \xC3\xA9v\ndata: \xFF\xFE\xC3\n\n"),
	  .ev = EVENTS(EV("", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", ""),
		       EV("\xC3\xA9v", "\xFF\xFE\xC3", "")) },
	{ "last event without blank line", IN("data: a\n\ndata: b\n"),
	  .at_finish = 1, .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "last event ends with cr", IN("data: a\n\ndata: b\r"),
	  .at_finish = 1, .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "partial last line", IN("data: a\n\nevent: e\ndata: b"),
	  .at_finish = 1, .ev = EVENTS(EV("", "a", ""), EV("e", "b", "")) },
	{ "partial last line joins data", IN("data: a\ndata: b"),
	  .at_finish = 1, .ev = EVENTS(EV("", "a\nb", "")) },
	{ "partial last data with no colon", IN("data: x\n\ndata"),
	  .at_finish = 1, .ev = EVENTS(EV("", "x", ""), EV("", "", "")) },
	{ "partial last event line", IN("data: x\n\nevent: e"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "partial last comment", IN("data: x\n\n: bye"),
	  .ev = EVENTS(EV("", "x", "")) },
	{ "line at the cap", IN("data: 0123456789\r\ndata: 0123456789\n\n"),
	  .max_line = 16,
	  .ev = EVENTS(EV("", "0123456789\n0123456789", "")) },
	{ "partial line at the cap", IN("data: 0123456789"), .max_line = 16,
	  .at_finish = 1, .ev = EVENTS(EV("", "0123456789", "")) },
	{ "line over the cap", IN("data: a\n\ndata: 01234567890\n\ndata: b\n\n"),
	  .max_line = 16, .rc = -1,
	  .err = "event-stream line longer than 16 bytes",
	  .ev = EVENTS(EV("", "a", "")) },
	{ "partial line over the cap", IN("data: a\n\ndata: 01234567890"),
	  .max_line = 16, .rc = -1,
	  .err = "event-stream line longer than 16 bytes",
	  .ev = EVENTS(EV("", "a", "")) },
	{ "comment over the cap", IN(": 0123456789abcdef\r\n"),
	  .max_line = 16, .rc = -1,
	  .err = "event-stream line longer than 16 bytes", .ev = NONE },
	{ "cap of one byte", IN("\xEF\xBB\xBF:\n\n:x"), .max_line = 1, .rc = -1,
	  .err = "event-stream line longer than 1 bytes", .ev = NONE },
	{ "partial bom over a cap of one byte", IN("\xEF\xBBx\n"), .max_line = 1,
	  .rc = -1, .err = "event-stream line longer than 1 bytes", .ev = NONE },
	{ "done exact", IN("data: [DONE]\n\ndata:[DONE]\n\n"),
	  .ev = EVENTS(EV("", "[DONE]", ""), EV("", "[DONE]", "")) },
	{ "done look-alikes",
	  IN("data: [DONE] \n\ndata: x[DONE]\n\ndata:  [DONE]\n\n"
	     "data: [DONE\n\ndata: [done]\n\ndata: [DONE]\ndata: x\n\n"
	     "data: [DONE]\0\n\n"),
	  .ev = EVENTS(EV("", "[DONE] ", ""), EV("", "x[DONE]", ""),
		       EV("", " [DONE]", ""), EV("", "[DONE", ""),
		       EV("", "[done]", ""), EV("", "[DONE]\nx", ""),
		       { "", "[DONE]\0", "", -1, 7 }) },
	{ "callback stops the feed", IN("data: a\n\ndata: b\n\ndata: c\n\n"),
	  .rc = STOP_RC, .stop_at = 2,
	  .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "callback stops on the first event", IN("data: a\r\rdata: b\r\r"),
	  .rc = STOP_RC, .stop_at = 1, .ev = EVENTS(EV("", "a", "")) },
	{ "callback stops in sse_finish", IN("data: a\n\ndata: b"),
	  .rc = STOP_RC, .stop_at = 2, .at_finish = 1,
	  .ev = EVENTS(EV("", "a", ""), EV("", "b", "")) },
	{ "openai stream",
	  IN("data: " OAI("{\"role\":\"assistant\",\"content\":\"\"}", "null") "\n\n"
	     "data: " OAI("{\"content\":\"Hel\"}", "null") "\n\n"
	     ": OPENROUTER PROCESSING\n\n"
	     "data: " OAI("{\"content\":\"lo \xE2\x9C\x93\"}", "null") "\n\n"
	     "data: " OAI("{}", "\"stop\"") "\n\n"
	     "data: [DONE]\n\n"),
	  .ev = EVENTS(
		EV("", OAI("{\"role\":\"assistant\",\"content\":\"\"}", "null"), ""),
		EV("", OAI("{\"content\":\"Hel\"}", "null"), ""),
		EV("", OAI("{\"content\":\"lo \xE2\x9C\x93\"}", "null"), ""),
		EV("", OAI("{}", "\"stop\""), ""),
		EV("", "[DONE]", "")) },
	{ "anthropic stream",
	  IN("event: message_start\ndata: " ANT_START "\n\n"
	     "event: content_block_start\ndata: " ANT_BLOCK "\n\n"
	     "event: ping\ndata: {\"type\": \"ping\"}\n\n"
	     "event: content_block_delta\ndata: " ANT_DELTA("Hello") "\n\n"
	     "event: content_block_delta\ndata: " ANT_DELTA(" w\\u00f6rld") "\n\n"
	     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
	     "event: message_delta\ndata: " ANT_MDELTA "\n\n"
	     "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
	  .ev = EVENTS(
		EV("message_start", ANT_START, ""),
		EV("content_block_start", ANT_BLOCK, ""),
		EV("ping", "{\"type\": \"ping\"}", ""),
		EV("content_block_delta", ANT_DELTA("Hello"), ""),
		EV("content_block_delta", ANT_DELTA(" w\\u00f6rld"), ""),
		EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}", ""),
		EV("message_delta", ANT_MDELTA, ""),
		EV("message_stop", "{\"type\":\"message_stop\"}", "")) },
	{ "anthropic stream over crlf without the last blank line",
	  IN("event: content_block_delta\r\ndata: " ANT_DELTA("Hi") "\r\n\r\n"
	     "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n"),
	  .at_finish = 1,
	  .ev = EVENTS(EV("content_block_delta", ANT_DELTA("Hi"), ""),
		       EV("message_stop", "{\"type\":\"message_stop\"}", "")) },
};

/* ==== transcripts ==== */

struct rec {
	struct buf log;
	int count;
	int stop_at;
};

static void put_esc(struct buf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, c);
	}
}

static void put_event(struct buf *b, const char *type, const char *data,
		      size_t data_len, const char *id, long retry, int done)
{
	buf_appends(b, "event=");
	put_esc(b, type, strlen(type));
	buf_appends(b, " id=");
	put_esc(b, id, strlen(id));
	buf_printf(b, " retry=%ld done=%d data=", retry, done);
	put_esc(b, data, data_len);
	buf_putc(b, '\n');
}

static int on_event(void *ud, const struct sse_event *ev)
{
	struct rec *r = ud;

	r->count++;
	if (!ev->event || !ev->data || !ev->id) {
		buf_appends(&r->log, "NULL field\n");
		return 0;
	}
	put_event(&r->log, ev->event, ev->data, ev->data_len, ev->id,
		  ev->retry, sse_is_done(ev));
	if (ev->data[ev->data_len] != '\0')
		buf_appends(&r->log, "data not NUL-terminated\n");
	return r->stop_at && r->count == r->stop_at ? STOP_RC : 0;
}

static void put_end(struct buf *b, int rc, const char *code, const char *msg)
{
	buf_printf(b, "rc=%d", rc);
	if (rc == -1)
		buf_printf(b, " err=%s: %s", code, msg);
}

/* The transcript a case must give. */
static void expect(const struct sse_case *c, struct buf *b)
{
	size_t i, n = 0;

	while (c->ev[n].data)
		n++;
	for (i = 0; i < n; i++) {
		const struct want *w = &c->ev[i];
		size_t len = w->data_len ? w->data_len : strlen(w->data);

		if (i + c->at_finish == n && (c->rc == 0 || c->at_finish))
			buf_appends(b, "-- finish --\n");
		put_event(b, w->event, w->data, len, w->id, w->retry,
			  len == 6 && memcmp(w->data, "[DONE]", 6) == 0);
	}
	if (c->at_finish == 0 && c->rc == 0)
		buf_appends(b, "-- finish --\n");
	put_end(b, c->rc, c->rc == -1 ? err_code_name(ERR_UPSTREAM_PROTOCOL) : "",
		c->err ? c->err : "");
}

/*
 * Feeds in[0..cut), then the rest in pieces of at most step bytes (0: in
 * one piece), then calls sse_finish(); appends the transcript to out.
 */
static void run(struct sse_parser *p, const struct sse_case *c,
		const char *in, size_t cut, size_t step, struct buf *out)
{
	struct rec r = { .stop_at = c->stop_at };
	struct err e;
	size_t i = cut, k;
	int rc;

	err_clear(&e);
	r.log = *out;
	rc = sse_feed(p, in, cut, on_event, &r, &e);
	while (!rc && i < c->len) {
		k = step && c->len - i > step ? step : c->len - i;
		rc = sse_feed(p, in + i, k, on_event, &r, &e);
		i += k;
	}
	if (!rc) {
		buf_appends(&r.log, "-- finish --\n");
		rc = sse_finish(p, on_event, &r, &e);
	}
	put_end(&r.log, rc, err_code_name(e.code), e.msg);
	*out = r.log;
}

static void run_new(const struct sse_case *c, const char *in, size_t cut,
		    size_t step, struct buf *out)
{
	struct sse_parser p;

	sse_init(&p, c->max_line);
	run(&p, c, in, cut, step, out);
	sse_release(&p);
}

/* ==== guarded input ==== */

struct guard {
	char *base;
	size_t size;
};

/* Copies in to the very end of a readable area that an unreadable page ends. */
static char *guard_copy(struct guard *g, const char *in, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t body = (len + pg - 1) / pg * pg;

	if (!body)
		body = pg;
	g->size = body + pg;
	g->base = mmap(NULL, g->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->base == MAP_FAILED || mprotect(g->base + body, pg, PROT_NONE)) {
		perror("mmap");
		exit(1);
	}
	if (len)
		memcpy(g->base + body - len, in, len);
	return g->base + body - len;
}

static void guard_free(struct guard *g)
{
	munmap(g->base, g->size);
}

/* ==== the drivers ==== */

/*
 * Runs one case in every mode.  Splits are tried at every position when
 * stride is 1; for big inputs, at every position within window bytes of
 * either end and every stride bytes in between.  step is the piece size of
 * the "small pieces" mode (1: one byte at a time).
 */
static void check_case(const struct sse_case *c, size_t window, size_t stride,
		       size_t step)
{
	struct buf want, got;
	struct guard g;
	struct sse_parser p;
	const char *in;
	size_t k, bad = (size_t)-1;

	buf_init(&want, 0);
	buf_init(&got, 0);
	expect(c, &want);
	in = guard_copy(&g, c->in, c->len);

	run_new(c, in, c->len, 0, &got);
	is_str(got.ptr, want.ptr, "%s: whole", c->name);

	if (c->rc == 0) {
		/* sse_finish() resets: a second stream on the same parser. */
		sse_init(&p, c->max_line);
		buf_clear(&got);
		run(&p, c, in, c->len, 0, &got);
		buf_clear(&got);
		run(&p, c, in, c->len, 0, &got);
		sse_release(&p);
		is_str(got.ptr, want.ptr, "%s: whole, parser reused", c->name);
	}

	for (k = 0; k <= c->len;
	     k += k < window || c->len - k <= window ? 1 : stride) {
		buf_clear(&got);
		run_new(c, in, k, 0, &got);
		if (strcmp(got.ptr, want.ptr) != 0) {
			bad = k;
			break;
		}
	}
	if (!ok(bad == (size_t)-1, "%s: split in two at every byte", c->name))
		printf("#   first bad split at %zu\n#   got:  '%s'\n#   want: '%s'\n",
		       bad, got.ptr, want.ptr);

	buf_clear(&got);
	run_new(c, in, 0, step, &got);
	is_str(got.ptr, want.ptr, "%s: %zu byte%s at a time", c->name, step,
	       step == 1 ? "" : "s");

	guard_free(&g);
	buf_release(&want);
	buf_release(&got);
}

/* A line of len bytes, "data: xyz...", followed by ending, and its event. */
static void check_long_line(const char *name, size_t len, size_t max_line,
			    const char *ending, size_t window, size_t stride,
			    size_t step)
{
	size_t i, elen = strlen(ending);
	char *in = xmalloc(len + elen);
	struct want ev[2] = { END, END };
	struct sse_case c = { name, in, len + elen, max_line, 0, NULL, 0, 0, ev };
	char msg[80];

	memcpy(in, "data: ", 6);
	for (i = 6; i < len; i++)
		in[i] = (char)('a' + i % 26);
	memcpy(in + len, ending, elen);
	if (len > (max_line ? max_line : SSE_DEFAULT_MAX_LINE)) {
		c.rc = -1;
		snprintf(msg, sizeof(msg), "event-stream line longer than %zu bytes",
			 max_line ? max_line : (size_t)SSE_DEFAULT_MAX_LINE);
		c.err = msg;
	} else {
		char *data = xstrndup(in + 6, len - 6);

		ev[0] = (struct want){ "", data, "", -1, len - 6 };
		c.at_finish = strcmp(ending, "\n\n") != 0;
	}
	check_case(&c, window, stride, step);
	free((char *)ev[0].data);
	free(in);
}

static void test_is_done(void)
{
	static const struct {
		const char *data;
		size_t len;
		int done;
	} t[] = {
		{ "[DONE]", 6, 1 },
		{ "[DONE] ", 7, 0 },
		{ " [DONE]", 7, 0 },
		{ "x[DONE]", 7, 0 },
		{ "[DONE]\n", 7, 0 },
		{ "[DONE", 5, 0 },
		{ "[done]", 6, 0 },
		{ "", 0, 0 },
		{ "[DONE]\0", 7, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct sse_event ev = { "", t[i].data, t[i].len, "", -1 };

		is_int(sse_is_done(&ev), t[i].done, "sse_is_done case %zu", i);
	}
}

static int count_event(void *ud, const struct sse_event *ev)
{
	(void)ev;
	(*(int *)ud)++;
	return 0;
}

/* Odd calls: empty feeds against the guard page, a fresh default cap. */
static void test_edges(void)
{
	struct sse_parser p;
	struct guard g;
	struct err e;
	char *end;
	int n = 0;

	sse_init(&p, 0);
	is_int(p.max_line, SSE_DEFAULT_MAX_LINE, "max_line 0 means the default");
	end = guard_copy(&g, "", 0);
	is_int(sse_feed(&p, end, 0, count_event, &n, &e), 0,
	       "empty feed that points at the guard page");
	is_int(sse_feed(&p, "data: x\r", 8, count_event, &n, &e), 0,
	       "feed ending in cr");
	is_int(sse_feed(&p, end, 0, count_event, &n, &e), 0,
	       "empty feed after a cr");
	is_int(sse_feed(&p, "\n\n", 2, count_event, &n, &e), 0,
	       "lf after an empty feed still completes the crlf");
	is_int(n, 1, "one event");
	is_int(sse_finish(&p, count_event, &n, &e), 0, "finish");
	is_int(sse_finish(&p, count_event, &n, &e), 0, "finish twice");
	is_int(n, 1, "finish of an empty parser dispatches nothing");
	sse_release(&p);
	guard_free(&g);
}

/* Many short data lines cannot grow one event past the cap. */
static void test_event_cap(void)
{
	struct sse_parser p;
	struct err e;
	int n = 0, rc = 0;

	sse_init(&p, 64);
	for (int i = 0; i < 40 && rc == 0; i++)
		rc = sse_feed(&p, "data: 0123456789\n", 17, count_event, &n, &e);
	is_int(rc, -1, "an event of many data lines past the cap fails");
	is_int(e.code, ERR_UPSTREAM_PROTOCOL, "as a protocol error");
	is_str(e.msg, "event-stream event larger than 256 bytes", "saying why");
	is_int(n, 0, "nothing dispatched");
	sse_release(&p);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], 0, 1, 1);
	check_long_line("100 KiB data line", 100 * 1024, 0, "\n\n",
			256, 4093, 1);
	check_long_line("100 KiB data line, crlf, no blank line", 100 * 1024,
			0, "\r\n", 256, 4093, 1);
	check_long_line("line at the default cap", SSE_DEFAULT_MAX_LINE, 0,
			"\n\n", 4, 1 << 20, 65536);
	check_long_line("line over the default cap", SSE_DEFAULT_MAX_LINE + 1,
			0, "\n\n", 4, 1 << 20, 65536);
	test_is_done();
	test_edges();
	test_event_cap();
	return tap_done();
}
