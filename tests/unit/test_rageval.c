/*
 * test_rageval.c - unit tests for rag eval's pure parts (src/core/rageval.c):
 * the metric math against values worked out by hand, the rule that
 * matches relevant paths to stored documents, the qrels parser's
 * messages (entry and field named), and the per-kind summary.
 */
#include "aichat/rageval.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

/* 1/log2(r + 1): the discount of rank r. */
#define D1 1.0
#define D2 0.63092975357145743     /* 1/log2(3) */
#define D3 0.5                     /* 1/log2(4) */
#define D4 0.43067655807339306     /* 1/log2(5) */

static const struct {
	const char *name;
	const char *rel;      /* one char per ranked file: '1' relevant */
	size_t nrelevant, k;
	double rr, ndcg, recall;
	size_t first;
} score_cases[] = {
	/* First relevant at rank 1, the only one: everything 1. */
	{ "one relevant, first", "1000", 1, 10, 1, 1, 1, 1 },
	/* At rank 3: RR 1/3, nDCG (1/log2 4) / 1 = 0.5. */
	{ "one relevant, third", "0010", 1, 10, 1.0 / 3, D3, 1, 3 },
	/* Ranks 2 and 4 of 3 relevant: DCG D2 + D4, IDCG D1 + D2 + D3;
	 * recall 2/3. */
	{ "two of three", "0101", 3, 10, 0.5, (D2 + D4) / (D1 + D2 + D3), 2.0 / 3, 2 },
	/* Recall@2 counts rank 2 only: 1/3; MRR and nDCG are @10 still. */
	{ "recall at k=2", "0101", 3, 2, 0.5, (D2 + D4) / (D1 + D2 + D3), 1.0 / 3, 2 },
	/* Nothing relevant ranked. */
	{ "none found", "0000", 2, 10, 0, 0, 0, 0 },
	/* Found at rank 11 only: no MRR@10 or nDCG@10, but Recall@20. */
	{ "rank 11, k=20", "00000000001", 1, 20, 0, 0, 1, 11 },
	{ "rank 11, k=10", "00000000001", 1, 10, 0, 0, 0, 11 },
	/* 12 relevant, all ranked first: IDCG stops at 10, nDCG is 1;
	 * recall@10 10/12. */
	{ "more relevant than 10", "111111111111", 12, 10, 1, 1, 10.0 / 12, 1 },
	/* Empty ranking. */
	{ "no hits", "", 1, 10, 0, 0, 0, 0 },
};

static void test_score(void)
{
	for (size_t i = 0; i < sizeof(score_cases) / sizeof(score_cases[0]); i++) {
		size_t n = strlen(score_cases[i].rel);
		unsigned char rel[32] = { 0 };
		struct rag_eval_scores s;

		for (size_t j = 0; j < n; j++)
			rel[j] = score_cases[i].rel[j] == '1';
		rag_eval_score(rel, n, score_cases[i].nrelevant, score_cases[i].k, &s);
		ok(near(s.rr, score_cases[i].rr), "%s: RR %.6f (want %.6f)",
		   score_cases[i].name, s.rr, score_cases[i].rr);
		ok(near(s.ndcg, score_cases[i].ndcg), "%s: nDCG %.6f (want %.6f)",
		   score_cases[i].name, s.ndcg, score_cases[i].ndcg);
		ok(near(s.recall, score_cases[i].recall), "%s: recall %.6f (want %.6f)",
		   score_cases[i].name, s.recall, score_cases[i].recall);
		is_int(s.first, score_cases[i].first, "%s: first relevant rank",
		       score_cases[i].name);
	}
}

