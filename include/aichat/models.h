/*
 * models.h - what the configured providers offer, as one merged list.
 *
 * A listing asks every configured provider at once, each with one GET on
 * the engine (no retries, one short time limit), and merges the answers
 * with the offline mock models and the config file's aliases:
 *
 *   openai     GET {base}/models, Bearer key if set; asked when
 *              OPENAI_API_KEY or OPENAI_BASE_URL is set
 *   anthropic  GET {base}/v1/models?limit=1000, x-api-key if set and
 *              anthropic-version; asked when ANTHROPIC_API_KEY or
 *              ANTHROPIC_BASE_URL is set
 *   ollama     GET {OLLAMA_HOST}/v1/models (its OpenAI-compatible list,
 *              the same base URL chat calls use); asked when OLLAMA_HOST
 *              is set, else probed at $AICHAT_OLLAMA_PROBE (default
 *              http://localhost:11434; "0" or "off": no probe), where a
 *              refused connection means "not running" and is no error
 *   config     each provider of the config file, in the file's order,
 *              as its kind says; one named like a built-in replaces it
 *   mock       mock:echo and mock:embed, offline
 *
 * Naming a provider (the `only` argument) asks it even when nothing in the
 * environment configures it.  A provider that fails -- no key, refused,
 * HTTP error, bad JSON, time limit -- adds nothing and keeps its error in
 * its source; the listing itself never fails once started.
 *
 * Every byte from a provider is bounded here: the answer (MODELS_BODY_MAX),
 * the models kept per provider (MODELS_PER_PROVIDER_MAX, the rest counted
 * as dropped), an id must be 1..MODELS_ID_MAX bytes of UTF-8 without
 * control characters (else it is dropped: a cleaned id would name another
 * model), a display name is cleaned and cut to MODELS_NAME_MAX bytes.
 */
#ifndef AICHAT_MODELS_H
#define AICHAT_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "aichat/config.h"
#include "aichat/err.h"
#include "aichat/transfer.h"

#define MODELS_TIMEOUT_MS 5000
#define MODELS_BODY_MAX (8u * 1024 * 1024)
#define MODELS_PER_PROVIDER_MAX 1000
#define MODELS_ID_MAX 256
#define MODELS_NAME_MAX 128
#define MODELS_CACHE_TTL_MS 60000

/* One model or alias; strings owned by the list. */
struct model_entry {
	char *id;          /* "provider:model", or the alias name */
	char *provider;    /* a model's provider; NULL for an alias */
	char *target;      /* an alias's model name as written; NULL for a model */
	char *name;        /* display name ("Claude Sonnet 4.6"), NULL if none */
	unsigned rank;     /* order of its source (aliases: after all) */
};

/* One provider considered, whether it answered or not. */
struct models_source {
	char *provider;
	int network;       /* asked (or meant to be asked) over HTTP */
	size_t listed;     /* models it added (once models_finish() ran) */
	size_t dropped;    /* ids refused, or past MODELS_PER_PROVIDER_MAX */
	struct err err;    /* ERR_OK, or why it added nothing (the message
			    * does not name the provider: prefix it) */
};

struct models_list {
	struct model_entry *v;     /* models by source, then by id; aliases last */
	size_t n, cap;
	struct models_source *src;
	size_t nsrc;
};

/* An owned, empty list; models_list_free() frees it and all it holds. */
struct models_list *models_list_new(void);
void models_list_free(struct models_list *l);

/*
 * Adds source provider (copied) and returns its index, the rank of the
 * models it adds until models_finish().
 */
unsigned models_add_source(struct models_list *l, const char *provider,
			   int network);
/*
 * Adds model of source rank (id "provider:model"), name being its display
 * name (NULL if none; cleaned and cut).  Returns 0, or -1 (nothing added)
 * when model is no acceptable id: empty, longer than MODELS_ID_MAX, not
 * UTF-8 or holding a control character.  Duplicates stay until
 * models_finish().
 */
int models_add(struct models_list *l, unsigned rank, const char *model,
	       const char *name);
/*
 * Parses a models answer of source rank -- {"data":[{"id":..}, ...]}, with
 * an optional "display_name" per model (Anthropic) -- into l, keeping at
 * most MODELS_PER_PROVIDER_MAX acceptable ids; the others are counted in
 * the source's dropped.  -1 with e (ERR_UPSTREAM_PROTOCOL) if the text is
 * no such document; nothing is added then.  Messages never quote the text.
 */
int models_parse(struct models_list *l, unsigned rank, const char *body,
		 size_t len, struct err *e);
/*
 * Adds the aliases of cfg whose model (followed through other aliases)
 * belongs to provider only (NULL: all of them), ranked after every source.
 */
void models_add_aliases(struct models_list *l, const struct config *cfg,
			const char *only);
/*
 * Orders the list (by rank, then id) and keeps one entry per id: an alias
 * over a model of the same name (the alias is what the name resolves to),
 * else the one of the earliest source.  Counts each source's listed anew.
 */
void models_finish(struct models_list *l);
/*
 * Whether the listing failed as a whole: at least one provider was asked
 * over the network and none of them answered.
 */
int models_all_failed(const struct models_list *l);
/*
 * {"models":[{"id","type":"model","provider","model"[,"name"]} |
 * {"id","type":"alias","target"}], "errors":[{"provider","code","message"}]}
 * Owned by the caller.
 */
cJSON *models_to_json(const struct models_list *l);

/* ---- listing on the engine ---- */

struct models_job;

/*
 * Starts a listing of every configured provider, or of provider only
 * (NULL: all), on eng; cfg is read during this call only.  Each provider
 * gets timeout_ms (0: MODELS_TIMEOUT_MS) for its one request.  on_done
 * runs once, from the loop, unless the job is cancelled, and owns the list
 * it is given (models_list_free(), or keep it: models_cache_put()); the
 * job frees itself after it.  NULL with e (ERR_USAGE, listing the known
 * providers) when only names no provider; nothing is sent then.
 */
struct models_job *models_start(struct engine *eng, const struct config *cfg,
				const char *only, int64_t timeout_ms,
				void (*on_done)(void *ud, struct models_list *l),
				void *ud, struct err *e);
/* Stops the job at once; no callback runs afterwards. */
void models_cancel(struct models_job *j);

/*
 * models_start() on a loop of its own, to the end (for the CLI).  Returns
 * the owned list, or NULL with e as models_start().
 */
struct models_list *models_run(const struct config *cfg, const char *only,
			       int64_t timeout_ms, struct err *e);

/* ---- a one-minute cache (for serve's GET /v1/models) ---- */

/*
 * Zero-initialised, it is empty.  Use from one thread (the loop's): put
 * the list a job hands to on_done, get it back while it is fresh.  A
 * caller that finds it stale starts one job and lets other requests wait
 * for that job instead of starting more.
 */
struct models_cache {
	struct models_list *list;  /* owned; NULL when empty */
	int64_t at_ms;             /* loop_now_ms() of the put */
};

/* The list if put less than MODELS_CACHE_TTL_MS before now_ms, else
 * NULL.  Borrowed: valid until the next put or release. */
const struct models_list *models_cache_get(const struct models_cache *c,
					   int64_t now_ms);
/* Takes l (owned; NULL empties the cache), freeing the list it replaces. */
void models_cache_put(struct models_cache *c, struct models_list *l,
		      int64_t now_ms);
void models_cache_release(struct models_cache *c);

#endif
