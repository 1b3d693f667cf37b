/*
 * fuzz_sse.c - the SSE parser (src/provider/sse_parse.c), differentially.
 *
 * Input: one byte for the line cap (small, so the too-long paths run), one
 * byte for how many cut points follow, the cut points, then the stream.
 * The stream is parsed three ways -- in one feed, in feeds cut at the
 * chosen points, one byte at a time -- and each way must give the same
 * events (type, data, id, retry) and the same outcome (ok or error).
 * Every event's data length must match its NUL-terminated text's bound.
 */
#include "fuzz.h"

#include "aichat/buf.h"
#include "aichat/sse.h"

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
	buf_release(&whole);
	buf_release(&cut);
	buf_release(&bytes);
	return 0;
}
