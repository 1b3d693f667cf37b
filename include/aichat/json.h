/*
 * json.h - small cJSON helpers.
 *
 * Getters borrow: returned strings and nodes belong to the cJSON tree and
 * live as long as it does.  Nothing here allocates except json_print().
 */
#ifndef AICHAT_JSON_H
#define AICHAT_JSON_H

#include <cJSON.h>
#include <stddef.h>

#include "aichat/buf.h"

/* obj[key] as a string, or NULL when absent or not a string. */
const char *json_str(const cJSON *obj, const char *key);
/* obj[key] as a number into *out; -1 when absent or not a number. */
int json_num(const cJSON *obj, const char *key, double *out);
/* obj[key] as an object/array node, NULL when absent or another type. */
/* A count from an untrusted document (token usage, ...): a number,
 * clamped to 0..JSON_COUNT_MAX and truncated to an integer.  -1 if the
 * member is missing or not a number. */
#define JSON_COUNT_MAX 1e12
int json_count(const cJSON *obj, const char *key, double *out);
const cJSON *json_obj(const cJSON *obj, const char *key);
/* d as an int within lo..hi: clamped as a double first, so 1e300 or NaN
 * (lo) never reach a cast, whose result would be undefined. */
int json_clamp_int(double d, int lo, int hi);
const cJSON *json_arr(const cJSON *obj, const char *key);
/* Follows a dotted path ("error.message"); NULL when any step is missing. */
const cJSON *json_path(const cJSON *obj, const char *path);
/* Compact text of node; owned, free() it. */
char *json_print(const cJSON *node);
/* node printed with every object's members sorted by name (byte order),
 * recursively: two documents that differ only in member order print the
 * same.  Owned by the caller. */
char *json_canonical(const cJSON *node);
/* Appends s as a JSON string literal (with quotes) to b. */
int json_quote(struct buf *b, const char *s, size_t n);
/* Appends d as cJSON_PrintUnformatted() writes a number (%1.15g, or
 * %1.17g when that does not read back the same; NaN and infinities as
 * null), so that JSON written by hand reads as cJSON's. */
void json_number(struct buf *b, double d);
/*
 * 1-based line and column of position pos in text, for error messages
 * that point at the place a parse failed.
 */
void json_position(const char *text, size_t pos, int *line, int *col);
/*
 * Parses len bytes of text.  On failure returns NULL and sets *err_pos to
 * the byte offset cJSON stopped at.
 */
cJSON *json_parse(const char *text, size_t len, size_t *err_pos);
/*
 * Makes every string and key of v, its siblings after it and everything
 * under them valid UTF-8 (each malformed byte and each NUL as U+FFFD):
 * for JSON from an upstream, whose text aichat passes on in JSON of its
 * own (cJSON would write malformed bytes out as they came).
 */
void json_make_utf8(cJSON *v);

/* What json_parse_strict() refused in a document that is valid JSON. */
struct json_issue {
	const char *type;    /* "duplicate_key", "string_nul", "string_unicode" */
	char loc[160];       /* dotted path of the value: "messages.0.role" */
	char msg[120];       /* "duplicate key 'role'" */
};

/*
 * Parses len bytes of text like json_parse(), then refuses what a reader
 * of the tree could not trust: a name twice in one object (cJSON keeps
 * both and a lookup finds the first, so a validator and a reader could
 * see different values), a string or name holding a NUL (raw or \u0000:
 * every C string would end there) or malformed UTF-8.  Returns the tree,
 * owned by the caller; NULL with iss->type NULL and *err_pos set when the
 * text is not JSON, or NULL with *iss filled (the first issue, depth
 * first) when it is but cannot be trusted.
 */
cJSON *json_parse_strict(const char *text, size_t len, size_t *err_pos,
			 struct json_issue *iss);

#endif
