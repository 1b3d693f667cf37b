/*
 * json.c - cJSON helpers; see json.h.
 */
#include "aichat/json.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>

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
