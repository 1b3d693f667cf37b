/*
 * internal.h - what the files of src/serve share: the server, a request
 * and its SSE stream, libmicrohttpd's functions, and the functions one
 * file of serve calls in another.  Not a public header: only the files
 * of src/serve include it (serve's public face is aichat/server.h).
 *
 * Where things are: server.c (options, routing, the end of every request,
 * signals, start and stop), http.c (MHD on the loop, responses, suspend
 * and resume, SSE), auth.c (API keys, rate limit, the upstream gate),
 * shared.c (the rate limiter and the response cache, in the process or
 * in Redis through redis.c), jobq.c (the background jobs, in SQLite or
 * in Redis through rjobs.c), workers.c (--workers), chatroute.c (what the
 * routes that call a chat model share), and one routes_*.c per family of
 * routes (seed, OpenAI /v1, embeddings, jobs,
 * rag, playground).
 *
 * Everything here runs on one worker's loop thread (--workers: one loop
 * per worker, each with its own struct server); what the workers share
 * lives in struct hub, under its locks (workers.c).  A struct
 * req lives from the first on_access() of its connection to
 * on_completed(), which ends every request whatever happened; a struct
 * stream may outlive it, until MHD lets go of the response.
 */
#ifndef AICHAT_SERVE_INTERNAL_H
#define AICHAT_SERVE_INTERNAL_H

#include <cJSON.h>
#include <microhttpd.h>
#include <sqlite3.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "aichat/batch.h"
#include "aichat/buf.h"
#include "aichat/chat.h"
#include "aichat/config.h"
#include "aichat/embed.h"
#include "aichat/err.h"
#include "aichat/jobs.h"
#include "aichat/loop.h"
#include "aichat/models.h"
#include "aichat/ratelimit.h"
#include "aichat/schema.h"
#include "aichat/searcher.h"
#include "aichat/serve.h"
#include "aichat/server.h"
#include "aichat/writer.h"

/* libmicrohttpd's functions, resolved when serve starts (dynlib.h):
 * every call to MHD goes through mhd, defined in http.c. */
struct mhd_api {
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_create_response_from_callback) *create_response_from_callback;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_get_connection_values) *get_connection_values;
	__typeof__(MHD_get_daemon_info) *get_daemon_info;
	__typeof__(MHD_get_timeout) *get_timeout;
	__typeof__(MHD_lookup_connection_value) *lookup_connection_value;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_quiesce_daemon) *quiesce_daemon;
	__typeof__(MHD_resume_connection) *resume_connection;
	__typeof__(MHD_run) *run;
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_suspend_connection) *suspend_connection;
};

extern struct mhd_api mhd;

struct req;
struct server;

/* One MHD daemon of the server: the TCP port, or the unix socket
 * (--unix).  Both run on the same loop and share everything else. */
struct listener {
	struct server *srv;
	struct MHD_Daemon *d;
	unsigned conns;              /* MHD's connections at the last rearm */
	int is_unix;
};

/* One client connection, from MHD's "started" to its "closed": while it
 * is receiving a request (head and body) it is in the server's list of
 * receiving connections, oldest first, where a sweep enforces
 * --request-timeout and drops clients that hung up mid-request (MHD, with
 * edge-triggered epoll, misses a FIN that comes with the last bytes). */
struct conn {
	struct server *srv;
	struct MHD_Connection *c;
	int fd;
	int64_t since;               /* the request being received began */
	int receiving;               /* in srv's list */
	int rdhup;                   /* seen half-closed at the last sweep */
	int ended;                   /* cut off by the server: never again */
	struct req *r;               /* the request, once MHD has its head */
	struct conn *prev, *next;
};

struct hub;
struct mailbox;
struct xjob;

/* One worker of `aichat serve` (the only one with --workers 1): its
 * loop, daemons, its share of the state, and the requests in flight.
 * metrics, lim and cache (in the process), db and spend point to what
 * every worker shares. */
