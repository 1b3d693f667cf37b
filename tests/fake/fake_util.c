/*
 * fake_util.c - the fake upstream's byte buffer, allocation, sleeps and
 * JSON field helpers.
 *
 * The fake links nothing from src/ so that it builds (and the tests can run)
 * whatever state the code under test is in; these are its own small copies.
 * Allocation failure aborts: no caller checks for NULL.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake.h"

void *fake_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

void *fake_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		abort();
	return p;
}

char *fake_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(fake_xmalloc(n), s, n);
}

static void fbuf_reserve(struct fbuf *b, size_t n)
{
	size_t cap;

	if (b->len + n + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->ptr = fake_xrealloc(b->ptr, cap);
	b->cap = cap;
}

void fbuf_append(struct fbuf *b, const void *p, size_t n)
{
	fbuf_reserve(b, n);
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	b->ptr[b->len] = '\0';
}

void fbuf_puts(struct fbuf *b, const char *s)
{
	fbuf_append(b, s, strlen(s));
}

void fbuf_printf(struct fbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	fbuf_reserve(b, 128);
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->ptr + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if ((size_t)n >= room) {
		fbuf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void fbuf_consume(struct fbuf *b, size_t n)
{
	if (!b->ptr)
		return;
	memmove(b->ptr, b->ptr + n, b->len - n + 1);
	b->len -= n;
}

void fbuf_release(struct fbuf *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = b->cap = 0;
}

const char *fbuf_str(const struct fbuf *b)
{
	return b->ptr ? b->ptr : "";
}

void fake_sleep_us(long us)
{
	struct timespec ts;

	if (us <= 0)
		return;
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void fake_sleep_ms(long ms)
{
	if (ms > 0)
		fake_sleep_us(ms * 1000);
}

long json_long(const cJSON *obj, const char *name, long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : def;
}

const char *json_str(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

cJSON *json_typed(const char *type)
{
	cJSON *doc = cJSON_CreateObject();

	cJSON_AddStringToObject(doc, "type", type);
	return doc;
}

int fake_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

size_t fake_count_words(const char *s)
{
	size_t n = 0;
	int in_word = 0;

	for (; *s; s++) {
		if (isspace((unsigned char)*s)) {
			in_word = 0;
		} else if (!in_word) {
			in_word = 1;
			n++;
		}
	}
	return n;
}
