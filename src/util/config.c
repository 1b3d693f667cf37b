/*
 * config.c - environment first, then the JSON config file.
 *
 * The file is small and read whole.  Validation is strict so that a typo
 * shows up as an error naming the key instead of a silently ignored field.
 */
#include "aichat/config.h"
#include "aichat/buf.h"
#include "aichat/json.h"
#include "aichat/money.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX (1024 * 1024)

const char *env_get(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static char *default_path(void)
{
	const char *x = env_get("XDG_CONFIG_HOME"), *home = env_get("HOME");
	struct buf b;

	buf_init(&b, 0);
	if (x)
		buf_printf(&b, "%s/aichat/config.json", x);
	else if (home)
		buf_printf(&b, "%s/.config/aichat/config.json", home);
	else
		return NULL;
	return buf_detach(&b);
}

static int read_file(const char *path, struct buf *out, struct err *e)
{
	FILE *f = fopen(path, "rb");
	char tmp[8192];
	size_t n;

	if (!f)
		return err_set(e, ERR_CONFIG, "cannot read config file '%s': %s",
			       path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (buf_append(out, tmp, n) < 0) {
			fclose(f);
			return err_set(e, ERR_CONFIG,
				       "config file '%s' is larger than 1 MiB", path);
		}
	}
	if (ferror(f)) {
		fclose(f);
		return err_set(e, ERR_CONFIG, "cannot read config file '%s': %s",
			       path, strerror(errno));
	}
	fclose(f);
	return 0;
}

/* A key of the file as messages show it: at most cap - 1 bytes, control
 * characters as '?', so that a key cannot drive the terminal. */
static const char *shown(const char *key, char *dst, size_t cap)
{
	size_t o = 0;

	for (; key && *key && o + 1 < cap; key++)
		dst[o++] = (unsigned char)*key < 0x20 || *key == 0x7f ? '?' : *key;
	dst[o] = '\0';
	return dst;
}

static int want_string(const char *path, const cJSON *n, const char *key,
		       struct err *e)
{
	if (!cJSON_IsString(n) || !*n->valuestring)
		return err_set(e, ERR_CONFIG,
			       "config file '%s': '%s' must be a non-empty string",
			       path, key);
	return 0;
}

static int parse_provider(struct config *c, const char *path,
			  const cJSON *p, struct err *e)
{
	struct provider_conf pc = { 0 };
	char key[160], name[65];
	const cJSON *f;

	snprintf(key, sizeof(key), "providers.%s", shown(p->string, name, sizeof(name)));
	if (!cJSON_IsObject(p))
		return err_set(e, ERR_CONFIG,
			       "config file '%s': '%s' must be an object", path, key);
	cJSON_ArrayForEach(f, p) {
		char fk[240], field[33];
		snprintf(fk, sizeof(fk), "%s.%s", key, shown(f->string, field, sizeof(field)));
		if (strcmp(f->string, "kind") && strcmp(f->string, "base_url") &&
		    strcmp(f->string, "api_key_env") && strcmp(f->string, "api_key_cmd"))
			return err_set(e, ERR_CONFIG,
				       "config file '%s': unknown key '%s' (expected kind, base_url, api_key_env, api_key_cmd)",
				       path, fk);
		if (want_string(path, f, fk, e) < 0)
			return -1;
	}
	const char *kind = json_str(p, "kind");
	/* "openai" and "anthropic" amend the built-in provider of that name. */
	if (!kind && (!strcmp(p->string, "openai") || !strcmp(p->string, "anthropic")))
		kind = p->string;
	if (!kind || (strcmp(kind, "openai") && strcmp(kind, "anthropic")))
		return err_set(e, ERR_CONFIG,
			       "config file '%s': '%s.kind' must be \"openai\" or \"anthropic\"",
			       path, key);
	pc.name = xstrdup(p->string);
	pc.kind = xstrdup(kind);
	if (json_str(p, "base_url"))
		pc.base_url = xstrdup(json_str(p, "base_url"));
	if (json_str(p, "api_key_env"))
		pc.api_key_env = xstrdup(json_str(p, "api_key_env"));
	if (json_str(p, "api_key_cmd"))
		pc.api_key_cmd = xstrdup(json_str(p, "api_key_cmd"));
	c->providers = xrealloc(c->providers,
				(c->nproviders + 1) * sizeof(*c->providers));
	c->providers[c->nproviders++] = pc;
	return 0;
}

/* The most a price may be: $100,000 per million tokens. */
#define PRICE_MAX 1e5

/* "prices": {"provider:model": {"input": 2.5, "output": 10,
 * "cached_input": 1.25, "cache_write": 3.125}}, dollars per million
 * tokens; cached_input and cache_write default to input. */
static int parse_price(struct config *c, const char *path, const cJSON *p,
		       struct err *e)
{
	static const char *const fields[] = { "input", "output", "cached_input",
					      "cache_write" };
	char name[65], fname[65];
	double v[4] = { -1, -1, -1, -1 };
	const cJSON *f;

	shown(p->string, name, sizeof(name));
	if (!cJSON_IsObject(p) || !strchr(p->string, ':'))
		return err_set(e, ERR_CONFIG,
			       "config file '%s': 'prices.%s' must be an object {\"input\": N, \"output\": N} for a model named provider:model",
			       path, name);
	cJSON_ArrayForEach(f, p) {
		size_t i = 0;
		while (i < 4 && strcmp(f->string, fields[i]))
			i++;
		if (i == 4)
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'prices.%s': unknown key '%s' (expected input, output, cached_input, cache_write)",
				       path, name, shown(f->string, fname, sizeof(fname)));
		if (!cJSON_IsNumber(f) || !(f->valuedouble >= 0 && f->valuedouble <= PRICE_MAX))
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'prices.%s.%s' must be a number of dollars per million tokens, 0 to 100000",
				       path, name, fields[i]);
		v[i] = f->valuedouble;
	}
	for (size_t i = 0; i < 2; i++)
		if (v[i] < 0)
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'prices.%s' needs '%s' (dollars per million tokens)",
				       path, name, fields[i]);
	for (size_t i = 2; i < 4; i++)
		if (v[i] < 0)
			v[i] = v[0];
	c->prices = xrealloc(c->prices, (c->nprices + 1) * sizeof(*c->prices));
	c->prices[c->nprices].model = xstrdup(p->string);
	c->prices[c->nprices].input = llround(v[0] * 1e6);
	c->prices[c->nprices].output = llround(v[1] * 1e6);
	c->prices[c->nprices].cached_input = llround(v[2] * 1e6);
	c->prices[c->nprices].cache_write = llround(v[3] * 1e6);
	c->nprices++;
	return 0;
}

