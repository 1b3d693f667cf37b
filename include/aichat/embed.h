/*
 * embed.h - embedding models: text in, float vectors out.
 *
 * A model is named like a chat model, "provider:model"; only providers
 * that speak the OpenAI-compatible POST {base}/embeddings qualify (openai,
 * ollama, config providers of kind openai), plus mock:embed, an offline,
 * deterministic model whose 64-dimension vectors come from hashed words
 * and their letter trigrams, so texts sharing words (or most of a word)
 * are close.
 *
 * An embed job splits its texts into batches of EMBED_BATCH inputs and
 * runs them as transfers on one engine, at most EMBED_PARALLEL at a time
 * (refilled as each ends); each batch retries transient failures (429,
 * 5xx, connection errors) with the chat calls' backoff.  A batch that
 * fails for good marks only its own texts: the others keep their vectors.
 *
 * A relay (embed_relay_start) is the other use: one OpenAI embeddings
 * request, as a client wrote it, sent on with the same retries and its
 * answer handed back as it came; mock:embed answers it offline.
 */
#ifndef AICHAT_EMBED_H
#define AICHAT_EMBED_H

#include <stddef.h>

#include <cJSON.h>

#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/provider.h"
#include "aichat/transfer.h"

#define EMBED_BATCH 64
#define EMBED_PARALLEL 4
#define EMBED_MOCK_DIM 64
/* Vectors longer than this are refused as malformed. */
#define EMBED_DIM_MAX 65536

/* A resolved embedding model; strings owned, embed_model_release(). */
struct embed_model {
	struct model_ref ref;   /* ref.ops NULL for mock:embed */
	int mock;
};

/*
 * Resolves name ("provider:model" or an alias).  -1 with e: ERR_CONFIG for
 * an unknown provider or a missing key (as model_resolve), or a provider
 * without an embeddings API (anthropic, other mock models).
 */
int embed_resolve(const struct config *cfg, const char *name,
		  struct embed_model *out, struct err *e);
void embed_model_release(struct embed_model *m);
/* "provider:model", borrowed from m. */
const char *embed_model_name(const struct embed_model *m);

/* The outcome of a job; owned by the job, valid during on_done. */
struct embed_result {
	size_t n;               /* texts */
	int dim;                /* 0 when no batch succeeded */
	float *vecs;            /* n * dim, unit length; row i valid iff ok[i] */
	unsigned char *ok;
	size_t failed;          /* texts without a vector */
	struct err err;         /* the first batch failure, ERR_OK if none */
};

struct embed_job;

/*
 * Starts embedding texts[0..n) (copied) with m (copied) on eng.  on_done
 * runs once, from the loop, unless the job is cancelled; the job frees
 * itself after it.  NULL with e only when nothing could be started.
 */
struct embed_job *embed_start(struct engine *eng, const struct embed_model *m,
			      const char *const *texts, size_t n,
			      const struct llm_opts *o,
			      void (*on_done)(void *ud, const struct embed_result *r),
			      void *ud, struct err *e);
/* Stops the job at once; no callback runs afterwards. */
void embed_cancel(struct embed_job *j);

/*
 * Runs a job to its end on a loop of its own (for the CLI).  *r is filled
 * with owned arrays: embed_result_release().  Returns 0 when every text has
 * its vector; -1 with r->err otherwise (some vectors may still be there).
 */
int embed_run(const struct embed_model *m, const char *const *texts, size_t n,
	      const struct llm_opts *o, struct embed_result *r);
void embed_result_release(struct embed_result *r);

/* mock:embed's vector of text into v[0..EMBED_MOCK_DIM), unit length (or
 * zero for a text without words). */
void embed_mock(const char *text, float *v);

/* The answer to a relayed request; owned by the job, valid during
 * on_done. */
struct embed_reply {
	const char *body;       /* the 2xx answer, byte for byte as the
				 * provider sent it (mock:embed's: OpenAI's
				 * shape); NULL on failure */
	size_t len;
	struct err err;         /* ERR_OK, or why: a transport failure, or the
				 * provider's error status (llm_http_error) */
};

/*
 * Relays req, an OpenAI embeddings request already checked for shape
 * (schema_openai_embeddings_request), to m.  For an OpenAI-compatible
 * provider: req with every field as written but model set to the
 * provider's id, POSTed to {base_url}/embeddings with m's key, retried
 * like a batch.  mock:embed answers offline in OpenAI's shape: one
 * embed_mock() vector per input, index in input order, folded to
 * "dimensions" (1..EMBED_MOCK_DIM) and made unit length again, as numbers
 * or, with encoding_format base64, as base64 of little-endian float32;
 * usage counts words.  req and m are borrowed only during the call;
 * on_done runs once, from the loop, unless the job is cancelled
 * (embed_cancel()).  NULL with e (ERR_INVALID_REQUEST, the message
 * starting with the field's name in quotes) when mock:embed cannot answer
 * req: token ids instead of text, or more dimensions than it has.
 */
struct embed_job *embed_relay_start(struct engine *eng,
				    const struct embed_model *m, const cJSON *req,
				    const struct llm_opts *o,
				    void (*on_done)(void *ud, const struct embed_reply *r),
				    void *ud, struct err *e);

#endif
