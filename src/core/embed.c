/*
 * embed.c - embedding jobs; see embed.h.
 *
 * A job owns copies of its texts, the wire request parts (url, headers)
 * and one slot per batch.  Batches start from the loop (never from inside
 * embed_start), at most EMBED_PARALLEL at once; each attempt is one
 * transfer whose 2xx body is collected whole and parsed at its end.  Once
 * a batch has failed for good no new batch starts: a provider that is
 * down is not asked again for every remaining batch.  The job ends when
 * no batch is running and none will start, then calls on_done and frees
 * itself.
 *
 * A relay is a job of one batch whose body is the client's request and
 * whose 2xx answer is kept as it came (or, for mock:embed, built before
 * the job starts), then handed to on_relay instead of parsed.
 */
#include "aichat/embed.h"
#include "aichat/json.h"
#include "aichat/rag.h"
#include "aichat/xalloc.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 2xx answer larger than this is refused: 64 vectors of 4096 numbers
 * printed in full take about 6 MiB. */
#define ANSWER_MAX (64u * 1024 * 1024)

struct batch {
	struct embed_job *job;
	size_t first, count;        /* texts[first .. first + count) */
	int attempts;
	struct transfer *tr;
	struct loop_timer *timer;   /* backoff before the next attempt */
	struct buf body;            /* the request */
	struct buf answer;
};

struct embed_job {
	struct engine *eng;
	struct embed_model m;
	struct llm_opts o;
	char **texts;
	char *url;
	char **headers;             /* NULL-terminated */
	struct batch *batches;
	size_t nbatches, next, running;
	int stopped;                /* a batch failed for good */
	int refilling;              /* refill() is on the stack */
	struct loop_timer *kick;
	struct embed_result res;
	void (*on_done)(void *ud, const struct embed_result *r);
	/* A relay: the answer as it came, and whom to give it to. */
	struct buf relay;
	void (*on_relay)(void *ud, const struct embed_reply *r);
	void *ud;
};

/* ==== models ==== */

int embed_resolve(const struct config *cfg, const char *name,
		  struct embed_model *out, struct err *e)
{
	const char *alias;
	int depth = 0;

	memset(out, 0, sizeof(*out));
	while (name && (alias = config_alias(cfg, name)) && depth++ < 8)
		name = alias;
	if (!name || !*name)
		return err_set(e, ERR_CONFIG, "no embedding model given");
	if (!strncmp(name, "mock:", 5)) {
		if (strcmp(name + 5, "embed"))
			return err_set(e, ERR_CONFIG,
				       "unknown mock embedding model '%.64s' (available: mock:embed)",
				       name);
		out->mock = 1;
		out->ref.provider = xstrdup("mock");
		out->ref.model = xstrdup("embed");
		out->ref.full = xstrdup("mock:embed");
		return 0;
	}
	if (model_resolve(cfg, name, &out->ref, e) < 0 &&
	    (!out->ref.ops || out->ref.ops == &provider_openai)) {
		/* The offline model to suggest is the embedding one. */
		char *hint = e ? strstr(e->msg, "-m mock:echo") : NULL;
		if (hint)
			snprintf(hint, sizeof(e->msg) - (size_t)(hint - e->msg),
				 "--embed-model mock:embed)");
		model_ref_release(&out->ref);
		return -1;
	}
	/* Before any missing key: a key would not give it the API. */
	if (out->ref.ops != &provider_openai) {
		err_set(e, ERR_CONFIG,
			"'%.128s' has no embeddings API: use an OpenAI-compatible provider (openai, ollama, a config provider of kind openai) or mock:embed",
			out->ref.full ? out->ref.full : name);
		model_ref_release(&out->ref);
		return -1;
	}
	return 0;
}

void embed_model_release(struct embed_model *m)
{
	model_ref_release(&m->ref);
	m->mock = 0;
}

const char *embed_model_name(const struct embed_model *m)
{
	return m->ref.full;
}