static void test_match(void)
{
	char *docs[] = {            /* sorted, as rag_documents() returns */
		"/r/README.md", "/r/docs/a.md", "/r/docs/guide/a.md",
		"/r/man/aichat.1", "/r/sub/README.md", "/r/xdocs/b.md",
	};
	size_t n = sizeof(docs) / sizeof(docs[0]), nm;

	is_int(rag_eval_match(docs, n, NULL, "/r/docs/a.md", &nm), 1, "absolute: exact");
	is_int(nm, 1, "absolute: one match");
	is_int(rag_eval_match(docs, n, NULL, "/docs/a.md", &nm), -1,
	       "absolute: no suffix match");
	is_int(rag_eval_match(docs, n, NULL, "man/aichat.1", &nm), 3, "relative: suffix");
	is_int(rag_eval_match(docs, n, NULL, "ocs/b.md", &nm), -1,
	       "relative: whole components only");
	is_int(nm, 0, "no match: count 0");
	is_int(rag_eval_match(docs, n, NULL, "README.md", &nm), 0,
	       "ambiguous: the shortest path");
	is_int(nm, 2, "ambiguous: both counted");
	is_int(rag_eval_match(docs, n, NULL, "a.md", &nm), 1,
	       "ambiguous: shortest of docs/a.md and docs/guide/a.md");
	is_int(nm, 2, "a.md: two matches");
	is_int(rag_eval_match(docs, n, "/r/sub", "README.md", &nm), 4,
	       "relative to the working directory first");
	is_int(nm, 1, "working directory: one match");
	is_int(rag_eval_match(docs, n, "/r/", "docs/guide/a.md", &nm), 2,
	       "working directory with a trailing slash");
	is_int(rag_eval_match(docs, n, "/elsewhere", "docs/a.md", &nm), 1,
	       "working directory without it: suffix");
	is_int(rag_eval_match(docs, 0, NULL, "a.md", &nm), -1, "empty collection");
}

static const struct {
	const char *text, *want;    /* want NULL: parses */
} parse_cases[] = {
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"]}]", NULL },
	{ "", "'q.json' is not JSON (line 1, column 1): expected an array of questions" },
	{ "[{\"query\": \"x\",\n \"relevant\": [\"a\"]", "'q.json' is not JSON (line 2, column 18): expected an array of questions" },
	{ "{\"query\": \"x\"}", "'q.json' must hold a JSON array of questions, not an object" },
	{ "[]", "'q.json' holds no question" },
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"]}, 3]",
	  "'q.json': entry 2 must be an object with 'query' and 'relevant', not a number" },
	{ "[{\"relevant\": [\"a\"]}]", "'q.json': entry 1: field 'query' is missing" },
	{ "[{\"query\": 7, \"relevant\": [\"a\"]}]",
	  "'q.json': entry 1: field 'query' must be a string, not a number" },
	{ "[{\"query\": \" \", \"relevant\": [\"a\"]}]", "'q.json': entry 1: field 'query' is empty" },
	{ "[{\"query\": \"?!\", \"relevant\": [\"a\"]}]",
	  "'q.json': entry 1: field 'query' has no word to search for" },
	{ "[{\"query\": \"x\"}]", "'q.json': entry 1: field 'relevant' is missing" },
	{ "[{\"query\": \"x\", \"relevant\": \"a\"}]",
	  "'q.json': entry 1: field 'relevant' must be an array of paths, not a string" },
	{ "[{\"query\": \"x\", \"relevant\": []}]",
	  "'q.json': entry 1: field 'relevant' is empty: a question needs at least one relevant path" },
	{ "[{\"query\": \"x\", \"relevant\": [\"a\", \"\"]}]",
	  "'q.json': entry 1: field 'relevant' item 2 must be a non-empty path, not an empty string" },
	{ "[{\"query\": \"x\", \"relevant\": [null]}]",
	  "'q.json': entry 1: field 'relevant' item 1 must be a non-empty path, not null" },
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"], \"kind\": 1}]",
	  "'q.json': entry 1: field 'kind' must be a string, not a number" },
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"], \"id\": \"\"}]",
	  "'q.json': entry 1: field 'id' is empty" },
	{ "[{\"id\": \"q\", \"query\": \"x\", \"relevant\": [\"a\"]},"
	  " {\"id\": \"q\", \"query\": \"y\", \"relevant\": [\"b\"]}]",
	  "'q.json': entry 2: field 'id' 'q' is entry 1's too" },
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"]},"
	  " {\"query\": \"y\", \"query\": \"z\", \"relevant\": [\"b\"]}]",
	  "'q.json': entry 2, 'query': duplicate key 'query'" },
	{ "[{\"query\": \"a\\u0000b\", \"relevant\": [\"a\"]}]",
	  "'q.json': entry 1, 'query': must not contain a NUL character (\\u0000)" },
	{ "[\"\\u0000\"]", "'q.json': entry 1: must not contain a NUL character (\\u0000)" },
	/* An id given as the number another one defaults to. */
	{ "[{\"query\": \"x\", \"relevant\": [\"a\"]},"
	  " {\"id\": \"1\", \"query\": \"y\", \"relevant\": [\"b\"]}]",
	  "'q.json': entry 2: field 'id' '1' is entry 1's too" },
};

