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

#include <cJSON.h>

#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/sse.h"
#include "aichat/transfer.h"

struct llm_call;
struct model_ref;

struct chat_message {
	const char *role;    /* "system" | "developer" | "user" | "assistant" | "tool" */
	const char *content; /* its text (text parts joined); never NULL */
	/* The whole message in the OpenAI dialect when it holds more than
	 * role and text (content parts, tool_calls, tool_call_id, name);
	 * NULL otherwise.  Providers send this, not content. */
	const cJSON *json;
};

/*
 * The dialect in which a face wants the answer's events (llm_cbs.on_event):
 * none (text deltas only), OpenAI chat completion chunks / completion
 * objects, or Anthropic Messages events / message objects.  When the
 * dialect is the provider's own, the upstream's bytes are passed on as
 * they came; otherwise the provider's answer is translated.
 */
enum dialect {
	DIALECT_NONE,
	DIALECT_OPENAI,
	DIALECT_ANTHROPIC,
};

/* What to ask; all borrowed for the duration of llm_call_start(). */
struct chat_params {
	const char *system;                 /* NULL = none */
	const struct chat_message *messages;
	size_t nmessages;
	double temperature;                 /* < 0 = provider default */
	int temperature_default;            /* temperature is a default, not
					     * the caller's: a model that takes
					     * none may leave it out */
	int max_tokens;                     /* 0 = provider default */
	int stream;                         /* ask for an event stream */
	/* Further request fields in the OpenAI dialect (tools, tool_choice,
	 * response_format, top_p, stop, seed, ...), forwarded as given to an
	 * OpenAI-compatible provider and translated for others; a field the
	 * provider cannot honour is ERR_INVALID_REQUEST naming it.  NULL =
	 * none.  temperature and max_tokens here win over the members above. */
	const cJSON *extra;
	enum dialect dialect;               /* for llm_cbs.on_event */
	/* The caller's own request in that dialect, sent as it is (model
	 * and stream set) by a provider that speaks it natively; others use
	 * the members above.  NULL = none. */
	const cJSON *native;
};

struct provider_ops {
	const char *kind;
	/* Builds url, body and the headers of this request only
	 * (NULL-terminated, owned by out; left NULL when there are none). */
	int (*build)(struct llm_call *c, const struct chat_params *p,
		     struct buf *url, struct buf *body, char ***headers,
		     struct err *e);
	/* The headers every request to m carries (content type, auth,
	 * version): NULL-terminated, owned by the caller.  Asked once per
	 * engine, provider and key, never per request (llm_call_start()). */
	char **(*headers)(const struct model_ref *m);
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
 * failing api_key_cmd; then out->ops is already the provider's when the
 * provider is known (only its key is missing), else NULL.
 * model_ref_release(out) in every case.
 */
int model_resolve(const struct config *cfg, const char *name,
		  struct model_ref *out, struct err *e);
void model_ref_release(struct model_ref *m);
/* Provider-specific bounds checks that need no network (e.g. anthropic's
 * temperature 0..1).  ERR_INVALID_REQUEST naming the field. */
int model_check_params(const struct model_ref *m, const struct chat_params *p,
		       struct err *e);

/*
 * Model families: which request parameters a model takes, as one table of
 * data (family.c).  Reasoning models (OpenAI's o-series and gpt-5) take
 * max_completion_tokens instead of max_tokens and only the default
 * sampling parameters; Anthropic models take a thinking budget.
 */
struct model_family {
	const char *kind;        /* provider kind: "openai", "anthropic" */
	const char *prefix;      /* model id prefix; "" matches every id */
	const char *name;        /* for messages: "OpenAI reasoning models" */
	unsigned flags;
};
#define FAMILY_COMPLETION_TOKENS 0x1u /* max_tokens is max_completion_tokens */
#define FAMILY_FIXED_SAMPLING    0x2u /* temperature, top_p, penalties and
				       * logprobs only at their defaults */
#define FAMILY_THINKING          0x4u /* takes a thinking budget */

/* The family of model id on a provider of this kind (the first matching
 * row; never NULL: the last row of each kind matches every id). */
const struct model_family *model_family(const char *kind, const char *model);
/*
 * Fits an OpenAI-dialect request body to m's family in place: renames
 * max_tokens, leaves out a temperature that is only a default
 * (temperature_default), and refuses a sampling parameter the family does
 * not take (ERR_INVALID_REQUEST naming it and the model).
 */
int model_family_apply(const struct model_ref *m, cJSON *body,
		       int temperature_default, struct err *e);

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
	long cached_tokens;      /* of prompt_tokens, read from the
				  * provider's cache (0 if not reported) */
	long cache_write_tokens; /* of prompt_tokens, written to the
				  * provider's cache (Anthropic's
				  * cache_creation_input_tokens; 0 if not
				  * reported) */
	int have_usage;
	char finish_reason[32];  /* "stop", "length", ... ("" if unknown) */
	int attempts;
	int64_t first_token_ms;  /* from start, -1 if no token */
	int64_t total_ms;
	size_t delta_bytes;      /* answer bytes passed on */
	double retry_after;      /* the last answer's Retry-After in seconds
				  * (at most an hour), -1 if it had none */
};

