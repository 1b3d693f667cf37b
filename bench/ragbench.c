/*
 * ragbench.c - the parts of bench/rag.sh that time aichat's own search
 * code in one process, as `aichat serve` runs it (store open, page cache
 * warm).  Linked with aichat's objects.
 *
 *   ragbench search COLLECTION QUERIES K
 *       Runs every query of QUERIES (lines "expected-path<TAB>words") through
 *       rag_search() on the store of $AICHAT_HOME, twice; times the second
 *       pass.  Prints p50/p90/max in ms, and how often the expected file
 *       is among the K hits.
 *   ragbench dense N DIM REPS
 *       N random unit vectors of DIM floats in memory.  Baseline: the time
 *       to read those bytes once (a sum of every float).  Then the time of
 *       rag_vectors_top() over them, the brute force of hybrid search.
 *       Best of REPS for each; prints both and their ratio.
 *   ragbench hybrid N DIM
 *       rag_search_hybrid() over a collection of N chunks with DIM-float
 *       vectors, made in the store of $AICHAT_HOME: the first search (it
 *       reads the vectors from SQLite) and the best of five more.
 */
#include "aichat/rag.h"
#include "aichat/store.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int search(const char *coll, const char *file, int k)
{
	FILE *f = fopen(file, "r");
	char line[1024];
	char **want = NULL, **query = NULL;
	double *ms;
	size_t n = 0, found = 0;
	sqlite3 *db;
	struct err e;

	if (!f || store_open(NULL, &db, &e) < 0) {
		fprintf(stderr, "ragbench: cannot open %s or the store\n", file);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		*tab = '\0';
		tab[strcspn(tab + 1, "\n") + 1] = '\0';
		want = xrealloc(want, (n + 1) * sizeof(*want));
		query = xrealloc(query, (n + 1) * sizeof(*query));
		want[n] = xstrdup(line);
		query[n++] = xstrdup(tab + 1);
	}
	fclose(f);
	ms = xcalloc(n + 1, sizeof(*ms));
	for (int pass = 0; pass < 2; pass++) {
		found = 0;
		for (size_t i = 0; i < n; i++) {
			struct rag_hit *hits;
			size_t nh;
			double t0 = now_ms();
			if (rag_search(db, coll, query[i], k, &hits, &nh, &e) < 0) {
				fprintf(stderr, "ragbench: %s\n", e.msg);
				return 1;
			}
			ms[i] = now_ms() - t0;
			for (size_t j = 0; j < nh; j++) {
				size_t lw = strlen(want[i]), lp = strlen(hits[j].path);
				if (lp >= lw && !strcmp(hits[j].path + lp - lw, want[i])) {
					found++;
					break;
				}
			}
			rag_hits_free(hits, nh);
		}
	}
	qsort(ms, n, sizeof(*ms), cmp_double);
	printf("queries %zu  p50 %.2f ms  p90 %.2f ms  max %.2f ms  source file in top %d: %.0f%%\n",
	       n, ms[n / 2], ms[n * 9 / 10], ms[n - 1], k, 100.0 * (double)found / (double)n);
	for (size_t i = 0; i < n; i++) {
		free(want[i]);
		free(query[i]);
	}
	free(want);
	free(query);
	free(ms);
	store_close(db);
	return 0;
}

/* Reads every float of v once: the baseline. */
static float read_all(const float *v, size_t count)
{
	typedef float v4f __attribute__((vector_size(16)));
	v4f s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
	size_t i;

	for (i = 0; i + 16 <= count; i += 16) {
		v4f a0, a1, a2, a3;
		memcpy(&a0, v + i, 16);
		memcpy(&a1, v + i + 4, 16);
		memcpy(&a2, v + i + 8, 16);
		memcpy(&a3, v + i + 12, 16);
		s0 += a0;
		s1 += a1;
		s2 += a2;
		s3 += a3;
	}
	s0 = (s0 + s1) + (s2 + s3);
	return s0[0] + s0[1] + s0[2] + s0[3];
}

