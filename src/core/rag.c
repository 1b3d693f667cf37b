/*
 * rag.c - the RAG service; see rag.h.
 *
 * Invariants: every chunk row belongs to one document of one collection,
 * and one FTS5 index mirrors it through the triggers of migration 8 (which
 * one: chunks.fts, from the collection's language), so deleting a document
 * (or a collection, by cascade) removes its text from the index.  A document's chunks are only ever
 * replaced all at once, inside the transaction that updates its hash.
 * Vectors are filled in afterwards (migration 4's chunks.embedding), so a
 * chunk may lack one: BM25 never depends on them.
 */
#include "aichat/rag.h"
#include "aichat/extract.h"
#include "aichat/store.h"
#include "aichat/xalloc.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== pure helpers ==== */

int rag_name_check(const char *name, struct err *e)
{
	size_t n = strlen(name), i;
	char shown[40];

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			break;
	}
	if (n >= 1 && n <= RAG_NAME_MAX && i == n)
		return 0;
	/* Quote a short, printable copy: the name may be anything. */
	for (i = 0; i < n && i < sizeof(shown) - 4; i++)
		shown[i] = isprint((unsigned char)name[i]) ? name[i] : '?';
	shown[i] = '\0';
	if (i < n)
		strcpy(shown + i, "...");
	return err_set(e, ERR_INVALID_REQUEST,
		       "invalid collection name '%s': use 1..%d characters of A-Z a-z 0-9 . _ -",
		       shown, RAG_NAME_MAX);
}

char *rag_fts_query(const char *text)
{
	return store_fts_query(text, " OR ");
}

uint64_t rag_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ==== chunking ==== */

struct atom {
	size_t start, end;
	int brk;                       /* a heading: start a new chunk here */
};

struct atoms {
	struct atom *v;
	size_t n, cap;
	int pending_brk;               /* a break whose atom was blank */
};

static int is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	       c == '\v';
}

static void add_atom(struct atoms *a, const char *t, size_t s, size_t e, int brk)
{
	while (s < e && is_blank((unsigned char)t[s]))
		s++;
	while (e > s && is_blank((unsigned char)t[e - 1]))
		e--;
	brk |= a->pending_brk;
	if (s == e) {
		a->pending_brk = brk;
		return;
	}
	a->pending_brk = 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	a->v[a->n].start = s;
	a->v[a->n].end = e;
	a->v[a->n].brk = brk;
	a->n++;
}

/* Pieces of at most size bytes, cut at spaces, else at a UTF-8 boundary. */
static void split_hard(struct atoms *a, const char *t, size_t s, size_t e,
		       size_t size, int brk)
{
	while (e - s > size) {
		size_t cut = s + size, w = cut;
		while (w > s && !is_blank((unsigned char)t[w]))
			w--;
		if (w > s) {
			cut = w;
		} else {
			while (cut > s + 1 && ((unsigned char)t[cut] & 0xC0) == 0x80)
				cut--;
		}
		add_atom(a, t, s, cut, brk);
		brk = 0;
		s = cut;
		while (s < e && is_blank((unsigned char)t[s]))
			s++;
	}
	add_atom(a, t, s, e, brk);
}

/* Sentences (ending at . ! or ? before a blank) of a paragraph; code
 * (sentences = 0) splits at line ends instead. */
static void split_units(struct atoms *a, const char *t, size_t s, size_t e,
			size_t size, int brk, int sentences)
{
	size_t u = s;

	for (size_t i = s; i < e; i++) {
		int end = sentences ?
			  (strchr(".!?", t[i]) && i + 1 < e && is_blank((unsigned char)t[i + 1])) :
			  t[i] == '\n';
		if (!end)
			continue;
		if (i + 1 - u > size)
			split_hard(a, t, u, i + 1, size, brk);
		else
			add_atom(a, t, u, i + 1, brk);
		brk = 0;
		u = i + 1;
	}
	if (e - u > size)
		split_hard(a, t, u, e, size, brk);
	else
		add_atom(a, t, u, e, brk);
}

/* A block (paragraph, heading or fenced code) as atoms. */
static void add_block(struct atoms *a, const char *t, size_t s, size_t e,
		      size_t size, int brk, int code)
{
	if (e - s <= size)
		add_atom(a, t, s, e, brk);
	else
		split_units(a, t, s, e, size, brk, !code);
}

/* Indentation of up to three spaces, then the rest of the line. */
static const char *line_body(const char *p, const char *end)
{
	for (int i = 0; i < 3 && p < end && *p == ' '; i++)
		p++;
	return p;
}

static int is_fence(const char *p, const char *end)
{
	p = line_body(p, end);
	return end - p >= 3 && (!strncmp(p, "```", 3) || !strncmp(p, "~~~", 3));
}

static int is_heading(const char *p, const char *end)
{
	int n = 0;

	p = line_body(p, end);
	while (p < end && *p == '#' && n < 7) {
		p++;
		n++;
	}
	return n >= 1 && n <= 6 && (p == end || *p == ' ' || *p == '\t');
}

static int is_blank_line(const char *p, const char *end)
{
	for (; p < end; p++)
		if (!is_blank((unsigned char)*p))
			return 0;
	return 1;
}

/* 1-based line of offset off, given the sorted offsets of the newlines. */
static int line_of(const size_t *nl, size_t nnl, size_t off)
{
	size_t lo = 0, hi = nnl;

	while (lo < hi) {       /* newlines before off */
		size_t mid = (lo + hi) / 2;
		if (nl[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int)lo + 1;
}

/*
 * Chunks t[from, len): the bytes before from are context, already chunked
 * (a window of a streamed file keeps the end of the one before, for the
 * overlap).  have_prev says a chunk came before; *prev_start is where it
 * began (its start before the overlap, or -1 when outside t) and on return
 * where the last chunk here began.  *fence says t[from] is inside a fenced
 * block; on return whether len is.
 */
static size_t chunk_range(const char *t, size_t len, size_t from, int have_prev,
			  long *prev_start, int *fence_open, size_t size,
			  size_t overlap, struct rag_span **out)
{
	struct atoms a = { 0 };
	struct rag_span *v = NULL;
	size_t *nl = NULL, nnl = 0, n = 0, cap = 0;
	size_t para = (size_t)-1, fence = *fence_open ? from : (size_t)-1, pos = from;
	size_t cur_s = 0, cur_e = 0, lo = *prev_start >= 0 ? (size_t)*prev_start + 1 : 0;
	int have = 0, cur_brk = 0, para_brk = 0;

	if (size < 1)
		size = 1;
	/* Blocks, line by line. */
	while (pos < len) {
		const char *p = t + pos, *nlp = memchr(p, '\n', len - pos);
		size_t eol = nlp ? (size_t)(nlp - t) : len;
		const char *end = t + eol;

		if (fence != (size_t)-1) {
			if (is_fence(p, end)) {
				add_block(&a, t, fence, eol, size, 0, 1);
				fence = (size_t)-1;
			}
		} else if (is_fence(p, end) || is_heading(p, end) ||
			   is_blank_line(p, end)) {
			if (para != (size_t)-1)
				add_block(&a, t, para, pos, size, para_brk, 0);
			para = (size_t)-1;
			para_brk = 0;
			if (is_fence(p, end))
				fence = pos;
			else if (is_heading(p, end))
				add_atom(&a, t, pos, eol, 1);
		} else if (para == (size_t)-1) {
			para = pos;
		}
		pos = eol + 1;
	}
	*fence_open = fence != (size_t)-1;
	if (fence != (size_t)-1)
		add_block(&a, t, fence, len, size, 0, 1);
	if (para != (size_t)-1)
		add_block(&a, t, para, len, size, para_brk, 0);

	for (size_t i = 0; i < len; i++) {
		if (t[i] != '\n')
			continue;
		if (nnl % 1024 == 0)
			nl = xrealloc(nl, (nnl + 1024) * sizeof(*nl));
		nl[nnl++] = i;
	}

	/* Pack atoms into chunks; a heading starts a new one. */
	for (size_t i = 0; i <= a.n; i++) {
		int flush = i == a.n ||
			    (have && (a.v[i].brk || a.v[i].end - cur_s > size));
		if (flush && have) {
			size_t s = cur_s;
			if ((n > 0 || have_prev) && overlap > 0 && !cur_brk) {
				size_t o = s > overlap ? s - overlap : 0;
				if (o < lo)
					o = lo;
				/* Start on a word, not inside one. */
				while (o < s && o > 0 && !is_blank((unsigned char)t[o - 1]))
					o++;
				while (o < s && is_blank((unsigned char)t[o]))
					o++;
				s = o;
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n].off = s;
			v[n].len = cur_e - s;
			v[n].line_first = line_of(nl, nnl, s);
			v[n].line_last = line_of(nl, nnl, cur_e - 1);
			n++;
			lo = cur_s + 1;
			*prev_start = (long)cur_s;
			have = 0;
		}
		if (i == a.n)
			break;
		if (!have) {
			cur_s = a.v[i].start;
			cur_brk = a.v[i].brk;
			have = 1;
		}
		cur_e = a.v[i].end;
	}
	free(a.v);
	free(nl);
	*out = v;
	return n;
}

size_t rag_chunk(const char *t, size_t len, size_t size, size_t overlap,
		 struct rag_span **out)
{
	long prev = -1;
	int fence = 0;

	return chunk_range(t, len, 0, 0, &prev, &fence, size, overlap, out);
}

/* ==== the store ==== */

static int db_fail(sqlite3 *db, const char *what, struct err *e)
{
	return err_set(e, ERR_IO, "%s: %s", what, sqlite3_errmsg(db));
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct err *e)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	*st = NULL;
	return db_fail(db, "database", e);
}

static int run(sqlite3 *db, const char *sql, struct err *e)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	return db_fail(db, "database", e);
}

