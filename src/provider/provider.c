/*
 * provider.c - model resolution and the retrying upstream call.
 *
 * One llm_call owns its wire request (url, headers, body built once) and
 * replays it for each attempt.  An attempt ends in the transfer's on_done;
 * there the call decides: success, retry after a backoff timer, or final
 * failure.  Retrying is allowed only while no delta has been passed on.
 */
#include "aichat/provider.h"
#include "aichat/json.h"
#include "aichat/keycmd.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"
#include "aichat/xlate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ==== model resolution ==== */

static const struct {
	const char *prefix;
	const char *provider;
} bare_prefixes[] = {
	{ "gpt-", "openai" }, { "chatgpt-", "openai" }, { "o1", "openai" },
	{ "o3", "openai" }, { "o4", "openai" }, { "text-", "openai" },
	{ "claude-", "anthropic" },
};

void model_ref_release(struct model_ref *m)
{
	free(m->provider);
	free(m->model);
	free(m->full);
	free(m->base_url);
	free(m->key_env);
	free(m->api_key);
	memset(m, 0, sizeof(*m));
}

static char *strip_slash(const char *url)
{
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	return xstrndup(url, n);
}

/*
 * Whether base is the vendor's own API (https://api.openai.com/...,
 * https://api.anthropic.com/...), the only place where a missing key is
 * certain to fail: any other base URL (vLLM, llama.cpp, a proxy) may need
 * none.
 */
static int vendor_base(const char *base)
{
	static const char *const hosts[] = { "api.openai.com", "api.anthropic.com" };

	if (strncasecmp(base, "https://", 8))
		return 0;
	base += 8;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);
		if (!strncasecmp(base, hosts[i], n) &&
		    (!base[n] || base[n] == '/' || base[n] == ':'))
			return 1;
	}
	return 0;
}

/*
 * The key: the variable env when set (it wins), else what cmd prints,
 * else none -- an error only at the vendor's own base URL.
 */
static int set_key(struct model_ref *m, const char *env, const char *cmd,
		   struct err *e)
{
	const char *key = env ? env_get(env) : NULL;

	if (env)
		m->key_env = xstrdup(env);
	if (!key && cmd) {
		if (keycmd_get(m->provider, cmd, &key, e) < 0)
			return -1;
		free(m->key_env);
		m->key_env = xstrdup("its api_key_cmd");
	}
	if (!key && vendor_base(m->base_url)) {
		if (!env)
			return err_set(e, ERR_CONFIG,
				       "no API key for provider %s: give it api_key_env or api_key_cmd in the config file",
				       m->provider);
		return err_set(e, ERR_CONFIG,
			       "no API key for provider %s: set %s%s", m->provider, env,
			       strcmp(m->provider, "openai") ? "" :
			       " (or try the offline model: -m mock:echo)");
	}
	if (key) {
		m->api_key = xstrdup(key);
		trust_add_secret(key);
	}
	return 0;
}

static int set_provider(struct model_ref *m, const struct config *cfg,
			const char *prov, struct err *e)
{
	const struct provider_conf *pc = config_provider(cfg, prov);
	const char *base = NULL, *env = NULL, *cmd = NULL;

	if (!strcmp(prov, "openai") && (!pc || !strcmp(pc->kind, "openai"))) {
		m->ops = &provider_openai;
		base = env_get("OPENAI_BASE_URL");
		env = "OPENAI_API_KEY";
	} else if (!strcmp(prov, "anthropic") && (!pc || !strcmp(pc->kind, "anthropic"))) {
		m->ops = &provider_anthropic;
		base = env_get("ANTHROPIC_BASE_URL");
		env = "ANTHROPIC_API_KEY";
	} else if (pc) {
		m->ops = !strcmp(pc->kind, "anthropic") ? &provider_anthropic
							  : &provider_openai;
	} else if (!strcmp(prov, "ollama")) {
		const char *host = env_get("OLLAMA_HOST");
		struct buf b;

		const char *hostpart;

		m->ops = &provider_openai;
		buf_init(&b, 0);
		if (!host)
			host = "http://localhost:11434";
		if (!strstr(host, "://"))
			buf_appends(&b, "http://");
		buf_appends(&b, host);
		while (b.len && b.ptr[b.len - 1] == '/')
			buf_truncate(&b, b.len - 1);
		/* Like ollama itself: a host without a port means 11434. */
		hostpart = strstr(b.ptr, "://") + 3;
		if (!strchr(hostpart, ':') && !strchr(hostpart, ']') &&
		    !strchr(hostpart, '/'))
			buf_appends(&b, ":11434");
		buf_appends(&b, "/v1");
		m->base_url = buf_detach(&b);
	} else if (!strcmp(prov, "mock")) {
		m->ops = &provider_mock;
	} else {
		return err_set(e, ERR_CONFIG,
			       "unknown provider '%.64s' (known: openai, anthropic, ollama, mock%s)",
			       prov, cfg->nproviders ? ", and those in the config file" : "");
	}
	m->provider = xstrdup(prov);
	if (m->ops == &provider_mock || m->base_url)
		return 0;
	/* The environment first, then the file, then the kind's default;
	 * the file's fields amend a built-in provider of the same name. */
	if (pc) {
		if (!base)
			base = pc->base_url;
		if (pc->api_key_env)
			env = pc->api_key_env;
		cmd = pc->api_key_cmd;
	}
	if (!base)
		base = m->ops == &provider_anthropic ? "https://api.anthropic.com" :
			"https://api.openai.com/v1";
	m->base_url = strip_slash(base);
	return set_key(m, env, cmd, e);
}