/* "budgets": {"key:1": "5.00/day"}. */
static int parse_budget(struct config *c, const char *path, const cJSON *b,
			struct err *e)
{
	char name[65];
	int64_t micros;

	shown(b->string, name, sizeof(name));
	if (!cJSON_IsString(b) || money_parse_per_day(b->valuestring, &micros) < 0)
		return err_set(e, ERR_CONFIG,
			       "config file '%s': 'budgets.%s' must be an amount a day, such as \"5.00/day\"",
			       path, name);
	c->key_budgets = xrealloc(c->key_budgets,
				  (c->nkey_budgets + 1) * sizeof(*c->key_budgets));
	c->key_budgets[c->nkey_budgets].key = xstrdup(b->string);
	c->key_budgets[c->nkey_budgets].per_day = micros;
	c->nkey_budgets++;
	return 0;
}

/* "redis": {"url", "prefix", "fail", "timeout"}, each checked as the
 * options check theirs (the URL's shape is serve's to check). */
static int parse_redis(struct config *c, const char *path, const cJSON *r,
		       struct err *e)
{
	const cJSON *n;
	char name[65];

	if (!cJSON_IsObject(r))
		return err_set(e, ERR_CONFIG,
			       "config file '%s': 'redis' must be an object: {url, prefix, fail, timeout}",
			       path);
	cJSON_ArrayForEach(n, r) {
		const char *k = n->string;
		char key[32];
		char **dst = !strcmp(k, "url") ? &c->redis_url :
			     !strcmp(k, "prefix") ? &c->redis_prefix :
			     !strcmp(k, "fail") ? &c->redis_fail : NULL;

		if (!strcmp(k, "timeout")) {
			if (!cJSON_IsNumber(n) || !(n->valuedouble >= 0.001 && n->valuedouble <= 60))
				return err_set(e, ERR_CONFIG,
					       "config file '%s': 'redis.timeout' must be a number of seconds from 0.001 to 60",
					       path);
			c->redis_timeout = n->valuedouble;
			continue;
		}
		if (!dst)
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'redis.%s': unknown key (expected url, prefix, fail, timeout)",
				       path, shown(k, name, sizeof(name)));
		snprintf(key, sizeof(key), "redis.%s", k);
		if (want_string(path, n, key, e) < 0)
			return -1;
		if (dst == &c->redis_prefix && strlen(n->valuestring) > 64)
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'redis.prefix' must be at most 64 characters",
				       path);
		if (dst == &c->redis_fail && strcmp(n->valuestring, "auto") &&
		    strcmp(n->valuestring, "open") && strcmp(n->valuestring, "closed"))
			return err_set(e, ERR_CONFIG,
				       "config file '%s': 'redis.fail' must be auto, open or closed",
				       path);
		free(*dst);
		*dst = xstrdup(n->valuestring);
	}
	return 0;
}

