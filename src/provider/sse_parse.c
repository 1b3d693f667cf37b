/*
 * sse_parse.c - incremental Server-Sent Events parser; see sse.h.
 *
 * Bytes are cut into lines with memchr over each feed: a line that ends
 * inside the feed that started it is handled in place, with no copy; only
 * the unfinished tail of a feed is kept in p->line until a later feed ends
 * it.  The next LF and the next CR found are remembered for the rest of the
 * feed, so each byte is scanned at most once per terminator kind even when
 * a stream uses only one of them.
 *
 * Invariants between calls: p->cr is set when the last byte consumed was a
 * CR, so an LF at the start of the next feed completes that line ending
 * instead of ending an empty line; p->bom counts the BOM bytes matched at
 * stream start (3 once the BOM was skipped or ruled out); p->line never
 * holds more than max_line bytes; has_data is set when a data line touched
 * the event being built.
 *
 * After an error (-1) the partial line and the event being built are
 * dropped; the stream is broken and the caller should stop feeding it.
 */
#include "aichat/sse.h"

#include <limits.h>
#include <string.h>

static const unsigned char bom_bytes[3] = { 0xEF, 0xBB, 0xBF };

void sse_init(struct sse_parser *p, size_t max_line)
{
	buf_init(&p->line, 0);
	buf_init(&p->data, 0);
	buf_init(&p->event, 0);
	buf_init(&p->id, 0);
	p->retry = -1;
	p->max_line = max_line ? max_line : SSE_DEFAULT_MAX_LINE;
	p->bom = 0;
	p->cr = 0;
	p->has_data = 0;
}

void sse_release(struct sse_parser *p)
{
	buf_release(&p->line);
	buf_release(&p->data);
	buf_release(&p->event);
	buf_release(&p->id);
}

/* Back to the state of a fresh stream, keeping the storage for reuse. */
static void sse_reset(struct sse_parser *p)
{
	buf_clear(&p->line);
	buf_clear(&p->data);
	buf_clear(&p->event);
	buf_clear(&p->id);
	p->retry = -1;
	p->bom = 0;
	p->cr = 0;
	p->has_data = 0;
}

static int sse_too_long(struct sse_parser *p, struct err *e)
{
	buf_clear(&p->line);
	buf_clear(&p->data);
	buf_clear(&p->event);
	p->has_data = 0;
	p->cr = 0;
	return err_set(e, ERR_UPSTREAM_PROTOCOL,
		       "event-stream line longer than %zu bytes", p->max_line);
}

/* Adds n bytes to the pending line; -1 when the line would pass the cap. */
static int sse_line_add(struct sse_parser *p, const char *s, size_t n,
			struct err *e)
{
	if (n > p->max_line - p->line.len)
		return sse_too_long(p, e);
	if (buf_append(&p->line, s, n) < 0)
		return sse_too_long(p, e);
	return 0;
}

/*
 * Blank line: hands the event to fn when a data line was seen, then starts
 * the next event (the id and retry persist, the event type does not).
 */
static int sse_dispatch(struct sse_parser *p, sse_event_fn fn, void *ud)
{
	struct sse_event ev;
	int rc = 0;

	if (p->has_data && fn) {
		ev.event = p->event.ptr;
		ev.data = p->data.ptr;
		ev.data_len = p->data.len;
		ev.id = p->id.ptr;
		ev.retry = p->retry;
		rc = fn(ud, &ev);
	}
	buf_clear(&p->data);
	buf_clear(&p->event);
	p->has_data = 0;
	return rc;
}

/* retry: only a non-empty run of ASCII digits that fits a long counts. */
static void sse_retry(struct sse_parser *p, const char *v, size_t n)
{
	long ms = 0;
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n; i++) {
		int d = v[i] - '0';

		if (v[i] < '0' || v[i] > '9')
			return;
		if (ms > (LONG_MAX - d) / 10)
			return;
		ms = ms * 10 + d;
	}
	p->retry = ms;
}

#define FIELD_IS(name, s, n) \
	((n) == sizeof(name) - 1 && memcmp((s), (name), (n)) == 0)