static void copy_model(struct embed_model *dst, const struct embed_model *src)
{
	const struct model_ref *s = &src->ref;

	memset(dst, 0, sizeof(*dst));
	dst->mock = src->mock;
	dst->ref.ops = s->ops;
	dst->ref.provider = s->provider ? xstrdup(s->provider) : NULL;
	dst->ref.model = s->model ? xstrdup(s->model) : NULL;
	dst->ref.full = s->full ? xstrdup(s->full) : NULL;
	dst->ref.base_url = s->base_url ? xstrdup(s->base_url) : NULL;
	dst->ref.key_env = s->key_env ? xstrdup(s->key_env) : NULL;
	dst->ref.api_key = s->api_key ? xstrdup(s->api_key) : NULL;
}

/* ==== mock:embed ==== */

static void feature(float *v, const char *p, size_t n, uint64_t salt, float w)
{
	uint64_t h = rag_hash(RAG_HASH_INIT ^ salt, p, n);

	v[h % EMBED_MOCK_DIM] += (h >> 63) ? w : -w;
}

void embed_mock(const char *text, float *v)
{
	const unsigned char *p = (const unsigned char *)text;
	char word[66];

	memset(v, 0, EMBED_MOCK_DIM * sizeof(*v));
	while (*p) {
		size_t n = 0;

		if (!isalnum(*p) && *p < 0x80) {
			p++;
			continue;
		}
		/* The word, lowercased and bounded, between ^ and $ marks. */
		word[n++] = '^';
		for (; *p && (isalnum(*p) || *p >= 0x80); p++)
			if (n < sizeof(word) - 1)
				word[n++] = (char)tolower(*p);
		word[n++] = '$';
		feature(v, word + 1, n - 2, 1, 1.0f);
		for (size_t i = 0; i + 3 <= n; i++)
			feature(v, word + i, 3, 2, 0.5f);
	}
	rag_normalize(v, EMBED_MOCK_DIM);
}

/* ==== the job ==== */

static void job_free(struct embed_job *j)
{
	for (size_t i = 0; i < j->nbatches; i++) {
		struct batch *b = &j->batches[i];
		if (b->tr)
			transfer_cancel(b->tr);
		if (b->timer)
			loop_del_timer(engine_loop(j->eng), b->timer);
		buf_release(&b->body);
		buf_release(&b->answer);
	}
	if (j->kick)
		loop_del_timer(engine_loop(j->eng), j->kick);
	for (size_t i = 0; i < j->res.n; i++)
		free(j->texts[i]);
	free(j->texts);
	for (char **h = j->headers; h && *h; h++)
		free(*h);
	free(j->headers);
	free(j->url);
	free(j->batches);
	buf_release(&j->relay);
	embed_model_release(&j->m);
	embed_result_release(&j->res);
	free(j);
}

void embed_cancel(struct embed_job *j)
{
	if (j)
		job_free(j);
}

static void job_finish(struct embed_job *j)
{
	if (j->on_relay) {
		struct embed_reply rep = { NULL, 0, j->res.err };
		if (rep.err.code == ERR_OK) {
			rep.body = j->relay.ptr;
			rep.len = j->relay.len;
		}
		j->on_relay(j->ud, &rep);
		job_free(j);
		return;
	}
	j->res.failed = 0;
	for (size_t i = 0; i < j->res.n; i++)
		j->res.failed += !j->res.ok[i];
	if (j->res.failed && j->res.err.code == ERR_OK)
		err_set(&j->res.err, ERR_INTERNAL, "%zu texts were not embedded",
			j->res.failed);
	j->on_done(j->ud, &j->res);
	job_free(j);
}

