/*
 * usage.c - the usage ledger in SQLite; see usage.h.
 *
 * Sums are SQLite's integer sum() over integer columns: totals are exact,
 * and equal the sum of the rows they cover.
 */
#include "aichat/money.h"
#include "aichat/store.h"
#include "aichat/usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void usage_entry_from(struct usage_entry *u, const struct chat_result *res,
		      const char *source, const char *api_key)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->model, sizeof(u->model), "%s", res->model);
	u->source = source;
	snprintf(u->api_key, sizeof(u->api_key), "%s", api_key ? api_key : "");
	u->have_usage = res->have_usage;
	u->prompt_tokens = res->prompt_tokens;
	u->completion_tokens = res->completion_tokens;
	u->cached_tokens = res->cached_tokens;
	u->priced = res->priced;
	u->cost_micros = res->priced ? res->cost_micros : 0;
	clock_gettime(CLOCK_REALTIME, &u->when);
}

void usage_day(time_t t, char day[USAGE_DAY_MAX])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(day, USAGE_DAY_MAX, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000,
		 (tm.tm_mon + 1) % 100, tm.tm_mday % 100);
}

long usage_seconds_to_midnight(time_t t)
{
	return 86400 - (long)(t % 86400 + 86400) % 86400;
}

static const char insert_usage[] = "INSERT INTO usage (created_at, day, source,"
	" provider, model, api_key, prompt_tokens, completion_tokens,"
	" cached_tokens, cost_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

int usage_record(sqlite3 *db, const struct usage_entry *u, struct err *e)
{
	const char *colon = strchr(u->model, ':');
	char when[40], day[USAGE_DAY_MAX];
	struct tm tm;
	sqlite3_stmt *st, *kept;
	int rc;

	gmtime_r(&u->when.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(u->when.tv_nsec / 1000000) % 1000);
	usage_day(u->when.tv_sec, day);
	kept = st = store_stmt(db, insert_usage);
	if (!st && sqlite3_prepare_v2(db, insert_usage, -1, &st, NULL) != SQLITE_OK)
		return err_set(e, ERR_IO, "usage ledger: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, u->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, u->model, colon ? (int)(colon - u->model) : 0,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, u->model, -1, SQLITE_STATIC);
	if (u->api_key[0])
		sqlite3_bind_text(st, 6, u->api_key, -1, SQLITE_STATIC);
	if (u->have_usage) {
		sqlite3_bind_int64(st, 7, u->prompt_tokens);
		sqlite3_bind_int64(st, 8, u->completion_tokens);
		sqlite3_bind_int64(st, 9, u->cached_tokens);
	}
	if (u->priced)
		sqlite3_bind_int64(st, 10, u->cost_micros);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc < 0)
		err_set(e, ERR_IO, "usage ledger: %s", sqlite3_errmsg(db));
	if (kept)
		store_stmt_done(st);
	else
		sqlite3_finalize(st);
	return rc;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long days_from_civil(long y, long m, long d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int usage_parse_since(const char *s, time_t now, char day[USAGE_DAY_MAX])
{
	int y, m, d, n = 0;
	long days;
	char check[USAGE_DAY_MAX];

	if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) == 3 &&
	    n == 10 && s[4] == '-' && s[7] == '-') {
		for (int i = 0; i < 10; i++)
			if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
				return -1;
		if (m < 1 || m > 12 || d < 1 || d > 31)
			return -1;
		/* A date that does not exist (02-30) comes back as another. */
		usage_day((time_t)days_from_civil(y, m, d) * 86400, check);
		if (strcmp(check, s))
			return -1;
		snprintf(day, USAGE_DAY_MAX, "%s", s);
		return 0;
	}
	n = 0;
	days = 0;
	for (const char *p = s; *p >= '0' && *p <= '9'; p++, n++)
		if ((days = days * 10 + (*p - '0')) > 36500)
			return -1;
	if (!n || strcmp(s + n, "d") || days < 1)
		return -1;
	usage_day(now - (time_t)(days - 1) * 86400, day);
	return 0;
}

