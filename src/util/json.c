/*
 * json.c - cJSON helpers; see json.h.
 */
#include "aichat/json.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_clamp_int(double d, int lo, int hi)
{
	if (!(d >= lo))
		return lo;
	if (d > hi)
		return hi;
	return (int)d;
}

const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(n) ? n->valuestring : NULL;
}

int json_num(const cJSON *obj, const char *key, double *out)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(n))
		return -1;
	*out = n->valuedouble;
	return 0;
}

int json_count(const cJSON *obj, const char *key, double *out)
{
	double d;

	if (json_num(obj, key, &d) < 0)
		return -1;
	/* NaN fails both tests and becomes 0. */
	*out = d >= 0 ? (d <= JSON_COUNT_MAX ? (double)(long long)d : JSON_COUNT_MAX) : 0;
	return 0;
}

const cJSON *json_obj(const cJSON *obj, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsObject(n) ? n : NULL;
}

const cJSON *json_arr(const cJSON *obj, const char *key)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsArray(n) ? n : NULL;
}

const cJSON *json_path(const cJSON *obj, const char *path)
{
	char key[64];

	while (obj && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		obj = cJSON_GetObjectItemCaseSensitive(obj, key);
		path += n + (dot ? 1 : 0);
	}
	return obj;
}

char *json_print(const cJSON *node)
{
	char *s = cJSON_PrintUnformatted(node);
	if (!s) {
		/* cJSON only fails on allocation; keep xalloc's promise. */
		s = xstrdup("null");
	}
	return s;
}

static int by_name(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

/* A copy of node with its members sorted, recursively. */
static cJSON *sorted_copy(const cJSON *node)
{
	const cJSON *c;
	cJSON *out, **kids;
	size_t n = 0, i = 0;

	if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
		return cJSON_Duplicate(node, 0);
	out = cJSON_IsObject(node) ? cJSON_CreateObject() : cJSON_CreateArray();
	cJSON_ArrayForEach(c, node)
		n++;
	if (!n)
		return out;
	kids = xmalloc(n * sizeof(*kids));
	cJSON_ArrayForEach(c, node)
		kids[i++] = (cJSON *)c;
	if (cJSON_IsObject(node))
		qsort(kids, n, sizeof(*kids), by_name);
	for (i = 0; i < n; i++) {
		if (cJSON_IsObject(node))
			cJSON_AddItemToObject(out, kids[i]->string, sorted_copy(kids[i]));
		else
			cJSON_AddItemToArray(out, sorted_copy(kids[i]));
	}
	free(kids);
	return out;
}

char *json_canonical(const cJSON *node)
{
	cJSON *copy = sorted_copy(node);
	char *s = json_print(copy);

	cJSON_Delete(copy);
	return s;
}

int json_quote(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	if (buf_putc(b, '"') < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
			u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = '\0';
			esc = u;
		}
		if (buf_append(b, s + start, i - start) < 0 ||
		    buf_appends(b, esc) < 0)
			return -1;
		start = i + 1;
	}
	if (buf_append(b, s + start, n - start) < 0)
		return -1;
	return buf_putc(b, '"');
}

void json_number(struct buf *b, double d)
{
	/* cJSON's print_number: %1.15g, or %1.17g when that does not read
	 * back the same; an int (not -0) prints the same as %d. */
	char t[32];
	double back;
	int i;

	if (isnan(d) || isinf(d)) {
		buf_appends(b, "null");
		return;
	}
	i = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
	if (d == (double)i && !signbit(d)) {
		/* The common case, without printf. */
		char *p = t + sizeof(t);
		unsigned u = i < 0 ? 0u - (unsigned)i : (unsigned)i;
		do
			*--p = (char)('0' + u % 10);
		while (u /= 10);
		if (i < 0)
			*--p = '-';
		buf_append(b, p, (size_t)(t + sizeof(t) - p));
		return;
	}
	snprintf(t, sizeof(t), "%1.15g", d);
	if (sscanf(t, "%lg", &back) != 1 ||
	    fabs(back - d) > (fabs(back) > fabs(d) ? fabs(back) : fabs(d)) * DBL_EPSILON)
		snprintf(t, sizeof(t), "%1.17g", d);
	buf_appends(b, t);
}

void json_position(const char *text, size_t pos, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < pos && text[i]; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			(*col)++;
		}
	}
}

/* s as valid UTF-8 in cJSON's own allocation, or NULL when it is. */
static char *utf8_copy(const char *s)
{
	size_t n = strlen(s);
	struct buf b;
	char *out;

	if (trust_utf8_invalid(s, n) < 0)
		return NULL;
	buf_init(&b, 0);
	trust_utf8_valid(&b, s, n);
	out = cJSON_malloc(b.len + 1);
	if (out) {
		memcpy(out, b.ptr, b.len);
		out[b.len] = '\0';
	}
	buf_release(&b);
	return out;
}

void json_make_utf8(cJSON *v)
{
	for (; v; v = v->next) {
		char *t;

		if (v->string && !(v->type & cJSON_StringIsConst) &&
		    (t = utf8_copy(v->string))) {
			cJSON_free(v->string);
			v->string = t;
		}
		if (cJSON_IsString(v) && v->valuestring &&
		    !(v->type & cJSON_IsReference) && (t = utf8_copy(v->valuestring))) {
			cJSON_free(v->valuestring);
			v->valuestring = t;
		}
		if (v->child)
			json_make_utf8(v->child);
	}
}