/* Parses a 2xx answer of batch b into the job's result. */
static int parse_answer(struct batch *b, struct err *e)
{
	struct embed_job *j = b->job;
	const char *prov = j->m.ref.provider;
	cJSON *root = json_parse(b->answer.ptr, b->answer.len, NULL);
	const cJSON *data = root ? json_arr(root, "data") : NULL, *item;
	size_t seen = 0;
	int rc = -1;

	if (!data) {
		err_set(e, ERR_UPSTREAM_PROTOCOL,
			"malformed embeddings answer from %s: no \"data\" array", prov);
		goto cleanup;
	}
	if ((size_t)cJSON_GetArraySize(data) != b->count) {
		err_set(e, ERR_UPSTREAM_PROTOCOL,
			"%s returned %d embeddings for %zu inputs", prov,
			cJSON_GetArraySize(data), b->count);
		goto cleanup;
	}
	cJSON_ArrayForEach(item, data) {
		const cJSON *vec = json_arr(item, "embedding"), *x;
		double idx;
		size_t at = seen, k = 0;
		int dim = vec ? cJSON_GetArraySize(vec) : 0;

		if (json_num(item, "index", &idx) == 0) {
			if (idx < 0 || idx >= (double)b->count) {
				err_set(e, ERR_UPSTREAM_PROTOCOL,
					"%s returned an embedding for input %g of %zu",
					prov, idx, b->count);
				goto cleanup;
			}
			at = (size_t)idx;
		}
		if (dim < 1 || dim > EMBED_DIM_MAX) {
			err_set(e, ERR_UPSTREAM_PROTOCOL,
				"malformed embeddings answer from %s: an embedding of %d numbers",
				prov, dim);
			goto cleanup;
		}
		if (!j->res.dim) {
			j->res.dim = dim;
			j->res.vecs = xcalloc(j->res.n * (size_t)dim, sizeof(float));
		} else if (dim != j->res.dim) {
			err_set(e, ERR_UPSTREAM_PROTOCOL,
				"%s returned embeddings of %d and %d dimensions", prov,
				j->res.dim, dim);
			goto cleanup;
		}
		float *v = j->res.vecs + (b->first + at) * (size_t)dim;
		cJSON_ArrayForEach(x, vec) {
			if (!cJSON_IsNumber(x)) {
				err_set(e, ERR_UPSTREAM_PROTOCOL,
					"malformed embeddings answer from %s: a value that is not a number",
					prov);
				goto cleanup;
			}
			v[k++] = (float)x->valuedouble;
		}
		rag_normalize(v, dim);
		j->res.ok[b->first + at] = 1;
		seen++;
	}
	rc = 0;
cleanup:
	if (rc < 0)
		memset(j->res.ok + b->first, 0, b->count);
	cJSON_Delete(root);
	return rc;
}

static void refill(struct embed_job *j);
static void attempt(struct batch *b);

static void on_backoff(struct loop *l, void *data)
{
	struct batch *b = data;

	(void)l;
	b->timer = NULL;
	attempt(b);
}

/* The attempt of b ended with e (ERR_OK: success). */
static void attempt_over(struct batch *b, const struct err *e, long status,
			 double retry_after)
{
	struct embed_job *j = b->job;

	if (e->code != ERR_OK && b->attempts <= j->o.retries &&
	    llm_retryable(e->code, status)) {
		b->timer = loop_add_timer(engine_loop(j->eng),
					  llm_backoff_ms(&j->o, b->attempts, retry_after),
					  on_backoff, b);
		return;
	}
	if (e->code != ERR_OK) {
		if (j->res.err.code == ERR_OK)
			j->res.err = *e;
		j->stopped = 1;
	}
	buf_release(&b->answer);
	buf_release(&b->body);
	j->running--;
	refill(j);
}

static int on_data(void *ud, const char *p, size_t n)
{
	struct batch *b = ud;
	struct err e;

	if (buf_append(&b->answer, p, n) < 0) {
		err_set(&e, ERR_UPSTREAM_PROTOCOL, "%s embeddings answer larger than %u MiB",
			b->job->m.ref.provider, ANSWER_MAX >> 20);
		return transfer_fail(b->tr, &e);
	}
	return 0;
}

static void on_transfer_done(void *ud, struct transfer_result *r)
{
	struct batch *b = ud;
	struct embed_job *j = b->job;
	struct err e;

	b->tr = NULL;
	err_clear(&e);
	if (r->err.code != ERR_OK) {
		e.code = r->err.code;
		snprintf(e.msg, sizeof(e.msg), "%.40s: %.200s", j->m.ref.provider,
			 r->err.msg);
	} else if (r->status < 200 || r->status >= 300) {
		llm_http_error(&j->m.ref, r->status, r->content_type,
			       r->error_body.ptr, r->error_body.len, &e);
	} else if (j->on_relay) {
		/* Kept as it came, for on_relay. */
		buf_release(&j->relay);
		j->relay = b->answer;
		buf_init(&b->answer, ANSWER_MAX);
	} else {
		parse_answer(b, &e);
	}
	attempt_over(b, &e, r->status, r->retry_after);
}

