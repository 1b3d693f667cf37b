/*
 * budget.c - what serve's exchanges cost, and each API key's daily budget.
 *
 * Every exchange with a model goes to /metrics (tokens and cost per
 * model) and to the usage ledger, written by the writer's thread.  A key
 * with a budget (--budget, or the config's "budgets") has its spending of
 * the current UTC day counted here, in memory, on the loop: read once
 * from the ledger at start, then added to as exchanges end, so that the
 * check before a request never waits on SQLite.  A request is let through
 * while the key has spent less than its budget; the one that crosses it
 * runs to its end, and the next is refused with 429 until midnight UTC.
 * The workers of one server (--workers) share the spending, under lock.
 */
#include "aichat/metrics.h"
#include "aichat/money.h"
#include "aichat/usage.h"
#include "aichat/xalloc.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The spending of every worker's keys (one server, one process). */
static pthread_mutex_t spend_lock = PTHREAD_MUTEX_INITIALIZER;

static long today(time_t *now)
{
	time_t t = time(NULL);

	if (now)
		*now = t;
	return (long)(t / 86400);
}

/* k's spending, restarted when the day has turned since. */
static struct key_spend *current(struct server *srv, int key)
{
	struct key_spend *k;
	long d = today(NULL);

	if (!srv->spend || key < 1 || (size_t)key > srv->o->nkeys)
		return NULL;
	k = &srv->spend[key - 1];
	if (k->limit < 0)
		return NULL;
	if (k->day != d) {
		k->day = d;
		k->spent = 0;
	}
	return k;
}

int budget_init(struct server *srv, struct err *e)
{
	const struct server_opts *o = srv->o;
	char day[USAGE_DAY_MAX], label[32];
	time_t now;
	long d = today(&now);

	if (!o->key_budgets || !o->nkeys)
		return 0;
	usage_day(now, day);
	srv->spend = xcalloc(o->nkeys, sizeof(*srv->spend));
	for (size_t i = 0; i < o->nkeys; i++) {
		struct key_spend *k = &srv->spend[i];
		k->limit = o->key_budgets[i];
		k->day = d;
		if (k->limit < 0)
			continue;
		snprintf(label, sizeof(label), "key:%zu", i + 1);
		if (!srv->db || usage_spent(srv->db, day, label, &k->spent, e) < 0) {
			if (!srv->db)
				err_set(e, ERR_CONFIG,
					"--budget needs the usage ledger, and the database cannot be opened");
			free(srv->spend);
			srv->spend = NULL;
			return -1;
		}
	}
	return 0;
}

/* The routes whose requests call a model and so spend. */
static int spends(const struct req *r)
{
	switch (r->route->response) {
	case RESP_CHAT:
	case RESP_BATCH:
	case RESP_OPENAI_CHAT:
	case RESP_OPENAI_EMBEDDINGS:
	case RESP_ANTHROPIC:
	case RESP_RAG_QUERY:
	case RESP_JOB_SUBMIT:
		return 1;
	default:
		return 0;
	}
}

int check_budget(struct req *r)
{
	struct key_spend *k, copy;
	char limit[40], spent[40], msg[256], v[32];
	struct MHD_Response *resp;
	time_t now;
	long wait;

	pthread_mutex_lock(&spend_lock);
	k = current(r->srv, r->key);
	if (k)
		copy = *k;
	pthread_mutex_unlock(&spend_lock);
	if (!k || !spends(r) || copy.spent < copy.limit)
		return 0;
	k = &copy;
	today(&now);
	wait = usage_seconds_to_midnight(now);
	money_format(k->limit, limit, sizeof(limit));
	money_format(k->spent, spent, sizeof(spent));
	snprintf(msg, sizeof(msg),
		 "the daily budget of API key key:%d is spent ($%s of $%s a day); it renews at midnight UTC, in %ld s",
		 r->key, spent, limit, wait);
	resp = error_response(r, ERR_RATE_LIMITED, msg);
	snprintf(v, sizeof(v), "%ld", wait);
	mhd.add_response_header(resp, "Retry-After", v);
	send_response(r, 429, resp);
	return -1;
}

void budget_headers(struct req *r, struct MHD_Response *resp)
{
	struct key_spend *k, copy;
	char v[40];

	pthread_mutex_lock(&spend_lock);
	k = current(r->srv, r->key);
	if (k)
		copy = *k;
	pthread_mutex_unlock(&spend_lock);
	if (!k)
		return;
	k = &copy;
	money_format(k->limit, v, sizeof(v));
	mhd.add_response_header(resp, "X-Budget-Limit", v);
	money_format(k->spent < k->limit ? k->limit - k->spent : 0, v, sizeof(v));
	mhd.add_response_header(resp, "X-Budget-Remaining", v);
}

/* ==== the ledger, through the writer ==== */

struct ledger_op {
	char rid[72];
	struct usage_entry u;
	struct err e;
};

static int ledger_run(sqlite3 *db, void *arg)
{
	struct ledger_op *l = arg;
	int rc;

	err_clear(&l->e);
	if (usage_record(db, &l->u, &l->e) == 0)
		return 0;
	rc = sqlite3_errcode(db);
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? WRITER_RETRY : -1;
}

static void ledger_done(void *arg, int rc, int cancelled)
{
	struct ledger_op *l = arg;

	(void)cancelled;
	if (rc != 0)
		fprintf(stderr, "aichat: serve: could not record the usage of %s: %s\n",
			l->rid, l->e.code ? l->e.msg : "the server stopped first");
	free(l);
}

static const struct writer_ops ledger_ops = {
	.run = ledger_run, .done = ledger_done, .batch = 1,
};

void spend_key(struct server *srv, int key, const char *what,
	       const struct chat_result *res)
{
	struct key_spend *k;
	struct ledger_op *l;
	char label[32] = "";

	if (!res->model[0] || (!res->have_usage && res->err.code != ERR_OK))
		return;
	if (res->have_usage)
		metrics_tokens(srv->metrics, res->model, res->prompt_tokens,
			       res->completion_tokens);
	if (res->priced)
		metrics_cost(srv->metrics, res->model, res->cost_micros);
	pthread_mutex_lock(&spend_lock);
	if (res->priced && (k = current(srv, key)))
		k->spent += res->cost_micros;
	pthread_mutex_unlock(&spend_lock);
	if (!srv->writer)
		return;
	if (key)
		snprintf(label, sizeof(label), "key:%d", key);
	l = xcalloc(1, sizeof(*l));
	snprintf(l->rid, sizeof(l->rid), "%s", what);
	usage_entry_from(&l->u, res, "serve", label);
	/* Owed, not asked for: the ledger is what budgets start from. */
	writer_submit(srv->writer, &ledger_ops, l, WRITER_ALWAYS);
}

void spend(struct req *r, const struct chat_result *res)
{
	spend_key(r->srv, r->key, r->id, res);
}

void spend_job_item(void *ud, const char *job_id, int key,
		    const struct chat_result *res)
{
	spend_key(ud, key, job_id, res);
}