/* One line without its terminator; l need not be NUL-terminated. */
static int sse_line(struct sse_parser *p, const char *l, size_t n,
		    sse_event_fn fn, void *ud, struct err *e)
{
	const char *colon, *v;
	size_t name_len, vn;

	if (n == 0)
		return sse_dispatch(p, fn, ud);
	if (l[0] == ':')
		return 0;
	colon = memchr(l, ':', n);
	if (colon) {
		name_len = (size_t)(colon - l);
		v = colon + 1;
		vn = n - name_len - 1;
		if (vn && *v == ' ') {
			v++;
			vn--;
		}
	} else {
		name_len = n;
		v = l + n;
		vn = 0;
	}
	/* Data, event and id fit: each is part of a line below max_line. */
	if (FIELD_IS("data", l, name_len)) {
		/* Many short data lines must not grow one event without
		 * bound either: an event is capped at four lines' worth. */
		if (p->data.len + 1 + vn > SSE_EVENT_LINES * p->max_line) {
			buf_clear(&p->data);
			buf_clear(&p->event);
			p->has_data = 0;
			return err_set(e, ERR_UPSTREAM_PROTOCOL,
				       "event-stream event larger than %zu bytes",
				       SSE_EVENT_LINES * p->max_line);
		}
		if (p->has_data)
			buf_putc(&p->data, '\n');
		buf_append(&p->data, v, vn);
		p->has_data = 1;
	} else if (FIELD_IS("event", l, name_len)) {
		buf_clear(&p->event);
		buf_append(&p->event, v, vn);
	} else if (FIELD_IS("id", l, name_len)) {
		if (!memchr(v, '\0', vn)) {
			buf_clear(&p->id);
			buf_append(&p->id, v, vn);
		}
	} else if (FIELD_IS("retry", l, name_len)) {
		sse_retry(p, v, vn);
	}
	return 0;
}

/* Index of the first c in s[i..n), or n. */
static size_t sse_find(const char *s, size_t i, size_t n, char c)
{
	const char *q = memchr(s + i, c, n - i);

	return q ? (size_t)(q - s) : n;
}

int sse_feed(struct sse_parser *p, const char *s, size_t n,
	     sse_event_fn fn, void *ud, struct err *e)
{
	size_t i = 0, lf, cr, eol, len;
	int rc;

	while (p->bom < 3 && i < n) {
		if ((unsigned char)s[i] == bom_bytes[p->bom]) {
			p->bom++;
			i++;
			continue;
		}
		/* Not a BOM after all: the bytes matched so far are text. */
		len = p->bom;
		p->bom = 3;
		if (sse_line_add(p, (const char *)bom_bytes, len, e) < 0)
			return -1;
	}
	if (i == n)
		return 0;
	lf = sse_find(s, i, n, '\n');
	cr = sse_find(s, i, n, '\r');
	while (i < n) {
		if (p->cr) {
			p->cr = 0;
			if (s[i] == '\n') {
				i++;
				continue;
			}
		}
		if (lf < i)
			lf = sse_find(s, i, n, '\n');
		if (cr < i)
			cr = sse_find(s, i, n, '\r');
		eol = lf < cr ? lf : cr;
		len = eol - i;
		if (eol == n)
			return sse_line_add(p, s + i, len, e);
		if (p->line.len) {
			if (sse_line_add(p, s + i, len, e) < 0)
				return -1;
			rc = sse_line(p, p->line.ptr, p->line.len, fn, ud, e);
			buf_clear(&p->line);
		} else {
			if (len > p->max_line)
				return sse_too_long(p, e);
			rc = sse_line(p, s + i, len, fn, ud, e);
		}
		p->cr = s[eol] == '\r';
		i = eol + 1;
		if (rc)
			return rc;
	}
	return 0;
}

int sse_finish(struct sse_parser *p, sse_event_fn fn, void *ud,
	       struct err *e)
{
	int rc = 0;

	if (p->bom > 0 && p->bom < 3 &&
	    sse_line_add(p, (const char *)bom_bytes, p->bom, e) < 0)
		rc = -1;
	if (!rc && p->line.len)
		rc = sse_line(p, p->line.ptr, p->line.len, fn, ud, e);
	if (!rc)
		rc = sse_dispatch(p, fn, ud);
	sse_reset(p);
	return rc;
}

int sse_is_done(const struct sse_event *ev)
{
	return ev && ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0;
}
