/*
 * rageval.c - `aichat rag eval`'s core: qrels parsing, matching relevant
 * paths to stored documents, file-level ranking and the metrics.
 *
 * Invariants: a parsed qrels holds at least one question, each with a
 * query that has a word and at least one relevant path; a ranking holds
 * each document once, at the rank of its best chunk; the scores of a
 * question are each in [0, 1].  Ranking goes through rag_search_hybrid()
 * only, so eval measures what `rag search` returns.
 */
#include "aichat/rageval.h"
#include "aichat/json.h"
#include "aichat/rag.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ==== qrels ==== */

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsObject(v))
		return "an object";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	return "null";
}

/* "./a//b/" -> "a/b"; "/x" stays absolute. */
static char *tidy_path(const char *p)
{
	char *out = xmalloc(strlen(p) + 1);
	size_t o = 0;

	while (p[0] == '.' && p[1] == '/')
		for (p += 2; *p == '/'; p++)
			;
	for (; *p; p++) {
		if (*p == '/' && o && out[o - 1] == '/')
			continue;
		if (*p == '/' && p[1] == '.' && p[2] == '/') {
			p++;   /* "/./" is "/" */
			continue;
		}
		out[o++] = *p;
	}
	while (o > 1 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
	return out;
}

/* A string field of entry i: NULL and no error when absent and optional. */
static int str_field(const char *name, size_t i, const cJSON *entry,
		     const char *field, int required, const char **out,
		     struct err *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, field);

	*out = NULL;
	if (!v) {
		if (required)
			return err_set(e, ERR_INVALID_REQUEST,
				       "'%.64s': entry %zu: field '%s' is missing", name,
				       i + 1, field);
		return 0;
	}
	if (!cJSON_IsString(v))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field '%s' must be a string, not %s",
			       name, i + 1, field, type_name(v));
	if (!v->valuestring[strspn(v->valuestring, " \t\r\n")])
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field '%s' is empty", name, i + 1,
			       field);
	*out = v->valuestring;
	return 0;
}

static int parse_entry(const char *name, size_t i, const cJSON *entry,
		       struct rag_question *q, struct err *e)
{
	const cJSON *rel, *r;
	const char *id, *kind, *query;
	char *fq;
	size_t j = 0;

	if (!cJSON_IsObject(entry))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu must be an object with 'query' and 'relevant', not %s",
			       name, i + 1, type_name(entry));
	if (str_field(name, i, entry, "query", 1, &query, e) < 0 ||
	    str_field(name, i, entry, "id", 0, &id, e) < 0 ||
	    str_field(name, i, entry, "kind", 0, &kind, e) < 0)
		return -1;
	if (!(fq = rag_fts_query(query)))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field 'query' has no word to search for",
			       name, i + 1);
	free(fq);
	rel = cJSON_GetObjectItemCaseSensitive(entry, "relevant");
	if (!rel)
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field 'relevant' is missing", name,
			       i + 1);
	if (!cJSON_IsArray(rel))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field 'relevant' must be an array of paths, not %s",
			       name, i + 1, type_name(rel));
	if (!cJSON_GetArraySize(rel))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s': entry %zu: field 'relevant' is empty: a question needs at least one relevant path",
			       name, i + 1);
	cJSON_ArrayForEach(r, rel) {
		if (!cJSON_IsString(r) || !r->valuestring[0])
			return err_set(e, ERR_INVALID_REQUEST,
				       "'%.64s': entry %zu: field 'relevant' item %zu must be a non-empty path, not %s",
				       name, i + 1, j + 1,
				       cJSON_IsString(r) ? "an empty string" : type_name(r));
		j++;
	}
	if (id)
		q->id = xstrdup(id);
	else {
		char num[32];
		snprintf(num, sizeof(num), "%zu", i + 1);
		q->id = xstrdup(num);
	}
	q->kind = xstrdup(kind ? kind : RAG_EVAL_ALL);
	q->query = xstrdup(query);
	q->relevant = xcalloc(j, sizeof(*q->relevant));
	cJSON_ArrayForEach(r, rel)
		q->relevant[q->nrelevant++] = tidy_path(r->valuestring);
	return 0;
}

