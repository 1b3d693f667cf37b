/*
 * cache.c - LRU cache with a time to live, for serve's answers.
 *
 * Entries live in an lru_map (util/lru.c: a seeded hash, as keys are
 * built from client requests, in most-recently-used order).  A get moves
 * its entry to the front; a put past max_entries drops the oldest.  An entry stored at t is returned while now < t + ttl_ms and
 * dropped by the first get that finds it older; expired entries nobody
 * asks for stay counted until the LRU order pushes them out, so
 * cache_count() is an upper bound on what a get can return.  Values are
 * copied with a NUL after them, so text values can be used as C strings.
 * The clock is never read here: callers pass monotonic milliseconds.
 */
#include "aichat/cache.h"
#include "aichat/lru.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct lru_node node;           /* first: a node is its entry */
	int64_t stored_ms;
	char *val;                      /* owned, len bytes + NUL */
	size_t len;
};

struct cache {
	size_t max_entries;
	int64_t ttl_ms;
	struct lru_map map;
};

struct cache *cache_new(size_t max_entries, int64_t ttl_ms)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	c->max_entries = max_entries;
	c->ttl_ms = ttl_ms;
	lru_init(&c->map);
	return c;
}

static void entry_free(struct lru_node *n)
{
	struct entry *e = (struct entry *)n;

	free(e->val);
	free(e);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	lru_release(&c->map, entry_free);
	free(c);
}

size_t cache_count(const struct cache *c)
{
	return c ? c->map.count : 0;
}

static void entry_drop(struct cache *c, struct entry *e)
{
	lru_remove(&c->map, &e->node);
	entry_free(&e->node);
}

static char *val_dup(const char *val, size_t len)
{
	char *p = xmalloc(len + 1);

	if (len)
		memcpy(p, val, len);
	p[len] = '\0';
	return p;
}

const char *cache_get(struct cache *c, const char *key, size_t keylen,
		      size_t *len, int64_t now_ms)
{
	struct entry *e;

	if (len)
		*len = 0;
	if (!c || c->map.count == 0)
		return NULL;
	e = (struct entry *)lru_find(&c->map, key, keylen);
	if (!e)
		return NULL;
	/* A clock that went back leaves the entry fresh. */
	if (now_ms > e->stored_ms && now_ms - e->stored_ms >= c->ttl_ms) {
		entry_drop(c, e);
		return NULL;
	}
	lru_touch(&c->map, &e->node);
	if (len)
		*len = e->len;
	return e->val;
}

void cache_put(struct cache *c, const char *key, size_t keylen,
	       const char *val, size_t len, int64_t now_ms)
{
	struct entry *e;
	char *copy;

	/* With no room or no lifetime, nothing could ever be returned. */
	if (!c || c->max_entries == 0 || c->ttl_ms <= 0)
		return;
	/* The value is copied, and the key inserted, before anything is
	 * freed: either may point into this cache, as cache_get() returns. */
	copy = val_dup(val, len);
	e = (struct entry *)lru_find(&c->map, key, keylen);
	if (e) {
		free(e->val);
		lru_touch(&c->map, &e->node);
	} else {
		e = xcalloc(1, sizeof(*e));
		lru_insert(&c->map, &e->node, key, keylen);
		while (c->map.count > c->max_entries)
			entry_drop(c, (struct entry *)lru_oldest(&c->map));
	}
	e->val = copy;
	e->len = len;
	e->stored_ms = now_ms;
}
