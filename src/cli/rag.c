/*
 * rag.c - `aichat rag`: index local files, search them, answer from them.
 *
 * Subcommands index, search, query, list, info, rm and eval, each with
 * its own option table; `aichat rag --help` shows their union (rag_opts,
 * which the docs test checks against the man page and the completions;
 * -k appears twice there, as search's and as eval's, with their own
 * bounds).  The work is done by the RAG service (core/rag.c, and
 * core/rageval.c for eval) and, for query, the chat service, run on the
 * event loop exactly as `aichat chat` runs it: deltas flushed as they
 * arrive, SIGINT/SIGTERM through a signalfd.  Per-file problems of index
 * and per-question warnings of eval go to stderr and the work goes on;
 * stdout carries only results.
 */
#include "aichat/chat.h"
#include "aichat/cli.h"
#include "aichat/embed.h"
#include "aichat/json.h"
#include "aichat/rag.h"
#include "aichat/rageval.h"
#include "aichat/schema.h"
#include "aichat/store.h"
#include "aichat/trust.h"
#include "aichat/usage.h"
#include "aichat/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ==== options ==== */

#define O_COLLECTION { 'c', "collection", "NAME", "collection", \
	"the collection: 1..64 of A-Z a-z 0-9 . _ -" }
#define O_CHUNK_SIZE { 0, "chunk-size", "N", "chunk_size", \
	"index: bytes per chunk, for a new collection or to re-chunk" }
#define O_OVERLAP { 0, "overlap", "N", "overlap", \
	"index: bytes a chunk repeats of the one before" }
#define O_INCLUDE { 0, "include", "GLOB", NULL, \
	"index: only files whose name or path matches (repeatable)" }
#define O_EXCLUDE { 0, "exclude", "GLOB", NULL, \
	"index: skip files and directories that match (repeatable)" }
#define O_PRUNE { 0, "prune", NULL, NULL, \
	"index: forget documents whose file is gone" }
#define O_EMBED_MODEL { 0, "embed-model", "MODEL", NULL, \
	"index: provider:model that embeds chunks for hybrid search (fixed per collection)" }
#define O_MAX_FILE_SIZE { 0, "max-file-size", "BYTES", "max_file_size", \
	"index: skip files larger than this, and files whose text is (a .gz decompressed)" }
#define O_LANGUAGE { 0, "language", "LANG", "language", \
	"index: en (stem English words, rank without stop words) or none, for a new collection or to re-index one" }
#define O_VERBOSE { 'v', "verbose", NULL, NULL, \
	"index: list each file skipped or indexed with a warning, and why; eval: each question with its top files" }
#define O_TOP_K { 'k', "top-k", "N", "top_k", "search, query: passages to retrieve" }
#define O_EVAL_K { 'k', "top-k", "N", "eval_k", "eval: the k of Recall@k, in files" }
#define O_MODEL { 'm', "model", "MODEL", "model", \
	"query: provider:model or an alias (default: as for chat)" }
#define O_NO_STREAM { 0, "no-stream", NULL, NULL, \
	"query: wait for the whole answer instead of streaming it" }
#define O_JSON { 0, "json", NULL, NULL, "print JSON for scripts" }
#define O_HELP { 'h', "help", NULL, NULL, "show this help and exit" }

const struct opt rag_opts[] = {
	O_COLLECTION, O_CHUNK_SIZE, O_OVERLAP, O_INCLUDE, O_EXCLUDE, O_PRUNE,
	O_EMBED_MODEL, O_MAX_FILE_SIZE, O_LANGUAGE, O_VERBOSE, O_TOP_K, O_EVAL_K, O_MODEL,
	O_NO_STREAM, O_JSON, O_HELP,
};
const size_t rag_nopts = sizeof(rag_opts) / sizeof(rag_opts[0]);

static const struct opt index_opts[] = {
	O_COLLECTION, O_CHUNK_SIZE, O_OVERLAP, O_INCLUDE, O_EXCLUDE, O_PRUNE,
	O_EMBED_MODEL, O_MAX_FILE_SIZE, O_LANGUAGE, O_VERBOSE, O_HELP,
};
static const struct opt search_opts[] = { O_COLLECTION, O_TOP_K, O_JSON, O_HELP };
static const struct opt query_opts[] = {
	O_COLLECTION, O_TOP_K, O_MODEL, O_NO_STREAM, O_JSON, O_HELP,
};
static const struct opt list_opts[] = { O_JSON, O_HELP };
static const struct opt info_opts[] = { O_COLLECTION, O_JSON, O_HELP };
static const struct opt rm_opts[] = { O_COLLECTION, O_HELP };
static const struct opt eval_opts[] = { O_COLLECTION, O_EVAL_K, O_VERBOSE, O_JSON, O_HELP };

static const char *const languages[] = { "en", "none", NULL };

/* Flags of index that are not part of RAGRequest, checked the same way. */
static const struct field index_fields[] = {
	{ "chunk_size", FIELD_INTEGER, 0, "1000", 100, 100000, NULL, NULL,
	  "bytes per chunk" },
	{ "overlap", FIELD_INTEGER, 0, "100", 0, 10000, NULL, NULL,
	  "bytes a chunk repeats of the one before" },
	{ "collection", FIELD_STRING, 0, "\"default\"", 1, 64, NULL, NULL,
	  "the collection" },
	{ "max_file_size", FIELD_INTEGER, 0, "33554432", 1, 1099511627776.0, NULL,
	  NULL, "largest file, and largest text of a file, indexed" },
	{ "language", FIELD_STRING, 0, "\"en\"", -1, -1, languages, NULL,
	  "how words are analysed: en (stemmed, English stop words not ranked) or none" },
};
static const struct schema index_schema = { "RAGIndexOptions", index_fields, 5 };

/* Flags of eval. */
static const struct field eval_fields[] = {
	{ "eval_k", FIELD_INTEGER, 0, "10", 1, 1000, NULL, NULL,
	  "files counted by Recall@k" },
	{ "collection", FIELD_STRING, 0, "\"default\"", 1, 64, NULL, NULL,
	  "the collection" },
};
static const struct schema eval_schema = { "RAGEvalOptions", eval_fields, 2 };

static const struct schema *const help_schemas[] = {
	&schema_rag_request, &index_schema, &eval_schema, NULL
};

struct sub {
	const char *name;
	int (*run)(const struct opt_result *r, const struct opt *o, size_t n);
	const struct opt *opts;
	size_t nopts;
	const char *synopsis;
	const char *summary;
};

/* Index of the option named long_name in o[0..n). */
static size_t find(const struct opt *o, size_t n, const char *long_name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(o[i].long_name, long_name))
			return i;
	return n;
}

static int seen(const struct opt_result *r, const struct opt *o, size_t n,
		const char *name)
{
	size_t i = find(o, n, name);
	return i < n && r->seen[i];
}

static const char *value(const struct opt_result *r, const struct opt *o,
			 size_t n, const char *name)
{
	size_t i = find(o, n, name);
	return i < n ? r->values[i] : NULL;
}

/* ==== shared ==== */

static int open_store(sqlite3 **db)
{
	struct err e;

	err_clear(&e);
	if (store_open(NULL, db, &e) < 0)
		return cli_fail("rag", &e);
	return 0;
}

/* A failure of the service: an unknown collection is a bad argument. */
static int rag_fail(const struct err *e)
{
	int status = cli_fail("rag", e);
	return e->code == ERR_NOT_FOUND ? EXIT_USAGE : status;
}

