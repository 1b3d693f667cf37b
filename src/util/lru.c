/*
 * lru.c - intrusive hash map in LRU order; see lru.h.
 *
 * Chained hashing with a table that doubles when it holds as many nodes
 * as chains; the LRU list is doubly linked, so every operation is O(1)
 * apart from walking one chain.
 */
#include "aichat/lru.h"
#include "aichat/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

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

void lru_init(struct lru_map *m)
{
	memset(m, 0, sizeof(*m));
	m->mask = 63;
	m->table = xcalloc(m->mask + 1, sizeof(*m->table));
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(m->seed))
		m->seed = (uint64_t)(uintptr_t)m;
}

void lru_release(struct lru_map *m, void (*free_node)(struct lru_node *))
{
	struct lru_node *n, *next;

	for (n = m->head; n; n = next) {
		next = n->next;
		free(n->key);
		if (free_node)
			free_node(n);
	}
	free(m->table);
	memset(m, 0, sizeof(*m));
}

static void unlink_order(struct lru_map *m, struct lru_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		m->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		m->tail = n->prev;
	n->prev = n->next = NULL;
}

static void push_front(struct lru_map *m, struct lru_node *n)
{
	n->prev = NULL;
	n->next = m->head;
	if (m->head)
		m->head->prev = n;
	else
		m->tail = n;
	m->head = n;
}

static void grow(struct lru_map *m)
{
	size_t mask = m->mask * 2 + 1;
	struct lru_node **t = xcalloc(mask + 1, sizeof(*t));

	for (struct lru_node *n = m->head; n; n = n->next) {
		n->hnext = t[n->hash & mask];
		t[n->hash & mask] = n;
	}
	free(m->table);
	m->table = t;
	m->mask = mask;
}

struct lru_node *lru_find(struct lru_map *m, const char *key, size_t n)
{
	uint64_t h = key_hash(m->seed, key, n);

	for (struct lru_node *x = m->table[h & m->mask]; x; x = x->hnext)
		if (x->hash == h && x->keylen == n && memcmp(x->key, key, n) == 0)
			return x;
	return NULL;
}

void lru_touch(struct lru_map *m, struct lru_node *n)
{
	unlink_order(m, n);
	push_front(m, n);
}

void lru_insert(struct lru_map *m, struct lru_node *n, const char *key,
		size_t keylen)
{
	if (m->count >= m->mask + 1)
		grow(m);
	n->key = xmalloc(keylen + 1);
	if (keylen)
		memcpy(n->key, key, keylen);
	n->key[keylen] = '\0';
	n->keylen = keylen;
	n->hash = key_hash(m->seed, key, keylen);
	n->hnext = m->table[n->hash & m->mask];
	m->table[n->hash & m->mask] = n;
	push_front(m, n);
	m->count++;
}

void lru_remove(struct lru_map *m, struct lru_node *n)
{
	struct lru_node **pp;

	for (pp = &m->table[n->hash & m->mask]; *pp != n; pp = &(*pp)->hnext)
		;
	*pp = n->hnext;
	unlink_order(m, n);
	free(n->key);
	n->key = NULL;
	m->count--;
}

struct lru_node *lru_oldest(const struct lru_map *m)
{
	return m->tail;
}
