/*
 * test_rag.c - unit tests for the pure parts of the RAG service
 * (src/core/rag.c): the FTS5 query sanitizer, collection names, and the
 * chunker.  Table-driven; the chunker's invariants (every chunk within its
 * bounds, no blank edges, lines consistent with the offsets) are checked
 * for every case, then what each case is about.  Then the vector
 * helpers: cosine, normalization, reciprocal rank fusion, and mock:embed's
 * vectors (close for shared words, unit length, deterministic).
 */
#include "aichat/embed.h"
#include "aichat/rag.h"
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
	test_vectors();
	return tap_done();
}