int model_resolve(const struct config *cfg, const char *name,
		  struct model_ref *out, struct err *e)
{
	const char *colon, *alias;
	char *prov = NULL;
	int depth = 0;

	memset(out, 0, sizeof(*out));
	if (!name || !*name)
		name = config_default_model(cfg);
	/* Aliases may point at other aliases; stop at a small depth. */
	while ((alias = config_alias(cfg, name)) && depth++ < 8)
		name = alias;
	colon = strchr(name, ':');
	if (colon) {
		prov = xstrndup(name, (size_t)(colon - name));
		out->model = xstrdup(colon + 1);
	} else {
		for (size_t i = 0; i < sizeof(bare_prefixes) / sizeof(*bare_prefixes); i++)
			if (!strncmp(name, bare_prefixes[i].prefix,
				     strlen(bare_prefixes[i].prefix))) {
				prov = xstrdup(bare_prefixes[i].provider);
				break;
			}
		if (!prov)
			return err_set(e, ERR_CONFIG,
				       "unknown model '%.128s': name it as provider:model (e.g. openai:gpt-4o-mini, anthropic:claude-sonnet-4-6, ollama:llama3.2, mock:echo)",
				       name);
		out->model = xstrdup(name);
	}
	if (!*prov || !*out->model) {
		free(prov);
		model_ref_release(out);
		return err_set(e, ERR_CONFIG,
			       "invalid model name '%.128s': expected provider:model", name);
	}
	if (set_provider(out, cfg, prov, e) < 0) {
		free(prov);
		return -1;
	}
	free(prov);
	struct buf full;
	buf_init(&full, 0);
	buf_printf(&full, "%s:%s", out->provider, out->model);
	out->full = buf_detach(&full);
	if (out->ops == &provider_mock && strcmp(out->model, "echo"))
		return err_set(e, ERR_CONFIG,
			       "unknown mock model '%.64s' (available: mock:echo)",
			       out->model);
	return 0;
}

int model_check_params(const struct model_ref *m, const struct chat_params *p,
		       struct err *e)
{
	double t = p->temperature;

	json_num(p->extra, "temperature", &t);
	if (m->ops == &provider_anthropic && t > 1)
		return err_set(e, ERR_INVALID_REQUEST,
			       "invalid value '%g' for 'temperature': must be <= 1 for anthropic models",
			       t);
	return 0;
}

/* ==== options ==== */

static int64_t env_ms(const char *name, int64_t def)
{
	const char *v = env_get(name);
	char *end;
	double d;

	if (!v)
		return def;
	d = strtod(v, &end);
	if (end == v || *end || !(d >= 0))
		return def;
	/* A day at most: 1e300 must not overflow the conversion. */
	return d < 86400 ? (int64_t)(d * 1000) : 86400000;
}

void llm_opts_default(struct llm_opts *o)
{
	o->retries = 2;
	o->connect_ms = env_ms("AICHAT_CONNECT_TIMEOUT", 10000);
	o->first_byte_ms = env_ms("AICHAT_FIRST_BYTE_TIMEOUT", 120000);
	o->idle_ms = env_ms("AICHAT_IDLE_TIMEOUT", 60000);
	o->total_ms = env_ms("AICHAT_TIMEOUT", 600000);
	o->retry_base_ms = env_ms("AICHAT_RETRY_BASE", 500);
}

/* ==== the call ==== */

