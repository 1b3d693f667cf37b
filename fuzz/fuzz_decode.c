/*
 * fuzz_decode.c - the OpenAI and Anthropic decoders: what turns an
 * upstream's stream events, answer body or error body into deltas,
 * events and errors (src/provider/openai.c, anthropic.c, xlate.c and
 * llm_http_error in provider.c).
 *
 * Input: a mode byte (provider, caller's dialect, whether the caller asked
 * for usage, and which decoder: event stream, whole answer, or an HTTP
 * error with the status of the second byte), then the upstream's bytes.
 * A call is started on an engine whose loop never runs, so nothing is
 * sent; the provider's decoder is driven directly, as the transfer would.
 *
 * Properties: no error message holds a control byte other than \n and \t,
 * or the configured key or its first 8 bytes (a key echoed cut); no
 * empty text or reasoning delta reaches the caller; every event translated
 * from the other dialect is JSON, with no empty text delta and token
 * counts that are whole numbers from 0 to 2^53.  OpenAI to an OpenAI
 * caller, and Anthropic to an Anthropic caller: the decoder reads the same
 * with its skim as with cJSON alone (openai_skim, anthropic_skim 0) -- the
 * same deltas, reasoning and relayed events, the same result and error.
 */
#include "fuzz.h"

#include "aichat/buf.h"
#include "aichat/json.h"
#include "aichat/provider.h"

#include <math.h>
#include <string.h>

#define KEY "sk-fuzz-S3cr3tK3y-0123456789"

static struct loop *loop;
static struct engine *eng;
static struct model_ref models[2];   /* openai, anthropic */

/* The models as the CLI and serve get them, so that the key is known
 * wherever a key is registered. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const struct config cfg;
	struct err e;

	(void)argc;
	(void)argv;
	unsetenv("AICHAT_CONFIG");
	setenv("OPENAI_API_KEY", KEY, 1);
	setenv("ANTHROPIC_API_KEY", KEY, 1);
	setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1", 1);
	setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9", 1);
	if (model_resolve(&cfg, "openai:fuzz-model", &models[0], &e) < 0 ||
	    model_resolve(&cfg, "anthropic:fuzz-model", &models[1], &e) < 0) {
		fprintf(stderr, "fuzz_decode: %s\n", e.msg);
		exit(1);
	}
	loop = loop_new();
	eng = engine_new(loop);
	return 0;
}

static void check_message(const char *msg)
{
	size_t n = strlen(msg), kl = strlen(KEY);

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];
		FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t', "control byte 0x%02x in '%s'",
			   c, msg);
		FUZZ_CHECK(c != 0x7f, "DEL in '%s'", msg);
	}
	/* Nor the key's first 8 bytes or more, anywhere (an echo cut short). */
	for (size_t i = 0; i < n; i++) {
		size_t same = 0;

		while (same < kl && i + same < n && msg[i + same] == KEY[same])
			same++;
		FUZZ_CHECK(same < 8, "key's beginning in '%s'", msg);
	}
}

struct ctx {
	enum dialect own, want;
	struct buf *trace;   /* what the caller saw, or NULL */
};

static void on_delta(void *ud, const char *s, size_t n)
{
	struct ctx *x = ud;

	FUZZ_CHECK(n > 0 && s, "empty delta");
	if (x->trace) {
		buf_printf(x->trace, "delta %zu:", n);
		buf_append(x->trace, s, n);
		buf_putc(x->trace, '\n');
	}
}

static void on_reasoning(void *ud, const char *s, size_t n)
{
	struct ctx *x = ud;

	FUZZ_CHECK(n > 0 && s, "empty reasoning delta");
	if (x->trace) {
		buf_printf(x->trace, "reasoning %zu:", n);
		buf_append(x->trace, s, n);
		buf_putc(x->trace, '\n');
	}
}

static void on_done(void *ud, const struct llm_result *r)
{
	(void)ud;
	(void)r;
	FUZZ_CHECK(0, "on_done from a call that never ran");
}

/* Token counts anywhere in a translated event. */
static void check_counts(const cJSON *j)
{
	for (const cJSON *c = j ? j->child : NULL; c; c = c->next) {
		size_t kl = c->string ? strlen(c->string) : 0;

		if (kl > 7 && !strcmp(c->string + kl - 7, "_tokens")) {
			FUZZ_CHECK(cJSON_IsNumber(c), "%s not a number", c->string);
			FUZZ_CHECK(c->valuedouble >= 0 && c->valuedouble <= 9007199254740992.0 &&
				   c->valuedouble == floor(c->valuedouble),
				   "%s = %g", c->string, c->valuedouble);
		}
		check_counts(c);
	}
}

static void on_event(void *ud, const char *name, const char *data, size_t n)
{
	struct ctx *x = ud;
	cJSON *j;
	const char *s;

	if (x->own == x->want) {
		/* the upstream's own bytes, relayed */
		if (x->trace) {
			buf_printf(x->trace, "event %s %zu:", name ? name : "(body)", n);
			buf_append(x->trace, data, n);
			buf_putc(x->trace, '\n');
		}
		return;
	}
	j = json_parse(data, n, NULL);
	FUZZ_CHECK(j != NULL, "translated event '%s' is not JSON: %.*s",
		   name ? name : "(body)", (int)n, data);
	check_counts(j);
	if (x->want == DIALECT_ANTHROPIC && name && !strcmp(name, "content_block_delta")) {
		const cJSON *d = json_obj(j, "delta");
		FUZZ_CHECK(!(s = json_str(d, "text")) || *s, "empty text_delta");
		FUZZ_CHECK(!(s = json_str(d, "partial_json")) || *s, "empty input_json_delta");
	}
	if (x->want == DIALECT_OPENAI && name) {
		const cJSON *ch = cJSON_GetArrayItem(json_arr(j, "choices"), 0);
		const cJSON *d = json_obj(ch, "delta");
		/* The role chunk opens with content ""; no other may. */
		if (d && !json_str(d, "role"))
			FUZZ_CHECK(!(s = json_str(d, "content")) || *s, "empty content delta");
	}
	cJSON_Delete(j);
}

