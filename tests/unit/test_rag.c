/*
 * test_rag.c - unit tests for the pure parts of the RAG service
 * (src/core/rag.c): the FTS5 query sanitizer, collection names, and the
 * chunker.  Table-driven; the chunker's invariants (every chunk within its
 * bounds, no blank edges, lines consistent with the offsets) are checked
 * for every case, then what each case is about; the streamed chunker
 * against it, window by window.  Then the vector
 * helpers: cosine, normalization, reciprocal rank fusion, and mock:embed's
 * vectors (close for shared words, unit length, deterministic); the
 * in-memory dot product and top-k; and, on a real store, which words a
 * search ranks by.
 */
#include "aichat/embed.h"
#include "aichat/rag.h"
#include "aichat/store.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *in, *want;          /* want NULL: no words */
} fts_cases[] = {
	{ "hello world", "\"hello\" OR \"world\"" },
	{ "\"foo\" OR bar*", "\"foo\" OR \"OR\" OR \"bar\"" },
	{ "NEAR(", "\"NEAR\"" },
	{ "col:quokka ^x", "\"col\" OR \"quokka\" OR \"x\"" },
	{ "don't", "\"don\" OR \"t\"" },
	{ "caf\xc3\xa9 na\xc3\xafve", "\"caf\xc3\xa9\" OR \"na\xc3\xafve\"" },
	{ "*** ((( \" - :", NULL },
	{ "", NULL },
};

static const struct {
	const char *name;
	int ok;
} name_cases[] = {
	{ "default", 1 }, { "a", 1 }, { "Docs-2024_v1.0", 1 },
	{ "", 0 }, { "a/b", 0 }, { "..", 1 }, { "x'y", 0 }, { "a\"b", 0 },
	{ "x; DROP TABLE chunks", 0 }, { "sp ace", 0 }, { "caf\xc3\xa9", 0 },
	{ "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 1 },
	{ "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", 0 },
};

/* Checks what holds for every chunking; returns the chunk count. */
static size_t chunk_checked(const char *t, size_t size, size_t overlap,
			    struct rag_span **out, const char *what)
{
	size_t len = strlen(t), n = rag_chunk(t, len, size, overlap, out);
	int good = 1;

	for (size_t i = 0; i < n; i++) {
		const struct rag_span *s = &(*out)[i];
		int line = 1;
		for (size_t j = 0; j < s->off; j++)
			line += t[j] == '\n';
		if (s->len == 0 || s->off + s->len > len ||
		    strchr(" \n\t", t[s->off]) || strchr(" \n\t", t[s->off + s->len - 1]) ||
		    s->line_first != line || s->line_last < s->line_first ||
		    (i > 0 && s->off <= (*out)[i - 1].off))
			good = 0;
	}
	ok(good, "%s: chunks within bounds, trimmed, lines right", what);
	return n;
}

static int span_is(const char *t, const struct rag_span *s, const char *want)
{
	return s->len == strlen(want) && !memcmp(t + s->off, want, s->len);
}

static void test_chunker(void)
{
	struct rag_span *v;
	size_t n;
	const char *md =
		"# One\n\nFirst paragraph.\n\nSecond paragraph.\n\n"
		"## Two\n\nText of two.\n";
	const char *code =
		"Intro words here.\n\n```c\nint f(void)\n{\n\treturn 1;\n}\n```\n\nAfter.\n";
	char big[4000];

	/* Headings start chunks; small paragraphs of a section pack together. */
	n = chunk_checked(md, 1000, 0, &v, "headings");
	is_int(n, 2, "two sections, two chunks");
	ok(n == 2 && span_is(md, &v[0], "# One\n\nFirst paragraph.\n\nSecond paragraph."),
	   "first section whole");
	ok(n == 2 && span_is(md, &v[1], "## Two\n\nText of two."), "second section");
	ok(n == 2 && v[1].line_first == 7 && v[1].line_last == 9, "lines 7-9");
	free(v);

	/* Paragraphs split when the section is larger than the size. */
	n = chunk_checked(md, 24, 0, &v, "paragraphs");
	ok(n == 3 && span_is(md, &v[1], "Second paragraph."), "a section larger than the size splits at its paragraphs");
	free(v);

	/* A fenced code block that fits stays whole. */
	n = chunk_checked(code, 40, 0, &v, "code");
	int whole = 0;
	for (size_t i = 0; i < n; i++)
		if (strstr(code + v[i].off, "```c") == code + v[i].off &&
		    v[i].len >= strlen("```c\nint f(void)\n{\n\treturn 1;\n}\n```"))
			whole = 1;
	ok(whole, "the code block is one chunk");
	free(v);

	/* Sentences, then spaces, split a long paragraph; with overlap. */
	memset(big, 0, sizeof(big));
	for (int i = 0; i < 60; i++)
		strcat(big, "This is sentence number xx of the text. ");
	n = chunk_checked(big, 200, 50, &v, "sentences with overlap");
	ok(n >= 10, "a long paragraph makes many chunks (%zu)", n);
	int sized = 1, overlapped = 1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].len > 200 + 50)
			sized = 0;
		if (i > 0 && v[i].off >= v[i - 1].off + v[i - 1].len)
			overlapped = 0;
	}
	ok(sized, "chunks at most size + overlap");
	ok(overlapped, "each chunk repeats the end of the one before");
	ok(n > 0 && span_is(big, &v[0], "This is sentence number xx of the text. This is sentence number xx of the text. This is sentence number xx of the text. This is sentence number xx of the text. This is sentence number xx of the text."),
	   "first chunk ends at a sentence");
	free(v);

	/* One long word: cut at the size, never past it. */
	memset(big, 'x', 999);
	big[999] = '\0';
	n = chunk_checked(big, 100, 0, &v, "a word longer than the size");
	is_int(n, 10, "ten pieces");
	free(v);

	/* Blanks only: no chunk. */
	n = chunk_checked(" \n\n\t\n", 100, 10, &v, "blank text");
	is_int(n, 0, "no chunks");
	free(v);

	/* An unclosed fence runs to the end. */
	n = chunk_checked("text\n\n```\ncode\nmore", 1000, 0, &v, "unclosed fence");
	is_int(n, 1, "one chunk");
	free(v);
}