struct server {
	const struct server_opts *o;
	const struct config *cfg;
	struct loop *loop;
	struct engine *eng;
	struct listener ls[2];       /* TCP and/or the unix socket */
	size_t nls;
	struct loop_timer *mhd_timer;
	int mhd_timer_soon;          /* mhd_timer is a 0 ms "run now" */
	struct conn *recv_head, *recv_tail;  /* receiving, oldest first */
	struct loop_timer *conn_timer;       /* the sweep of that list */
	char *unix_path;             /* the socket file we created, or NULL */
	dev_t unix_dev;              /* ... and its identity, so that only */
	ino_t unix_ino;              /* ours is ever removed */
	struct metrics *metrics;
	struct redis *redis;         /* --redis, or NULL */
	struct limiter *lim;         /* --rate-limit, or NULL */
	struct acache *cache;        /* the response cache, or NULL */
	sqlite3 *db;
	struct jobq *jq;             /* the background jobs (worker 0's), or
				      * NULL when they are off */
	struct searcher *searcher;   /* the rag routes' searches */
	struct models_job *models_job;  /* the listing this worker runs */
	struct req *models_waiters;  /* requests waiting for a listing */
	struct req *reqs;            /* every request in flight */
	size_t active;
	int upstream_active;         /* --max-upstream slots held */
	struct req *wait_head, *wait_tail;
	size_t waiting;
	struct upstream_gate gate;   /* the same slots, for batch items */
	struct batch **bwait;        /* batches waiting for a slot, FIFO */
	size_t nbwait, capbwait;
	int grant_batch_next;        /* both queues wait: whose turn */
	struct writer *writer;       /* every SQLite write (writer.h) */
	struct key_spend *spend;     /* per API key (nkeys), when budgets */
	int draining;
	struct loop_timer *drain_timer;
	unsigned long long seq;
	int sigfd;
	struct hub *hub;             /* what the workers share (workers.c) */
	unsigned worker;             /* this worker's number, 0 first */
	struct mailbox *mbox;        /* messages from other workers */
	int gate_wake_posted;        /* a gate wake is in mbox (atomic) */
};

/*
 * Backpressure: once a stream holds STREAM_PAUSE_AT bytes its client has
 * not taken, the upstream call is paused (chat_pause) until the client
 * has brought it below STREAM_RESUME_AT.  A stream thus holds at most
 * STREAM_PAUSE_AT plus one upstream read (and the events already parsed
 * from it), whatever the upstream's speed.
 */
#define STREAM_PAUSE_AT (256 * 1024)
#define STREAM_RESUME_AT (128 * 1024)

/* The bytes of st its client has not taken yet. */
#define stream_backlog(st) ((st)->out.len - (st)->sent)

/* An SSE stream, shared by the request and MHD's response: freed when
 * both have let go of it. */
struct stream {
	struct req *req;             /* NULL once the request is gone */
	struct buf out;              /* framed bytes, handed to MHD from sent on */
	size_t sent;                 /* out's bytes already handed to MHD */
	int finished;                /* no more bytes will be added */
	int complete;                /* stream_end(): the answer is all in */
	int refs;
};

enum stream_kind { STREAM_NONE, STREAM_AICHAT, STREAM_OPENAI,
		   STREAM_ANTHROPIC };

