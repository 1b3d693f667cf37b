/*
 * buf.h - growable byte buffer.
 *
 * Invariants: ptr is never NULL and always NUL-terminated (ptr[len] == 0),
 * so a buffer can be used as a C string whenever its content has no NUL.
 * max caps the length for untrusted data (0 means no cap): an append that
 * would pass it fails with -1 and leaves the buffer unchanged.
 * The struct is owned by the caller: buf_init() / buf_release() pair.
 */
#ifndef AICHAT_BUF_H
#define AICHAT_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *ptr;
	size_t len, cap, max;
};

/* Empty buffer with the given cap (0 = unlimited); allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);
/* Empties the buffer, keeping its storage. */
void buf_clear(struct buf *b);
/* Makes room for n more bytes; -1 if that passes max. */
int buf_grow(struct buf *b, size_t n);
/* Appends n bytes of p; -1 (buffer unchanged) if that passes max. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Appends the C string s. */
int buf_appends(struct buf *b, const char *s);
int buf_putc(struct buf *b, int c);
/* Appends printf-formatted text. */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drops the first n bytes (n > len drops everything). */
void buf_consume(struct buf *b, size_t n);
/* Truncates to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);
/* Gives back the storage past the content, for a buffer that is done
 * growing and is kept a long time (a held stream's request). */
void buf_fit(struct buf *b);
/*
 * Returns the content as an owned, NUL-terminated string (free() it) and
 * leaves the buffer empty.
 */
char *buf_detach(struct buf *b);

#endif
