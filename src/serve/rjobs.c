/*
 * rjobs.c - background jobs in Redis; see rjobs.h.
 *
 * Every step that must not be split (storing a job and queueing its items;
 * taking items with their leases, parking those of jobs at their limit
 * and dropping those of cancelled jobs; recording a result and finishing
 * the job with its callback's claim; counting a callback attempt) is one
 * Lua script, so no other client sees it half done, and one round trip
 * here.  (Redis does not undo a script that fails half way; these call
 * only commands that fail on a wrong type, which no other client
 * writes.)  The runner is one batch (batch.h) whose source is
 * the stream: it never ends, it answers "later" while it waits for Redis,
 * and it asks for as many items as it has free slots.  Everything runs on
 * the loop's thread.
 */
#include "rjobs.h"

#include "aichat/json.h"
#include "aichat/xalloc.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP "run"

/* ==== the scripts ==== */

/* Shared by the scripts below.  now_ms() is Redis' clock, so the
 * replicas' clocks never need to agree.  running(jk, now) is how many
 * items of job key jk run now: its ":run" set holds one lease per item
 * under way ("consumer entry", scored by when it expires), and a lease
 * not renewed in time (its replica died) drops out here.  park() hands
 * an entry of a job at its limit to the group's consumer "wait" (it
 * stays pending: nothing loses it) and indexes it in the job's ":wait"
 * set, by item index, with the job in "jobs:parked". */
#define LUA_COMMON \
	"local function now_ms()\n" \
	"  local t = redis.call('TIME')\n" \
	"  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n" \
	"end\n" \
	"local function running(jk, now)\n" \
	"  redis.call('ZREMRANGEBYSCORE', jk .. ':run', '-inf', now)\n" \
	"  return redis.call('ZCARD', jk .. ':run')\n" \
	"end\n" \
	"local function drop_parked(p, q, j)\n" \
	"  local jk = p .. 'job:' .. j\n" \
	"  for _, e in ipairs(redis.call('ZRANGE', jk .. ':wait', 0, -1)) do\n" \
	"    redis.call('XACK', q, '" GROUP "', e)\n" \
	"    redis.call('XDEL', q, e)\n" \
	"  end\n" \
	"  redis.call('DEL', jk .. ':wait', jk .. ':run')\n" \
	"  redis.call('SREM', p .. 'jobs:parked', j)\n" \
	"end\n"

/* ARGV: prefix, id, created_at, created ms, model, temperature,
 * max_tokens, concurrency, callback_url, api key number, total, then an
 * item id and a prompt per item.  Returns the number of items queued. */
static const char submit_lua[] =
	"local p, id = ARGV[1], ARGV[2]\n"
	"local q = p .. 'jobs:q'\n"
	"redis.call('HSET', p .. 'job:' .. id, 'id', id, 'status', 'queued',\n"
	"  'model', ARGV[5], 'temperature', ARGV[6], 'max_tokens', ARGV[7],\n"
	"  'concurrency', ARGV[8], 'callback_url', ARGV[9], 'api_key', ARGV[10],\n"
	"  'total', ARGV[11], 'succeeded', 0, 'failed', 0, 'created_at', ARGV[3])\n"
	"redis.call('ZADD', p .. 'jobs', ARGV[4], id)\n"
	"redis.pcall('XGROUP', 'CREATE', q, '" GROUP "', '0', 'MKSTREAM')\n"
	"local n = 0\n"
	"for i = 12, #ARGV, 2 do\n"
	"  redis.call('XADD', q, '*', 'j', id, 'i', n, 'n', ARGV[i], 'p', ARGV[i + 1])\n"
	"  n = n + 1\n"
	"end\n"
	"return n\n";

/* ARGV: prefix, consumer, count, visibility ms, now (ISO).  Takes up to
 * count items a job's concurrency lets run, oldest first: items idle for
 * the visibility timeout in another consumer's hands (its replica is
 * gone; the group's summary names the consumers holding any), then
 * parked items of jobs below their limit again, then new ones.  An item
 * of a job at its limit is parked (see LUA_COMMON), so the items behind
 * it still run; one taken gets a lease in its job's ":run" set.  Drops
 * the items of jobs no longer queued or running and those with a result.
 * Looks at no more than 256 entries (a few ms of Redis' time).  Creates
 * no key while no job was ever posted (the group again if it went
 * missing: a flushed Redis).
 * Returns {items, more}: {entry, job, idx, item id, prompt, model,
 * temperature, max_tokens, api key} per item; more is 1 when the look
 * stopped at its bound, with new items maybe left. */