/* One HTTP request, from its first on_access() to on_completed(). */
struct req {
	struct server *srv;
	struct MHD_Connection *conn;
	const struct route_info *route;
	char method[8];
	char path[128];
	char path_id[72];            /* the {id} of /jobs/{id} */
	char id[72];
	char client[72];             /* key id ("key:2"), client address, or
				      * "unix" for the unix socket */
	int via_unix;                /* came through --unix */
	int key;                     /* N of the API key "key:N" used, 0 none */
	struct conn *cs;             /* its connection */
	int64_t started;
	struct buf body;
	int too_large;
	int raw_answered;            /* raw_reply_error() answered it */
	size_t dropped;              /* body bytes read after that */
	int in_handler;              /* inside on_access: may queue directly */
	int queued;                  /* a response is queued */
	struct MHD_Response *pending;/* answer waiting for the resume */
	int pending_status;
	int status;
	int suspended;
	int watch_fd;                /* client socket watched by the loop, -1 */
	int watch_given_up;          /* the client sent more: MHD's to read */
	int client_gone;
	int holds_upstream;          /* owns one of --max-upstream slots */
	struct req *wait_next;       /* in the upstream wait queue */
	int waiting;
	/* the work */
	cJSON *json;                 /* validated body */
	struct chat_request creq;
	struct chat *chat;
	struct batch *batch;
	struct chat_request *breqs;
	size_t nbreqs, bnext;
	cJSON *bresults;
	enum stream_kind kind;
	struct stream *st;
	struct loop_timer *keepalive;
	int got_token;
	int upstream_paused;         /* the stream is full: chat paused */
	struct buf answer;           /* /v1: the whole answer, as the provider
				      * gave it (or translated) */
	char *cache_key;
	int cacheable;
	struct shared_call *kv;      /* a limiter or cache answer to wait for */
	int early_wait;              /* its checks wait for the limiter */
	int auth_failed;             /* a wrong or missing key: 401 once the
				      * limiter has counted it */
	int rate_decided;            /* rl holds the limiter's decision */
	int rate_unavailable;        /* ... made without the shared limiter */
	struct rl_decision rl;
	int cache_ready;             /* the cache has answered (cache_val) */
	char *cache_val;             /* a hit, or NULL */
	size_t cache_len;
	cJSON *rag_sources;          /* /rag/query: the numbered sources */
	int64_t rag_started, retrieval_ms;
	char retrieval[8];           /* "hybrid" | "bm25" */
	char retrieval_warning[240];
	struct embed_job *embed;     /* the query being embedded, or the
				      * /v1/embeddings request relayed */
	struct search *search;       /* the search under way (worker thread) */
	struct jobq_call *jobcall;   /* the jobs service's answer to wait for */
	struct xjob *xjob;           /* ... asked of worker 0 (workers.c) */
	/* for the log line */
	char model[256];
	char provider[64];
	long prompt_tokens, completion_tokens;
	int have_usage;
	int64_t ttft_ms;
	char err_code[40];
	struct req *models_next;     /* in srv->models_waiters */
	int models_waiting;
	struct req *prev, *next;
};

/* ==== http.c: libmicrohttpd on the loop ==== */

/* Resolves mhd's functions from libmicrohttpd, once; -1 with e when the
 * library or one of its symbols is missing. */
int mhd_load(struct err *e);

/* Creates, binds (mode 0600) and listens on the unix socket path: a
 * stale socket file (nobody listening) is replaced; a path that exists
 * and is not a socket, or a socket another server answers on, is refused
 * (ERR_USAGE).  Returns the listening fd and notes the file in srv (for
 * unix_unlink()), or -1 with e. */
int unix_listen(struct server *srv, const char *path, struct err *e);

/* Removes the socket file unix_listen() created, if it is still ours;
 * safe to call more than once. */
void unix_unlink(struct server *srv);

/* Runs MHD again after MHD_get_timeout() (at most a minute), or at once
 * when connections have closed since the last call (MHD puts back a
 * listening socket it took out at its limits only when it runs): called
 * once the daemon has started, then after every run. */
void rearm_mhd_timer(struct server *srv);

/* The loop callback for a daemon's epoll fd (data is its listener):
 * runs MHD. */
void on_mhd_ready(struct loop *l, int fd, int events, void *data);

/* MHD's connection notifications (MHD_OPTION_NOTIFY_CONNECTION; cls is
 * the server): tracks each connection in a struct conn. */
void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
		   enum MHD_ConnectionNotificationCode toe);

/* r has been received whole (or answered early): its connection leaves
 * the receiving list until the request ends. */
void conn_received(struct req *r);

/* r has ended: its connection starts receiving the next request (the
 * --request-timeout clock starts again), unless it was cut off. */
void conn_request_ended(struct req *r);

/* Writes a whole JSON answer (status "413 Content Too Large") straight to
 * the client's socket fd, with X-Request-ID id and Connection: close: for
 * a connection MHD is still reading a request from, where MHD would send
 * nothing before the request's end. */
void raw_reply(struct server *srv, int fd, const char *status,
	       const char *id, const char *json);

/* raw_reply() of an error in r's route's shape, then shuts down the
 * sending side; sets r->raw_answered, r->status and r->err_code.  The
 * caller then makes MHD close the connection (MHD_NO). */
void raw_reply_error(struct req *r, const char *status, enum err_code code,
		     const char *msg);

/* ==== http.c: small helpers ==== */

/* The request header name (case-insensitive), borrowed from MHD for the
 * request's life; NULL when absent. */
const char *header(struct req *r, const char *name);

/* A new request id, "req_...", into dst. */
void new_request_id(struct server *srv, char *dst, size_t cap);

