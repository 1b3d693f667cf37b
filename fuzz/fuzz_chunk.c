/*
 * fuzz_chunk.c - the rag chunker (src/core/rag.c): rag_chunk() over the
 * text, and rag_chunk_stream() over it read in pieces of chosen sizes
 * through a chosen window.
 *
 * Input: size, overlap, window and read-size bytes, then the text.
 * Properties: spans lie inside the text, in order, non-empty, with no
 * blank at either end, and cover every non-blank byte; their line numbers
 * are those of their first and last bytes.  Streamed: the hash is the
 * hash of all bytes read, a text with a NUL stops with 1, chunks are
 * strictly valid UTF-8 (rag stores them as text and serves them as JSON),
 * non-empty, unpadded, line_last - line_first is the newlines they hold,
 * and one window larger than the text gives exactly rag_chunk()'s chunks.
 */
#include "fuzz.h"

#include "aichat/rag.h"

#include <string.h>

static int blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

static size_t newlines(const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

struct reader {
	const char *s;
	size_t n, at;
	unsigned step;   /* read sizes cycle through 1..step */
	unsigned k;
};

static ssize_t rd(void *ctx, char *p, size_t n)
{
	struct reader *r = ctx;
	size_t want = 1 + r->k++ % r->step;

	if (want > n)
		want = n;
	if (want > r->n - r->at)
		want = r->n - r->at;
	memcpy(p, r->s + r->at, want);
	r->at += want;
	return (ssize_t)want;
}

struct sink {
	struct rag_span *whole;  /* to compare with, or NULL */
	size_t nwhole, n;
	const char *text;
	int last_line;
	int same;
};

static int take(void *ctx, const char *s, size_t len, int first, int last)
{
	struct sink *k = ctx;

	FUZZ_CHECK(len > 0, "empty chunk");
	FUZZ_CHECK(!blank((unsigned char)s[0]) && !blank((unsigned char)s[len - 1]),
		   "chunk padded: '%.*s'", (int)len, s);
	FUZZ_CHECK(fuzz_utf8_valid((const unsigned char *)s, len),
		   "chunk %zu is not UTF-8: '%.*s'", k->n, (int)len, s);
	FUZZ_CHECK(first >= 1 && first >= k->last_line - (int)newlines(s, len) - 1,
		   "line %d after %d", first, k->last_line);
	FUZZ_CHECK((size_t)(last - first) == newlines(s, len),
		   "lines %d..%d for %zu newlines", first, last, newlines(s, len));
	if (k->whole) {
		if (k->n >= k->nwhole || k->whole[k->n].len != len ||
		    memcmp(k->text + k->whole[k->n].off, s, len) ||
		    k->whole[k->n].line_first != first ||
		    k->whole[k->n].line_last != last)
			k->same = 0;
	}
	k->last_line = last;
	k->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	/* Sizes from 4 (the longest UTF-8 character: below that a hard cut
	 * must split one; rag's callers take 100 and up) and any overlap. */
	size_t csize = 4 + fuzz_byte(&in) * 2, overlap = fuzz_byte(&in) % (csize + 8);
	size_t win = 1 + fuzz_byte(&in) * 16;
	unsigned step = 1 + fuzz_byte(&in) * 4;
	const char *t = (const char *)in.p;
	size_t len = in.n, n, next = 0;
	struct rag_span *v = NULL;

	/* ==== rag_chunk ==== */
	n = rag_chunk(t, len, csize, overlap, &v);
	for (size_t i = 0; i < n; i++) {
		size_t off = v[i].off, l = v[i].len;

		FUZZ_CHECK(off < len && l > 0 && l <= len - off,
			   "span %zu: %zu+%zu of %zu", i, off, l, len);
		FUZZ_CHECK(!blank((unsigned char)t[off]) &&
			   !blank((unsigned char)t[off + l - 1]), "span %zu padded", i);
		FUZZ_CHECK(i == 0 || off >= v[i - 1].off, "span %zu before %zu", i, i - 1);
		FUZZ_CHECK(v[i].line_first == 1 + (int)newlines(t, off) &&
			   v[i].line_last == v[i].line_first + (int)newlines(t + off, l),
			   "span %zu: lines %d..%d", i, v[i].line_first, v[i].line_last);
		/* Every non-blank byte before this span is in an earlier one. */
		for (; next < off; next++)
			FUZZ_CHECK(blank((unsigned char)t[next]),
				   "byte %zu ('%c') in no chunk", next, t[next]);
		if (next < off + l)
			next = off + l;
	}
	for (; next < len; next++)
		FUZZ_CHECK(blank((unsigned char)t[next]), "byte %zu in no chunk", next);

	/* ==== rag_chunk_stream ==== */
	{
		struct reader r = { t, len, 0, step, 0 };
		struct sink k = { NULL, 0, 0, t, 0, 1 };
		uint64_t hash, want = rag_hash(RAG_HASH_INIT, t, len);
		size_t nchunks;
		int nul = memchr(t, '\0', len) != NULL;
		int rc = rag_chunk_stream(rd, &r, win, csize, overlap, take, &k,
					  &hash, &nchunks);

		FUZZ_CHECK(rc == (nul ? 1 : 0), "rc %d", rc);
		FUZZ_CHECK(nul || hash == want, "hash");
		FUZZ_CHECK(nul || nchunks == k.n, "%zu chunks, %zu emitted", nchunks, k.n);

		/* One window for the whole (valid UTF-8) text: rag_chunk's. */
		if (!nul && fuzz_utf8_valid(in.p, len)) {
			struct reader r1 = { t, len, 0, step, 0 };
			struct sink k1 = { v, n, 0, t, 0, 1 };

			rc = rag_chunk_stream(rd, &r1, len + 4 * overlap + 512, csize,
					      overlap, take, &k1, &hash, &nchunks);
			FUZZ_CHECK(rc == 0 && k1.same && k1.n == n,
				   "one window: %zu chunks, rag_chunk %zu", k1.n, n);
		}
	}
	free(v);
	return 0;
}
