/*
 * db.c - opening and migrating the database; see store.h.
 */
#include "aichat/buf.h"
#include "aichat/config.h"
#include "aichat/store.h"
#include "aichat/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

/* Each entry moves the schema from version i to i + 1. */
static const char *const migrations[] = {
	/* 1: background jobs */
	"CREATE TABLE jobs ("
	"  id TEXT PRIMARY KEY,"
	"  status TEXT NOT NULL,"
	"  model TEXT,"
	"  temperature REAL,"
	"  max_tokens INTEGER,"
	"  concurrency INTEGER NOT NULL,"
	"  callback_url TEXT,"
	"  total INTEGER NOT NULL,"
	"  succeeded INTEGER NOT NULL DEFAULT 0,"
	"  failed INTEGER NOT NULL DEFAULT 0,"
	"  created_at TEXT NOT NULL,"
	"  started_at TEXT,"
	"  finished_at TEXT);"
	"CREATE TABLE job_items ("
	"  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	"  idx INTEGER NOT NULL,"
	"  item_id TEXT NOT NULL,"
	"  prompt TEXT NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'queued',"
	"  result TEXT,"
	"  PRIMARY KEY (job_id, idx));"
	"CREATE INDEX jobs_status ON jobs(status, created_at);",
	/* 2: the conversation log */
	"CREATE TABLE conversations ("
	"  id TEXT PRIMARY KEY,"
	"  created_at TEXT NOT NULL,"
	"  updated_at TEXT NOT NULL,"
	"  model TEXT,"
	"  title TEXT);"
	"CREATE TABLE messages ("
	"  id INTEGER PRIMARY KEY,"
	"  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
	"  seq INTEGER NOT NULL,"
	"  role TEXT NOT NULL,"
	"  content TEXT NOT NULL,"
	"  model TEXT,"
	"  prompt_tokens INTEGER,"
	"  completion_tokens INTEGER,"
	"  ttft_ms INTEGER,"
	"  latency_ms INTEGER,"
	"  created_at TEXT NOT NULL);"
	"CREATE INDEX messages_conversation ON messages(conversation_id, seq);"
	"CREATE INDEX conversations_updated ON conversations(updated_at);"
	"CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',"
	"  content_rowid='id');"
	"CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
	"  INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END;"
	"CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
	"  INSERT INTO messages_fts(messages_fts, rowid, content)"
	"  VALUES ('delete', old.id, old.content); END;",
	/* 3: RAG collections; chunks indexed by FTS5 for bm25() ranking */
	"CREATE TABLE collections ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created_at TEXT NOT NULL,"
	"  chunk_size INTEGER NOT NULL,"
	"  overlap INTEGER NOT NULL,"
	"  embed_model TEXT,"
	"  dim INTEGER);"
	"CREATE TABLE documents ("
	"  id INTEGER PRIMARY KEY,"
	"  collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  mtime INTEGER NOT NULL,"
	"  indexed_at TEXT NOT NULL,"
	"  UNIQUE (collection_id, path));"
	"CREATE TABLE chunks ("
	"  id INTEGER PRIMARY KEY,"
	"  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,"
	"  collection_id INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  text TEXT NOT NULL,"
	"  line_first INTEGER NOT NULL,"
	"  line_last INTEGER NOT NULL);"
	"CREATE INDEX chunks_document ON chunks(document_id, seq);"
	"CREATE INDEX chunks_collection ON chunks(collection_id);"
	"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks',"
	"  content_rowid='id');"
	"CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
	"  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END;"
	"CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
	"  INSERT INTO chunks_fts(chunks_fts, rowid, text)"
	"  VALUES ('delete', old.id, old.text); END;",
	/* New migrations go below, one array entry each, never edited
	 * once landed. */
	/* 4: a chunk's embedding: dim native float32 values, unit length */
	"ALTER TABLE chunks ADD COLUMN embedding BLOB;",
	/* 5: the chunks that have a vector, found without a scan */
	"CREATE INDEX chunks_vectors ON chunks(collection_id)"
	"  WHERE embedding IS NOT NULL;",
	/* 6: the temperature a conversation last ran with (NULL: the
	 * provider's default, or logged before this column) */
	"ALTER TABLE conversations ADD COLUMN temperature REAL;",
	/* 7: who runs a running job ("host:pid:random") and until when its
	 * lease holds (milliseconds since the epoch) */
	"ALTER TABLE jobs ADD COLUMN owner TEXT;"
	"ALTER TABLE jobs ADD COLUMN lease_until INTEGER;",
	/* 8: the usage ledger: one row per exchange, with its tokens and,
	 * when the model had a price, its cost in micro-dollars; day is the
	 * UTC date.  The exchanges logged before it are copied in, without
	 * a cost (their prices were not recorded). */
	"CREATE TABLE usage ("
	"  id INTEGER PRIMARY KEY,"
	"  created_at TEXT NOT NULL,"
	"  day TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  model TEXT NOT NULL,"
	"  api_key TEXT,"
	"  prompt_tokens INTEGER,"
	"  completion_tokens INTEGER,"
	"  cached_tokens INTEGER,"
	"  cost_micros INTEGER);"
	"CREATE INDEX usage_day ON usage(day, api_key);"
	"INSERT INTO usage (created_at, day, source, provider, model,"
	"  prompt_tokens, completion_tokens, cached_tokens)"
	"  SELECT created_at, substr(created_at, 1, 10), 'history',"
	"  CASE WHEN instr(model, ':') > 0 THEN substr(model, 1, instr(model, ':') - 1)"
	"  ELSE '' END, model, prompt_tokens, completion_tokens, 0"
	"  FROM messages WHERE role = 'assistant' AND model IS NOT NULL"
	"  ORDER BY id;",
	/* 9: a collection's language: 'en' (stemmed, in chunks_en), 'none'
	 * (not stemmed, chunks_plain) or NULL (indexed before this column:
	 * chunks_fts, as before).  A chunk says which index holds it (fts:
	 * NULL, 1 en, 2 none), so that its triggers never need its
	 * collection, which a cascade may have deleted already; head is the
	 * text ranked beside it: its document's title, file name and the
	 * section it is in. */
	"ALTER TABLE collections ADD COLUMN language TEXT;"
	"ALTER TABLE chunks ADD COLUMN head TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE chunks ADD COLUMN fts INTEGER;"
	"CREATE VIRTUAL TABLE chunks_en USING fts5(text, head, content='chunks',"
	"  content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
	"CREATE VIRTUAL TABLE chunks_plain USING fts5(text, head, content='chunks',"
	"  content_rowid='id', tokenize='unicode61 remove_diacritics 2');"
	"DROP TRIGGER chunks_ai;"
	"DROP TRIGGER chunks_ad;"
	"CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
	"  INSERT INTO chunks_fts(rowid, text) SELECT new.id, new.text WHERE new.fts IS NULL;"
	"  INSERT INTO chunks_en(rowid, text, head) SELECT new.id, new.text, new.head"
	"   WHERE new.fts = 1;"
	"  INSERT INTO chunks_plain(rowid, text, head) SELECT new.id, new.text, new.head"
	"   WHERE new.fts = 2; END;"
	"CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
	"  INSERT INTO chunks_fts(chunks_fts, rowid, text) SELECT 'delete', old.id, old.text"
	"   WHERE old.fts IS NULL;"
	"  INSERT INTO chunks_en(chunks_en, rowid, text, head)"
	"   SELECT 'delete', old.id, old.text, old.head WHERE old.fts = 1;"
	"  INSERT INTO chunks_plain(chunks_plain, rowid, text, head)"
	"   SELECT 'delete', old.id, old.text, old.head WHERE old.fts = 2; END;"
	/* A collection that changes language moves its chunks. */
	"CREATE TRIGGER chunks_au AFTER UPDATE OF fts ON chunks"
	"  WHEN old.fts IS NOT new.fts BEGIN"
	"  INSERT INTO chunks_fts(chunks_fts, rowid, text) SELECT 'delete', old.id, old.text"
	"   WHERE old.fts IS NULL;"
	"  INSERT INTO chunks_en(chunks_en, rowid, text, head)"
	"   SELECT 'delete', old.id, old.text, old.head WHERE old.fts = 1;"
	"  INSERT INTO chunks_plain(chunks_plain, rowid, text, head)"
	"   SELECT 'delete', old.id, old.text, old.head WHERE old.fts = 2;"
	"  INSERT INTO chunks_fts(rowid, text) SELECT new.id, new.text WHERE new.fts IS NULL;"
	"  INSERT INTO chunks_en(rowid, text, head) SELECT new.id, new.text, new.head"
	"   WHERE new.fts = 1;"
	"  INSERT INTO chunks_plain(rowid, text, head) SELECT new.id, new.text, new.head"
	"   WHERE new.fts = 2; END;",
	/* 10: the API key (its number in serve's list, from 1) that submitted
	 * a job, whose spending its items count towards; NULL without keys. */
	"ALTER TABLE jobs ADD COLUMN api_key INTEGER;",
	/* 11: a job's callback, once the job has ended with a callback_url:
	 * 'pending' until a POST of its final status is answered 2xx
	 * ('delivered') or its last attempt failed ('failed'), the POSTs
	 * made so far, and why the last one failed.  The pending ones are
	 * found without a scan, by whichever server resumes them. */
	"ALTER TABLE jobs ADD COLUMN callback_status TEXT;"
	"ALTER TABLE jobs ADD COLUMN callback_attempts INTEGER;"
	"ALTER TABLE jobs ADD COLUMN callback_error TEXT;"
	"CREATE INDEX jobs_callbacks ON jobs(id) WHERE callback_status = 'pending';",
};