/* Every count: what list and info show. */
#define COLLECTION_COLUMNS \
	"SELECT id, name, created_at, chunk_size, overlap," \
	" (SELECT count(*) FROM documents d WHERE d.collection_id = c.id)," \
	" (SELECT count(*) FROM chunks k WHERE k.collection_id = c.id)," \
	" (SELECT coalesce(sum(size), 0) FROM documents d WHERE d.collection_id = c.id)," \
	" coalesce(embed_model, ''), coalesce(dim, 0)," \
	" (SELECT count(*) FROM chunks k INDEXED BY chunks_vectors" \
	"  WHERE k.collection_id = c.id AND k.embedding IS NOT NULL)," \
	" coalesce(language, '') FROM collections c"

/* Whether there are chunks and vectors, not how many: counting a
 * million chunks would cost a search more than the search. */
#define COLLECTION_HEAD \
	"SELECT id, name, created_at, chunk_size, overlap, 0," \
	" EXISTS (SELECT 1 FROM chunks k WHERE k.collection_id = c.id), 0," \
	" coalesce(embed_model, ''), coalesce(dim, 0)," \
	" EXISTS (SELECT 1 FROM chunks k INDEXED BY chunks_vectors" \
	"  WHERE k.collection_id = c.id AND k.embedding IS NOT NULL)," \
	" coalesce(language, '') FROM collections c"

static void collection_row(sqlite3_stmt *st, struct rag_collection *c)
{
	const unsigned char *s;

	memset(c, 0, sizeof(*c));
	c->id = sqlite3_column_int64(st, 0);
	if ((s = sqlite3_column_text(st, 1)))
		snprintf(c->name, sizeof(c->name), "%s", (const char *)s);
	if ((s = sqlite3_column_text(st, 2)))
		snprintf(c->created_at, sizeof(c->created_at), "%s", (const char *)s);
	c->chunk_size = sqlite3_column_int(st, 3);
	c->overlap = sqlite3_column_int(st, 4);
	c->documents = (long)sqlite3_column_int64(st, 5);
	c->chunks = (long)sqlite3_column_int64(st, 6);
	c->bytes = sqlite3_column_int64(st, 7);
	if ((s = sqlite3_column_text(st, 8)))
		snprintf(c->embed_model, sizeof(c->embed_model), "%s", (const char *)s);
	c->dim = sqlite3_column_int(st, 9);
	c->vectors = (long)sqlite3_column_int64(st, 10);
	if ((s = sqlite3_column_text(st, 11)))
		snprintf(c->language, sizeof(c->language), "%s", (const char *)s);
}

