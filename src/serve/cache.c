/*
 * cache.c - LRU cache with a time to live, for serve's answers.
 *
 * Entries live in a chained hash table (a seeded hash: keys are built
 * from client requests) and on a doubly linked list, most recently used
 * first.  A get moves its entry to the front; a put past max_entries drops
 * the tail.  An entry stored at t is returned while now < t + ttl_ms and
 * dropped by the first get that finds it older; expired entries nobody
 * asks for stay counted until the LRU order pushes them out, so
 * cache_count() is an upper bound on what a get can return.  Values are
 * copied with a NUL after them, so text values can be used as C strings.
 * The clock is never read here: callers pass monotonic milliseconds.
 */
#include "aichat/cache.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct entry {
	struct entry *hnext;            /* hash chain */
	struct entry *prev, *next;      /* LRU list, head most recent */
	uint64_t hash;
	int64_t stored_ms;
	char *val;                      /* owned, len bytes + NUL */
	size_t len;
	size_t keylen;
	char key[];
};

struct cache {
	size_t max_entries, count;
	int64_t ttl_ms;
	struct entry **table;           /* mask + 1 chains, a power of two */
	size_t mask;
	struct entry *head, *tail;
	uint64_t seed;
};

/* FNV-1a from a random basis, then MurmurHash3's finaliser so that the
 * chain index depends on every bit of the state. */
static uint64_t key_hash(uint64_t seed, const char *key, size_t n)
{
	uint64_t h = 14695981039346656037u ^ seed;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211u;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return h;
}

struct cache *cache_new(size_t max_entries, int64_t ttl_ms)
{
	struct cache *c = xcalloc(1, sizeof(*c));

	c->max_entries = max_entries;
	c->ttl_ms = ttl_ms;
	c->mask = 63;
	c->table = xcalloc(c->mask + 1, sizeof(*c->table));
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)(uintptr_t)c;
	return c;
}

void cache_free(struct cache *c)
{
	struct entry *e, *next;

	if (!c)
		return;
	for (e = c->head; e; e = next) {
		next = e->next;
		free(e->val);
		free(e);
	}
	free(c->table);
	free(c);
}

size_t cache_count(const struct cache *c)
{
	return c ? c->count : 0;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
}

static void table_grow(struct cache *c)
{
	size_t mask = c->mask * 2 + 1;
	struct entry **t = xcalloc(mask + 1, sizeof(*t));

	for (struct entry *e = c->head; e; e = e->next) {
		e->hnext = t[e->hash & mask];
		t[e->hash & mask] = e;
	}
	free(c->table);
	c->table = t;
	c->mask = mask;
}

static struct entry *entry_find(struct cache *c, const char *key,
				size_t keylen, uint64_t h)
{
	for (struct entry *e = c->table[h & c->mask]; e; e = e->hnext)
		if (e->hash == h && e->keylen == keylen &&
		    memcmp(e->key, key, keylen) == 0)
			return e;
	return NULL;
}

static void entry_drop(struct cache *c, struct entry *e)
{
	struct entry **pp;

	for (pp = &c->table[e->hash & c->mask]; *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	lru_unlink(c, e);
	free(e->val);
	free(e);
	c->count--;
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
	if (!c || c->count == 0)
		return NULL;
	e = entry_find(c, key, keylen, key_hash(c->seed, key, keylen));
	if (!e)
		return NULL;
	/* A clock that went back leaves the entry fresh. */
	if (now_ms > e->stored_ms && now_ms - e->stored_ms >= c->ttl_ms) {
		entry_drop(c, e);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	if (len)
		*len = e->len;
	return e->val;
}

void cache_put(struct cache *c, const char *key, size_t keylen,
	       const char *val, size_t len, int64_t now_ms)
{
	uint64_t h;
	struct entry *e;
	char *copy;

	/* With no room or no lifetime, nothing could ever be returned. */
	if (!c || c->max_entries == 0 || c->ttl_ms <= 0)
		return;
	/* Key and value are copied before anything is freed: either may
	 * point into this cache, as cache_get() returns. */
	copy = val_dup(val, len);
	h = key_hash(c->seed, key, keylen);
	e = entry_find(c, key, keylen, h);
	if (e) {
		free(e->val);
		lru_unlink(c, e);
	} else {
		e = xmalloc(sizeof(*e) + keylen + 1);
		if (keylen)
			memcpy(e->key, key, keylen);
		e->key[keylen] = '\0';
		e->keylen = keylen;
		e->hash = h;
		while (c->count >= c->max_entries)
			entry_drop(c, c->tail);
		if (c->count >= c->mask + 1)
			table_grow(c);
		e->hnext = c->table[h & c->mask];
		c->table[h & c->mask] = e;
		c->count++;
	}
	e->val = copy;
	e->len = len;
	e->stored_ms = now_ms;
	lru_push(c, e);
}