int rag_qrels_parse(const char *name, const char *text, size_t len,
		    struct rag_qrels *out, struct err *e)
{
	struct json_issue iss;
	size_t pos = 0, i = 0;
	const cJSON *entry;
	cJSON *doc;
	int line, col;

	memset(out, 0, sizeof(*out));
	doc = json_parse_strict(text, len, &pos, &iss);
	if (!doc && !iss.type) {
		json_position(text, pos < len ? pos : len, &line, &col);
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%.64s' is not JSON (line %d, column %d): expected an array of questions",
			       name, line, col);
	}
	if (!doc) {
		/* loc is "3.relevant": the entry counted from 0. */
		char *end;
		long entry = strtol(iss.loc, &end, 10);
		if (end != iss.loc && entry >= 0 && *end == '.')
			return err_set(e, ERR_INVALID_REQUEST, "'%.64s': entry %ld, '%.64s': %s",
				       name, entry + 1, end + 1, iss.msg);
		if (end != iss.loc && entry >= 0)
			return err_set(e, ERR_INVALID_REQUEST, "'%.64s': entry %ld: %s", name,
				       entry + 1, iss.msg);
		return err_set(e, ERR_INVALID_REQUEST, "'%.64s': %s", name, iss.msg);
	}
	if (!cJSON_IsArray(doc)) {
		err_set(e, ERR_INVALID_REQUEST,
			"'%.64s' must hold a JSON array of questions, not %s", name,
			type_name(doc));
		goto fail;
	}
	if (!cJSON_GetArraySize(doc)) {
		err_set(e, ERR_INVALID_REQUEST, "'%.64s' holds no question", name);
		goto fail;
	}
	out->q = xcalloc((size_t)cJSON_GetArraySize(doc), sizeof(*out->q));
	cJSON_ArrayForEach(entry, doc) {
		if (parse_entry(name, i, entry, &out->q[i], e) < 0)
			goto fail;
		out->n = ++i;
		for (size_t j = 0; j + 1 < i; j++)
			if (!strcmp(out->q[j].id, out->q[i - 1].id)) {
				err_set(e, ERR_INVALID_REQUEST,
					"'%.64s': entry %zu: field 'id' '%.64s' is entry %zu's too",
					name, i, out->q[i - 1].id, j + 1);
				goto fail;
			}
	}
	cJSON_Delete(doc);
	return 0;
fail:
	cJSON_Delete(doc);
	rag_qrels_release(out);
	return -1;
}

void rag_qrels_release(struct rag_qrels *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->q[i].id);
		free(q->q[i].kind);
		free(q->q[i].query);
		for (size_t j = 0; j < q->q[i].nrelevant; j++)
			free(q->q[i].relevant[j]);
		free(q->q[i].relevant);
	}
	free(q->q);
	memset(q, 0, sizeof(*q));
}

/* ==== matching ==== */

static long find_exact(char *const *docs, size_t n, const char *path)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(docs[mid], path);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

long rag_eval_match(char *const *docs, size_t n, const char *cwd,
		    const char *rel, size_t *nmatch)
{
	size_t rl = strlen(rel), best_len = 0;
	long best = -1;

	*nmatch = 0;
	if (rel[0] == '/') {
		best = find_exact(docs, n, rel);
		*nmatch = best >= 0;
		return best;
	}
	if (cwd && cwd[0]) {
		char *full = xmalloc(strlen(cwd) + rl + 2);
		sprintf(full, "%s%s%s", cwd, cwd[strlen(cwd) - 1] == '/' ? "" : "/", rel);
		best = find_exact(docs, n, full);
		free(full);
		if (best >= 0) {
			*nmatch = 1;
			return best;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t dl = strlen(docs[i]);
		if (dl <= rl || docs[i][dl - rl - 1] != '/' || strcmp(docs[i] + dl - rl, rel))
			continue;
		++*nmatch;
		if (best < 0 || dl < best_len) {
			best = (long)i;
			best_len = dl;
		}
	}
	return best;
}

/* ==== metrics ==== */

void rag_eval_score(const unsigned char *rel, size_t nranked, size_t nrelevant,
		    size_t k, struct rag_eval_scores *s)
{
	double dcg = 0, idcg = 0;
	size_t found = 0;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < nranked; i++) {
		if (!rel[i])
			continue;
		if (!s->first)
			s->first = i + 1;
		if (i < RAG_EVAL_DEPTH) {
			if (!s->rr)
				s->rr = 1.0 / (double)(i + 1);
			dcg += 1.0 / log2((double)i + 2);
		}
		if (i < k)
			found++;
	}
	for (size_t i = 0; i < nrelevant && i < RAG_EVAL_DEPTH; i++)
		idcg += 1.0 / log2((double)i + 2);
	s->ndcg = idcg > 0 ? dcg / idcg : 0;
	s->recall = nrelevant ? (double)found / (double)nrelevant : 0;
}

