/*
 * serve.h - the HTTP face: routes over the same services as the CLI.
 *
 * The route table is data: the server dispatches on it and the OpenAPI
 * document is generated from it.
 */
#ifndef AICHAT_SERVE_H
#define AICHAT_SERVE_H

#include <stddef.h>

#include "aichat/schema.h"

enum route_response {
	RESP_CHAT,          /* ChatResponse, or SSE when stream is true */
	RESP_BATCH,         /* BatchResponse */
	RESP_OPENAI_CHAT,   /* OpenAI chat.completion / chunk stream */
	RESP_OPENAI_MODELS, /* OpenAI model list */
	RESP_OPENAI_EMBEDDINGS, /* OpenAI embedding list, as the provider gave it */
	RESP_ANTHROPIC,     /* Anthropic message / event stream */
	RESP_HEALTH,        /* {"status":"ok"} */
	RESP_METRICS,       /* Prometheus text */
	RESP_OPENAPI,       /* this document */
	RESP_HTML,          /* the /docs page */
	RESP_JOB_SUBMIT,    /* 202 job status */
	RESP_JOB_STATUS,    /* job status */
	RESP_JOB_RESULTS,   /* JSONL of finished items */
	RESP_JOB_CANCEL,    /* job status after cancelling */
	RESP_JOB_LIST,      /* the newest jobs' statuses */
	RESP_RAG_QUERY,     /* RAGResponse, or SSE with a metadata event */
	RESP_RAG_SEARCH,    /* ranked passages */
	RESP_RAG_COLLECTIONS, /* the collections, with their counts */
	RESP_PLAYGROUND,    /* the playground's page, script or stylesheet */
};

struct route_info {
	const char *method;          /* "GET" | "POST" | "DELETE" */
	const char *path;            /* "{id}" matches one path segment */
	const char *summary;
	const struct schema *request; /* JSON body schema, NULL = none */
	enum route_response response;
	int auth;                    /* needs an API key when keys are set */
	int streams;                 /* may answer text/event-stream */
};

extern const struct route_info serve_routes[];
extern const size_t serve_nroutes;

#endif