cJSON *json_parse(const char *text, size_t len, size_t *err_pos)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

	if (root && end) {
		/* Only whitespace may follow the value. */
		while (end < text + len && (*end == ' ' || *end == '\t' ||
					     *end == '\n' || *end == '\r'))
			end++;
		if (end < text + len) {
			cJSON_Delete(root);
			root = NULL;
		}
	}
	if (!root && err_pos) {
		const char *ep = end ? end : cJSON_GetErrorPtr();
		*err_pos = ep && ep >= text && ep <= text + len ?
			(size_t)(ep - text) : 0;
	}
	return root;
}

/* ==== strict parsing ==== */

/* In a copy of text, inside strings: a NUL (raw, or the backslash of
 * \u0000) becomes the byte 0xFF, which valid UTF-8 never holds, and a
 * 0xFF of the text becomes 0xFE (still malformed).  The tree then says
 * where the NULs were, which cJSON alone would hide by cutting there. */
static char *mark_nuls(const char *text, size_t len)
{
	char *c = xmalloc(len + 1);
	int in_str = 0;

	memcpy(c, text, len);
	c[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)c[i];

		if (ch == 0xFF)
			c[i] = (char)0xFE;
		else if (!in_str)
			in_str = ch == '"';
		else if (ch == '"')
			in_str = 0;
		else if (ch == '\0')
			c[i] = (char)0xFF;
		else if (ch == '\\' && i + 1 < len) {
			if (i + 5 < len && c[i + 1] == 'u' &&
			    !memcmp(c + i + 2, "0000", 4))
				c[i] = (char)0xFF;
			i++;
		}
	}
	return c;
}

static int set_issue(struct json_issue *iss, const char *loc,
		     const char *type, const char *msg)
{
	iss->type = type;
	trust_clean(iss->loc, sizeof(iss->loc), loc, strlen(loc));
	snprintf(iss->msg, sizeof(iss->msg), "%s", msg);
	return -1;
}

/* -1 with iss filled when s is not text a C string can carry. */
static int check_text(const char *s, const char *loc, struct json_issue *iss)
{
	if (strchr(s, (char)0xFF))
		return set_issue(iss, loc, "string_nul",
				 "must not contain a NUL character (\\u0000)");
	if (trust_utf8_invalid(s, strlen(s)) >= 0)
		return set_issue(iss, loc, "string_unicode",
				 "is not valid UTF-8");
	return 0;
}

static int names_cmp(const void *a, const void *b)
{
	return strcmp((*(const cJSON *const *)a)->string,
		      (*(const cJSON *const *)b)->string);
}

/* The names of object o (checked already), sorted, so a duplicate is
 * found in n log n however many members a hostile body has. */
static const char *duplicate_name(const cJSON *o)
{
	size_t n = 0, i = 0;
	const cJSON *c, **v;
	const char *dup = NULL;

	for (c = o->child; c; c = c->next)
		n++;
	if (n < 2)
		return NULL;
	v = xmalloc(n * sizeof(*v));
	for (c = o->child; c; c = c->next)
		v[i++] = c;
	qsort(v, n, sizeof(*v), names_cmp);
	for (i = 1; i < n && !dup; i++)
		if (!strcmp(v[i - 1]->string, v[i]->string))
			dup = v[i]->string;
	free(v);
	return dup;
}

/* Appends the name of member c to path, up to a marked NUL. */
static void path_name(struct buf *path, const cJSON *c)
{
	buf_append(path, c->string, strcspn(c->string, "\xff"));
}

static int check_tree(const cJSON *n, struct buf *path, struct json_issue *iss)
{
	size_t base = path->len, i = 0;
	const cJSON *c;
	const char *dup;

	if (cJSON_IsString(n))
		return check_text(n->valuestring, path->ptr, iss);
	if (!cJSON_IsObject(n) && !cJSON_IsArray(n))
		return 0;
	for (c = n->child; c; c = c->next, i++) {
		if (base)
			buf_putc(path, '.');
		if (cJSON_IsObject(n)) {
			path_name(path, c);
			if (check_text(c->string, path->ptr, iss) < 0)
				return -1;
		} else {
			buf_printf(path, "%zu", i);
		}
		buf_truncate(path, base);
	}
	if (cJSON_IsObject(n) && (dup = duplicate_name(n))) {
		char msg[100], name[72];

		trust_clean(name, sizeof(name), dup, strlen(dup));
		snprintf(msg, sizeof(msg), "duplicate key '%s'", name);
		if (base)
			buf_putc(path, '.');
		buf_appends(path, dup);  /* checked: no NUL */
		return set_issue(iss, path->ptr, "duplicate_key", msg);
	}
	i = 0;
	for (c = n->child; c; c = c->next, i++) {
		if (base)
			buf_putc(path, '.');
		if (cJSON_IsObject(n))
			path_name(path, c);
		else
			buf_printf(path, "%zu", i);
		if (check_tree(c, path, iss) < 0)
			return -1;
		buf_truncate(path, base);
	}
	return 0;
}

cJSON *json_parse_strict(const char *text, size_t len, size_t *err_pos,
			 struct json_issue *iss)
{
	char *marked = mark_nuls(text, len);
	cJSON *root = json_parse(marked, len, err_pos);
	struct buf path;

	free(marked);
	memset(iss, 0, sizeof(*iss));
	if (!root)
		return NULL;
	buf_init(&path, 0);
	if (check_tree(root, &path, iss) < 0) {
		cJSON_Delete(root);
		root = NULL;
	}
	buf_release(&path);
	return root;
}
