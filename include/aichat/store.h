/*
 * store.h - the embedded SQLite database under $AICHAT_HOME.
 *
 * One file, aichat.db, in WAL mode with a busy timeout, so several aichat
 * processes may use it at once.  The schema carries a version
 * (PRAGMA user_version) and store_open() migrates older files forward.
 * Every statement is prepared; nothing is built from strings.
 */
#ifndef AICHAT_STORE_H
#define AICHAT_STORE_H

#include <sqlite3.h>

#include "aichat/err.h"

/* $AICHAT_HOME, else $XDG_DATA_HOME/aichat, else ~/.local/share/aichat;
 * owned, free() it.  NULL when no home can be found. */
char *store_home(void);

/* Opens (creating the directory and file) and migrates the database at
 * path, or at store_home()/aichat.db when path is NULL.  -1 with e. */
int store_open(const char *path, sqlite3 **db, struct err *e);
/* Why db was opened read-only (a full disk, a read-only file system or
 * directory), or NULL when it can be written. */
const char *store_read_only_why(sqlite3 *db);
/* Finalizes db's kept statements (store_stmt), then closes it; NULL is
 * a no-op. */
void store_close(sqlite3 *db);
/* db's prepared statement for sql, kept from one call to the next: sql
 * is a string literal (its address is the key).  The store owns it
 * (store_close finalizes it): the caller binds and steps it, then hands
 * it back with store_stmt_done(), never finalizes it.  NULL when it
 * cannot be kept (the table is full, or it does not prepare): the
 * caller prepares its own. */
sqlite3_stmt *store_stmt(sqlite3 *db, const char *sql);
/* Resets st and clears its bindings, for the next store_stmt(). */
void store_stmt_done(sqlite3_stmt *st);

/*
 * The FTS5 query for user text: its words (runs of letters, digits and
 * non-ASCII bytes; everything else, FTS5 syntax included, separates
 * words) each double-quoted, at most 64, joined by joiner (" OR " for
 * any word, " " for all of them).  Owned, free() it; NULL when text has
 * no word at all.
 */
char *store_fts_query(const char *text, const char *joiner);
/* Whether c belongs to a word, as store_fts_query() splits them: a letter,
 * a digit or a non-ASCII byte. */
int store_word_byte(unsigned char c);

#endif
