/*
 * schema.c - the request tables.  Limits follow DESIGN.md: prompt
 * 1..32000 characters, temperature 0..2 (default 0.7), max_tokens
 * 1..16384, messages 1..50 with roles user/assistant/system.
 */
#include "aichat/schema.h"

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))
#define NB FIELD_NO_BOUND

static const char *const roles[] = { "user", "assistant", "system", NULL };

static const struct field message_fields[] = {
	{ "role", FIELD_STRING, 1, NULL, NB, NB, roles, NULL,
	  "who wrote the message: user, assistant or system" },
	{ "content", FIELD_STRING, 1, NULL, 1, 32000, NULL, NULL,
	  "the message text" },
};

const struct schema schema_message = {
	"Message", message_fields, NFIELDS(message_fields)
};

static const struct field chat_fields[] = {
	{ "prompt", FIELD_STRING, 1, NULL, 1, 32000, NULL, NULL,
	  "the prompt" },
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name" },
	{ "system", FIELD_STRING, 0, NULL, 1, 32000, NULL, NULL,
	  "system prompt" },
	{ "temperature", FIELD_NUMBER, 0, "0.7", 0, 2, NULL, NULL,
	  "sampling temperature" },
	{ "max_tokens", FIELD_INTEGER, 0, NULL, 1, 16384, NULL, NULL,
	  "upper bound on tokens generated" },
	{ "stream", FIELD_BOOL, 0, "false", NB, NB, NULL, NULL,
	  "stream the answer as Server-Sent Events" },
};

const struct schema schema_chat_request = {
	"ChatRequest", chat_fields, NFIELDS(chat_fields)
};

static const struct field conversation_fields[] = {
	{ "messages", FIELD_ARRAY, 1, NULL, 1, 50, NULL, &schema_message,
	  "the conversation so far, oldest first" },
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name" },
	{ "temperature", FIELD_NUMBER, 0, "0.7", 0, 2, NULL, NULL,
	  "sampling temperature" },
	{ "max_tokens", FIELD_INTEGER, 0, NULL, 1, 16384, NULL, NULL,
	  "upper bound on tokens generated" },
	{ "stream", FIELD_BOOL, 0, "true", NB, NB, NULL, NULL,
	  "stream the answer as Server-Sent Events" },
};

const struct schema schema_conversation_request = {
	"ConversationRequest", conversation_fields, NFIELDS(conversation_fields)
};

static const struct field batch_item_fields[] = {
	{ "id", FIELD_STRING, 1, NULL, 1, 200, NULL, NULL,
	  "the caller's id for this item, echoed in its result" },
	{ "prompt", FIELD_STRING, 1, NULL, 1, 32000, NULL, NULL,
	  "the prompt" },
};

const struct schema schema_batch_item = {
	"BatchItem", batch_item_fields, NFIELDS(batch_item_fields)
};

static const struct field batch_fields[] = {
	{ "items", FIELD_ARRAY, 1, NULL, 1, 100, NULL, &schema_batch_item,
	  "the prompts, answered in input order" },
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name" },
	{ "temperature", FIELD_NUMBER, 0, "0.7", 0, 2, NULL, NULL,
	  "sampling temperature" },
	{ "max_tokens", FIELD_INTEGER, 0, NULL, 1, 16384, NULL, NULL,
	  "upper bound on tokens generated per item" },
};

const struct schema schema_batch_request = {
	"BatchRequest", batch_fields, NFIELDS(batch_fields)
};

/* RAGRequest: DESIGN.md's query 1..2000 characters, top_k 1..20 (default
 * 5).  A collection name is further checked by rag_name_check(). */
static const struct field rag_fields[] = {
	{ "query", FIELD_STRING, 1, NULL, 1, 2000, NULL, NULL,
	  "the question or search words" },
	{ "top_k", FIELD_INTEGER, 0, "5", 1, 20, NULL, NULL,
	  "passages to retrieve" },
	{ "collection", FIELD_STRING, 0, "\"default\"", 1, 64, NULL, NULL,
	  "the collection to search" },
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name" },
	{ "stream", FIELD_BOOL, 0, "false", NB, NB, NULL, NULL,
	  "stream the answer as Server-Sent Events" },
};

const struct schema schema_rag_request = {
	"RAGRequest", rag_fields, NFIELDS(rag_fields)
};

/* RAGSearchRequest: retrieval only, the same bounds. */
static const struct field rag_search_fields[] = {
	{ "query", FIELD_STRING, 1, NULL, 1, 2000, NULL, NULL,
	  "the search words" },
	{ "top_k", FIELD_INTEGER, 0, "5", 1, 20, NULL, NULL,
	  "passages to return" },
	{ "collection", FIELD_STRING, 0, "\"default\"", 1, 64, NULL, NULL,
	  "the collection to search" },
};

const struct schema schema_rag_search_request = {
	"RAGSearchRequest", rag_search_fields, NFIELDS(rag_search_fields)
};

/* JobRequest: a background batch of up to 10,000 items. */
static const struct field job_fields[] = {
	{ "items", FIELD_ARRAY, 1, NULL, 1, 10000, NULL, &schema_batch_item,
	  "the prompts; results keep their order" },
	{ "model", FIELD_STRING, 0, NULL, 1, 200, NULL, NULL,
	  "provider:model, an alias, or a bare known name" },
	{ "concurrency", FIELD_INTEGER, 0, "10", 1, 100, NULL, NULL,
	  "upstream calls at once for this job" },
	{ "temperature", FIELD_NUMBER, 0, NULL, 0, 2, NULL, NULL,
	  "sampling temperature" },
	{ "max_tokens", FIELD_INTEGER, 0, NULL, 1, 16384, NULL, NULL,
	  "upper bound on tokens generated per item" },
	{ "callback_url", FIELD_STRING, 0, NULL, 1, 2000, NULL, NULL,
	  "receives a POST of the job's final status when it ends (done or failed),"
	  " at least once: tried again after 1, 2, 4 and 8 s until answered 2xx" },
};

const struct schema schema_job_request = {
	"JobRequest", job_fields, sizeof(job_fields) / sizeof(job_fields[0])
};
