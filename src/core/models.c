/*
 * models.c - model listing; see models.h.
 *
 * A job builds its list up front -- one source per provider, the mock
 * models, the aliases -- so that only the providers' answers arrive
 * later.  Each provider to ask is one query: one transfer whose 2xx body
 * is collected whole (capped) and parsed at its end, its failure kept in
 * its source.  Every query starts from the loop at once, never inside
 * models_start(); the last one to end sorts the list and hands it over.
 */
#include "aichat/models.h"
#include "aichat/trust.h"
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/xalloc.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANTHROPIC_VERSION "2023-06-01"
#define ALIAS_RANK UINT_MAX
#define OLLAMA_PROBE_DEFAULT "http://localhost:11434"

/* ==== the list ==== */

struct models_list *models_list_new(void)
{
	return xcalloc(1, sizeof(struct models_list));
}

static void entry_release(struct model_entry *m)
{
	free(m->id);
	free(m->provider);
	free(m->target);
	free(m->name);
}

void models_list_free(struct models_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		entry_release(&l->v[i]);
	for (size_t i = 0; i < l->nsrc; i++)
		free(l->src[i].provider);
	free(l->v);
	free(l->src);
	free(l);
}

unsigned models_add_source(struct models_list *l, const char *provider,
			   int network)
{
	struct models_source *s;

	l->src = xrealloc(l->src, (l->nsrc + 1) * sizeof(*l->src));
	s = &l->src[l->nsrc];
	memset(s, 0, sizeof(*s));
	s->provider = xstrdup(provider);
	s->network = network;
	return (unsigned)l->nsrc++;
}

/* A new zeroed entry at the end of l. */
static struct model_entry *push(struct models_list *l)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* Length of the well-formed UTF-8 character at p (n bytes left), 0 if
 * there is none. */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned long cp, min;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2, cp = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3, cp = p[0] & 0x0f, min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4, cp = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* The character of len bytes at p is C0, DEL or C1 (U+0080..U+009F),
 * which a terminal may take for a command. */
static int is_control(const unsigned char *p, size_t len)
{
	if (len == 1)
		return p[0] < 0x20 || p[0] == 0x7f;
	return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

static int id_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), k;

	if (!n || n > MODELS_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i += k) {
		k = utf8_char(p + i, n - i);
		if (!k || is_control(p + i, k))
			return 0;
	}
	return 1;
}

/* s as trust_clean() leaves it, cut at a character boundary to
 * MODELS_NAME_MAX bytes; owned, NULL when nothing is left. */
static char *clean_name(const char *s)
{
	char name[MODELS_NAME_MAX + 1];

	if (!trust_clean(name, sizeof(name), s, strlen(s)))
		return NULL;
	return xstrdup(name);
}

int models_add(struct models_list *l, unsigned rank, const char *model,
	       const char *name)
{
	struct model_entry *m;
	struct buf id;

	if (!id_ok(model))
		return -1;
	m = push(l);
	buf_init(&id, 0);
	buf_printf(&id, "%s:%s", l->src[rank].provider, model);
	m->id = buf_detach(&id);
	m->provider = xstrdup(l->src[rank].provider);
	m->name = name ? clean_name(name) : NULL;
	m->rank = rank;
	return 0;
}

int models_parse(struct models_list *l, unsigned rank, const char *body,
		 size_t len, struct err *e)
{
	cJSON *root = json_parse(body, len, NULL);
	const cJSON *data = root ? json_arr(root, "data") : NULL, *item;
	struct models_source *s = &l->src[rank];
	size_t kept = 0;

	if (!data) {
		cJSON_Delete(root);
		return err_set(e, ERR_UPSTREAM_PROTOCOL,
			       "malformed models list: %s",
			       root ? "no \"data\" array" : "not JSON");
	}
	cJSON_ArrayForEach(item, data) {
		const char *id = json_str(item, "id");

		if (kept < MODELS_PER_PROVIDER_MAX && id &&
		    models_add(l, rank, id, json_str(item, "display_name")) == 0)
			kept++;
		else
			s->dropped++;
	}
	cJSON_Delete(root);
	return 0;
}

