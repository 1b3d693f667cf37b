/*
 * render.c - markdown styles on a streaming terminal; see render.h.
 *
 * A small state machine over characters.  Markers stay visible (a `code`
 * span keeps its backticks): the styles only add color, so a reader sees
 * exactly the text the model sent.  Backticks and asterisks are held
 * until the next character tells a fence from inline code and strong
 * from emphasis.
 */
#include "aichat/render.h"

#include <string.h>

#define RESET   "\033[0m"
#define BOLD    "\033[1m"
#define ITALIC  "\033[3m"
#define HEADING "\033[1;36m"
#define CODE    "\033[33m"
#define FENCE   "\033[2;33m"
#define BULLET  "\033[35m"
#define QUOTE   "\033[2m"

void render_init(struct render *r, FILE *out)
{
	memset(r, 0, sizeof(*r));
	r->out = out;
	r->line_start = 1;
}

/* Re-applies the styles in force after a reset. */
static void restyle(struct render *r)
{
	if (r->fence) {
		fputs(FENCE, r->out);
		return;
	}
	if (r->heading)
		fputs(HEADING, r->out);
	if (r->quote)
		fputs(QUOTE, r->out);
	if (r->strong)
		fputs(BOLD, r->out);
	if (r->em)
		fputs(ITALIC, r->out);
	if (r->code)
		fputs(CODE, r->out);
}

static void end_line(struct render *r)
{
	if (r->heading || r->quote || r->strong || r->em || r->code) {
		/* Inline styles do not run past a line. */
		r->heading = r->quote = r->strong = r->em = r->code = 0;
		fputs(RESET, r->out);
		if (r->fence)
			fputs(FENCE, r->out);
	}
	r->line_start = 1;
}

/* A run of backticks (n of them) followed by c. */
static void backticks(struct render *r, int n)
{
	if (r->line_start && n >= 3) {
		/* A fence line: toggles the block; the fence itself dim. */
		r->fence = !r->fence;
		fputs(FENCE, r->out);
		fwrite("```````````", 1, (size_t)n, r->out);
		if (!r->fence)
			fputs(RESET, r->out);
		r->line_start = 0;
		return;
	}
	if (r->fence) {
		fwrite("```````````", 1, (size_t)n, r->out);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (!r->code) {
			r->code = 1;
			fputs(CODE "`", r->out);
		} else {
			r->code = 0;
			fputs("`" RESET, r->out);
			restyle(r);
		}
	}
	r->line_start = 0;
}

static void stars(struct render *r, int n)
{
	if (r->fence || r->code) {
		fwrite("**********", 1, (size_t)n, r->out);
		return;
	}
	if (n >= 2) {
		if (!r->strong) {
			r->strong = 1;
			fputs(BOLD "**", r->out);
		} else {
			r->strong = 0;
			fputs("**" RESET, r->out);
			restyle(r);
		}
		n -= 2;
	}
	if (n == 1) {
		if (!r->em) {
			r->em = 1;
			fputs(ITALIC "*", r->out);
		} else {
			r->em = 0;
			fputs("*" RESET, r->out);
			restyle(r);
		}
	}
	r->line_start = 0;
}

/* Writes the held markers, now that c (or the end) follows them. */
static void release(struct render *r, int c)
{
	int n = r->nheld;

	if (!n)
		return;
	r->nheld = 0;
	if (r->held[0] == '`') {
		backticks(r, n);
	} else if (r->line_start && n == 1 && (c == ' ' || c == '\t') &&
		   !r->fence) {
		/* "* item": a bullet, not emphasis. */
		fputs(BULLET "*" RESET, r->out);
		restyle(r);
		r->line_start = 0;
	} else {
		stars(r, n);
	}
}

static void put(struct render *r, int c)
{
	if (c == '\n') {
		release(r, c);
		end_line(r);
		fputc('\n', r->out);
		return;
	}
	if ((c == '`' || c == '*') && r->nheld < 3 &&
	    (r->nheld == 0 || r->held[0] == c)) {
		r->held[r->nheld++] = (char)c;
		return;
	}
	release(r, c);
	if ((c == '`' || c == '*')) {
		r->held[r->nheld++] = (char)c;
		return;
	}
	if (r->line_start && !r->fence) {
		if (c == '#') {
			r->heading = 1;
			fputs(HEADING, r->out);
		} else if (c == '>') {
			r->quote = 1;
			fputs(QUOTE, r->out);
		} else if (c == '-' || c == '+') {
			/* A bullet when a blank follows; harmless otherwise. */
			fputs(BULLET, r->out);
			fputc(c, r->out);
			fputs(RESET, r->out);
			r->line_start = 0;
			return;
		}
		if (c != ' ' && c != '\t')
			r->line_start = 0;
	}
	fputc(c, r->out);
}

void render_feed(struct render *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put(r, (unsigned char)s[i]);
}

void render_finish(struct render *r)
{
	release(r, -1);
	if (r->heading || r->quote || r->strong || r->em || r->code || r->fence)
		fputs(RESET, r->out);
	r->heading = r->quote = r->strong = r->em = r->code = r->fence = 0;
	r->line_start = 1;
}
