/*
 * provider.h - model names, providers and one upstream call with retries.
 *
 * A model is named "provider:model" (openai:gpt-4o-mini, anthropic:claude-
 * sonnet-4-6, ollama:llama3.2, mock:echo, or a provider from the config
 * file); bare names resolve through config aliases and known prefixes.
 * model_resolve() does everything that can fail before the network: unknown
 * provider, missing API key.
 *
 * An llm_call is one logical request: it builds the provider's wire body,
 * runs it as a transfer on the engine (or offline, for mock), parses the
 * stream through the shared SSE parser, and retries transient failures with
 * backoff and jitter (honouring Retry-After) until the first delta has been
 * passed on -- never after.
 */
#ifndef AICHAT_PROVIDER_H
#define AICHAT_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/sse.h"
#include "aichat/transfer.h"

struct llm_call;

struct chat_message {
	const char *role;    /* "system" | "user" | "assistant" */
	const char *content;
};

/* What to ask; all borrowed for the duration of llm_call_start(). */
struct chat_params {
	const char *system;                 /* NULL = none */
	const struct chat_message *messages;
	size_t nmessages;
	double temperature;                 /* < 0 = provider default */
	int max_tokens;                     /* 0 = provider default */
	int stream;                         /* ask for an event stream */
};

struct provider_ops {
	const char *kind;
	/* Builds url, body and extra headers (NULL-terminated, owned by out). */
	int (*build)(struct llm_call *c, const struct chat_params *p,
		     struct buf *url, struct buf *body, char ***headers,
		     struct err *e);
	/* One SSE event of a streamed answer. */
	int (*stream_event)(struct llm_call *c, const struct sse_event *ev,
			    struct err *e);
	/* A whole non-streamed answer. */
	int (*parse_body)(struct llm_call *c, const char *body, size_t len,
			  struct err *e);
	/* Offline providers only: produce the answer on the loop. */
	int (*run_local)(struct llm_call *c, const struct chat_params *p,
			 struct err *e);
};

extern const struct provider_ops provider_openai, provider_anthropic,
	provider_mock;

/* A resolved model.  All strings owned; model_ref_release() frees them. */
struct model_ref {
	const struct provider_ops *ops;
	char *provider;      /* "openai", "ollama", a config name, ... */
	char *model;         /* the provider's model id */
	char *full;          /* "provider:model" */
	char *base_url;
	char *key_env;       /* for messages, where the key comes from: its
			      * variable, "its api_key_cmd", or NULL */
	char *api_key;       /* NULL when none is sent */
};

/*
 * Resolves name (NULL = the configured default).  The key is the
 * provider's variable when set, else what its api_key_cmd prints (run
 * once per process, see keycmd.h), else none: a missing key is an error
 * only at the vendor's own base URL (api.openai.com, api.anthropic.com).
 * Returns -1 with e: ERR_CONFIG for an unknown provider or model, a
 * missing API key (the message names the variable, never a key) or a
 * failing api_key_cmd.
 */
int model_resolve(const struct config *cfg, const char *name,
		  struct model_ref *out, struct err *e);
void model_ref_release(struct model_ref *m);
/* Provider-specific bounds checks that need no network (e.g. anthropic's
 * temperature 0..1).  ERR_INVALID_REQUEST naming the field. */
int model_check_params(const struct model_ref *m, const struct chat_params *p,
		       struct err *e);

struct llm_opts {
	int retries;             /* extra attempts after the first */
	int64_t connect_ms, first_byte_ms, idle_ms, total_ms;
	int64_t retry_base_ms;   /* first backoff step */
};

/* Defaults, with AICHAT_*_TIMEOUT overrides from the environment. */
void llm_opts_default(struct llm_opts *o);

/* Whether a failure with this code (and HTTP status, 0 if none) is worth
 * another attempt: connection errors, 429 (not insufficient_quota),
 * 500, 502, 503, 504, 408 and 529. */
int llm_retryable(enum err_code code, long status);
/* The wait before attempt number attempt + 1 (attempt >= 1): Retry-After
 * when given (retry_after >= 0, at most 60 s), else exponential backoff
 * from o->retry_base_ms with 50..100% jitter. */
int64_t llm_backoff_ms(const struct llm_opts *o, int attempt,
		       double retry_after);

struct llm_result {
	struct err err;          /* ERR_OK on success */
	long prompt_tokens, completion_tokens;
	int have_usage;
	char finish_reason[32];  /* "stop", "length", ... ("" if unknown) */
	int attempts;
	int64_t first_token_ms;  /* from start, -1 if no token */
	int64_t total_ms;
	size_t delta_bytes;      /* answer bytes passed on */
};

struct llm_cbs {
	/* A piece of answer text, whole UTF-8 characters. */
	void (*on_delta)(void *ud, const char *s, size_t n);
	/* A failed attempt that will be retried after delay_ms (may be NULL). */
	void (*on_retry)(void *ud, const struct err *why, int attempt,
			 int64_t delay_ms);
	/* Exactly once, unless cancelled; r is valid during the call. */
	void (*on_done)(void *ud, const struct llm_result *r);
};

/*
 * Starts the call.  m, p and o are borrowed only during this call; cbs and
 * ud until on_done.  Returns NULL with e filled when the request cannot be
 * built (nothing was sent).
 */
struct llm_call *llm_call_start(struct engine *eng, const struct model_ref *m,
				const struct chat_params *p,
				const struct llm_opts *o,
				const struct llm_cbs *cbs, void *ud,
				struct err *e);
/* Stops the call at once; no callback runs afterwards. */
void llm_call_cancel(struct llm_call *c);

/* ---- for provider implementations ---- */

const struct model_ref *llm_model(const struct llm_call *c);
struct loop *llm_loop(const struct llm_call *c);
void llm_emit(struct llm_call *c, const char *s, size_t n);
/* Replaces the counts; pass -1 to keep one as it is. */
void llm_set_usage(struct llm_call *c, long prompt, long completion);
void llm_set_finish(struct llm_call *c, const char *reason);
/* The stream's end marker was seen. */
void llm_mark_complete(struct llm_call *c);
/* Offline providers: state freed with fn when the call ends. */
void llm_set_local(struct llm_call *c, void *state, void (*fn)(void *));
/* Offline providers: the answer is finished (err NULL) or failed. */
void llm_local_done(struct llm_call *c, const struct err *err);
/* Maps an upstream HTTP error to the project's error, for provider p. */
void llm_http_error(const struct model_ref *m, long status,
		    const char *content_type, const char *body, size_t len,
		    struct err *e);
/* ERR_UPSTREAM_PROTOCOL "malformed WHAT from PROVIDER: 'snippet...'";
 * returns -1. */
int llm_malformed(struct llm_call *c, const char *what, const char *data,
		  size_t len, struct err *e);
/* Copies a provider message into dst, dropping control characters and any
 * occurrence of the API key. */
void llm_clean_message(const struct model_ref *m, char *dst, size_t cap,
		       const char *src, size_t len);

#endif