/* The provider part of what alias target names, after other aliases. */
static int alias_of(const struct config *cfg, const char *target,
		    const char *provider)
{
	const char *next, *colon;
	int depth = 0;

	while ((next = config_alias(cfg, target)) && depth++ < 8)
		target = next;
	colon = strchr(target, ':');
	return colon && (size_t)(colon - target) == strlen(provider) &&
	       !strncmp(target, provider, strlen(provider));
}

void models_add_aliases(struct models_list *l, const struct config *cfg,
			const char *only)
{
	for (size_t i = 0; i < cfg->naliases; i++) {
		const struct alias *a = &cfg->aliases[i];
		struct model_entry *m;

		if ((only && !alias_of(cfg, a->target, only)) ||
		    !id_ok(a->name) || !id_ok(a->target))
			continue;
		m = push(l);
		m->id = xstrdup(a->name);
		m->target = xstrdup(a->target);
		m->rank = ALIAS_RANK;
	}
}

/* By id; of equal ids, an alias first, then the earliest source. */
static int by_id(const void *pa, const void *pb)
{
	const struct model_entry *a = pa, *b = pb;
	int c = strcmp(a->id, b->id);

	if (c)
		return c;
	if (!a->target != !b->target)
		return a->target ? -1 : 1;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

/* By rank (aliases last), then id. */
static int by_rank(const void *pa, const void *pb)
{
	const struct model_entry *a = pa, *b = pb;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return strcmp(a->id, b->id);
}

void models_finish(struct models_list *l)
{
	size_t o = 0;

	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_id);
	for (size_t i = 0; i < l->n; i++) {
		if (o && !strcmp(l->v[o - 1].id, l->v[i].id))
			entry_release(&l->v[i]);
		else
			l->v[o++] = l->v[i];
	}
	l->n = o;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), by_rank);
	for (size_t i = 0; i < l->nsrc; i++)
		l->src[i].listed = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].rank < l->nsrc)
			l->src[l->v[i].rank].listed++;
}

int models_all_failed(const struct models_list *l)
{
	size_t asked = 0, answered = 0;

	for (size_t i = 0; i < l->nsrc; i++) {
		asked += l->src[i].network;
		answered += l->src[i].network && l->src[i].err.code == ERR_OK;
	}
	return asked && !answered;
}

cJSON *models_to_json(const struct models_list *l)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *models = cJSON_AddArrayToObject(root, "models");
	cJSON *errors = cJSON_AddArrayToObject(root, "errors");

	for (size_t i = 0; i < l->n; i++) {
		const struct model_entry *m = &l->v[i];
		cJSON *o = cJSON_CreateObject();

		cJSON_AddItemToArray(models, o);
		cJSON_AddStringToObject(o, "id", m->id);
		if (m->target) {
			cJSON_AddStringToObject(o, "type", "alias");
			cJSON_AddStringToObject(o, "target", m->target);
			continue;
		}
		cJSON_AddStringToObject(o, "type", "model");
		cJSON_AddStringToObject(o, "provider", m->provider);
		cJSON_AddStringToObject(o, "model", m->id + strlen(m->provider) + 1);
		if (m->name)
			cJSON_AddStringToObject(o, "name", m->name);
	}
	for (size_t i = 0; i < l->nsrc; i++) {
		const struct models_source *s = &l->src[i];
		cJSON *o;

		if (s->err.code == ERR_OK)
			continue;
		o = cJSON_CreateObject();
		cJSON_AddItemToArray(errors, o);
		cJSON_AddStringToObject(o, "provider", s->provider);
		cJSON_AddStringToObject(o, "code", err_code_name(s->err.code));
		cJSON_AddStringToObject(o, "message", s->err.msg);
	}
	return root;
}

/* ==== the job ==== */

struct query {
	struct models_job *job;
	unsigned rank;              /* its source */
	int probe;                  /* a refused connection is no error */
	struct model_ref ref;       /* for the key and error messages */
	char *url;
	char *headers[3];           /* NULL-terminated */
	struct transfer *tr;
	struct buf answer;
};

struct models_job {
	struct engine *eng;
	struct models_list *list;
	struct query *q;
	size_t nq, running;
	int64_t timeout_ms;
	struct loop_timer *kick;
	void (*on_done)(void *ud, struct models_list *l);
	void *ud;
};