/* Sets r->id: the client's X-Request-ID when it has sane characters (up
 * to 64 of them kept), else a new "req_..." id. */
void request_id(struct req *r);

/* Sets r->client to the client's address ("unix" on the unix socket), or
 * "unknown"; for a peer of --trust-proxy, the last X-Forwarded-For item
 * when it is an address. */
void client_address(struct req *r);

/* ==== http.c: responses ==== */

/*
 * Sends resp with status, after adding X-Request-ID and the CORS headers;
 * takes resp.  Inside on_access (r->in_handler) it is queued at once;
 * anywhere else it waits in r->pending and the connection is resumed, for
 * on_access to queue it.
 */
void send_response(struct req *r, int status, struct MHD_Response *resp);

/* A response holding a copy of body, with its Content-Type: the caller
 * may add headers, then sends it with send_response(). */
struct MHD_Response *make_response(const char *type, const char *body,
				   size_t len);

/* Sends a copy of body, of type, with status. */
void reply(struct req *r, int status, const char *type, const char *body,
	   size_t len);

/* Sends obj as JSON with status; takes obj. */
void reply_json(struct req *r, int status, cJSON *obj);

/* aichat's error object, {"error": {"code", "message"}}; the caller owns
 * it. */
cJSON *error_object(const char *code, const char *msg);

/* OpenAI's error object ({"error": {"message", "type", "param", "code"}},
 * the type from code); param may be NULL.  The caller owns it. */
cJSON *openai_error_object(enum err_code code, const char *msg,
			   const char *param);

/* Does r's route speak OpenAI's dialect (errors, 400 for a bad body)? */
int is_openai_route(const struct req *r);
/* A dotted path as OpenAI names a param (messages.0.content ->
 * messages[0].content), into dst. */
void openai_param(const char *loc, char *dst, size_t cap);

/* Does it speak Anthropic's (/v1/messages)? */
int is_anthropic_route(const struct req *r);

/* Anthropic's error object ({"type":"error","error":{"type","message"}}),
 * the type from code.  The caller owns it. */
cJSON *anthropic_error_object(enum err_code code, const char *msg);

/* The error object of code with msg in r's route's shape (aichat's,
 * OpenAI's with param, or Anthropic's).  The caller owns it. */
cJSON *route_error_object(const struct req *r, enum err_code code,
			  const char *msg, const char *param);

/* Ends r's stream with an error event in its kind's shape. */
void push_error(struct req *r, enum err_code code, const char *msg);

/* An error response in the route's shape, not yet sent, so that the
 * caller may add headers (Retry-After...); notes code for the log line. */
struct MHD_Response *error_response(struct req *r, enum err_code code,
				    const char *msg);

/* Sends the error code with msg in the route's shape, with status. */
void reply_error_status(struct req *r, int status, enum err_code code,
			const char *msg);

/* Sends e with the HTTP status of its code. */
void reply_error(struct req *r, const struct err *e);

/* Sends the validation errors ve (at least one): 422 with FastAPI's
 * "detail" list, or 400 with an OpenAI error object naming the first on
 * the /v1 routes.  Counts a validation failure; ve stays the caller's. */
void reply_validation(struct req *r, const struct verrors *ve);

/* ==== http.c: suspend and resume ==== */

/* Suspends r's connection until req_resume(), if it is not already; from
 * the first suspend on, the loop watches the client's socket, and a client
 * that hangs up has its work stopped (stop_work()) and r->client_gone set.
 * Used to wait for an upstream, a queue slot or the next bytes of a
 * stream. */
void req_suspend(struct req *r);

/* Resumes r's connection if it is suspended; MHD runs on the next loop
 * iteration, never from inside this call. */
void req_resume(struct req *r);

/* ==== http.c: SSE streams ==== */

/* Drops one of the stream's two references (the request's or MHD's
 * response's); the last frees it. */
void stream_unref(struct stream *st);

/* Appends n framed bytes to r's stream and wakes the connection; nothing
 * when r has no stream or it is finished. */
void stream_push(struct req *r, const char *s, size_t n);

/* No more bytes on r's stream: MHD ends the response once it has sent
 * what is buffered. */
void stream_end(struct req *r);

/* Answers r with 200 text/event-stream, of kind, and sends a keep-alive
 * comment every keepalive_ms until the first token. */
