/*
 * openapi.c - the OpenAPI 3.1 document of serve, generated from data: the
 * route table (serve_routes) says which operations exist, the request
 * schema tables (schema.c) describe their bodies, and the response tables
 * below describe what comes back.  Nothing here is hand-written JSON, so
 * the document cannot disagree with validation.
 *
 * The response tables use struct field as the request tables do, with two
 * local conventions the request tables never need:
 *   - a default of JSON null (NULLABLE) marks a field that may be null;
 *   - a FIELD_ARRAY without items holds scalars, and its enums name the
 *     JSON types those may have (only a validation error's loc needs it).
 *
 * What each route answers follows serve's handlers (server.c, http.c,
 * auth.c, routes_*.c): the /v1 routes speak OpenAI's error shape and
 * answer an invalid body with 400, the others answer ErrorResponse and
 * 422; 401 and 429 only where auth applies; 502, 503 and 504 only where
 * an upstream call is made.
 */
#include "aichat/openapi.h"
#include "aichat/schema.h"
#include "aichat/serve.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef AICHAT_VERSION
#define AICHAT_VERSION "unknown"
#endif

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define NB FIELD_NO_BOUND
#define NULLABLE "null"
#define REF_PREFIX "#/components/schemas/"

/* ==== response tables ==== */

static const struct field error_object_fields[] = {
	{ "code", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "stable machine-readable code: invalid_request, unauthorized, "
	  "rate_limited, payload_too_large, upstream_error, upstream_timeout, "
	  "overloaded, ..." },
	{ "message", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "what went wrong, for a human" },
};

static const struct schema schema_error_object = {
	"ErrorObject", error_object_fields, NFIELDS(error_object_fields)
};

static const struct field error_response_fields[] = {
	{ "error", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_error_object,
	  "the error" },
};

static const struct schema schema_error_response = {
	"ErrorResponse", error_response_fields, NFIELDS(error_response_fields)
};

static const char *const loc_types[] = { "string", "integer", NULL };

static const struct field validation_detail_fields[] = {
	{ "loc", FIELD_ARRAY, 1, NULL, NB, NB, loc_types, NULL,
	  "where: \"body\", then field names and array indexes" },
	{ "msg", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "what is wrong with the value" },
	{ "type", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "kind of failure: missing, string_too_short, less_than_equal, ..." },
};

static const struct schema schema_validation_detail = {
	"ValidationErrorDetail", validation_detail_fields,
	NFIELDS(validation_detail_fields)
};

static const struct field validation_error_fields[] = {
	{ "detail", FIELD_ARRAY, 1, NULL, 1, NB, NULL, &schema_validation_detail,
	  "every failing field, not just the first" },
};

static const struct schema schema_validation_error = {
	"ValidationError", validation_error_fields,
	NFIELDS(validation_error_fields)
};

static const struct field chat_response_fields[] = {
	{ "content", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the answer" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the model that answered, as provider:model" },
	{ "prompt_tokens", FIELD_INTEGER, 1, NULLABLE, 0, NB, NULL, NULL,
	  "tokens in the prompt; null when the provider did not say" },
	{ "completion_tokens", FIELD_INTEGER, 1, NULLABLE, 0, NB, NULL, NULL,
	  "tokens in the answer; null when the provider did not say" },
	{ "total_tokens", FIELD_INTEGER, 1, NULLABLE, 0, NB, NULL, NULL,
	  "prompt_tokens + completion_tokens; null when unknown" },
	{ "finish_reason", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL,
	  "why the answer ended (stop, length, ...); null when unknown" },
};

static const struct schema schema_chat_response = {
	"ChatResponse", chat_response_fields, NFIELDS(chat_response_fields)
};

