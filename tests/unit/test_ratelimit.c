/*
 * test_ratelimit.c - unit tests for the token buckets (src/util/ratelimit.c).
 *
 * Table-driven: ratelimit_parse() against good specs with the rate and
 * burst they give and bad ones with their exact message; then sequences of
 * takes, each at a given now_ms, with the whole decision it must give
 * (allowed, remaining, reset and retry-after to the millisecond).  Last,
 * 100,000 distinct keys through a table of 1,000: the newest are still
 * counted, the oldest come back full, and the heap does not grow with the
 * number of keys seen (as mallinfo2() tells; under ASan it reads 0 and
 * that check proves nothing).
 */
#include "aichat/ratelimit.h"
#include "tap.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ==== parsing ==== */

static const struct {
	const char *spec;
	double per_second;      /* < 0: must fail */
	double burst;
	const char *msg;        /* failing: the exact message */
} parses[] = {
	{ "10/minute", 10.0 / 60, 10, NULL },
	{ "10/min", 10.0 / 60, 10, NULL },
	{ "10/m", 10.0 / 60, 10, NULL },
	{ "5/second", 5, 5, NULL },
	{ "5/sec", 5, 5, NULL },
	{ "5/s", 5, 5, NULL },
	{ "100/hour", 100.0 / 3600, 100, NULL },
	{ "100/h", 100.0 / 3600, 100, NULL },
	{ "10 / minute", 10.0 / 60, 10, NULL },
	{ "10 /m", 10.0 / 60, 10, NULL },
	{ "10/\tm", 10.0 / 60, 10, NULL },
	{ "1/s", 1, 1, NULL },
	{ "007/s", 7, 7, NULL },
	{ "1000000/s", 1000000, 1000000, NULL },
	{ "1000000/hour", 1000000.0 / 3600, 1000000, NULL },
	{ "10/fortnight", -1, 0,
	  "invalid rate limit '10/fortnight': expected N/second, N/minute or N/hour" },
	{ "", -1, 0,
	  "invalid rate limit '': expected N/second, N/minute or N/hour" },
	{ "10", -1, 0,
	  "invalid rate limit '10': expected N/second, N/minute or N/hour" },
	{ "10/", -1, 0,
	  "invalid rate limit '10/': expected N/second, N/minute or N/hour" },
	{ "/s", -1, 0,
	  "invalid rate limit '/s': expected N/second, N/minute or N/hour" },
	{ "-5/s", -1, 0,
	  "invalid rate limit '-5/s': expected N/second, N/minute or N/hour" },
	{ "+5/s", -1, 0,
	  "invalid rate limit '+5/s': expected N/second, N/minute or N/hour" },
	{ "5.5/s", -1, 0,
	  "invalid rate limit '5.5/s': expected N/second, N/minute or N/hour" },
	{ "1e3/s", -1, 0,
	  "invalid rate limit '1e3/s': expected N/second, N/minute or N/hour" },
	{ "ten/s", -1, 0,
	  "invalid rate limit 'ten/s': expected N/second, N/minute or N/hour" },
	{ " 10/s", -1, 0,
	  "invalid rate limit ' 10/s': expected N/second, N/minute or N/hour" },
	{ "10/s ", -1, 0,
	  "invalid rate limit '10/s ': expected N/second, N/minute or N/hour" },
	{ "10//s", -1, 0,
	  "invalid rate limit '10//s': expected N/second, N/minute or N/hour" },
	{ "10/s/s", -1, 0,
	  "invalid rate limit '10/s/s': expected N/second, N/minute or N/hour" },
	{ "10/minutes", -1, 0,
	  "invalid rate limit '10/minutes': expected N/second, N/minute or N/hour" },
	{ "10/M", -1, 0,
	  "invalid rate limit '10/M': expected N/second, N/minute or N/hour" },
	{ "10 per minute", -1, 0,
	  "invalid rate limit '10 per minute': expected N/second, N/minute or N/hour" },
	{ "0/s", -1, 0,
	  "invalid rate limit '0/s': N must be between 1 and 1000000" },
	{ "1000001/minute", -1, 0,
	  "invalid rate limit '1000001/minute': N must be between 1 and 1000000" },
	{ "99999999999999999999999/s", -1, 0,
	  "invalid rate limit '99999999999999999999999/s': N must be between 1 and 1000000" },
	{ NULL, -1, 0,
	  "invalid rate limit '': expected N/second, N/minute or N/hour" },
};

