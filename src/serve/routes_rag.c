/*
 * routes_rag.c - /rag/search and /rag/query: passages from a document
 * collection, and for /rag/query an answer from the model that cites
 * them as numbered sources.
 *
 * A request goes: the query embedded (on the loop, within
 * --rag-embed-timeout) when the collection has vectors, the search (on the
 * searcher's thread, within --rag-search-timeout), then the answer, or
 * the upstream gate and the chat call.  A query that cannot be embedded
 * is searched with BM25 alone, and the answer says so in its warning.
 */
#include "aichat/json.h"
#include "aichat/rag.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static void on_searched(void *ud, struct search_result *res);

/*
 * Retrieval for the rag routes, once the query vector is known (qvec NULL:
 * BM25 alone; why, when not NULL, says why hybrid search was not
 * possible): the search runs on the searcher's thread, within
 * --rag-search-timeout, and on_searched() goes on.
 */
static void rag_continue(struct req *r, const float *qvec, int dim,
			 const char *why)
{
	cJSON *j = r->json;
	double k = 5;

	json_num(j, "top_k", &k);
	snprintf(r->retrieval, sizeof(r->retrieval), "%s", qvec ? "hybrid" : "bm25");
	if (why)
		snprintf(r->retrieval_warning, sizeof(r->retrieval_warning),
			 "searched with BM25 only: %.200s", why);
	r->search = searcher_start(r->srv->searcher, json_str(j, "collection"),
				   json_str(j, "query"), qvec, dim,
				   json_clamp_int(k, 1, INT_MAX),
				   r->srv->o->rag_search_ms, on_searched, r);
	if (r->in_handler)
		req_suspend(r);
}

/* The search is done: /rag/search answers here; /rag/query builds its
 * prompt and goes on to the model. */
static void on_searched(void *ud, struct search_result *res)
{
	struct req *r = ud;
	cJSON *j = r->json;
	struct rag_hit *hits = res->hits;
	size_t n = res->n;
	const char *why = r->retrieval_warning[0] ? r->retrieval_warning : NULL;

	r->search = NULL;
	r->retrieval_ms = loop_now_ms() - r->rag_started;
	if (res->rc < 0) {
		if (res->timed_out)
			reply_error_status(r, 504, ERR_UPSTREAM_TIMEOUT,
					   "document search took longer than --rag-search-timeout");
		else
			reply_error_status(r, res->err.code == ERR_NOT_FOUND ? 404 : 422,
					   res->err.code == ERR_NOT_FOUND ? ERR_NOT_FOUND :
					   ERR_INVALID_REQUEST, res->err.msg);
		return;
	}
	r->rag_sources = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		cJSON *src = cJSON_CreateObject(), *lines = cJSON_CreateArray();
		cJSON_AddNumberToObject(src, "n", (double)(i + 1));
		cJSON_AddStringToObject(src, "path", hits[i].path);
		cJSON_AddItemToArray(lines, cJSON_CreateNumber(hits[i].line_first));
		cJSON_AddItemToArray(lines, cJSON_CreateNumber(hits[i].line_last));
		cJSON_AddItemToObject(src, "lines", lines);
		cJSON_AddNumberToObject(src, "score", hits[i].score);
		cJSON_AddStringToObject(src, "snippet", hits[i].snippet);
		cJSON_AddItemToArray(r->rag_sources, src);
	}
	if (r->route->response == RESP_RAG_SEARCH) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "results", r->rag_sources);
		r->rag_sources = NULL;
		cJSON_AddNumberToObject(o, "retrieval_latency_ms", (double)r->retrieval_ms);
		cJSON_AddStringToObject(o, "retrieval", r->retrieval);
		if (why)
			cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
		rag_hits_free(hits, n);
		reply_json(r, 200, o);
		return;
	}
	if (!n) {
		rag_hits_free(hits, n);
		reply_error_status(r, 404, ERR_NOT_FOUND,
				   "no passage of the collection matches the question; nothing was sent");
		return;
	}
	/* The question with its numbered sources, as `aichat rag query`. */
	struct buf prompt;
	buf_init(&prompt, 0);
	rag_prompt(&prompt, json_str(j, "query"), hits, n);
	rag_hits_free(hits, n);
	memset(&r->creq, 0, sizeof(r->creq));
	if (json_str(j, "model"))
		r->creq.model = xstrdup(json_str(j, "model"));
	r->creq.temperature = -1;
	r->creq.stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"));
	r->creq.messages = xcalloc(1, sizeof(*r->creq.messages));
	r->creq.messages[0].role = xstrdup("user");
	r->creq.messages[0].content = buf_detach(&prompt);
	r->creq.nmessages = 1;
	acquire_upstream(r);
}

static void on_query_embedded(void *ud, const struct embed_result *res)
{
	struct req *r = ud;

	r->embed = NULL;
	if (res->dim > 0 && !res->failed)
		rag_continue(r, res->vecs, res->dim, NULL);
	else
		rag_continue(r, NULL, 0, res->err.code != ERR_OK ? res->err.msg :
			     "the query could not be embedded");
}

/* The collection's settings, read by the searcher's thread: with vectors,
 * the query is embedded first; otherwise, or when it cannot be, BM25. */
