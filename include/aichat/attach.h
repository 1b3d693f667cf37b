/*
 * attach.h - what `aichat chat` adds to a prompt besides its words: files
 * (-f), provider parameters (-o KEY=VALUE), a structured-output schema
 * (--schema) and an Anthropic thinking budget (--thinking).
 *
 * Files are read whole, bounded by the bytes left under the prompt's cap.
 * A text file (UTF-8 without NUL bytes) is appended to the prompt after a
 * header line "==> PATH <==", as head(1) separates files; an image (PNG,
 * JPEG, GIF or WebP, known by its first bytes, never by its name) becomes
 * an image part of the user message, as a base64 data URL.  Anything else
 * is refused, so no byte is sent that the user did not mean to send.
 */
#ifndef AICHAT_ATTACH_H
#define AICHAT_ATTACH_H

#include <stddef.h>

#include <cJSON.h>

#include "aichat/buf.h"
#include "aichat/chat.h"
#include "aichat/err.h"

struct attachments {
	struct buf text;     /* the text files, each after its header */
	cJSON *images;       /* OpenAI image_url parts; owned */
	size_t bytes;        /* bytes read from files */
};

void attach_init(struct attachments *a);
void attach_release(struct attachments *a);

/*
 * Reads path ("-": stdin) into a, at most max bytes (what the prompt's cap
 * leaves).  -1 with e: ERR_IO when it cannot be read, ERR_INVALID_REQUEST
 * when it is too large, or is neither text nor an image (a name like an
 * image's does not make one).  Messages name the file, never its bytes.
 */
int attach_file(struct attachments *a, const char *path, size_t max,
		struct err *e);

/* Turns the last user message of req into text plus a's image parts (the
 * message's json); nothing when a holds no image. */
void attach_images(const struct attachments *a, struct chat_request *req);

/*
 * Adds -o KEY=VALUE to extra (created when NULL): VALUE as JSON when it
 * parses as JSON, else as a string.  Keys aichat sets itself (model,
 * messages, stream) are ERR_USAGE naming the flag to use instead.
 */
int attach_option(cJSON **extra, const char *kv, struct err *e);

/*
 * --schema: arg is a JSON Schema object, or the path of a file holding
 * one; becomes response_format json_schema (named "output") in extra.
 * ERR_USAGE (ERR_IO for an unreadable file) otherwise.
 */
int attach_schema(cJSON **extra, const char *arg, struct err *e);

/*
 * --thinking N: extra.thinking = {"type":"enabled","budget_tokens":N}, and
 * a max_tokens above the budget when none was given (*max_tokens 0).
 * ERR_USAGE when the model's family takes no thinking budget, or
 * max_tokens is not above it.
 */
int attach_thinking(cJSON **extra, long budget, const char *kind,
		    const char *model, int *max_tokens, struct err *e);

#endif
