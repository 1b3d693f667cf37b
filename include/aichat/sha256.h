/*
 * sha256.h - SHA-256 (FIPS 180-4), for keys that must not reveal what
 * they were made from (serve's response cache in Redis).
 */
#ifndef AICHAT_SHA256_H
#define AICHAT_SHA256_H

#include <stddef.h>

/* The digest of the len bytes at p, as 64 lowercase hex digits and a NUL
 * into hex (65 bytes). */
void sha256_hex(const void *p, size_t len, char hex[65]);

#endif