/* Bytes of a stream's start kept to explain an answer that is not one. */
#define STREAM_HEAD_KEEP 4096

struct llm_call {
	struct engine *eng;
	struct model_ref m;           /* own copy */
	struct llm_opts o;
	const struct llm_cbs *cbs;
	void *ud;
	int stream;
	char *url;
	char **headers;               /* this request's own, NULL-terminated,
				       * or NULL */
	const struct transfer_headers *shared;  /* the provider's, built once */
	struct transfer_headers *own_shared;    /* that, when the engine
						 * keeps no more */
	struct buf body;
	struct transfer *tr;
	struct loop_timer *retry_timer;
	struct loop_timer *local_timer;
	struct sse_parser sse;
	struct buf whole;             /* non-stream answer body */
	struct llm_result res;
	int64_t started;
	int complete;
	long events;                  /* SSE events this attempt */
	void *local;                  /* offline provider state */
	void (*local_free)(void *);
	enum dialect dialect;         /* of on_event */
	int want_usage;               /* the caller asked for a usage chunk */
	int opened;                   /* a synthesized stream has begun */
	int committed;                /* an event reached the caller */
	int paused;                   /* llm_call_pause */
	struct buf *local_text;       /* offline answer, for synthesized
				       * objects (dialect set) */
	struct xo2a *o2a;             /* OpenAI -> Anthropic, when needed */
	void *pstate;                 /* the provider's, for the whole call */
	void (*pstate_free)(void *);
};

const struct model_ref *llm_model(const struct llm_call *c)
{
	return &c->m;
}

struct loop *llm_loop(const struct llm_call *c)
{
	return engine_loop(c->eng);
}

enum dialect llm_dialect(const struct llm_call *c)
{
	return c->dialect;
}

static void first_token(struct llm_call *c)
{
	if (c->res.first_token_ms < 0)
		c->res.first_token_ms = loop_now_ms() - c->started;
}

void llm_emit_event(struct llm_call *c, const char *name, const char *data,
		    size_t n, int answer)
{
	if (c->dialect == DIALECT_NONE || !c->cbs->on_event)
		return;
	if (answer)
		first_token(c);
	/* Once the caller has seen a byte of this answer, it is not retried. */
	c->committed = 1;
	c->cbs->on_event(c->ud, name, data, n);
}

static void o2a_emit(void *ud, const char *name, const char *data, size_t n,
		     int answer)
{
	llm_emit_event(ud, name, data, n, answer);
}

void llm_emit_openai(struct llm_call *c, const cJSON *obj, int answer)
{
	char *text;

	if (c->dialect == DIALECT_ANTHROPIC) {
		if (!c->o2a)
			c->o2a = xo2a_new(c->m.model);
		xo2a_feed(c->o2a, obj, o2a_emit, c);
		return;
	}
	if (c->dialect != DIALECT_OPENAI)
		return;
	text = json_print(obj);
	llm_emit_event(c, c->stream ? "" : NULL, text, strlen(text), answer);
	free(text);
}

/* ---- OpenAI objects for providers that produce only text (mock) ---- */

static cJSON *synth_object(struct llm_call *c, const char *object)
{
	cJSON *o = cJSON_CreateObject();
	char id[64];

	snprintf(id, sizeof(id), "chatcmpl-%llx%llx", (unsigned long long)c->started,
		 (unsigned long long)(uintptr_t)c & 0xffffff);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "object", object);
	cJSON_AddNumberToObject(o, "created", (double)time(NULL));
	cJSON_AddStringToObject(o, "model", c->m.full);
	return o;
}

static cJSON *synth_usage(const struct llm_call *c)
{
	cJSON *u = cJSON_CreateObject();

	cJSON_AddNumberToObject(u, "prompt_tokens", (double)c->res.prompt_tokens);
	cJSON_AddNumberToObject(u, "completion_tokens",
				(double)c->res.completion_tokens);
	cJSON_AddNumberToObject(u, "total_tokens", (double)(c->res.prompt_tokens +
							     c->res.completion_tokens));
	return u;
}