char *store_home(void)
{
	const char *h = env_get("AICHAT_HOME"), *x = env_get("XDG_DATA_HOME");
	const char *home = env_get("HOME");
	struct buf b;

	buf_init(&b, 0);
	if (h)
		buf_appends(&b, h);
	else if (x)
		buf_printf(&b, "%s/aichat", x);
	else if (home)
		buf_printf(&b, "%s/.local/share/aichat", home);
	else
		return NULL;
	return buf_detach(&b);
}

/* mkdir -p for the directories above a file. */
static int make_parents(const char *path)
{
	char *p = xstrdup(path);

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			free(p);
			return -1;
		}
		*s = '/';
	}
	free(p);
	return 0;
}

static int exec(sqlite3 *db, const char *sql, const char *path, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return 0;
	err_set(e, ERR_IO, "database '%s': %s", path, msg ? msg : "error");
	sqlite3_free(msg);
	return -1;
}

/*
 * True when the database exists but its directory cannot be written: SQLite
 * could not make its journal there, so it is opened read-only instead.
 */
static int read_only_home(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int ro;

	if (slash && slash != dir)
		*slash = '\0';
	else
		snprintf(dir, strlen(dir) + 1, "%s", slash ? "/" : ".");
	ro = access(path, F_OK) == 0 && access(dir, W_OK) < 0 &&
	     (errno == EROFS || errno == EACCES);
	free(dir);
	return ro;
}

