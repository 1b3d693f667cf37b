/*
 * rag.h - the RAG service: collections of local documents, chunked and
 * indexed by SQLite FTS5, searched with bm25(), and the prompt that asks a
 * model to answer from numbered sources.
 *
 * Both faces use it: `aichat rag` and serve's /rag routes.  The service
 * knows nothing of terminals or HTTP.  Every statement is prepared; user
 * text never becomes SQL, and query text reaches FTS5 only as the quoted
 * words of rag_fts_query() and rag_bm25_query().  Each file is indexed in
 * one BEGIN IMMEDIATE transaction, so several processes may index into
 * one store at once and a killed index leaves every document whole (old
 * or new, never half).
 */
#ifndef AICHAT_RAG_H
#define AICHAT_RAG_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aichat/buf.h"
#include "aichat/err.h"

#define RAG_NAME_MAX 64
#define RAG_DEFAULT_CHUNK_SIZE 1000
#define RAG_DEFAULT_OVERLAP 100
/* Files are read and chunked in windows of this many bytes. */
#define RAG_WINDOW (1u << 20)

/* ---- pure helpers (no database; unit-tested) ---- */

/* 0 when name is 1..64 characters of [A-Za-z0-9._-]; else -1 with e
 * (ERR_INVALID_REQUEST) quoting a bounded, sanitized copy of name. */
int rag_name_check(const char *name, struct err *e);

/*
 * The FTS5 query for user text: its words (runs of letters, digits and
 * non-ASCII bytes; everything else, FTS5 syntax included, separates words)
 * each double-quoted, joined by " OR ", at most 64 of them.  Owned, free()
 * it; NULL when text has no word at all.
 */
char *rag_fts_query(const char *text);

/* A chunk of a text: bytes [off, off + len), lines first..last (1-based). */
struct rag_span {
	size_t off, len;
	int line_first, line_last;
};

/*
 * Splits text[0..len) into chunks of at most about size bytes: first at
 * markdown headings, then at blank-line paragraphs, then at sentence ends,
 * then at spaces; a fenced ``` code block stays whole when it fits in
 * size.  Each chunk after the first starts up to overlap bytes earlier, at
 * a word boundary, repeating the end of the one before.  Chunks hold no
 * leading or trailing blank space; a text of blanks has none.  *out is
 * owned (free() it); returns the number of chunks.
 */
size_t rag_chunk(const char *text, size_t len, size_t size, size_t overlap,
		 struct rag_span **out);

/* Reads up to n bytes into p: how many, 0 at the end, -1 with errno. */
typedef ssize_t (*rag_read_fn)(void *ctx, char *p, size_t n);
/* Takes one chunk: its text (valid during the call) and lines; -1 stops. */
typedef int (*rag_emit_fn)(void *ctx, const char *text, size_t len,
			   int line_first, int line_last);

#define RAG_STREAM_READ (-1)   /* rd failed (errno says why) */
#define RAG_STREAM_EMIT (-2)   /* emit returned -1 */

/*
 * rag_chunk() over a text read through rd, in windows of win bytes, so
 * memory stays bounded whatever the text's size.  A window ends after its
 * last blank line outside a fenced block (else after its last line), and
 * keeps up to overlap bytes of its end for the next one's overlap; line
 * numbers run on across windows.  Bytes that are not UTF-8 become '?'.
 * Each chunk goes to emit as it is made.  *hash is the FNV-1a 64 of the
 * bytes read, *nchunks how many chunks were made.  0, 1 when the text
 * holds a NUL byte (binary: stops there), or RAG_STREAM_READ/EMIT.
 */
int rag_chunk_stream(rag_read_fn rd, void *rctx, size_t win, size_t size,
		     size_t overlap, rag_emit_fn emit, void *ectx,
		     uint64_t *hash, size_t *nchunks);