/* One chunk with a delta of role and/or content, or a finish reason. */
static void synth_chunk(struct llm_call *c, int role, const char *s, size_t n,
			const char *finish)
{
	cJSON *o = synth_object(c, "chat.completion.chunk");
	cJSON *ch = cJSON_CreateObject(), *d;

	cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
	cJSON_AddNumberToObject(ch, "index", 0);
	d = cJSON_AddObjectToObject(ch, "delta");
	if (role)
		cJSON_AddStringToObject(d, "role", "assistant");
	if (s) {
		char *t = xstrndup(s, n);
		cJSON_AddStringToObject(d, "content", t);
		free(t);
	}
	if (finish)
		cJSON_AddStringToObject(ch, "finish_reason", finish);
	else
		cJSON_AddNullToObject(ch, "finish_reason");
	llm_emit_openai(c, o, s != NULL);
	cJSON_Delete(o);
}

/* The end of a synthesized answer: the finish chunk and the usage chunk,
 * or, not streaming, the whole completion. */
static void synth_end(struct llm_call *c, const char *text, size_t len)
{
	const char *fr = c->res.finish_reason[0] ? c->res.finish_reason : "stop";

	if (c->stream) {
		if (!c->opened)
			synth_chunk(c, 1, "", 0, NULL);
		synth_chunk(c, 0, NULL, 0, fr);
		if (c->want_usage) {
			cJSON *o = synth_object(c, "chat.completion.chunk");
			cJSON_AddArrayToObject(o, "choices");
			cJSON_AddItemToObject(o, "usage", synth_usage(c));
			llm_emit_openai(c, o, 0);
			cJSON_Delete(o);
		}
	} else {
		cJSON *o = synth_object(c, "chat.completion");
		cJSON *ch = cJSON_CreateObject(), *m;
		char *t = xstrndup(text, len);

		cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), ch);
		cJSON_AddNumberToObject(ch, "index", 0);
		m = cJSON_AddObjectToObject(ch, "message");
		cJSON_AddStringToObject(m, "role", "assistant");
		cJSON_AddStringToObject(m, "content", t);
		cJSON_AddStringToObject(ch, "finish_reason", fr);
		cJSON_AddItemToObject(o, "usage", synth_usage(c));
		llm_emit_openai(c, o, len > 0);
		cJSON_Delete(o);
		free(t);
	}
	if (c->o2a)
		xo2a_finish(c->o2a, o2a_emit, c);
}

void llm_emit(struct llm_call *c, const char *s, size_t n)
{
	if (!n)
		return;
	first_token(c);
	c->res.delta_bytes += n;
	if (c->local_text) {
		/* An offline provider: its answer becomes OpenAI objects. */
		if (c->stream) {
			/* OpenAI's streams open with the role, content "". */
			if (!c->opened)
				synth_chunk(c, 1, "", 0, NULL);
			c->opened = 1;
			synth_chunk(c, 0, s, n, NULL);
		} else {
			buf_append(c->local_text, s, n);
		}
	}
	c->cbs->on_delta(c->ud, s, n);
}

void llm_set_usage(struct llm_call *c, long prompt, long completion)
{
	if (prompt >= 0)
		c->res.prompt_tokens = prompt;
	if (completion >= 0)
		c->res.completion_tokens = completion;
	c->res.have_usage = 1;
}

void llm_set_cached(struct llm_call *c, long cached)
{
	if (cached >= 0)
		c->res.cached_tokens = cached;
}

void llm_set_cache_write(struct llm_call *c, long written)
{
	if (written >= 0)
		c->res.cache_write_tokens = written;
}

void llm_set_finish(struct llm_call *c, const char *reason)
{
	/* An upstream's word: keep only what a finish reason is made of, so
	 * it is safe on a terminal and in a log. */
	size_t o = 0;

	for (; *reason && o + 1 < sizeof(c->res.finish_reason); reason++)
		if ((*reason >= 'a' && *reason <= 'z') || *reason == '_' ||
		    (*reason >= 'A' && *reason <= 'Z') || (*reason >= '0' && *reason <= '9'))
			c->res.finish_reason[o++] = *reason;
	c->res.finish_reason[o] = '\0';
}

void llm_mark_complete(struct llm_call *c)
{
	c->complete = 1;
}

static void free_headers(char **h)
{
	for (char **p = h; p && *p; p++)
		free(*p);
	free(h);
}

static void call_free(struct llm_call *c)
{
	if (c->tr)
		transfer_cancel(c->tr);
	if (c->retry_timer)
		loop_del_timer(engine_loop(c->eng), c->retry_timer);
	if (c->local_free)
		c->local_free(c->local);
	model_ref_release(&c->m);
	free(c->url);
	free_headers(c->headers);
	transfer_headers_free(c->own_shared);
	buf_release(&c->body);
	buf_release(&c->whole);
	sse_release(&c->sse);
	if (c->local_text) {
		buf_release(c->local_text);
		free(c->local_text);
	}
	xo2a_free(c->o2a);
	if (c->pstate_free)
		c->pstate_free(c->pstate);
	free(c);
}