static int collection_get(sqlite3 *db, const char *name, int counts,
			  struct rag_collection *c, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (rag_name_check(name, e) < 0)
		return -1;
	if (prep(db, counts ? COLLECTION_COLUMNS " WHERE name = ?1" :
		 COLLECTION_HEAD " WHERE name = ?1", &st, e) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		collection_row(st, c);
	else if (rc == SQLITE_DONE)
		err_set(e, ERR_NOT_FOUND,
			"no collection '%s' (see 'aichat rag list'; create one with 'aichat rag index -c %s PATH')",
			name, name);
	else
		db_fail(db, "database", e);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int rag_collection_get(sqlite3 *db, const char *name, struct rag_collection *c,
		       struct err *e)
{
	return collection_get(db, name, 0, c, e);
}

int rag_collection_count(sqlite3 *db, const char *name,
			 struct rag_collection *c, struct err *e)
{
	return collection_get(db, name, 1, c, e);
}

int rag_language_check(const char *language, struct err *e)
{
	if (!strcmp(language, "en") || !strcmp(language, "none"))
		return 0;
	return err_set(e, ERR_INVALID_REQUEST,
		       "invalid value '%.32s' for '--language': must be one of en, none",
		       language);
}

/* The chunks.fts of a collection's language: which index holds them. */
static int fts_of(const char *language)
{
	return !strcmp(language, "en") ? 1 : !strcmp(language, "none") ? 2 : 0;
}

int rag_collection_ensure(sqlite3 *db, const char *name, int chunk_size,
			  int overlap, const char *language,
			  struct rag_collection *c, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (rag_name_check(name, e) < 0 ||
	    (language && rag_language_check(language, e) < 0))
		return -1;
	if (prep(db, "INSERT INTO collections (name, created_at, chunk_size, overlap, language)"
		 " VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?2, ?3, ?4)"
		 " ON CONFLICT (name) DO NOTHING", &st, e) < 0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, chunk_size);
	sqlite3_bind_int(st, 3, overlap);
	if (language)
		sqlite3_bind_text(st, 4, language, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, "cannot create the collection", e);
	return rag_collection_get(db, name, c, e);
}

int rag_collection_set_language(sqlite3 *db, struct rag_collection *c,
				const char *language, struct err *e)
{
	sqlite3_stmt *lang = NULL, *move = NULL;
	int rc = -1;

	if (rag_language_check(language, e) < 0)
		return -1;
	if (prep(db, "UPDATE collections SET language = ?1 WHERE id = ?2", &lang, e) < 0 ||
	    prep(db, "UPDATE chunks SET fts = ?1 WHERE collection_id = ?2", &move, e) < 0)
		goto cleanup;
	sqlite3_bind_text(lang, 1, language, -1, SQLITE_STATIC);
	sqlite3_bind_int64(lang, 2, c->id);
	sqlite3_bind_int(move, 1, fts_of(language));
	sqlite3_bind_int64(move, 2, c->id);
	if (run(db, "BEGIN IMMEDIATE", e) < 0)
		goto cleanup;
	if (sqlite3_step(lang) != SQLITE_DONE || sqlite3_step(move) != SQLITE_DONE) {
		db_fail(db, "cannot change the language", e);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto cleanup;
	}
	if (run(db, "COMMIT", e) < 0)
		goto cleanup;
	snprintf(c->language, sizeof(c->language), "%s", language);
	rc = 0;
cleanup:
	sqlite3_finalize(lang);
	sqlite3_finalize(move);
	return rc;
}

int rag_collection_set_chunking(sqlite3 *db, struct rag_collection *c,
				int chunk_size, int overlap, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (prep(db, "UPDATE collections SET chunk_size = ?1, overlap = ?2 WHERE id = ?3",
		 &st, e) < 0)
		return -1;
	sqlite3_bind_int(st, 1, chunk_size);
	sqlite3_bind_int(st, 2, overlap);
	sqlite3_bind_int64(st, 3, c->id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, "cannot update the collection", e);
	c->chunk_size = chunk_size;
	c->overlap = overlap;
	return 0;
}

int rag_collection_list(sqlite3 *db, struct rag_collection **out, size_t *n,
			struct err *e)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (prep(db, COLLECTION_COLUMNS " ORDER BY name", &st, e) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 8;
			*out = xrealloc(*out, cap * sizeof(**out));
		}
		collection_row(st, &(*out)[(*n)++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_fail(db, "database", e);
	return 0;
}

int rag_collection_rm(sqlite3 *db, const char *name, struct err *e)
{
	struct rag_collection c;
	sqlite3_stmt *st;
	int rc;

	if (rag_collection_get(db, name, &c, e) < 0)
		return -1;
	if (prep(db, "DELETE FROM collections WHERE id = ?1", &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c.id);
	if (run(db, "BEGIN IMMEDIATE", e) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		db_fail(db, "cannot remove the collection", e);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return run(db, "COMMIT", e);
}

/* ==== indexing ==== */

/*
 * Counts in *bad the bytes of p[0, n) that are not UTF-8 and, when fix,
 * replaces each with '?'.  UTF-8 is strict (RFC 3629): overlong forms,
 * surrogates and code points past U+10FFFF are not, since the chunks go
 * out as JSON text.  Returns how many bytes it looked at: all of them
 * when final, else it stops before a sequence the end cuts short (the
 * next read completes it).
 */
static size_t utf8_fix(char *p, size_t n, int final, int fix, size_t *bad)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 :
			   (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
		/* The second byte's range: narrower after E0, ED, F0, F4. */
		unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
		unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;

		for (size_t j = 1; k && j < k; j++) {
			unsigned char cc;

			if (i + j >= n) {
				if (!final)
					return i;
				k = 0;
				break;
			}
			cc = (unsigned char)p[i + j];
			if (j == 1 ? cc < lo || cc > hi : (cc & 0xC0) != 0x80)
				k = 0;
		}
		if (!k) {
			if (fix)
				p[i] = '?';
			++*bad;
			k = 1;
		}
		i += k;
	}
	return i;
}

/* Fills e with why a file is skipped (code ERR_OK: not a failure); 1. */
static int skip(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int skip(struct err *e, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = ERR_OK;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return 1;
}

static ssize_t read_fd(void *ctx, char *p, size_t n)
{
	ssize_t r;

	while ((r = read(*(int *)ctx, p, n)) < 0 && errno == EINTR)
		;
	return r;
}

/* Pass one, in pieces: the hash of the file, and whether it is text (no
 * NUL byte, at most one byte in 16 not UTF-8).  1 = binary (reason in e,
 * code ERR_OK), 0 = text, -1 = error. */
static int scan_file(int fd, const char *path, uint64_t seed, uint64_t *hash,
		     struct err *e)
{
	char piece[65536 + 4];
	size_t carry = 0, bad = 0, total = 0, done;
	ssize_t r;

	*hash = seed;
	while ((r = read_fd(&fd, piece + carry, sizeof(piece) - 4)) != 0) {
		if (r < 0)
			return err_set(e, ERR_IO, "cannot read '%s': %s", path,
				       strerror(errno));
		if (memchr(piece + carry, '\0', (size_t)r))
			return skip(e, "'%s' looks binary, skipped", path);
		*hash = rag_hash(*hash, piece + carry, (size_t)r);
		total += (size_t)r;
		carry += (size_t)r;
		done = utf8_fix(piece, carry, 0, 0, &bad);
		memmove(piece, piece + done, carry - done);
		carry -= done;
	}
	utf8_fix(piece, carry, 1, 0, &bad);
	if (bad * 16 > total)
		return skip(e, "'%s' looks binary, skipped", path);
	return 0;
}

/* Pass one for a file read through a converter (gzip, PDF): the hash
 * of its bytes only; what they hold is found when they are converted. */
static int hash_file(int fd, const char *path, uint64_t seed, uint64_t *hash,
		     struct err *e)
{
	char piece[65536];
	ssize_t r;

	*hash = seed;
	while ((r = read_fd(&fd, piece, sizeof(piece))) != 0) {
		if (r < 0)
			return err_set(e, ERR_IO, "cannot read '%s': %s", path,
				       strerror(errno));
		*hash = rag_hash(*hash, piece, (size_t)r);
	}
	return 0;
}

/* Where to end a window of w[from, end) (a UTF-8 boundary), fence
 * telling whether from is inside a fenced block: after the last blank line
 * outside a fence when it is in the second half, else after the last
 * line, else (one line longer than the window) at end. */
static size_t window_cut(const char *w, size_t from, size_t end, int fence)
{
	size_t pos = from, para = 0, line = 0;

	while (pos < end) {
		const char *p = w + pos, *nl = memchr(p, '\n', end - pos);
		if (!nl)
			break;
		if (is_fence(p, nl))
			fence = !fence;
		else if (!fence && is_blank_line(p, nl))
			para = (size_t)(nl - w) + 1;
		line = pos = (size_t)(nl - w) + 1;
	}
	if (para && para - from > (end - from) / 2)
		return para;
	return line ? line : end;
}

int rag_chunk_stream(rag_read_fn rd, void *rctx, size_t win, size_t size,
		     size_t overlap, rag_emit_fn emit, void *ectx,
		     uint64_t *hash, size_t *nchunks)
{
	size_t wlen = 0, fixed = 0, from = 0, bad = 0;
	long prev = -1, line_base = 0;
	int have_prev = 0, fence = 0, eof = 0, rc = 0;
	char *w;

	/* Room for the kept context and a good deal more. */
	if (win < 4 * overlap + 256)
		win = 4 * overlap + 256;
	w = xmalloc(win);
	*hash = RAG_HASH_INIT;
	*nchunks = 0;
	for (;;) {
		struct rag_span *spans = NULL;
		size_t cut, keep, n;

		while (!eof && wlen < win) {
			ssize_t r = rd(rctx, w + wlen, win - wlen);
			if (r < 0) {
				rc = RAG_STREAM_READ;
				goto cleanup;
			}
			if (r == 0) {
				eof = 1;
				break;
			}
			if (memchr(w + wlen, '\0', (size_t)r)) {
				rc = 1;
				goto cleanup;
			}
			*hash = rag_hash(*hash, w + wlen, (size_t)r);
			wlen += (size_t)r;
		}
		fixed += utf8_fix(w + fixed, wlen - fixed, eof, 1, &bad);
		cut = eof ? wlen : window_cut(w, from, fixed, fence);
		n = chunk_range(w, cut, from, have_prev, &prev, &fence, size,
				overlap, &spans);
		for (size_t i = 0; i < n && rc == 0; i++)
			if (emit(ectx, w + spans[i].off, spans[i].len,
				 (int)line_base + spans[i].line_first,
				 (int)line_base + spans[i].line_last) < 0)
				rc = RAG_STREAM_EMIT;
		free(spans);
		*nchunks += n;
		have_prev |= n > 0;
		if (rc < 0 || (eof && cut == wlen))
			break;
		/* Keep up to overlap bytes before the cut, from a word start. */
		keep = cut > overlap ? cut - overlap : 0;
		while (keep < cut && keep > 0 && !is_blank((unsigned char)w[keep - 1]))
			keep++;
		for (size_t i = 0; i < keep; i++)
			line_base += w[i] == '\n';
		prev = prev >= (long)keep ? prev - (long)keep : -1;
		memmove(w, w + keep, wlen - keep);
		wlen -= keep;
		fixed -= keep;
		from = cut - keep;
	}
cleanup:
	free(w);
	return rc;
}

/* The stored hash of path in c into hash (empty when none). */
static int stored_hash(sqlite3 *db, const struct rag_collection *c,
		       const char *path, char *hash, size_t size, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	hash[0] = '\0';
	if (prep(db, "SELECT hash FROM documents WHERE collection_id = ?1 AND path = ?2",
		 &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		snprintf(hash, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(db, "database", e);
	return 0;
}

static void hash_text(char *out, size_t size, uint64_t h)
{
	snprintf(out, size, "fnv1a64:%016llx", (unsigned long long)h);
}

/* Where the chunks of a streamed document go. */
struct chunk_sink {
	sqlite3_stmt *ins;
	int64_t doc, coll, seq;
	int fts;                       /* chunks.fts of the collection */
	const char *path;
	char title[256];               /* from the first chunk */
	char section[128];             /* the heading the next chunk is under */
	struct buf head;
};

/* Copies the line at p (up to end) into out, trimmed, at most size - 1
 * bytes; returns the start of the next line. */
static const char *copy_line(const char *p, const char *end, char *out,
			     size_t size)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
	size_t n;

	while (p < e && (*p == '#' || is_blank((unsigned char)*p)))
		p++;
	while (e > p && is_blank((unsigned char)e[-1]))
		e--;
	n = (size_t)(e - p) < size - 1 ? (size_t)(e - p) : size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return nl ? nl + 1 : end;
}

/* The start of the line after the one at p. */
static const char *next_line(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl ? nl + 1 : end;
}

/* Whether the line at p holds only blanks. */
static int line_blank(const char *p, const char *end)
{
	for (; p < end && *p != '\n'; p++)
		if (!is_blank((unsigned char)*p))
			return 0;
	return 1;
}

/* The first line at or after p that is not blank (end when none). */
static const char *skip_blank(const char *p, const char *end)
{
	while (p < end && line_blank(p, end))
		p = next_line(p, end);
	return p;
}

/*
 * A document's title, from its first chunk: its first line (a heading's
 * text without the marks); for a manual page (a NAME section next), the
 * line under it too ("curl(1) curl - transfer a URL").
 */
static void find_title(struct chunk_sink *k, const char *text, size_t len)
{
	const char *end = text + len, *p = skip_blank(text, end);
	size_t n;

	k->title[0] = '\0';
	if (p == end)
		return;
	copy_line(p, end, k->title, sizeof(k->title));
	if (!is_heading(p, end))
		return;
	p = skip_blank(next_line(p, end), end);
	if (p < end && !strncmp(line_body(p, end), "## NAME", 7)) {
		p = skip_blank(next_line(p, end), end);
		n = strlen(k->title);
		if (p < end && n + 2 < sizeof(k->title)) {
			k->title[n] = ' ';
			copy_line(p, end, k->title + n + 1, sizeof(k->title) - n - 1);
		}
	}
}

/* The head of the next chunk: the title, the file's name and the folder
 * it is in, and the section the chunk starts in. */
static void make_head(struct chunk_sink *k)
{
	const char *base = strrchr(k->path, '/'), *dir = base;

	base = base ? base + 1 : k->path;
	while (dir && dir > k->path && dir[-1] != '/')
		dir--;
	buf_clear(&k->head);
	buf_printf(&k->head, "%s\n%.*s%s\n%s", k->title,
		   dir ? (int)(base - dir) : 0, dir ? dir : "", base, k->section);
}

static int insert_chunk(void *ctx, const char *text, size_t len, int first,
			int last)
{
	struct chunk_sink *k = ctx;
	const char *p, *end = text + len;

	if (k->seq == 0)
		find_title(k, text, len);
	make_head(k);
	/* The last heading in this chunk is the next one's section. */
	for (p = text; p < end; p = next_line(p, end))
		if (is_heading(p, end))
			copy_line(p, end, k->section, sizeof(k->section));
	sqlite3_reset(k->ins);
	sqlite3_bind_int64(k->ins, 1, k->doc);
	sqlite3_bind_int64(k->ins, 2, k->coll);
	sqlite3_bind_int64(k->ins, 3, k->seq++);
	sqlite3_bind_text(k->ins, 4, text, (int)len, SQLITE_STATIC);
	sqlite3_bind_int(k->ins, 5, first);
	sqlite3_bind_int(k->ins, 6, last);
	sqlite3_bind_text(k->ins, 7, k->head.ptr, (int)k->head.len, SQLITE_STATIC);
	if (k->fts)
		sqlite3_bind_int(k->ins, 8, k->fts);
	else
		sqlite3_bind_null(k->ins, 8);
	return sqlite3_step(k->ins) == SQLITE_DONE ? 0 : -1;
}

/*
 * Pass two: replaces the document and its chunks in one transaction,
 * chunking the text of fd (extract.h) window by window as it is read
 * (memory stays bounded whatever the file's size).  For plain text the
 * hash stored is that of the bytes read here, in case the file changed
 * since pass one.  1 = no text after all: binary, or the converter's
 * reason (e says why, res->skip its class; nothing stored); -2 = it could
 * not be read (e says so); -1 = the store failed.
 */
static int store_document(sqlite3 *db, const struct rag_collection *c,
			  const char *path, const char *hash, int plain, int fd,
			  const struct stat *sb, size_t max, struct rag_file *res,
			  struct err *e)
{
	sqlite3_stmt *doc = NULL, *del = NULL, *upd = NULL;
	struct chunk_sink sink = { 0 };
	struct extract *x = extract_open(fd, path, max);
	const char *why;
	uint64_t h;
	char now[40];
	int rc = -1, r;

	if (prep(db, "INSERT INTO documents (collection_id, path, hash, size, mtime, indexed_at)"
		 " VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))"
		 " ON CONFLICT (collection_id, path) DO UPDATE SET hash = excluded.hash,"
		 " size = excluded.size, mtime = excluded.mtime, indexed_at = excluded.indexed_at"
		 " RETURNING id", &doc, e) < 0 ||
	    prep(db, "DELETE FROM chunks WHERE document_id = ?1", &del, e) < 0 ||
	    prep(db, "UPDATE documents SET hash = ?1 WHERE id = ?2", &upd, e) < 0 ||
	    prep(db, "INSERT INTO chunks (document_id, collection_id, seq, text, line_first,"
		 " line_last, head, fts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &sink.ins, e) < 0)
		goto cleanup;
	sink.fts = fts_of(c->language);
	sink.path = path;
	buf_init(&sink.head, 0);
	if (run(db, "BEGIN IMMEDIATE", e) < 0)
		goto cleanup;
	sqlite3_bind_int64(doc, 1, c->id);
	sqlite3_bind_text(doc, 2, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(doc, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(doc, 4, (sqlite3_int64)sb->st_size);
	sqlite3_bind_int64(doc, 5, (sqlite3_int64)sb->st_mtime);
	if (sqlite3_step(doc) != SQLITE_ROW)
		goto rollback;
	sink.doc = sqlite3_column_int64(doc, 0);
	sink.coll = c->id;
	sqlite3_reset(doc);
	sqlite3_bind_int64(del, 1, sink.doc);
	if (sqlite3_step(del) != SQLITE_DONE)
		goto rollback;
	r = rag_chunk_stream(extract_read, x, RAG_WINDOW, (size_t)c->chunk_size,
			     (size_t)c->overlap, insert_chunk, &sink, &h, &res->nchunks);
	if (r > 0) {
		res->skip = "binary";
		rc = skip(e, "'%s' looks binary, skipped", path);
		goto rollback_quiet;
	}
	if (r == RAG_STREAM_READ && (why = extract_why(x, &res->skip))) {
		rc = skip(e, "'%s' %s, skipped", path, why);
		goto rollback_quiet;
	}
	if (r == RAG_STREAM_READ) {
		err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		rc = -2;
		goto cleanup;
	}
	if (r < 0)
		goto rollback;
	hash_text(now, sizeof(now), h);
	if (plain && strcmp(now, hash)) {
		sqlite3_bind_text(upd, 1, now, -1, SQLITE_STATIC);
		sqlite3_bind_int64(upd, 2, sink.doc);
		if (sqlite3_step(upd) != SQLITE_DONE)
			goto rollback;
	}
	if (run(db, "COMMIT", e) < 0)
		goto rollback_quiet;
	snprintf(res->note, sizeof(res->note), "%s", extract_note(x));
	rc = 0;
	goto cleanup;
rollback:
	db_fail(db, "cannot store the chunks", e);
rollback_quiet:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
cleanup:
	extract_close(x);
	sqlite3_finalize(doc);
	sqlite3_finalize(del);
	sqlite3_finalize(upd);
	sqlite3_finalize(sink.ins);
	buf_release(&sink.head);
	return rc;
}

/* The hash of a converted file starts from this tag, so that files
 * indexed before they were converted (or by an older converter) are
 * indexed again.  Plain text keeps RAG_HASH_INIT. */
#define EXTRACT_HASH_TAG "aichat-extract-1"

int rag_index_file(sqlite3 *db, const struct rag_collection *c,
		   const char *path, int force, size_t max, struct rag_file *res,
		   struct err *e)
{
	struct stat sb;
	uint64_t h, seed = RAG_HASH_INIT;
	char hash[40], old[64], head[4096];
	ssize_t nh;
	enum extract_kind kind;
	int fd, rc, gz;

	memset(res, 0, sizeof(*res));
	res->outcome = RAG_SKIPPED;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0) {
		rc = err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(sb.st_mode)) {
		res->skip = "not a regular file";
		skip(e, "'%s' is not a regular file, skipped", path);
		rc = 0;
		goto cleanup;
	}
	if ((uint64_t)sb.st_size > max) {
		res->skip = "too large";
		skip(e, "'%s' is larger than %zu bytes (--max-file-size), skipped", path, max);
		rc = 0;
		goto cleanup;
	}
	if ((nh = pread(fd, head, sizeof(head), 0)) < 0) {
		rc = err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	gz = extract_is_gzip((const unsigned char *)head, (size_t)nh);
	kind = gz ? EXTRACT_TEXT : extract_kind_of(path, head, (size_t)nh);
	if (gz || kind != EXTRACT_TEXT)
		seed = rag_hash(seed, EXTRACT_HASH_TAG, strlen(EXTRACT_HASH_TAG));
	if (gz || kind == EXTRACT_PDF)
		rc = hash_file(fd, path, seed, &h, e);
	else if ((rc = scan_file(fd, path, seed, &h, e)) > 0)
		res->skip = "binary";
	if (rc != 0) {
		rc = rc > 0 ? 0 : -1;
		goto cleanup;
	}
	hash_text(hash, sizeof(hash), h);
	if ((rc = stored_hash(db, c, path, old, sizeof(old), e)) < 0)
		goto cleanup;
	if (old[0] && !strcmp(old, hash) && !force) {
		res->outcome = RAG_UNCHANGED;
		goto cleanup;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		rc = err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		goto cleanup;
	}
	rc = store_document(db, c, path, hash, !gz && kind == EXTRACT_TEXT, fd, &sb,
			    max, res, e);
	if (rc > 0) {
		res->nchunks = 0;
		rc = 0;
		goto cleanup;
	}
	if (rc < 0) {
		char why[sizeof(e->msg)];
		res->nchunks = 0;
		if (e && rc == -1) {
			memcpy(why, e->msg, sizeof(why));
			err_set(e, ERR_IO, "cannot index '%s': %s", path, why);
		}
		rc = -1;
		goto cleanup;
	}
	res->outcome = old[0] ? RAG_UPDATED : RAG_ADDED;
cleanup:
	close(fd);
	return rc;
}

int rag_prune(sqlite3 *db, const struct rag_collection *c, size_t *removed,
	      struct err *e)
{
	sqlite3_stmt *sel = NULL, *del = NULL;
	int64_t *gone = NULL;
	size_t n = 0, cap = 0;
	int rc = -1, r;

	*removed = 0;
	if (prep(db, "SELECT id, path FROM documents WHERE collection_id = ?1", &sel, e) < 0 ||
	    prep(db, "DELETE FROM documents WHERE id = ?1", &del, e) < 0)
		goto cleanup;
	sqlite3_bind_int64(sel, 1, c->id);
	while ((r = sqlite3_step(sel)) == SQLITE_ROW) {
		struct stat sb;
		const char *p = (const char *)sqlite3_column_text(sel, 1);
		if (stat(p, &sb) == 0 || errno != ENOENT)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			gone = xrealloc(gone, cap * sizeof(*gone));
		}
		gone[n++] = sqlite3_column_int64(sel, 0);
	}
	if (r != SQLITE_DONE) {
		db_fail(db, "database", e);
		goto cleanup;
	}
	if (!n) {
		rc = 0;
		goto cleanup;
	}
	if (run(db, "BEGIN IMMEDIATE", e) < 0)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, gone[i]);
		if (sqlite3_step(del) != SQLITE_DONE) {
			db_fail(db, "cannot prune", e);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto cleanup;
		}
	}
	if (run(db, "COMMIT", e) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto cleanup;
	}
	*removed = n;
	rc = 0;
cleanup:
	sqlite3_finalize(sel);
	sqlite3_finalize(del);
	free(gone);
	return rc;
}

int rag_documents(sqlite3 *db, const struct rag_collection *c, char ***paths,
		  size_t *n, struct err *e)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r;

	*paths = NULL;
	*n = 0;
	if (prep(db, "SELECT path FROM documents WHERE collection_id = ?1 ORDER BY path",
		 &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*paths = xrealloc(*paths, cap * sizeof(**paths));
		}
		(*paths)[(*n)++] = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		rag_paths_free(*paths, *n);
		*paths = NULL;
		*n = 0;
		return db_fail(db, "database", e);
	}
	return 0;
}

void rag_paths_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* ==== retrieval ==== */

/* One line: runs of blanks become one space. */
static char *one_line(const char *s)
{
	struct buf b;
	int space = 0;

	buf_init(&b, 0);
	for (; s && *s; s++) {
		if (is_blank((unsigned char)*s)) {
			space = b.len > 0;
			continue;
		}
		if (space)
			buf_putc(&b, ' ');
		space = 0;
		buf_putc(&b, *s);
	}
	return buf_detach(&b);
}

void rag_hits_free(struct rag_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(hits[i].path);
		free(hits[i].snippet);
		free(hits[i].text);
	}
	free(hits);
}

void rag_prompt(struct buf *b, const char *question, const struct rag_hit *hits,
		size_t n)
{
	buf_appends(b, "Answer the question using only the numbered sources below. "
		    "Cite the sources you use as [n] right after the statements they "
		    "support. If the sources do not hold the answer, say so.\n\n"
		    "Sources:\n\n");
	for (size_t i = 0; i < n; i++)
		buf_printf(b, "[%zu] %s:%d-%d\n%s\n\n", i + 1, hits[i].path,
			   hits[i].line_first, hits[i].line_last, hits[i].text);
	buf_printf(b, "Question: %s\n", question);
}

/* ==== vectors ==== */

double rag_cosine(const float *a, const float *b, int dim)
{
	double ab = 0, aa = 0, bb = 0;

	for (int i = 0; i < dim; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	if (aa <= 0 || bb <= 0)
		return 0;
	return ab / (sqrt(aa) * sqrt(bb));
}

void rag_normalize(float *v, int dim)
{
	double norm = 0;

	for (int i = 0; i < dim; i++)
		norm += (double)v[i] * v[i];
	if (norm <= 0)
		return;
	norm = sqrt(norm);
	for (int i = 0; i < dim; i++)
		v[i] = (float)(v[i] / norm);
}

/* An id to order: by key descending, then by tie ascending, then as
 * given (pos). */
struct ranked {
	int64_t id;
	double score, key, tie;
	size_t pos;
};

static int by_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? 1 : -1;
	if (x->tie != y->tie)
		return x->tie > y->tie ? 1 : -1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sorts r[0..n) by by_rank() and writes the ids and scores in order. */
static void sort_ranked(struct ranked *r, size_t n, int64_t *ids, double *scores)
{
	qsort(r, n, sizeof(*r), by_rank);
	for (size_t i = 0; i < n; i++) {
		ids[i] = r[i].id;
		scores[i] = r[i].score;
	}
}

size_t rag_rrf(const int64_t *a, size_t na, const int64_t *b, size_t nb,
	       int k, int64_t *ids, double *scores)
{
	struct ranked *r = xmalloc((na + nb + 1) * sizeof(*r));
	size_t n = 0;

	/* The lists are short (tens of ids): a linear look-up is enough.
	 * key: the fused score; tie: the best single rank. */
	for (size_t i = 0; i < na; i++, n++) {
		r[n].id = a[i];
		r[n].key = r[n].score = 1.0 / (k + (double)(i + 1));
		r[n].tie = (double)(i + 1);
		r[n].pos = n;
	}
	for (size_t i = 0; i < nb; i++) {
		size_t j;
		for (j = 0; j < n && r[j].id != b[i]; j++)
			;
		if (j == n) {
			r[n].id = b[i];
			r[n].score = 0;
			r[n].tie = (double)(i + 1);
			r[n].pos = n;
			n++;
		} else if (i + 1 < r[j].tie) {
			r[j].tie = (double)(i + 1);
		}
		r[j].score += 1.0 / (k + (double)(i + 1));
		r[j].key = r[j].score;
	}
	sort_ranked(r, n, ids, scores);
	free(r);
	return n;
}

int rag_collection_set_embed_model(sqlite3 *db, struct rag_collection *c,
				   const char *model, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (!c->embed_model[0]) {
		if (prep(db, "UPDATE collections SET embed_model = ?1"
			 " WHERE id = ?2 AND embed_model IS NULL", &st, e) < 0)
			return -1;
		sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, c->id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return db_fail(db, "cannot update the collection", e);
		/* Read back: another process may have set another model. */
		char name[sizeof(c->name)];
		memcpy(name, c->name, sizeof(name));
		if (rag_collection_get(db, name, c, e) < 0)
			return -1;
	}
	if (strcmp(c->embed_model, model))
		return err_set(e, ERR_INVALID_REQUEST,
			       "collection '%s' uses embedding model '%s', not '%.128s': its vectors cannot be mixed (index into another collection, or remove this one with 'aichat rag rm %s')",
			       c->name, c->embed_model, model, c->name);
	return 0;
}

int rag_missing_vectors(sqlite3 *db, const struct rag_collection *c,
			int64_t after, size_t max, struct rag_pending **out,
			size_t *n, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	*out = xcalloc(max ? max : 1, sizeof(**out));
	*n = 0;
	if (prep(db, "SELECT id, text FROM chunks WHERE collection_id = ?1"
		 " AND embedding IS NULL AND id > ?2 ORDER BY id LIMIT ?3", &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
		(*out)[*n].id = sqlite3_column_int64(st, 0);
		(*out)[*n].text = xstrdup((const char *)sqlite3_column_text(st, 1));
		++*n;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return db_fail(db, "database", e);
	return 0;
}

void rag_pending_free(struct rag_pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].text);
	free(p);
}

int rag_count_missing(sqlite3 *db, const struct rag_collection *c,
		      long *missing, struct err *e)
{
	sqlite3_stmt *st;
	int r;

	*missing = 0;
	if (prep(db, "SELECT count(*) FROM chunks WHERE collection_id = ?1"
		 " AND embedding IS NULL", &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*missing = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r == SQLITE_ROW ? 0 : db_fail(db, "database", e);
}

int rag_store_vectors(sqlite3 *db, struct rag_collection *c, const char *model,
		      int dim, const int64_t *ids, const float *vecs,
		      const unsigned char *ok, size_t n, size_t *stored,
		      struct err *e)
{
	sqlite3_stmt *get = NULL, *set = NULL, *upd = NULL;
	int rc = -1, have = 0;
	char have_model[256] = "";

	*stored = 0;
	if (prep(db, "SELECT coalesce(embed_model, ''), coalesce(dim, 0)"
		 " FROM collections WHERE id = ?1", &get, e) < 0 ||
	    prep(db, "UPDATE collections SET embed_model = ?1, dim = ?2 WHERE id = ?3",
		 &set, e) < 0 ||
	    prep(db, "UPDATE chunks SET embedding = ?1 WHERE id = ?2"
		 " AND collection_id = ?3", &upd, e) < 0)
		goto cleanup;
	if (run(db, "BEGIN IMMEDIATE", e) < 0)
		goto cleanup;
	/* Checked inside the transaction: another process may have stored
	 * the first vectors meanwhile. */
	sqlite3_bind_int64(get, 1, c->id);
	if (sqlite3_step(get) != SQLITE_ROW)
		goto rollback;
	snprintf(have_model, sizeof(have_model), "%s",
		 (const char *)sqlite3_column_text(get, 0));
	have = sqlite3_column_int(get, 1);
	if (have_model[0] && strcmp(have_model, model)) {
		err_set(e, ERR_INVALID_REQUEST,
			"collection '%s' uses embedding model '%s', not '%.128s'",
			c->name, have_model, model);
		goto rollback_quiet;
	}
	if (have && have != dim) {
		err_set(e, ERR_CONFIG,
			"embedding model '%.128s' returned %d-dimension vectors but collection '%s' holds %d-dimension vectors: index into another collection",
			model, dim, c->name, have);
		goto rollback_quiet;
	}
	if (!have || !have_model[0]) {
		sqlite3_bind_text(set, 1, model, -1, SQLITE_STATIC);
		sqlite3_bind_int(set, 2, dim);
		sqlite3_bind_int64(set, 3, c->id);
		if (sqlite3_step(set) != SQLITE_DONE)
			goto rollback;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		sqlite3_reset(upd);
		sqlite3_bind_blob(upd, 1, vecs + i * (size_t)dim,
				  (int)(dim * sizeof(float)), SQLITE_STATIC);
		sqlite3_bind_int64(upd, 2, ids[i]);
		sqlite3_bind_int64(upd, 3, c->id);
		if (sqlite3_step(upd) != SQLITE_DONE)
			goto rollback;
		*stored += (size_t)sqlite3_changes(db);
	}
	if (run(db, "COMMIT", e) < 0)
		goto rollback_quiet;
	snprintf(c->embed_model, sizeof(c->embed_model), "%s", model);
	c->dim = dim;
	c->vectors += (long)*stored;
	rc = 0;
	goto cleanup;
rollback:
	db_fail(db, "cannot store the vectors", e);
rollback_quiet:
	*stored = 0;
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
cleanup:
	sqlite3_finalize(get);
	sqlite3_finalize(set);
	sqlite3_finalize(upd);
	return rc;
}

/* ==== BM25 retrieval ==== */


/* Where a collection's chunks are indexed, and how its queries are read. */
struct fts_table {
	const char *name;
	int head;                      /* has the head column */
	int stop;                      /* English stop words are not ranked */
};

static const struct fts_table fts_tables[] = {
	{ "chunks_fts", 0, 1 },        /* before languages */
	{ "chunks_en", 1, 1 },
	{ "chunks_plain", 1, 0 },
};

/* English words that say little about what a passage is about, sorted. */
static const char *const stop_words[] = {
	"a", "about", "after", "again", "all", "also", "am", "an", "and",
	"any", "are", "as", "at", "be", "been", "before", "being", "both",
	"but", "by", "can", "could", "did", "do", "does", "doing", "done",
	"each", "few", "for", "from", "get", "had", "has", "have", "having",
	"he", "her", "here", "him", "his", "how", "i", "if", "in", "into",
	"is", "it", "its", "just", "me", "might", "more", "most", "must",
	"my", "no", "nor", "not", "of", "on", "once", "only", "or", "other",
	"our", "out", "over", "own", "same", "she", "should", "so", "some",
	"such", "than", "that", "the", "their", "them", "then", "there",
	"these", "they", "this", "those", "through", "to", "too", "under",
	"until", "up", "very", "was", "we", "were", "what", "when", "where",
	"which", "while", "who", "whom", "why", "will", "with", "would",
	"you", "your",
};

static int by_word(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether w[0, n) is a stop word (ASCII case folded). */
static int is_stop(const char *w, size_t n)
{
	char low[16];
	const char *key = low;

	if (n >= sizeof(low))
		return 0;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)w[i]);
	low[n] = '\0';
	return bsearch(&key, stop_words, sizeof(stop_words) / sizeof(stop_words[0]),
		       sizeof(stop_words[0]), by_word) != NULL;
}

/* A term of the query: a word, a "quoted phrase" or a prefix*. */
struct term {
	char *fts;                     /* as FTS5 takes it */
	int stop;                      /* a stop word: not ranked */
	int64_t df;                    /* chunks holding it, up to the budget */
};

/* The terms of a query, and those ranked by bm25() (fq). */
struct words {
	char *fq;                      /* the FTS5 query of the kept terms */
	struct term *t;                /* kept first, in fq's order */
	size_t n, kept;
};

static void words_free(struct words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->t[i].fts);
	free(w->fq);
	free(w->t);
	memset(w, 0, sizeof(*w));
}

static int by_df(const void *a, const void *b)
{
	const struct term *x = a, *y = b;

	if (x->stop != y->stop)
		return x->stop - y->stop;
	return (x->df > y->df) - (x->df < y->df);
}

static void add_term(struct words *w, char *fts, int stop)
{
	for (size_t i = 0; i < w->n; i++)
		if (!strcasecmp(w->t[i].fts, fts)) {
			free(fts);
			return;
		}
	w->t = xrealloc(w->t, (w->n + 1) * sizeof(*w->t));
	memset(&w->t[w->n], 0, sizeof(w->t[0]));
	w->t[w->n].fts = fts;
	w->t[w->n].stop = stop;
	w->n++;
}

/*
 * Splits query into terms: words (letters, digits, UTF-8), "quoted
 * phrases" (their words, in order) and prefixes (a word and '*'); no
 * other FTS5 syntax gets through.  At most 64 terms.
 */
static void parse_terms(const char *query, int stop, struct words *w)
{
	const unsigned char *p = (const unsigned char *)query;

	while (*p && w->n < 64) {
		const unsigned char *s;
		struct buf b;
		if (*p == '"') {
			buf_init(&b, 0);
			for (p++; *p && *p != '"'; ) {
				if (!store_word_byte(*p)) {
					p++;
					continue;
				}
				for (s = p; *p && store_word_byte(*p); p++)
					;
				buf_printf(&b, "%s%.*s", b.len ? " " : "\"",
					   (int)(p - s > 100 ? 100 : p - s), (const char *)s);
			}
			if (*p == '"')
				p++;
			if (b.len) {
				buf_printf(&b, "\"");
				add_term(w, buf_detach(&b), 0);
			} else {
				buf_release(&b);
			}
			continue;
		}
		if (!store_word_byte(*p)) {
			p++;
			continue;
		}
		for (s = p; *p && store_word_byte(*p); p++)
			;
		buf_init(&b, 0);
		buf_printf(&b, "\"%.*s\"%s", (int)(p - s > 100 ? 100 : p - s),
			   (const char *)s, *p == '*' ? "*" : "");
		add_term(w, buf_detach(&b), *p != '*' && stop && is_stop((const char *)s,
							(size_t)(p - s)));
	}
}

static int words_of(sqlite3 *db, const struct fts_table *tb, const char *query,
		    struct words *out, struct err *e)
{
	sqlite3_stmt *st = NULL;
	int64_t total = 0;
	size_t ranked, i;
	char sql[160];
	struct buf b;

	memset(out, 0, sizeof(*out));
	parse_terms(query, tb->stop, out);
	if (!out->n)
		return err_set(e, ERR_INVALID_REQUEST, "the query has no words to search for");
	/* Stop words never leave a query empty: all stop words, all ranked. */
	for (i = 0; i < out->n && out->t[i].stop; i++)
		;
	if (i == out->n)
		for (i = 0; i < out->n; i++)
			out->t[i].stop = 0;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1 FROM %s"
		 " WHERE %s MATCH ?1 LIMIT ?2)", tb->name, tb->name);
	if (prep(db, sql, &st, e) < 0)
		goto fail;
	sqlite3_bind_int64(st, 2, RAG_BM25_POSTINGS + 1);
	for (i = 0; i < out->n; i++) {
		int r;
		if (out->t[i].stop)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, out->t[i].fts, -1, SQLITE_STATIC);
		if ((r = sqlite3_step(st)) == SQLITE_ROW)
			out->t[i].df = sqlite3_column_int64(st, 0);
		else if (r != SQLITE_DONE) {
			db_fail(db, "search failed", e);
			goto fail;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	qsort(out->t, out->n, sizeof(*out->t), by_df);
	for (ranked = 0; ranked < out->n && !out->t[ranked].stop; ranked++)
		;
	/* Rarest first, while their postings fit the budget; the rarest
	 * term that is anywhere always. */
	for (i = 0; i < ranked; i++) {
		struct term t = out->t[i];
		if (t.df == 0 && i + 1 < ranked)
			continue;
		if (out->kept > 0 && total + t.df > RAG_BM25_POSTINGS)
			break;
		total += t.df;
		memmove(&out->t[out->kept + 1], &out->t[out->kept],
			(i - out->kept) * sizeof(t));
		out->t[out->kept++] = t;
	}
	buf_init(&b, 0);
	for (i = 0; i < out->kept; i++)
		buf_printf(&b, "%s%s", i ? " OR " : "", out->t[i].fts);
	out->fq = buf_detach(&b);
	return 0;
fail:
	sqlite3_finalize(st);
	words_free(out);
	return -1;
}

char *rag_bm25_query(sqlite3 *db, const char *query, struct err *e)
{
	struct words w;
	char *fq;

	if (words_of(db, &fts_tables[1], query, &w, e) < 0)
		return NULL;
	fq = w.fq;
	w.fq = NULL;
	words_free(&w);
	return fq;
}

/* A candidate chunk and what ranks it. */
struct cand {
	int64_t id, doc;
	double bm25;                   /* -bm25(): higher is better */
	int text;                      /* its text holds a word of the query */
	double score;
};

static int by_score(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return (x->id > y->id) - (x->id < y->id);
}

/* Weights of the ranking, measured with bench/rag_eval.sh (RESULTS.md). */
#define RANK_HEAD "1.0"        /* bm25() weight of the head beside the text */
#define RANK_DOC 0.2           /* of the next best chunk of the same document */
#define RANK_HEAD_ONLY 0.5     /* a chunk whose head alone holds the words */

/*
 * The candidates of c for w: the pool best chunks by bm25() (over text and
 * head, as weighed above), with their documents.  FTS5 ranks the matches
 * of every collection; the subquery's limit grows until pool of them are
 * c's or there are no more.
 */
static int bm25_cands(sqlite3 *db, const struct rag_collection *c,
		      const struct fts_table *tb, const struct words *w,
		      size_t pool, struct cand *out, size_t *n, struct err *e)
{
	sqlite3_stmt *st;
	int64_t limit = (int64_t)pool;
	char sql[400], text[64] = "1";
	int r;

	*n = 0;
	/* Whether the text holds a word (not only the head): 0 if not. */
	if (tb->head)
		snprintf(text, sizeof(text), "bm25(%s, 1.0, 0.0)", tb->name);
	snprintf(sql, sizeof(sql), "SELECT f.rowid, f.rank, k.collection_id = ?2, k.document_id,"
		 " f.t FROM (SELECT rowid, rank, %s AS t FROM %s WHERE %s MATCH ?1%s"
		 "  ORDER BY rank LIMIT ?3) f"
		 " LEFT JOIN chunks k ON k.id = f.rowid ORDER BY f.rank",
		 text, tb->name, tb->name,
		 tb->head ? " AND rank MATCH 'bm25(1.0, " RANK_HEAD ")'" : "");
	if (prep(db, sql, &st, e) < 0)
		return -1;
	sqlite3_bind_text(st, 1, w->fq, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, c->id);
	for (;;) {
		int64_t rows = 0;
		sqlite3_bind_int64(st, 3, limit);
		*n = 0;
		while ((r = sqlite3_step(st)) == SQLITE_ROW) {
			rows++;
			if (!sqlite3_column_int(st, 2) || *n == pool)
				continue;
			out[*n].id = sqlite3_column_int64(st, 0);
			out[*n].bm25 = -sqlite3_column_double(st, 1);
			out[*n].doc = sqlite3_column_int64(st, 3);
			out[*n].text = sqlite3_column_double(st, 4) != 0;
			(*n)++;
		}
		sqlite3_reset(st);
		if ((r != SQLITE_DONE) || *n == pool || rows < limit)
			break;
		limit *= 8;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return db_fail(db, "search failed", e);
	return 0;
}

/*
 * Ranks the candidates with their document as context: a chunk's BM25
 * score plus RANK_DOC times that of the best other candidate of its
 * document, so that a manual page answering in several places passes a
 * changelog that names the words once; times RANK_HEAD_ONLY when only its
 * head holds the words (a title word in every chunk of a document that
 * is most of the store has no weight left to tell its chunks apart).  (Ordering by the part of the
 * query's words a chunk or its document holds, stop words left out,
 * was measured too: it lost, see RESULTS.md.)
 */
static void rank_cands(struct cand *cs, size_t n)
{
	/* The candidates are few (RAG_COORD_POOL): a quadratic scan. */
	for (size_t i = 0; i < n; i++) {
		double next = 0;
		for (size_t j = 0; j < n; j++)
			if (j != i && cs[j].doc == cs[i].doc && cs[j].bm25 > next)
				next = cs[j].bm25;
		cs[i].score = cs[i].bm25 + RANK_DOC * next;
		if (!cs[i].text)
			cs[i].score *= RANK_HEAD_ONLY;
	}
	qsort(cs, n, sizeof(*cs), by_score);
}

/* ==== hybrid retrieval ==== */

/* ==== vectors in memory ==== */

typedef float v4f __attribute__((vector_size(16)));

float rag_dot(const float *a, const float *b, int dim)
{
	v4f s0 = { 0 }, s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
	int i = 0;
	float r;

	/* Four independent sums of four lanes: the loads, not the adds,
	 * set the pace.  memcpy is an unaligned load, whatever dim is. */
	for (; i + 16 <= dim; i += 16) {
		v4f a0, a1, a2, a3, b0, b1, b2, b3;
		memcpy(&a0, a + i, 16);
		memcpy(&a1, a + i + 4, 16);
		memcpy(&a2, a + i + 8, 16);
		memcpy(&a3, a + i + 12, 16);
		memcpy(&b0, b + i, 16);
		memcpy(&b1, b + i + 4, 16);
		memcpy(&b2, b + i + 8, 16);
		memcpy(&b3, b + i + 12, 16);
		s0 += a0 * b0;
		s1 += a1 * b1;
		s2 += a2 * b2;
		s3 += a3 * b3;
	}
	s0 = (s0 + s1) + (s2 + s3);
	r = (s0[0] + s0[1]) + (s0[2] + s0[3]);
	for (; i < dim; i++)
		r += a[i] * b[i];
	return r;
}

int rag_vectors_load(sqlite3 *db, const struct rag_collection *c,
		     struct rag_vectors *vs, struct err *e)
{
	sqlite3_stmt *st;
	size_t cap = 0, row = (size_t)c->dim * sizeof(float);
	int r;

	memset(vs, 0, sizeof(*vs));
	vs->dim = c->dim;
	if (c->dim <= 0)
		return 0;
	if (prep(db, "SELECT id, embedding FROM chunks INDEXED BY chunks_vectors"
		 " WHERE collection_id = ?1 AND embedding IS NOT NULL", &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((size_t)sqlite3_column_bytes(st, 1) != row)
			continue;
		if (vs->n == cap) {
			cap = cap ? 2 * cap : 1024;
			vs->ids = xrealloc(vs->ids, cap * sizeof(*vs->ids));
			vs->v = xrealloc(vs->v, cap * row);
		}
		vs->ids[vs->n] = sqlite3_column_int64(st, 0);
		memcpy(vs->v + vs->n * (size_t)c->dim, sqlite3_column_blob(st, 1), row);
		vs->n++;
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		rag_vectors_free(vs);
		return db_fail(db, "search failed", e);
	}
	return 0;
}

void rag_vectors_free(struct rag_vectors *vs)
{
	free(vs->ids);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

struct scored {
	int64_t id;
	float sim;
};

/* Keeps the best max similarities in top[0..*n), best first. */
static void keep_best(struct scored *top, size_t *n, size_t max, int64_t id,
		      float sim)
{
	size_t j;

	if (*n == max && sim <= top[max - 1].sim)
		return;
	j = *n < max ? (*n)++ : max - 1;
	while (j > 0 && top[j - 1].sim < sim) {
		top[j] = top[j - 1];
		j--;
	}
	top[j].id = id;
	top[j].sim = sim;
}

size_t rag_vectors_top(const struct rag_vectors *vs, const float *q,
		       size_t pool, int64_t *ids, float *sims)
{
	struct scored *top;
	size_t n = 0;

	if (!pool)
		return 0;
	top = xcalloc(pool, sizeof(*top));
	for (size_t i = 0; i < vs->n; i++) {
		float dot = rag_dot(q, vs->v + i * (size_t)vs->dim, vs->dim);
		if (dot > 0 && (n < pool || dot > top[pool - 1].sim))
			keep_best(top, &n, pool, vs->ids[i], dot);
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = top[i].id;
		if (sims)
			sims[i] = top[i].sim;
	}
	free(top);
	return n;
}

/*
 * The last collection's vectors stay in memory, so that a long-lived
 * process (serve) reads them from the store once, not per search.  They
 * are read again when the collection's vectors change: their count, and
 * the largest and the sum of their chunk ids, taken from the index of
 * chunks with vectors (a re-indexed file gets new chunk ids).  One
 * collection at a time bounds the memory.
 */
static struct {
	int64_t coll, count, max, sum;
	struct rag_vectors vs;
} cached;

void rag_vectors_release(void)
{
	rag_vectors_free(&cached.vs);
	memset(&cached, 0, sizeof(cached));
}

/* Makes the cached vectors those of c as stored now. */
static int vectors_current(sqlite3 *db, const struct rag_collection *c,
			   struct err *e)
{
	sqlite3_stmt *st;
	int64_t count = 0, max = 0, sum = 0;
	int r;

	if (prep(db, "SELECT count(*), coalesce(max(id), 0), coalesce(sum(id), 0)"
		 " FROM chunks INDEXED BY chunks_vectors"
		 " WHERE collection_id = ?1 AND embedding IS NOT NULL", &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, c->id);
	if ((r = sqlite3_step(st)) == SQLITE_ROW) {
		count = sqlite3_column_int64(st, 0);
		max = sqlite3_column_int64(st, 1);
		sum = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_ROW)
		return db_fail(db, "search failed", e);
	if (cached.coll == c->id && cached.count == count && cached.max == max &&
	    cached.sum == sum && cached.vs.dim == c->dim)
		return 0;
	rag_vectors_release();
	if (rag_vectors_load(db, c, &cached.vs, e) < 0)
		return -1;
	cached.coll = c->id;
	cached.count = count;
	cached.max = max;
	cached.sum = sum;
	return 0;
}

int rag_vectors_prepare(sqlite3 *db, const char *collection, struct err *e)
{
	struct rag_collection c;

	if (rag_collection_get(db, collection, &c, e) < 0)
		return -1;
	return c.vectors ? vectors_current(db, &c, e) : 0;
}

/* The ids of the pool chunks of c most similar to q (unit length), best
 * first. */
static int dense_ids(sqlite3 *db, const struct rag_collection *c, const float *q,
		     size_t pool, int64_t *ids, size_t *n, struct err *e)
{
	*n = 0;
	if (vectors_current(db, c, e) < 0)
		return -1;
	*n = rag_vectors_top(&cached.vs, q, pool, ids, NULL);
	return 0;
}

/* The first words of text, as a snippet like FTS5's. */
static char *lead_snippet(const char *text)
{
	char *line = one_line(text);
	size_t words = 0, i;

	for (i = 0; line[i]; i++)
		if (line[i] == ' ' && ++words == 16)
			break;
	if (line[i]) {
		strcpy(line + i, "...");
	}
	return line;
}

/* Fills h from chunk id: its document (its id and hash into doc and
 * hash), lines, text and a snippet (FTS5's when the query's words are in
 * it). */
static int fill_hit(sqlite3 *db, const struct fts_table *tb, int64_t id,
		    const char *fq, struct rag_hit *h, int64_t *doc, char *hash,
		    size_t hsize, struct err *e)
{
	sqlite3_stmt *st = NULL, *sn = NULL;
	char sql[200];
	int r;

	if (prep(db, "SELECT d.path, k.line_first, k.line_last, k.text, d.id, d.hash"
		 " FROM chunks k JOIN documents d ON d.id = k.document_id WHERE k.id = ?1",
		 &st, e) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if ((r = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		/* Gone meanwhile (re-indexed by another process): skip it. */
		return r == SQLITE_DONE ? 1 : db_fail(db, "search failed", e);
	}
	h->path = xstrdup((const char *)sqlite3_column_text(st, 0));
	h->line_first = sqlite3_column_int(st, 1);
	h->line_last = sqlite3_column_int(st, 2);
	h->text = xstrdup((const char *)sqlite3_column_text(st, 3));
	*doc = sqlite3_column_int64(st, 4);
	snprintf(hash, hsize, "%s", (const char *)sqlite3_column_text(st, 5));
	sqlite3_finalize(st);
	snprintf(sql, sizeof(sql), "SELECT snippet(%s, 0, '', '', '...', 16) FROM %s"
		 " WHERE %s MATCH ?1 AND rowid = ?2", tb->name, tb->name, tb->name);
	if (fq[0] && prep(db, sql, &sn, NULL) == 0) {
		sqlite3_bind_text(sn, 1, fq, -1, SQLITE_STATIC);
		sqlite3_bind_int64(sn, 2, id);
		if (sqlite3_step(sn) == SQLITE_ROW)
			h->snippet = one_line((const char *)sqlite3_column_text(sn, 0));
		sqlite3_finalize(sn);
	}
	if (!h->snippet)
		h->snippet = lead_snippet(h->text);
	return 0;
}

int rag_search(sqlite3 *db, const char *collection, const char *query, int k,
	       struct rag_hit **hits, size_t *n, struct err *e)
{
	return rag_search_hybrid(db, collection, query, NULL, 0, k, hits, n, e);
}

/* A document a hit came from: a hit of another with the same text is
 * left out. */
struct seen_doc {
	int64_t id;
	char hash[64];
};

int rag_search_hybrid(sqlite3 *db, const char *collection, const char *query,
		      const float *qvec, int dim, int k, struct rag_hit **hits,
		      size_t *n, struct err *e)
{
	struct rag_collection c;
	const struct fts_table *tb;
	struct words w = { 0 };
	struct cand *cs = NULL;
	struct seen_doc *docs = NULL;
	int64_t *bm = NULL, *dn = NULL, *fused = NULL;
	double *bscores = NULL, *scores = NULL;
	float *q = NULL;
	size_t pool, cand, nbm = 0, ndn = 0, nf, ndocs = 0;
	int rc = -1;

	*hits = NULL;
	*n = 0;
	if (rag_collection_get(db, collection, &c, e) < 0)
		return -1;
	if (c.chunks == 0)
		return err_set(e, ERR_CONFIG,
			       "collection '%s' is empty: index some files first ('aichat rag index -c %s PATH')",
			       c.name, c.name);
	if (qvec && dim != c.dim)
		return err_set(e, ERR_INVALID_REQUEST,
			       "the query vector has %d dimensions, collection '%s' %d",
			       dim, c.name, c.dim);
	tb = &fts_tables[fts_of(c.language)];
	if (words_of(db, tb, query, &w, e) < 0)
		return -1;
	/* BM25 alone: k best (and as many more as twins may take).  Hybrid:
	 * a deeper pool of each for the fusion.  Both ranked from the
	 * RAG_COORD_POOL best by BM25. */
	pool = !qvec ? (size_t)(k > 0 ? 2 * k : 1) :
	       k > 0 && (size_t)k * 4 > 50 ? (size_t)k * 4 : 50;
	cand = pool < RAG_COORD_POOL ? RAG_COORD_POOL : pool;
	cs = xmalloc(cand * sizeof(*cs));
	bm = xmalloc(cand * sizeof(*bm));
	bscores = xmalloc(cand * sizeof(*bscores));
	dn = xmalloc(pool * sizeof(*dn));
	fused = xmalloc(2 * pool * sizeof(*fused));
	scores = xmalloc(2 * pool * sizeof(*scores));
	if (w.kept && bm25_cands(db, &c, tb, &w, cand, cs, &nbm, e) < 0)
		goto cleanup;
	rank_cands(cs, nbm);
	if (nbm > pool)
		nbm = pool;
	for (size_t i = 0; i < nbm; i++) {
		bm[i] = cs[i].id;
		bscores[i] = cs[i].score;
	}
	if (qvec) {
		q = xmalloc((size_t)dim * sizeof(*q));
		memcpy(q, qvec, (size_t)dim * sizeof(*q));
		rag_normalize(q, dim);
		if (dense_ids(db, &c, q, pool, dn, &ndn, e) < 0)
			goto cleanup;
		nf = rag_rrf(bm, nbm, dn, ndn, RAG_RRF_K, fused, scores);
	} else {
		memcpy(fused, bm, nbm * sizeof(*bm));
		memcpy(scores, bscores, nbm * sizeof(*bscores));
		nf = nbm;
	}
	*hits = xcalloc((size_t)(k > 0 ? k : 1), sizeof(**hits));
	docs = xcalloc(nf + 1, sizeof(*docs));
	for (size_t i = 0; i < nf && *n < (size_t)k; i++) {
		struct rag_hit *h = &(*hits)[*n];
		struct seen_doc d;
		size_t j;
		int dup, r = fill_hit(db, tb, fused[i], w.fq ? w.fq : "", h, &d.id, d.hash,
				 sizeof(d.hash), e);
		if (r < 0) {
			rag_hits_free(*hits, *n + 1);
			*hits = NULL;
			*n = 0;
			goto cleanup;
		}
		if (r > 0)
			continue;
		/* Identical documents (same hash) appear once, and so does a
		 * passage of the same text in another document. */
		dup = 0;
		for (j = 0; j < ndocs && !dup; j++)
			dup = docs[j].id != d.id && !strcmp(docs[j].hash, d.hash);
		for (j = 0; j < *n && !dup; j++)
			dup = !strcmp((*hits)[j].text, h->text) && strcmp((*hits)[j].path, h->path);
		if (dup) {
			free(h->path);
			free(h->snippet);
			free(h->text);
			memset(h, 0, sizeof(*h));
			continue;
		}
		for (j = 0; j < ndocs && docs[j].id != d.id; j++)
			;
		if (j == ndocs)
			docs[ndocs++] = d;
		h->rank = (int)++*n;
		h->score = scores[i];
	}
	rc = 0;
cleanup:
	free(cs);
	free(docs);
	free(bm);
	free(bscores);
	free(dn);
	free(fused);
	free(scores);
	free(q);
	words_free(&w);
	return rc;
}