/* path relative to the working directory when it lies below it. */
static const char *shown_path(const char *path)
{
	static char cwd[PATH_MAX];
	static int have = -1;
	size_t n;

	if (have < 0)
		have = getcwd(cwd, sizeof(cwd)) != NULL;
	n = have ? strlen(cwd) : 0;
	if (n > 1 && !strncmp(path, cwd, n) && path[n] == '/')
		return path + n + 1;
	return path;
}

static void join_operands(const struct opt_result *r, int from, struct buf *b)
{
	for (int i = from; i < r->noperands; i++) {
		if (i > from)
			buf_putc(b, ' ');
		buf_appends(b, r->operands[i]);
	}
}

/* ==== index ==== */

struct indexer {
	sqlite3 *db;
	struct rag_collection coll;
	const struct opt_result *r;
	const struct opt *o;
	size_t n;
	char **files;
	size_t nfiles, cap;
	int failed;
};

/* Does name or path match one of the values given to --include/--exclude? */
static int matches(const struct indexer *ix, const char *opt, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t k = find(ix->o, ix->n, opt);

	base = base ? base + 1 : path;
	for (size_t i = 0; i < ix->r->ngiven; i++) {
		const char *g = ix->r->given[i].value;
		if (ix->r->given[i].opt != k)
			continue;
		if (!fnmatch(g, base, 0) || !fnmatch(g, path, 0))
			return 1;
	}
	return 0;
}

static void add_file(struct indexer *ix, const char *path)
{
	char *abs;

	if (matches(ix, "exclude", path))
		return;
	if (seen(ix->r, ix->o, ix->n, "include") && !matches(ix, "include", path))
		return;
	if (!(abs = realpath(path, NULL))) {
		fprintf(stderr, "aichat: rag: cannot index '%s': %s\n", path,
			strerror(errno));
		ix->failed++;
		return;
	}
	if (ix->nfiles == ix->cap) {
		ix->cap = ix->cap ? 2 * ix->cap : 64;
		ix->files = xrealloc(ix->files, ix->cap * sizeof(*ix->files));
	}
	ix->files[ix->nfiles++] = abs;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hidden entries (.git, .hg, .svn included) and other VCS directories. */
static int ignored(const char *name)
{
	return name[0] == '.' || !strcmp(name, "CVS") || !strcmp(name, "_darcs");
}

static void walk(struct indexer *ix, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		fprintf(stderr, "aichat: rag: cannot read directory '%s': %s\n", dir,
			strerror(errno));
		ix->failed++;
		return;
	}
	while ((de = readdir(d))) {
		if (ignored(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 32;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		struct buf p;
		struct stat sb;

		buf_init(&p, 0);
		buf_printf(&p, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
			   names[i]);
		/* Symbolic links to files count; to directories they do not,
		 * so a link loop cannot run forever. */
		if (lstat(p.ptr, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			if (!matches(ix, "exclude", p.ptr))
				walk(ix, p.ptr);
		} else if (stat(p.ptr, &sb) == 0 && S_ISREG(sb.st_mode)) {
			add_file(ix, p.ptr);
		}
		buf_release(&p);
		free(names[i]);
	}
	free(names);
}

static void add_operand(struct indexer *ix, const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0) {
		fprintf(stderr, "aichat: rag: cannot index '%s': %s\n", path,
			strerror(errno));
		ix->failed++;
	} else if (S_ISDIR(sb.st_mode)) {
		walk(ix, path);
	} else {
		add_file(ix, path);
	}
}

static void add_stdin_paths(struct indexer *ix)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	while ((len = getline(&line, &cap, stdin)) > 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len)
			add_operand(ix, line);
	}
	free(line);
}

static void progress(size_t done, size_t total, int64_t *last, int final)
{
	int64_t now = loop_now_ms();

	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	if (now - *last < 100)
		return;
	*last = now;
	fprintf(stderr, "\raichat: rag: indexing %zu/%zu files (%d%%)\033[K", done,
		total, total ? (int)(done * 100 / total) : 100);
}

/* Chunks read from the store per round of embedding: a few batches
 * each for the EMBED_PARALLEL transfers, and bounded memory. */
#define EMBED_ROUND (EMBED_BATCH * EMBED_PARALLEL * 4)

/*
 * Gives every chunk of the collection that has no vector one, round after
 * round; stops at the first round that leaves some without (the provider
 * is down or refusing: asking again at once would not help).  *added
 * says how many vectors were stored.  -1 with e when the store refuses
 * them (another dimension) or cannot be written; 1 with e when the
 * provider failed; 0 when none is missing any more.
 */
static int embed_missing(struct indexer *ix, const struct embed_model *em,
			 int tty, size_t *added, struct err *e)
{
	struct llm_opts lo;
	int64_t after = 0, last = 0;
	long todo = 0;
	int rc = 0;

	*added = 0;
	llm_opts_default(&lo);
	if (rag_count_missing(ix->db, &ix->coll, &todo, e) < 0)
		return -1;
	for (;;) {
		struct rag_pending *p = NULL;
		struct embed_result res;
		const char **texts;
		int64_t *ids;
		size_t np = 0, stored = 0;

		if (rag_missing_vectors(ix->db, &ix->coll, after, EMBED_ROUND, &p, &np, e) < 0) {
			rag_pending_free(p, np);
			return -1;
		}
		if (!np) {
			rag_pending_free(p, np);
			break;
		}
		if (tty)
			fprintf(stderr, "\raichat: rag: embedding %zu/%ld chunks\033[K",
				*added, todo);
		texts = xmalloc(np * sizeof(*texts));
		ids = xmalloc(np * sizeof(*ids));
		for (size_t i = 0; i < np; i++) {
			texts[i] = p[i].text;
			ids[i] = p[i].id;
		}
		after = p[np - 1].id;
		embed_run(em, texts, np, &lo, &res);
		if (res.dim && rag_store_vectors(ix->db, &ix->coll, embed_model_name(em),
						 res.dim, ids, res.vecs, res.ok, np,
						 &stored, e) < 0)
			rc = -1;
		*added += stored;
		if (!rc && res.failed) {
			*e = res.err;
			rc = 1;
		}
		embed_result_release(&res);
		free(texts);
		free(ids);
		rag_pending_free(p, np);
		if (rc)
			break;
	}
	if (tty)
		progress(0, 0, &last, 1);
	return rc;
}

/* Files counted by reason, for one summary line. */
struct tally_entry {
	const char *why;
	size_t n;
};

struct tally {
	struct tally_entry *v;
	size_t n, total;
};

static void tally_add(struct tally *t, const char *why)
{
	size_t i;

	t->total++;
	for (i = 0; i < t->n && strcmp(t->v[i].why, why); i++)
		;
	if (i == t->n) {
		t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
		t->v[t->n].why = why;
		t->v[t->n++].n = 0;
	}
	t->v[i].n++;
}

/* "1990 binary, 11 too large": most first, ties by name. */
static void tally_print(struct tally *t, FILE *f)
{
	for (size_t i = 0; i < t->n; i++) {
		size_t best = i;
		for (size_t j = i + 1; j < t->n; j++)
			if (t->v[j].n > t->v[best].n ||
			    (t->v[j].n == t->v[best].n && strcmp(t->v[j].why, t->v[best].why) < 0))
				best = j;
		if (best != i) {
			struct tally_entry tmp = t->v[i];
			t->v[i] = t->v[best];
			t->v[best] = tmp;
		}
		fprintf(f, "%s%zu %s", i ? ", " : "", t->v[i].n, t->v[i].why);
	}
}