void start_stream(struct req *r, enum stream_kind kind);

/* Pushes obj as one SSE event ("event: EVENT" when event is not NULL,
 * then "data: JSON"); takes obj. */
void push_data(struct req *r, const char *event, cJSON *obj);

/* ==== shared.c: the rate limiter and the response cache ==== */

/* What the limiter does when Redis cannot answer: --redis-fail. */
enum redis_fail { REDIS_FAIL_AUTO, REDIS_FAIL_OPEN, REDIS_FAIL_CLOSED };

struct limiter;
struct acache;
struct redis;
struct shared_call;

/* The limiter's decision for a request; unavailable when the limiter
 * could not be asked (d then follows the failure mode: refused when
 * closed). */
typedef void (*limiter_fn)(void *data, const struct rl_decision *d,
			   int unavailable);

/* A cached answer (val borrowed for the call), or a miss (val NULL);
 * failed when the cache could not be asked. */
typedef void (*acache_fn)(void *data, const char *val, size_t len,
			  int failed);

/* The Lua GCRA the Redis limiter runs (loaded at each connection). */
const char *shared_script(void);

/* In-process token buckets (util/ratelimit.c), or Redis' GCRA under
 * prefix (borrowed, as is rs), deciding by fail when Redis is down. */
struct limiter *limiter_local_new(double per_second, double burst,
				  size_t max_keys);
struct limiter *limiter_redis_new(struct redis *rs, const char *prefix,
				  double per_second, double burst,
				  enum redis_fail fail);
void limiter_free(struct limiter *l);

/* Takes one request of client.  fn runs before this returns (then NULL
 * is returned), or later, once, with the handle returned until then. */
struct shared_call *limiter_take(struct limiter *l, const char *client,
				 limiter_fn fn, void *data);

/* The in-process LRU (cache.h), or Redis under prefix with PX ttl_ms. */
struct acache *acache_local_new(size_t max_entries, int64_t ttl_ms);
struct acache *acache_redis_new(struct redis *rs, const char *prefix,
				int64_t ttl_ms);
void acache_free(struct acache *a);

/* Looks key up; fn as for limiter_take(). */
struct shared_call *acache_get(struct acache *a, const char *key,
			       size_t keylen, acache_fn fn, void *data);

/* Stores key -> val (copied), without waiting; nothing when Redis is
 * down. */
void acache_put(struct acache *a, const char *key, size_t keylen,
		const char *val, size_t len);

/* The callback of a pending call will not run; frees the handle. */
void shared_call_cancel(struct shared_call *c);

/* ==== auth.c: API keys, rate limit, the upstream gate ==== */

/* 0 when r may go on (no keys set, a route without auth, or a valid key:
 * then r->client becomes "key:N"; or a wrong or missing key: then
 * r->auth_failed, and the 401 comes after check_rate(), so that guessing
 * keys spends the address's --rate-limit). */
int check_auth(struct req *r);

/* 0 when r may go on: the server has API keys, r came through the unix
 * socket, or its Host names loopback (localhost, 127.0.0.1, [::1], any
 * port), the --host address or an --allow-host; otherwise -1, the 403
 * sent.  Without keys this is what stops a web page from driving the
 * server through DNS rebinding. */
int check_host(struct req *r);

/* 0 when r's client may go on (no limit set, a route without auth, or a
 * token left); otherwise -1, the 429 with Retry-After and the
 * X-RateLimit headers sent (503 when the shared limiter could not be
 * asked and fails closed), or the 401 of r->auth_failed.  1 when the
 * limiter's answer is awaited: r is suspended, and rate_answer() gives
 * the verdict once it is resumed. */
int check_rate(struct req *r);

/* After check_rate() returned 1 and r was resumed: as check_rate(). */
int rate_answer(struct req *r);

/*
 * Gives r one of the --max-upstream slots and starts its work
 * (start_upstream_work()); with none free, r waits, suspended, in the
 * queue; with the queue full (--max-queue), a 503 with Retry-After is
 * sent.
 */
void acquire_upstream(struct req *r);

/* Gives back r's slot, if it holds one, and starts the waiters that now
 * fit.  Safe to call more than once. */
void release_upstream(struct req *r);

/* Takes r out of the wait queue, if it is in it. */
void unqueue(struct req *r);