static const struct field stream_delta_fields[] = {
	{ "content", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the next piece of the answer" },
};

static const struct schema schema_stream_delta = {
	"ChatStreamDelta", stream_delta_fields, NFIELDS(stream_delta_fields)
};

static const struct field stream_usage_fields[] = {
	{ "prompt_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "tokens in the prompt" },
	{ "completion_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "tokens in the answer" },
	{ "total_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "prompt_tokens + completion_tokens" },
	{ "finish_reason", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "why the answer ended, when known" },
};

static const struct schema schema_stream_usage = {
	"ChatStreamUsage", stream_usage_fields, NFIELDS(stream_usage_fields)
};

static const struct field batch_result_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the id of the item, as sent" },
	{ "content", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL,
	  "the answer; null when this item failed" },
	{ "error", FIELD_OBJECT, 1, NULLABLE, NB, NB, NULL, &schema_error_object,
	  "why this item failed; null when it succeeded" },
};

static const struct schema schema_batch_result = {
	"BatchResult", batch_result_fields, NFIELDS(batch_result_fields)
};

static const struct field batch_response_fields[] = {
	{ "results", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_batch_result,
	  "one result per item, in input order; one failure fails only its item" },
};

static const struct schema schema_batch_response = {
	"BatchResponse", batch_response_fields, NFIELDS(batch_response_fields)
};

static const char *const health_status[] = { "ok", "degraded", NULL };
static const char *const health_redis[] = { "up", "down", NULL };

static const struct field health_fields[] = {
	{ "status", FIELD_STRING, 1, NULL, NB, NB, health_status, NULL,
	  "ok while the server runs; degraded while its Redis (--redis) is down" },
	{ "redis", FIELD_STRING, 0, NULL, NB, NB, health_redis, NULL,
	  "with --redis: the connection's state" },
	{ "reason", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "why Redis is down" },
};

static const struct schema schema_health_response = {
	"HealthResponse", health_fields, NFIELDS(health_fields)
};

/* ---- background jobs ---- */

static const char *const job_states[] = {
	"queued", "running", "done", "failed", "cancelled", NULL
};

static const char *const callback_states[] = {
	"pending", "delivered", "failed", NULL
};

static const struct field job_counts_fields[] = {
	{ "total", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items in the job" },
	{ "done", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items finished" },
	{ "succeeded", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items answered" },
	{ "failed", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items that failed" },
	{ "pending", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items not finished" },
};

static const struct schema schema_job_counts = {
	"JobCounts", job_counts_fields, NFIELDS(job_counts_fields)
};

static const struct field job_status_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "job_ and 16 hex digits" },
	{ "status", FIELD_STRING, 1, NULL, NB, NB, job_states, NULL,
	  "done: every item finished (some may have failed); failed: every item failed" },
	{ "model", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL, "the model asked for" },
	{ "concurrency", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "items run at once" },
	{ "counts", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_job_counts, "progress" },
	{ "created_at", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "UTC, ISO 8601" },
	{ "started_at", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL, "UTC, ISO 8601" },
	{ "finished_at", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL, "UTC, ISO 8601" },
	{ "callback_status", FIELD_STRING, 0, NULL, NB, NB, callback_states, NULL,
	  "once a job with a callback_url has ended (done or failed): pending until a POST"
	  " of its final status is answered 2xx (delivered) or 5 attempts failed (failed)" },
	{ "callback_attempts", FIELD_INTEGER, 0, NULL, NB, NB, NULL, NULL,
	  "POSTs of the callback made so far" },
	{ "callback_error", FIELD_STRING, 0, NULLABLE, NB, NB, NULL, NULL,
	  "why the last attempt failed (HTTP 500, a transport error)" },
};

static const struct schema schema_job_status = {
	"JobStatus", job_status_fields, NFIELDS(job_status_fields)
};

static const char *const list_object[] = { "list", NULL };

static const struct field job_list_fields[] = {
	{ "object", FIELD_STRING, 1, NULL, NB, NB, list_object, NULL, "always \"list\"" },
	{ "data", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_job_status,
	  "the newest jobs first, at most 100" },
};

static const struct schema schema_job_list = {
	"JobList", job_list_fields, NFIELDS(job_list_fields)
};

/* ---- rag ---- */

static const char *const json_integer[] = { "integer", NULL };

static const struct field rag_source_fields[] = {
	{ "n", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "the number the answer cites: [n]" },
	{ "path", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "the document" },
	{ "lines", FIELD_ARRAY, 1, NULL, 2, 2, json_integer, NULL,
	  "first and last line of the passage" },
	{ "score", FIELD_NUMBER, 1, NULL, NB, NB, NULL, NULL, "relevance, higher is better" },
	{ "snippet", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "words around the match" },
};

static const struct schema schema_rag_source = {
	"RAGSource", rag_source_fields, NFIELDS(rag_source_fields)
};

static const char *const retrievals[] = { "hybrid", "bm25", NULL };

static const struct field rag_response_fields[] = {
	{ "answer", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "the model's answer" },
	{ "retrieval", FIELD_STRING, 1, NULL, NB, NB, retrievals, NULL,
	  "hybrid (BM25 and vectors, fused) or bm25" },
	{ "warning", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "why hybrid search was not possible, when it was not" },
	{ "sources", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_rag_source,
	  "the passages the answer was given, numbered" },
	{ "retrieval_latency_ms", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL,
	  "time spent finding the passages" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "provider:model" },
	{ "prompt_tokens", FIELD_INTEGER, 1, NULLABLE, NB, NB, NULL, NULL, "as reported" },
	{ "completion_tokens", FIELD_INTEGER, 1, NULLABLE, NB, NB, NULL, NULL, "as reported" },
};

static const struct schema schema_rag_response = {
	"RAGResponse", rag_response_fields, NFIELDS(rag_response_fields)
};

static const struct field rag_search_response_fields[] = {
	{ "results", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_rag_source,
	  "the best passages, best first" },
	{ "retrieval", FIELD_STRING, 1, NULL, NB, NB, retrievals, NULL,
	  "hybrid (BM25 and vectors, fused) or bm25" },
	{ "warning", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "why hybrid search was not possible, when it was not" },
	{ "retrieval_latency_ms", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL,
	  "time spent finding them" },
};

static const struct schema schema_rag_search_response = {
	"RAGSearchResponse", rag_search_response_fields,
	NFIELDS(rag_search_response_fields)
};

static const struct field rag_collection_fields[] = {
	{ "name", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "the collection's name" },
	{ "documents", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "documents indexed" },
	{ "chunks", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL, "passages searched" },
	{ "embed_model", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL,
	  "the model of its vectors; null: keyword search only" },
};

static const struct schema schema_rag_collection = {
	"RAGCollection", rag_collection_fields, NFIELDS(rag_collection_fields)
};

static const struct field rag_collections_response_fields[] = {
	{ "collections", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_rag_collection,
	  "every collection, by name" },
};

static const struct schema schema_rag_collections_response = {
	"RAGCollections", rag_collections_response_fields,
	NFIELDS(rag_collections_response_fields)
};

/* ---- the OpenAI shapes, as far as aichat produces them ---- */

static const char *const openai_error_types[] = {
	"invalid_request_error", "authentication_error", "rate_limit_error",
	"api_error", NULL
};

static const struct field openai_error_fields[] = {
	{ "message", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "what went wrong, for a human" },
	{ "type", FIELD_STRING, 1, NULL, NB, NB, openai_error_types, NULL,
	  "OpenAI error type" },
	{ "param", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL,
	  "the request field at fault, when there is one" },
	{ "code", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "aichat's stable error code (as in ErrorObject)" },
};

static const struct schema schema_openai_error = {
	"OpenAIError", openai_error_fields, NFIELDS(openai_error_fields)
};

static const struct field openai_error_response_fields[] = {
	{ "error", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_openai_error,
	  "the error" },
};

static const struct schema schema_openai_error_response = {
	"OpenAIErrorResponse", openai_error_response_fields,
	NFIELDS(openai_error_response_fields)
};

static const char *const error_type[] = { "error", NULL };

static const struct field anthropic_error_fields[] = {
	{ "type", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "invalid_request_error, authentication_error, rate_limit_error, "
	  "overloaded_error, api_error, ..." },
	{ "message", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "what went wrong" },
};

static const struct schema schema_anthropic_error = {
	"AnthropicError", anthropic_error_fields, NFIELDS(anthropic_error_fields)
};

static const struct field anthropic_error_response_fields[] = {
	{ "type", FIELD_STRING, 1, NULL, NB, NB, error_type, NULL, "always error" },
	{ "error", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_anthropic_error,
	  "the error" },
};

static const struct schema schema_anthropic_error_response = {
	"AnthropicErrorResponse", anthropic_error_response_fields,
	NFIELDS(anthropic_error_response_fields)
};

static const char *const message_type[] = { "message", NULL };
static const char *const assistant_role_a[] = { "assistant", NULL };

static const struct field anthropic_message_response_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "the message's id" },
	{ "type", FIELD_STRING, 1, NULL, NB, NB, message_type, NULL, "always message" },
	{ "role", FIELD_STRING, 1, NULL, NB, NB, assistant_role_a, NULL, "always assistant" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL, "the model that answered" },
	{ "content", FIELD_ARRAY, 1, NULL, NB, NB, NULL, NULL,
	  "content blocks: text, tool_use, thinking" },
	{ "stop_reason", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "end_turn, max_tokens, stop_sequence, tool_use, ..." },
	{ "usage", FIELD_OBJECT, 1, NULL, NB, NB, NULL, NULL,
	  "input_tokens, output_tokens and cache tokens" },
};

static const struct schema schema_anthropic_message_response = {
	"AnthropicMessageResponse", anthropic_message_response_fields,
	NFIELDS(anthropic_message_response_fields)
};

static const struct field usage_fields[] = {
	{ "prompt_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "tokens in the prompt" },
	{ "completion_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "tokens in the answer" },
	{ "total_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "prompt_tokens + completion_tokens" },
};

static const struct schema schema_usage = {
	"CompletionUsage", usage_fields, NFIELDS(usage_fields)
};

static const char *const assistant_role[] = { "assistant", NULL };

static const struct field assistant_message_fields[] = {
	{ "role", FIELD_STRING, 1, NULL, NB, NB, assistant_role, NULL,
	  "always assistant" },
	{ "content", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the answer" },
};

static const struct schema schema_assistant_message = {
	"AssistantMessage", assistant_message_fields,
	NFIELDS(assistant_message_fields)
};

static const struct field completion_choice_fields[] = {
	{ "index", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "the choice's place (0 unless the request asked for n > 1)" },
	{ "message", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_assistant_message,
	  "the answer" },
	{ "finish_reason", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "why the answer ended: stop, length, ..." },
};

static const struct schema schema_completion_choice = {
	"ChatCompletionChoice", completion_choice_fields,
	NFIELDS(completion_choice_fields)
};

static const char *const object_completion[] = { "chat.completion", NULL };

static const struct field completion_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the completion's id, as the provider gave it" },
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_completion, NULL,
	  "always chat.completion" },
	{ "created", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL,
	  "Unix time in seconds" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the model that answered" },
	{ "choices", FIELD_ARRAY, 1, NULL, 1, NB, NULL, &schema_completion_choice,
	  "the answers (one unless n > 1); every field the provider sent is "
	  "relayed, tool_calls, refusal and logprobs included" },
	{ "usage", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_usage,
	  "token counts" },
};

static const struct schema schema_completion = {
	"ChatCompletion", completion_fields, NFIELDS(completion_fields)
};

static const struct field chunk_delta_fields[] = {
	{ "role", FIELD_STRING, 0, NULL, NB, NB, assistant_role, NULL,
	  "assistant, when present" },
	{ "content", FIELD_STRING, 0, NULL, NB, NB, NULL, NULL,
	  "the next piece of the answer" },
};

static const struct schema schema_chunk_delta = {
	"ChatCompletionChunkDelta", chunk_delta_fields, NFIELDS(chunk_delta_fields)
};

static const struct field chunk_choice_fields[] = {
	{ "index", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "always 0" },
	{ "delta", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_chunk_delta,
	  "what this chunk adds; empty in the last one" },
	{ "finish_reason", FIELD_STRING, 1, NULLABLE, NB, NB, NULL, NULL,
	  "null until the last chunk, then why the answer ended" },
};

static const struct schema schema_chunk_choice = {
	"ChatCompletionChunkChoice", chunk_choice_fields,
	NFIELDS(chunk_choice_fields)
};

static const char *const object_chunk[] = { "chat.completion.chunk", NULL };

static const struct field chunk_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the request id, the same in every chunk" },
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_chunk, NULL,
	  "always chat.completion.chunk" },
	{ "created", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL,
	  "Unix time in seconds" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the model that answers" },
	{ "choices", FIELD_ARRAY, 1, NULL, 0, 1, NULL, &schema_chunk_choice,
	  "one choice; empty in the usage chunk" },
	{ "usage", FIELD_OBJECT, 0, NULL, NB, NB, NULL, &schema_usage,
	  "only in the last chunk, with stream_options.include_usage" },
};

static const struct schema schema_chunk = {
	"ChatCompletionChunk", chunk_fields, NFIELDS(chunk_fields)
};

static const char *const object_model[] = { "model", NULL };

static const struct field pricing_fields[] = {
	{ "input", FIELD_NUMBER, 1, NULL, 0, NB, NULL, NULL,
	  "US dollars per million prompt tokens" },
	{ "output", FIELD_NUMBER, 1, NULL, 0, NB, NULL, NULL,
	  "US dollars per million completion tokens" },
	{ "cached_input", FIELD_NUMBER, 1, NULL, 0, NB, NULL, NULL,
	  "US dollars per million prompt tokens read from the provider's cache" },
	{ "cache_write", FIELD_NUMBER, 1, NULL, 0, NB, NULL, NULL,
	  "US dollars per million prompt tokens written to the provider's cache" },
};

static const struct schema schema_pricing = {
	"ModelPricing", pricing_fields, NFIELDS(pricing_fields)
};

static const struct field model_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "a name to pass as model: provider:model or an alias" },
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_model, NULL,
	  "always model" },
	{ "created", FIELD_INTEGER, 1, NULL, NB, NB, NULL, NULL,
	  "always 0: not known" },
	{ "owned_by", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the provider" },
	{ "pricing", FIELD_OBJECT, 0, NULL, NB, NB, NULL, &schema_pricing,
	  "what the model costs, when aichat knows (the config file's prices, "
	  "else its built-in table); absent otherwise" },
};

static const struct schema schema_model = {
	"Model", model_fields, NFIELDS(model_fields)
};

static const char *const object_list[] = { "list", NULL };

static const struct field model_list_fields[] = {
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_list, NULL,
	  "always list" },
	{ "data", FIELD_ARRAY, 1, NULL, NB, NB, NULL, &schema_model,
	  "the default model, then the configured aliases" },
};

static const struct schema schema_model_list = {
	"ModelList", model_list_fields, NFIELDS(model_list_fields)
};

static const char *const object_embedding[] = { "embedding", NULL };

static const struct field embedding_fields[] = {
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_embedding, NULL,
	  "always embedding" },
	{ "index", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "the input it embeds, counted from 0" },
	{ "embedding", FIELD_ANY, 1, NULL, NB, NB, NULL, NULL,
	  "the vector: an array of numbers, or with encoding_format base64 a "
	  "base64 string of little-endian float32" },
};

static const struct schema schema_embedding = {
	"Embedding", embedding_fields, NFIELDS(embedding_fields)
};

static const struct field embedding_usage_fields[] = {
	{ "prompt_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "tokens in the input (mock:embed counts words)" },
	{ "total_tokens", FIELD_INTEGER, 1, NULL, 0, NB, NULL, NULL,
	  "the same" },
};

static const struct schema schema_embedding_usage = {
	"EmbeddingUsage", embedding_usage_fields, NFIELDS(embedding_usage_fields)
};

static const struct field embedding_list_fields[] = {
	{ "object", FIELD_STRING, 1, NULL, NB, NB, object_list, NULL,
	  "always list" },
	{ "data", FIELD_ARRAY, 1, NULL, 1, NB, NULL, &schema_embedding,
	  "one embedding per input, in input order" },
	{ "model", FIELD_STRING, 1, NULL, NB, NB, NULL, NULL,
	  "the model that embedded, as the provider names it" },
	{ "usage", FIELD_OBJECT, 1, NULL, NB, NB, NULL, &schema_embedding_usage,
	  "token counts" },
};

/* The provider's answer is relayed as it came: this is OpenAI's shape,
 * which mock:embed follows too. */
static const struct schema schema_embedding_list = {
	"EmbeddingList", embedding_list_fields, NFIELDS(embedding_list_fields)
};

/* Schemas no route's 200 names but a stream or an error does; listed so
 * that components/schemas holds them too. */
static const struct schema *const extra_schemas[] = {
	&schema_stream_delta, &schema_stream_usage, &schema_chunk,
};

/* ==== schemas ==== */

static void add_ref(cJSON *o, const char *name)
{
	char ref[160];

	snprintf(ref, sizeof(ref), REF_PREFIX "%s", name);
	cJSON_AddStringToObject(o, "$ref", ref);
}

static cJSON *ref_new(const char *name)
{
	cJSON *o = cJSON_CreateObject();

	add_ref(o, name);
	return o;
}

static int field_nullable(const struct field *f)
{
	return f->def && !strcmp(f->def, NULLABLE);
}

static const char *type_name(enum field_type t)
{
	switch (t) {
	case FIELD_STRING: return "string";
	case FIELD_NUMBER: return "number";
	case FIELD_INTEGER: return "integer";
	case FIELD_BOOL: return "boolean";
	case FIELD_ARRAY: return "array";
	case FIELD_OBJECT: return "object";
	case FIELD_ANY: break;
	}
	return "object";
}

/* "type": "T", or ["T", "null"] for a nullable field. */
static void add_type(cJSON *o, const struct field *f)
{
	cJSON *t;

	if (!field_nullable(f)) {
		cJSON_AddStringToObject(o, "type", type_name(f->type));
		return;
	}
	t = cJSON_AddArrayToObject(o, "type");
	cJSON_AddItemToArray(t, cJSON_CreateString(type_name(f->type)));
	cJSON_AddItemToArray(t, cJSON_CreateString("null"));
}

/* Lower and upper bound under the given keywords; FIELD_NO_BOUND is none.
 * Counts (lengths, items) are never negative, so any negative is none. */
static void add_bounds(cJSON *o, const struct field *f, const char *lo,
		       const char *hi, int count)
{
	if (count ? f->min >= 0 : f->min != FIELD_NO_BOUND)
		cJSON_AddNumberToObject(o, lo, f->min);
	if (count ? f->max >= 0 : f->max != FIELD_NO_BOUND)
		cJSON_AddNumberToObject(o, hi, f->max);
}

/* The JSON Schema of one property. */
static cJSON *field_json(const struct field *f)
{
	const struct schema_check *sc;
	cJSON *o = cJSON_CreateObject(), *items, *any, *e;
	const char *const *p;

	switch (f->type) {
	case FIELD_ANY:
		sc = schema_check_for(f);
		if (sc && sc->any_of) {
			/* "string|array|null" -> a list of JSON types. */
			cJSON *t = cJSON_AddArrayToObject(o, "type");
			char types[96], *save = NULL;
			snprintf(types, sizeof(types), "%s", sc->any_of);
			for (char *w = strtok_r(types, "|", &save); w;
			     w = strtok_r(NULL, "|", &save))
				cJSON_AddItemToArray(t, cJSON_CreateString(w));
		}
		break;
	case FIELD_OBJECT:
		if (f->items && field_nullable(f)) {
			any = cJSON_AddArrayToObject(o, "anyOf");
			cJSON_AddItemToArray(any, ref_new(f->items->name));
			e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "type", "null");
			cJSON_AddItemToArray(any, e);
		} else if (f->items) {
			add_ref(o, f->items->name);
		} else {
			add_type(o, f);
		}
		break;
	case FIELD_ARRAY:
		add_type(o, f);
		add_bounds(o, f, "minItems", "maxItems", 1);
		if (f->items) {
			cJSON_AddItemToObject(o, "items", ref_new(f->items->name));
		} else {
			/* Scalars; enums names their types. */
			items = cJSON_AddObjectToObject(o, "items");
			if (f->enums) {
				e = cJSON_AddArrayToObject(items, "type");
				for (p = f->enums; *p; p++)
					cJSON_AddItemToArray(e, cJSON_CreateString(*p));
			}
		}
		break;
	case FIELD_STRING:
		add_type(o, f);
		add_bounds(o, f, "minLength", "maxLength", 1);
		break;
	case FIELD_NUMBER:
	case FIELD_INTEGER:
		add_type(o, f);
		add_bounds(o, f, "minimum", "maximum", 0);
		break;
	case FIELD_BOOL:
		add_type(o, f);
		break;
	}
	if (f->enums && f->type != FIELD_ARRAY) {
		e = cJSON_AddArrayToObject(o, "enum");
		for (p = f->enums; *p; p++)
			cJSON_AddItemToArray(e, cJSON_CreateString(*p));
		if (field_nullable(f))
			cJSON_AddItemToArray(e, cJSON_CreateNull());
	}
	/* A null default only marks the field nullable (see the top). */
	if (f->def && !field_nullable(f)) {
		cJSON *d = cJSON_Parse(f->def);
		if (d)
			cJSON_AddItemToObject(o, "default", d);
	}
	if (f->help)
		cJSON_AddStringToObject(o, "description", f->help);
	return o;
}

/* Adds s, and every schema its fields name, to schemas (once each). */
static void add_schema(cJSON *schemas, const struct schema *s)
{
	cJSON *o, *props, *req = NULL;
	size_t i;

	if (cJSON_GetObjectItemCaseSensitive(schemas, s->name))
		return;
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(schemas, s->name, o);
	cJSON_AddStringToObject(o, "type", "object");
	props = cJSON_AddObjectToObject(o, "properties");
	for (i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];

		cJSON_AddItemToObject(props, f->name, field_json(f));
		if (f->required) {
			if (!req)
				req = cJSON_CreateArray();
			cJSON_AddItemToArray(req, cJSON_CreateString(f->name));
		}
	}
	if (req)
		cJSON_AddItemToObject(o, "required", req);
	for (i = 0; i < s->nfields; i++)
		if (s->fields[i].items)
			add_schema(schemas, s->fields[i].items);
}

/* ==== operations ==== */

static int is_openai(const struct route_info *r)
{
	return r->response == RESP_OPENAI_CHAT || r->response == RESP_OPENAI_MODELS ||
	       r->response == RESP_OPENAI_EMBEDDINGS;
}

/* The /v1 routes that answer a bad body with 400 in their own shape. */
static int is_v1(const struct route_info *r)
{
	return is_openai(r) || r->response == RESP_ANTHROPIC;
}

static const struct schema *error_schema(const struct route_info *r)
{
	return is_openai(r) ? &schema_openai_error_response :
	       r->response == RESP_ANTHROPIC ? &schema_anthropic_error_response :
	       &schema_error_response;
}

/* Routes that queue for an upstream slot (503 when the queue is full or
 * the server drains). */
static int calls_upstream(const struct route_info *r)
{
	return r->response == RESP_CHAT || r->response == RESP_BATCH ||
	       r->response == RESP_OPENAI_CHAT || r->response == RESP_ANTHROPIC ||
	       r->response == RESP_RAG_QUERY || r->response == RESP_OPENAI_EMBEDDINGS;
}

/* Routes whose answer is one upstream answer, so its failure is the
 * route's (a batch reports failures per item instead). */
static int answers_upstream(const struct route_info *r)
{
	return r->response == RESP_CHAT || r->response == RESP_OPENAI_CHAT ||
	       r->response == RESP_ANTHROPIC || r->response == RESP_RAG_QUERY ||
	       r->response == RESP_OPENAI_EMBEDDINGS;
}

static const struct schema *ok_schema(const struct route_info *r)
{
	switch (r->response) {
	case RESP_CHAT: return &schema_chat_response;
	case RESP_BATCH: return &schema_batch_response;
	case RESP_OPENAI_CHAT: return &schema_completion;
	case RESP_OPENAI_MODELS: return &schema_model_list;
	case RESP_OPENAI_EMBEDDINGS: return &schema_embedding_list;
	case RESP_ANTHROPIC: return &schema_anthropic_message_response;
	case RESP_HEALTH: return &schema_health_response;
	case RESP_JOB_SUBMIT:
	case RESP_JOB_STATUS:
	case RESP_JOB_CANCEL: return &schema_job_status;
	case RESP_JOB_LIST: return &schema_job_list;
	case RESP_RAG_QUERY: return &schema_rag_response;
	case RESP_RAG_SEARCH: return &schema_rag_search_response;
	case RESP_RAG_COLLECTIONS: return &schema_rag_collections_response;
	case RESP_JOB_RESULTS:
	case RESP_METRICS:
	case RESP_OPENAPI:
	case RESP_HTML:
	case RESP_PLAYGROUND:
		break;
	}
	return NULL;
}

/* Adds {type: string[, description]} as the schema of media type mt. */
static void add_text_content(cJSON *content, const char *mt, const char *desc)
{
	cJSON *m = cJSON_AddObjectToObject(content, mt);
	cJSON *s = cJSON_AddObjectToObject(m, "schema");

	cJSON_AddStringToObject(s, "type", "string");
	if (desc)
		cJSON_AddStringToObject(s, "description", desc);
}

static void add_json_content(cJSON *content, cJSON *schema)
{
	cJSON *m = cJSON_AddObjectToObject(content, "application/json");

	cJSON_AddItemToObject(m, "schema", schema);
}

static cJSON *response_new(cJSON *responses, const char *status,
			   const char *desc)
{
	cJSON *o = cJSON_AddObjectToObject(responses, status);

	cJSON_AddStringToObject(o, "description", desc);
	return o;
}

static cJSON *add_retry_after(cJSON *resp)
{
	cJSON *h = cJSON_AddObjectToObject(resp, "headers");
	cJSON *ra = cJSON_AddObjectToObject(h, "Retry-After");
	cJSON *s = cJSON_AddObjectToObject(ra, "schema");

	cJSON_AddStringToObject(ra, "description", "seconds to wait before trying again");
	cJSON_AddStringToObject(s, "type", "integer");
	return resp;
}

/* X-Budget-Limit and X-Budget-Remaining, which every answer to a key
 * with a daily budget carries (--budget). */
static void add_budget_headers(cJSON *resp)
{
	static const char *const names[] = { "X-Budget-Limit", "X-Budget-Remaining" };
	static const char *const descs[] = {
		"the API key's daily budget in US dollars, six decimals (keys with a --budget only)",
		"what is left of it today (UTC), six decimals (keys with a --budget only)",
	};
	cJSON *h = cJSON_GetObjectItemCaseSensitive(resp, "headers");

	if (!h)
		h = cJSON_AddObjectToObject(resp, "headers");
	for (int i = 0; i < 2; i++) {
		cJSON *x = cJSON_AddObjectToObject(h, names[i]);
		cJSON *s = cJSON_AddObjectToObject(x, "schema");
		cJSON_AddStringToObject(x, "description", descs[i]);
		cJSON_AddStringToObject(s, "type", "string");
		cJSON_AddStringToObject(s, "pattern", "^[0-9]+\\.[0-9]{6}$");
	}
}

static cJSON *error_response(cJSON *responses, const struct route_info *r,
			     const char *status, const char *desc)
{
	cJSON *o = response_new(responses, status, desc);

	add_json_content(cJSON_AddObjectToObject(o, "content"),
			 ref_new(error_schema(r)->name));
	return o;
}

static const char sse_aichat[] =
	"Server-Sent Events, each ending with a blank line.  Each piece of the "
	"answer is one `data: {\"content\":\"...\"}` (ChatStreamDelta).  When the "
	"answer is complete: `event: usage` with `data: {\"prompt_tokens\":N,"
	"\"completion_tokens\":N,\"total_tokens\":N,\"finish_reason\":\"...\"}` "
	"(ChatStreamUsage), then `data: [DONE]`.  A failure after the stream "
	"has started is `event: error` with `data: {\"error\":{\"code\":\"...\","
	"\"message\":\"...\"}}` (ErrorResponse), and ends the stream.";

static const char sse_rag[] =
	"Server-Sent Events: first `event: metadata` with `data: {\"sources\":"
	"[...],\"retrieval_latency_ms\":N}` (the numbered sources the answer "
	"cites), then as for /chat: each piece of the answer one `data: "
	"{\"content\":\"...\"}`, `event: usage`, `data: [DONE]`; a failure after "
	"the start is `event: error` with `data: {\"error\":{\"code\":\"...\","
	"\"message\":\"...\"}}`.";

static const char sse_anthropic[] =
	"Server-Sent Events in Anthropic's format: `event: message_start`, then "
	"per content block `content_block_start`, `content_block_delta` (text_delta, "
	"input_json_delta, thinking_delta) and `content_block_stop`, then "
	"`message_delta` (stop_reason, usage) and `message_stop`; an Anthropic "
	"model's events are passed on as they came, others' translated.  A "
	"failure after the start is `event: error` (AnthropicErrorResponse).";

static const char sse_openai[] =
	"Server-Sent Events in OpenAI's format: one `data: {...}` per "
	"ChatCompletionChunk (object chat.completion.chunk), the last one with "
	"a finish_reason; with stream_options.include_usage, then one chunk "
	"with empty choices and usage; then `data: [DONE]`.  A failure after "
	"the stream has started is `data: {\"error\":{...}}` "
	"(OpenAIErrorResponse), and ends the stream.";

/* The 422 of the aichat routes: FastAPI's shape for a body that fails
 * validation, ErrorResponse for a value the chosen model cannot take. */
static void add_invalid(cJSON *responses)
{
	cJSON *resp = response_new(responses, "422", "the body is not valid "
		"JSON or fails validation (ValidationError, with every failing "
		"field); a value the chosen model cannot take answers an "
		"ErrorResponse");
	cJSON *schema = cJSON_CreateObject();
	cJSON *one = cJSON_AddArrayToObject(schema, "oneOf");

	cJSON_AddItemToArray(one, ref_new(schema_validation_error.name));
	cJSON_AddItemToArray(one, ref_new(schema_error_response.name));
	add_json_content(cJSON_AddObjectToObject(resp, "content"), schema);
}

/* The 200 of route r. */
static void add_ok(cJSON *responses, const struct route_info *r)
{
	const struct schema *s = ok_schema(r);
	const struct field *stream;
	cJSON *resp, *content;
	char desc[200];

	switch (r->response) {
	case RESP_METRICS:
		resp = response_new(responses, "200", "metrics in the Prometheus "
				    "text exposition format 0.0.4");
		add_text_content(cJSON_AddObjectToObject(resp, "content"),
				 "text/plain", NULL);
		return;
	case RESP_OPENAPI:
		resp = response_new(responses, "200", "this document");
		content = cJSON_CreateObject();
		cJSON_AddStringToObject(content, "type", "object");
		add_json_content(cJSON_AddObjectToObject(resp, "content"), content);
		return;
	case RESP_HTML:
		resp = response_new(responses, "200", "a page that renders this "
				    "document; it needs nothing but this server");
		add_text_content(cJSON_AddObjectToObject(resp, "content"),
				 "text/html", NULL);
		return;
	case RESP_PLAYGROUND:
		resp = response_new(responses, "200", "a self-contained asset "
				    "of the playground, served with a strict "
				    "Content-Security-Policy");
		add_text_content(cJSON_AddObjectToObject(resp, "content"),
				 !strcmp(r->path, "/playground.js") ? "text/javascript" :
				 !strcmp(r->path, "/playground.css") ? "text/css" :
				 "text/html", NULL);
		return;
	case RESP_JOB_RESULTS:
		resp = response_new(responses, "200", "one JSON line per finished "
				    "item, in input order: {id, content, error, model, "
				    "prompt_tokens, completion_tokens, latency_ms, attempts}");
		add_text_content(cJSON_AddObjectToObject(resp, "content"),
				 "application/x-ndjson", NULL);
		return;
	case RESP_JOB_SUBMIT:
		resp = response_new(responses, "202", "the job is queued");
		add_json_content(cJSON_AddObjectToObject(resp, "content"),
				 ref_new(schema_job_status.name));
		return;
	default:
		break;
	}
	stream = r->streams && r->request ? schema_field(r->request, "stream") : NULL;
	if (stream)
		snprintf(desc, sizeof(desc), "the answer: JSON, or a stream of "
			 "Server-Sent Events with \"stream\": true (default: %s)",
			 stream->def ? stream->def : "false");
	else if (r->streams)
		snprintf(desc, sizeof(desc), "the answer: JSON, or a stream of "
			 "Server-Sent Events");
	else
		snprintf(desc, sizeof(desc), "%s", r->response == RESP_HEALTH ?
			 "the server is up" : "the answer");
	resp = response_new(responses, "200", desc);
	content = cJSON_AddObjectToObject(resp, "content");
	if (s)
		add_json_content(content, ref_new(s->name));
	if (r->streams)
		add_text_content(content, "text/event-stream",
				 r->response == RESP_OPENAI_CHAT ? sse_openai :
				 r->response == RESP_ANTHROPIC ? sse_anthropic :
				 r->response == RESP_RAG_QUERY ? sse_rag : sse_aichat);
}

static cJSON *operation_new(const struct route_info *r)
{
	cJSON *op = cJSON_CreateObject(), *responses, *rb, *content, *sec, *any;
	char id[128];
	size_t n = 0;
	const char *p;

	/* operationId: post_v1_chat_completions */
	for (p = r->method; *p && n < sizeof(id) - 1; p++)
		id[n++] = (char)tolower((unsigned char)*p);
	for (p = r->path; *p && n < sizeof(id) - 1; p++)
		id[n++] = isalnum((unsigned char)*p) ? *p : '_';
	id[n] = '\0';
	cJSON_AddStringToObject(op, "operationId", id);
	cJSON_AddStringToObject(op, "summary", r->summary);
	if (r->auth) {
		cJSON_AddStringToObject(op, "description", "Needs an API key when "
			"the server has keys (--api-key): send it as "
			"'Authorization: Bearer KEY' or 'X-API-Key: KEY'.");
		sec = cJSON_AddArrayToObject(op, "security");
		any = cJSON_CreateObject();
		cJSON_AddItemToArray(sec, any);
		cJSON_AddArrayToObject(any, "bearerAuth");
		any = cJSON_CreateObject();
		cJSON_AddItemToArray(sec, any);
		cJSON_AddArrayToObject(any, "apiKey");
	}
	if (strstr(r->path, "{id}")) {
		cJSON *params = cJSON_AddArrayToObject(op, "parameters");
		cJSON *pm = cJSON_CreateObject(), *ps;
		cJSON_AddItemToArray(params, pm);
		cJSON_AddStringToObject(pm, "name", "id");
		cJSON_AddStringToObject(pm, "in", "path");
		cJSON_AddBoolToObject(pm, "required", 1);
		cJSON_AddStringToObject(pm, "description", "the job's id");
		ps = cJSON_AddObjectToObject(pm, "schema");
		cJSON_AddStringToObject(ps, "type", "string");
		cJSON_AddStringToObject(ps, "pattern", "^job_[0-9a-f]{16}$");
	}
	if (r->request) {
		rb = cJSON_AddObjectToObject(op, "requestBody");
		cJSON_AddBoolToObject(rb, "required", 1);
		content = cJSON_AddObjectToObject(rb, "content");
		add_json_content(content, ref_new(r->request->name));
	}
	/* In order of status. */
	responses = cJSON_AddObjectToObject(op, "responses");
	add_ok(responses, r);
	if (r->request && is_v1(r))
		error_response(responses, r, "400", "the body is not valid JSON or "
			       "fails validation; error.param names the first "
			       "failing field");
	if (r->auth)
		error_response(responses, r, "401", "no API key, or not one of "
			       "the server's keys");
	if (strstr(r->path, "{id}"))
		error_response(responses, r, "404", "no job with this id (or not "
			       "an id at all)");
	if (r->request)
		error_response(responses, r, "413", "the body is larger than the "
			       "server's limit (--max-body)");
	if (r->request && !is_v1(r))
		add_invalid(responses);
	if (r->auth && (calls_upstream(r) || r->response == RESP_JOB_SUBMIT))
		add_budget_headers(add_retry_after(error_response(responses, r, "429",
			"rate limit exceeded (--rate-limit), or the API key's daily "
			"budget is spent (--budget): then Retry-After is the seconds "
			"until midnight UTC, when the day turns")));
	else if (r->auth)
		add_retry_after(error_response(responses, r, "429",
					       "rate limit exceeded"));
	if (answers_upstream(r))
		error_response(responses, r, "502", "the provider failed, could "
			       "not be reached, or answered something unreadable");
	if (calls_upstream(r))
		add_retry_after(error_response(responses, r, "503", "too many "
			"upstream calls in flight, or the server is shutting down"));
	if (answers_upstream(r))
		error_response(responses, r, "504", "the provider did not answer "
			       "in time");
	return op;
}

/* ==== the document ==== */

static void add_security_schemes(cJSON *components)
{
	cJSON *ss = cJSON_AddObjectToObject(components, "securitySchemes");
	cJSON *b = cJSON_AddObjectToObject(ss, "bearerAuth");
	cJSON *k = cJSON_AddObjectToObject(ss, "apiKey");

	cJSON_AddStringToObject(b, "type", "http");
	cJSON_AddStringToObject(b, "scheme", "bearer");
	cJSON_AddStringToObject(b, "description", "one of the server's API keys");
	cJSON_AddStringToObject(k, "type", "apiKey");
	cJSON_AddStringToObject(k, "in", "header");
	cJSON_AddStringToObject(k, "name", "X-API-Key");
	cJSON_AddStringToObject(k, "description", "one of the server's API keys");
}

char *openapi_document(void)
{
	cJSON *doc = cJSON_CreateObject(), *info, *paths, *components, *schemas;
	cJSON *item;
	const struct schema *s;
	char method[8], *text;
	size_t i, j;

	cJSON_AddStringToObject(doc, "openapi", "3.1.0");
	info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "aichat");
	cJSON_AddStringToObject(info, "version", AICHAT_VERSION);
	cJSON_AddStringToObject(info, "description", "LLM calls over HTTP: the "
		"same services as the aichat command line, as JSON and "
		"Server-Sent Events.  Request bodies are validated before "
		"anything is sent to a provider.");
	paths = cJSON_AddObjectToObject(doc, "paths");
	components = cJSON_AddObjectToObject(doc, "components");
	schemas = cJSON_AddObjectToObject(components, "schemas");
	add_security_schemes(components);

	for (i = 0; i < serve_nroutes; i++) {
		const struct route_info *r = &serve_routes[i];

		item = cJSON_GetObjectItemCaseSensitive(paths, r->path);
		if (!item)
			item = cJSON_AddObjectToObject(paths, r->path);
		for (j = 0; r->method[j] && j < sizeof(method) - 1; j++)
			method[j] = (char)tolower((unsigned char)r->method[j]);
		method[j] = '\0';
		cJSON_AddItemToObject(item, method, operation_new(r));
		if (r->request)
			add_schema(schemas, r->request);
		if ((s = ok_schema(r)))
			add_schema(schemas, s);
		if (r->request && !is_v1(r))
			add_schema(schemas, &schema_validation_error);
		add_schema(schemas, error_schema(r));
	}
	for (i = 0; i < NFIELDS(extra_schemas); i++)
		add_schema(schemas, extra_schemas[i]);

	text = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	if (!text) {
		/* cJSON fails only when malloc does: abort, as xmalloc would. */
		fputs("aichat: out of memory (printing the OpenAPI document)\n",
		      stderr);
		abort();
	}
	return text;
}

