/*
 * chat.h - the chat service: one request to a model, streamed or not.
 *
 * Both faces use it: the CLI's `aichat chat` and, later, serve's /chat and
 * /conversation.  A request is built from a JSON value already checked by
 * schema_validate() (ChatRequest or ConversationRequest), so the service
 * never sees an out-of-bounds field.  The service knows nothing of
 * terminals or HTTP: deltas go to a callback, the result to another.
 */
#ifndef AICHAT_CHAT_H
#define AICHAT_CHAT_H

#include <cJSON.h>

#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/provider.h"
#include "aichat/transfer.h"

struct schema;

struct chat_request {
	char *model;                   /* NULL = configured default */
	char *system;                  /* NULL = none */
	double temperature;            /* < 0 = provider default */
	int temperature_default;       /* see chat_params */
	int max_tokens;                /* 0 = provider default */
	int stream;
	struct chat_message *messages; /* roles, contents and json owned */
	size_t nmessages;
	cJSON *extra;                  /* owned; see chat_params */
	cJSON *native;                 /* owned; see chat_params */
	enum dialect dialect;
	int discard_text;              /* the caller streams the answer and
					* never reads the result's content:
					* it is not kept (stays "") */
};

/*
 * Fills req from a ChatRequest (a "prompt" field) or ConversationRequest
 * ("messages") that s validated, reading only the fields s declares: the
 * validator is the only judge of what the request says.  s NULL: a body
 * the caller built, all of prompt, system and messages read.  Strings are
 * copied; release with chat_request_release().
 */
void chat_request_from_json(struct chat_request *req, const cJSON *obj,
			    const struct schema *s);
/*
 * Fills req from an OpenAI chat completion request already checked for
 * shape (serve's /v1): messages kept as written (content parts, tool
 * calls), every other field but model, messages and stream in extra, for
 * the provider to forward or translate.  Events are asked for in dialect.
 */
void chat_request_from_openai(struct chat_request *req, const cJSON *obj,
			      enum dialect dialect);
/* Appends a message (copies role and content; json is taken, may be
 * NULL). */
void chat_request_add(struct chat_request *req, const char *role,
		      const char *content, cJSON *json);
void chat_request_release(struct chat_request *req);

/*
 * The most of a streamed answer a chat keeps in its result: the deltas
 * themselves all reach on_delta, but a result holds at most this many
 * bytes of text (cut on a UTF-8 boundary) and says it was cut.  A caller
 * whose output is the result (batch items, --json) fails instead
 * (chat_result_whole); one that streamed the answer keeps the beginning
 * for its log and says so.  A non-streamed answer is bounded by the
 * provider's 16 MiB body limit already.
 */
#define CHAT_CONTENT_MAX ((size_t)16 << 20)

struct chat_result {
	struct buf content;            /* the whole answer (partial on error),
					* at most CHAT_CONTENT_MAX bytes */
	int content_truncated;         /* the answer was longer than content */
	char model[256];               /* "provider:model" */
	long prompt_tokens, completion_tokens;
	long cached_tokens;            /* of prompt_tokens, from the cache */
	long cache_write_tokens;       /* of prompt_tokens, into the cache */
	int have_usage;
	int priced;                    /* the model has a price (prices.h) */
	int64_t cost_micros;           /* then: what this call cost, in
					* micro-dollars (0 without usage) */
	char finish_reason[32];
	struct err err;                /* ERR_OK on success */
	int attempts;
	int64_t first_token_ms, total_ms;
	double retry_after;            /* the upstream's last Retry-After, s;
					* -1 if none */
};

/*
 * Keeps the conversation within budget tokens (estimated at four bytes
 * a token, the usual rule of thumb) by dropping its oldest messages;
 * system messages and the last message stay.  Returns how many messages
 * were dropped.
 */
size_t chat_fit_budget(struct chat_request *req, long budget);
/* The tokens of req's system prompt and messages, estimated as above. */
long chat_estimate_tokens(const struct chat_request *req);

/* 0 when r holds the whole answer; -1 with e set when its content was
 * cut at CHAT_CONTENT_MAX (the answer is too large to be kept whole). */
int chat_result_whole(const struct chat_result *r, struct err *e);

/* ChatResponse object (plus "error" when r->err is set); owned by caller. */
cJSON *chat_result_json(const struct chat_result *r);

struct chat_cbs {
	void (*on_delta)(void *ud, const char *s, size_t n);
	void (*on_retry)(void *ud, const struct err *why, int attempt,
			 int64_t delay_ms);  /* may be NULL */
	/* Once, unless cancelled; r is valid only during the call. */
	void (*on_done)(void *ud, const struct chat_result *r);
	/* See llm_cbs: events in the request's dialect, and reasoning text;
	 * either may be NULL. */
	void (*on_event)(void *ud, const char *name, const char *data, size_t n);
	void (*on_reasoning)(void *ud, const char *s, size_t n);
};

struct chat;

/*
 * Resolves the model and starts the call on eng.  Returns NULL with e set
 * when nothing could be sent: ERR_CONFIG (unknown provider, missing key) or
 * ERR_INVALID_REQUEST (a bound the provider adds).  cfg, req and o are
 * borrowed during the call only; cbs and ud until on_done.
 */
struct chat *chat_start(struct engine *eng, const struct config *cfg,
			const struct chat_request *req, const struct llm_opts *o,
			const struct chat_cbs *cbs, void *ud, struct err *e);
/* Stops at once; no callback afterwards. */
void chat_cancel(struct chat *c);
/* on: stop reading the model's answer until chat_pause(c, 0), for a
 * reader slower than the model (llm_call_pause). */
void chat_pause(struct chat *c, int on);
/* The result so far: text received, model (valid until on_done or
 * chat_cancel; counts and finish_reason are filled in only by on_done). */
const struct chat_result *chat_progress(const struct chat *c);

#endif