/* Sets srv->gate: --max-upstream for the items of batches and jobs, one
 * slot per running item, sharing the slots and the waiting turns with
 * requests. */
void upstream_gate_init(struct server *srv);

/* ==== chatroute.c: the routes that call a chat model ==== */

/* The options of one upstream call of r: --retries, and --timeout when
 * the answer is not streamed. */
void llm_opts_for(struct req *r, struct llm_opts *lo, int stream);

/*
 * Starts r->creq on the chat service, r holding an upstream slot, and
 * answers when it is done (JSON), or streams it (SSE, opened here with the
 * OpenAI role chunk or the RAG metadata event).  A call that cannot start
 * gives the slot back and answers the error (422 on the model field for an
 * unknown model).
 */
void start_chat(struct req *r);

/* The client has taken bytes of r's stream: the upstream resumes when it
 * was paused and less than STREAM_RESUME_AT bytes are left. */
void stream_drained(struct req *r);

/* 1 when r is taken care of: a cached answer to r->creq has been sent
 * (X-Cache: HIT), or r waits, suspended, for the cache's answer (then
 * cache_answer() once resumed); 0 otherwise, and when the request may be
 * cached its key is kept for the answer (r->cache_key).  Streams and
 * non-zero temperatures (unless "X-AIChat-Cache: 1") are never cached. */
int try_cache(struct req *r);

/* Once the cache has answered r (r->cache_ready): 1 when the hit has been
 * sent, else 0. */
int cache_answer(struct req *r);

/* Answers a request that names no model when the server has no default:
 * 422 (400 on /v1) on the model field. */
void no_default_model(struct req *r);

/*
 * Answers e, why an upstream call of model could not start (nothing was
 * sent): an unknown model, or one without the API asked for, is the
 * client's error on the model field (422, 400 on /v1); ERR_INVALID_REQUEST
 * names the field its message starts with ('seed' ...), 422 or 400 with
 * that param; anything else has its code's status (a missing key: 500).
 */
void reply_call_error(struct req *r, const struct err *e, const char *model);

/* The usage object of res; openai leaves out aichat's finish_reason.  The
 * caller owns it. */
cJSON *usage_object(const struct chat_result *res, int openai);

/* ==== routes_seed.c: /batch, and the conversation log ==== */

/* --log-conversations: records a /conversation exchange in the
 * conversation log; nothing on other routes, or when off. */
void log_conversation(struct req *r, const struct chat_result *res);

/* ==== budget.c: what each exchange cost, and daily budgets ==== */

/* A key's spending on its day (days since the epoch, UTC). */
struct key_spend {
	int64_t limit;               /* micro-dollars a day; -1 = no cap */
	int64_t spent;
	long day;
};

/* Before the loop runs: srv->spend from the options, each capped key's
 * spending today read from the ledger (srv->db).  -1 with e when
 * budgets are set and the ledger cannot be read. */
int budget_init(struct server *srv, struct err *e);

/* 0 when r may call a model; otherwise the 429 (its key's budget for
 * today is spent) has been sent.  Only routes that call a model are
 * checked. */
int check_budget(struct req *r);

/* An exchange of r ended with res: its tokens and cost go to /metrics,
 * its row to the usage ledger (through the writer), its cost to r's
 * key's spending today. */
void spend(struct req *r, const struct chat_result *res);
/* The same for an exchange of no request: key is the API key's number
 * (0: none), what names the exchange in messages (a request or job id). */
void spend_key(struct server *srv, int key, const char *what,
	       const struct chat_result *res);
/* A job item's exchange, as jobs_set_spend() wants it (ud: the server):
 * it counts towards the key that submitted the job. */
void spend_job_item(void *ud, const char *job_id, int key,
		    const struct chat_result *res);

/* X-Budget-Limit and X-Budget-Remaining when r's key has a budget. */
void budget_headers(struct req *r, struct MHD_Response *resp);

/* Starts the items of a validated /batch body, r holding an upstream
 * slot; the answer is sent when the last is done. */
void start_batch(struct req *r);

/* ==== routes_openai.c: /v1/chat/completions and /v1/models ==== */

/*
 * Builds r->creq from the validated /v1/chat/completions or /v1/messages
 * body j: the client's fields, in the provider's dialect or to be
 * translated to it, the model defaulted (-m).  Returns 0, or -1 with the
 * error answered (no model and no default; a field with no meaning for
 * the provider).
 */