static void test_parse(void)
{
	char long_spec[300], want[400];
	struct err e;
	double rate, burst;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		const char *name = parses[i].spec ? parses[i].spec : "(null)";

		rate = burst = -7;
		err_clear(&e);
		rc = ratelimit_parse(parses[i].spec, &rate, &burst, &e);
		if (parses[i].per_second >= 0) {
			ok(rc == 0 && fabs(rate - parses[i].per_second) < 1e-12 &&
			   burst == parses[i].burst && e.code == ERR_OK,
			   "parse '%s'", name);
			continue;
		}
		ok(rc == -1 && e.code == ERR_USAGE && rate == -7 && burst == -7,
		   "parse '%s' fails, outputs untouched", name);
		is_str(e.msg, parses[i].msg, "parse '%s': message", name);
	}
	/* The spec is echoed, but no more than 128 bytes of it. */
	memset(long_spec, '9', 200);
	strcpy(long_spec + 200, "/s");
	snprintf(want, sizeof(want), "invalid rate limit '%.128s': N must be "
		 "between 1 and 1000000", long_spec);
	rc = ratelimit_parse(long_spec, &rate, &burst, &e);
	ok(rc == -1, "parse of a 202-byte spec fails");
	is_str(e.msg, want, "parse: a long spec is cut in the message");
	rc = ratelimit_parse("10/fortnight", &rate, &burst, NULL);
	is_int(rc, -1, "parse with a NULL err");
}

/* ==== sequences ==== */

struct take {
	const char *key;        /* NULL ends the case */
	int64_t now_ms;
	int allowed;
	long remaining;
	long reset_ms;          /* d.reset_s, in ms */
	long retry_ms;          /* d.retry_after_s, in ms (0 when allowed) */
};

struct rl_case {
	const char *name;
	double per_second, burst;
	size_t max_keys;
	struct take takes[24];
};

#define Y(key, t, rem, reset) { key, t, 1, rem, reset, 0 }
#define N(key, t, reset, retry) { key, t, 0, 0, reset, retry }

static const struct rl_case cases[] = {
	{ "5/second: burst, refusal, refill", 5, 5, 100, {
		Y("a", 0, 4, 200),
		Y("a", 0, 3, 400),
		Y("a", 0, 2, 600),
		Y("a", 0, 1, 800),
		Y("a", 0, 0, 1000),
		N("a", 0, 1000, 200),
		N("a", 100, 900, 100),
		N("a", 199, 801, 1),
		Y("a", 200, 0, 1000),
		Y("a", 600, 1, 800),      /* 2 tokens back, one taken */
		Y("a", 1600, 4, 200),     /* full again, capped at 5 */
		Y("a", 11600, 4, 200),    /* a long pause still caps at 5 */
	} },
	{ "10/minute: rates that binary cannot hold", 10.0 / 60, 10, 100, {
		Y("k", 1000, 9, 6000),
		Y("k", 1000, 8, 12000),
		Y("k", 1000, 7, 18000),
		Y("k", 1000, 6, 24000),
		Y("k", 1000, 5, 30000),
		Y("k", 1000, 4, 36000),
		Y("k", 1000, 3, 42000),
		Y("k", 1000, 2, 48000),
		Y("k", 1000, 1, 54000),
		Y("k", 1000, 0, 60000),
		N("k", 1000, 60000, 6000),
		N("k", 6999, 54001, 1),
		Y("k", 7000, 0, 60000),
		N("k", 7001, 59999, 5999),
		Y("k", 67000, 9, 6000),
	} },
	{ "3/second: retry rounded up to the millisecond", 3, 1, 100, {
		Y("a", 0, 0, 334),
		N("a", 0, 334, 334),
		N("a", 333, 1, 1),
		Y("a", 334, 0, 334),
	} },
	{ "keys are independent", 1, 2, 100, {
		Y("a", 0, 1, 1000),
		Y("a", 0, 0, 2000),
		N("a", 0, 2000, 1000),
		Y("b", 0, 1, 1000),
		Y("b", 500, 0, 1500),
		N("b", 500, 1500, 500),
		Y("a", 1000, 0, 2000),
		N("a", 1000, 2000, 1000),
		Y("", 1000, 1, 1000),
		Y("ab", 1000, 1, 1000),
	} },
	{ "LRU eviction at max_keys", 1.0 / 3600, 1, 2, {
		Y("a", 0, 0, 3600000),
		Y("b", 0, 0, 3600000),
		N("a", 1, 3599999, 3599999),  /* a is now the most recent */
		Y("c", 2, 0, 3600000),        /* drops b */
		N("a", 3, 3599997, 3599997),  /* a was kept */
		Y("b", 4, 0, 3600000),        /* b came back full; drops c */
		Y("c", 5, 0, 3600000),        /* drops a */
		Y("a", 6, 0, 3600000),        /* drops b */
		N("c", 7, 3599998, 3599998),
	} },
	{ "max_keys 1", 1, 1, 1, {
		Y("a", 0, 0, 1000),
		N("a", 0, 1000, 1000),
		Y("b", 0, 0, 1000),
		Y("a", 0, 0, 1000),
		N("a", 0, 1000, 1000),
	} },
	{ "max_keys 0 keeps nothing", 1, 2, 0, {
		Y("a", 0, 1, 1000),
		Y("a", 0, 1, 1000),
		Y("a", 0, 1, 1000),
	} },
	{ "a clock that goes back refills nothing", 1, 1, 10, {
		Y("a", 5000, 0, 1000),
		N("a", 4000, 1000, 1000),
		N("a", 5999, 1, 1),
		Y("a", 6000, 0, 1000),
	} },
	{ "1000000/second", 1000000, 1000000, 10, {
		Y("a", 0, 999999, 1),
		Y("a", 0, 999998, 1),
	} },
	{ "a burst below 1 is taken as 1", 1, 0, 10, {
		Y("a", 0, 0, 1000),
		N("a", 0, 1000, 1000),
	} },
};