int config_parse(struct config *c, const char *path, const char *text,
		 size_t len, struct err *e)
{
	size_t pos = 0;
	struct json_issue iss;
	cJSON *root = json_parse_strict(text, len, &pos, &iss);
	const cJSON *n;
	int line, col, rc = -1;

	memset(c, 0, sizeof(*c));
	c->log = 1;
	c->path = xstrdup(path);
	if (!root && iss.type) {
		if (!strcmp(iss.type, "duplicate_key"))
			return err_set(e, ERR_CONFIG, "config file '%s': %s at '%s'",
				       path, iss.msg, iss.loc);
		return err_set(e, ERR_CONFIG, "config file '%s': '%s' %s",
			       path, iss.loc, iss.msg);
	}
	if (!root) {
		json_position(text, pos, &line, &col);
		return err_set(e, ERR_CONFIG,
			       "config file '%s': invalid JSON at line %d, column %d",
			       path, line, col);
	}
	if (!cJSON_IsObject(root)) {
		err_set(e, ERR_CONFIG, "config file '%s': must be a JSON object",
			path);
		goto cleanup;
	}
	cJSON_ArrayForEach(n, root) {
		const char *k = n->string;
		const cJSON *a;

		if (!strcmp(k, "default_model")) {
			if (want_string(path, n, k, e) < 0)
				goto cleanup;
			/* A key given twice: the last one wins. */
			free(c->default_model);
			c->default_model = xstrdup(n->valuestring);
		} else if (!strcmp(k, "log")) {
			if (!cJSON_IsBool(n)) {
				err_set(e, ERR_CONFIG,
					"config file '%s': 'log' must be true or false", path);
				goto cleanup;
			}
			c->log = cJSON_IsTrue(n);
		} else if (!strcmp(k, "context_budget")) {
			if (!cJSON_IsObject(n)) {
				err_set(e, ERR_CONFIG,
					"config file '%s': 'context_budget' must be an object of model: tokens", path);
				goto cleanup;
			}
			cJSON_ArrayForEach(a, n) {
				char num[32], name[65];
				if (!cJSON_IsNumber(a) || !(a->valuedouble >= 1)) {
					err_set(e, ERR_CONFIG,
						"config file '%s': 'context_budget.%s' must be a positive number of tokens",
						path, shown(a->string, name, sizeof(name)));
					goto cleanup;
				}
				/* Clamped as a double: 1e999 is infinity to the
				 * JSON parser, and must not become "inf" or a
				 * number that overflows a long. */
				snprintf(num, sizeof(num), "%.0f",
					 a->valuedouble < 1e15 ? a->valuedouble : 1e15);
				c->budgets = xrealloc(c->budgets,
						      (c->nbudgets + 1) * sizeof(*c->budgets));
				c->budgets[c->nbudgets].name = xstrdup(a->string);
				c->budgets[c->nbudgets].target = xstrdup(num);
				c->nbudgets++;
			}
		} else if (!strcmp(k, "max_prompt_bytes")) {
			char num[32] = "";
			const char *v = cJSON_IsString(n) ? n->valuestring : num;

			/* A number of bytes, or a string with a unit: "16M". */
			if (cJSON_IsNumber(n) && n->valuedouble == floor(n->valuedouble) &&
			    fabs(n->valuedouble) < 1e15)
				snprintf(num, sizeof(num), "%.0f", n->valuedouble);
			if (config_parse_size(v, &c->max_prompt_bytes) < 0) {
				err_set(e, ERR_CONFIG,
					"config file '%s': 'max_prompt_bytes' must be a size in bytes, such as 16777216 or \"16M\"",
					path);
				goto cleanup;
			}
		} else if (!strcmp(k, "aliases")) {
			if (!cJSON_IsObject(n)) {
				err_set(e, ERR_CONFIG,
					"config file '%s': 'aliases' must be an object", path);
				goto cleanup;
			}
			cJSON_ArrayForEach(a, n) {
				char ak[100], name[65];
				snprintf(ak, sizeof(ak), "aliases.%s", shown(a->string, name, sizeof(name)));
				if (want_string(path, a, ak, e) < 0)
					goto cleanup;
				c->aliases = xrealloc(c->aliases,
						      (c->naliases + 1) * sizeof(*c->aliases));
				c->aliases[c->naliases].name = xstrdup(a->string);
				c->aliases[c->naliases].target = xstrdup(a->valuestring);
				c->naliases++;
			}
		} else if (!strcmp(k, "prices") || !strcmp(k, "budgets")) {
			int prices = !strcmp(k, "prices");
			if (!cJSON_IsObject(n)) {
				err_set(e, ERR_CONFIG, prices ?
					"config file '%s': 'prices' must be an object of provider:model: {input, output, cached_input, cache_write}" :
					"config file '%s': 'budgets' must be an object of key: \"AMOUNT/day\"",
					path);
				goto cleanup;
			}
			cJSON_ArrayForEach(a, n)
				if ((prices ? parse_price(c, path, a, e) :
				     parse_budget(c, path, a, e)) < 0)
					goto cleanup;
		} else if (!strcmp(k, "redis")) {
			if (parse_redis(c, path, n, e) < 0)
				goto cleanup;
		} else if (!strcmp(k, "providers")) {
			if (!cJSON_IsObject(n)) {
				err_set(e, ERR_CONFIG,
					"config file '%s': 'providers' must be an object", path);
				goto cleanup;
			}
			cJSON_ArrayForEach(a, n)
				if (parse_provider(c, path, a, e) < 0)
					goto cleanup;
		} else {
			char name[65];
			err_set(e, ERR_CONFIG,
				"config file '%s': unknown key '%s' (expected default_model, aliases, providers, log, context_budget, max_prompt_bytes, prices, budgets, redis)",
				path, shown(k, name, sizeof(name)));
			goto cleanup;
		}
	}
	rc = 0;
cleanup:
	cJSON_Delete(root);
	return rc;
}