static const struct llm_cbs cbs = {
	.on_delta = on_delta,
	.on_done = on_done,
	.on_event = on_event,
	.on_reasoning = on_reasoning,
};

struct feed {
	struct llm_call *c;
	const struct provider_ops *ops;
};

static int on_sse(void *ud, const struct sse_event *ev)
{
	struct feed *f = ud;
	struct err e;

	err_clear(&e);
	if (f->ops->stream_event(f->c, ev, &e) < 0) {
		FUZZ_CHECK(e.code != ERR_OK, "failed with no error");
		check_message(e.msg);
		return 1;
	}
	return 0;
}

/* Runs the decoder mode says on the upstream's n bytes at s; with trace,
 * writes down what the caller saw and the result. */
static void decode(unsigned mode, const char *s, size_t n, struct buf *trace)
{
	int anthropic = mode & 1, usage = mode & 8, which = ((mode >> 4) & 3) % 3;
	const struct model_ref *m = &models[anthropic];
	struct chat_message msg = { "user", "hi", NULL };
	struct chat_params p = { 0 };
	struct ctx x;
	struct llm_opts o;
	struct err e;
	struct llm_call *c;
	cJSON *extra = NULL;

	x.own = anthropic ? DIALECT_ANTHROPIC : DIALECT_OPENAI;
	x.want = (enum dialect)(((mode >> 1) & 3) % 3);
	x.trace = trace;
	err_clear(&e);
	if (usage) {
		extra = cJSON_CreateObject();
		cJSON_AddTrueToObject(cJSON_AddObjectToObject(extra, "stream_options"),
				      "include_usage");
	}
	p.messages = &msg;
	p.nmessages = 1;
	p.temperature = -1;
	p.stream = which == 0;
	p.extra = extra;
	p.dialect = x.want;
	o.retries = 0;
	o.connect_ms = o.first_byte_ms = o.idle_ms = o.total_ms = 1000;
	o.retry_base_ms = 1;
	c = llm_call_start(eng, m, &p, &o, &cbs, &x, &e);
	FUZZ_CHECK(c != NULL, "cannot start: %s", e.msg);
	if (which == 0) {
		struct sse_parser sp;
		struct feed f = { c, m->ops };
		int rc;

		sse_init(&sp, 0);
		rc = sse_feed(&sp, s, n, on_sse, &f, &e);
		if (rc == 0)
			rc = sse_finish(&sp, on_sse, &f, &e);
		sse_release(&sp);
	} else if (m->ops->parse_body(c, s, n, &e) < 0) {
		FUZZ_CHECK(e.code != ERR_OK, "failed with no error");
		check_message(e.msg);
	}
	if (trace) {
		const struct llm_result *r = llm_result_so_far(c);
		buf_printf(trace, "error %d %s\nusage %d %ld %ld %ld %ld\nfinish %s\n"
			   "first token %d, %zu bytes\n", (int)e.code, e.msg,
			   r->have_usage, r->prompt_tokens, r->completion_tokens,
			   r->cached_tokens, r->cache_write_tokens, r->finish_reason,
			   r->first_token_ms >= 0, r->delta_bytes);
	}
	llm_call_cancel(c);
	cJSON_Delete(extra);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned mode = fuzz_byte(&in), status = 400 + fuzz_byte(&in) % 200;
	int anthropic = mode & 1, which = ((mode >> 4) & 3) % 3;
	static const char *const ctypes[] = { "application/json", "text/html", "" };
	enum dialect want = (enum dialect)(((mode >> 1) & 3) % 3);
	const char *s = (const char *)in.p;
	size_t n = in.n;
	struct err e;

	err_clear(&e);
	if (which == 2) {
		/* An error answer: no call needed. */
		llm_http_error(&models[anthropic], status, ctypes[(mode >> 6) % 3], s, n, &e);
		FUZZ_CHECK(e.code != ERR_OK, "HTTP %u is no error", status);
		check_message(e.msg);
		return 0;
	}
	if ((!anthropic && want == DIALECT_OPENAI) ||
	    (anthropic && want == DIALECT_ANTHROPIC)) {
		struct buf skimmed, parsed;

		buf_init(&skimmed, 0);
		buf_init(&parsed, 0);
		decode(mode, s, n, &skimmed);
		openai_skim = anthropic_skim = 0;
		decode(mode, s, n, &parsed);
		openai_skim = anthropic_skim = 1;
		FUZZ_CHECK(skimmed.len == parsed.len && !memcmp(skimmed.ptr, parsed.ptr, parsed.len),
			   "skimmed:\n%s\nparsed:\n%s", skimmed.ptr, parsed.ptr);
		buf_release(&skimmed);
		buf_release(&parsed);
		return 0;
	}
	decode(mode, s, n, NULL);
	return 0;
}