struct llm_cbs {
	/* A piece of answer text, whole UTF-8 characters. */
	void (*on_delta)(void *ud, const char *s, size_t n);
	/* A failed attempt that will be retried after delay_ms (may be NULL). */
	void (*on_retry)(void *ud, const struct err *why, int attempt,
			 int64_t delay_ms);
	/* Exactly once, unless cancelled; r is valid during the call. */
	void (*on_done)(void *ud, const struct llm_result *r);
	/* Only when chat_params.dialect is not DIALECT_NONE: one event of the
	 * answer in that dialect -- a streamed event (name "" for OpenAI's
	 * unnamed data events) or, not streaming, the whole answer object
	 * (name NULL).  data is JSON text, valid during the call.  OpenAI's
	 * closing "[DONE]" is not an event: the face writes it. */
	void (*on_event)(void *ud, const char *name, const char *data, size_t n);
	/* The model's reasoning (Anthropic thinking), apart from the answer;
	 * may be NULL. */
	void (*on_reasoning)(void *ud, const char *s, size_t n);
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
/*
 * on: stop reading the upstream's answer (transfer_pause) until called
 * with 0; deltas already parsed may still arrive.  For a caller whose
 * reader is slower than the upstream.  An offline provider's answer is
 * bounded by its prompt and is not paused.
 */
void llm_call_pause(struct llm_call *c, int on);

/* ---- for provider implementations ---- */

const struct model_ref *llm_model(const struct llm_call *c);
struct loop *llm_loop(const struct llm_call *c);
void llm_emit(struct llm_call *c, const char *s, size_t n);
/* The dialect the caller wants events in (chat_params.dialect). */
enum dialect llm_dialect(const struct llm_call *c);
/* Passes one event in the caller's dialect on (see llm_cbs.on_event);
 * counts as the first token for the retry rule when it carries answer
 * content (answer != 0). */
void llm_emit_event(struct llm_call *c, const char *name, const char *data,
		    size_t n, int answer);
/* Passes one OpenAI chunk or completion object on: as it is when the
 * caller wants OpenAI, translated to Anthropic events when it wants those
 * (xlate.h).  Providers whose own dialect is not the caller's call this. */
void llm_emit_openai(struct llm_call *c, const cJSON *obj, int answer);
/* Replaces the counts; pass -1 to keep one as it is. */
void llm_set_usage(struct llm_call *c, long prompt, long completion);
/* Of the prompt tokens, cached came from the provider's cache (priced
 * as cached input); a negative count changes nothing. */
void llm_set_cached(struct llm_call *c, long cached);
/* Of the prompt tokens, written went into the provider's cache (priced
 * as cache_write); a negative count changes nothing. */
void llm_set_cache_write(struct llm_call *c, long written);
void llm_set_finish(struct llm_call *c, const char *reason);
/* The stream's end marker was seen. */
void llm_mark_complete(struct llm_call *c);
/* Reasoning text (not part of the answer): to on_reasoning. */
void llm_emit_reasoning(struct llm_call *c, const char *s, size_t n);
/* A provider's state for the whole call (all attempts), freed with fn
 * when the call ends; NULL until set. */
void *llm_state(const struct llm_call *c);
void llm_set_state(struct llm_call *c, void *state, void (*fn)(void *));
/* The end of an upstream stream ("[DONE]", message_stop): closes a
 * translation in progress.  Providers call it once per attempt. */
void llm_stream_end(struct llm_call *c);
/* Whether the caller asked for OpenAI's usage chunk (stream_options). */
int llm_wants_usage(const struct llm_call *c);
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
/* The result as the decoders have filled it so far (for the fuzzer,
 * which drives a decoder without running the call). */
const struct llm_result *llm_result_so_far(const struct llm_call *c);

/* 1 (the default): an OpenAI upstream's chunks and bodies for an OpenAI
 * caller are read without a tree when they are plain (openai.c, skim());
 * 0: every one goes through cJSON.  For the fuzzer, which checks that
 * both read the same. */
extern int openai_skim;
/* The same for an Anthropic upstream's events for an Anthropic caller
 * (anthropic.c, skim_event()). */
extern int anthropic_skim;
/* 0 when the data of an Anthropic event would be read by that skim, -1
 * when it would go through cJSON (for the tests). */
int anthropic_skims(const char *data, size_t len);

#endif
