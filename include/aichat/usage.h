/*
 * usage.h - the usage ledger: one row per exchange with a model, its
 * tokens and, when the model has a price (prices.h), its cost.
 *
 * `aichat chat` writes a row with each exchange it logs (in the same
 * transaction as the conversation log), `aichat rag query` one for its
 * answer, `aichat batch` one per item (a few hundred at a time, never
 * waiting for a lock until the run ends); `aichat serve` writes one for
 * every exchange with a model, through its writer thread, with the label
 * of the API key that asked ("key:N", never the key).  Days are UTC dates
 * ("2026-12-02"): a day turns at midnight UTC.  Money is in micro-dollars
 * (money.h).  All functions take an open database (store_open).
 */
#ifndef AICHAT_USAGE_H
#define AICHAT_USAGE_H

#include <cJSON.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "aichat/chat.h"
#include "aichat/err.h"

#define USAGE_DAY_MAX 16

struct usage_entry {
	char model[256];               /* "provider:model" */
	const char *source;            /* "chat", "rag", "batch" or "serve" */
	char api_key[32];              /* the key's label, "" for none */
	int have_usage;                /* else the token counts are unknown */
	long prompt_tokens, completion_tokens, cached_tokens;
	int priced;                    /* else the cost is unknown */
	int64_t cost_micros;
	struct timespec when;          /* when the exchange ended */
};

/* The entry for the exchange res, ended now; api_key may be NULL. */
void usage_entry_from(struct usage_entry *u, const struct chat_result *res,
		      const char *source, const char *api_key);

/* Inserts u (one statement: the caller may hold a transaction).  -1 with
 * e on a database error. */
int usage_record(sqlite3 *db, const struct usage_entry *u, struct err *e);

/* The UTC date of t, "YYYY-MM-DD". */
void usage_day(time_t t, char day[USAGE_DAY_MAX]);

/* Seconds from t to the next midnight UTC (1 to 86400). */
long usage_seconds_to_midnight(time_t t);

/*
 * --since: "YYYY-MM-DD" (a real date), or "Nd" for the last N days, today
 * (UTC, at now) included (N from 1 to 36500).  The first day counted goes
 * to day.  -1 when s is neither.
 */
int usage_parse_since(const char *s, time_t now, char day[USAGE_DAY_MAX]);

/*
 * The totals of the ledger from day since ("" or NULL: all of it),
 * grouped by by ("day", "model", "provider", "key"; NULL: no grouping):
 *   {"since": "2026-11-26"|null, "by": "model"|null,
 *    "rows": [{"group": "openai:gpt-4o"|null, "exchanges": N,
 *              "prompt_tokens": N, "cached_tokens": N,
 *              "completion_tokens": N, "cost_micros": N|null,
 *              "cost": "0.001250"|null, "unpriced": N}, ...],
 *    "total": {... the same fields, without "group"}}
 * Rows in the order of their group; cost is null when no exchange of the
 * row had a price, and unpriced counts the exchanges without one.  NULL
 * with e on a database error.
 */
cJSON *usage_report(sqlite3 *db, const char *since, const char *by,
		    struct err *e);

/* What api_key spent on day into *micros (0 if nothing).  -1 with e. */
int usage_spent(sqlite3 *db, const char *day, const char *api_key,
		int64_t *micros, struct err *e);

#endif