int v1_prepare(struct req *r, cJSON *j);

/* The model a request without one gets: serve's -m, else an explicit
 * default (AICHAT_MODEL, the config file); NULL when there is none. */
const char *serve_default_model(const struct server *srv);

/* GET /v1/models: what each configured provider reports, merged with
 * the aliases, each once; listed at most once a minute for all the
 * workers (the requests that come meanwhile, on any worker, share one
 * listing). */
void route_openai_models(struct req *r);

/* Takes r out of the requests waiting for a model listing. */
void models_unwait(struct req *r);
/* Cancels the listing srv runs, if any (the server is stopping). */
void models_stop(struct server *srv);

/* ==== routes_embeddings.c: POST /v1/embeddings ==== */

/* Checks the model of a validated /v1/embeddings body (r->json) and
 * queues r for an upstream slot; a model that cannot embed is answered
 * here (400 on model). */
void route_embeddings(struct req *r);

/* Relays r's request to its model, r holding an upstream slot; the answer
 * is sent as it came when it is done.  A relay that cannot start gives
 * the slot back and answers why. */
void start_embeddings(struct req *r);

/* ==== jobq.c: the background jobs, one interface, two backends ==== */

struct jobs;
struct rjobs;
struct jobq;
struct jobq_call;

enum jobq_op { JOBQ_SUBMIT, JOBQ_STATUS, JOBQ_RESULTS, JOBQ_CANCEL, JOBQ_LIST };

/* The jobs in SQLite (jobs.h) or in Redis (rjobs.h); the jobq owns them. */
struct jobq *jobq_local_new(struct jobs *j);
struct jobq *jobq_redis_new(struct rjobs *rq);

/* One call: body for JOBQ_SUBMIT (with the submitting key's number), id
 * for STATUS, RESULTS and CANCEL, limit for LIST.  fn runs later, on the
 * loop, as jobs_reply_fn says, unless jobq_call_cancel() comes first;
 * NULL with e when the call cannot be made (ERR_OVERLOADED: the jobs are
 * off, their queue is full or Redis is down; ERR_NOT_FOUND: not a job
 * id).  q may be NULL: the jobs are off. */
struct jobq_call *jobq_call(struct jobq *q, enum jobq_op op, const cJSON *body,
			    const char *id, int key, int limit,
			    jobs_reply_fn fn, void *ud, struct err *e);
/* fn will not be called (NULL-safe). */
void jobq_call_cancel(struct jobq_call *c);
/* Stops running items: before the writer (SQLite) or the Redis
 * connection goes.  jobq_free() after both have. */
void jobq_stop(struct jobq *q);
void jobq_free(struct jobq *q);

/* ==== routes_jobs.c: /jobs ==== */

/* The /jobs routes: POST /jobs queues the validated body (r->json) as a
 * job (202); GET /jobs lists the newest; GET /jobs/{id}, GET
 * /jobs/{id}/results and DELETE /jobs/{id} report on one or cancel it.
 * The jobs are worker 0's (jobq.c): other workers hand the call over;
 * 503 when the jobs service is off or Redis is down. */
void route_job(struct req *r);

#define JOBS_OFF_MSG "background jobs are unavailable: the database could not be opened for writing (the server's log says why)"

/* The jobs call a /jobs route makes. */
enum jobq_op job_route_op(enum route_response kind);

/* A jobs call that could not be made: 503 with Retry-After when the jobs
 * cannot be reached now (a full queue, Redis down), else e as it is. */
void reply_job_error(struct req *r, const struct err *e);

/* ==== routes_rag.c: /rag/search and /rag/query ==== */

/* Runs a validated rag body (r->json): embeds the query when the
 * collection has vectors, searches, and answers (/rag/search) or goes on
 * to the model (/rag/query). */
void route_rag(struct req *r);

/* GET /rag/collections: every collection with its counts, listed on the
 * searcher's thread within --rag-search-timeout. */
void route_rag_collections(struct req *r);

/* The metadata event that opens a /rag/query stream: the sources and how
 * they were found.  The caller owns it. */
cJSON *rag_metadata(struct req *r);

/* The RAGResponse of a /rag/query answer res.  The caller owns it. */
cJSON *rag_response(struct req *r, const struct chat_result *res);