static const struct transfer_cbs batch_cbs = {
	.on_data = on_data,
	.on_done = on_transfer_done,
};

static void attempt(struct batch *b)
{
	struct embed_job *j = b->job;
	struct transfer_req req = { 0 };
	struct err e;

	b->attempts++;
	buf_clear(&b->answer);
	err_clear(&e);
	req.url = j->url;
	req.headers = (const char *const *)j->headers;
	req.body = b->body.ptr;
	req.body_len = b->body.len;
	req.connect_ms = j->o.connect_ms;
	req.first_byte_ms = j->o.first_byte_ms;
	req.idle_ms = j->o.idle_ms;
	req.total_ms = j->o.total_ms;
	b->tr = transfer_start(j->eng, &req, &batch_cbs, b, &e);
	if (!b->tr)
		attempt_over(b, &e, 0, -1);
}

static void batch_start(struct batch *b)
{
	struct embed_job *j = b->job;

	/* A relay's one body is the client's, set by embed_relay_start. */
	if (!j->on_relay) {
		cJSON *root = cJSON_CreateObject(), *in;
		char *text;

		cJSON_AddStringToObject(root, "model", j->m.ref.model);
		in = cJSON_AddArrayToObject(root, "input");
		for (size_t i = 0; i < b->count; i++)
			cJSON_AddItemToArray(in, cJSON_CreateString(j->texts[b->first + i]));
		text = json_print(root);
		buf_appends(&b->body, text);
		free(text);
		cJSON_Delete(root);
	}
	j->running++;
	attempt(b);
}

/* Starts batches up to EMBED_PARALLEL running; ends the job when none
 * runs and none will start. */
static void refill(struct embed_job *j)
{
	/* A batch whose transfer cannot even start ends inside
	 * batch_start and calls back here: the outer call finishes. */
	if (j->refilling)
		return;
	j->refilling = 1;
	while (!j->stopped && j->running < EMBED_PARALLEL && j->next < j->nbatches)
		batch_start(&j->batches[j->next++]);
	j->refilling = 0;
	if (!j->running)
		job_finish(j);
}

static void on_kick(struct loop *l, void *data)
{
	struct embed_job *j = data;

	(void)l;
	j->kick = NULL;
	if (j->m.mock && j->on_relay) {
		job_finish(j);   /* the answer was built at the start */
		return;
	}
	if (j->m.mock) {
		j->res.dim = EMBED_MOCK_DIM;
		j->res.vecs = xcalloc(j->res.n * EMBED_MOCK_DIM, sizeof(float));
		for (size_t i = 0; i < j->res.n; i++) {
			embed_mock(j->texts[i], j->res.vecs + i * EMBED_MOCK_DIM);
			j->res.ok[i] = 1;
		}
		job_finish(j);
		return;
	}
	refill(j);
}

/* A job of m on eng, not started: for a provider, its URL, headers and
 * nbatches empty batches. */
static struct embed_job *job_new(struct engine *eng, const struct embed_model *m,
				 const struct llm_opts *o, size_t nbatches)
{
	struct embed_job *j = xcalloc(1, sizeof(*j));
	struct buf url;

	j->eng = eng;
	copy_model(&j->m, m);
	j->o = *o;
	buf_init(&j->relay, 0);
	if (m->mock)
		return j;
	buf_init(&url, 0);
	buf_printf(&url, "%s/embeddings", m->ref.base_url);
	j->url = buf_detach(&url);
	j->headers = xcalloc(3, sizeof(*j->headers));
	j->headers[0] = xstrdup("Content-Type: application/json");
	if (m->ref.api_key) {
		struct buf h;
		buf_init(&h, 0);
		buf_printf(&h, "Authorization: Bearer %s", m->ref.api_key);
		j->headers[1] = buf_detach(&h);
	}
	j->nbatches = nbatches;
	j->batches = xcalloc(nbatches ? nbatches : 1, sizeof(*j->batches));
	for (size_t i = 0; i < nbatches; i++) {
		j->batches[i].job = j;
		buf_init(&j->batches[i].body, 0);
		buf_init(&j->batches[i].answer, ANSWER_MAX);
	}
	srand((unsigned)((uintptr_t)j ^ (uintptr_t)loop_now_ms()));
	return j;
}

/* Everything happens on the loop, so no callback ever runs inside the
 * call that started the job. */
