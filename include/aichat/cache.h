/*
 * cache.h - in-memory LRU cache with a time to live, for serve's answers.
 *
 * Keys and values are byte strings copied in; a value returned by
 * cache_get() is borrowed and valid until the next call on the cache.
 * At most max_entries are kept (least recently used dropped first);
 * an entry older than ttl_ms is never returned.
 */
#ifndef AICHAT_CACHE_H
#define AICHAT_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct cache;

struct cache *cache_new(size_t max_entries, int64_t ttl_ms);
void cache_free(struct cache *c);
/* Value for key, or NULL (missing or expired); *len gets its length. */
const char *cache_get(struct cache *c, const char *key, size_t keylen,
		      size_t *len, int64_t now_ms);
/* Stores (replacing) key -> value at time now_ms. */
void cache_put(struct cache *c, const char *key, size_t keylen,
	       const char *val, size_t len, int64_t now_ms);
size_t cache_count(const struct cache *c);

#endif
