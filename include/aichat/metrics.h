/*
 * metrics.h - counters, gauges and histograms for serve, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Single-threaded like the rest of serve: all calls come from the loop.
 * Label values are copied; a metrics object owns all its memory.
 */
#ifndef AICHAT_METRICS_H
#define AICHAT_METRICS_H

#include "aichat/buf.h"

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* aichat_http_requests_total{route,method,status} and
 * aichat_http_request_duration_seconds{route} (histogram). */
void metrics_request(struct metrics *m, const char *route, const char *method,
		     int status, double seconds);
/* aichat_ttft_seconds{model} (histogram): time to first token. */
void metrics_ttft(struct metrics *m, const char *model, double seconds);
/* aichat_tokens_total{model,kind="prompt"|"completion"}. */
void metrics_tokens(struct metrics *m, const char *model, long prompt,
		    long completion);
/* aichat_cost_microdollars_total{model}: what the exchanges with a
 * priced model cost, in millionths of a US dollar (exact integers). */
void metrics_cost(struct metrics *m, const char *model, long long micros);
/* aichat_upstream_errors_total{provider,code}; code "upstream_timeout"
 * also counts in aichat_upstream_timeouts_total{provider}. */
void metrics_upstream_error(struct metrics *m, const char *provider,
			    const char *code);
/* aichat_validation_failures_total{route}. */
void metrics_validation_failure(struct metrics *m, const char *route);
/* aichat_streams_in_flight (gauge): +1 when a stream starts, -1 at end. */
void metrics_streams_add(struct metrics *m, int delta);
/* aichat_stream_pauses_total: +1 each time a stream's upstream is paused
 * because its client has not taken what was sent. */
void metrics_stream_paused(struct metrics *m);
/* aichat_streams_cancelled_total{route}: a client left a stream before
 * its end. */
void metrics_stream_cancelled(struct metrics *m, const char *route);
/* aichat_cache_hits_total / aichat_cache_misses_total. */
void metrics_cache(struct metrics *m, int hit);
/* aichat_rate_limited_total{route}. */
void metrics_rate_limited(struct metrics *m, const char *route);

/* Appends the whole exposition (HELP and TYPE lines included) to out. */
/* One client connection accepted by worker (--workers), in
 * aichat_worker_connections_total. */
void metrics_worker_connection(struct metrics *m, unsigned worker);
void metrics_render(const struct metrics *m, struct buf *out);

#endif