static void tally_release(struct tally *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int rag_index(const struct opt_result *r, const struct opt *o, size_t n)
{
	struct indexer ix = { .r = r, .o = o, .n = n };
	cJSON *opts = cJSON_CreateObject();
	struct config cfg = { 0 };
	struct embed_model em = { 0 };
	struct err e, eerr;
	const char *name = value(r, o, n, "collection");
	const char *embed = value(r, o, n, "embed-model");
	const char *language;
	size_t counts[4] = { 0 }, chunks = 0, vectors = 0, max_size;
	struct tally skipped = { 0 }, warned = { 0 };
	int verbose = seen(r, o, n, "verbose");
	long missing = 0;
	int have_em = 0, embed_rc = 0;
	int64_t start = loop_now_ms(), last = 0;
	int chunk_size, overlap, force = 0, tty = isatty(STDERR_FILENO), status;
	double d;

	err_clear(&e);
	if (opt_validate(o, n, r, &index_schema, opts, "rag")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	name = json_str(opts, "collection");
	chunk_size = json_num(opts, "chunk_size", &d) == 0 ? (int)d : RAG_DEFAULT_CHUNK_SIZE;
	overlap = json_num(opts, "overlap", &d) == 0 ? (int)d : RAG_DEFAULT_OVERLAP;
	max_size = json_num(opts, "max_file_size", &d) == 0 ? (size_t)d :
		   RAG_DEFAULT_MAX_FILE_SIZE;
	if (overlap * 2 > chunk_size) {
		fprintf(stderr, "aichat: rag: invalid value '%d' for '--overlap': must be at most half of --chunk-size (%d)\n",
			overlap, chunk_size);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (rag_name_check(name, &e) < 0) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	if (!r->noperands) {
		fprintf(stderr, "aichat: rag: no path given: name files or directories, or '-' to read paths from stdin (see 'aichat rag index --help')\n");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (embed && !*embed) {
		fprintf(stderr, "aichat: rag: invalid value '' for '--embed-model': expected provider:model\n");
		status = EXIT_USAGE;
		goto cleanup;
	}
	/* A model named on the command line must work before anything is
	 * indexed; one recorded by an earlier run is resolved below. */
	if (embed && (config_load(&cfg, &e) < 0 || embed_resolve(&cfg, embed, &em, &e) < 0)) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	have_em = embed != NULL;
	if ((status = open_store(&ix.db)))
		goto cleanup;
	/* Another indexer may hold the store for a whole large file. */
	sqlite3_busy_timeout(ix.db, 300000);
	language = seen(r, o, n, "language") ? json_str(opts, "language") : NULL;
	if (rag_collection_ensure(ix.db, name, chunk_size, overlap,
				  language ? language : "en", &ix.coll, &e) < 0) {
		status = rag_fail(&e);
		goto cleanup;
	}
	/* A new language: the chunks move to its index, and every file
	 * named now is read again (a collection from before languages has
	 * no titles yet). */
	if (language && strcmp(ix.coll.language, language)) {
		if (rag_collection_set_language(ix.db, &ix.coll, language, &e) < 0) {
			status = rag_fail(&e);
			goto cleanup;
		}
		force = 1;
	}
	/* New chunk settings apply to every file indexed now. */
	if ((seen(r, o, n, "chunk-size") && ix.coll.chunk_size != chunk_size) ||
	    (seen(r, o, n, "overlap") && ix.coll.overlap != overlap)) {
		if (!seen(r, o, n, "chunk-size"))
			chunk_size = ix.coll.chunk_size;
		if (!seen(r, o, n, "overlap"))
			overlap = ix.coll.overlap;
		if (overlap * 2 > chunk_size) {
			fprintf(stderr, "aichat: rag: invalid value '%d' for '--overlap': must be at most half of the chunk size (%d)\n",
				overlap, chunk_size);
			status = EXIT_USAGE;
			goto cleanup;
		}
		if (rag_collection_set_chunking(ix.db, &ix.coll, chunk_size, overlap, &e) < 0) {
			status = rag_fail(&e);
			goto cleanup;
		}
		force = 1;
	}
	err_clear(&eerr);
	if (have_em && rag_collection_set_embed_model(ix.db, &ix.coll,
						      embed_model_name(&em), &e) < 0) {
		status = rag_fail(&e);
		goto cleanup;
	} else if (!have_em && ix.coll.embed_model[0]) {
		if (config_load(&cfg, &eerr) == 0 &&
		    embed_resolve(&cfg, ix.coll.embed_model, &em, &eerr) == 0)
			have_em = 1;
		else
			embed_rc = 1;
	}

	for (int i = 0; i < r->noperands; i++) {
		if (!strcmp(r->operands[i], "-"))
			add_stdin_paths(&ix);
		else
			add_operand(&ix, r->operands[i]);
	}
	for (size_t i = 0; i < ix.nfiles; i++) {
		struct rag_file res;

		if (tty)
			progress(i, ix.nfiles, &last, 0);
		err_clear(&e);
		if (rag_index_file(ix.db, &ix.coll, ix.files[i], force, max_size, &res,
				   &e) < 0) {
			if (tty)
				progress(0, 0, &last, 1);
			fprintf(stderr, "aichat: rag: %s\n", e.msg);
			ix.failed++;
			continue;
		}
		if (res.outcome == RAG_SKIPPED) {
			tally_add(&skipped, res.skip ? res.skip : "other");
			if (verbose) {
				if (tty)
					progress(0, 0, &last, 1);
				fprintf(stderr, "aichat: rag: %s\n", e.msg);
			}
		} else if (res.note[0]) {
			tally_add(&warned, "warning");
			if (verbose) {
				if (tty)
					progress(0, 0, &last, 1);
				fprintf(stderr, "aichat: rag: '%s' %s\n", ix.files[i], res.note);
			}
		}
		counts[res.outcome]++;
		chunks += res.nchunks;
	}
	if (tty && ix.nfiles)
		progress(0, 0, &last, 1);
	if (seen(r, o, n, "prune")) {
		size_t removed;
		if (rag_prune(ix.db, &ix.coll, &removed, &e) < 0) {
			fprintf(stderr, "aichat: rag: %s\n", e.msg);
			ix.failed++;
		} else {
			fprintf(stderr, "aichat: rag: pruned %zu file%s that %s gone\n",
				removed, removed == 1 ? "" : "s",
				removed == 1 ? "is" : "are");
		}
	}
	if (have_em) {
		embed_rc = embed_missing(&ix, &em, tty, &vectors, &eerr);
		if (embed_rc < 0)
			status = cli_fail("rag", &eerr);
	}
	if (embed_rc > 0)
		fprintf(stderr, "aichat: rag: indexed without vectors: %s\n", eerr.msg);
	if (ix.coll.embed_model[0] && rag_count_missing(ix.db, &ix.coll, &missing, &e) < 0) {
		fprintf(stderr, "aichat: rag: %s\n", e.msg);
		ix.failed++;
	}
	if (skipped.total) {
		fprintf(stderr, "aichat: rag: skipped %zu file%s: ", skipped.total,
			skipped.total == 1 ? "" : "s");
		tally_print(&skipped, stderr);
		fprintf(stderr, "%s\n", verbose ? "" : " (--verbose lists them)");
	}
	if (warned.total)
		fprintf(stderr, "aichat: rag: %zu file%s indexed with warnings%s\n",
			warned.total, warned.total == 1 ? "" : "s",
			verbose ? "" : " (--verbose lists them)");
	fprintf(stderr, "aichat: rag: %zu files added, %zu updated, %zu unchanged, %zu skipped, %zu chunks, ",
		counts[RAG_ADDED], counts[RAG_UPDATED], counts[RAG_UNCHANGED],
		counts[RAG_SKIPPED], chunks);
	if (ix.coll.embed_model[0])
		fprintf(stderr, "%zu vectors, ", vectors);
	if (missing > 0)
		fprintf(stderr, "%ld chunks without vectors%s, ", missing,
			embed_rc > 0 ? " (run the index again to add them)" : "");
	fprintf(stderr, "%.1f s\n", (loop_now_ms() - start) / 1000.0);
	if (ix.failed)
		status = EXIT_RUNTIME;
	else if (embed_rc < 0)
		; /* the status of the store's refusal, set above */
	else if (missing > 0)
		status = EXIT_PROVIDER;
	else
		status = EXIT_OK;

cleanup:
	tally_release(&skipped);
	tally_release(&warned);
	for (size_t i = 0; i < ix.nfiles; i++)
		free(ix.files[i]);
	free(ix.files);
	cJSON_Delete(opts);
	embed_model_release(&em);
	config_release(&cfg);
	store_close(ix.db);
	return status;
}

/* ==== search and query ==== */

/* Whether text has a word to search for (else rag_search says so). */
static int has_words(const char *text)
{
	char *fq = rag_fts_query(text);
	int yes = fq != NULL;

	free(fq);
	return yes;
}

/*
 * The query embedded by the collection's model into *vec (owned) and
 * *dim; -1 with e when that cannot be done (no model, provider down, a
 * vector of another dimension).
 */
static int embed_query(const struct rag_collection *c, const char *query,
		       float **vec, int *dim, struct err *e)
{
	struct config cfg = { 0 };
	struct embed_model em = { 0 };
	struct embed_result res = { 0 };
	struct llm_opts lo;
	int rc = -1;

	*vec = NULL;
	*dim = 0;
	llm_opts_default(&lo);
	if (config_load(&cfg, e) < 0 || embed_resolve(&cfg, c->embed_model, &em, e) < 0)
		goto cleanup;
	if (embed_run(&em, &query, 1, &lo, &res) < 0) {
		*e = res.err;
		goto cleanup;
	}
	if (res.dim != c->dim) {
		err_set(e, ERR_CONFIG,
			"embedding model '%s' returned %d-dimension vectors but collection '%s' holds %d-dimension vectors",
			c->embed_model, res.dim, c->name, c->dim);
		goto cleanup;
	}
	*vec = res.vecs;
	*dim = res.dim;
	res.vecs = NULL;
	rc = 0;
cleanup:
	embed_result_release(&res);
	embed_model_release(&em);
	config_release(&cfg);
	return rc;
}

/*
 * Validates the question and flags as a RAGRequest into body, then
 * retrieves.  Returns -1 and sets *status on any failure (nothing sent).
 */
static int retrieve(const struct opt_result *r, const struct opt *o, size_t n,
		    const struct config *cfg, const char *what, cJSON *body,
		    struct rag_hit **hits, size_t *nhits, int64_t *latency_ms,
		    const char **retrieval, int *status)
{
	struct rag_collection c;
	struct cli_limit cap;
	struct schema *table = NULL;
	struct buf q;
	struct err e;
	sqlite3 *db = NULL;
	float *qvec = NULL;
	double d;
	int64_t t0;
	int rc = -1, dim = 0, k;

	err_clear(&e);
	buf_init(&q, 0);
	*hits = NULL;
	*nhits = 0;
	if (!r->noperands) {
		fprintf(stderr, "aichat: rag: no %s given (see 'aichat rag %s --help')\n",
			what, !strcmp(what, "query") ? "search" : "query");
		*status = EXIT_USAGE;
		goto cleanup;
	}
	join_operands(r, 0, &q);
	cJSON_AddStringToObject(body, "query", q.ptr);
	/* The CLI's question is bounded by bytes, not RAGRequest's
	 * characters. */
	table = cli_schema_lift(&schema_rag_request);
	if (opt_validate(o, n, r, table, body, "rag")) {
		*status = EXIT_USAGE;
		goto cleanup;
	}
	if (cli_limit_load(cfg, &cap, &e) < 0 ||
	    cli_limit_check(&cap, !strcmp(what, "query") ? "the query" : "the question",
			    q.len, 0, &e) < 0 ||
	    cli_text_check(!strcmp(what, "query") ? "the query" : "the question",
			   q.ptr, q.len, &e) < 0) {
		*status = cli_fail("rag", &e);
		goto cleanup;
	}
	if (rag_name_check(json_str(body, "collection"), &e) < 0) {
		*status = cli_fail("rag", &e);
		goto cleanup;
	}
	if ((*status = open_store(&db)))
		goto cleanup;
	t0 = loop_now_ms();
	k = json_num(body, "top_k", &d) == 0 ? (int)d : 5;
	*retrieval = "bm25";
	/* Errors of the collection itself are rag_search's to report. */
	if (rag_collection_get(db, json_str(body, "collection"), &c, &e) == 0 &&
	    c.chunks > 0 && c.vectors > 0 && c.embed_model[0] && has_words(q.ptr)) {
		if (embed_query(&c, q.ptr, &qvec, &dim, &e) == 0)
			*retrieval = "hybrid";
		else
			fprintf(stderr, "aichat: rag: searching with BM25 only: cannot embed the query: %s\n",
				e.msg);
	}
	err_clear(&e);
	if (rag_search_hybrid(db, json_str(body, "collection"), q.ptr, qvec, dim, k,
			      hits, nhits, &e) < 0) {
		*status = rag_fail(&e);
		goto cleanup;
	}
	*latency_ms = loop_now_ms() - t0;
	for (size_t i = 0; i < *nhits; i++) {
		char *p = xstrdup(shown_path((*hits)[i].path));
		free((*hits)[i].path);
		(*hits)[i].path = p;
	}
	rc = 0;
cleanup:
	free(qvec);
	store_close(db);
	rag_vectors_release();
	schema_free(table);
	buf_release(&q);
	return rc;
}

static cJSON *lines_json(const struct rag_hit *h)
{
	cJSON *a = cJSON_CreateArray();

	cJSON_AddItemToArray(a, cJSON_CreateNumber(h->line_first));
	cJSON_AddItemToArray(a, cJSON_CreateNumber(h->line_last));
	return a;
}

static int rag_search_cmd(const struct opt_result *r, const struct opt *o, size_t n)
{
	cJSON *body = cJSON_CreateObject();
	struct config cfg = { 0 };
	struct rag_hit *hits;
	struct err e;
	size_t nhits;
	const char *how = "bm25";
	int64_t ms;
	int status = EXIT_OK;

	if (config_load(&cfg, &e) < 0) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	if (retrieve(r, o, n, &cfg, "query", body, &hits, &nhits, &ms, &how,
		     &status) < 0)
		goto cleanup;
	if (seen(r, o, n, "json")) {
		cJSON *a = cJSON_CreateArray();
		for (size_t i = 0; i < nhits; i++) {
			cJSON *h = cJSON_CreateObject();
			cJSON_AddItemToArray(a, h);
			cJSON_AddNumberToObject(h, "rank", hits[i].rank);
			cJSON_AddNumberToObject(h, "score", hits[i].score);
			cJSON_AddStringToObject(h, "path", hits[i].path);
			cJSON_AddItemToObject(h, "lines", lines_json(&hits[i]));
			cJSON_AddStringToObject(h, "snippet", hits[i].snippet);
			cJSON_AddStringToObject(h, "retrieval", how);
		}
		char *s = json_print(a);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(a);
	} else {
		for (size_t i = 0; i < nhits; i++)
			printf("%2d  %6.2f  %s:%d-%d  %s\n", hits[i].rank, hits[i].score,
			       hits[i].path, hits[i].line_first, hits[i].line_last,
			       hits[i].snippet);
		if (!nhits)
			fprintf(stderr, "aichat: rag: no passage matches\n");
	}
	rag_hits_free(hits, nhits);
cleanup:
	config_release(&cfg);
	cJSON_Delete(body);
	return status;
}

struct run {
	int json;
	struct chat_result res;  /* scalars of the answer */
	char *answer;
};

/* Asks the model through the same path as `aichat chat`; the answer
 * streams to stdout unless --json.  0 or the failing exit status. */
static int ask(const struct config *cfg, const struct chat_request *req,
	       struct run *r)
{
	struct llm_opts lo;
	struct chat_result res;
	struct err e;
	int status;

	/* The passages count too: the whole prompt must fit the model. */
	if (cli_check_budget(cfg, req, &e) < 0)
		return cli_fail("rag", &e);
	llm_opts_default(&lo);
	memset(&res, 0, sizeof(res));
	buf_init(&res.content, 0);
	status = cli_chat_once("rag", cfg, req, &lo, r->json ? CLI_QUIET : CLI_STREAM,
			       0, &res);
	r->res = res;
	r->answer = xstrdup(res.content.ptr);
	buf_release(&res.content);
	buf_init(&r->res.content, 0);
	return status;
}

/* The answer's exchange goes to the usage ledger, as chat's do (unless
 * the config's "log" is false); a store that cannot take it is said on
 * stderr and changes nothing else: the answer is out already. */
static void record_usage(const struct config *cfg, const struct chat_result *res)
{
	struct usage_entry u;
	sqlite3 *db = NULL;
	struct err e;
	const char *why;

	if (!cfg->log || !res->model[0])
		return;
	err_clear(&e);
	if (store_open(NULL, &db, &e) < 0)
		goto out;
	if ((why = store_read_only_why(db))) {
		err_set(&e, ERR_IO, "%s", why);
		goto out;
	}
	usage_entry_from(&u, res, "rag", NULL);
	usage_record(db, &u, &e);
out:
	if (e.code != ERR_OK)
		fprintf(stderr, "aichat: rag: the exchange is not in the usage ledger: %s\n",
			e.msg);
	store_close(db);
}

static int rag_query(const struct opt_result *r, const struct opt *o, size_t n)
{
	cJSON *body = cJSON_CreateObject();
	struct chat_request req = { 0 };
	struct chat_message msg;
	struct run run = { .json = seen(r, o, n, "json") };
	struct config cfg = { 0 };
	struct rag_hit *hits = NULL;
	struct buf prompt;
	struct err e;
	size_t nhits = 0;
	const char *how = "bm25";
	int64_t ms = 0;
	int status = EXIT_OK;

	buf_init(&prompt, 0);
	if (config_load(&cfg, &e) < 0) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	if (retrieve(r, o, n, &cfg, "question", body, &hits, &nhits, &ms, &how,
		     &status) < 0)
		goto cleanup;
	if (!nhits) {
		fprintf(stderr, "aichat: rag: no passage of collection '%s' matches the question; nothing was sent\n",
			json_str(body, "collection"));
		status = EXIT_RUNTIME;
		goto cleanup;
	}
	rag_prompt(&prompt, json_str(body, "query"), hits, nhits);
	memset(&msg, 0, sizeof(msg));
	msg.role = "user";
	msg.content = prompt.ptr;
	req.model = (char *)json_str(body, "model");
	req.temperature = -1;
	req.stream = !seen(r, o, n, "no-stream");
	req.messages = &msg;
	req.nmessages = 1;
	status = ask(&cfg, &req, &run);
	/* An answer that failed part-way was paid for all the same. */
	if (run.res.have_usage || status == EXIT_OK)
		record_usage(&cfg, &run.res);
	if (status)
		goto cleanup;
	if (run.json) {
		cJSON *out = cJSON_CreateObject(), *src = cJSON_CreateArray();
		cJSON_AddStringToObject(out, "answer", run.answer ? run.answer : "");
		cJSON_AddItemToObject(out, "sources", src);
		for (size_t i = 0; i < nhits; i++) {
			cJSON *s = cJSON_CreateObject();
			cJSON_AddItemToArray(src, s);
			cJSON_AddNumberToObject(s, "n", (double)(i + 1));
			cJSON_AddStringToObject(s, "path", hits[i].path);
			cJSON_AddItemToObject(s, "lines", lines_json(&hits[i]));
			cJSON_AddNumberToObject(s, "score", hits[i].score);
		}
		cJSON_AddNumberToObject(out, "retrieval_latency_ms", (double)ms);
		cJSON_AddStringToObject(out, "retrieval", how);
		cJSON_AddStringToObject(out, "model", run.res.model);
		if (run.res.have_usage) {
			cJSON_AddNumberToObject(out, "prompt_tokens",
						(double)run.res.prompt_tokens);
			cJSON_AddNumberToObject(out, "completion_tokens",
						(double)run.res.completion_tokens);
		} else {
			cJSON_AddNullToObject(out, "prompt_tokens");
			cJSON_AddNullToObject(out, "completion_tokens");
		}
		char *s = json_print(out);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(out);
	} else {
		printf("\nSources:\n");
		for (size_t i = 0; i < nhits; i++)
			printf("[%zu] %s:%d-%d\n", i + 1, hits[i].path,
			       hits[i].line_first, hits[i].line_last);
	}
cleanup:
	free(run.answer);
	rag_hits_free(hits, nhits);
	buf_release(&prompt);
	cJSON_Delete(body);
	config_release(&cfg);
	return status;
}

/* ==== list, info, rm ==== */

static void human_size(char *out, size_t size, int64_t bytes)
{
	const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%lld B", (long long)bytes);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
}

static cJSON *collection_json(const struct rag_collection *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddNumberToObject(o, "documents", (double)c->documents);
	cJSON_AddNumberToObject(o, "chunks", (double)c->chunks);
	cJSON_AddNumberToObject(o, "bytes", (double)c->bytes);
	cJSON_AddNumberToObject(o, "chunk_size", c->chunk_size);
	cJSON_AddNumberToObject(o, "overlap", c->overlap);
	if (c->language[0])
		cJSON_AddStringToObject(o, "language", c->language);
	else
		cJSON_AddNullToObject(o, "language");
	if (c->embed_model[0])
		cJSON_AddStringToObject(o, "embed_model", c->embed_model);
	else
		cJSON_AddNullToObject(o, "embed_model");
	if (c->dim)
		cJSON_AddNumberToObject(o, "dim", c->dim);
	else
		cJSON_AddNullToObject(o, "dim");
	cJSON_AddNumberToObject(o, "vectors", (double)c->vectors);
	cJSON_AddStringToObject(o, "created_at", c->created_at);
	return o;
}

static void print_json(cJSON *v)
{
	char *s = json_print(v);

	printf("%s\n", s);
	free(s);
	cJSON_Delete(v);
}

static int rag_list(const struct opt_result *r, const struct opt *o, size_t n)
{
	struct rag_collection *c = NULL;
	size_t nc = 0;
	sqlite3 *db = NULL;
	struct err e;
	int status;

	err_clear(&e);
	if (r->noperands) {
		fprintf(stderr, "aichat: rag: list takes no argument (see 'aichat rag list --help')\n");
		return EXIT_USAGE;
	}
	if ((status = open_store(&db)))
		return status;
	if (rag_collection_list(db, &c, &nc, &e) < 0) {
		status = rag_fail(&e);
	} else if (seen(r, o, n, "json")) {
		cJSON *a = cJSON_CreateArray();
		for (size_t i = 0; i < nc; i++)
			cJSON_AddItemToArray(a, collection_json(&c[i]));
		print_json(a);
	} else if (nc) {
		printf("%-24s %10s %10s %12s\n", "NAME", "DOCUMENTS", "CHUNKS", "SIZE");
		for (size_t i = 0; i < nc; i++) {
			char sz[32];
			human_size(sz, sizeof(sz), c[i].bytes);
			printf("%-24s %10ld %10ld %12s\n", c[i].name, c[i].documents,
			       c[i].chunks, sz);
		}
	} else {
		fprintf(stderr, "aichat: rag: no collections yet (create one with 'aichat rag index PATH')\n");
	}
	free(c);
	store_close(db);
	return status;
}

/* The collection of info and rm: -c NAME or the one NAME operand (the
 * same when both are given), else def (NULL: one is required). */
static const char *one_name(const struct opt_result *r, const struct opt *o,
			    size_t n, const char *sub, const char *def)
{
	const char *c = value(r, o, n, "collection");

	if (r->noperands > 1 || (c && r->noperands == 1 && strcmp(c, r->operands[0]))) {
		fprintf(stderr, "aichat: rag: %s takes one collection name, as -c NAME or NAME (see 'aichat rag %s --help')\n",
			sub, sub);
		return NULL;
	}
	if (r->noperands == 1)
		return r->operands[0];
	if (c || def)
		return c ? c : def;
	fprintf(stderr, "aichat: rag: %s needs a collection name: -c NAME or NAME (see 'aichat rag %s --help')\n",
		sub, sub);
	return NULL;
}

static int rag_info(const struct opt_result *r, const struct opt *o, size_t n)
{
	struct rag_collection c;
	const char *name = one_name(r, o, n, "info", "default");
	sqlite3 *db = NULL;
	struct err e;
	int status;

	err_clear(&e);
	if (!name)
		return EXIT_USAGE;
	if (rag_name_check(name, &e) < 0)
		return cli_fail("rag", &e);
	if ((status = open_store(&db)))
		return status;
	if (rag_collection_count(db, name, &c, &e) < 0) {
		status = rag_fail(&e);
	} else if (seen(r, o, n, "json")) {
		print_json(collection_json(&c));
	} else {
		char sz[32];
		human_size(sz, sizeof(sz), c.bytes);
		printf("name:            %s\n"
		       "created:         %s\n"
		       "documents:       %ld\n"
		       "chunks:          %ld\n"
		       "size:            %s (%lld bytes)\n"
		       "chunk size:      %d\n"
		       "overlap:         %d\n",
		       c.name, c.created_at, c.documents, c.chunks, sz,
		       (long long)c.bytes, c.chunk_size, c.overlap);
		if (!strcmp(c.language, "en"))
			printf("language:        en (words stemmed, English stop words not ranked)\n");
		else if (c.language[0])
			printf("language:        none (words as written)\n");
		else
			printf("language:        none, indexed before languages (re-index with --language en to stem words)\n");
		if (!c.embed_model[0])
			printf("embedding model: none (keyword search, BM25)\n");
		else if (!c.dim)
			printf("embedding model: %s (no vectors yet; BM25 search)\n",
			       c.embed_model);
		else
			printf("embedding model: %s (%d dimensions; %ld of %ld chunks have vectors; hybrid search)\n",
			       c.embed_model, c.dim, c.vectors, c.chunks);
	}
	store_close(db);
	return status;
}

static int rag_rm(const struct opt_result *r, const struct opt *o, size_t n)
{
	const char *name = one_name(r, o, n, "rm", NULL);
	sqlite3 *db = NULL;
	struct err e;
	int status;

	err_clear(&e);
	if (!name)
		return EXIT_USAGE;
	if (rag_name_check(name, &e) < 0)
		return cli_fail("rag", &e);
	if ((status = open_store(&db)))
		return status;
	if (rag_collection_rm(db, name, &e) < 0)
		status = rag_fail(&e);
	else
		fprintf(stderr, "aichat: rag: removed collection '%s'\n", name);
	store_close(db);
	return status;
}

/* ==== eval ==== */

/* Qrels files are small; a larger one is surely not one. */
#define QRELS_MAX (64u << 20)

/* Reads the qrels file at path into b: -1 (message printed) when it
 * cannot be read or is too large. */
static int read_qrels(const char *path, struct buf *b)
{
	struct stat sb;
	char chunk[65536];
	size_t got;
	FILE *f;

	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "aichat: rag: eval: '%.200s' is a directory, not a qrels file\n",
			path);
		return -1;
	}
	if (!(f = fopen(path, "r"))) {
		fprintf(stderr, "aichat: rag: eval: cannot read '%.200s': %s\n", path,
			strerror(errno));
		return -1;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (b->len + got > QRELS_MAX) {
			fprintf(stderr, "aichat: rag: eval: '%.200s' is larger than %u bytes: not a qrels file\n",
				path, QRELS_MAX);
			fclose(f);
			return -1;
		}
		buf_append(b, chunk, got);
	}
	if (ferror(f)) {
		fprintf(stderr, "aichat: rag: eval: cannot read '%.200s': %s\n", path,
			strerror(errno));
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* One question's outcome. */
struct judged {
	char **hits;              /* stored paths, best first */
	size_t nhits;
	unsigned char *rel;       /* per hit */
	long *doc;                /* per relevant path: its document, or -1 */
	const char *retrieval;
};

/* Prints a warning to stderr (cleaned) and keeps it for --json. */
static void warn(cJSON *warnings, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(cJSON *warnings, const char *fmt, ...)
{
	struct buf b;
	va_list ap;
	char *clean;

	buf_init(&b, 0);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	clean = trust_clean_dup(b.ptr, b.len);
	fprintf(stderr, "aichat: rag: eval: %s\n", clean);
	cJSON_AddItemToArray(warnings, cJSON_CreateString(clean));
	free(clean);
	buf_release(&b);
}

/* Resolves q's relevant paths to documents into j->doc, warning about
 * those that match none or several; returns how many distinct relevant
 * files the question has (a path matching none counts as one). */
static size_t resolve(const struct rag_question *q, char **docs, size_t ndocs,
		      const char *cwd, const char *coll, struct judged *j,
		      cJSON *warnings)
{
	size_t distinct = 0;

	j->doc = xcalloc(q->nrelevant, sizeof(*j->doc));
	for (size_t r = 0; r < q->nrelevant; r++) {
		size_t nm;
		int dup = 0;
		j->doc[r] = rag_eval_match(docs, ndocs, cwd, q->relevant[r], &nm);
		if (j->doc[r] < 0)
			warn(warnings, "question '%.64s': relevant path '%.200s' matches no document of collection '%s' (counted as a miss)",
			     q->id, q->relevant[r], coll);
		else if (nm > 1)
			warn(warnings, "question '%.64s': relevant path '%.200s' matches %zu documents; taking '%s', the shortest (give more of its path)",
			     q->id, q->relevant[r], nm, shown_path(docs[j->doc[r]]));
		for (size_t p = 0; p < r && j->doc[r] >= 0; p++)
			dup |= j->doc[p] == j->doc[r];
		distinct += !dup;
	}
	return distinct;
}

static void judged_release(struct judged *j, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		rag_paths_free(j[i].hits, j[i].nhits);
		free(j[i].rel);
		free(j[i].doc);
	}
	free(j);
}

static void print_verbose(const struct rag_question *q, const struct judged *j,
			  const struct rag_eval_scores *s, char **docs, size_t k)
{
	size_t show = k > RAG_EVAL_DEPTH ? k : RAG_EVAL_DEPTH;
	char *id = trust_clean_dup(q->id, strlen(q->id));
	char *kind = trust_clean_dup(q->kind, strlen(q->kind));
	char *query = trust_clean_dup(q->query, strlen(q->query));

	printf("%s (%s): %s\n", id, kind, query);
	printf("  RR %.3f  nDCG@%d %.3f  Recall@%zu %.3f\n", s->rr, RAG_EVAL_DEPTH,
	       s->ndcg, k, s->recall);
	for (size_t i = 0; i < j->nhits && i < show; i++)
		printf("  %3zu %c %s\n", i + 1, j->rel[i] ? '*' : ' ',
		       shown_path(j->hits[i]));
	for (size_t r = 0; r < q->nrelevant; r++) {
		size_t i = j->nhits;
		if (j->doc[r] >= 0)
			for (i = 0; i < j->nhits && i < show &&
			     strcmp(j->hits[i], docs[j->doc[r]]); i++)
				;
		if (j->doc[r] < 0) {
			char *p = trust_clean_dup(q->relevant[r], strlen(q->relevant[r]));
			printf("      - %s (no such document)\n", p);
			free(p);
		} else if (i >= j->nhits || i >= show)
			printf("      - %s (relevant, not in the first %zu)\n",
			       shown_path(docs[j->doc[r]]), show);
	}
	putchar('\n');
	free(id);
	free(kind);
	free(query);
}

static void print_table(const struct rag_eval_row *rows, size_t n, size_t k)
{
	char rk[32];
	int tty = isatty(STDOUT_FILENO);
	int w = 4;

	snprintf(rk, sizeof(rk), "RECALL@%zu", k);
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(rows[i].kind) > w)
			w = (int)strlen(rows[i].kind);
	if (tty)
		printf("%-*s  %9s  %7s  %7s  %9s\n", w, "KIND", "QUESTIONS", "MRR@10",
		       "nDCG@10", rk);
	else
		printf("KIND\tQUESTIONS\tMRR@10\tnDCG@10\t%s\n", rk);
	for (size_t i = 0; i < n; i++) {
		char *kind = trust_clean_dup(rows[i].kind, strlen(rows[i].kind));
		if (tty)
			printf("%-*s  %9zu  %7.3f  %7.3f  %9.3f\n", w, kind,
			       rows[i].questions, rows[i].mrr, rows[i].ndcg, rows[i].recall);
		else
			printf("%s\t%zu\t%.3f\t%.3f\t%.3f\n", kind, rows[i].questions,
			       rows[i].mrr, rows[i].ndcg, rows[i].recall);
		free(kind);
	}
}

static cJSON *eval_json(const char *coll, const char *retrieval, size_t k,
			const struct rag_qrels *q, const struct judged *j,
			const struct rag_eval_scores *s, char **docs,
			const struct rag_eval_row *rows, size_t nrows, cJSON *warnings)
{
	cJSON *out = cJSON_CreateObject(), *sum = cJSON_CreateArray(),
	      *res = cJSON_CreateArray();
	size_t show = k > RAG_EVAL_DEPTH ? k : RAG_EVAL_DEPTH;

	cJSON_AddStringToObject(out, "collection", coll);
	cJSON_AddStringToObject(out, "retrieval", retrieval);
	cJSON_AddNumberToObject(out, "k", (double)k);
	cJSON_AddNumberToObject(out, "questions", (double)q->n);
	cJSON_AddItemToObject(out, "summary", sum);
	for (size_t i = 0; i < nrows; i++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddItemToArray(sum, r);
		cJSON_AddStringToObject(r, "kind", rows[i].kind);
		cJSON_AddNumberToObject(r, "questions", (double)rows[i].questions);
		cJSON_AddNumberToObject(r, "mrr_at_10", rows[i].mrr);
		cJSON_AddNumberToObject(r, "ndcg_at_10", rows[i].ndcg);
		cJSON_AddNumberToObject(r, "recall_at_k", rows[i].recall);
	}
	cJSON_AddItemToObject(out, "results", res);
	for (size_t i = 0; i < q->n; i++) {
		cJSON *r = cJSON_CreateObject(), *rel = cJSON_CreateArray(),
		      *hits = cJSON_CreateArray();
		cJSON_AddItemToArray(res, r);
		cJSON_AddStringToObject(r, "id", q->q[i].id);
		cJSON_AddStringToObject(r, "kind", q->q[i].kind);
		cJSON_AddStringToObject(r, "query", q->q[i].query);
		cJSON_AddStringToObject(r, "retrieval", j[i].retrieval);
		cJSON_AddNumberToObject(r, "rr", s[i].rr);
		cJSON_AddNumberToObject(r, "ndcg", s[i].ndcg);
		cJSON_AddNumberToObject(r, "recall", s[i].recall);
		if (s[i].first)
			cJSON_AddNumberToObject(r, "first_relevant_rank", (double)s[i].first);
		else
			cJSON_AddNullToObject(r, "first_relevant_rank");
		cJSON_AddItemToObject(r, "relevant", rel);
		for (size_t p = 0; p < q->q[i].nrelevant; p++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToArray(rel, o);
			cJSON_AddStringToObject(o, "path", q->q[i].relevant[p]);
			if (j[i].doc[p] >= 0)
				cJSON_AddStringToObject(o, "document",
							shown_path(docs[j[i].doc[p]]));
			else
				cJSON_AddNullToObject(o, "document");
		}
		cJSON_AddItemToObject(r, "hits", hits);
		for (size_t h = 0; h < j[i].nhits && h < show; h++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddItemToArray(hits, o);
			cJSON_AddNumberToObject(o, "rank", (double)(h + 1));
			cJSON_AddStringToObject(o, "path", shown_path(j[i].hits[h]));
			cJSON_AddBoolToObject(o, "relevant", j[i].rel[h]);
		}
	}
	cJSON_AddItemReferenceToObject(out, "warnings", warnings);
	return out;
}

static int rag_eval(const struct opt_result *r, const struct opt *o, size_t n)
{
	cJSON *opts = cJSON_CreateObject(), *warnings = cJSON_CreateArray();
	struct rag_qrels q = { 0 };
	struct rag_collection c;
	struct rag_eval_scores *s = NULL;
	struct rag_eval_row *rows = NULL;
	struct judged *j = NULL;
	struct buf text;
	struct err e;
	sqlite3 *db = NULL;
	char **docs = NULL, cwd[PATH_MAX];
	const char *name, *retrieval = NULL;
	size_t ndocs = 0, k, need, nrows = 0;
	int status = EXIT_USAGE, embed = 0;
	double d;

	err_clear(&e);
	buf_init(&text, 0);
	if (opt_validate(o, n, r, &eval_schema, opts, "rag"))
		goto cleanup;
	name = json_str(opts, "collection");
	k = json_num(opts, "eval_k", &d) == 0 ? (size_t)d : 10;
	need = k > RAG_EVAL_DEPTH ? k : RAG_EVAL_DEPTH;
	if (r->noperands != 1) {
		fprintf(stderr, "aichat: rag: eval takes one qrels file, %s (see 'aichat rag eval --help')\n",
			r->noperands ? "not several" : "none was given");
		goto cleanup;
	}
	if (rag_name_check(name, &e) < 0) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	/* The whole file is checked before the store is opened. */
	if (read_qrels(r->operands[0], &text) < 0)
		goto cleanup;
	if (rag_qrels_parse(r->operands[0], text.ptr, text.len, &q, &e) < 0) {
		status = cli_fail("rag", &e);
		goto cleanup;
	}
	if ((status = open_store(&db)))
		goto cleanup;
	if (rag_collection_get(db, name, &c, &e) < 0) {
		status = rag_fail(&e);
		goto cleanup;
	}
	if (!c.chunks) {
		err_set(&e, ERR_CONFIG,
			"collection '%s' is empty: index some files first ('aichat rag index -c %s PATH')",
			c.name, c.name);
		status = rag_fail(&e);
		goto cleanup;
	}
	if (rag_documents(db, &c, &docs, &ndocs, &e) < 0) {
		status = rag_fail(&e);
		goto cleanup;
	}
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	/* As `rag search`: hybrid when the collection has vectors and the
	 * query can be embedded; once embedding fails, BM25 for the rest. */
	embed = c.vectors > 0 && c.embed_model[0];
	j = xcalloc(q.n, sizeof(*j));
	s = xcalloc(q.n, sizeof(*s));
	for (size_t i = 0; i < q.n; i++) {
		const struct rag_question *qq = &q.q[i];
		size_t nrel = resolve(qq, docs, ndocs, cwd, c.name, &j[i], warnings);
		float *qvec = NULL;
		int dim = 0;

		if (embed && embed_query(&c, qq->query, &qvec, &dim, &e) < 0) {
			warn(warnings, "searching with BM25 only from question '%.64s' on: cannot embed the query: %s",
			     qq->id, e.msg);
			embed = 0;
			err_clear(&e);
		}
		j[i].retrieval = qvec ? "hybrid" : "bm25";
		if (!retrieval)
			retrieval = j[i].retrieval;
		else if (strcmp(retrieval, j[i].retrieval))
			retrieval = "mixed";
		if (rag_eval_rank(db, c.name, qq->query, qvec, dim, need, &j[i].hits,
				  &j[i].nhits, &e) < 0) {
			free(qvec);
			status = rag_fail(&e);
			goto cleanup;
		}
		free(qvec);
		j[i].rel = xcalloc(j[i].nhits ? j[i].nhits : 1, 1);
		for (size_t h = 0; h < j[i].nhits; h++)
			for (size_t p = 0; p < qq->nrelevant; p++)
				if (j[i].doc[p] >= 0 && !strcmp(j[i].hits[h], docs[j[i].doc[p]]))
					j[i].rel[h] = 1;
		rag_eval_score(j[i].rel, j[i].nhits, nrel, k, &s[i]);
	}
	nrows = rag_eval_summary(&q, s, &rows);
	if (seen(r, o, n, "json")) {
		print_json(eval_json(c.name, retrieval, k, &q, j, s, docs, rows, nrows,
				     warnings));
	} else {
		if (seen(r, o, n, "verbose"))
			for (size_t i = 0; i < q.n; i++)
				print_verbose(&q.q[i], &j[i], &s[i], docs, k);
		print_table(rows, nrows, k);
	}
	status = EXIT_OK;
cleanup:
	if (j)
		judged_release(j, q.n);
	free(s);
	free(rows);
	rag_paths_free(docs, ndocs);
	rag_qrels_release(&q);
	buf_release(&text);
	cJSON_Delete(opts);
	cJSON_Delete(warnings);
	store_close(db);
	rag_vectors_release();
	return status;
}

/* ==== dispatch ==== */

#define SUB(name, fn, opts, syn, sum) \
	{ name, fn, opts, sizeof(opts) / sizeof(opts[0]), syn, sum }

static const struct sub subs[] = {
	SUB("index", rag_index, index_opts,
	    "[-c NAME] [--chunk-size N] [--overlap N] [--include GLOB] [--exclude GLOB] [--prune] [--embed-model MODEL] [--max-file-size BYTES] [-v] PATH...",
	    "index files and directories (recursively; '-' reads paths from stdin)"),
	SUB("search", rag_search_cmd, search_opts, "[-c NAME] [-k N] [--json] QUERY...",
	    "the passages that best match QUERY (BM25, hybrid with vectors), best first"),
	SUB("query", rag_query, query_opts,
	    "[-c NAME] [-k N] [-m MODEL] [--no-stream] [--json] QUESTION...",
	    "answer QUESTION from the best passages, citing them as [n]"),
	SUB("list", rag_list, list_opts, "[--json]",
	    "collections with their documents, chunks and size"),
	SUB("info", rag_info, info_opts, "[-c NAME] [--json] [NAME]",
	    "one collection in detail"),
	SUB("rm", rag_rm, rm_opts, "-c NAME | NAME", "delete a collection and its index"),
	SUB("eval", rag_eval, eval_opts, "[-c NAME] [-k N] [-v] [--json] QRELS",
	    "score search on questions with judged files: MRR@10, nDCG@10, Recall@k per kind"),
};
static const size_t nsubs = sizeof(subs) / sizeof(subs[0]);

static void usage(FILE *f)
{
	fputs("usage: aichat rag SUBCOMMAND [options] [ARGS...]\n"
	      "\n"
	      "Index local documents, search them, and answer questions from them with\n"
	      "numbered sources.  Keyword search (BM25) works offline; a collection\n"
	      "indexed with --embed-model is searched by BM25 and vectors together.\n"
	      "\n"
	      "subcommands:\n", f);
	for (size_t i = 0; i < nsubs; i++)
		fprintf(f, "  %-8s%s\n", subs[i].name, subs[i].summary);
	fputs("\n"
	      "options:\n", f);
	opt_help(f, rag_opts, rag_nopts, help_schemas);
	fputs("\n"
	      "examples:\n"
	      "  aichat rag index -c notes ~/notes\n"
	      "  find . -name '*.md' | aichat rag index -\n"
	      "  aichat rag index -c notes --embed-model openai:text-embedding-3-small ~/notes\n"
	      "  aichat rag search -c notes backup schedule\n"
	      "  aichat rag query -c notes -m mock:echo \"when do backups run?\"\n"
	      "  aichat rag eval -c notes -v qrels.json\n"
	      "\n"
	      "Run 'aichat rag SUBCOMMAND --help' for the options of one subcommand;\n"
	      "see aichat-rag(1) for more.\n", f);
}

static void sub_usage(FILE *f, const struct sub *s)
{
	fprintf(f, "usage: aichat rag %s %s\n\n%c%s.\n\noptions:\n", s->name,
		s->synopsis, s->summary[0] - 'a' + 'A', s->summary + 1);
	opt_help(f, s->opts, s->nopts, help_schemas);
}

int cmd_rag(int argc, char **argv)
{
	struct opt_result r = { 0 };
	const struct sub *s = NULL;
	const char *names[16];
	struct err e;
	int status;

	err_clear(&e);
	if (argc < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < nsubs; i++) {
		names[i] = subs[i].name;
		if (!strcmp(argv[0], subs[i].name))
			s = &subs[i];
	}
	if (!s) {
		const char *hint = argv[0][0] != '-' ? opt_suggest(argv[0], names, nsubs) : NULL;
		if (hint)
			fprintf(stderr, "aichat: rag: unknown subcommand '%.64s' (did you mean '%s'? see 'aichat rag --help')\n",
				argv[0], hint);
		else
			fprintf(stderr, "aichat: rag: %s '%.64s' (see 'aichat rag --help')\n",
				argv[0][0] == '-' ? "expected a subcommand before" :
				"unknown subcommand", argv[0]);
		return EXIT_USAGE;
	}
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "rag %s", s->name);
	if (opt_parse(s->opts, s->nopts, argc - 1, argv + 1, cmd, &r, &e) < 0) {
		status = cli_fail("rag", &e);
	} else if (seen(&r, s->opts, s->nopts, "help")) {
		sub_usage(stdout, s);
		status = EXIT_OK;
	} else {
		status = s->run(&r, s->opts, s->nopts);
	}
	opt_result_release(&r);
	return status;
}