/* FNV-1a 64 over n bytes, continuing from h (start with RAG_HASH_INIT). */
#define RAG_HASH_INIT 0xcbf29ce484222325ull
uint64_t rag_hash(uint64_t h, const void *p, size_t n);

/* ---- collections ---- */

struct rag_collection {
	int64_t id;
	char name[RAG_NAME_MAX + 1];
	char created_at[32];
	int chunk_size, overlap;
	long documents, chunks;
	int64_t bytes;                 /* sum of the documents' sizes */
	char embed_model[256];         /* "" when the collection has none */
	int dim;                       /* 0 until the first vector is stored */
	long vectors;                  /* chunks that have their vector */
	char language[8];              /* "en", "none"; "" when indexed before
					* languages (unstemmed, as "none") */
};

/* The collection named name into *c, without counting: chunks and
 * vectors are 1 when it has any, else 0; documents and bytes are 0.
 * ERR_NOT_FOUND when there is none. */
int rag_collection_get(sqlite3 *db, const char *name, struct rag_collection *c,
		       struct err *e);
/* The same with every count (a scan of the collection's index entries). */
int rag_collection_count(sqlite3 *db, const char *name,
			 struct rag_collection *c, struct err *e);
/* Gets the collection, creating it with these chunk settings and
 * language (rag_language_check(); NULL: none recorded, as collections
 * made before languages) when it does not exist (another process
 * creating it at the same time is fine). */
int rag_collection_ensure(sqlite3 *db, const char *name, int chunk_size,
			  int overlap, const char *language,
			  struct rag_collection *c, struct err *e);
/* The languages a collection can have: "en" (English: words stemmed by
 * Porter's algorithm, English stop words left out of the ranking) and
 * "none" (words as written).  0, or ERR_INVALID_REQUEST naming --language. */
int rag_language_check(const char *language, struct err *e);
/* Sets c's language, moving its chunks to that language's index in one
 * transaction (no file is read again). */
int rag_collection_set_language(sqlite3 *db, struct rag_collection *c,
				const char *language, struct err *e);
/* Stores new chunk settings for c (used by documents indexed from now on). */
int rag_collection_set_chunking(sqlite3 *db, struct rag_collection *c,
				int chunk_size, int overlap, struct err *e);
/* Every collection, by name; *out owned (free() it). */
int rag_collection_list(sqlite3 *db, struct rag_collection **out, size_t *n,
			struct err *e);
/* Deletes a collection with its documents and chunks.  ERR_NOT_FOUND when
 * there is none. */
int rag_collection_rm(sqlite3 *db, const char *name, struct err *e);

/* ---- indexing ---- */

enum rag_outcome {
	RAG_ADDED,
	RAG_UPDATED,
	RAG_UNCHANGED,
	RAG_SKIPPED,        /* no text to index; the reason is in e (code
			     * ERR_OK) and its class in rag_file.skip */
};

/* Files larger than this are skipped, and so are files whose text
 * (decompressed or converted) is (rag index --max-file-size). */
#define RAG_DEFAULT_MAX_FILE_SIZE (32u << 20)

/* What indexing one file did. */
struct rag_file {
	enum rag_outcome outcome;
	size_t nchunks;               /* chunks written */
	const char *skip;             /* RAG_SKIPPED: a short class for a
				       * summary ("binary", "too large",
				       * "corrupt", "no pdftotext", ...) */
	char note[200];               /* a warning about a file indexed
				       * anyway ("" when none) */
};

/*
 * Indexes the file at path (stored as given: pass an absolute path) into
 * c: reads it in pieces, hashes it, and when the hash differs from the
 * stored one (or force) reads its text (extract.h: gzip, HTML, man pages
 * and PDF become text) through rag_chunk_stream(), replacing its chunks
 * in one transaction as they come.  A file above max bytes, or whose text
 * is, is skipped.  res says what happened.  -1 with e (ERR_IO) when the
 * file cannot be read or the store cannot be written; the store is then
 * unchanged for this file, as it is for a file skipped.
 */
