/*
 * test_cache.c - unit tests for the LRU cache (src/serve/cache.c).
 *
 * Table-driven: each case is a size, a time to live and a list of steps
 * (put, get with the value it must return or a miss, count), each at a
 * given now_ms.  Keys and values are written as literals and measured with
 * sizeof, so they may hold NUL bytes.  Then many keys: a full cache keeps
 * exactly its newest entries, and a large one finds every key it holds.
 */
#include "aichat/cache.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

enum op { C_END = 0, C_PUT, C_GET, C_COUNT };

struct step {
	enum op op;
	const char *key;
	size_t keylen;
	const char *val;        /* C_GET: NULL for a miss */
	size_t len;             /* C_COUNT: the count */
	int64_t now_ms;
};

struct cache_case {
	const char *name;
	size_t max;
	int64_t ttl_ms;
	struct step steps[16];
};

#define PUT(k, v, t) { C_PUT, k, sizeof(k) - 1, v, sizeof(v) - 1, t }
#define GET(k, v, t) { C_GET, k, sizeof(k) - 1, v, sizeof(v) - 1, t }
#define MISS(k, t) { C_GET, k, sizeof(k) - 1, NULL, 0, t }
#define COUNT(n) { C_COUNT, NULL, 0, NULL, n, 0 }

static const struct cache_case cases[] = {
	{ "hit and miss", 10, 1000, {
		PUT("a", "1", 0),
		GET("a", "1", 0),
		MISS("b", 0),
		MISS("", 0),
		MISS("aa", 0),
		COUNT(1),
		GET("a", "1", 999),
	} },
	{ "expiry exactly at stored + ttl", 10, 1000, {
		PUT("a", "1", 100),
		GET("a", "1", 1099),
		MISS("a", 1100),
		COUNT(0),               /* the expired entry was dropped */
		MISS("a", 1099),
	} },
	{ "expiry far later", 10, 1000, {
		PUT("a", "1", 0),
		PUT("b", "2", 500),
		MISS("a", 1000000),
		GET("b", "2", 1499),
		COUNT(1),
	} },
	{ "a get does not extend the life", 10, 1000, {
		PUT("a", "1", 0),
		GET("a", "1", 600),
		GET("a", "1", 999),
		MISS("a", 1000),
	} },
	{ "a put restarts the life", 10, 1000, {
		PUT("a", "1", 0),
		PUT("a", "2", 900),
		GET("a", "2", 1500),
		MISS("a", 1900),
	} },
	{ "replace", 10, 1000, {
		PUT("a", "1", 0),
		PUT("a", "22", 0),
		GET("a", "22", 0),
		COUNT(1),
		PUT("a", "", 0),
		GET("a", "", 0),        /* an empty value is not a miss */
		PUT("a", "333", 0),
		GET("a", "333", 0),
		COUNT(1),
	} },
	{ "LRU order, a get refreshes", 3, 1000, {
		PUT("a", "1", 0),
		PUT("b", "2", 0),
		PUT("c", "3", 0),
		GET("a", "1", 0),       /* order now a c b */
		PUT("d", "4", 0),       /* drops b */
		MISS("b", 0),
		COUNT(3),
		GET("a", "1", 0),
		GET("c", "3", 0),
		GET("d", "4", 0),       /* order now d c a */
		PUT("e", "5", 0),       /* drops a */
		MISS("a", 0),
		GET("c", "3", 0),
		GET("d", "4", 0),
		GET("e", "5", 0),
		COUNT(3),
	} },
	{ "a replace refreshes", 2, 1000, {
		PUT("a", "1", 0),
		PUT("b", "2", 0),
		PUT("a", "3", 0),       /* order now a b */
		PUT("c", "4", 0),       /* drops b */
		MISS("b", 0),
		GET("a", "3", 0),
		GET("c", "4", 0),
	} },
	{ "a miss does not refresh", 2, 1000, {
		PUT("a", "1", 0),
		PUT("b", "2", 0),
		MISS("x", 0),
		PUT("c", "3", 0),       /* drops a */
		MISS("a", 0),
		GET("b", "2", 0),
	} },
	{ "max 1", 1, 1000, {
		PUT("a", "1", 0),
		PUT("b", "2", 0),
		MISS("a", 0),
		GET("b", "2", 0),
		COUNT(1),
	} },
	{ "max 0 stores nothing", 0, 1000, {
		PUT("a", "1", 0),
		MISS("a", 0),
		COUNT(0),
	} },
	{ "ttl 0 stores nothing", 10, 0, {
		PUT("a", "1", 0),
		MISS("a", 0),
		COUNT(0),
	} },
	{ "binary keys and values", 10, 1000, {
		PUT("k\0x", "v\0w", 0),
		PUT("k\0y", "\0\0", 0),
		PUT("k", "plain", 0),
		PUT("", "empty key", 0),
		GET("k\0x", "v\0w", 0),
		GET("k\0y", "\0\0", 0),
		GET("k", "plain", 0),
		GET("", "empty key", 0),
		MISS("k\0", 0),
		MISS("k\0z", 0),
		COUNT(4),
	} },
	{ "a clock that goes back leaves entries fresh", 10, 1000, {
		PUT("a", "1", 5000),
		GET("a", "1", 4000),
		GET("a", "1", 5999),
		MISS("a", 6000),
	} },
};

