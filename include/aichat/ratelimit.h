/*
 * ratelimit.h - per-client token buckets.
 *
 * A bucket per key (an API key id or a client address) holds up to burst
 * tokens and refills at rate tokens per second; a request takes one.
 * At most max_keys buckets are kept: the least recently used is dropped
 * (a dropped key starts again with a full bucket).
 */
#ifndef AICHAT_RATELIMIT_H
#define AICHAT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/err.h"

struct ratelimit;

/*
 * Parses "N/second", "N/minute", "N/hour" (also "N/s", "N/m", "N/min",
 * "N/h", "N/sec") into a rate per second and a burst of N.  -1 with e
 * (ERR_USAGE) naming the bad text.
 */
int ratelimit_parse(const char *spec, double *per_second, double *burst,
		    struct err *e);

struct ratelimit *ratelimit_new(double per_second, double burst,
				size_t max_keys);
void ratelimit_free(struct ratelimit *rl);

struct rl_decision {
	int allowed;
	long limit;          /* X-RateLimit-Limit: the burst */
	long remaining;      /* X-RateLimit-Remaining, after this request */
	double reset_s;      /* X-RateLimit-Reset: seconds until the bucket is full */
	double retry_after_s;/* when refused: seconds until one token is back */
};

/* Takes one token from key's bucket at time now_ms (monotonic). */
void ratelimit_take(struct ratelimit *rl, const char *key, int64_t now_ms,
		    struct rl_decision *d);

#endif