static const struct builtin {
	const char *name, *base_env, *base, *key_env;
	const struct provider_ops *ops;
} builtins[] = {
	{ "openai", "OPENAI_BASE_URL", "https://api.openai.com/v1",
	  "OPENAI_API_KEY", &provider_openai },
	{ "anthropic", "ANTHROPIC_BASE_URL", "https://api.anthropic.com",
	  "ANTHROPIC_API_KEY", &provider_anthropic },
};

static void job_free(struct models_job *j)
{
	for (size_t i = 0; i < j->nq; i++) {
		struct query *q = &j->q[i];

		if (q->tr)
			transfer_cancel(q->tr);
		model_ref_release(&q->ref);
		free(q->url);
		for (char **h = q->headers; *h; h++)
			free(*h);
		buf_release(&q->answer);
	}
	if (j->kick)
		loop_del_timer(engine_loop(j->eng), j->kick);
	models_list_free(j->list);
	free(j->q);
	free(j);
}

void models_cancel(struct models_job *j)
{
	if (j)
		job_free(j);
}

/* printf into an owned string. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
	struct buf t;
	va_list ap;

	buf_init(&t, 0);
	va_start(ap, fmt);
	buf_vprintf(&t, fmt, ap);
	va_end(ap);
	return buf_detach(&t);
}

/* A query of source rank to the provider of ref (taken over). */
static void add_query(struct models_job *j, unsigned rank,
		      struct model_ref *ref, int probe)
{
	struct query *q;
	size_t nh = 0;
	int anthropic = ref->ops == &provider_anthropic;

	j->q = xrealloc(j->q, (j->nq + 1) * sizeof(*j->q));
	q = &j->q[j->nq++];
	memset(q, 0, sizeof(*q));
	q->rank = rank;
	q->probe = probe;
	q->ref = *ref;
	memset(ref, 0, sizeof(*ref));
	buf_init(&q->answer, MODELS_BODY_MAX);
	if (anthropic) {
		/* The list is paged, 20 models a page unless asked for more. */
		q->url = strf("%s/v1/models?limit=1000", q->ref.base_url);
		q->headers[nh++] = xstrdup("anthropic-version: " ANTHROPIC_VERSION);
		if (q->ref.api_key)
			q->headers[nh++] = strf("x-api-key: %s", q->ref.api_key);
	} else {
		q->url = strf("%s/models", q->ref.base_url);
		if (q->ref.api_key)
			q->headers[nh++] = strf("Authorization: Bearer %s", q->ref.api_key);
	}
}

/* url less its trailing slashes, owned. */
static char *base_dup(const char *url)
{
	size_t n = strlen(url);

	for (; n && url[n - 1] == '/'; n--)
		;
	return xstrndup(url, n);
}

static void builtin_source(struct models_job *j, const struct builtin *b,
			   int named)
{
	const char *key = env_get(b->key_env), *base = env_get(b->base_env);
	struct model_ref ref = { 0 };
	unsigned rank;

	if (!key && !base && !named)
		return;
	rank = models_add_source(j->list, b->name, 1);
	if (!key && !base) {
		err_set(&j->list->src[rank].err, ERR_CONFIG,
			"no API key: set %s (or %s for a server that needs none)",
			b->key_env, b->base_env);
		return;
	}
	ref.ops = b->ops;
	ref.provider = xstrdup(b->name);
	ref.base_url = base_dup(base ? base : b->base);
	ref.key_env = xstrdup(b->key_env);
	ref.api_key = key ? xstrdup(key) : NULL;
	trust_add_secret(key);
	add_query(j, rank, &ref, 0);
}

/* Asked when OLLAMA_HOST is set or ollama is named; else probed. */
static void ollama_source(struct models_job *j, const struct config *cfg,
			  int named)
{
	const char *probe = env_get("AICHAT_OLLAMA_PROBE");
	struct model_ref ref = { 0 };
	int quiet = !named && !env_get("OLLAMA_HOST");

	if (quiet && probe && (!strcmp(probe, "0") || !strcmp(probe, "off")))
		return;
	if (model_resolve(cfg, "ollama:-", &ref, NULL) < 0) {
		model_ref_release(&ref);
		return;
	}
	if (quiet) {
		char *host = base_dup(probe ? probe : OLLAMA_PROBE_DEFAULT);
		free(ref.base_url);
		ref.base_url = strf("%s/v1", host);
		free(host);
	}
	add_query(j, models_add_source(j->list, "ollama", 1), &ref, quiet);
}

