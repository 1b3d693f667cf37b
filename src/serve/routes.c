/*
 * routes.c - the route table of serve.  The server dispatches on it; the
 * OpenAPI document is generated from it.
 */
#include "aichat/serve.h"

const struct route_info serve_routes[] = {
	{ "POST", "/chat", "one prompt, one answer (JSON, or SSE with stream: true)",
	  &schema_chat_request, RESP_CHAT, 1, 1 },
	{ "POST", "/conversation", "answer the next turn of a conversation",
	  &schema_conversation_request, RESP_CHAT, 1, 1 },
	{ "POST", "/batch", "many prompts at once, answered in input order",
	  &schema_batch_request, RESP_BATCH, 1, 0 },
	{ "POST", "/v1/chat/completions", "OpenAI-compatible chat completions",
	  &schema_openai_chat_request, RESP_OPENAI_CHAT, 1, 1 },
	{ "POST", "/v1/messages", "Anthropic-compatible messages, routed by model to any provider",
	  &schema_anthropic_request, RESP_ANTHROPIC, 1, 1 },
	{ "GET", "/v1/models", "OpenAI-compatible model list",
	  NULL, RESP_OPENAI_MODELS, 1, 0 },
	{ "POST", "/v1/embeddings", "OpenAI-compatible embeddings, relayed to an OpenAI-compatible provider (or mock:embed, offline)",
	  &schema_openai_embeddings_request, RESP_OPENAI_EMBEDDINGS, 1, 0 },
	{ "POST", "/rag/query", "answer a question from a document collection, citing sources",
	  &schema_rag_request, RESP_RAG_QUERY, 1, 1 },
	{ "POST", "/rag/search", "the passages of a collection that best match a query",
	  &schema_rag_search_request, RESP_RAG_SEARCH, 1, 0 },
	{ "GET", "/rag/collections", "the document collections: name, documents, chunks",
	  NULL, RESP_RAG_COLLECTIONS, 1, 0 },
	{ "POST", "/jobs", "queue a background batch job (up to 10,000 items)",
	  &schema_job_request, RESP_JOB_SUBMIT, 1, 0 },
	{ "GET", "/jobs", "the newest jobs, up to 100, each with its status",
	  NULL, RESP_JOB_LIST, 1, 0 },
	{ "GET", "/jobs/{id}", "a job's status, counts and timestamps",
	  NULL, RESP_JOB_STATUS, 1, 0 },
	{ "GET", "/jobs/{id}/results", "a job's finished results as JSONL, in input order",
	  NULL, RESP_JOB_RESULTS, 1, 0 },
	{ "DELETE", "/jobs/{id}", "cancel a queued or running job",
	  NULL, RESP_JOB_CANCEL, 1, 0 },
	{ "GET", "/health", "liveness: always 200 while the server runs",
	  NULL, RESP_HEALTH, 0, 0 },
	{ "GET", "/metrics", "Prometheus metrics",
	  NULL, RESP_METRICS, 1, 0 },
	{ "GET", "/openapi.json", "this API as an OpenAPI 3.1 document",
	  NULL, RESP_OPENAPI, 0, 0 },
	{ "GET", "/docs", "human-readable API documentation",
	  NULL, RESP_HTML, 0, 0 },
	{ "GET", "/", "the playground: a page to chat with the models and ask the collections in a browser",
	  NULL, RESP_PLAYGROUND, 0, 0 },
	{ "GET", "/playground.js", "the playground's script",
	  NULL, RESP_PLAYGROUND, 0, 0 },
	{ "GET", "/playground.css", "the playground's stylesheet",
	  NULL, RESP_PLAYGROUND, 0, 0 },
};

const size_t serve_nroutes = sizeof(serve_routes) / sizeof(serve_routes[0]);