static const char take_lua[] =
	LUA_COMMON
	"local p, me, n, vis = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	"local q = p .. 'jobs:q'\n"
	"local out, budget, now = {}, 256, now_ms()\n"
	"if redis.call('EXISTS', q) == 0 then return {out, 0} end\n"
	/* What the script knows of a job: nothing else writes while it
	 * runs, so each is read once. */
	"local jobs = {}\n"
	"local function job(j)\n"
	"  local o = jobs[j]\n"
	"  if not o then\n"
	"    local jk = p .. 'job:' .. j\n"
	"    local v = redis.call('HMGET', jk, 'status', 'concurrency')\n"
	"    o = {jk = jk, st = v[1], c = tonumber(v[2]) or 1}\n"
	"    o.live = o.st == 'queued' or o.st == 'running'\n"
	"    if o.live then o.n = running(jk, now) end\n"
	"    jobs[j] = o\n"
	"  end\n"
	"  return o\n"
	"end\n"
	/* Returns 'run', 'park' or 'drop' for entry e, now this consumer's. */
	"local function offer(e)\n"
	"  budget = budget - 1\n"
	"  local f = {}\n"
	"  for k = 1, #e[2], 2 do f[e[2][k]] = e[2][k + 1] end\n"
	"  local o = job(f.j or '')\n"
	"  if not o.live or redis.call('HEXISTS', o.jk .. ':results', f.i or '') == 1 then\n"
	"    redis.call('XACK', q, '" GROUP "', e[1])\n"
	"    redis.call('XDEL', q, e[1])\n"
	"    redis.call('ZREM', o.jk .. ':wait', e[1])\n"
	"    return 'drop'\n"
	"  end\n"
	"  if #out >= n or o.n >= o.c then\n"
	"    redis.call('XCLAIM', q, '" GROUP "', 'wait', 0, e[1], 'JUSTID')\n"
	"    redis.call('ZADD', o.jk .. ':wait', tonumber(f.i) or 0, e[1])\n"
	"    if not o.parked then\n"
	"      redis.call('SADD', p .. 'jobs:parked', f.j)\n"
	"      o.parked = true\n"
	"    end\n"
	"    return 'park'\n"
	"  end\n"
	"  if o.st == 'queued' then\n"
	"    redis.call('HSET', o.jk, 'status', 'running', 'started_at', ARGV[5])\n"
	"    o.st = 'running'\n"
	"  end\n"
	"  o.n = o.n + 1\n"
	"  redis.call('ZADD', o.jk .. ':run', now + vis, me .. ' ' .. e[1])\n"
	"  local m = redis.call('HMGET', o.jk, 'model', 'temperature', 'max_tokens', 'api_key')\n"
	"  out[#out + 1] = {e[1], f.j, f.i, f.n, f.p, m[1] or '', m[2] or '',\n"
	"    m[3] or '', m[4] or ''}\n"
	"  return 'run'\n"
	"end\n"
	"local sum = redis.pcall('XPENDING', q, '" GROUP "')\n"
	"if type(sum) == 'table' and not sum.err and type(sum[4]) == 'table' then\n"
	"  for _, c in ipairs(sum[4]) do\n"
	"    if #out >= n or budget <= 0 then break end\n"
	"    if c[1] ~= 'wait' then\n"
	"      local pe = redis.call('XPENDING', q, '" GROUP "', 'IDLE', vis, '-', '+',\n"
	"        math.min(n - #out, budget), c[1])\n"
	"      for _, x in ipairs(pe) do\n"
	"        for _, e in ipairs(redis.call('XCLAIM', q, '" GROUP "', me, vis, x[1])) do\n"
	"          if e and e[2] then offer(e) end\n"
	"        end\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"for _, j in ipairs(redis.call('SMEMBERS', p .. 'jobs:parked')) do\n"
	"  if #out >= n or budget <= 0 then break end\n"
	"  local o = job(j)\n"
	"  local jk = o.jk\n"
	"  if not o.live then\n"
	"    drop_parked(p, q, j)\n"
	"  else\n"
	"    o.parked = true\n"
	"    while #out < n and budget > 0 and o.n < o.c do\n"
	"      local w = redis.call('ZPOPMIN', jk .. ':wait')\n"
	"      if #w == 0 then break end\n"
	"      local got = redis.call('XCLAIM', q, '" GROUP "', me, 0, w[1])\n"
	"      if got[1] and got[1][2] then\n"
	"        if offer(got[1]) == 'park' then break end\n"
	"      else\n"
	"        redis.call('XACK', q, '" GROUP "', w[1])\n"
	"      end\n"
	"    end\n"
	"    if redis.call('EXISTS', jk .. ':wait') == 0 then\n"
	"      redis.call('SREM', p .. 'jobs:parked', j)\n"
	"      o.parked = false\n"
	"    end\n"
	"  end\n"
	"end\n"
	"local more = 0\n"
	"while #out < n do\n"
	"  if budget <= 0 then more = 1 break end\n"
	"  local x = redis.pcall('XREADGROUP', 'GROUP', '" GROUP "', me, 'COUNT',\n"
	"    math.min(n - #out, budget), 'STREAMS', q, '>')\n"
	"  if type(x) == 'table' and x.err then\n"
	"    redis.pcall('XGROUP', 'CREATE', q, '" GROUP "', '0')\n"
	"    break\n"
	"  elseif type(x) ~= 'table' then\n"
	"    break\n"
	"  end\n"
	"  for _, e in ipairs(x[1][2]) do offer(e) end\n"
	"end\n"
	"return {out, more}\n";

/* ARGV: prefix, job, idx, result line, 1 when it succeeded, entry, now
 * (ISO), consumer, callback claim ms.  Ends the item's lease.  Returns
 * {0} when nothing was recorded (a result was there, or the job is
 * over), {1} when it was, {2, job hash} when it was the last one and the
 * job's callback is pending, claimed by this consumer (see cb_sweep_lua
 * for the rest of its life). */
static const char done_lua[] =
	LUA_COMMON
	"local p = ARGV[1]\n"
	"local jk, q = p .. 'job:' .. ARGV[2], p .. 'jobs:q'\n"
	"redis.call('XACK', q, '" GROUP "', ARGV[6])\n"
	"redis.call('XDEL', q, ARGV[6])\n"
	"redis.call('ZREM', jk .. ':run', ARGV[8] .. ' ' .. ARGV[6])\n"
	"local st = redis.call('HGET', jk, 'status')\n"
	"if st ~= 'queued' and st ~= 'running' then return {0} end\n"
	"if redis.call('HSETNX', jk .. ':results', ARGV[3], ARGV[4]) == 0 then return {0} end\n"
	"redis.call('HINCRBY', jk, ARGV[5] == '1' and 'succeeded' or 'failed', 1)\n"
	"local v = redis.call('HMGET', jk, 'succeeded', 'failed', 'total', 'callback_url')\n"
	"local s, f, t = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])\n"
	"if s + f < t then return {1} end\n"
	"redis.call('HSET', jk, 'status', (f == t) and 'failed' or 'done', 'finished_at', ARGV[7])\n"
	"drop_parked(p, q, ARGV[2])\n"
	"if not v[4] or v[4] == '' then return {1} end\n"
	"redis.call('HSET', jk, 'callback_status', 'pending', 'callback_attempts', 0)\n"
	"redis.call('SADD', p .. 'jobs:callbacks', ARGV[2])\n"
	"if redis.call('SET', jk .. ':callback', ARGV[8], 'NX', 'PX', ARGV[9]) then\n"
	"  return {2, redis.call('HGETALL', jk)}\n"
	"end\n"
	"return {1}\n";

