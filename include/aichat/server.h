/*
 * server.h - `aichat serve`: libmicrohttpd on the engine's event loop.
 *
 * MHD runs with no thread of its own: its epoll fd is one fd of the loop,
 * MHD_run() is called when it is ready and MHD_get_timeout() feeds a loop
 * timer.  Upstream calls are transfers on the same loop.  A request that
 * waits (for an answer, or for the next token of a stream) is suspended,
 * never polled; it is resumed when its data arrives.
 */
#ifndef AICHAT_SERVER_H
#define AICHAT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/config.h"
#include "aichat/err.h"

struct server_opts {
	const char *host;            /* bind address, "127.0.0.1" */
	int port;                    /* 0 = any free port */
	int tcp;                     /* listen on host:port (default 1) */
	const char *unix_path;       /* also (or only) this unix socket */
	const char *const *api_keys; /* accepted keys (borrowed), may be empty */
	size_t nkeys;
	const int64_t *key_budgets;  /* per key (nkeys of them, borrowed): the
				      * micro-dollars it may spend a UTC day,
				      * -1 = no cap; NULL = none capped */
	int insecure_no_auth;        /* allow a non-loopback bind without keys */
	double rate_per_second;      /* per client; 0 = no limit */
	double rate_burst;
	int max_upstream;            /* concurrent upstream calls; 0 = no bound */
	int max_queue;               /* requests waiting for an upstream slot */
	const char *cors_origin;     /* NULL = no CORS headers */
	const char *const *allow_hosts;  /* Host values accepted besides
					  * loopback when there is no key */
	size_t nallow_hosts;
	const char *const *trusted_proxies;  /* peers (addresses as inet_ntop
					      * writes them) whose last
					      * X-Forwarded-For item is the
					      * client's address */
	size_t ntrusted_proxies;
	size_t max_body;             /* request body cap in bytes */
	int64_t upstream_timeout_ms; /* non-streaming calls */
	int64_t drain_ms;            /* SIGTERM: time given to in-flight work */
	int64_t keepalive_ms;        /* SSE comment while waiting for a token */
	unsigned max_connections;
	unsigned client_timeout_s;   /* idle or slow clients are dropped */
	int64_t request_timeout_ms;  /* a request's head and body, whole */
	unsigned max_connections_per_ip;  /* 0 = no cap; unix clients free */
	int log_text;                /* log lines for people instead of JSON */
	size_t cache_size;           /* entries; 0 = no cache */
	int64_t cache_ttl_ms;
	int batch_concurrency;
	int retries;
	int64_t rag_search_ms;       /* the search of a /rag route */
	int64_t rag_embed_ms;        /* embedding a /rag query */
	int log_conversations;       /* record /conversation in the log */
	const char *redis_url;       /* --redis: limits and cache shared through
				      * it; NULL = in the process */
	const char *redis_prefix;    /* namespace of every key, "aichat:" */
	int redis_fail;              /* 0 auto (closed for keys), 1 open,
				      * 2 closed: limits while Redis is down */
	int64_t redis_timeout_ms;    /* every Redis command, at most */
	int workers;                 /* event loops, each in its own thread
				      * (the first on the caller's); 0 = 1 */
	const char *default_model;   /* -m: for requests naming none; NULL =
				      * AICHAT_MODEL or the config's, if set */
};

void server_opts_default(struct server_opts *o);

/*
 * Binds, prints "aichat: listening on http://HOST:PORT" (and/or
 * "aichat: listening on unix:PATH") to stderr and
 * serves until SIGTERM or SIGINT, then drains.  Returns 0 after a clean
 * shutdown, -1 with e when the server cannot start.
 */
int server_run(const struct server_opts *o, const struct config *cfg,
	       struct err *e);

#endif
