/*
 * fuzz_sse.c - the SSE parser (src/provider/sse_parse.c), differentially.
 *
 * Input: one byte for the line cap (small, so the too-long paths run), one
 * byte for how many cut points follow, the cut points, then the stream.
 * The stream is parsed three ways -- in one feed, in feeds cut at the
 * chosen points, one byte at a time -- and each way must give the same
 * events (type, data, id, retry) and the same outcome (ok or error); when
 * no cap is passed, they must be the events a plain reading of the
 * WHATWG rules (reference() below) gives.  Every event's data is
 * NUL-terminated at its length.
 */
#include "fuzz.h"

#include "aichat/buf.h"
#include "aichat/sse.h"

#include <limits.h>
#include <string.h>

#define MAX_CUTS 16

/* The events of one parse, flattened into text. */
static int record(void *ud, const struct sse_event *ev)
{
	struct buf *b = ud;

	FUZZ_CHECK(ev->data[ev->data_len] == '\0', "data not NUL-terminated");
	FUZZ_CHECK(ev->event && ev->id, "NULL event or id");
	FUZZ_CHECK(ev->retry >= -1, "retry %ld", ev->retry);
	buf_printf(b, "event=%zu:", strlen(ev->event));
	buf_appends(b, ev->event);
	buf_printf(b, " id=%zu:", strlen(ev->id));
	buf_appends(b, ev->id);
	buf_printf(b, " retry=%ld data=%zu:", ev->retry, ev->data_len);
	buf_append(b, ev->data, ev->data_len);
	buf_putc(b, '\n');
	return 0;
}

/* Parses s[0..n) fed as the pieces between cuts (sorted, in 0..n). */
static void parse(const char *s, size_t n, size_t max_line,
		  const size_t *cuts, size_t ncuts, struct buf *out)
{
	struct sse_parser p;
	struct err e;
	size_t at = 0;
	int rc = 0;

	err_clear(&e);
	sse_init(&p, max_line);
	for (size_t i = 0; i <= ncuts && !rc; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		if (end < at)
			continue;
		rc = sse_feed(&p, s + at, end - at, record, out, &e);
		at = end;
	}
	if (!rc)
		rc = sse_finish(&p, record, out, &e);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FUZZ_CHECK(rc == 0 || e.code == ERR_UPSTREAM_PROTOCOL,
		   "error code %d", e.code);
	buf_printf(out, "rc=%d\n", rc);
	sse_release(&p);
}

/* ==== a reference: the WHATWG rules, written for clarity, not speed ==== */

struct ref {
	struct buf data, event, id;
	long retry;
	int has_data;
};

static void ref_line(struct ref *r, const char *l, size_t n, struct buf *out)
{
	const char *colon = memchr(l, ':', n), *v = l + n;
	size_t name = n, vn = 0;

	if (n == 0) {
		if (r->has_data) {
			struct sse_event ev = { r->event.ptr, r->data.ptr, r->data.len,
						r->id.ptr, r->retry };
			record(out, &ev);
		}
		buf_clear(&r->data);
		buf_clear(&r->event);
		r->has_data = 0;
		return;
	}
	if (l[0] == ':')
		return;
	if (colon) {
		name = (size_t)(colon - l);
		v = colon + 1;
		vn = n - name - 1;
		if (vn && *v == ' ') {
			v++;
			vn--;
		}
	}
	if (name == 4 && !memcmp(l, "data", 4)) {
		if (r->has_data)
			buf_putc(&r->data, '\n');
		buf_append(&r->data, v, vn);
		r->has_data = 1;
	} else if (name == 5 && !memcmp(l, "event", 5)) {
		buf_clear(&r->event);
		buf_append(&r->event, v, vn);
	} else if (name == 2 && !memcmp(l, "id", 2)) {
		if (!memchr(v, '\0', vn)) {
			buf_clear(&r->id);
			buf_append(&r->id, v, vn);
		}
	} else if (name == 5 && !memcmp(l, "retry", 5) && vn) {
		long ms = 0;
		size_t i;

		for (i = 0; i < vn && v[i] >= '0' && v[i] <= '9'; i++) {
			if (ms > (LONG_MAX - (v[i] - '0')) / 10)
				break;
			ms = ms * 10 + (v[i] - '0');
		}
		if (i == vn)
			r->retry = ms;
	}
}

/* The events of s[0..n) by the reference, as parse() records them. */
static void reference(const char *s, size_t n, struct buf *out)
{
	struct ref r;
	size_t i = 0;

	buf_init(&r.data, 0);
	buf_init(&r.event, 0);
	buf_init(&r.id, 0);
	r.retry = -1;
	r.has_data = 0;
	if (n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < n) {
		size_t e = i;

		while (e < n && s[e] != '\n' && s[e] != '\r')
			e++;
		if (e == n) {
			ref_line(&r, s + i, e - i, out);   /* the last, unended */
			break;
		}
		ref_line(&r, s + i, e - i, out);
		i = e + 1;
		if (s[e] == '\r' && i < n && s[i] == '\n')
			i++;
	}
	ref_line(&r, "", 0, out);   /* the end dispatches what is pending */
	buf_printf(out, "rc=0\n");
	buf_release(&r.data);
	buf_release(&r.event);
	buf_release(&r.id);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	size_t max_line = 8 + fuzz_byte(&in);
	size_t ncuts = fuzz_byte(&in) % (MAX_CUTS + 1), cuts[MAX_CUTS];
	struct buf whole, cut, bytes;
	const char *s;
	size_t n;

	for (size_t i = 0; i < ncuts; i++)
		cuts[i] = fuzz_byte(&in) | fuzz_byte(&in) << 8;
	s = (const char *)in.p;
	n = in.n;
	for (size_t i = 0; i < ncuts; i++)
		cuts[i] = n ? cuts[i] % (n + 1) : 0;
	qsort(cuts, ncuts, sizeof(*cuts), cmp_size);

	buf_init(&whole, 0);
	buf_init(&cut, 0);
	buf_init(&bytes, 0);
	parse(s, n, max_line, NULL, 0, &whole);
	parse(s, n, max_line, cuts, ncuts, &cut);
	{
		/* One feed per byte: cuts at every position. */
		struct sse_parser p;
		struct err e;
		int rc = 0;

		err_clear(&e);
		sse_init(&p, max_line);
		for (size_t i = 0; i < n && !rc; i++)
			rc = sse_feed(&p, s + i, 1, record, &bytes, &e);
		if (!rc)
			rc = sse_finish(&p, record, &bytes, &e);
		buf_printf(&bytes, "rc=%d\n", rc);
		sse_release(&p);
	}
	FUZZ_CHECK(whole.len == cut.len && !memcmp(whole.ptr, cut.ptr, cut.len),
		   "whole vs cut:\n%s---\n%s", whole.ptr, cut.ptr);
	FUZZ_CHECK(whole.len == bytes.len && !memcmp(whole.ptr, bytes.ptr, bytes.len),
		   "whole vs bytes:\n%s---\n%s", whole.ptr, bytes.ptr);
	/* Within the caps, the spec's events. */
	if (whole.len >= 5 && !memcmp(whole.ptr + whole.len - 5, "rc=0\n", 5)) {
		struct buf ref;

		buf_init(&ref, 0);
		reference(s, n, &ref);
		FUZZ_CHECK(whole.len == ref.len && !memcmp(whole.ptr, ref.ptr, ref.len),
			   "parser vs reference:\n%s---\n%s", whole.ptr, ref.ptr);
		buf_release(&ref);
	}
	buf_release(&whole);
	buf_release(&cut);
	buf_release(&bytes);
	return 0;
}