static struct embed_job *job_kick(struct embed_job *j)
{
	j->kick = loop_add_timer(engine_loop(j->eng), 0, on_kick, j);
	return j;
}

struct embed_job *embed_start(struct engine *eng, const struct embed_model *m,
			      const char *const *texts, size_t n,
			      const struct llm_opts *o,
			      void (*on_done)(void *ud, const struct embed_result *r),
			      void *ud, struct err *e)
{
	struct embed_job *j = job_new(eng, m, o, (n + EMBED_BATCH - 1) / EMBED_BATCH);

	(void)e;
	j->on_done = on_done;
	j->ud = ud;
	j->res.n = n;
	j->res.ok = xcalloc(n ? n : 1, 1);
	j->texts = xcalloc(n ? n : 1, sizeof(*j->texts));
	for (size_t i = 0; i < n; i++)
		j->texts[i] = xstrdup(texts[i]);
	for (size_t i = 0; i < j->nbatches; i++) {
		struct batch *b = &j->batches[i];
		b->first = i * EMBED_BATCH;
		b->count = n - b->first < EMBED_BATCH ? n - b->first : EMBED_BATCH;
	}
	return job_kick(j);
}

/* ==== relaying a client's request ==== */

/* Base64 (RFC 4648, padded) of p[0..n), appended to b. */
static void base64(struct buf *b, const unsigned char *p, size_t n)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		buf_putc(b, abc[w >> 18]);
		buf_putc(b, abc[(w >> 12) & 63]);
		buf_putc(b, i + 1 < n ? abc[(w >> 6) & 63] : '=');
		buf_putc(b, i + 2 < n ? abc[w & 63] : '=');
	}
}

/* The words embed_mock sees in s: runs of letters, digits and non-ASCII. */
static long mock_words(const char *s)
{
	long n = 0;
	int in = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int w = isalnum(*p) || *p >= 0x80;
		n += w && !in;
		in = w;
	}
	return n;
}

/* One mock vector as OpenAI sends it: numbers (each the float's shortest
 * decimal form) or base64 of little-endian float32. */
static cJSON *mock_vector(const float *v, int dim, int b64)
{
	cJSON *arr;

	if (b64) {
		unsigned char bytes[EMBED_MOCK_DIM * 4];
		struct buf s;
		cJSON *str;

		for (int i = 0; i < dim; i++) {
			uint32_t u;
			memcpy(&u, &v[i], 4);
			for (int k = 0; k < 4; k++)
				bytes[4 * i + k] = (unsigned char)(u >> (8 * k));
		}
		buf_init(&s, 0);
		base64(&s, bytes, (size_t)dim * 4);
		str = cJSON_CreateString(s.ptr);
		buf_release(&s);
		return str;
	}
	arr = cJSON_CreateArray();
	for (int i = 0; i < dim; i++) {
		char t[32];
		snprintf(t, sizeof(t), "%.9g", (double)v[i]);
		cJSON_AddItemToArray(arr, cJSON_CreateNumber(strtod(t, NULL)));
	}
	return arr;
}

/* mock:embed's answer to req, in OpenAI's shape, into out. */
static int mock_answer(const struct embed_model *m, const cJSON *req,
		       struct buf *out, struct err *e)
{
	const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input"), *it;
	const char *fmt = json_str(req, "encoding_format");
	int many = cJSON_IsArray(input), index = 0, dim;
	double d = EMBED_MOCK_DIM;
	long words = 0;
	cJSON *root, *data, *usage;
	char *text;

