/*
 * lru.h - an intrusive hash map in least-recently-used order.
 *
 * The caller embeds a struct lru_node as the FIRST member of its own
 * entry (so a node pointer is the entry pointer) and allocates the entry;
 * the map keeps the chain and the order and owns a copy of each key.
 * Keys come from clients, so the hash is seeded at random per map.
 * Used by serve's answer cache and its rate limiter.
 */
#ifndef AICHAT_LRU_H
#define AICHAT_LRU_H

#include <stddef.h>
#include <stdint.h>

struct lru_node {
	struct lru_node *hnext;         /* hash chain */
	struct lru_node *prev, *next;   /* order, head most recently used */
	uint64_t hash;
	size_t keylen;
	char *key;                      /* owned by the map, NUL-terminated */
};

struct lru_map {
	struct lru_node **table;        /* mask + 1 chains, a power of two */
	size_t mask, count;
	struct lru_node *head, *tail;
	uint64_t seed;
};

void lru_init(struct lru_map *m);
/* Removes every node, handing each to free_node (may be NULL). */
void lru_release(struct lru_map *m, void (*free_node)(struct lru_node *));
/* The node with this key, or NULL; the order is not changed. */
struct lru_node *lru_find(struct lru_map *m, const char *key, size_t n);
/* Makes n the most recently used. */
void lru_touch(struct lru_map *m, struct lru_node *n);
/* Adds n (not in the map, key not present) as the most recently used. */
void lru_insert(struct lru_map *m, struct lru_node *n, const char *key,
		size_t keylen);
/* Takes n out of the map and frees its key; the caller frees n. */
void lru_remove(struct lru_map *m, struct lru_node *n);
/* The least recently used node, or NULL when empty. */
struct lru_node *lru_oldest(const struct lru_map *m);

#endif
