/*
 * prompt.c - the bounds of what the CLI sends: bytes and the context budget.
 *
 * The CLI is bounded by bytes and by the model's context, never by the
 * character caps of the HTTP routes (DESIGN.md).  Every command that
 * sends the user's text (chat, the interactive chat, rag query, batch)
 * checks it here before anything is sent.  The messages give sizes and
 * limits, and never echo any of the text.
 */
#include "aichat/cli.h"
#include "aichat/trust.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Past the limit, stdin is still read (not kept) this far, to say how
 * large it was; an endless pipe stops there. */
#define DRAIN_MAX ((size_t)1 << 30)

int cli_limit_load(const struct config *cfg, struct cli_limit *l, struct err *e)
{
	return config_max_prompt_bytes(cfg, &l->max, &l->source, e);
}

/* "101 bytes" or "17.0 MiB (17825792 bytes)". */
static void size_text(char *dst, size_t cap, size_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(dst, cap, "%zu byte%s", n, n == 1 ? "" : "s");
		return;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(dst, cap, "%.1f %s (%zu bytes)", v, units[u], n);
}

/* "16 MiB" when the limit is a whole number of a unit, else "100-byte". */
static void limit_text(char *dst, size_t cap, size_t n)
{
	static const char *const units[] = { "TiB", "GiB", "MiB", "KiB" };

	for (int i = 0; i < 4; i++) {
		size_t unit = (size_t)1 << (10 * (4 - i));
		if (n >= unit && n % unit == 0) {
			snprintf(dst, cap, "%zu %s", n / unit, units[i]);
			return;
		}
	}
	snprintf(dst, cap, "%zu-byte", n);
}

int cli_limit_check(const struct cli_limit *l, const char *what, size_t n,
		    int more, struct err *e)
{
	char size[64], limit[32];

	if (n <= l->max && !more)
		return 0;
	size_text(size, sizeof(size), n);
	limit_text(limit, sizeof(limit), l->max);
	return err_set(e, ERR_INVALID_REQUEST, "%s is %s%s, over the %s limit (%s)",
		       what, more ? "more than " : "", size, limit, l->source);
}

int cli_read_stdin(struct buf *b, const struct cli_limit *l, const char *what,
		   struct err *e)
{
	char tmp[65536];
	size_t start = b->len, total = b->len;
	ssize_t n;

	for (;;) {
		n = read(STDIN_FILENO, tmp, sizeof(tmp));
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EBADF)
				break;  /* no stdin at all */
			return err_set(e, ERR_IO, "cannot read stdin: %s", strerror(errno));
		}
		total += (size_t)n;
		if (total <= l->max)
			buf_append(b, tmp, (size_t)n);
		else if (total - l->max > DRAIN_MAX)
			return cli_limit_check(l, what, total, 1, e);
	}
	/* Empty stdin adds nothing, not even what b ends with. */
	return total == start ? 0 : cli_limit_check(l, what, total, 0, e);
}

/* The budget of req's model, and the name it goes by. */
static long budget_of(const struct config *cfg, const struct chat_request *req,
		      const char **model, const char **source)
{
	const char *alias;

	*model = req->model ? req->model : config_default_model(cfg);
	if ((alias = config_alias(cfg, *model)))
		*model = alias;
	return config_context_budget(cfg, *model, source);
}

int cli_check_budget(const struct config *cfg, const struct chat_request *req,
		     struct err *e)
{
	const char *model, *source;
	long budget = budget_of(cfg, req, &model, &source);
	long tokens = chat_estimate_tokens(req);
	size_t bytes = req->system ? strlen(req->system) : 0;
	int system = req->system != NULL;

	if (budget <= 0 || tokens <= budget)
		return 0;
	for (size_t i = 0; i < req->nmessages; i++) {
		bytes += strlen(req->messages[i].content);
		system |= !strcmp(req->messages[i].role, "system");
	}
	return err_set(e, ERR_INVALID_REQUEST,
		       "the prompt%s is about %ld tokens (%zu bytes), over the %ld-token context budget of %.64s (%s)",
		       system ? " with its system prompt" : "", tokens, bytes, budget,
		       model, source);
}

int cli_fit_budget(const char *cmd, const struct config *cfg,
		   struct chat_request *req, struct err *e)
{
	const char *model, *source;
	long budget = budget_of(cfg, req, &model, &source);
	size_t dropped = chat_fit_budget(req, budget);

	if (dropped)
		fprintf(stderr, "aichat: %s: the conversation is past the %ld-token budget of %s: dropped the %zu oldest message%s (the system prompt stays)\n",
			cmd, budget, model, dropped, dropped == 1 ? "" : "s");
	return cli_check_budget(cfg, req, e);
}

/* The prompt is text: a NUL would end it early wherever it is a C
 * string, and malformed UTF-8 has no JSON form, so both are refused
 * (exit 2) rather than sent cut short or mangled. */
int cli_text_check(const char *what, const char *s, size_t n,
		   struct err *e)
{
	const char *nul = memchr(s, '\0', n);
	long bad = trust_utf8_invalid(s, n);

	if (nul)
		return err_set(e, ERR_INVALID_REQUEST,
			       "%s holds a NUL byte (byte %zu): it must be text",
			       what, (size_t)(nul - s) + 1);
	if (bad >= 0)
		return err_set(e, ERR_INVALID_REQUEST,
			       "%s is not valid UTF-8 (byte %ld): convert it first, e.g. with iconv",
			       what, bad + 1);
	return 0;
}