	if (json_num(req, "dimensions", &d) == 0 && (d < 1 || d > EMBED_MOCK_DIM))
		return err_set(e, ERR_INVALID_REQUEST,
			       "'dimensions' must be 1..%d for mock:embed (got %.0f)",
			       EMBED_MOCK_DIM, d);
	dim = (int)d;
	root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "object", "list");
	data = cJSON_AddArrayToObject(root, "data");
	for (it = many ? input->child : input; it; it = many ? it->next : NULL) {
		float v[EMBED_MOCK_DIM];
		cJSON *item;

		if (!cJSON_IsString(it)) {
			cJSON_Delete(root);
			return err_set(e, ERR_INVALID_REQUEST,
				       "'input' holds token ids: mock:embed embeds text only");
		}
		embed_mock(it->valuestring, v);
		if (dim < EMBED_MOCK_DIM) {
			/* Folded, not cut: the vector is sparse, and its
			 * first numbers alone are often all zero. */
			for (int i = dim; i < EMBED_MOCK_DIM; i++)
				v[i % dim] += v[i];
			rag_normalize(v, dim);
		}
		words += mock_words(it->valuestring);
		item = cJSON_CreateObject();
		cJSON_AddItemToArray(data, item);
		cJSON_AddStringToObject(item, "object", "embedding");
		cJSON_AddNumberToObject(item, "index", index++);
		cJSON_AddItemToObject(item, "embedding",
				      mock_vector(v, dim, fmt && !strcmp(fmt, "base64")));
	}
	cJSON_AddStringToObject(root, "model", embed_model_name(m));
	usage = cJSON_AddObjectToObject(root, "usage");
	cJSON_AddNumberToObject(usage, "prompt_tokens", (double)words);
	cJSON_AddNumberToObject(usage, "total_tokens", (double)words);
	text = json_print(root);
	buf_appends(out, text);
	free(text);
	cJSON_Delete(root);
	return 0;
}

struct embed_job *embed_relay_start(struct engine *eng,
				    const struct embed_model *m, const cJSON *req,
				    const struct llm_opts *o,
				    void (*on_done)(void *ud, const struct embed_reply *r),
				    void *ud, struct err *e)
{
	struct embed_job *j;
	struct buf answer;

	buf_init(&answer, 0);
	if (m->mock && mock_answer(m, req, &answer, e) < 0) {
		buf_release(&answer);
		return NULL;
	}
	j = job_new(eng, m, o, m->mock ? 0 : 1);
	j->on_relay = on_done;
	j->ud = ud;
	j->res.ok = xcalloc(1, 1);
	if (m->mock) {
		buf_release(&j->relay);
		j->relay = answer;
	} else {
		/* Every field as the client wrote it, in its place; only the
		 * model is the provider's name for it. */
		cJSON *body = cJSON_Duplicate(req, 1);
		cJSON *model = cJSON_CreateString(m->ref.model);
		char *text;

		if (cJSON_GetObjectItemCaseSensitive(body, "model"))
			cJSON_ReplaceItemInObjectCaseSensitive(body, "model", model);
		else
			cJSON_AddItemToObject(body, "model", model);
		text = json_print(body);
		buf_appends(&j->batches[0].body, text);
		free(text);
		cJSON_Delete(body);
		buf_release(&answer);
	}
	return job_kick(j);
}

/* ==== synchronous use ==== */

struct sync {
	struct loop *loop;
	struct embed_result *out;
};

static void sync_done(void *ud, const struct embed_result *r)
{
	struct sync *s = ud;
	struct embed_result *o = s->out;

	o->n = r->n;
	o->dim = r->dim;
	o->failed = r->failed;
	o->err = r->err;
	o->ok = xmalloc(r->n ? r->n : 1);
	memcpy(o->ok, r->ok, r->n);
	if (r->dim) {
		size_t bytes = r->n * (size_t)r->dim * sizeof(float);
		o->vecs = xmalloc(bytes ? bytes : 1);
		memcpy(o->vecs, r->vecs, bytes);
	}
	loop_stop(s->loop);
}

int embed_run(const struct embed_model *m, const char *const *texts, size_t n,
	      const struct llm_opts *o, struct embed_result *r)
{
	struct sync s = { .out = r };
	struct engine *eng;

	memset(r, 0, sizeof(*r));
	if (!(s.loop = loop_new())) {
		r->n = n;
		r->failed = n;
		r->ok = xcalloc(n ? n : 1, 1);
		return err_set(&r->err, ERR_INTERNAL, "cannot create the event loop");
	}
	eng = engine_new(s.loop);
	embed_start(eng, m, texts, n, o, sync_done, &s, &r->err);
	loop_run(s.loop);
	engine_free(eng);
	loop_free(s.loop);
	return r->failed || r->err.code != ERR_OK ? -1 : 0;
}

void embed_result_release(struct embed_result *r)
{
	free(r->vecs);
	free(r->ok);
	r->vecs = NULL;
	r->ok = NULL;
}