void llm_call_cancel(struct llm_call *c)
{
	if (c)
		call_free(c);
}

static void finish(struct llm_call *c)
{
	const struct llm_cbs *cbs = c->cbs;
	void *ud = c->ud;
	struct llm_result res = c->res;

	res.total_ms = loop_now_ms() - c->started;
	call_free(c);
	cbs->on_done(ud, &res);
}

void llm_local_done(struct llm_call *c, const struct err *err)
{
	if (err)
		c->res.err = *err;
	else if (c->local_text)
		synth_end(c, c->local_text->ptr, c->local_text->len);
	finish(c);
}

void llm_stream_end(struct llm_call *c)
{
	if (c->o2a)
		xo2a_finish(c->o2a, o2a_emit, c);
}

/* ---- error text ---- */

int llm_malformed(struct llm_call *c, const char *what, const char *data,
		  size_t len, struct err *e)
{
	char snippet[64];

	trust_clean(snippet, sizeof(snippet), data,
			  len > 48 ? 48 : len);
	return err_set(e, ERR_UPSTREAM_PROTOCOL, "malformed %s from %s: '%s%s'",
		       what, c->m.provider, snippet, len > 48 ? "..." : "");
}

/* The <title> of an HTML page, or its first text. */
static void html_summary(const char *body,
			 size_t len, char *dst, size_t cap)
{
	const char *t = NULL, *end = NULL;

	for (size_t i = 0; i + 7 <= len; i++)
		if (!strncasecmp(body + i, "<title>", 7)) {
			t = body + i + 7;
			break;
		}
	if (t) {
		for (const char *p = t; p < body + len; p++)
			if (*p == '<') {
				end = p;
				break;
			}
	}
	if (t && end && end > t)
		trust_clean(dst, cap, t, (size_t)(end - t));
	else
		snprintf(dst, cap, "no details");
}