static int near(double a, double b)
{
	return fabs(a - b) < 1e-6;
}

static const struct {
	const int64_t a[4], b[4];
	size_t na, nb;
	const int64_t want[8];
	size_t nwant;
	const char *what;
} rrf_cases[] = {
	{ { 1, 2, 3 }, { 3, 2, 1 }, 3, 3, { 1, 3, 2 }, 3,
	  "the same ids reversed: first and last tie (a's order), above the middle" },
	{ { 1, 2 }, { 3, 4 }, 2, 2, { 1, 3, 2, 4 }, 4,
	  "disjoint lists interleave by rank, a first on ties" },
	{ { 5, 6, 7 }, { 7 }, 3, 1, { 7, 5, 6 }, 3,
	  "an id in both lists beats one in a single list" },
	{ { 0 }, { 9, 8 }, 0, 2, { 9, 8 }, 2, "a empty: b as it is" },
	{ { 4 }, { 0 }, 1, 0, { 4 }, 1, "b empty: a as it is" },
	{ { 0 }, { 0 }, 0, 0, { 0 }, 0, "both empty" },
};

static void test_vectors(void)
{
	float a[3] = { 1, 0, 0 }, b[3] = { 0, 2, 0 }, c[3] = { 3, 4, 0 };
	float z[3] = { 0, 0, 0 }, m[3] = { -2, 0, 0 };
	int64_t ids[8];
	double sc[8];

	ok(near(rag_cosine(a, a, 3), 1), "cosine of a vector with itself is 1");
	ok(near(rag_cosine(a, b, 3), 0), "orthogonal vectors: 0");
	ok(near(rag_cosine(a, m, 3), -1), "opposite vectors: -1");
	ok(near(rag_cosine(a, c, 3), 0.6), "cosine ignores length: 3/5");
	ok(near(rag_cosine(a, z, 3), 0), "a zero vector: 0, not NaN");
	rag_normalize(c, 3);
	ok(near(c[0], 0.6) && near(c[1], 0.8), "normalize scales to unit length");
	rag_normalize(z, 3);
	ok(z[0] == 0 && z[1] == 0 && z[2] == 0, "normalize leaves zeros alone");

	for (size_t i = 0; i < sizeof(rrf_cases) / sizeof(rrf_cases[0]); i++) {
		size_t n = rag_rrf(rrf_cases[i].a, rrf_cases[i].na, rrf_cases[i].b,
				   rrf_cases[i].nb, RAG_RRF_K, ids, sc);
		int same = n == rrf_cases[i].nwant;
		for (size_t j = 0; same && j < n; j++)
			same = ids[j] == rrf_cases[i].want[j] && (j == 0 || sc[j] <= sc[j - 1]);
		ok(same, "rrf: %s", rrf_cases[i].what);
	}
	rag_rrf(rrf_cases[0].a, 3, rrf_cases[0].b, 3, RAG_RRF_K, ids, sc);
	ok(near(sc[0], 1.0 / 61 + 1.0 / 63) && sc[0] == sc[1] && near(sc[2], 2.0 / 62),
	   "rrf scores are sums of 1 / (60 + rank)");

	float q[EMBED_MOCK_DIM], d1[EMBED_MOCK_DIM], d2[EMBED_MOCK_DIM], d3[EMBED_MOCK_DIM];
	double norm = 0;
	embed_mock("quokkas", q);
	embed_mock("The quokka lives on Rottnest Island.", d1);
	embed_mock("int main(void) { return zebrafish(); }", d2);
	embed_mock("the QUOKKA lives on rottnest island", d3);
	for (int i = 0; i < EMBED_MOCK_DIM; i++)
		norm += (double)d1[i] * d1[i];
	ok(near(norm, 1), "mock:embed vectors have unit length");
	ok(rag_cosine(q, d1, EMBED_MOCK_DIM) > rag_cosine(q, d2, EMBED_MOCK_DIM),
	   "mock:embed: a word form is closer to its word than to other text");
	ok(near(rag_cosine(d1, d3, EMBED_MOCK_DIM), 1),
	   "mock:embed ignores case and punctuation");
	embed_mock("", q);
	norm = 0;
	for (int i = 0; i < EMBED_MOCK_DIM; i++)
		norm += fabs(q[i]);
	ok(norm == 0, "mock:embed of no words is the zero vector");
}

