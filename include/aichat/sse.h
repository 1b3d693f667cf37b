/*
 * sse.h - incremental Server-Sent Events parser (WHATWG event-stream rules).
 *
 * Feed it bytes as they arrive, split anywhere; it calls back once per
 * complete event.  Handles LF, CRLF and lone CR line endings in any mix
 * (including a CR at the end of one feed and its LF at the start of the
 * next), a UTF-8 BOM at stream start, "data:" with or without the one
 * leading space, several data lines joined with "\n", comment lines,
 * event/id/retry fields, unknown fields (ignored).  An event is dispatched
 * when a blank line ends it and its data buffer was touched by at least one
 * data line (so `data:` alone dispatches an event with empty data, which
 * callers skip); sse_finish() dispatches a last event that had no trailing
 * blank line.  A line longer than the parser's cap is an error, and so is
 * an event whose joined data would pass SSE_EVENT_LINES times that cap.
 *
 * The parser owns its internal buffers; sse_release() frees them.  Event
 * strings passed to the callback are borrowed and valid only during it.
 */
#ifndef AICHAT_SSE_H
#define AICHAT_SSE_H

#include <stddef.h>

#include "aichat/buf.h"
#include "aichat/err.h"

#define SSE_DEFAULT_MAX_LINE (4u * 1024 * 1024)
/* An event's joined data may be this many times max_line. */
#define SSE_EVENT_LINES 4

struct sse_event {
	const char *event;   /* "" when no event: field was seen ("message") */
	const char *data;    /* NUL-terminated, may contain '\n' */
	size_t data_len;
	const char *id;      /* last event id seen in the stream, "" if none */
	long retry;          /* last valid retry: value in ms, -1 if none */
};

/* Returns 0 to go on; non-zero stops parsing and is returned by sse_feed. */
typedef int (*sse_event_fn)(void *ud, const struct sse_event *ev);

struct sse_parser {
	struct buf line;     /* current partial line */
	struct buf data;     /* data buffer of the event being built */
	struct buf event;    /* event type of the event being built */
	struct buf id;       /* last event id */
	long retry;
	size_t max_line;
	unsigned char bom;   /* bytes of the BOM matched so far; 3 = done */
	unsigned char cr;    /* last byte fed was a CR */
	unsigned char has_data;
};

/* max_line 0 = SSE_DEFAULT_MAX_LINE. */
void sse_init(struct sse_parser *p, size_t max_line);
void sse_release(struct sse_parser *p);

/*
 * Parses n bytes.  Returns 0 when all bytes were consumed, the callback's
 * non-zero value if it asked to stop, or -1 with e filled
 * (ERR_UPSTREAM_PROTOCOL) when a line or an event passes max_line.  A
 * stop or an error ends the stream: the rest of that feed is not parsed.
 */
int sse_feed(struct sse_parser *p, const char *s, size_t n,
	     sse_event_fn fn, void *ud, struct err *e);

/*
 * End of stream: dispatches the pending event if it has data (an event
 * without its trailing blank line), then resets.  Same returns as sse_feed.
 */
int sse_finish(struct sse_parser *p, sse_event_fn fn, void *ud,
	       struct err *e);

/* True when data is exactly "[DONE]" (the OpenAI end marker). */
int sse_is_done(const struct sse_event *ev);

#endif