/*
 * Opens a database in a directory that cannot be written.  A WAL database
 * needs its -shm file, which cannot be made there; nobody can write the
 * file either, so it is opened as immutable.
 */
static int open_read_only(const char *path, sqlite3 **db, struct err *e)
{
	struct buf uri;
	int rc;

	buf_init(&uri, 0);
	buf_appends(&uri, "file:");
	for (const char *p = path; *p; p++) {
		if (*p == '%' || *p == '?' || *p == '#')
			buf_printf(&uri, "%%%02X", (unsigned char)*p);
		else
			buf_append(&uri, p, 1);
	}
	buf_appends(&uri, "?mode=ro&immutable=1");
	rc = sqlite3_open_v2(uri.ptr, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	buf_release(&uri);
	if (rc != SQLITE_OK)
		return err_set(e, ERR_IO, "cannot open database '%s' read-only: %s",
			       path, *db ? sqlite3_errmsg(*db) : "out of memory");
	return 0;
}

int store_open(const char *path, sqlite3 **out, struct err *e)
{
	char *owned = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	int version = 0, n = (int)(sizeof(migrations) / sizeof(migrations[0]));

	*out = NULL;
	if (!path) {
		char *home = store_home();
		struct buf b;
		if (!home)
			return err_set(e, ERR_CONFIG,
				       "no data directory: set AICHAT_HOME or HOME");
		buf_init(&b, 0);
		buf_printf(&b, "%s/aichat.db", home);
		free(home);
		path = owned = buf_detach(&b);
	}
	if (make_parents(path) < 0) {
		err_set(e, ERR_IO, "cannot create the directory of '%s': %s", path,
			strerror(errno));
		goto fail;
	}
	if (read_only_home(path))
		goto read_only;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		err_set(e, ERR_IO, "cannot open database '%s': %s", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db, 10000);
	/* Turning a new database to WAL needs it to itself, and SQLite
	 * answers SQLITE_BUSY at once, not through the busy handler, while
	 * another process is opening it too: so retry, for up to the same
	 * 10 s. */
	for (int i = 0; i < 1000; i++) {
		int rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			break;
		usleep(10000);
	}
	if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		 "PRAGMA foreign_keys=ON;", path, e) < 0) {
		/* A full disk leaves no room for WAL's shared-memory file,
		 * but what is there can still be read. */
		int rc = sqlite3_errcode(db);
		if ((rc == SQLITE_FULL || rc == SQLITE_IOERR) &&
		    access(path, F_OK) == 0) {
			sqlite3_close(db);
			db = NULL;
			goto read_only;
		}
		goto fail;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (version > n) {
		err_set(e, ERR_CONFIG,
			"database '%s' is from a newer aichat (schema %d, this one knows %d)",
			path, version, n);
		goto fail;
	}
	while (version < n) {
		char pragma[64];
		int now = 0;
		/* One transaction per step, and the version read again inside
		 * it: another process may have migrated meanwhile. */
		if (exec(db, "BEGIN IMMEDIATE", path, e) < 0)
			goto fail;
		if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				now = sqlite3_column_int(st, 0);
			sqlite3_finalize(st);
		}
		if (now != version) {
			exec(db, "COMMIT", path, e);
			version = now;
			continue;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", version + 1);
		if (exec(db, migrations[version], path, e) < 0 ||
		    exec(db, pragma, path, e) < 0 || exec(db, "COMMIT", path, e) < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		version++;
	}
	free(owned);
	*out = db;
	return 0;
read_only:
	/* A read-only AICHAT_HOME (a read-only mount, a backup) or a full
	 * disk can still be read: history, -c, rag search.  Writes then
	 * fail with SQLite's own error, which callers report. */
	err_clear(e);
	if (open_read_only(path, &db, e) < 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (version != n) {
		err_set(e, ERR_IO,
			"database '%s' cannot be written and has schema %d, this aichat needs %d",
			path, version, n);
		goto fail;
	}
	free(owned);
	*out = db;
	return 0;
fail:
	sqlite3_close(db);
	free(owned);
	return -1;
}

const char *store_read_only_why(sqlite3 *db)
{
	const char *path = sqlite3_db_filename(db, "main");
	struct statvfs vfs;
	char *dir, *slash;
	const char *why = "its directory cannot be written";

	if (sqlite3_db_readonly(db, "main") != 1)
		return NULL;
	if (!path || !*path)
		return why;
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	if (statvfs(dir, &vfs) == 0 && !(vfs.f_flag & ST_RDONLY) &&
	    vfs.f_bavail == 0)
		why = "the disk is full";
	else if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
		why = "it is on a read-only file system";
	free(dir);
	return why;
}

/* ==== prepared statements kept per connection ==== */

/* A few hot statements (the ledger's insert) prepared once per
 * connection: SQLite's parser is a fifth of an insert.  Keyed by the
 * connection and the SQL text's address (a literal); a connection is
 * used by one thread at a time, and only its own entries are ever
 * touched on its behalf, so the lock guards the table only. */
#define STMT_CACHE 16

static struct stmt_entry {
	sqlite3 *db;
	const char *sql;
	sqlite3_stmt *st;
} stmt_cache[STMT_CACHE];
static pthread_mutex_t stmt_lock = PTHREAD_MUTEX_INITIALIZER;

sqlite3_stmt *store_stmt(sqlite3 *db, const char *sql)
{
	struct stmt_entry *free_slot = NULL;
	sqlite3_stmt *st = NULL;

	pthread_mutex_lock(&stmt_lock);
	for (int i = 0; i < STMT_CACHE; i++) {
		struct stmt_entry *c = &stmt_cache[i];
		if (c->db == db && c->sql == sql) {
			st = c->st;
			goto out;
		}
		if (!c->db && !free_slot)
			free_slot = c;
	}
	if (free_slot && sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					    &st, NULL) == SQLITE_OK) {
		free_slot->db = db;
		free_slot->sql = sql;
		free_slot->st = st;
	}
out:
	pthread_mutex_unlock(&stmt_lock);
	return st;
}

void store_stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

void store_close(sqlite3 *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&stmt_lock);
	for (int i = 0; i < STMT_CACHE; i++)
		if (stmt_cache[i].db == db) {
			sqlite3_finalize(stmt_cache[i].st);
			memset(&stmt_cache[i], 0, sizeof(stmt_cache[i]));
		}
	pthread_mutex_unlock(&stmt_lock);
	sqlite3_close(db);
}

int store_word_byte(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

char *store_fts_query(const char *text, const char *joiner)
{
	struct buf b;
	const unsigned char *p = (const unsigned char *)text;
	int words = 0;

	buf_init(&b, 0);
	while (*p && words < 64) {
		const unsigned char *s;
		if (!store_word_byte(*p)) {
			p++;
			continue;
		}
		for (s = p; *p && store_word_byte(*p); p++)
			;
		/* Only letters, digits and UTF-8 inside the quotes: no syntax. */
		buf_printf(&b, "%s\"%.*s\"", words ? joiner : "",
			   (int)(p - s > 100 ? 100 : p - s), (const char *)s);
		words++;
	}
	if (!words) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b);
}