static void check_case(const struct cache_case *c)
{
	struct cache *cache = cache_new(c->max, c->ttl_ms);
	const struct step *st;
	const char *got;
	size_t i, len;

	for (i = 0; i < sizeof(c->steps) / sizeof(c->steps[0]); i++) {
		st = &c->steps[i];
		switch (st->op) {
		case C_END:
			break;
		case C_PUT:
			cache_put(cache, st->key, st->keylen, st->val, st->len,
				  st->now_ms);
			continue;
		case C_COUNT:
			is_int(cache_count(cache), st->len, "%s: step %zu count",
			       c->name, i + 1);
			continue;
		case C_GET:
			len = 12345;
			got = cache_get(cache, st->key, st->keylen, &len,
					st->now_ms);
			if (!st->val) {
				ok(!got && len == 0, "%s: step %zu miss", c->name,
				   i + 1);
				continue;
			}
			if (!ok(got && len == st->len &&
				memcmp(got, st->val, len) == 0 && got[len] == '\0',
				"%s: step %zu hit", c->name, i + 1))
				printf("#   got %s, length %zu\n", got ? "a value" :
				       "NULL", len);
			continue;
		}
		break;
	}
	cache_free(cache);
}

/* A value returned by cache_get() may be put back as it is. */
static void test_put_own_value(void)
{
	struct cache *c = cache_new(1, 1000);
	const char *v;
	size_t len;

	cache_put(c, "a", 1, "value", 5, 0);
	v = cache_get(c, "a", 1, &len, 0);
	cache_put(c, "a", 1, v, len, 1);
	v = cache_get(c, "a", 1, &len, 1);
	ok(v && len == 5 && memcmp(v, "value", 5) == 0,
	   "a value of the cache put back under its key");
	/* ...or as the key of another entry, which evicts the first. */
	cache_put(c, v, len, "x", 1, 2);
	v = cache_get(c, "value", 5, &len, 2);
	ok(v && len == 1 && v[0] == 'x' && cache_count(c) == 1,
	   "a value of the cache used as a key");
	cache_free(c);
	lives_ok(cache_free(NULL), "cache_free(NULL) is a no-op");
}

static void test_many_keys(void)
{
	struct cache *c = cache_new(1000, 1000000);
	char key[32], val[32];
	const char *got;
	size_t i, len, found = 0, right = 0;

	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "key-%zu", i);
		snprintf(val, sizeof(val), "value-%zu", i);
		cache_put(c, key, strlen(key), val, strlen(val), (int64_t)i);
	}
	is_int(cache_count(c), 1000, "many keys: a full cache holds 1000");
	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "key-%zu", i);
		snprintf(val, sizeof(val), "value-%zu", i);
		got = cache_get(c, key, strlen(key), &len, 100000);
		found += got != NULL;
		right += got && i >= 99000 && len == strlen(val) &&
			 memcmp(got, val, len) == 0;
	}
	is_int(found, 1000, "many keys: 1000 found");
	is_int(right, 1000, "many keys: the newest 1000, with their values");
	cache_free(c);

	c = cache_new(100000, 1000000);
	for (i = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "%zu", i * 7919);
		cache_put(c, key, strlen(key), key, strlen(key), 0);
	}
	for (i = 0, right = 0; i < 50000; i++) {
		snprintf(key, sizeof(key), "%zu", i * 7919);
		got = cache_get(c, key, strlen(key), &len, 1);
		right += got && len == strlen(key) && memcmp(got, key, len) == 0;
	}
	is_int(right, 50000, "many keys: 50000 of 100000 all found");
	is_int(cache_count(c), 50000, "many keys: count 50000");
	cache_free(c);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_put_own_value();
	test_many_keys();
	return tap_done();
}
