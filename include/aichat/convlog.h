/*
 * convlog.h - the conversation log: every exchange, in SQLite.
 *
 * A conversation has an id ("conv_" and 16 hex digits), a model and its
 * messages in order, each assistant message with its token usage and
 * timings.  Message text is searchable through FTS5.  All functions take
 * an open database (store_open) and use prepared statements only.
 */
#ifndef AICHAT_CONVLOG_H
#define AICHAT_CONVLOG_H

#include <cJSON.h>
#include <sqlite3.h>
#include <stddef.h>

#include "aichat/buf.h"
#include "aichat/chat.h"
#include "aichat/err.h"

#define CONVLOG_ID_MAX 24

/* True when id has the shape of a conversation id. */
int convlog_valid_id(const char *id);
/* The most recently updated conversation into id; -1 with e if none. */
int convlog_last(sqlite3 *db, char id[CONVLOG_ID_MAX], struct err *e);
/*
 * Loads conversation id into req, which must be empty: its messages,
 * oldest first, without its system messages (roles and contents owned by
 * req, as chat_request_release expects), and what it last ran with:
 * req->model (NULL when none was logged), req->system (its last system
 * message; NULL when none, or when that message is empty: cleared) and
 * req->temperature (-1 when not recorded).  -1 with e (ERR_NOT_FOUND)
 * when there is no such conversation.
 */
int convlog_load(sqlite3 *db, const char *id, struct chat_request *req,
		 struct err *e);
/*
 * Records one exchange in one transaction: a system message when system
 * is not NULL (a new conversation's system prompt, or a new one for a
 * conversation going on; "" records that it was cleared), the user's
 * message and the assistant's answer (res: content, model, usage,
 * timings).  The conversation's model becomes res->model and its
 * temperature temperature (< 0: the provider's default).  *id names the
 * conversation; an empty *id starts a new one and receives its id.  The
 * exchange's tokens and cost go to the usage ledger (usage.h) in the
 * same transaction.
 */
int convlog_record(sqlite3 *db, char id[CONVLOG_ID_MAX], const char *system,
		   double temperature, const char *user,
		   const struct chat_result *res, struct err *e);

/*
 * Records a whole conversation as a new one: req's system prompt and
 * messages, then the answer.  For serve's /conversation, whose clients
 * send the full conversation each time.  The new id goes to id.
 */
int convlog_record_all(sqlite3 *db, char id[CONVLOG_ID_MAX],
		       const struct chat_request *req,
		       const struct chat_result *res, struct err *e);
/*
 * Records conv (model, system prompt, temperature and messages) as a new
 * conversation with no answer yet: one loaded from a file, which later
 * exchanges go on.  The new id goes to id; an empty conv records nothing
 * and leaves id empty.
 */
int convlog_import(sqlite3 *db, char id[CONVLOG_ID_MAX],
		   const struct chat_request *conv, struct err *e);

/* `aichat history`: a JSON array of conversations, newest first. */
cJSON *convlog_list(sqlite3 *db, int limit, struct err *e);
/* One conversation with its messages; NULL with e when missing. */
cJSON *convlog_show(sqlite3 *db, const char *id, struct err *e);
/* Conversations whose messages match text (FTS5), best first. */
cJSON *convlog_search(sqlite3 *db, const char *text, int limit, struct err *e);
/* Deletes a conversation; -1 with e (ERR_NOT_FOUND) when missing. */
int convlog_rm(sqlite3 *db, const char *id, struct err *e);

#endif