int config_load(struct config *c, struct err *e)
{
	const char *explicit = env_get("AICHAT_CONFIG");
	char *path = explicit ? xstrdup(explicit) : default_path();
	struct buf text;
	int rc;

	memset(c, 0, sizeof(*c));
	c->log = 1;
	if (!path)
		return 0;
	if (!explicit) {
		FILE *f = fopen(path, "rb");
		if (!f && errno == ENOENT) {
			free(path);
			c->log = 1;
			return 0;
		}
		if (f)
			fclose(f);
	}
	buf_init(&text, CONFIG_MAX);
	rc = read_file(path, &text, e);
	if (rc == 0)
		rc = config_parse(c, path, text.ptr, text.len, e);
	buf_release(&text);
	free(path);
	return rc;
}

void config_release(struct config *c)
{
	for (size_t i = 0; i < c->naliases; i++) {
		free(c->aliases[i].name);
		free(c->aliases[i].target);
	}
	for (size_t i = 0; i < c->nproviders; i++) {
		free(c->providers[i].name);
		free(c->providers[i].kind);
		free(c->providers[i].base_url);
		free(c->providers[i].api_key_env);
		free(c->providers[i].api_key_cmd);
	}
	for (size_t i = 0; i < c->nbudgets; i++) {
		free(c->budgets[i].name);
		free(c->budgets[i].target);
	}
	free(c->budgets);
	for (size_t i = 0; i < c->nprices; i++)
		free(c->prices[i].model);
	free(c->prices);
	for (size_t i = 0; i < c->nkey_budgets; i++)
		free(c->key_budgets[i].key);
	free(c->key_budgets);
	free(c->aliases);
	free(c->providers);
	free(c->default_model);
	free(c->redis_url);
	free(c->redis_prefix);
	free(c->redis_fail);
	free(c->path);
	memset(c, 0, sizeof(*c));
}

