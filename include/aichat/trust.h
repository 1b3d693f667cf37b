/*
 * trust.h - the one trust boundary for text from outside.
 *
 * Bytes from an upstream or a client are hostile until they went through
 * here: every such string that reaches a terminal, a log or another client
 * is cleaned (one line, no control byte, no escape sequence, valid UTF-8)
 * or escaped (a log field), and every configured secret in it is replaced
 * by "[redacted]".
 *
 * Secrets: the API keys aichat holds (providers' keys as they are resolved,
 * serve's client keys) are registered with trust_add_secret(); any of them,
 * or its beginning when the text was cut short, is redacted wherever it
 * appears (or its first TRUST_SECRET_PREFIX bytes, followed by anything),
 * whatever its length (from TRUST_SECRET_MIN characters: a key of
 * one or two characters would mangle every message).  Text that looks like
 * a key ("sk-" and 8 or more key characters at the start of a word, the
 * token after "Bearer ") is redacted too.  The registry is process-wide and
 * guarded by a lock, so worker threads may clean text.
 */
#ifndef AICHAT_TRUST_H
#define AICHAT_TRUST_H

#include <cJSON.h>
#include <stddef.h>

#include "aichat/buf.h"

#define TRUST_SECRET_MIN 3
/* A secret's first this many bytes are redacted wherever they stand. */
#define TRUST_SECRET_PREFIX 8
#define TRUST_REDACTED "[redacted]"

/* Remembers a copy of s as a secret; NULL, a secret already known and one
 * shorter than TRUST_SECRET_MIN are ignored. */
void trust_add_secret(const char *s);
/* Forgets every secret (tests; the end of the process). */
void trust_clear_secrets(void);

/*
 * Copies len bytes of src into dst (cap bytes, always NUL-terminated when
 * cap > 0) as one line a terminal shows as text: secrets redacted, escape
 * sequences (ESC [ ... CSI, ESC ] ... OSC up to BEL or ST, the C1 forms
 * of both, other ESC pairs) removed, other control characters (C0, DEL,
 * C1) as a space, runs of blanks as one, no blank at either end, each
 * malformed UTF-8 byte as U+FFFD; cut at a character boundary when dst
 * is full.  Returns the length written.
 */
size_t trust_clean(char *dst, size_t cap, const char *src, size_t len);
/* The same into a new string; owned by the caller. */
char *trust_clean_dup(const char *src, size_t len);

/* A cJSON string of trust_clean()'s text of the C string s: a message for
 * a client. */
cJSON *trust_json_string(const char *s);

/*
 * Appends n bytes of s to b as one field of a text log line: secrets
 * redacted; printable ASCII but space and backslash, and valid UTF-8 that
 * is not C1, as they are; every other byte as \xNN and backslash as \\.
 * The field can then neither end the line nor split into two fields, and
 * the log shows what the client sent.
 */
void trust_escape(struct buf *b, const char *s, size_t n);

/*
 * Appends n bytes of s to b as valid UTF-8 (each malformed byte as
 * U+FFFD, a NUL as U+FFFD), secrets redacted, control characters kept:
 * for text a JSON encoder escapes next (cJSON escapes controls but writes
 * malformed UTF-8 as it is).
 */
void trust_utf8(struct buf *b, const char *s, size_t n);
/* The same without redaction: a model's answer is the model's, but it
 * must be valid UTF-8 to be JSON a client can parse. */
void trust_utf8_valid(struct buf *b, const char *s, size_t n);

/*
 * A filter for text streamed to a terminal in pieces (a model's answer):
 * escape sequences (ESC and C1 forms, an OSC or DCS up to BEL, ST or the
 * end of its line) and control characters other than newline and tab are
 * dropped, even when a sequence is split across pieces; everything else
 * passes as it is.  Zero-initialise one per stream.
 */
struct trust_term {
	int state;
};
/* Appends to out what of the n bytes of s the terminal may receive. */
void trust_term_feed(struct trust_term *t, struct buf *out, const char *s,
		     size_t n);

/*
 * The byte offset of the first malformed UTF-8 sequence in n bytes of s
 * (overlong forms, surrogates and code points past U+10FFFF count as
 * malformed), or -1 when all of s is valid.  A NUL byte is valid here.
 */
long trust_utf8_invalid(const char *s, size_t n);

#endif