/* ARGV: prefix, consumer, claim ms.  Claims the pending callbacks whose
 * claim lapsed (its sender died, or a failed attempt's backoff is over)
 * for claim ms, at most 16.  Returns their job hashes. */
static const char cb_sweep_lua[] =
	"local p = ARGV[1]\n"
	"local set, out = p .. 'jobs:callbacks', {}\n"
	"for _, id in ipairs(redis.call('SRANDMEMBER', set, 16)) do\n"
	"  local jk = p .. 'job:' .. id\n"
	"  if redis.call('HGET', jk, 'callback_status') ~= 'pending' then\n"
	"    redis.call('SREM', set, id)\n"
	"  elseif redis.call('SET', jk .. ':callback', ARGV[2], 'NX', 'PX', ARGV[3]) then\n"
	"    out[#out + 1] = redis.call('HGETALL', jk)\n"
	"  end\n"
	"end\n"
	"return out\n";

/* ARGV: prefix, job, consumer, 1 when the attempt succeeded, what went
 * wrong, attempts allowed, first backoff ms.  Counts the attempt: done
 * (delivered) or the last one (failed), the callback leaves the pending
 * set; otherwise this consumer's claim is held for the backoff (doubling
 * each attempt), after which any replica's sweep tries again. */
static const char cb_result_lua[] =
	"local p, id = ARGV[1], ARGV[2]\n"
	"local jk = p .. 'job:' .. id\n"
	"if redis.call('HGET', jk, 'callback_status') ~= 'pending' then return 0 end\n"
	"local a = redis.call('HINCRBY', jk, 'callback_attempts', 1)\n"
	"if ARGV[4] == '1' then\n"
	"  redis.call('HSET', jk, 'callback_status', 'delivered')\n"
	"  redis.call('HDEL', jk, 'callback_error')\n"
	"elseif a >= tonumber(ARGV[6]) then\n"
	"  redis.call('HSET', jk, 'callback_status', 'failed', 'callback_error', ARGV[5])\n"
	"else\n"
	"  redis.call('HSET', jk, 'callback_error', ARGV[5])\n"
	"  redis.call('SET', jk .. ':callback', ARGV[3], 'PX',\n"
	"    math.floor(tonumber(ARGV[7]) * 2 ^ (a - 1)))\n"
	"  return a\n"
	"end\n"
	"redis.call('SREM', p .. 'jobs:callbacks', id)\n"
	"redis.call('DEL', jk .. ':callback')\n"
	"return a\n";

/* ARGV: prefix, consumer, lease end ms from now, then a job and an
 * entry per item this consumer holds.  Keeps them claimed and their
 * leases alive (a lease that already lapsed stays gone: the item may be
 * another replica's now). */
static const char beat_lua[] =
	LUA_COMMON
	"local p, me = ARGV[1], ARGV[2]\n"
	"local until_ms = now_ms() + tonumber(ARGV[3])\n"
	"for i = 4, #ARGV, 2 do\n"
	"  redis.call('XCLAIM', p .. 'jobs:q', '" GROUP "', me, 0, ARGV[i + 1], 'JUSTID')\n"
	"  redis.call('ZADD', p .. 'job:' .. ARGV[i] .. ':run', 'XX', until_ms,\n"
	"    me .. ' ' .. ARGV[i + 1])\n"
	"end\n"
	"return 0\n";

/* ARGV: prefix, job, now (ISO).  Drops the job's parked items; returns
 * the job hash after it. */
static const char cancel_lua[] =
	LUA_COMMON
	"local jk = ARGV[1] .. 'job:' .. ARGV[2]\n"
	"local st = redis.call('HGET', jk, 'status')\n"
	"if st == 'queued' or st == 'running' then\n"
	"  redis.call('HSET', jk, 'status', 'cancelled', 'finished_at', ARGV[3])\n"
	"  drop_parked(ARGV[1], ARGV[1] .. 'jobs:q', ARGV[2])\n"
	"end\n"
	"return redis.call('HGETALL', jk)\n";

/* ARGV: prefix, job.  Returns {job hash, results hash}. */
static const char results_lua[] =
	"local jk = ARGV[1] .. 'job:' .. ARGV[2]\n"
	"return {redis.call('HGETALL', jk), redis.call('HGETALL', jk .. ':results')}\n";

/* ARGV: prefix, how many.  Returns the newest jobs' hashes. */
static const char list_lua[] =
	"local ids = redis.call('ZREVRANGE', ARGV[1] .. 'jobs', 0, tonumber(ARGV[2]) - 1)\n"
	"local out = {}\n"
	"for _, id in ipairs(ids) do\n"
	"  local h = redis.call('HGETALL', ARGV[1] .. 'job:' .. id)\n"
	"  if #h > 0 then out[#out + 1] = h end\n"
	"end\n"
	"return out\n";

/* ==== the runner's state ==== */

struct ritem {
	struct rjobs *q;
	char entry[48];               /* the stream entry's id */
	char job[24];
	long idx;
	char *item_id;
	int key;
	struct chat_request req;
	struct ritem *next;
};

/* A callback to send (its claim is this replica's), waiting out the
 * test hold or under way. */
struct cbsend {
	struct rjobs *q;
	char job[24];
	char *url, *body;
	struct transfer *t;
	struct loop_timer *hold;
	int hopeless;                 /* not an http(s) URL: one attempt */
	struct cbsend *next;
};