static int looks_html(const char *ct, const char *body, size_t len)
{
	while (len && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	return (ct && strstr(ct, "html")) || (len && *body == '<');
}

void llm_http_error(const struct model_ref *m, long status,
		    const char *content_type, const char *body, size_t len,
		    struct err *e)
{
	char msg[200] = "";
	const char *etype = NULL, *ecode = NULL;
	cJSON *j = NULL;
	enum err_code code;

	if (looks_html(content_type, body, len)) {
		char title[120];
		html_summary(body, len, title, sizeof(title));
		snprintf(msg, sizeof(msg), "HTML error page: %s", title);
	} else if ((j = json_parse(body, len, NULL))) {
		const cJSON *err = json_obj(j, "error");
		const char *text = NULL;

		if (err) {
			text = json_str(err, "message");
			etype = json_str(err, "type");
			ecode = json_str(err, "code");
		} else {
			text = json_str(j, "message");
			if (!text)
				text = json_str(j, "detail");
			if (!text)
				text = json_str(j, "error");
		}
		if (text)
			trust_clean(msg, sizeof(msg), text, strlen(text));
	} else if (len) {
		/* Clean the whole text, then cut, so a key is never halved
		 * before redaction sees it. */
		trust_clean(msg, sizeof(msg), body, len);
	}

	if (status == 401 || status == 403) {
		if (m->key_env)
			err_set(e, ERR_UPSTREAM_AUTH,
				"authentication failed for provider %s (check %s)",
				m->provider, m->key_env);
		else
			err_set(e, ERR_UPSTREAM_AUTH,
				"authentication failed for provider %s", m->provider);
		cJSON_Delete(j);
		return;
	}
	if (status == 429 && ((ecode && !strcmp(ecode, "insufficient_quota")) ||
			      (etype && !strcmp(etype, "insufficient_quota"))))
		code = ERR_QUOTA;
	else if (status == 429)
		code = ERR_RATE_LIMITED;
	else if (status == 408 || status == 504)
		code = ERR_UPSTREAM_TIMEOUT;
	else if (status == 503 || status == 529)
		code = ERR_OVERLOADED;
	else
		code = ERR_UPSTREAM_ERROR;
	if (code == ERR_QUOTA)
		err_set(e, code, "%s: insufficient quota (HTTP 429)%s%s",
			m->provider, *msg ? ": " : "", msg);
	else if (code == ERR_RATE_LIMITED)
		err_set(e, code, "rate limited by %s (HTTP 429)%s%s", m->provider,
			*msg ? ": " : "", msg);
	else
		err_set(e, code, "%s returned HTTP %ld%s%s", m->provider, status,
			*msg ? ": " : "", msg);
	cJSON_Delete(j);
}

/* ---- attempts ---- */

static void start_attempt(struct llm_call *c);

int llm_retryable(enum err_code code, long status)
{
	switch (code) {
	case ERR_UPSTREAM_UNREACHABLE:
	case ERR_RATE_LIMITED:
	case ERR_OVERLOADED:
		return 1;
	case ERR_UPSTREAM_TIMEOUT:
		return status == 408 || status == 504;
	case ERR_UPSTREAM_ERROR:
		return status == 500 || status == 502;
	default:
		return 0;
	}
}

int64_t llm_backoff_ms(const struct llm_opts *o, int attempt,
		       double retry_after)
{
	double base;

	if (retry_after >= 0) {
		/* Clamped as a double: 1e300 seconds must not overflow. */
		double ms = retry_after * 1000;
		return ms < 60000 ? (int64_t)ms : 60000;
	}
	base = (double)o->retry_base_ms * pow(2, attempt - 1);
	/* Jitter: 50% to 100% of the step. */
	return (int64_t)(base * (0.5 + 0.5 * ((double)rand() / RAND_MAX)));
}

static void on_retry_timer(struct loop *l, void *data)
{
	struct llm_call *c = data;

	(void)l;
	c->retry_timer = NULL;
	start_attempt(c);
}

/* Ends the attempt: succeed, schedule a retry or fail for good. */
static void attempt_over(struct llm_call *c, long status, double retry_after)
{
	int64_t delay, left;

	c->res.retry_after = retry_after < 0 ? -1 :
			     retry_after > 3600 ? 3600 : retry_after;
	if (c->res.err.code == ERR_OK) {
		finish(c);
		return;
	}
	if (c->res.delta_bytes || c->committed || c->res.attempts > c->o.retries ||
	    !llm_retryable(c->res.err.code, status)) {
		finish(c);
		return;
	}
	delay = llm_backoff_ms(&c->o, c->res.attempts, retry_after);
	left = c->o.total_ms ? c->started + c->o.total_ms - loop_now_ms() : INT64_MAX;
	if (delay >= left) {
		finish(c);
		return;
	}
	if (c->cbs->on_retry)
		c->cbs->on_retry(c->ud, &c->res.err, c->res.attempts + 1, delay);
	err_clear(&c->res.err);
	c->retry_timer = loop_add_timer(engine_loop(c->eng), delay,
					on_retry_timer, c);
}

static int on_sse_event(void *ud, const struct sse_event *ev)
{
	struct llm_call *c = ud;
	struct err e;

	c->events++;
	err_clear(&e);
	if (c->m.ops->stream_event(c, ev, &e) < 0) {
		c->res.err = e;
		return 1;
	}
	return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
	struct llm_call *c = ud;
	struct err e;
	int rc;

	if (!c->stream) {
		if (buf_append(&c->whole, p, n) < 0) {
			err_set(&e, ERR_UPSTREAM_PROTOCOL,
				"%s answer larger than %zu bytes", c->m.provider,
				c->whole.max);
			return transfer_fail(c->tr, &e);
		}
		return 0;
	}
	/* The start of a stream is kept, so an answer that is not one (an
	 * HTML page from a proxy, a JSON error sent with 200) can be told;
	 * once an event has come it is one, and the copy goes (a held
	 * stream costs less). */
	if (!c->events && c->whole.len < STREAM_HEAD_KEEP)
		(void)buf_append(&c->whole, p,
				 n < STREAM_HEAD_KEEP - c->whole.len ?
				 n : STREAM_HEAD_KEEP - c->whole.len);
	err_clear(&e);
	rc = sse_feed(&c->sse, p, n, on_sse_event, c, &e);
	if (c->events && c->whole.cap) {
		size_t max = c->whole.max;
		buf_release(&c->whole);
		buf_init(&c->whole, max);
	}
	/* Once the caller has a byte of the answer no attempt follows, so
	 * the request's body has no more use when it is all sent: a stream
	 * held for minutes does not hold its prompt. */
	if ((c->committed || c->res.delta_bytes) && c->body.cap &&
	    transfer_body_sent(c->tr))
		buf_release(&c->body);
	if (rc < 0) {
		/* Not formatted into itself: the message is copied first. */
		struct err why = e;
		err_set(&e, ERR_UPSTREAM_PROTOCOL, "%s stream: %s", c->m.provider,
			why.msg);
		return transfer_fail(c->tr, &e);
	}
	if (rc > 0)
		return transfer_fail(c->tr, &c->res.err);
	return 0;
}

/*
 * A streamed request answered 200 with no event at all: say what came
 * instead (its type and, cleaned, what it said), not that a stream ended
 * early.  A JSON error object sent with 200 is reported like one sent with
 * an error status.
 */
static void not_a_stream(struct llm_call *c, const char *content_type,
			 struct err *e)
{
	const char *ct = content_type && *content_type ? content_type : "no type";
	char what[200];

	if (!c->whole.len) {
		err_set(e, ERR_UPSTREAM_PROTOCOL,
			"%s answered 200 with an empty body (%.60s), not an event stream",
			c->m.provider, ct);
		return;
	}
	llm_http_error(&c->m, 502, content_type, c->whole.ptr, c->whole.len, e);
	/* llm_http_error said "returned HTTP 502: <what>"; keep <what>. */
	{
		const char *colon = strstr(e->msg, "HTTP 502");
		snprintf(what, sizeof(what), "%s",
			 colon && colon[8] == ':' ? colon + 10 : "no details");
	}
	err_set(e, ERR_UPSTREAM_PROTOCOL,
		"%s answered %.60s, not an event stream: %s", c->m.provider, ct,
		what);
}

static void on_transfer_done(void *ud, struct transfer_result *r)
{
	struct llm_call *c = ud;
	struct err e;

	c->tr = NULL;
	err_clear(&e);
	if (r->err.code != ERR_OK) {
		if (c->res.err.code == ERR_OK) {
			c->res.err = r->err;
			/* Say whose connection failed. */
			char tmp[sizeof(e.msg)];
			snprintf(tmp, sizeof(tmp), "%s", r->err.msg);
			snprintf(c->res.err.msg, sizeof(c->res.err.msg), "%.40s: %.200s",
				 c->m.provider, tmp);
		}
	} else if (r->status < 200 || r->status >= 300) {
		llm_http_error(&c->m, r->status, r->content_type,
			       r->error_body.ptr, r->error_body.len, &c->res.err);
	} else if (c->stream) {
		if (sse_finish(&c->sse, on_sse_event, c, &e) < 0 &&
		    c->res.err.code == ERR_OK)
			c->res.err = e;
		if (c->res.err.code == ERR_OK && !c->complete &&
		    !c->res.finish_reason[0]) {
			if (!c->events)
				not_a_stream(c, r->content_type, &c->res.err);
			else
				err_set(&c->res.err, ERR_UPSTREAM_PROTOCOL,
					"%s stream ended before the answer was complete",
					c->m.provider);
		}
	} else {
		if (c->m.ops->parse_body(c, c->whole.ptr, c->whole.len, &e) < 0)
			c->res.err = e;
	}
	attempt_over(c, r->status, r->retry_after);
}

static const struct transfer_cbs transfer_cbs = {
	.on_data = on_data,
	.on_done = on_transfer_done,
};

static void start_attempt(struct llm_call *c)
{
	struct transfer_req req = { 0 };
	int64_t left = 0;

	c->res.attempts++;
	c->complete = 0;
	c->events = 0;
	c->res.finish_reason[0] = '\0';
	c->res.have_usage = 0;
	c->res.prompt_tokens = c->res.completion_tokens = 0;
	c->res.cached_tokens = 0;
	c->res.cache_write_tokens = 0;
	sse_release(&c->sse);
	sse_init(&c->sse, 0);
	buf_clear(&c->whole);
	if (c->o.total_ms) {
		left = c->started + c->o.total_ms - loop_now_ms();
		if (left < 1)
			left = 1;
	}
	req.url = c->url;
	req.shared = c->shared;
	req.headers = (const char *const *)c->headers;
	req.body = c->body.ptr;
	req.body_len = c->body.len;
	req.connect_ms = c->o.connect_ms;
	req.first_byte_ms = c->o.first_byte_ms;
	req.idle_ms = c->o.idle_ms;
	req.total_ms = left;
	c->tr = transfer_start(c->eng, &req, &transfer_cbs, c, &c->res.err);
	if (!c->tr)
		attempt_over(c, 0, -1);
	else if (c->paused)
		transfer_pause(c->tr, 1);
}

void llm_call_pause(struct llm_call *c, int on)
{
	if (!c)
		return;
	c->paused = !!on;
	if (c->tr)
		transfer_pause(c->tr, c->paused);
}

/* The headers every request to m carries: built once per engine,
 * provider and key, and kept by the engine (so per worker thread). */
static const struct transfer_headers *shared_headers(struct llm_call *c,
						     const struct model_ref *m)
{
	const struct transfer_headers *kept = engine_headers(c->eng, m->ops, m->api_key);
	struct transfer_headers *th;
	char **h;

	if (kept || !m->ops->headers)
		return kept;
	h = m->ops->headers(m);
	th = transfer_headers_new((const char *const *)h);
	free_headers(h);
	kept = engine_keep_headers(c->eng, m->ops, m->api_key, th);
	if (!kept)
		kept = c->own_shared = th;
	return kept;
}

struct llm_call *llm_call_start(struct engine *eng, const struct model_ref *m,
				const struct chat_params *p,
				const struct llm_opts *o,
				const struct llm_cbs *cbs, void *ud,
				struct err *e)
{
	struct llm_call *c = xcalloc(1, sizeof(*c));
	struct buf url;

	c->eng = eng;
	c->m.ops = m->ops;
	c->m.provider = xstrdup(m->provider);
	c->m.model = xstrdup(m->model);
	c->m.full = xstrdup(m->full);
	c->m.base_url = m->base_url ? xstrdup(m->base_url) : NULL;
	c->m.key_env = m->key_env ? xstrdup(m->key_env) : NULL;
	c->m.api_key = m->api_key ? xstrdup(m->api_key) : NULL;
	c->o = *o;
	c->cbs = cbs;
	c->ud = ud;
	c->stream = p->stream;
	c->dialect = p->dialect;
	c->want_usage = cJSON_IsTrue(json_path(p->extra, "stream_options.include_usage")) ||
		(p->dialect == DIALECT_OPENAI && p->native &&
		 cJSON_IsTrue(json_path(p->native, "stream_options.include_usage")));
	c->started = loop_now_ms();
	c->res.first_token_ms = -1;
	c->res.retry_after = -1;
	buf_init(&c->body, 0);
	buf_init(&c->whole, 16 * 1024 * 1024);
	sse_init(&c->sse, 0);
	if (model_check_params(m, p, e) < 0) {
		call_free(c);
		return NULL;
	}
	if (m->ops->run_local) {
		c->res.attempts = 1;
		if (c->dialect != DIALECT_NONE) {
			c->local_text = xmalloc(sizeof(*c->local_text));
			buf_init(c->local_text, 0);
		}
		if (m->ops->run_local(c, p, e) < 0) {
			call_free(c);
			return NULL;
		}
		return c;
	}
	buf_init(&url, 0);
	if (m->ops->build(c, p, &url, &c->body, &c->headers, e) < 0) {
		buf_release(&url);
		call_free(c);
		return NULL;
	}
	c->url = buf_detach(&url);
	/* Held as long as the call, and sent as it is (transfer.h). */
	buf_fit(&c->body);
	c->shared = shared_headers(c, m);
	/* Seeded once: the retry jitter only needs processes to differ. */
	static int seeded;   /* atomic: serve's workers start calls too */
	if (!__atomic_exchange_n(&seeded, 1, __ATOMIC_RELAXED))
		srand((unsigned)(time(NULL) ^ (uintptr_t)c));
	/* The first attempt starts on the loop, so that every outcome,
	 * even a handle curl refuses, reaches on_done and never re-enters
	 * the caller from inside llm_call_start. */
	c->res.attempts = 0;
	c->retry_timer = loop_add_timer(engine_loop(eng), 0, on_retry_timer, c);
	return c;
}

void llm_set_local(struct llm_call *c, void *state, void (*fn)(void *))
{
	c->local = state;
	c->local_free = fn;
}

const struct llm_result *llm_result_so_far(const struct llm_call *c)
{
	return &c->res;
}

int llm_wants_usage(const struct llm_call *c)
{
	return c->want_usage;
}

void llm_emit_reasoning(struct llm_call *c, const char *s, size_t n)
{
	if (n && c->cbs->on_reasoning)
		c->cbs->on_reasoning(c->ud, s, n);
}

void *llm_state(const struct llm_call *c)
{
	return c->pstate;
}

void llm_set_state(struct llm_call *c, void *state, void (*fn)(void *))
{
	if (c->pstate_free)
		c->pstate_free(c->pstate);
	c->pstate = state;
	c->pstate_free = fn;
}
