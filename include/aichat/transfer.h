/*
 * transfer.h - HTTP calls as transfers on the event loop (libcurl multi).
 *
 * An engine couples one loop with one curl multi handle driven through
 * CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION: no thread per call,
 * no blocking perform.  Connections stay in the multi handle's pool and
 * are reused by later transfers to the same host.
 *
 * A transfer delivers its 2xx body through on_data as it arrives; a non-2xx
 * body is collected (capped) and handed to on_done in the result instead.
 * Exactly one on_done call ends every transfer that was not cancelled;
 * after transfer_cancel() no callback runs and the handle is gone.
 */
#ifndef AICHAT_TRANSFER_H
#define AICHAT_TRANSFER_H

#include <stddef.h>
#include <stdint.h>

#include "aichat/buf.h"
#include "aichat/err.h"
#include "aichat/loop.h"

struct engine;
struct transfer;
struct transfer_headers;

struct transfer_req {
	const char *url;
	/* The headers every request to this upstream carries, built once
	 * (transfer_headers_new()); borrowed until on_done or cancel.  NULL =
	 * none. */
	const struct transfer_headers *shared;
	/* Headers of this request only, sent before the shared ones: "Name:
	 * value" strings, NULL-terminated (copied).  NULL = none. */
	const char *const *headers;
	/* POST body, NULL = GET: borrowed, unchanged, until on_done or
	 * cancel, or until transfer_body_sent() (a held stream keeps no
	 * second copy of its prompt). */
	const char *body;
	size_t body_len;
	int64_t connect_ms;         /* 0 = no limit (each of these) */
	int64_t first_byte_ms;      /* until the first response byte */
	int64_t idle_ms;            /* longest silence once bytes flow */
	int64_t total_ms;
};

struct transfer_result {
	long status;                /* HTTP status, 0 if none was received */
	double retry_after;         /* seconds from Retry-After, -1 if absent */
	const char *content_type;   /* "" if absent */
	struct buf error_body;      /* body of a non-2xx answer (capped) */
	struct err err;             /* transport failure; code ERR_OK if none */
	int64_t first_byte_at;      /* loop_now_ms() of the first byte, 0 if none */
};

struct transfer_cbs {
	/* 2xx body bytes; return non-zero to abort (then on_done reports
	 * ERR_CANCELLED unless err was set by the callee via transfer_fail). */
	int (*on_data)(void *ud, const char *p, size_t n);
	void (*on_done)(void *ud, struct transfer_result *r);
};

/* Owned engine on loop l (borrowed, must outlive it).  libcurl itself is
 * initialised on the first transfer. */
struct engine *engine_new(struct loop *l);
/* Cancels every transfer still running, then frees the engine. */
void engine_free(struct engine *eng);
struct loop *engine_loop(struct engine *eng);

/*
 * A header list built once and shared: the headers every request to one
 * upstream carries (content type, auth, version), used by any number of
 * transfers at once without a copy.  Immutable once made, so transfers on
 * engines of other threads may share one too.  h: "Name: value" strings,
 * NULL-terminated, copied.  Owned by the caller: transfer_headers_free()
 * once no transfer uses it.
 */
struct transfer_headers *transfer_headers_new(const char *const *h);
void transfer_headers_free(struct transfer_headers *th);
/*
 * The list an engine keeps for (owner, key) -- e.g. a provider and its
 * API key (NULL: none) -- or NULL when it keeps none.  Lists kept live
 * until engine_free().  Keys are compared, never copied out.
 */
const struct transfer_headers *engine_headers(struct engine *eng,
					      const void *owner, const char *key);
/* Keeps th (taking it) under (owner, key) and returns it; NULL when the
 * engine keeps ENGINE_HEADERS_MAX lists already: th is then still the
 * caller's. */
#define ENGINE_HEADERS_MAX 32
const struct transfer_headers *engine_keep_headers(struct engine *eng,
						   const void *owner, const char *key,
						   struct transfer_headers *th);

/*
 * Starts a transfer.  req and its strings are copied, but for the body and
 * the shared headers; those, cbs and ud are borrowed until on_done
 * returns or the transfer is cancelled.
 * Returns NULL with e filled if curl refuses the request.
 */
struct transfer *transfer_start(struct engine *eng,
				const struct transfer_req *req,
				const struct transfer_cbs *cbs, void *ud,
				struct err *e);
/* Stops the transfer at once; no callback runs afterwards. */
void transfer_cancel(struct transfer *t);
/* 1 once the whole request body has gone out (or there is none): curl
 * reads it no more, and its owner may free it while the answer comes. */
int transfer_body_sent(struct transfer *t);
/*
 * on: no more on_data calls until transfer_pause(t, 0): curl keeps the
 * block it was about to deliver and stops reading the connection, so the
 * sender is held back by TCP.  off: delivery resumes from the loop, soon
 * after (never from inside this call).  A paused transfer is not idle for
 * its idle deadline; its total deadline still runs.  Safe from on_data.
 */
void transfer_pause(struct transfer *t, int on);
/*
 * From inside on_data: ends the transfer with this error (e.g. a parse
 * error); on_done follows with r->err set to it.  Returns non-zero so that
 * `return transfer_fail(...)` aborts the write.
 */
int transfer_fail(struct transfer *t, const struct err *e);

#endif
