/*
 * buf.c - growable byte buffer; see buf.h for the invariants.
 *
 * An empty buffer points at a shared static "" so that ptr is never NULL
 * without allocating; cap == 0 marks that state.
 */
#include "aichat/buf.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char empty[1];

void buf_init(struct buf *b, size_t max)
{
	b->ptr = empty;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->ptr);
	b->ptr = empty;
	b->len = 0;
	b->cap = 0;
}

void buf_clear(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->ptr[0] = '\0';
}

int buf_grow(struct buf *b, size_t n)
{
	size_t want;

	if (n > (size_t)-1 - b->len - 1)
		return -1;
	want = b->len + n;
	if (b->max && want > b->max)
		return -1;
	if (want + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < want + 1)
		cap = cap > ((size_t)-1) / 2 ? want + 1 : cap * 2;
	if (b->cap) {
		b->ptr = xrealloc(b->ptr, cap);
	} else {
		b->ptr = xmalloc(cap);
		b->ptr[0] = '\0';
	}
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->ptr + b->len, p, n);
	b->len += n;
	if (b->cap)
		b->ptr[b->len] = '\0';
	return 0;
}

int buf_appends(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, int c)
{
	char ch = (char)c;
	return buf_append(b, &ch, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || buf_grow(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_clear(b);
		return;
	}
	memmove(b->ptr, b->ptr + n, b->len - n);
	b->len -= n;
	b->ptr[b->len] = '\0';
}

void buf_truncate(struct buf *b, size_t n)
{
	if (n < b->len) {
		b->len = n;
		b->ptr[n] = '\0';
	}
}

void buf_fit(struct buf *b)
{
	if (!b->cap || b->cap == b->len + 1)
		return;
	if (!b->len) {
		buf_release(b);
		return;
	}
	b->ptr = xrealloc(b->ptr, b->len + 1);
	b->cap = b->len + 1;
}

char *buf_detach(struct buf *b)
{
	char *p;

	if (!b->cap)
		return xstrdup("");
	p = b->ptr;
	b->ptr = empty;
	b->len = 0;
	b->cap = 0;
	return p;
}
