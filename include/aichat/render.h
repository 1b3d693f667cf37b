/*
 * render.h - markdown styling for a terminal, applied while text streams.
 *
 * Every character of the text is written, in order; the renderer only
 * inserts ANSI styles around it (headings, **strong**, *emphasis*,
 * `inline code`, fenced code blocks, list bullets, quotes), so nothing is
 * ever reordered, lost or redrawn.  It holds back at most a few marker
 * characters until the next piece shows what they mean; render_finish()
 * writes them out.
 */
#ifndef AICHAT_RENDER_H
#define AICHAT_RENDER_H

#include <stddef.h>
#include <stdio.h>

struct render {
	FILE *out;
	int line_start;      /* nothing of this line written yet */
	int heading, quote;  /* styles that last to the end of the line */
	int fence;           /* inside a ``` block */
	int code, strong, em;
	char held[4];        /* markers waiting for the next character */
	int nheld;
};

void render_init(struct render *r, FILE *out);
/* Writes n bytes of streamed text with styles. */
void render_feed(struct render *r, const char *s, size_t n);
/* Writes anything held back and resets every style. */
void render_finish(struct render *r);

#endif