struct rjobs {
	struct engine *eng;
	const struct config *cfg;
	struct redis *rs;
	const char *prefix;
	struct llm_opts o;
	const struct upstream_gate *gate;
	int concurrency;
	struct batch *batch;
	struct ritem *head, *tail;    /* taken, not started */
	struct ritem *running;        /* started: kept claimed */
	struct redis_call *take;      /* the take under way */
	int again;                    /* kicked while it was: take again */
	struct loop_timer *poll, *beat;
	struct cbsend *cbs;           /* callbacks held or being sent */
	long long vis_ms, poll_ms;
	long long cb_hold_ms;         /* $AICHAT_TEST_CALLBACK_HOLD_MS */
	char me[96];                  /* this replica's consumer name */
	int stopping;
	jobs_spend_fn spend;
	void *spend_ud;
};

/* Sends EVAL script with argc arguments after it (argv[0..argc-1], their
 * lengths in len, or NULL: strlen).  redis_command()'s answer. */
static struct redis_call *eval(struct redis *rs, const char *script,
			       redis_reply_fn fn, void *data, int argc,
			       const char **argv, const size_t *len)
{
	const char **a = xmalloc((size_t)(argc + 3) * sizeof(*a));
	size_t *l = xmalloc((size_t)(argc + 3) * sizeof(*l));
	struct redis_call *c;

	a[0] = "EVAL", l[0] = 4;
	a[1] = script, l[1] = strlen(script);
	a[2] = "0", l[2] = 1;
	for (int i = 0; i < argc; i++) {
		a[i + 3] = argv[i];
		l[i + 3] = len ? len[i] : strlen(argv[i]);
	}
	c = redis_command(rs, fn, data, argc + 3, a, l);
	free(a);
	free(l);
	return c;
}

/* The string value of field k in a flat HGETALL reply, or NULL. */
static const char *hget(const redisReply *h, const char *k)
{
	if (!h || h->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    !strcmp(h->element[i]->str, k) &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING)
			return h->element[i + 1]->str;
	return NULL;
}

static long hget_long(const redisReply *h, const char *k)
{
	const char *v = hget(h, k);

	return v ? strtol(v, NULL, 10) : 0;
}

static void add_str_or_null(cJSON *o, const char *name, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, name, v);
	else
		cJSON_AddNullToObject(o, name);
}

/* The status object of a job hash (the SQLite jobs' shape), or NULL when
 * the hash is empty (no such job). */
static cJSON *status_json(const redisReply *h)
{
	long total, ok, bad;
	cJSON *o, *c;

	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0 || !hget(h, "id"))
		return NULL;
	total = hget_long(h, "total");
	ok = hget_long(h, "succeeded");
	bad = hget_long(h, "failed");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", hget(h, "id"));
	cJSON_AddStringToObject(o, "status", hget(h, "status") ? hget(h, "status") : "queued");
	add_str_or_null(o, "model", hget(h, "model"));
	cJSON_AddNumberToObject(o, "concurrency", (double)hget_long(h, "concurrency"));
	c = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(c, "total", (double)total);
	cJSON_AddNumberToObject(c, "done", (double)(ok + bad));
	cJSON_AddNumberToObject(c, "succeeded", (double)ok);
	cJSON_AddNumberToObject(c, "failed", (double)bad);
	cJSON_AddNumberToObject(c, "pending", (double)(total - ok - bad));
	add_str_or_null(o, "created_at", hget(h, "created_at"));
	add_str_or_null(o, "started_at", hget(h, "started_at"));
	add_str_or_null(o, "finished_at", hget(h, "finished_at"));
	if (hget(h, "callback_status")) {
		cJSON_AddStringToObject(o, "callback_status", hget(h, "callback_status"));
		cJSON_AddNumberToObject(o, "callback_attempts",
					(double)hget_long(h, "callback_attempts"));
		add_str_or_null(o, "callback_error", hget(h, "callback_error"));
	}
	return o;
}

/* ==== calls from the routes ==== */

enum rcall_kind { RC_SUBMIT, RC_STATUS, RC_RESULTS, RC_CANCEL, RC_LIST };

struct rjobs_call {
	struct rjobs *q;
	enum rcall_kind kind;
	char id[24];
	struct redis_call *rc;
	int in_send, answered;
	cJSON *status;                /* RC_SUBMIT: the answer, ready */
	struct err e;
	jobs_reply_fn fn;
	void *ud;
};

struct res_line {
	long idx;
	const char *line;
	size_t len;
};

static int res_cmp(const void *a, const void *b)
{
	const struct res_line *x = a, *y = b;

	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The results hash as JSON lines in input order, into out. */
static void results_lines(const redisReply *h, struct buf *out)
{
	size_t n = 0;
	struct res_line *v;

	if (!h || h->type != REDIS_REPLY_ARRAY)
		return;
	v = xcalloc(h->elements / 2 + 1, sizeof(*v));
	for (size_t i = 0; i + 1 < h->elements; i += 2) {
		if (h->element[i]->type != REDIS_REPLY_STRING ||
		    h->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		v[n].idx = strtol(h->element[i]->str, NULL, 10);
		v[n].line = h->element[i + 1]->str;
		v[n].len = h->element[i + 1]->len;
		n++;
	}
	qsort(v, n, sizeof(*v), res_cmp);
	for (size_t i = 0; i < n; i++) {
		buf_append(out, v[i].line, v[i].len);
		buf_putc(out, '\n');
	}
	free(v);
}

static void on_call_reply(void *data, redisReply *rep, const char *why)
{
	struct rjobs_call *c = data;
	struct buf results;
	cJSON *status = NULL;

	c->rc = NULL;
	buf_init(&results, 0);
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		err_set(&c->e, ERR_OVERLOADED, "background jobs are unavailable: Redis: %.200s",
			rep ? rep->str : why ? why : "no answer");
	} else if (c->kind == RC_SUBMIT) {
		status = c->status;
		c->status = NULL;
	} else if (c->kind == RC_RESULTS) {
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		    (status = status_json(rep->element[0])))
			results_lines(rep->element[1], &results);
	} else if (c->kind == RC_LIST) {
		cJSON *data_arr;
		status = cJSON_CreateObject();
		cJSON_AddStringToObject(status, "object", "list");
		data_arr = cJSON_AddArrayToObject(status, "data");
		for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			cJSON *s = status_json(rep->element[i]);
			if (s)
				cJSON_AddItemToArray(data_arr, s);
		}
	} else {
		status = status_json(rep);
	}
	if (!status && c->e.code == ERR_OK)
		err_set(&c->e, ERR_NOT_FOUND, "no job '%s'", c->id);
	if (c->in_send) {
		/* Failed before redis_command() returned: the caller says so. */
		cJSON_Delete(status);
		c->answered = 1;
	} else {
		c->fn(c->ud, status, &results, &c->e);
		cJSON_Delete(c->status);
		free(c);
	}
	buf_release(&results);
}

