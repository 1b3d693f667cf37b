/*
 * rageval.h - `aichat rag eval`: how well a collection's search finds the
 * files judged relevant to a set of questions.
 *
 * The questions come as a qrels file, a JSON array of
 * {"id", "kind", "query", "relevant": [path, ...]}.  Each question is
 * searched through rag_search_hybrid() (the ranker of `rag search`, never
 * a second one); its hits are reduced to files, each at the rank of its
 * first chunk, and scored at file level: reciprocal rank and nDCG over
 * the first 10 files, recall over the first k.  Scores are means per
 * kind of question and over all of them.  The metric math and the
 * parsing are pure and unit-tested; only rag_eval_rank() reads a store.
 */
#ifndef AICHAT_RAGEVAL_H
#define AICHAT_RAGEVAL_H

#include <sqlite3.h>
#include <stddef.h>

#include "aichat/err.h"

/* MRR and nDCG are taken over this many files. */
#define RAG_EVAL_DEPTH 10
/* The kind of a question that names none: it counts in the "all" row
 * only. */
#define RAG_EVAL_ALL "all"

struct rag_question {
	char *id;             /* as given, or its 1-based entry number */
	char *kind;           /* as given, or RAG_EVAL_ALL */
	char *query;
	char **relevant;      /* as given, "./" and doubled slashes removed */
	size_t nrelevant;     /* at least 1 */
};

struct rag_qrels {
	struct rag_question *q;
	size_t n;             /* at least 1 */
};

/*
 * Parses len bytes of a qrels file named name (for messages) into *out
 * (owned: rag_qrels_release()).  -1 with e (ERR_INVALID_REQUEST) naming
 * the file, the 1-based entry and the field when the text is not JSON,
 * not an array of at least one object, or an entry lacks a non-empty
 * "query" with a word in it or a non-empty "relevant" array of
 * non-empty strings, has an "id" or "kind" that is not a non-empty
 * string, or an id another entry has.  Other fields are ignored.
 */
int rag_qrels_parse(const char *name, const char *text, size_t len,
		    struct rag_qrels *out, struct err *e);
void rag_qrels_release(struct rag_qrels *q);

/*
 * The document of docs[0..n) (stored paths, sorted in byte order) that
 * the relevant path rel names: an absolute path names the document
 * stored under it; a relative one the document at cwd/rel when there is
 * one (cwd may be NULL), else a document whose path ends with "/rel"
 * (whole components), the shortest when several do (the nearest to
 * the indexed root; the first in byte order among equals).  Returns its
 * index, or -1 when none; *nmatch says how many documents matched (more
 * than 1: the name was ambiguous).
 */
long rag_eval_match(char *const *docs, size_t n, const char *cwd,
		    const char *rel, size_t *nmatch);

/* One question's scores. */
struct rag_eval_scores {
	double rr;            /* 1 / rank of the first relevant file in the
			       * first RAG_EVAL_DEPTH, else 0 */
	double ndcg;          /* binary gains over the first RAG_EVAL_DEPTH;
			       * the ideal over min(nrelevant, DEPTH) */
	double recall;        /* relevant files in the first k / nrelevant */
	size_t first;         /* rank of the first relevant file ranked,
			       * 0 when none is */
};

/*
 * Scores a ranking of nranked distinct files, rel[i] nonzero when the
 * file at rank i + 1 is relevant, for a question with nrelevant
 * relevant files (those not ranked, or matching no document, count as
 * misses), recall taken at k.
 */
void rag_eval_score(const unsigned char *rel, size_t nranked, size_t nrelevant,
		    size_t k, struct rag_eval_scores *s);

/*
 * The first need distinct documents (stored paths, best first) that
 * rag_search_hybrid() ranks for query in collection (qvec NULL: BM25;
 * see rag.h), each at the rank of its best chunk: the search is run
 * deeper until need documents are found or the chunks run out.  *docs
 * owned: rag_paths_free().  Errors as rag_search_hybrid().
 */
int rag_eval_rank(sqlite3 *db, const char *collection, const char *query,
		  const float *qvec, int dim, size_t need, char ***docs,
		  size_t *n, struct err *e);

/* A row of the summary: the mean scores of the questions of one kind. */
struct rag_eval_row {
	const char *kind;     /* borrowed from the qrels */
	size_t questions;
	double mrr, ndcg, recall;
};

/*
 * The summary of q with each question's scores s[i]: one row per kind in
 * byte order, then RAG_EVAL_ALL over every question.  *rows owned
 * (free()); returns how many.
 */
size_t rag_eval_summary(const struct rag_qrels *q,
			const struct rag_eval_scores *s,
			struct rag_eval_row **rows);

#endif