static void test_parse(void)
{
	struct rag_qrels q;
	struct err e;

	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		int rc;
		err_clear(&e);
		rc = rag_qrels_parse("q.json", parse_cases[i].text,
				     strlen(parse_cases[i].text), &q, &e);
		if (!parse_cases[i].want) {
			is_int(rc, 0, "parse case %zu parses", i);
			rag_qrels_release(&q);
			continue;
		}
		is_int(rc, -1, "parse case %zu refused", i);
		is_int(e.code, ERR_INVALID_REQUEST, "parse case %zu: invalid request", i);
		is_str(e.msg, parse_cases[i].want, "parse case %zu: message", i);
		is_int(q.n, 0, "parse case %zu: nothing kept", i);
	}

	const char *good = "[{\"id\": \"a\", \"kind\": \"natural\", \"query\": \"how\","
			   " \"relevant\": [\"./docs//x.md\", \"/abs/y/\"], \"note\": 1},"
			   " {\"query\": \"why\", \"relevant\": [\"././z\"]}]";
	is_int(rag_qrels_parse("q.json", good, strlen(good), &q, &e), 0, "good qrels");
	is_int(q.n, 2, "two questions");
	is_str(q.q[0].id, "a", "id as given");
	is_str(q.q[0].kind, "natural", "kind as given");
	is_str(q.q[0].relevant[0], "docs/x.md", "./ and // removed");
	is_str(q.q[0].relevant[1], "/abs/y", "trailing / removed, absolute kept");
	is_str(q.q[1].id, "2", "default id: the 1-based entry number");
	is_str(q.q[1].kind, "all", "default kind: all");
	is_str(q.q[1].relevant[0], "z", "././ removed");
	rag_qrels_release(&q);
}

static void test_summary(void)
{
	const char *text = "["
		"{\"kind\": \"nat\", \"query\": \"a\", \"relevant\": [\"x\"]},"
		"{\"query\": \"b\", \"relevant\": [\"x\"]},"
		"{\"kind\": \"kw\", \"query\": \"c\", \"relevant\": [\"x\"]},"
		"{\"kind\": \"nat\", \"query\": \"d\", \"relevant\": [\"x\"]}]";
	struct rag_eval_scores s[4] = {
		{ 1.0, 1.0, 1.0, 1 }, { 0.5, 0.5, 0.0, 2 },
		{ 0.25, 0.2, 0.5, 4 }, { 0.0, 0.0, 0.0, 0 },
	};
	struct rag_eval_row *rows;
	struct rag_qrels q;
	struct err e;
	size_t n;

	if (rag_qrels_parse("q.json", text, strlen(text), &q, &e) < 0) {
		ok(0, "summary qrels parse: %s", e.msg);
		return;
	}
	n = rag_eval_summary(&q, s, &rows);
	is_int(n, 3, "kinds kw, nat, then all");
	is_str(rows[0].kind, "kw", "kinds sorted");
	is_str(rows[1].kind, "nat", "nat second");
	is_str(rows[2].kind, "all", "all last");
	is_int(rows[1].questions, 2, "nat: 2 questions");
	ok(near(rows[1].mrr, 0.5) && near(rows[1].ndcg, 0.5) && near(rows[1].recall, 0.5),
	   "nat: means of questions 1 and 4");
	is_int(rows[2].questions, 4, "all: every question, kindless included");
	ok(near(rows[2].mrr, 1.75 / 4), "all: MRR %.4f", rows[2].mrr);
	ok(near(rows[2].ndcg, 1.7 / 4), "all: nDCG %.4f", rows[2].ndcg);
	ok(near(rows[2].recall, 1.5 / 4), "all: recall %.4f", rows[2].recall);
	free(rows);
	rag_qrels_release(&q);
}

int main(void)
{
	test_score();
	test_match();
	test_parse();
	test_summary();
	return tap_done();
}
