/*
 * jscan.h - a strict one-pass JSON scanner, for reading a few members of
 * an upstream's event or body without building a cJSON tree.
 *
 * The same-dialect relays (openai.c, anthropic.c) pass the upstream's
 * bytes on as they came and only need a handful of members (usage, a
 * finish or stop reason, the text of a delta).  They walk the text with
 * these functions, which accept strict RFC 8259 JSON only and say no (-1)
 * to whatever they cannot be sure cJSON (json_parse(), json_make_utf8())
 * would read the same way: a raw control byte or \u0000 in a string, a
 * lone surrogate escape, an escaped member name, a number of 64 bytes or
 * more (cJSON cuts it), nesting deeper than JSCAN_DEPTH, anything
 * malformed.  The caller then takes the full way (cJSON): the same
 * errors, the same results.  A caller says no, too, to text it reads that
 * is not valid UTF-8 (json_make_utf8() would change it), and reads a
 * member given twice as cJSON does (the first: openai.c) or says no to it
 * (anthropic.c).
 *
 * A scanner is a cursor over borrowed text; nothing here allocates except
 * the decoded strings appended to a caller's buf.
 */
#ifndef AICHAT_JSCAN_H
#define AICHAT_JSCAN_H

#include <stddef.h>
#include <string.h>

#include "aichat/buf.h"

#define JSCAN_DEPTH 64

struct jscan {
	const char *p, *end;
};

/* Skips JSON whitespace. */
void jscan_ws(struct jscan *s);
/* The string whose opening quote is at s->p: checked, and when out is not
 * NULL, decoded and appended to out (no NUL added).  0 with s->p past the
 * closing quote, or -1. */
int jscan_string(struct jscan *s, struct buf *out);
/* A number as RFC 8259 writes it, shorter than 64 bytes; its value (as
 * cJSON reads it) in *v when v is not NULL.  0 or -1. */
int jscan_number(struct jscan *s, double *v);
/* The n bytes of w (a literal: "null", "true", "false") at s->p.  0 or
 * -1. */
int jscan_word(struct jscan *s, const char *w, size_t n);
/* Any one value at s->p (after whitespace), checked and skipped; depth is
 * how deep it stands (the top-level value: 0).  0 or -1. */
int jscan_value(struct jscan *s, int depth);
/*
 * The members of an object or the elements of an array: after s->p has
 * stepped over the opening bracket, each jscan_more() is 1 with s->p at
 * the next value (in an object, with its name in *name and *nlen, not
 * decoded: a name with an escape is -1), 0 past the closing bracket, -1
 * when malformed.  *first is 1 before the first call.  name NULL: an
 * array.
 */
int jscan_more(struct jscan *s, char close, int *first, const char **name,
	       size_t *nlen);
/* Whether the name of length nlen is want.  Inline: with a literal, the
 * length is known when compiling (one test per member of an event). */
static inline int jscan_named(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && !memcmp(name, want, nlen);
}
/* A member's value that aichat reads as a count (json_count()): when it
 * is a number, its count in *out; any other value is skipped and *out is
 * left as it is.  0 or -1. */
int jscan_count(struct jscan *s, double *out, int depth);
/* A member's value that aichat reads as a string (json_str()): when it is
 * one, decoded onto out and *have set to 1; any other value is skipped.
 * 0 or -1. */
int jscan_text(struct jscan *s, struct buf *out, int *have, int depth);

#endif