static void on_described(void *ud, struct search_result *res)
{
	struct req *r = ud;
	const struct rag_collection *c = res->ncols ? &res->cols[0] : NULL;
	struct embed_model m;
	struct llm_opts lo;
	struct err e;
	const char *q;

	r->search = NULL;
	err_clear(&e);
	if (res->rc < 0 || !c || !c->embed_model[0]) {
		/* rag_search says what is wrong with a missing collection. */
		rag_continue(r, NULL, 0, NULL);
		return;
	}
	if (embed_resolve(r->srv->cfg, c->embed_model, &m, &e) < 0) {
		embed_model_release(&m);
		rag_continue(r, NULL, 0, e.msg);
		return;
	}
	llm_opts_default(&lo);
	lo.retries = 0;
	lo.total_ms = r->srv->o->rag_embed_ms;
	q = json_str(r->json, "query");
	r->embed = embed_start(r->srv->eng, &m, &q, 1, &lo, on_query_embedded, r, &e);
	embed_model_release(&m);
	if (!r->embed)
		rag_continue(r, NULL, 0, e.msg);
}

/*
 * The rag routes: the collection's settings are read off the loop (the
 * searcher's thread); a collection with vectors has the query embedded
 * (on the loop, within --rag-embed-timeout), then hybrid search;
 * otherwise BM25 at once.
 * An embedding provider that fails means BM25, and the answer says so.
 */
void route_rag(struct req *r)
{
	const char *collection = json_str(r->json, "collection");
	struct err e;

	err_clear(&e);
	r->rag_started = loop_now_ms();
	if (!r->srv->db || !r->srv->searcher) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "document search is unavailable: the database could not be opened");
		return;
	}
	if (rag_name_check(collection, &e) < 0) {
		reply_error_status(r, 422, ERR_INVALID_REQUEST, e.msg);
		return;
	}
	r->search = searcher_describe(r->srv->searcher, collection,
				      r->srv->o->rag_search_ms, on_described, r);
	if (r->in_handler)
		req_suspend(r);
}

/* The metadata event that opens a /rag/query stream: where the answer
 * comes from, before it starts. */
cJSON *rag_metadata(struct req *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddItemToObject(o, "sources", cJSON_Duplicate(r->rag_sources, 1));
	cJSON_AddNumberToObject(o, "retrieval_latency_ms",
				(double)r->retrieval_ms);
	cJSON_AddStringToObject(o, "retrieval", r->retrieval);
	if (r->retrieval_warning[0])
		cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
	return o;
}

/* RAGResponse: the answer, its numbered sources, timings and usage. */
cJSON *rag_response(struct req *r, const struct chat_result *res)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "answer", res->content.ptr);
	cJSON_AddItemToObject(o, "sources", cJSON_Duplicate(r->rag_sources, 1));
	cJSON_AddNumberToObject(o, "retrieval_latency_ms", (double)r->retrieval_ms);
	cJSON_AddStringToObject(o, "retrieval", r->retrieval);
	if (r->retrieval_warning[0])
		cJSON_AddStringToObject(o, "warning", r->retrieval_warning);
	cJSON_AddStringToObject(o, "model", res->model);
	if (res->have_usage) {
		cJSON_AddNumberToObject(o, "prompt_tokens", (double)res->prompt_tokens);
		cJSON_AddNumberToObject(o, "completion_tokens", (double)res->completion_tokens);
	} else {
		cJSON_AddNullToObject(o, "prompt_tokens");
		cJSON_AddNullToObject(o, "completion_tokens");
	}
	return o;
}

/* ==== GET /rag/collections ==== */

static void on_listed(void *ud, struct search_result *res)
{
	struct req *r = ud;
	cJSON *o, *a;

	r->search = NULL;
	if (res->rc < 0) {
		if (res->timed_out)
			reply_error_status(r, 504, ERR_UPSTREAM_TIMEOUT,
					   "listing the collections took longer than --rag-search-timeout");
		else
			reply_error(r, &res->err);
		return;
	}
	o = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(o, "collections");
	for (size_t i = 0; i < res->ncols; i++) {
		const struct rag_collection *c = &res->cols[i];
		cJSON *it = cJSON_CreateObject();

		cJSON_AddItemToArray(a, it);
		cJSON_AddStringToObject(it, "name", c->name);
		cJSON_AddNumberToObject(it, "documents", (double)c->documents);
		cJSON_AddNumberToObject(it, "chunks", (double)c->chunks);
		if (c->embed_model[0])
			cJSON_AddStringToObject(it, "embed_model", c->embed_model);
		else
			cJSON_AddNullToObject(it, "embed_model");
	}
	reply_json(r, 200, o);
}

/* Counting a large collection's chunks reads SQLite for a while: the
 * searcher's thread does it, as it does searches. */
void route_rag_collections(struct req *r)
{
	if (!r->srv->db || !r->srv->searcher) {
		reply_error_status(r, 503, ERR_OVERLOADED,
				   "document search is unavailable: the database could not be opened");
		return;
	}
	r->search = searcher_list(r->srv->searcher, r->srv->o->rag_search_ms,
				  on_listed, r);
	if (r->in_handler)
		req_suspend(r);
}