static int dense(size_t n, int dim, int reps)
{
	struct rag_vectors vs = { .dim = dim, .n = n };
	float *q = xmalloc((size_t)dim * sizeof(*q)), sims[10];
	int64_t ids[10];
	double best_read = 1e18, best_top = 1e18;
	volatile float sink = 0;
	uint64_t x = 88172645463325252ull;

	vs.ids = xmalloc(n * sizeof(*vs.ids));
	vs.v = xmalloc(n * (size_t)dim * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		vs.ids[i] = (int64_t)i + 1;
		for (int j = 0; j < dim; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			vs.v[i * (size_t)dim + (size_t)j] = (float)((x >> 40) & 0xffff) / 32768.0f - 1.0f;
		}
		rag_normalize(vs.v + i * (size_t)dim, dim);
	}
	memcpy(q, vs.v + (n / 2) * (size_t)dim, (size_t)dim * sizeof(*q));
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms(), t1, t2;
		sink += read_all(vs.v, n * (size_t)dim);
		t1 = now_ms();
		size_t got = rag_vectors_top(&vs, q, 10, ids, sims);
		t2 = now_ms();
		if (got != 10 || ids[0] != (int64_t)(n / 2) + 1) {
			fprintf(stderr, "ragbench: the query's own vector is not first\n");
			return 1;
		}
		if (t1 - t0 < best_read)
			best_read = t1 - t0;
		if (t2 - t1 < best_top)
			best_top = t2 - t1;
	}
	double mb = (double)n * dim * sizeof(float) / 1e6;
	printf("vectors %zu x %d (%.0f MB)  read once %.1f ms (%.1f GB/s)  brute-force top-10 %.1f ms (%.1f GB/s)  ratio %.2fx\n",
	       n, dim, mb, best_read, mb / best_read, best_top, mb / best_top,
	       best_top / best_read);
	free(vs.ids);
	free(vs.v);
	free(q);
	return 0;
}

/*
 * Hybrid search through the store of $AICHAT_HOME: a collection of n
 * chunks with random unit vectors of dim floats (made once), then
 * rag_search_hybrid() with the vector of one of them: the first search
 * reads every vector from SQLite, the next ones use the copy kept in
 * memory.
 */
static int hybrid(size_t n, int dim)
{
	struct rag_collection c;
	struct rag_hit *hits;
	sqlite3_stmt *st;
	sqlite3 *db;
	struct err e;
	float *v = xmalloc((size_t)dim * sizeof(*v)), *q = xmalloc((size_t)dim * sizeof(*q));
	uint64_t x = 88172645463325252ull;
	size_t nh;
	double t0, cold, warm = 1e18;

	if (store_open(NULL, &db, &e) < 0 ||
	    rag_collection_ensure(db, "vec", 1000, 100, "en", &c, &e) < 0) {
		fprintf(stderr, "ragbench: %s\n", e.msg);
		return 1;
	}
	t0 = now_ms();
	sqlite3_exec(db, "BEGIN; INSERT INTO documents VALUES (1, 1, 'doc', 'h', 1, 1, 'now');"
		     "UPDATE collections SET embed_model = 'bench', dim = 0", NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO chunks (document_id, collection_id, seq, text,"
			   " line_first, line_last, embedding) VALUES (1, 1, ?1, ?2, ?1, ?1, ?3)",
			   -1, &st, NULL);
	for (size_t i = 0; i < n; i++) {
		char text[64];
		for (int j = 0; j < dim; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			v[j] = (float)((x >> 40) & 0xffff) / 32768.0f - 1.0f;
		}
		rag_normalize(v, dim);
		if (i == n / 2)
			memcpy(q, v, (size_t)dim * sizeof(*q));
		snprintf(text, sizeof(text), "chunk number %zu", i);
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)i);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(st, 3, v, dim * (int)sizeof(float), SQLITE_STATIC);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	char sql[80];
	snprintf(sql, sizeof(sql), "UPDATE collections SET dim = %d; COMMIT", dim);
	sqlite3_exec(db, sql, NULL, NULL, NULL);
	/* Closed and opened again, as by `aichat rag index` then serve: the
	 * vectors are read from the database file, not from the WAL. */
	store_close(db);
	if (store_open(NULL, &db, &e) < 0) {
		fprintf(stderr, "ragbench: %s\n", e.msg);
		return 1;
	}
	printf("store: %zu chunks with %d-float vectors written in %.1f s; ", n, dim,
	       (now_ms() - t0) / 1e3);
	for (int r = 0; r < 6; r++) {
		t0 = now_ms();
		if (rag_search_hybrid(db, "vec", "number 50000", q, dim, 5, &hits, &nh, &e) < 0) {
			fprintf(stderr, "ragbench: %s\n", e.msg);
			return 1;
		}
		double ms = now_ms() - t0;
		if (r == 0)
			cold = ms;
		else if (ms < warm)
			warm = ms;
		rag_hits_free(hits, nh);
	}
	printf("hybrid search: first %.0f ms (reads the vectors from SQLite), then %.1f ms\n",
	       cold, warm);
	rag_vectors_release();
	store_close(db);
	free(v);
	free(q);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "hybrid"))
		return hybrid((size_t)atol(argv[2]), atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "search"))
		return search(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "dense"))
		return dense((size_t)atol(argv[2]), atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: ragbench search COLLECTION QUERIES K | dense N DIM REPS | hybrid N DIM\n");
	return 2;
}