/* ==== ranking ==== */

/* Searches go deeper by this factor until they hold enough documents;
 * the deepest asks for this many chunks. */
#define RANK_GROWTH 4
#define RANK_MAX_CHUNKS 100000

int rag_eval_rank(sqlite3 *db, const char *collection, const char *query,
		  const float *qvec, int dim, size_t need, char ***docs,
		  size_t *n, struct err *e)
{
	size_t k = need * RANK_GROWTH;

	*docs = NULL;
	*n = 0;
	if (k > RANK_MAX_CHUNKS)
		k = RANK_MAX_CHUNKS;
	for (;;) {
		struct rag_hit *hits = NULL;
		size_t nhits = 0;

		if (rag_search_hybrid(db, collection, query, qvec, dim, (int)k, &hits,
				      &nhits, e) < 0)
			return -1;
		rag_paths_free(*docs, *n);
		*docs = xcalloc(need ? need : 1, sizeof(**docs));
		*n = 0;
		for (size_t i = 0; i < nhits && *n < need; i++) {
			size_t j;
			for (j = 0; j < *n && strcmp((*docs)[j], hits[i].path); j++)
				;
			if (j == *n)
				(*docs)[(*n)++] = xstrdup(hits[i].path);
		}
		rag_hits_free(hits, nhits);
		/* Enough documents, or every chunk that matches was seen. */
		if (*n >= need || nhits < k || k >= RANK_MAX_CHUNKS)
			return 0;
		k = k * RANK_GROWTH > RANK_MAX_CHUNKS ? RANK_MAX_CHUNKS : k * RANK_GROWTH;
	}
}

/* ==== summary ==== */

static int by_kind(const void *a, const void *b)
{
	return strcmp(((const struct rag_eval_row *)a)->kind,
		      ((const struct rag_eval_row *)b)->kind);
}

static void add_to(struct rag_eval_row *r, const struct rag_eval_scores *s)
{
	r->questions++;
	r->mrr += s->rr;
	r->ndcg += s->ndcg;
	r->recall += s->recall;
}

size_t rag_eval_summary(const struct rag_qrels *q,
			const struct rag_eval_scores *s,
			struct rag_eval_row **rows)
{
	struct rag_eval_row *r = xcalloc(q->n + 1, sizeof(*r));
	size_t n = 0;

	for (size_t i = 0; i < q->n; i++) {
		size_t j;
		if (!strcmp(q->q[i].kind, RAG_EVAL_ALL))
			continue;
		for (j = 0; j < n && strcmp(r[j].kind, q->q[i].kind); j++)
			;
		if (j == n)
			r[n++].kind = q->q[i].kind;
		add_to(&r[j], &s[i]);
	}
	if (n)
		qsort(r, n, sizeof(*r), by_kind);
	r[n].kind = RAG_EVAL_ALL;
	for (size_t i = 0; i < q->n; i++)
		add_to(&r[n], &s[i]);
	n++;
	for (size_t j = 0; j < n; j++) {
		r[j].mrr /= (double)r[j].questions;
		r[j].ndcg /= (double)r[j].questions;
		r[j].recall /= (double)r[j].questions;
	}
	*rows = r;
	return n;
}