int rag_index_file(sqlite3 *db, const struct rag_collection *c,
		   const char *path, int force, size_t max, struct rag_file *res,
		   struct err *e);

/* Removes the documents of c whose file no longer exists; *removed says
 * how many.  One transaction. */
int rag_prune(sqlite3 *db, const struct rag_collection *c, size_t *removed,
	      struct err *e);

/* The stored paths of c's documents, sorted (byte order): *paths and
 * each path owned, rag_paths_free(). */
int rag_documents(sqlite3 *db, const struct rag_collection *c, char ***paths,
		  size_t *n, struct err *e);
void rag_paths_free(char **paths, size_t n);

/* ---- retrieval ---- */

struct rag_hit {
	int rank;                      /* 1-based */
	double score;                  /* higher is better: -bm25() (see rag_search()) */
	char *path;
	int line_first, line_last;
	char *snippet;                 /* one line, a few words around a match */
	char *text;                    /* the whole chunk */
};

/*
 * A search reads the postings of every word it ranks by, at about a
 * microsecond each: a word in most chunks of a million-chunk store would
 * cost a second.  So the words are taken rarest first while their
 * postings (chunks holding them, every collection counted) add up to at
 * most this many; the words left out are those found nearly everywhere,
 * which bm25() weighs least.  The rarest word is always kept.
 */
#ifndef RAG_BM25_POSTINGS   /* bench/rag.sh builds one without it */
#define RAG_BM25_POSTINGS 20000
#endif
/* This many of the best chunks by BM25 are ranked again with their
 * documents as context. */
#define RAG_COORD_POOL 200

/*
 * The FTS5 query that ranks user text by bm25() in an English collection:
 * its terms, each once whatever its case: words, "quoted phrases" and
 * prefix* words; English stop words left out unless there is nothing
 * else; rarest first while they fit RAG_BM25_POSTINGS; joined by OR.
 * Owned; NULL with e (ERR_INVALID_REQUEST) when text has no word.
 */
char *rag_bm25_query(sqlite3 *db, const char *text, struct err *e);

/*
 * The k best chunks of collection for query, best first, ranked by FTS5's
 * bm25() over rag_bm25_query()'s terms (stop words kept in a collection
 * of language none) in the chunk's text and head (its document's title,
 * file name and section); the best RAG_COORD_POOL are ranked again with
 * their document's next best chunk (rag.c says how).  A passage or
 * document identical to one of a better hit is left out.  ERR_NOT_FOUND for an unknown collection, ERR_CONFIG for one
 * with no documents, ERR_INVALID_REQUEST for a query without words.
 * Zero hits is success.  *hits owned: rag_hits_free().
 */
int rag_search(sqlite3 *db, const char *collection, const char *query, int k,
	       struct rag_hit **hits, size_t *n, struct err *e);
void rag_hits_free(struct rag_hit *hits, size_t n);

/* ---- vectors and hybrid retrieval ---- */

/*
 * A chunk's vector is stored as dim native float32 values (a BLOB of
 * 4 * dim bytes in chunks.embedding), scaled to unit length so that a dot
 * product is the cosine.  A collection's embedding model is set by the
 * first index that names one and its dimension by the first vector
 * stored; neither changes afterwards.
 */

/* The reciprocal rank fusion constant. */
#define RAG_RRF_K 60

/* Cosine similarity of a and b (0 when either is all zeros). */
double rag_cosine(const float *a, const float *b, int dim);
/* Scales v to unit length in place (an all-zero v stays so). */
void rag_normalize(float *v, int dim);

/*
 * Reciprocal rank fusion of two ranked lists of ids (best first, no id
 * twice in one list): each id scores the sum over the lists holding it of
 * 1 / (k + rank), rank 1-based.  Writes the union, best first, to ids and
 * scores (room for na + nb each) and returns its size.  Ties go to the
 * id with the better single rank, then to the one first in a.
 */