/* Sends c's script; NULL with e when Redis cannot take it now (c freed). */
static struct rjobs_call *call_send(struct rjobs_call *c, const char *script,
				    int argc, const char **argv,
				    const size_t *len, struct err *e)
{
	if (!redis_up(c->q->rs)) {
		err_set(e, ERR_OVERLOADED, "background jobs are unavailable: Redis is down (%.200s)",
			redis_reason(c->q->rs));
		cJSON_Delete(c->status);
		free(c);
		return NULL;
	}
	c->in_send = 1;
	c->rc = eval(c->q->rs, script, on_call_reply, c, argc, argv, len);
	c->in_send = 0;
	if (c->answered) {
		*e = c->e;
		cJSON_Delete(c->status);
		free(c);
		return NULL;
	}
	return c;
}

static struct rjobs_call *call_new(struct rjobs *q, enum rcall_kind kind,
				   const char *id, jobs_reply_fn fn, void *ud,
				   struct err *e)
{
	struct rjobs_call *c;

	if (id && !jobs_valid_id(id)) {
		err_set(e, ERR_NOT_FOUND, "no job '%.64s' (job ids look like job_0123456789abcdef)", id);
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->kind = kind;
	if (id)
		snprintf(c->id, sizeof(c->id), "%s", id);
	c->fn = fn;
	c->ud = ud;
	err_clear(&c->e);
	return c;
}

static void kick(struct rjobs *q);

struct rjobs_call *rjobs_submit(struct rjobs *q, const cJSON *req, int key,
				jobs_reply_fn fn, void *ud, struct err *e)
{
	const cJSON *items = json_arr(req, "items"), *it;
	int n = cJSON_GetArraySize(items), argc = 11 + 2 * n, k = 0;
	const char **argv = xcalloc((size_t)argc, sizeof(*argv));
	char when[32], ms[32], temp[32] = "", maxt[32] = "", conc[32], keys[16] = "",
	     total[32];
	struct rjobs_call *c = call_new(q, RC_SUBMIT, NULL, fn, ud, e), *sent;
	struct timespec ts;
	double d;
	cJSON *o, *counts;

	memcpy(c->id, "job_", 4);
	jobs_random_hex(c->id + 4, 8);
	jobs_now_iso(when, sizeof(when));
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(ms, sizeof(ms), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	if (json_num(req, "temperature", &d) == 0)
		snprintf(temp, sizeof(temp), "%.17g", d);
	if (json_num(req, "max_tokens", &d) == 0)
		snprintf(maxt, sizeof(maxt), "%d", json_clamp_int(d, 1, 1 << 30));
	d = 10;
	json_num(req, "concurrency", &d);
	snprintf(conc, sizeof(conc), "%d", json_clamp_int(d, 1, 1 << 30));
	if (key > 0)
		snprintf(keys, sizeof(keys), "%d", key);
	snprintf(total, sizeof(total), "%d", n);
	argv[k++] = q->prefix;
	argv[k++] = c->id;
	argv[k++] = when;
	argv[k++] = ms;
	argv[k++] = json_str(req, "model") ? json_str(req, "model") : "";
	argv[k++] = temp;
	argv[k++] = maxt;
	argv[k++] = conc;
	argv[k++] = json_str(req, "callback_url") ? json_str(req, "callback_url") : "";
	argv[k++] = keys;
	argv[k++] = total;
	cJSON_ArrayForEach(it, items) {
		argv[k++] = json_str(it, "id") ? json_str(it, "id") : "";
		argv[k++] = json_str(it, "prompt") ? json_str(it, "prompt") : "";
	}
	/* The answer is what was stored: built now, sent once it is. */
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddStringToObject(o, "status", "queued");
	add_str_or_null(o, "model", json_str(req, "model"));
	cJSON_AddNumberToObject(o, "concurrency", atoi(conc));
	counts = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(counts, "total", n);
	cJSON_AddNumberToObject(counts, "done", 0);
	cJSON_AddNumberToObject(counts, "succeeded", 0);
	cJSON_AddNumberToObject(counts, "failed", 0);
	cJSON_AddNumberToObject(counts, "pending", n);
	cJSON_AddStringToObject(o, "created_at", when);
	cJSON_AddNullToObject(o, "started_at");
	cJSON_AddNullToObject(o, "finished_at");
	c->status = o;
	sent = call_send(c, submit_lua, k, argv, NULL, e);
	free(argv);
	if (sent)
		kick(q);   /* this replica starts at once */
	return sent;
}

struct rjobs_call *rjobs_status(struct rjobs *q, const char *id,
				jobs_reply_fn fn, void *ud, struct err *e)
{
	struct rjobs_call *c = call_new(q, RC_STATUS, id, fn, ud, e);
	char *k;
	size_t n;
	const char *argv[2];
	size_t len[2];
	struct redis_call *rc;

	if (!c)
		return NULL;
	if (!redis_up(q->rs))
		return call_send(c, NULL, 0, NULL, NULL, e);
	n = strlen(q->prefix) + 4 + strlen(c->id) + 1;
	k = xmalloc(n);
	snprintf(k, n, "%sjob:%s", q->prefix, c->id);
	argv[0] = "HGETALL", len[0] = 7;
	argv[1] = k, len[1] = strlen(k);
	c->in_send = 1;
	rc = redis_command(q->rs, on_call_reply, c, 2, argv, len);
	c->in_send = 0;
	free(k);
	c->rc = rc;
	if (c->answered) {
		*e = c->e;
		free(c);
		return NULL;
	}
	return c;
}

struct rjobs_call *rjobs_results(struct rjobs *q, const char *id,
				 jobs_reply_fn fn, void *ud, struct err *e)
{
	struct rjobs_call *c = call_new(q, RC_RESULTS, id, fn, ud, e);
	const char *argv[2];

	if (!c)
		return NULL;
	argv[0] = q->prefix;
	argv[1] = c->id;
	return call_send(c, results_lua, 2, argv, NULL, e);
}

struct rjobs_call *rjobs_cancel(struct rjobs *q, const char *id,
				jobs_reply_fn fn, void *ud, struct err *e)
{
	struct rjobs_call *c = call_new(q, RC_CANCEL, id, fn, ud, e);
	const char *argv[3];
	char when[32];

	if (!c)
		return NULL;
	jobs_now_iso(when, sizeof(when));
	argv[0] = q->prefix;
	argv[1] = c->id;
	argv[2] = when;
	return call_send(c, cancel_lua, 3, argv, NULL, e);
}

struct rjobs_call *rjobs_list(struct rjobs *q, int limit,
			      jobs_reply_fn fn, void *ud, struct err *e)
{
	struct rjobs_call *c = call_new(q, RC_LIST, NULL, fn, ud, e);
	const char *argv[2];
	char n[16];

	snprintf(n, sizeof(n), "%d", limit > 0 ? limit : 1);
	argv[0] = q->prefix;
	argv[1] = n;
	return call_send(c, list_lua, 2, argv, NULL, e);
}

void rjobs_call_cancel(struct rjobs_call *c)
{
	if (!c)
		return;
	redis_call_cancel(c->rc);
	cJSON_Delete(c->status);
	free(c);
}

/* ==== running items ==== */

static void item_free(struct ritem *it)
{
	if (!it)
		return;
	free(it->item_id);
	chat_request_release(&it->req);
	free(it);
}

static void unlink_running(struct rjobs *q, struct ritem *it)
{
	for (struct ritem **pp = &q->running; *pp; pp = &(*pp)->next)
		if (*pp == it) {
			*pp = it->next;
			return;
		}
}

static void on_poll(struct loop *l, void *data)
{
	struct rjobs *q = data;

	(void)l;
	q->poll = NULL;
	if (q->batch && !q->stopping)
		batch_refill(q->batch);
}

/* Looks again after the poll interval. */
static void poll_later(struct rjobs *q)
{
	if (!q->poll && !q->stopping)
		q->poll = loop_add_timer(engine_loop(q->eng), q->poll_ms, on_poll, q);
}

/* Looks now (a job was submitted here, or an item ended: its job may
 * have parked items that can run).  With a take under way, once it
 * answers: its answer may predate what changed. */
static void kick(struct rjobs *q)
{
	if (q->stopping)
		return;
	if (q->take) {
		q->again = 1;
		return;
	}
	if (q->poll) {
		loop_del_timer(engine_loop(q->eng), q->poll);
		q->poll = NULL;
	}
	q->poll = loop_add_timer(engine_loop(q->eng), 0, on_poll, q);
}

static const char *rstr(const redisReply *r)
{
	return r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
}

static void on_take(void *data, redisReply *rep, const char *why)
{
	struct rjobs *q = data;
	const redisReply *items = NULL;
	size_t got = 0;
	int more = 0;

	(void)why;
	q->take = NULL;
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
		items = rep->element[0];
		more = rep->element[1]->type == REDIS_REPLY_INTEGER &&
		       rep->element[1]->integer == 1;
	}
	if (items && items->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < items->elements; i++) {
			const redisReply *e = items->element[i];
			const char *entry, *job, *idx, *prompt;
			struct ritem *it;

			if (e->type != REDIS_REPLY_ARRAY || e->elements != 9)
				continue;
			entry = rstr(e->element[0]);
			job = rstr(e->element[1]);
			idx = rstr(e->element[2]);
			prompt = rstr(e->element[4]);
			if (!entry || !job || !idx || !prompt || !jobs_valid_id(job) ||
			    strlen(entry) >= sizeof(it->entry))
				continue;
			it = xcalloc(1, sizeof(*it));
			it->q = q;
			snprintf(it->entry, sizeof(it->entry), "%s", entry);
			snprintf(it->job, sizeof(it->job), "%s", job);
			it->idx = strtol(idx, NULL, 10);
			it->item_id = xstrdup(rstr(e->element[3]) ? rstr(e->element[3]) : "");
			chat_request_add(&it->req, "user", prompt, NULL);
			if (rstr(e->element[5]) && *rstr(e->element[5]))
				it->req.model = xstrdup(rstr(e->element[5]));
			it->req.temperature = rstr(e->element[6]) && *rstr(e->element[6]) ?
					      strtod(rstr(e->element[6]), NULL) : -1;
			it->req.max_tokens = rstr(e->element[7]) ?
					     atoi(rstr(e->element[7])) : 0;
			it->req.stream = 1;
			it->key = rstr(e->element[8]) ? atoi(rstr(e->element[8])) : 0;
			if (it->key < 0)
				it->key = 0;   /* a number is all Redis holds of a key */
			if (q->tail)
				q->tail->next = it;
			else
				q->head = it;
			q->tail = it;
			got++;
		}
	if (q->stopping)
		return;
	if (got)
		batch_refill(q->batch);
	else if (more || q->again)
		kick(q);        /* more to look at, or something changed */
	else
		poll_later(q);
}

/* Asks Redis for up to n items. */
static void take_more(struct rjobs *q, int n)
{
	char count[16], vis[32], when[32];
	const char *argv[5];

	if (q->take || q->poll || q->stopping)
		return;
	if (!redis_up(q->rs)) {
		poll_later(q);
		return;
	}
	snprintf(count, sizeof(count), "%d", n > 0 ? n : 1);
	snprintf(vis, sizeof(vis), "%lld", q->vis_ms);
	jobs_now_iso(when, sizeof(when));
	argv[0] = q->prefix;
	argv[1] = q->me;
	argv[2] = count;
	argv[3] = vis;
	argv[4] = when;
	q->again = 0;
	q->take = eval(q->rs, take_lua, on_take, q, 5, argv, NULL);
	/* Failed at once: on_take() ran and will look again later. */
}

static enum batch_next next_item(void *ud, void **tag,
				 const struct chat_request **req)
{
	struct rjobs *q = ud;
	struct ritem *it = q->head;

	if (q->stopping)
		return BATCH_LATER;
	if (!it) {
		take_more(q, q->concurrency - batch_running(q->batch));
		return BATCH_LATER;
	}
	q->head = it->next;
	if (!q->head)
		q->tail = NULL;
	it->next = q->running;
	q->running = it;
	*tag = it;
	*req = &it->req;
	return BATCH_ITEM;
}

/* -- callbacks: at least once, under a claim -- */

static void cb_free(struct cbsend *cb)
{
	struct rjobs *q = cb->q;

	for (struct cbsend **pp = &q->cbs; *pp; pp = &(*pp)->next)
		if (*pp == cb) {
			*pp = cb->next;
			break;
		}
	free(cb->url);
	free(cb->body);
	free(cb);
}

static void on_cb_result_reply(void *data, redisReply *rep, const char *why)
{
	(void)data;
	(void)rep;
	(void)why;
	/* Not counted (Redis down): the claim lapses and a sweep sends it
	 * again. */
}

static void callback_done(void *ud, struct transfer_result *r)
{
	struct cbsend *cb = ud;
	struct rjobs *q = cb->q;
	char what[160], attempts[16], backoff[16];
	const char *argv[7];
	int ok = jobs_callback_outcome(r, what, sizeof(what));

	cb->t = NULL;
	snprintf(attempts, sizeof(attempts), "%d", cb->hopeless ? 1 : JOBS_CB_ATTEMPTS);
	snprintf(backoff, sizeof(backoff), "%d", JOBS_CB_BACKOFF_MS);
	argv[0] = q->prefix;
	argv[1] = cb->job;
	argv[2] = q->me;
	argv[3] = ok ? "1" : "0";
	argv[4] = what;
	argv[5] = attempts;
	argv[6] = backoff;
	if (redis_up(q->rs))
		eval(q->rs, cb_result_lua, on_cb_result_reply, NULL, 7, argv, NULL);
	cb_free(cb);
}

static const struct transfer_cbs callback_cbs = { .on_done = callback_done };

/* POSTs cb's body to its URL; its answer is counted in callback_done. */
static void cb_send(struct cbsend *cb)
{
	/* Under the claim, so a live sender does not lose it. */
	int64_t within = cb->q->vis_ms * 2 / 3;
	struct err e;

	cb->t = jobs_callback_post(cb->q->eng, cb->url, cb->body,
				   within < 5000 ? within : 5000,
				   within < 10000 ? within : 10000,
				   &callback_cbs, cb, &e);
	if (!cb->t) {
		struct transfer_result r = { 0 };
		r.err = e;
		callback_done(cb, &r);
	}
}

static void on_cb_hold(struct loop *l, void *data)
{
	struct cbsend *cb = data;

	(void)l;
	cb->hold = NULL;
	cb_send(cb);
}

/* Sends the callback of job hash h, claimed by this replica: its final
 * status to its callback_url.  hold: wait the test hold first. */
static void notify(struct rjobs *q, const redisReply *h, int hold)
{
	const char *url = hget(h, "callback_url"), *id = hget(h, "id");
	struct cbsend *cb;
	cJSON *status;

	if (!url || !id || !jobs_valid_id(id) || !(status = status_json(h)))
		return;
	cb = xcalloc(1, sizeof(*cb));
	cb->q = q;
	snprintf(cb->job, sizeof(cb->job), "%s", id);
	cb->url = xstrdup(url);
	cb->body = jobs_callback_body(status);
	cJSON_Delete(status);
	cb->next = q->cbs;
	q->cbs = cb;
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		struct transfer_result r = { 0 };
		err_set(&r.err, ERR_INVALID_REQUEST, "not an http(s) URL");
		cb->hopeless = 1;
		callback_done(cb, &r);
	} else if (hold && q->cb_hold_ms > 0) {
		cb->hold = loop_add_timer(engine_loop(q->eng), q->cb_hold_ms, on_cb_hold, cb);
	} else {
		cb_send(cb);
	}
}