const char *config_default_model(const struct config *c)
{
	const char *m = env_get("AICHAT_MODEL");

	if (m)
		return m;
	return c->default_model ? c->default_model : CONFIG_DEFAULT_MODEL;
}

const char *config_alias(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->naliases; i++)
		if (!strcmp(c->aliases[i].name, name))
			return c->aliases[i].target;
	return NULL;
}

const struct provider_conf *config_provider(const struct config *c,
					    const char *name)
{
	for (size_t i = 0; i < c->nproviders; i++)
		if (!strcmp(c->providers[i].name, name))
			return &c->providers[i];
	return NULL;
}

long config_context_budget(const struct config *c, const char *full_name,
			   const char **source)
{
	const char *v = env_get("AICHAT_CONTEXT_BUDGET");
	const char *def = NULL;

	if (source)
		*source = "context_budget";
	if (v && atol(v) > 0) {
		if (source)
			*source = "AICHAT_CONTEXT_BUDGET";
		return atol(v);
	}
	for (size_t i = 0; i < c->nbudgets; i++) {
		if (!strcmp(c->budgets[i].name, full_name))
			return atol(c->budgets[i].target);
		if (!strcmp(c->budgets[i].name, "default"))
			def = c->budgets[i].target;
	}
	return def ? atol(def) : 100000;
}

int config_parse_size(const char *s, size_t *out)
{
	unsigned long long n = 0, unit = 1;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (1ULL << 40))
			return -1;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (*p == ' ' && p[1])
		p++;
	switch (*p) {
	case 'k': case 'K': unit = 1ULL << 10; p++; break;
	case 'm': case 'M': unit = 1ULL << 20; p++; break;
	case 'g': case 'G': unit = 1ULL << 30; p++; break;
	}
	if (unit > 1 && *p == 'i')
		p++;
	if (*p == 'B')
		p++;
	if (*p || !n || n > (1ULL << 40) / unit)
		return -1;
	*out = (size_t)(n * unit);
	return 0;
}

int config_max_prompt_bytes(const struct config *c, size_t *max,
			    const char **source, struct err *e)
{
	const char *v = env_get("AICHAT_MAX_PROMPT_BYTES");

	if (v) {
		*source = "AICHAT_MAX_PROMPT_BYTES";
		if (config_parse_size(v, max) < 0)
			return err_set(e, ERR_CONFIG,
				       "AICHAT_MAX_PROMPT_BYTES must be a size in bytes, such as 16777216 or 16M, not '%.32s'",
				       v);
		return 0;
	}
	*source = "max_prompt_bytes";
	*max = c->max_prompt_bytes ? c->max_prompt_bytes : CONFIG_MAX_PROMPT_BYTES;
	return 0;
}