/* ---- the streamed chunker ---- */

struct mem_reader {
	const char *p;
	size_t len, pos, step;         /* step: at most this many bytes a read */
	int fail_at;                   /* > 0: the read that starts there fails */
};

static ssize_t mem_read(void *ctx, char *p, size_t n)
{
	struct mem_reader *r = ctx;

	if (r->fail_at > 0 && r->pos >= (size_t)r->fail_at)
		return -1;
	if (n > r->step)
		n = r->step;
	if (n > r->len - r->pos)
		n = r->len - r->pos;
	memcpy(p, r->p + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

struct collected {
	struct rag_span *v;            /* off unused: text kept in texts */
	char **texts;
	size_t n, stop_after;
};

static int collect(void *ctx, const char *text, size_t len, int first, int last)
{
	struct collected *c = ctx;

	if (c->stop_after && c->n == c->stop_after)
		return -1;
	c->v = realloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->texts = realloc(c->texts, (c->n + 1) * sizeof(*c->texts));
	c->v[c->n].len = len;
	c->v[c->n].line_first = first;
	c->v[c->n].line_last = last;
	c->texts[c->n] = strndup(text, len);
	c->n++;
	return 0;
}

static void collected_free(struct collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->texts[i]);
	free(c->texts);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* Lines first..last of t, joined as in t. */
static char *lines_of(const char *t, int first, int last)
{
	const char *s = t, *e;
	int line = 1;

	while (line < first && (s = strchr(s, '\n')))
		s++, line++;
	if (!s)
		return strdup("");
	for (e = s; *e && (line < last || *e != '\n'); e++)
		line += *e == '\n';
	return strndup(s, (size_t)(e - s));
}

static void test_stream(void)
{
	struct collected c = { 0 };
	struct mem_reader r;
	struct rag_span *whole;
	char *text = calloc(1, 20000), *p;
	uint64_t h;
	size_t n, nw;
	int rc;

	/* A text of sections, paragraphs and a code block that a small window
	 * must cut through; UTF-8 characters everywhere, so 1-byte reads
	 * split them. */
	p = text;
	for (int i = 0; i < 40; i++) {
		p += sprintf(p, "## Section %d\n\nCaf\xc3\xa9 paragraph %d has some words. "
			     "It has a second sentence, na\xc3\xafve and long enough.\n\n", i, i);
		if (i == 20)
			p += sprintf(p, "```\nint f(void)\n{\n\treturn 20;\n}\n```\n\n");
	}

	/* A window larger than the text: exactly rag_chunk(). */
	r = (struct mem_reader){ text, strlen(text), 0, 7, 0 };
	rc = rag_chunk_stream(mem_read, &r, 1 << 20, 120, 30, collect, &c, &h, &n);
	nw = rag_chunk(text, strlen(text), 120, 30, &whole);
	int same = rc == 0 && n == nw && c.n == nw;
	for (size_t i = 0; same && i < nw; i++)
		same = c.v[i].len == whole[i].len &&
		       !memcmp(c.texts[i], text + whole[i].off, whole[i].len) &&
		       c.v[i].line_first == whole[i].line_first &&
		       c.v[i].line_last == whole[i].line_last;
	ok(same, "one window gives what rag_chunk gives (%zu chunks)", nw);
	ok(h == rag_hash(RAG_HASH_INIT, text, strlen(text)), "the hash is of every byte read");
	free(whole);
	collected_free(&c);

	/* Small windows, read a byte at a time. */
	r = (struct mem_reader){ text, strlen(text), 0, 1, 0 };
	rc = rag_chunk_stream(mem_read, &r, 300, 120, 30, collect, &c, &h, &n);
	is_int(rc, 0, "small windows: done");
	int at_lines = c.n > 0, sized = 1, code_whole = 0, no_bad = 1;
	for (size_t i = 0; i < c.n; i++) {
		char *l = lines_of(text, c.v[i].line_first, c.v[i].line_last);
		if (!strstr(l, c.texts[i]) || strncmp(l, c.texts[i], 1) > 0)
			at_lines = 0;
		if (c.v[i].len > 120 + 30)
			sized = 0;
		if (strstr(c.texts[i], "```\nint f(void)\n{\n\treturn 20;\n}\n```"))
			code_whole = 1;
		if (strchr(c.texts[i], '?'))
			no_bad = 0;
		free(l);
	}
	ok(at_lines, "every chunk's text is at the lines it names");
	ok(sized, "no chunk over size + overlap");
	ok(code_whole, "the code block stays whole across windows");
	ok(no_bad, "UTF-8 split between reads is kept, not replaced");
	int covered = 1;
	for (int i = 0; i < 40; i++) {
		char want[40];
		snprintf(want, sizeof(want), "paragraph %d has", i);
		int found = 0;
		for (size_t j = 0; j < c.n && !found; j++)
			found = strstr(c.texts[j], want) != NULL;
		covered &= found;
	}
	ok(covered, "no paragraph is lost between windows");
	ok(c.n > 0 && c.v[c.n - 1].line_last == 40 * 4 + 6,
	   "lines run on across windows: the last paragraph is on line 166 (%d)",
	   c.n ? c.v[c.n - 1].line_last : 0);
	collected_free(&c);

	/* Binary, a failing read, a failing sink. */
	memcpy(text + 5000, "\0\0", 2);
	r = (struct mem_reader){ text, 6000, 0, 4096, 0 };
	is_int(rag_chunk_stream(mem_read, &r, 300, 120, 30, collect, &c, &h, &n), 1,
	       "a NUL byte: binary");
	collected_free(&c);
	r = (struct mem_reader){ text, 4000, 0, 100, 2000 };
	is_int(rag_chunk_stream(mem_read, &r, 300, 120, 30, collect, &c, &h, &n),
	       RAG_STREAM_READ, "a read that fails");
	collected_free(&c);
	c.stop_after = 3;
	r = (struct mem_reader){ text, 4000, 0, 100, 0 };
	is_int(rag_chunk_stream(mem_read, &r, 300, 120, 30, collect, &c, &h, &n),
	       RAG_STREAM_EMIT, "a sink that fails stops the stream");
	is_int(c.n, 3, "after three chunks");
	collected_free(&c);

	/* Bytes that are not UTF-8 become '?'. */
	r = (struct mem_reader){ "ok \xff\xfe text", 10, 0, 3, 0 };
	rag_chunk_stream(mem_read, &r, 300, 120, 30, collect, &c, &h, &n);
	ok(c.n == 1 && !strcmp(c.texts[0], "ok ?? text"), "invalid bytes become '?'");
	collected_free(&c);
	free(text);
}

/* The in-memory kernel against a plain loop, and brute-force top-k. */
static void test_dense(void)
{
	static float a[1541], b[1541];
	struct rag_vectors vs = { 0 };
	int64_t ids[3];
	float sims[3];
	double want = 0;
	size_t n;

	for (int i = 0; i < 1541; i++) {
		a[i] = (float)((i * 37) % 101 - 50) / 50.0f;
		b[i] = (float)((i * 53) % 89 - 44) / 44.0f;
		want += (double)a[i] * b[i];
	}
	ok(fabs(rag_dot(a, b, 1541) - want) < 1e-3, "dot of 1541 values, tail included (%f vs %f)",
	   rag_dot(a, b, 1541), want);
	ok(fabs(rag_dot(a, b, 3) - (a[0] * b[0] + a[1] * b[1] + a[2] * b[2])) < 1e-6,
	   "dot of fewer values than one step");

	/* Five 2-d rows; the query points along x. */
	float rows[] = { 0, 1,  1, 0,  0.6f, 0.8f,  -1, 0,  0.8f, 0.6f };
	int64_t rid[] = { 10, 11, 12, 13, 14 };
	float q[] = { 1, 0 };
	vs.dim = 2;
	vs.n = 5;
	vs.ids = rid;
	vs.v = rows;
	n = rag_vectors_top(&vs, q, 3, ids, sims);
	ok(n == 3 && ids[0] == 11 && ids[1] == 14 && ids[2] == 12,
	   "top 3 by similarity, best first");
	ok(n == 3 && sims[0] == 1.0f && fabs(sims[1] - 0.8f) < 1e-6, "with their similarities");
	n = rag_vectors_top(&vs, q, 10, ids, NULL);
	is_int(n, 3, "orthogonal and opposite rows are not similar");
}

/* Which words a search ranks by, on a store that holds them. */
static void test_bm25_words(void)
{
	char dir[] = "/tmp/aichat-test-XXXXXX", path[64];
	struct rag_collection c;
	struct err e;
	sqlite3 *db;
	char *q;

	if (!mkdtemp(dir)) {
		ok(0, "temporary directory");
		return;
	}
	snprintf(path, sizeof(path), "%s/t.db", dir);
	ok(store_open(path, &db, &e) == 0, "store opens");
	rag_collection_ensure(db, "c", 1000, 100, "en", &c, &e);
	sqlite3_exec(db, "BEGIN;"
		     "INSERT INTO documents VALUES (1, 1, 'd', 'h', 1, 1, 'now');"
		     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20005)"
		     " INSERT INTO chunks (document_id, collection_id, seq, text, line_first, line_last, fts)"
		     " SELECT 1, 1, i, 'everywhere ' || CASE WHEN i % 2 THEN 'often' ELSE '' END ||"
		     "  CASE WHEN i = 77 THEN ' quokka' ELSE '' END, i, i, 1 FROM n;"
		     "INSERT INTO chunks (document_id, collection_id, seq, text, line_first, line_last, fts)"
		     " VALUES (1, 1, 30000, 'quokka quokka quokka', 30000, 30000, 1);"
		     "COMMIT;", NULL, NULL, NULL);
	q = rag_bm25_query(db, "Quokka EVERYWHERE quokka often", &e);
	is_str(q, "\"Quokka\" OR \"often\"",
	       "a word in more chunks than the budget left is left out; each word once");
	free(q);
	q = rag_bm25_query(db, "everywhere", &e);
	is_str(q, "\"everywhere\"", "the rarest word stays, however common");
	free(q);
	q = rag_bm25_query(db, "nowhere everywhere", &e);
	is_str(q, "\"everywhere\"", "a word in no chunk is left out");
	free(q);
	q = rag_bm25_query(db, "*** ((", &e);
	ok(q == NULL && e.code == ERR_INVALID_REQUEST, "no words: invalid request");
	struct rag_hit *hits;
	size_t n;
	/* "everywhere" is in more chunks than the budget: BM25 over
	 * "quokka" alone puts line 30000 (three times the word) first. */
	ok(rag_search(db, "c", "everywhere quokka", 3, &hits, &n, &e) == 0 && n == 2 &&
	   hits[0].line_first == 30000 && hits[1].line_first == 77,
	   "a word left out does not reorder: BM25 over the others");
	ok(n == 2 && hits[0].score > hits[1].score && hits[1].score > 0,
	   "scores fall with the rank (%f, %f)", n ? hits[0].score : 0,
	   n > 1 ? hits[1].score : 0);
	rag_hits_free(hits, n);
	ok(rag_search(db, "c", "how is the quokka", 3, &hits, &n, &e) == 0 && n == 2 &&
	   hits[0].line_first == 30000, "stop words are not ranked");
	rag_hits_free(hits, n);
	q = rag_bm25_query(db, "how is the quokka", &e);
	is_str(q, "\"quokka\"", "stop words are left out of the ranked query");
	free(q);
	q = rag_bm25_query(db, "the of", &e);
	ok(q && (!strcmp(q, "\"the\"") || !strcmp(q, "\"of\"")),
	   "a query of stop words only is still a query: %s", q ? q : "(null)");
	free(q);
	q = rag_bm25_query(db, "\"often quokka\" quok*", &e);
	ok(q && strstr(q, "\"often quokka\"") && strstr(q, "\"quok\"*"),
	   "phrases and prefixes reach FTS5 as such: %s", q ? q : "(null)");
	free(q);
	store_close(db);
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	ok(system(path) == 0, "cleaned up");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(fts_cases) / sizeof(fts_cases[0]); i++) {
		char *q = rag_fts_query(fts_cases[i].in);
		is_str(q, fts_cases[i].want, "fts query of '%s'", fts_cases[i].in);
		free(q);
	}
	/* At most 64 words. */
	char many[1000] = "";
	for (int i = 0; i < 100; i++)
		strcat(many, "w ");
	char *q = rag_fts_query(many);
	size_t ors = 0;
	for (char *p = q; (p = strstr(p, " OR ")); p++)
		ors++;
	is_int(ors, 63, "64 words at most");
	free(q);

	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		struct err e;
		int rc = rag_name_check(name_cases[i].name, &e);
		ok((rc == 0) == name_cases[i].ok, "collection name '%.20s' %s",
		   name_cases[i].name, name_cases[i].ok ? "accepted" : "refused");
	}

	is_str(rag_hash(RAG_HASH_INIT, "", 0) == 0xcbf29ce484222325ull ? "y" : "n", "y",
	       "fnv1a64 of nothing");
	ok(rag_hash(RAG_HASH_INIT, "a", 1) == 0xaf63dc4c8601ec8cull, "fnv1a64 of 'a'");

	test_chunker();
	test_stream();
	test_vectors();
	test_dense();
	test_bm25_words();
	return tap_done();
}
