/*
 * xlate.h - translation between the OpenAI and Anthropic dialects, for the
 * paths where a caller's dialect is not its provider's: an OpenAI answer
 * told as Anthropic events or a message (xo2a), and an Anthropic Messages
 * request turned into the OpenAI request every provider takes (xa2o).
 * The other two directions live with the Anthropic provider, which is the
 * only one that needs them (anthropic.c).
 *
 * Nothing here touches the network or a face.  A field with no meaning on
 * the other side is refused with its name, never dropped, except where
 * this file says why (cache_control hints, thinking blocks of an earlier
 * answer).
 */
#ifndef AICHAT_XLATE_H
#define AICHAT_XLATE_H

#include <stddef.h>

#include <cJSON.h>

#include "aichat/err.h"

/* ==== OpenAI answer -> Anthropic events ==== */

struct xo2a;

/* Receives one Anthropic event: name is its type ("message_start", ...) or
 * NULL for a whole non-streamed message; data is JSON text.  answer is 1
 * when it carries answer content. */
typedef void (*xo2a_emit_fn)(void *ud, const char *name, const char *data,
			     size_t n, int answer);

/* A translator for one answer; model names the answer's model.  Owned:
 * xo2a_free(). */
struct xo2a *xo2a_new(const char *model);
void xo2a_free(struct xo2a *x);
/*
 * Feeds one OpenAI object: a chat.completion.chunk (streamed; emits the
 * events it implies: message_start first, content blocks for text, tool
 * calls and refusals) or a chat.completion (emits the whole message).
 */
void xo2a_feed(struct xo2a *x, const cJSON *obj, xo2a_emit_fn emit, void *ud);
/* Closes a streamed answer: the open block's stop, message_delta with the
 * stop reason and usage, message_stop.  Once; later calls do nothing. */
void xo2a_finish(struct xo2a *x, xo2a_emit_fn emit, void *ud);

/* OpenAI finish_reason -> Anthropic stop_reason, and back. */
const char *xlate_stop_reason(const char *finish);
const char *xlate_finish_reason(const char *stop);

/* ==== Anthropic request -> OpenAI request ==== */

/*
 * Builds the OpenAI chat completion request that says what the Anthropic
 * Messages request areq says (validated by the caller for shape): system
 * as a system message, content blocks as parts, tool_use as tool_calls,
 * tool_result as tool messages, tools, tool_choice, stop_sequences, and
 * the sampling fields.  Returns an owned object, or NULL with e
 * (ERR_INVALID_REQUEST naming the field, e.g. "top_k") for what has no
 * OpenAI meaning; param receives that field's path ("" if none).
 */
cJSON *xa2o_request(const cJSON *areq, char *param, size_t cap,
		    struct err *e);

#endif