/* One row of the report from the columns at st's col.. (exchanges,
 * prompt, cached, completion, cost, priced). */
static void fill_row(cJSON *o, sqlite3_stmt *st, int col)
{
	long long n = sqlite3_column_int64(st, col);
	long long priced = sqlite3_column_int64(st, col + 5);
	char cost[40];

	cJSON_AddNumberToObject(o, "exchanges", (double)n);
	cJSON_AddNumberToObject(o, "prompt_tokens", (double)sqlite3_column_int64(st, col + 1));
	cJSON_AddNumberToObject(o, "cached_tokens", (double)sqlite3_column_int64(st, col + 2));
	cJSON_AddNumberToObject(o, "completion_tokens",
				(double)sqlite3_column_int64(st, col + 3));
	if (priced) {
		int64_t micros = sqlite3_column_int64(st, col + 4);
		money_format(micros, cost, sizeof(cost));
		cJSON_AddNumberToObject(o, "cost_micros", (double)micros);
		cJSON_AddStringToObject(o, "cost", cost);
	} else {
		cJSON_AddNullToObject(o, "cost_micros");
		cJSON_AddNullToObject(o, "cost");
	}
	cJSON_AddNumberToObject(o, "unpriced", (double)(n - priced));
}

#define SUMS "count(*), coalesce(sum(prompt_tokens), 0), coalesce(sum(cached_tokens), 0)," \
	" coalesce(sum(completion_tokens), 0), coalesce(sum(cost_micros), 0)," \
	" count(cost_micros)"

cJSON *usage_report(sqlite3 *db, const char *since, const char *by,
		    struct err *e)
{
	const char *col = NULL;
	char sql[512];
	sqlite3_stmt *st;
	cJSON *o, *rows, *total;

	if (by && !strcmp(by, "day"))
		col = "day";
	else if (by && !strcmp(by, "model"))
		col = "model";
	else if (by && !strcmp(by, "provider"))
		col = "provider";
	else if (by && !strcmp(by, "key"))
		col = "api_key";
	if (!since)
		since = "";
	o = cJSON_CreateObject();
	if (*since)
		cJSON_AddStringToObject(o, "since", since);
	else
		cJSON_AddNullToObject(o, "since");
	if (col)
		cJSON_AddStringToObject(o, "by", by);
	else
		cJSON_AddNullToObject(o, "by");
	rows = cJSON_AddArrayToObject(o, "rows");
	/* col is one of the names above: no input reaches the SQL text. */
	if (!col)
		goto totals;
	snprintf(sql, sizeof(sql), "SELECT %s, " SUMS " FROM usage WHERE day >= ?"
		 " GROUP BY 1 ORDER BY 1 IS NULL, 1", col);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *r = cJSON_CreateObject();
		if (sqlite3_column_type(st, 0) == SQLITE_NULL)
			cJSON_AddNullToObject(r, "group");
		else
			cJSON_AddStringToObject(r, "group", (const char *)sqlite3_column_text(st, 0));
		fill_row(r, st, 1);
		cJSON_AddItemToArray(rows, r);
	}
	sqlite3_finalize(st);
totals:
	if (sqlite3_prepare_v2(db, "SELECT " SUMS " FROM usage WHERE day >= ?", -1, &st,
			       NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	total = cJSON_AddObjectToObject(o, "total");
	if (sqlite3_step(st) == SQLITE_ROW)
		fill_row(total, st, 0);
	sqlite3_finalize(st);
	return o;
fail:
	err_set(e, ERR_IO, "usage ledger: %s", sqlite3_errmsg(db));
	cJSON_Delete(o);
	return NULL;
}

int usage_spent(sqlite3 *db, const char *day, const char *api_key,
		int64_t *micros, struct err *e)
{
	sqlite3_stmt *st;

	*micros = 0;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(cost_micros), 0) FROM usage"
			       " WHERE day = ? AND api_key = ?", -1, &st, NULL) != SQLITE_OK)
		return err_set(e, ERR_IO, "usage ledger: %s", sqlite3_errmsg(db));
	sqlite3_bind_text(st, 1, day, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, api_key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*micros = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}