static void config_source(struct models_job *j, const struct config *cfg,
			  const struct provider_conf *pc)
{
	unsigned rank = models_add_source(j->list, pc->name, 1);
	struct model_ref ref = { 0 };
	struct err e;
	char *name;

	if (pc->api_key_env && !env_get(pc->api_key_env)) {
		err_set(&j->list->src[rank].err, ERR_CONFIG, "no API key: set %s",
			pc->api_key_env);
		return;
	}
	name = strf("%s:-", pc->name);
	if (model_resolve(cfg, name, &ref, &e) < 0) {
		j->list->src[rank].err = e;
		model_ref_release(&ref);
	} else {
		add_query(j, rank, &ref, 0);
	}
	free(name);
}


static int is_builtin(const char *name)
{
	return !strcmp(name, "openai") || !strcmp(name, "anthropic") ||
	       !strcmp(name, "ollama") || !strcmp(name, "mock");
}

/* ERR_USAGE naming the providers there are. */
static int unknown(const struct config *cfg, const char *name, struct err *e)
{
	struct buf b;

	buf_init(&b, 0);
	for (size_t i = 0; i < cfg->nproviders; i++)
		if (!is_builtin(cfg->providers[i].name))
			buf_printf(&b, ", %.64s", cfg->providers[i].name);
	err_set(e, ERR_USAGE,
		"unknown provider '%.64s' (known: openai, anthropic, ollama, mock%.150s)",
		name, b.ptr);
	buf_release(&b);
	return -1;
}

/* Drops source i of l (a probe that found nothing); later ranks move up. */
static void drop_source(struct models_list *l, unsigned i)
{
	free(l->src[i].provider);
	memmove(&l->src[i], &l->src[i + 1], (l->nsrc - i - 1) * sizeof(*l->src));
	l->nsrc--;
	for (size_t k = 0; k < l->n; k++)
		if (l->v[k].rank > i && l->v[k].rank != ALIAS_RANK)
			l->v[k].rank--;
}

static void job_finish(struct models_job *j)
{
	struct models_list *l = j->list;
	void (*on_done)(void *, struct models_list *) = j->on_done;
	void *ud = j->ud;

	for (size_t i = j->nq; i-- > 0;)
		if (j->q[i].probe &&
		    l->src[j->q[i].rank].err.code == ERR_UPSTREAM_UNREACHABLE)
			drop_source(l, j->q[i].rank);
	models_finish(l);
	j->list = NULL;
	job_free(j);
	on_done(ud, l);
}

static int on_data(void *ud, const char *p, size_t n)
{
	struct query *q = ud;
	struct err e;

	if (buf_append(&q->answer, p, n) < 0) {
		err_set(&e, ERR_UPSTREAM_PROTOCOL, "models list larger than %u MiB",
			MODELS_BODY_MAX >> 20);
		return transfer_fail(q->tr, &e);
	}
	return 0;
}

static void on_transfer_done(void *ud, struct transfer_result *r)
{
	struct query *q = ud;
	struct models_job *j = q->job;
	struct err *e = &j->list->src[q->rank].err;
	size_t plen = strlen(q->ref.provider);

	q->tr = NULL;
	if (r->err.code != ERR_OK) {
		*e = r->err;
	} else if (r->status < 200 || r->status >= 300) {
		llm_http_error(&q->ref, r->status, r->content_type,
			       r->error_body.ptr, r->error_body.len, e);
		/* "openai returned HTTP 500": the caller names the provider. */
		if (!strncmp(e->msg, q->ref.provider, plen) && e->msg[plen] == ' ')
			memmove(e->msg, e->msg + plen + 1, strlen(e->msg + plen));
	} else {
		models_parse(j->list, q->rank, q->answer.ptr, q->answer.len, e);
	}
	buf_release(&q->answer);
	if (--j->running == 0)
		job_finish(j);
}

