/*
 * log.c - the conversation log in SQLite; see convlog.h.
 *
 * One exchange is one transaction (BEGIN IMMEDIATE), so parallel aichat
 * processes interleave whole exchanges and never see "database is
 * locked" within the busy timeout store_open() sets.
 */
#include "aichat/convlog.h"
#include "aichat/json.h"
#include "aichat/store.h"
#include "aichat/usage.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static void now_iso(char *dst, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

static int db_fail(sqlite3 *db, struct err *e)
{
	const char *why = store_read_only_why(db);

	if (why)
		return err_set(e, ERR_IO, "conversation log: the database is read-only: %s",
			       why);
	return err_set(e, ERR_IO, "conversation log: %s", sqlite3_errmsg(db));
}

int convlog_valid_id(const char *id)
{
	if (strncmp(id, "conv_", 5) || strlen(id) != 21)
		return 0;
	for (const char *p = id + 5; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

static int bad_id(const char *id, struct err *e)
{
	return err_set(e, ERR_NOT_FOUND,
		       "no conversation '%.64s' (ids look like conv_0123456789abcdef; see 'aichat history list')",
		       id);
}

int convlog_last(sqlite3 *db, char id[CONVLOG_ID_MAX], struct err *e)
{
	sqlite3_stmt *st;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "SELECT id FROM conversations ORDER BY updated_at DESC,"
			       " rowid DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, e);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, CONVLOG_ID_MAX, "%s", (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	} else {
		err_set(e, ERR_NOT_FOUND, "no conversation to continue yet");
	}
	sqlite3_finalize(st);
	return rc;
}

/* The model and temperature conversation id last ran with; 0 if found. */
static int settings(sqlite3 *db, const char *id, struct chat_request *req)
{
	sqlite3_stmt *st;
	int found;

	if (sqlite3_prepare_v2(db, "SELECT model, temperature FROM conversations"
			       " WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	if (found && sqlite3_column_type(st, 0) != SQLITE_NULL)
		req->model = xstrdup((const char *)sqlite3_column_text(st, 0));
	if (found && sqlite3_column_type(st, 1) != SQLITE_NULL)
		req->temperature = sqlite3_column_double(st, 1);
	sqlite3_finalize(st);
	return found ? 0 : -1;
}

int convlog_load(sqlite3 *db, const char *id, struct chat_request *req,
		 struct err *e)
{
	sqlite3_stmt *st;

	req->temperature = -1;
	if (!convlog_valid_id(id) || settings(db, id, req) < 0)
		return bad_id(id, e);
	if (sqlite3_prepare_v2(db, "SELECT role, content FROM messages WHERE"
			       " conversation_id = ? ORDER BY seq", -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, e);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *role = (const char *)sqlite3_column_text(st, 0);
		const char *content = (const char *)sqlite3_column_text(st, 1);

		/* The last system message is the one in force. */
		if (!strcmp(role, "system")) {
			free(req->system);
			req->system = *content ? xstrdup(content) : NULL;
			continue;
		}
		chat_request_add(req, role, content, NULL);
	}
	sqlite3_finalize(st);
	return 0;
}

static int insert_message(sqlite3 *db, const char *id, int seq, const char *role,
			  const char *content, const struct chat_result *res,
			  const char *when)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO messages (conversation_id, seq, role,"
			       " content, model, prompt_tokens, completion_tokens, ttft_ms,"
			       " latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, seq);
	sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, content, -1, SQLITE_STATIC);
	if (res) {
		sqlite3_bind_text(st, 5, res->model, -1, SQLITE_STATIC);
		if (res->have_usage) {
			sqlite3_bind_int64(st, 6, res->prompt_tokens);
			sqlite3_bind_int64(st, 7, res->completion_tokens);
		}
		if (res->first_token_ms >= 0)
			sqlite3_bind_int64(st, 8, res->first_token_ms);
		sqlite3_bind_int64(st, 9, res->total_ms);
	}
	sqlite3_bind_text(st, 10, when, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

static void new_id(char id[CONVLOG_ID_MAX])
{
	unsigned char b[8];
	static const char hex[] = "0123456789abcdef";

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	memcpy(id, "conv_", 5);
	for (int i = 0; i < 8; i++) {
		id[5 + 2 * i] = hex[b[i] >> 4];
		id[6 + 2 * i] = hex[b[i] & 15];
	}
	id[21] = '\0';
}

/* Inserts a new conversation row titled by the start of text. */
static int new_conversation(sqlite3 *db, char id[CONVLOG_ID_MAX],
			    const char *text, const char *model, double temperature,
			    const char *when)
{
	char title[81];
	size_t n = 0;
	sqlite3_stmt *st;
	int rc;

	/* The title: the start of the first prompt, on one line, never
	 * cutting a character. */
	for (const char *p = text; *p && n < sizeof(title) - 1; p++)
		title[n++] = (*p == '\n' || *p == '\t' || *p == '\r') ? ' ' : *p;
	if (text[n] && n) {
		while (n && ((unsigned char)title[n - 1] & 0xC0) == 0x80)
			n--;
		if (n && ((unsigned char)title[n - 1] & 0x80))
			n--;
	}
	title[n] = '\0';
	new_id(id);
	if (sqlite3_prepare_v2(db, "INSERT INTO conversations (id, created_at,"
			       " updated_at, model, title, temperature) VALUES (?, ?, ?, ?, ?, ?)",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, model, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, title, -1, SQLITE_TRANSIENT);
	if (temperature >= 0)
		sqlite3_bind_double(st, 6, temperature);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

/* Next seq of conversation id, and its updated_at, model and temperature
 * refreshed. */
static int touch_conversation(sqlite3 *db, const char *id, const char *model,
			      double temperature, const char *when, int *seq)
{
	sqlite3_stmt *st;
	int rc;

	*seq = 0;
	if (sqlite3_prepare_v2(db, "SELECT coalesce(max(seq) + 1, 0) FROM messages"
			       " WHERE conversation_id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*seq = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "UPDATE conversations SET updated_at = ?, model = ?,"
			       " temperature = ? WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, when, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
	if (temperature >= 0)
		sqlite3_bind_double(st, 3, temperature);
	sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	return rc;
}

int convlog_record(sqlite3 *db, char id[CONVLOG_ID_MAX], const char *system,
		   double temperature, const char *user,
		   const struct chat_result *res, struct err *e)
{
	char when[40];
	int seq = 0, fresh = !id[0];
	struct usage_entry u;

	now_iso(when, sizeof(when));
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, e);
	if (fresh) {
		if (new_conversation(db, id, user, res->model, temperature, when) < 0)
			goto fail;
	} else if (touch_conversation(db, id, res->model, temperature, when, &seq) < 0) {
		goto fail;
	}
	if ((system && insert_message(db, id, seq++, "system", system, NULL, when) < 0) ||
	    insert_message(db, id, seq++, "user", user, NULL, when) < 0 ||
	    insert_message(db, id, seq++, "assistant", res->content.ptr, res, when) < 0)
		goto fail;
	usage_entry_from(&u, res, "chat", NULL);
	if (usage_record(db, &u, e) < 0 ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	db_fail(db, e);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (fresh)
		id[0] = '\0';
	return -1;
}

/* A new conversation holding req's system prompt and messages, then the
 * answer res when there is one. */
static int record_new(sqlite3 *db, char id[CONVLOG_ID_MAX],
		      const struct chat_request *req, const char *model,
		      const struct chat_result *res, struct err *e)
{
	char when[40];
	const char *first = "";
	int seq = 0;

	now_iso(when, sizeof(when));
	for (size_t i = 0; i < req->nmessages && !*first; i++)
		if (!strcmp(req->messages[i].role, "user"))
			first = req->messages[i].content;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, e);
	if (new_conversation(db, id, first, model, req->temperature, when) < 0 ||
	    (req->system && insert_message(db, id, seq++, "system", req->system,
					   NULL, when) < 0))
		goto fail;
	for (size_t i = 0; i < req->nmessages; i++)
		if (insert_message(db, id, seq++, req->messages[i].role,
				   req->messages[i].content, NULL, when) < 0)
			goto fail;
	if ((res && insert_message(db, id, seq++, "assistant", res->content.ptr, res,
				   when) < 0) ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return 0;
fail:
	db_fail(db, e);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	id[0] = '\0';
	return -1;
}

int convlog_record_all(sqlite3 *db, char id[CONVLOG_ID_MAX],
		       const struct chat_request *req,
		       const struct chat_result *res, struct err *e)
{
	return record_new(db, id, req, res->model, res, e);
}

int convlog_import(sqlite3 *db, char id[CONVLOG_ID_MAX],
		   const struct chat_request *conv, struct err *e)
{
	id[0] = '\0';
	if (!conv->nmessages)
		return 0;
	return record_new(db, id, conv, conv->model, NULL, e);
}

/* ==== reading for `aichat history` ==== */

static cJSON *conversation_row(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(st, 0));
	cJSON_AddStringToObject(o, "created_at", (const char *)sqlite3_column_text(st, 1));
	cJSON_AddStringToObject(o, "updated_at", (const char *)sqlite3_column_text(st, 2));
	if (sqlite3_column_type(st, 3) != SQLITE_NULL)
		cJSON_AddStringToObject(o, "model", (const char *)sqlite3_column_text(st, 3));
	else
		cJSON_AddNullToObject(o, "model");
	cJSON_AddStringToObject(o, "title", sqlite3_column_type(st, 4) != SQLITE_NULL ?
				(const char *)sqlite3_column_text(st, 4) : "");
	cJSON_AddNumberToObject(o, "messages", sqlite3_column_int(st, 5));
	return o;
}

#define CONV_COLUMNS \
	"c.id, c.created_at, c.updated_at, c.model, c.title," \
	" (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"

cJSON *convlog_list(sqlite3 *db, int limit, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *arr;

	if (sqlite3_prepare_v2(db, "SELECT " CONV_COLUMNS " FROM conversations c"
			       " ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK) {
		db_fail(db, e);
		return NULL;
	}
	sqlite3_bind_int(st, 1, limit);
	arr = cJSON_CreateArray();
	while (sqlite3_step(st) == SQLITE_ROW)
		cJSON_AddItemToArray(arr, conversation_row(st));
	sqlite3_finalize(st);
	return arr;
}

cJSON *convlog_show(sqlite3 *db, const char *id, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *o = NULL, *msgs;

	if (!convlog_valid_id(id)) {
		bad_id(id, e);
		return NULL;
	}
	if (sqlite3_prepare_v2(db, "SELECT " CONV_COLUMNS " FROM conversations c"
			       " WHERE c.id = ?", -1, &st, NULL) != SQLITE_OK) {
		db_fail(db, e);
		return NULL;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		o = conversation_row(st);
	sqlite3_finalize(st);
	if (!o) {
		bad_id(id, e);
		return NULL;
	}
	msgs = cJSON_AddArrayToObject(o, "transcript");
	if (sqlite3_prepare_v2(db, "SELECT role, content, model, prompt_tokens,"
			       " completion_tokens, ttft_ms, latency_ms, created_at"
			       " FROM messages WHERE conversation_id = ? ORDER BY seq",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *m = cJSON_CreateObject();
			cJSON_AddStringToObject(m, "role", (const char *)sqlite3_column_text(st, 0));
			cJSON_AddStringToObject(m, "content", (const char *)sqlite3_column_text(st, 1));
			if (sqlite3_column_type(st, 2) != SQLITE_NULL)
				cJSON_AddStringToObject(m, "model", (const char *)sqlite3_column_text(st, 2));
			if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
				cJSON_AddNumberToObject(m, "prompt_tokens", sqlite3_column_int(st, 3));
				cJSON_AddNumberToObject(m, "completion_tokens", sqlite3_column_int(st, 4));
			}
			if (sqlite3_column_type(st, 5) != SQLITE_NULL)
				cJSON_AddNumberToObject(m, "ttft_ms", sqlite3_column_int(st, 5));
			if (sqlite3_column_type(st, 6) != SQLITE_NULL)
				cJSON_AddNumberToObject(m, "latency_ms", sqlite3_column_int(st, 6));
			cJSON_AddStringToObject(m, "created_at", (const char *)sqlite3_column_text(st, 7));
			cJSON_AddItemToArray(msgs, m);
		}
		sqlite3_finalize(st);
	}
	return o;
}

cJSON *convlog_search(sqlite3 *db, const char *text, int limit, struct err *e)
{
	sqlite3_stmt *st;
	cJSON *arr;
	/* All the words, each only a word: FTS5 syntax is just text. */
	char *q = store_fts_query(text, " ");

	if (!q) {
		err_set(e, ERR_USAGE, "nothing to search for");
		return NULL;
	}
	/* Best matches first; a conversation shows once, with its best
	 * message (snippet() cannot sit under a GROUP BY). */
	if (sqlite3_prepare_v2(db, "SELECT " CONV_COLUMNS ", snippet(messages_fts, 0,"
			       " '[', ']', '...', 12) FROM messages_fts"
			       " JOIN messages m0 ON m0.id = messages_fts.rowid"
			       " JOIN conversations c ON c.id = m0.conversation_id"
			       " WHERE messages_fts MATCH ? ORDER BY rank", -1, &st,
			       NULL) != SQLITE_OK) {
		free(q);
		db_fail(db, e);
		return NULL;
	}
	sqlite3_bind_text(st, 1, q, -1, SQLITE_STATIC);
	arr = cJSON_CreateArray();
	while (cJSON_GetArraySize(arr) < limit && sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const cJSON *seen;
		int dup = 0;
		cJSON_ArrayForEach(seen, arr)
			if (!strcmp(json_str(seen, "id"), id))
				dup = 1;
		if (dup)
			continue;
		cJSON *o = conversation_row(st);
		cJSON_AddStringToObject(o, "match", (const char *)sqlite3_column_text(st, 6));
		cJSON_AddItemToArray(arr, o);
	}
	if (sqlite3_errcode(db) != SQLITE_OK && sqlite3_errcode(db) != SQLITE_ROW &&
	    sqlite3_errcode(db) != SQLITE_DONE) {
		sqlite3_finalize(st);
		free(q);
		cJSON_Delete(arr);
		db_fail(db, e);
		return NULL;
	}
	sqlite3_finalize(st);
	free(q);
	return arr;
}

int convlog_rm(sqlite3 *db, const char *id, struct err *e)
{
	sqlite3_stmt *st;
	int changed;

	if (!convlog_valid_id(id))
		return bad_id(id, e);
	if (sqlite3_prepare_v2(db, "DELETE FROM conversations WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(db, e);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	changed = sqlite3_changes(db);
	return changed ? 0 : bad_id(id, e);
}