static void on_sweep_reply(void *data, redisReply *rep, const char *why)
{
	struct rjobs *q = data;

	(void)why;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || q->stopping)
		return;
	for (size_t i = 0; i < rep->elements; i++)
		notify(q, rep->element[i], 0);
}

/* -- one finished item -- */

struct done_op {
	struct rjobs *q;
	char job[24];
};

static void on_done_reply(void *data, redisReply *rep, const char *why)
{
	struct done_op *d = data;

	(void)why;
	/* Not recorded (Redis down): the entry stays pending, and is taken
	 * over once idle for the visibility timeout. */
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER &&
	    rep->element[0]->integer == 2 && !d->q->stopping)
		notify(d->q, rep->element[1], 1);
	free(d);
}

static void on_item(void *ud, void *tag, const struct chat_result *res)
{
	struct rjobs *q = ud;
	struct ritem *it = tag;
	struct done_op *d = xcalloc(1, sizeof(*d));
	cJSON *id = cJSON_CreateString(it->item_id), *o;
	char *idjson, *line, idx[32], when[32], claim[32];
	const char *argv[9];

	unlink_running(q, it);
	idjson = json_print(id);
	cJSON_Delete(id);
	o = batch_result_json(idjson, res);
	free(idjson);
	line = json_print(o);
	cJSON_Delete(o);
	if (q->spend)
		q->spend(q->spend_ud, it->job, it->key, res);
	d->q = q;
	snprintf(d->job, sizeof(d->job), "%s", it->job);
	snprintf(idx, sizeof(idx), "%ld", it->idx);
	jobs_now_iso(when, sizeof(when));
	argv[0] = q->prefix;
	argv[1] = it->job;
	argv[2] = idx;
	argv[3] = line;
	argv[4] = res->err.code == ERR_OK ? "1" : "0";
	argv[5] = it->entry;
	argv[6] = when;
	argv[7] = q->me;
	snprintf(claim, sizeof(claim), "%lld", q->vis_ms);
	argv[8] = claim;
	eval(q->rs, done_lua, on_done_reply, d, 9, argv, NULL);
	free(line);
	item_free(it);
	/* Its job has room again: a parked item of it may run now, here
	 * (the take reaches Redis after the result). */
	kick(q);
}

