/*
 * config.h - settings from the environment and an optional config file.
 *
 * The environment comes first; the JSON file ($AICHAT_CONFIG, else
 * $XDG_CONFIG_HOME/aichat/config.json, else ~/.config/aichat/config.json)
 * fills in what the environment leaves open:
 *
 *     { "default_model": "openai:gpt-4o-mini",
 *       "aliases":   { "fast": "openai:gpt-4o-mini" },
 *       "log": true,
 *       "max_prompt_bytes": "16M",
 *       "providers": { "groq": { "kind": "openai",
 *                                "base_url": "https://api.groq.com/openai/v1",
 *                                "api_key_env": "GROQ_API_KEY",
 *                                "api_key_cmd": "pass show groq" } },
 *       "prices":  { "openai:gpt-4o": { "input": 2.5, "output": 10,
 *                                       "cached_input": 1.25,
 *                                       "cache_write": 3.125 } },
 *       "budgets": { "key:1": "5.00/day" },
 *       "redis":   { "url": "redis://10.0.0.5:6379/0", "prefix": "aichat:",
 *                    "fail": "auto", "timeout": 0.1 } }
 *
 * All strings in struct config are owned by it; config_release() frees them.
 */
#ifndef AICHAT_CONFIG_H
#define AICHAT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/err.h"

#define CONFIG_DEFAULT_MODEL "openai:gpt-4o-mini"

/*
 * A provider of the file.  One named openai or anthropic of that kind
 * changes the built-in one field by field: what it leaves NULL keeps the
 * built-in's value (OPENAI_BASE_URL, OPENAI_API_KEY, ...).
 */
struct provider_conf {
	char *name;
	char *kind;         /* "openai" | "anthropic" */
	char *base_url;     /* NULL = the kind's default */
	char *api_key_env;  /* NULL = no variable */
	char *api_key_cmd;  /* shell command printing the key; NULL = none */
};

struct alias {
	char *name;
	char *target;
};

/* "prices": what a model costs, in micro-dollars per million tokens (the
 * file's dollars per million, times 10^6). */
struct config_price {
	char *model;         /* "provider:model" */
	int64_t input, output, cached_input, cache_write;
};

/* "budgets": serve's daily spending cap for one API key. */
struct config_budget {
	char *key;           /* the key's label, "key:N" */
	int64_t per_day;     /* micro-dollars a UTC day */
};

struct config {
	char *path;          /* file read, NULL if none */
	char *default_model; /* from the file; AICHAT_MODEL wins over it */
	struct alias *aliases;
	size_t naliases;
	struct provider_conf *providers;
	size_t nproviders;
	int log;             /* record exchanges in the conversation log */
	struct alias *budgets; /* "context_budget": model -> tokens (as text) */
	size_t nbudgets;
	size_t max_prompt_bytes; /* "max_prompt_bytes"; 0 = not in the file */
	struct config_price *prices;
	size_t nprices;
	struct config_budget *key_budgets;
	size_t nkey_budgets;
	/* "redis": serve's --redis, --redis-prefix, --redis-fail and
	 * --redis-timeout, for when neither the option nor (for the URL)
	 * $AICHAT_REDIS_URL is given.  NULL, or timeout 0: not in the file. */
	char *redis_url, *redis_prefix, *redis_fail;
	double redis_timeout;
};

/* The input budget in tokens for model full_name ("provider:model"):
 * $AICHAT_CONTEXT_BUDGET, else the file's "context_budget" entry for the
 * model (or its "default"), else 100000.  *source (when source is not
 * NULL) names the setting for messages: "AICHAT_CONTEXT_BUDGET" or
 * "context_budget". */
long config_context_budget(const struct config *c, const char *full_name,
			   const char **source);

#define CONFIG_MAX_PROMPT_BYTES ((size_t)16 << 20)

/*
 * The CLI's cap on the bytes of one prompt into *max: $AICHAT_MAX_PROMPT_BYTES,
 * else the file's "max_prompt_bytes", else CONFIG_MAX_PROMPT_BYTES.
 * *source names the setting for messages ("AICHAT_MAX_PROMPT_BYTES" or
 * "max_prompt_bytes").  -1 with e (ERR_CONFIG) when the variable is not
 * a size.
 */
int config_max_prompt_bytes(const struct config *c, size_t *max,
			    const char **source, struct err *e);

/*
 * A size in bytes: digits, optionally followed by K, M or G (powers of
 * 1024; "KiB", "MB" and the like are read the same), from 1 byte to
 * 1 TiB.  -1 when s is not one.
 */
int config_parse_size(const char *s, size_t *out);

/*
 * Reads the config file if there is one.  A file named by $AICHAT_CONFIG
 * must exist; the default locations are optional.  Returns -1 with e
 * (ERR_CONFIG) naming the file and the line:column of a syntax error, or
 * the key of a bad value.
 */
int config_load(struct config *c, struct err *e);
/* Same, from text (for tests and for a path already read). */
int config_parse(struct config *c, const char *path, const char *text,
		 size_t len, struct err *e);
void config_release(struct config *c);

/* The model to use when none is given: AICHAT_MODEL, the file, built-in. */
const char *config_default_model(const struct config *c);
/* Target of alias name, NULL if none. */
const char *config_alias(const struct config *c, const char *name);
/* Named provider from the file, NULL if none. */
const struct provider_conf *config_provider(const struct config *c,
					    const char *name);

/* A non-empty environment variable, or NULL. */
const char *env_get(const char *name);

#endif