size_t rag_rrf(const int64_t *a, size_t na, const int64_t *b, size_t nb,
	       int k, int64_t *ids, double *scores);

/*
 * Records model as c's embedding model, or checks that it is the one
 * already recorded: ERR_INVALID_REQUEST naming both when it differs.
 */
int rag_collection_set_embed_model(sqlite3 *db, struct rag_collection *c,
				   const char *model, struct err *e);

/* A chunk still without its vector. */
struct rag_pending {
	int64_t id;
	char *text;
};

/* Up to max chunks of c without a vector whose id is above after, by id.
 * *out owned: rag_pending_free(). */
int rag_missing_vectors(sqlite3 *db, const struct rag_collection *c,
			int64_t after, size_t max, struct rag_pending **out,
			size_t *n, struct err *e);
void rag_pending_free(struct rag_pending *p, size_t n);
/* How many chunks of c have no vector, into *missing. */
int rag_count_missing(sqlite3 *db, const struct rag_collection *c,
		      long *missing, struct err *e);

/*
 * Stores the vectors of chunks ids[i] whose ok[i] is set (vecs holds n
 * rows of dim floats, unit length) in one transaction, recording dim as
 * c's dimension when it has none.  ERR_CONFIG naming model and both
 * dimensions when dim differs from the collection's (nothing stored).
 * Chunks replaced meanwhile are passed over.  *stored says how many
 * vectors were written.
 */
int rag_store_vectors(sqlite3 *db, struct rag_collection *c, const char *model,
		      int dim, const int64_t *ids, const float *vecs,
		      const unsigned char *ok, size_t n, size_t *stored,
		      struct err *e);

/* A collection's vectors in memory: n rows of dim floats, row i the
 * (unit length) vector of chunk ids[i]. */
struct rag_vectors {
	int dim;
	size_t n;
	int64_t *ids;
	float *v;
};

/* The dot product of a and b (dim floats each), unrolled for the vector
 * unit: over rows in memory it runs at about the speed of reading them. */
float rag_dot(const float *a, const float *b, int dim);
/* Every stored vector of c into *vs (owned: rag_vectors_free()). */
int rag_vectors_load(sqlite3 *db, const struct rag_collection *c,
		     struct rag_vectors *vs, struct err *e);
void rag_vectors_free(struct rag_vectors *vs);
/* The up to pool rows most similar to q (unit length; positive
 * similarities only), best first: their ids, and similarities when sims
 * is not NULL.  Brute force, one pass over the rows. */
size_t rag_vectors_top(const struct rag_vectors *vs, const float *q,
		       size_t pool, int64_t *ids, float *sims);
/* Hybrid search keeps the last collection's vectors in memory (read
 * again when they change); this frees them. */
void rag_vectors_release(void);
/* Reads collection's vectors into that copy now, unless it holds them
 * as stored: a search with a deadline then does not spend it (and fail,
 * again and again) reading them. */
int rag_vectors_prepare(sqlite3 *db, const char *collection, struct err *e);

/*
 * Hybrid retrieval: the best chunks of collection by bm25() and the best
 * by cosine similarity of their vectors to qvec (dim values, the query
 * embedded by the collection's model; positive similarities only), each
 * list up to max(50, 4k) long, merged by reciprocal rank fusion
 * (RAG_RRF_K); score is the fused score.  A NULL qvec is rag_search().
 * Errors as rag_search(), plus ERR_INVALID_REQUEST when dim is not the
 * collection's dimension.  *hits owned: rag_hits_free().
 */
int rag_search_hybrid(sqlite3 *db, const char *collection, const char *query,
		      const float *qvec, int dim, int k, struct rag_hit **hits,
		      size_t *n, struct err *e);

/*
 * Appends to b the prompt that asks a model to answer question from the
 * hits, numbered [1]..[n] with their paths and lines, and to cite them.
 */
void rag_prompt(struct buf *b, const char *question, const struct rag_hit *hits,
		size_t n);

#endif