static void on_batch_done(void *ud)
{
	struct rjobs *q = ud;

	q->batch = NULL;   /* never: the source never ends */
}

static const struct batch_cbs runner_cbs = {
	.next = next_item,
	.on_item = on_item,
	.on_done = on_batch_done,
};

/* -- keeping the running items claimed -- */

static void on_beat_reply(void *data, redisReply *rep, const char *why)
{
	(void)data;
	(void)rep;
	(void)why;
}

/* The beat's period: a third of the visibility timeout, at most 1 s (it
 * also sweeps the pending callbacks). */
static long long beat_ms(const struct rjobs *q)
{
	return q->vis_ms / 3 < 1000 ? q->vis_ms / 3 : 1000;
}

static void on_beat(struct loop *l, void *data)
{
	struct rjobs *q = data;
	const char **argv;
	size_t n = 0, k = 0;
	char vis[32];

	q->beat = loop_add_timer(l, beat_ms(q), on_beat, q);
	if (!redis_up(q->rs))
		return;
	snprintf(vis, sizeof(vis), "%lld", q->vis_ms);
	/* Items taken and not started count as running: they hold a lease. */
	for (struct ritem *it = q->running; it; it = it->next)
		n++;
	for (struct ritem *it = q->head; it; it = it->next)
		n++;
	argv = xcalloc(2 * n + 3, sizeof(*argv));
	argv[k++] = q->prefix;
	argv[k++] = q->me;
	argv[k++] = vis;
	if (n) {
		for (struct ritem *it = q->running; it; it = it->next) {
			argv[k++] = it->job;
			argv[k++] = it->entry;
		}
		for (struct ritem *it = q->head; it; it = it->next) {
			argv[k++] = it->job;
			argv[k++] = it->entry;
		}
		eval(q->rs, beat_lua, on_beat_reply, NULL, (int)k, argv, NULL);
	}
	eval(q->rs, cb_sweep_lua, on_sweep_reply, q, 3, argv, NULL);
	free(argv);
}