static const struct transfer_cbs query_cbs = {
	.on_data = on_data,
	.on_done = on_transfer_done,
};

static void on_kick(struct loop *l, void *data)
{
	struct models_job *j = data;

	(void)l;
	j->kick = NULL;
	/* Held at one while starting, so no query ending early (none can
	 * yet: curl reports from the loop) finishes the job under us. */
	j->running = 1;
	for (size_t i = 0; i < j->nq; i++) {
		struct query *q = &j->q[i];
		struct transfer_req req = { 0 };

		q->job = j;
		req.url = q->url;
		req.headers = (const char *const *)q->headers;
		req.connect_ms = req.first_byte_ms = req.idle_ms = req.total_ms =
			j->timeout_ms;
		q->tr = transfer_start(j->eng, &req, &query_cbs, q,
				       &j->list->src[q->rank].err);
		if (q->tr)
			j->running++;
	}
	if (--j->running == 0)
		job_finish(j);
}

struct models_job *models_start(struct engine *eng, const struct config *cfg,
				const char *only, int64_t timeout_ms,
				void (*on_done)(void *ud, struct models_list *l),
				void *ud, struct err *e)
{
	struct models_job *j;

	if (only && !is_builtin(only) && !config_provider(cfg, only)) {
		unknown(cfg, only, e);
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	j->eng = eng;
	j->list = models_list_new();
	j->timeout_ms = timeout_ms > 0 ? timeout_ms : MODELS_TIMEOUT_MS;
	j->on_done = on_done;
	j->ud = ud;
	/* A config provider named like a built-in one replaces it, as in
	 * model_resolve(). */
	for (size_t i = 0; i < sizeof(builtins) / sizeof(*builtins); i++)
		if (!config_provider(cfg, builtins[i].name) &&
		    (!only || !strcmp(only, builtins[i].name)))
			builtin_source(j, &builtins[i], only != NULL);
	if (!config_provider(cfg, "ollama") && (!only || !strcmp(only, "ollama")))
		ollama_source(j, cfg, only != NULL);
	for (size_t i = 0; i < cfg->nproviders; i++)
		if (!only || !strcmp(only, cfg->providers[i].name))
			config_source(j, cfg, &cfg->providers[i]);
	if (!config_provider(cfg, "mock") && (!only || !strcmp(only, "mock"))) {
		unsigned rank = models_add_source(j->list, "mock", 0);
		models_add(j->list, rank, "echo", "offline: answers with the prompt");
		models_add(j->list, rank, "embed", "offline: embeddings for rag");
	}
	models_add_aliases(j->list, cfg, only);
	j->kick = loop_add_timer(engine_loop(eng), 0, on_kick, j);
	return j;
}

/* ==== synchronous use ==== */

struct sync {
	struct loop *loop;
	struct models_list *list;
};

static void sync_done(void *ud, struct models_list *l)
{
	struct sync *s = ud;

	s->list = l;
	loop_stop(s->loop);
}

struct models_list *models_run(const struct config *cfg, const char *only,
			       int64_t timeout_ms, struct err *e)
{
	struct sync s = { 0 };
	struct engine *eng;

	if (!(s.loop = loop_new())) {
		err_set(e, ERR_INTERNAL, "cannot create the event loop");
		return NULL;
	}
	eng = engine_new(s.loop);
	if (models_start(eng, cfg, only, timeout_ms, sync_done, &s, e))
		loop_run(s.loop);
	engine_free(eng);
	loop_free(s.loop);
	return s.list;
}

/* ==== the cache ==== */

const struct models_list *models_cache_get(const struct models_cache *c,
					   int64_t now_ms)
{
	if (!c->list || now_ms - c->at_ms >= MODELS_CACHE_TTL_MS)
		return NULL;
	return c->list;
}

void models_cache_put(struct models_cache *c, struct models_list *l,
		      int64_t now_ms)
{
	if (c->list != l)
		models_list_free(c->list);
	c->list = l;
	c->at_ms = now_ms;
}

void models_cache_release(struct models_cache *c)
{
	models_list_free(c->list);
	c->list = NULL;
	c->at_ms = 0;
}