/* ==== routes_playground.c: GET /, /playground.js, /playground.css ==== */

/* Sends the playground's asset for r's path (the page at /), with a
 * Content-Security-Policy that lets it load nothing but its own script,
 * stylesheet and this server's API. */
void route_playground(struct req *r);

/* ==== server.c: the request's work ==== */

/* Starts the upstream work of r's route, once r holds an upstream slot:
 * a batch, or a chat call. */
void start_upstream_work(struct req *r);

/* Cancels r's upstream work (chat, batch, query embedding, search), takes
 * it out of the wait queue and gives back its slot; no callback of that
 * work runs afterwards. */
void stop_work(struct req *r);

/* ==== workers.c: several loops, one server ==== */

/*
 * What the workers of one server share.  lock guards the --max-upstream
 * slots: upstream_active over every worker, reqwaiting (requests queued
 * on any worker, for --max-queue) and waiters[i] (requests and batches
 * queued on worker i), so that a slot given back on one worker wakes the
 * workers that wait for one (a message to their loop).  conn_lock guards
 * the connection counts of --max-connections and --max-connections-per-ip
 * (with several workers the server counts them, not each daemon).
 * models_lock guards the model list, apart from the slots every request
 * takes.
 */
struct hub {
	pthread_mutex_t lock;
	int upstream_active;
	size_t reqwaiting;
	size_t *waiters;
	struct server **w;           /* the workers, w[0] owns jobs and signals */
	unsigned n;
	size_t active;               /* requests in flight, all workers (atomic) */
	unsigned running;            /* worker loops not yet ended (atomic) */
	int hard_stop;               /* a second signal (atomic) */
	pthread_mutex_t conn_lock;
	struct ip_count *ips;        /* open connections per address */
	size_t nips, capips;
	unsigned conns;
	/* GET /v1/models, for a minute, and whether a worker is listing
	 * them now (its waiters and every other worker's are answered when
	 * it is done); under models_lock. */
	pthread_mutex_t models_lock;
	struct models_cache models;
	int models_listing;
};

/* A message's handler, run on the loop of the worker it was posted to;
 * srv NULL: the server is stopping and the handler only frees data. */
typedef void (*worker_fn)(struct server *srv, void *data);

/* Runs fn(to, data) on to's loop, from any thread, soon. */
void worker_post(struct server *to, worker_fn fn, void *data);

/* Sets up srv's mailbox on its loop; mailbox_release() runs nothing
 * left in it (each handler gets srv NULL) and frees it. */
void mailbox_init(struct server *srv);
void mailbox_release(struct server *srv);

/* hub_init() sizes h for n workers; hub_release() frees what it holds. */
void hub_init(struct hub *h, unsigned n);
void hub_release(struct hub *h);

/* Opens a listening TCP socket on sa with SO_REUSEPORT (port: sa's, or
 * port when sa's is 0 and port is not), one per worker, so that the
 * kernel spreads connections over them; -1 with errno. */
int reuseport_listen(const struct sockaddr *sa, int port);

/* MHD's accept policy with several workers: --max-connections and
 * --max-connections-per-ip counted over every worker (cls: the server);
 * conn_closed() gives back what it counted. */
enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr,
			      socklen_t addrlen);
void conn_closed(struct server *srv, struct MHD_Connection *c);

/* The worker's loop has nothing in flight while draining: it stops,
 * worker 0 only once every other worker has (it runs the jobs others
 * hand it). */
void worker_idle(struct server *srv);

/* On worker 0 (the signal's): tells every other worker to drain (or, on
 * a second signal, to stop now). */
void workers_drain(struct server *srv, int now);

/* A thread's body for workers 1..n-1 (arg: its struct server). */
void *worker_main(void *arg);

/* A /jobs route on a worker other than 0: the call is made on worker 0's
 * loop, the answer comes back to r's (r->xjob meanwhile). */
void route_job_remote(struct req *r);

/* r no longer waits for its remote jobs call: the answer is dropped. */
void xjob_cancel(struct req *r);

/* ==== auth.c: the gate, across workers ==== */

/* A slot was given back on another worker: grants srv's waiters what
 * fits now (the message of a gate wake). */
void gate_wake(struct server *srv, void *data);

#endif