/* ==== the /docs page ==== */

/*
 * Everything inline: the page must work with no network beyond this
 * server.  Strings from the document reach the DOM only as textContent.
 */
static const char docs_html[] =
	"<!DOCTYPE html>\n"
	"<html lang=\"en\">\n"
	"<head>\n"
	"<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'\">\n"
	"<title>aichat API</title>\n"
	"<style>\n"
	"body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 62em; padding: 1em; color: #222; }\n"
	"h1 { margin: .2em 0; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }\n"
	"code, .path, pre { font-family: ui-monospace, monospace; }\n"
	".op { border: 1px solid #ccc; border-radius: 6px; margin: 1em 0; padding: .6em .9em; }\n"
	".head { display: flex; flex-wrap: wrap; gap: .6em; align-items: baseline; }\n"
	".badge { font-weight: bold; color: #fff; border-radius: 4px; padding: .1em .5em; font-size: .85em; }\n"
	".get { background: #2b7bb9; } .post { background: #2e8b57; } .other { background: #777; }\n"
	".path { font-weight: bold; } .key { font-size: .85em; color: #a60; }\n"
	"table { border-collapse: collapse; width: 100%; margin: .4em 0; font-size: .92em; }\n"
	"th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }\n"
	"th { background: #f4f4f4; }\n"
	"pre { white-space: pre-wrap; background: #f7f7f7; padding: .5em; margin: .3em 0; font-size: .88em; }\n"
	".muted { color: #666; } .err { color: #b00; }\n"
	"</style>\n"
	"</head>\n"
	"<body>\n"
	"<h1 id=\"title\">aichat API</h1>\n"
	"<p class=\"muted\">Machine-readable: <a href=\"/openapi.json\">/openapi.json</a></p>\n"
	"<div id=\"main\"><p class=\"muted\">loading /openapi.json ...</p></div>\n"
	"<script>\n"
	"(function () {\n"
	"\"use strict\";\n"
	"var main = document.getElementById(\"main\"), doc;\n"
	"\n"
	"/* Every string from the document goes in as text, never as markup. */\n"
	"function el(tag, cls, text) {\n"
	"\tvar e = document.createElement(tag);\n"
	"\tif (cls) e.className = cls;\n"
	"\tif (text !== undefined && text !== null) e.textContent = String(text);\n"
	"\treturn e;\n"
	"}\n"
	"function add(parent, child) { parent.appendChild(child); return child; }\n"
	"function refName(ref) { return String(ref).split(\"/\").pop(); }\n"
	"function link(name) {\n"
	"\tvar a = el(\"a\", null, name);\n"
	"\ta.setAttribute(\"href\", \"#schema-\" + encodeURIComponent(name));\n"
	"\treturn a;\n"
	"}\n"
	"function resolve(s) {\n"
	"\treturn s && s.$ref ? (doc.components.schemas[refName(s.$ref)] || {}) : s;\n"
	"}\n"
	"\n"
	"/* The type of a property, as text and links to schemas. */\n"
	"function typeNode(p) {\n"
	"\tvar span = el(\"span\"), parts, t, i, of, many;\n"
	"\tp = p || {};\n"
	"\tif (p.$ref) { add(span, link(refName(p.$ref))); return span; }\n"
	"\tparts = p.anyOf || p.oneOf;\n"
	"\tif (parts) {\n"
	"\t\tfor (i = 0; i < parts.length; i++) {\n"
	"\t\t\tif (i) add(span, document.createTextNode(\" | \"));\n"
	"\t\t\tadd(span, typeNode(parts[i]));\n"
	"\t\t}\n"
	"\t\treturn span;\n"
	"\t}\n"
	"\tt = Array.isArray(p.type) ? p.type : [p.type || \"any\"];\n"
	"\tfor (i = 0; i < t.length; i++) {\n"
	"\t\tif (i) add(span, document.createTextNode(\" | \"));\n"
	"\t\tif (t[i] === \"array\") {\n"
	"\t\t\tof = typeNode(p.items);\n"
	"\t\t\tmany = of.textContent.indexOf(\"|\") >= 0;\n"
	"\t\t\tadd(span, document.createTextNode(many ? \"array of (\" : \"array of \"));\n"
	"\t\t\tadd(span, of);\n"
	"\t\t\tif (many) add(span, document.createTextNode(\")\"));\n"
	"\t\t} else {\n"
	"\t\t\tadd(span, document.createTextNode(t[i]));\n"
	"\t\t}\n"
	"\t}\n"
	"\treturn span;\n"
	"}\n"
	"\n"
	"function range(lo, hi, unit) {\n"
	"\tvar s;\n"
	"\tif (lo === undefined && hi === undefined) return \"\";\n"
	"\tif (lo !== undefined && hi !== undefined) s = lo + \"..\" + hi;\n"
	"\telse s = lo !== undefined ? \">= \" + lo : \"<= \" + hi;\n"
	"\treturn unit ? s + \" \" + unit : s;\n"
	"}\n"
	"function bounds(p) {\n"
	"\tvar b = [range(p.minLength, p.maxLength, \"characters\"),\n"
	"\t\trange(p.minimum, p.maximum, \"\"),\n"
	"\t\trange(p.minItems, p.maxItems, \"items\")];\n"
	"\tif (p.enum) b.push(\"one of: \" + p.enum.map(function (v) {\n"
	"\t\treturn JSON.stringify(v);\n"
	"\t}).join(\", \"));\n"
	"\treturn b.filter(function (s) { return s; }).join(\"; \");\n"
	"}\n"
	"\n"
	"function row(tr, cells, tag) {\n"
	"\tcells.forEach(function (c) {\n"
	"\t\tvar td = add(tr, el(tag || \"td\"));\n"
	"\t\tif (c instanceof Node) add(td, c); else td.textContent = c;\n"
	"\t});\n"
	"}\n"
	"\n"
	"function fieldsTable(s) {\n"
	"\tvar t = el(\"table\"), props = (s && s.properties) || {};\n"
	"\tvar req = (s && s.required) || [];\n"
	"\trow(add(t, el(\"tr\")), [\"Field\", \"Type\", \"Required\", \"Default\", \"Bounds\",\n"
	"\t\t\"Description\"], \"th\");\n"
	"\tObject.keys(props).forEach(function (name) {\n"
	"\t\tvar p = props[name];\n"
	"\t\trow(add(t, el(\"tr\")), [el(\"code\", null, name), typeNode(p),\n"
	"\t\t\treq.indexOf(name) >= 0 ? \"yes\" : \"no\",\n"
	"\t\t\tp[\"default\"] === undefined ? \"\" : JSON.stringify(p[\"default\"]),\n"
	"\t\t\tbounds(p), p.description || \"\"]);\n"
	"\t});\n"
	"\treturn t;\n"
	"}\n"
	"\n"
	"function responses(op) {\n"
	"\tvar t = el(\"table\"), rs = op.responses || {};\n"
	"\trow(add(t, el(\"tr\")), [\"Status\", \"Description\", \"Content\"], \"th\");\n"
	"\tObject.keys(rs).forEach(function (status) {\n"
	"\t\tvar r = rs[status], cell = el(\"div\"), content = r.content || {};\n"
	"\t\tObject.keys(content).forEach(function (mt) {\n"
	"\t\t\tvar s = content[mt].schema || {}, line = add(cell, el(\"div\"));\n"
	"\t\t\tadd(line, el(\"code\", null, mt));\n"
	"\t\t\tadd(line, document.createTextNode(\": \"));\n"
	"\t\t\tadd(line, typeNode(s));\n"
	"\t\t\tif (!s.$ref && s.description)\n"
	"\t\t\t\tadd(cell, el(\"pre\", null, s.description));\n"
	"\t\t});\n"
	"\t\trow(add(t, el(\"tr\")), [el(\"code\", null, status),\n"
	"\t\t\tr.description || \"\", cell]);\n"
	"\t});\n"
	"\treturn t;\n"
	"}\n"
	"\n"
	"function operation(path, method, op) {\n"
	"\tvar box = el(\"div\", \"op\"), head = add(box, el(\"div\", \"head\")), body;\n"
	"\tvar m = method.toLowerCase();\n"
	"\tadd(head, el(\"span\", \"badge \" + (m === \"get\" || m === \"post\" ? m : \"other\"),\n"
	"\t\tmethod.toUpperCase()));\n"
	"\tadd(head, el(\"span\", \"path\", path));\n"
	"\tadd(head, el(\"span\", null, op.summary || \"\"));\n"
	"\tif (op.security && op.security.length)\n"
	"\t\tadd(head, el(\"span\", \"key\", \"API key\"));\n"
	"\tif (op.description) add(box, el(\"p\", \"muted\", op.description));\n"
	"\tbody = op.requestBody && op.requestBody.content &&\n"
	"\t\top.requestBody.content[\"application/json\"];\n"
	"\tif (body) {\n"
	"\t\tvar p = add(box, el(\"p\"));\n"
	"\t\tadd(p, document.createTextNode(\"Request body (application/json): \"));\n"
	"\t\tadd(p, typeNode(body.schema));\n"
	"\t\tadd(box, fieldsTable(resolve(body.schema)));\n"
	"\t}\n"
	"\tadd(box, el(\"p\", null, \"Responses:\"));\n"
	"\tadd(box, responses(op));\n"
	"\treturn box;\n"
	"}\n"
	"\n"
	"function render(d) {\n"
	"\tvar schemas;\n"
	"\tdoc = d;\n"
	"\tmain.textContent = \"\";\n"
	"\tdocument.getElementById(\"title\").textContent =\n"
	"\t\t(d.info && d.info.title || \"API\") + \" \" + (d.info && d.info.version || \"\");\n"
	"\tif (d.info && d.info.description)\n"
	"\t\tadd(main, el(\"p\", null, d.info.description));\n"
	"\tadd(main, el(\"h2\", null, \"Routes\"));\n"
	"\tObject.keys(d.paths || {}).forEach(function (path) {\n"
	"\t\tObject.keys(d.paths[path]).forEach(function (method) {\n"
	"\t\t\tadd(main, operation(path, method, d.paths[path][method]));\n"
	"\t\t});\n"
	"\t});\n"
	"\tadd(main, el(\"h2\", null, \"Schemas\"));\n"
	"\tschemas = (d.components && d.components.schemas) || {};\n"
	"\tObject.keys(schemas).forEach(function (name) {\n"
	"\t\tvar sec = add(main, el(\"section\"));\n"
	"\t\tsec.id = \"schema-\" + encodeURIComponent(name);\n"
	"\t\tadd(sec, el(\"h3\", null, name));\n"
	"\t\tadd(sec, fieldsTable(schemas[name]));\n"
	"\t});\n"
	"}\n"
	"\n"
	"fetch(\"/openapi.json\").then(function (r) {\n"
	"\tif (!r.ok) throw new Error(\"status \" + r.status);\n"
	"\treturn r.json();\n"
	"}).then(render).catch(function (e) {\n"
	"\tmain.textContent = \"\";\n"
	"\tadd(main, el(\"p\", \"err\", \"could not load /openapi.json: \" + e.message));\n"
	"});\n"
	"})();\n"
	"</script>\n"
	"</body>\n"
	"</html>\n";

const char *openapi_docs_html(void)
{
	return docs_html;
}
