/*
 * xalloc.h - allocation that never returns NULL.
 *
 * Every function here aborts the process with a message on out-of-memory,
 * so callers never check the result.  Memory returned is owned by the caller
 * and released with free().
 */
#ifndef AICHAT_XALLOC_H
#define AICHAT_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Owned copy of s (s must not be NULL). */
char *xstrdup(const char *s);
/* Owned, NUL-terminated copy of the first n bytes of s. */
char *xstrndup(const char *s, size_t n);

#endif
