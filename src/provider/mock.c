/*
 * mock.c - the offline, deterministic model.
 *
 * mock:echo answers with the last user message, word by word (each word
 * after the first keeps its leading whitespace), one delta per word,
 * spaced by $AICHAT_MOCK_DELAY_MS (default 0: all at once on the next
 * loop iteration).  Usage: prompt tokens = words in the system prompt and
 * all messages; completion tokens = deltas sent.  max_tokens cuts the
 * answer with finish_reason "length".  No network, ever.
 */
#include "aichat/config.h"
#include "aichat/provider.h"
#include "aichat/xalloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

struct mock {
	struct llm_call *call;
	char *text;
	size_t pos;
	long sent, limit;
	int64_t delay_ms;
	struct loop_timer *timer;
};

static long count_words(const char *s)
{
	long n = 0;
	int in = 0;

	for (; s && *s; s++) {
		if (isspace((unsigned char)*s))
			in = 0;
		else if (!in) {
			in = 1;
			n++;
		}
	}
	return n;
}

/* Length of the next delta at s: leading whitespace plus one word. */
static size_t next_word(const char *s)
{
	size_t i = 0;

	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	while (s[i] && !isspace((unsigned char)s[i]))
		i++;
	return i;
}

static void mock_free(void *p)
{
	struct mock *mk = p;

	if (mk->timer)
		loop_del_timer(llm_loop(mk->call), mk->timer);
	free(mk->text);
	free(mk);
}

static void tick(struct loop *l, void *data)
{
	struct mock *mk = data;

	mk->timer = NULL;
	do {
		size_t n = next_word(mk->text + mk->pos);

		if (n == 0) {
			llm_set_finish(mk->call, "stop");
			break;
		}
		if (mk->limit && mk->sent >= mk->limit) {
			llm_set_finish(mk->call, "length");
			break;
		}
		llm_emit(mk->call, mk->text + mk->pos, n);
		mk->pos += n;
		mk->sent++;
		llm_set_usage(mk->call, -1, mk->sent);
		if (mk->delay_ms > 0) {
			mk->timer = loop_add_timer(l, mk->delay_ms, tick, mk);
			return;
		}
	} while (1);
	llm_mark_complete(mk->call);
	llm_local_done(mk->call, NULL);
}

static int run_local(struct llm_call *c, const struct chat_params *p,
		     struct err *e)
{
	struct mock *mk = xcalloc(1, sizeof(*mk));
	const char *last = "", *d = env_get("AICHAT_MOCK_DELAY_MS");
	long prompt = count_words(p->system);

	(void)e;
	for (size_t i = 0; i < p->nmessages; i++) {
		prompt += count_words(p->messages[i].content);
		if (!strcmp(p->messages[i].role, "user"))
			last = p->messages[i].content;
	}
	mk->call = c;
	/* Leading whitespace of the message is not part of the answer. */
	while (isspace((unsigned char)*last))
		last++;
	mk->text = xstrdup(last);
	for (size_t n = strlen(mk->text); n && isspace((unsigned char)mk->text[n - 1]);)
		mk->text[--n] = '\0';
	mk->limit = p->max_tokens;
	mk->delay_ms = d ? atol(d) : 0;
	llm_set_usage(c, prompt, 0);
	llm_set_local(c, mk, mock_free);
	mk->timer = loop_add_timer(llm_loop(c), 0, tick, mk);
	return 0;
}

const struct provider_ops provider_mock = {
	.kind = "mock",
	.run_local = run_local,
};