/* ==== start and stop ==== */

static long long env_ms(const char *name, long long def, long long min)
{
	const char *v = env_get(name);
	long long ms = v ? atoll(v) : def;

	return ms < min ? min : ms;
}

struct rjobs *rjobs_new(struct engine *eng, const struct config *cfg,
			struct redis *rs, const char *prefix,
			const struct llm_opts *o, const struct upstream_gate *gate,
			int concurrency)
{
	struct rjobs *q = xcalloc(1, sizeof(*q));
	char host[64], rnd[17];

	q->eng = eng;
	q->cfg = cfg;
	q->rs = rs;
	q->prefix = prefix;
	q->o = *o;
	q->gate = gate;
	q->concurrency = concurrency > 0 ? concurrency : 1;
	q->vis_ms = env_ms("AICHAT_JOB_LEASE_MS", 30000, 300);
	q->poll_ms = env_ms("AICHAT_JOB_POLL_MS", 1000, 10);
	q->cb_hold_ms = env_ms("AICHAT_TEST_CALLBACK_HOLD_MS", 0, 0);
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	jobs_random_hex(rnd, 8);
	snprintf(q->me, sizeof(q->me), "%s:%ld:%s", host, (long)getpid(), rnd);
	return q;
}

void rjobs_set_spend(struct rjobs *q, jobs_spend_fn fn, void *ud)
{
	q->spend = fn;
	q->spend_ud = ud;
}

void rjobs_start(struct rjobs *q)
{
	q->batch = batch_start(q->eng, q->cfg, q->concurrency, &q->o, &runner_cbs, q);
	batch_set_gate(q->batch, q->gate, 0);
	q->beat = loop_add_timer(engine_loop(q->eng), beat_ms(q), on_beat, q);
}

void rjobs_stop(struct rjobs *q)
{
	struct loop *l;

	if (!q || q->stopping)
		return;
	q->stopping = 1;
	l = engine_loop(q->eng);
	batch_cancel(q->batch);
	q->batch = NULL;
	redis_call_cancel(q->take);
	q->take = NULL;
	if (q->poll)
		loop_del_timer(l, q->poll);
	if (q->beat)
		loop_del_timer(l, q->beat);
	q->poll = q->beat = NULL;
	while (q->head) {
		struct ritem *it = q->head;
		q->head = it->next;
		item_free(it);
	}
	q->tail = NULL;
	while (q->running) {
		struct ritem *it = q->running;
		q->running = it->next;
		item_free(it);
	}
	/* Their claims lapse and another replica sends them. */
	while (q->cbs) {
		struct cbsend *cb = q->cbs;
		if (cb->hold)
			loop_del_timer(l, cb->hold);
		transfer_cancel(cb->t);
		cb_free(cb);
	}
}

void rjobs_free(struct rjobs *q)
{
	if (!q)
		return;
	rjobs_stop(q);
	free(q);
}