static long to_ms(double s)
{
	return (long)llround(s * 1000);
}

static void check_case(const struct rl_case *c)
{
	struct ratelimit *rl = ratelimit_new(c->per_second, c->burst,
					     c->max_keys);
	struct rl_decision d;
	long limit = c->burst >= 1 ? (long)c->burst : 1;

	for (size_t i = 0; i < sizeof(c->takes) / sizeof(c->takes[0]); i++) {
		const struct take *t = &c->takes[i];

		if (!t->key)
			break;
		memset(&d, 0x5A, sizeof(d));
		ratelimit_take(rl, t->key, t->now_ms, &d);
		if (!ok(d.allowed == t->allowed && d.limit == limit &&
			d.remaining == t->remaining &&
			to_ms(d.reset_s) == t->reset_ms &&
			to_ms(d.retry_after_s) == t->retry_ms &&
			fabs(d.reset_s * 1000 - t->reset_ms) < 1e-6 &&
			fabs(d.retry_after_s * 1000 - t->retry_ms) < 1e-6,
			"%s: take %zu ('%s' at %lld)", c->name, i + 1, t->key,
			(long long)t->now_ms))
			printf("#   got:  allowed %d limit %ld remaining %ld "
			       "reset %.6f retry %.6f\n#   want: allowed %d "
			       "limit %ld remaining %ld reset %ld ms retry %ld ms\n",
			       d.allowed, d.limit, d.remaining, d.reset_s,
			       d.retry_after_s, t->allowed, limit, t->remaining,
			       t->reset_ms, t->retry_ms);
	}
	ratelimit_free(rl);
}

/* A rate of 0 would divide by zero: it is clamped to a tiny one. */
static void test_zero_rate(void)
{
	struct ratelimit *rl = ratelimit_new(0, 1, 10);
	struct rl_decision d;

	ratelimit_take(rl, "a", 0, &d);
	ok(d.allowed && d.remaining == 0 && isfinite(d.reset_s),
	   "rate 0: the burst is allowed");
	ratelimit_take(rl, "a", 1000000, &d);
	ok(!d.allowed && isfinite(d.retry_after_s) && d.retry_after_s > 1e6,
	   "rate 0: then refused, with a finite, long retry-after");
	ratelimit_free(rl);
}

/* ==== many keys ==== */

static size_t heap_used(void)
{
	return mallinfo2().uordblks;
}

static void test_many_keys(void)
{
	struct ratelimit *rl = ratelimit_new(1.0 / 3600, 1, 1000);
	struct rl_decision d;
	char key[32];
	size_t after_first = 0, refused = 0, i;
	int all_allowed = 1;

	for (i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.0.%zu.%zu", i / 256, i % 256);
		ratelimit_take(rl, key, (int64_t)i, &d);
		all_allowed &= d.allowed;
		if (i == 1999)
			after_first = heap_used();
	}
	ok(all_allowed, "100,000 keys: each new key starts full");
	/* 98,001 keys later, the heap holds the same number of buckets. */
	ok(heap_used() <= after_first + 4096,
	   "100,000 keys: the heap does not grow (%zu then %zu bytes)",
	   after_first, heap_used());
	for (i = 99000; i < 100000; i++) {
		snprintf(key, sizeof(key), "10.0.%zu.%zu", i / 256, i % 256);
		ratelimit_take(rl, key, 100000, &d);
		refused += !d.allowed;
	}
	is_int(refused, 1000, "100,000 keys: the newest 1,000 are still counted");
	snprintf(key, sizeof(key), "10.0.%d.%d", 0, 0);
	ratelimit_take(rl, key, 100001, &d);
	ok(d.allowed && d.remaining == 0, "100,000 keys: the oldest came back full");
	ratelimit_free(rl);
	lives_ok(ratelimit_free(NULL), "ratelimit_free(NULL) is a no-op");
}

int main(void)
{
	test_parse();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_zero_rate();
	test_many_keys();
	return tap_done();
}
