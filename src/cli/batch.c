/*
 * batch.c - `aichat batch`: JSONL prompts in, JSONL results out.
 *
 * Streaming all the way: lines are read only when a slot is free, and in
 * ordered mode (the default) at most a window of results waits for an
 * earlier one, so memory is bounded by the concurrency, not the input.
 * Each result is one write(2) of one whole line, so a killed run never
 * leaves a torn line behind a complete one, and --resume can trust what
 * it reads.  A bad line is an error result for that line; the rest runs.
 */
#include "aichat/batch.h"
#include "aichat/cli.h"
#include "aichat/json.h"
#include "aichat/ratelimit.h"
#include "aichat/store.h"
#include "aichat/trust.h"
#include "aichat/usage.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	O_OUTPUT, O_RESUME, O_CONCURRENCY, O_MODEL, O_SYSTEM, O_TEMPERATURE,
	O_MAX_TOKENS, O_TEXT, O_UNORDERED, O_RATE, O_TPM, O_RETRIES, O_TIMEOUT,
	O_HELP,
};

const struct opt batch_opts[] = {
	[O_OUTPUT] = { 'o', "output", "FILE", NULL,
		       "write results to FILE instead of stdout" },
	[O_RESUME] = { 0, "resume", NULL, NULL,
		       "with -o: skip ids already answered in FILE, retry the failed ones" },
	[O_CONCURRENCY] = { 'j', "concurrency", "N", "concurrency",
			    "items in flight at once" },
	[O_MODEL] = { 'm', "model", "MODEL", "model",
		      "model for items that name none (default: as for chat)" },
	[O_SYSTEM] = { 's', "system", "TEXT", "system",
		       "system prompt for items that have none" },
	[O_TEMPERATURE] = { 't', "temperature", "X", "temperature",
			    "temperature for items that set none" },
	[O_MAX_TOKENS] = { 0, "max-tokens", "N", "max_tokens",
			   "max_tokens for items that set none" },
	[O_TEXT] = { 0, "text", NULL, NULL,
		     "each input line is a prompt; its line number is its id" },
	[O_UNORDERED] = { 0, "unordered", NULL, NULL,
			  "write results as they finish instead of in input order" },
	[O_RATE] = { 0, "rate", "RATE", NULL,
		     "start at most this many requests, e.g. 60/minute" },
	[O_TPM] = { 0, "tokens-per-minute", "N", "tokens_per_minute",
		    "pause starting items while the last minute used more tokens" },
	[O_RETRIES] = { 0, "retries", "N", "retries",
			"retries per item after a failed connection, 408, 429, 500, 502-504 or 529" },
	[O_TIMEOUT] = { 0, "timeout", "SECONDS", "timeout",
			"give up on an item after this many seconds" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t batch_nopts = sizeof(batch_opts) / sizeof(batch_opts[0]);

static const struct field batch_cli_fields[] = {
	{ "concurrency", FIELD_INTEGER, 0, "10", 1, 1000, NULL, NULL, "" },
	{ "tokens_per_minute", FIELD_INTEGER, 0, NULL, 1, 100000000, NULL, NULL, "" },
	{ "retries", FIELD_INTEGER, 0, "2", 0, 10, NULL, NULL, "" },
	{ "timeout", FIELD_NUMBER, 0, "600", 0.001, 86400, NULL, NULL, "" },
};
static const struct schema batch_cli_schema = {
	"BatchOptions", batch_cli_fields,
	sizeof(batch_cli_fields) / sizeof(batch_cli_fields[0])
};

static void usage(FILE *f)
{
	const struct schema *const schemas[] = {
		&batch_cli_schema, &schema_chat_request, NULL
	};

	fputs("usage: aichat batch [options] [FILE|-]\n"
	      "\n"
	      "Run every prompt of a JSONL file (or stdin) through a model, several at a\n"
	      "time, and write one JSON result per line.  Input lines look like\n"
	      "  {\"id\": \"a1\", \"prompt\": \"...\"}  or  {\"id\": 7, \"messages\": [...]}\n"
	      "optionally with model, system, temperature, max_tokens.  Output lines:\n"
	      "  {\"id\", \"content\", \"error\", \"model\", \"prompt_tokens\",\n"
	      "   \"completion_tokens\", \"latency_ms\", \"attempts\"}\n"
	      "\n"
	      "options:\n", f);
	opt_help(f, batch_opts, batch_nopts, schemas);
	fputs("\n"
	      "examples:\n"
	      "  aichat batch -m mock:echo prompts.jsonl > results.jsonl\n"
	      "  aichat batch -j 50 --rate 500/minute -o out.jsonl --resume in.jsonl\n"
	      "  ls *.md | sed 's/^/summarize /' | aichat batch --text -m mock:echo\n"
	      "\n"
	      "Exit status: 0 all items succeeded, 5 some failed, 2 unusable input.\n", f);
}

/* ==== items and results ==== */

struct item {
	size_t seq;              /* 0-based position among items */
	long line;               /* 1-based input line */
	char *id;                /* JSON text of the id */
	struct chat_request req;
	char *result;            /* the finished output line, '\n' included */
	int ok;
};

/* Finished items' exchanges on their way to the usage ledger. */
struct ledger {
	sqlite3 *db;
	int off;                 /* the store cannot take them: why says */
	char why[256];
	struct usage_entry *pend;
	size_t n, cap;
	size_t lost;             /* exchanges left out, for the summary */
};

struct run {
	struct loop *loop;
	struct engine *eng;
	struct batch *batch;
	const struct config *cfg;
	FILE *in;
	int out_fd;
	int text, ordered;
	cJSON *defaults;         /* model/system/temperature/max_tokens flags */
	/* reading */
	struct cli_limit cap;    /* bytes of an item's text */
	struct schema *chat_table, *conversation_table;
	struct buf text_line;
	long line;
	size_t next_seq;
	struct item *held;       /* read, waiting for the rate limit */
	int eof;
	size_t nonblank, parsed; /* lines seen / lines that were JSON */
	/* ordered output */
	struct item **window;
	size_t window_cap, next_write;
	/* resume */
	char **done_ids;
	size_t ndone, done_cap;
	size_t skipped;
	/* limits */
	struct ratelimit *rl;
	double tpm, tpm_tokens;
	int64_t tpm_at;
	int64_t paused_until;
	struct loop_timer *wake;
	int successes_since_slowdown;
	int concurrency, limit;
	/* progress */
	size_t total, items, ok, failed;
	long long tokens;
	int64_t started, last_progress;
	int progress;
	int interrupted;
	int write_error;
	struct ledger ledger;
};

/* ==== the usage ledger ==== */

/* Items' exchanges go to the ledger this many at a time, in one
 * transaction that never waits for a lock: the loop runs every item's
 * stream.  What a locked store refuses waits for the next try; the end
 * of the run waits for the lock as chat does. */
#define LEDGER_EVERY 256

static void ledger_off(struct ledger *l, const char *why)
{
	l->off = 1;
	snprintf(l->why, sizeof(l->why), "%s", why);
	l->lost += l->n;
	l->n = 0;
}

/* Writes what waits; wait: for a lock, as long as the store's timeout.
 * 0 when nothing waits any more. */
static int ledger_write(struct ledger *l, int wait)
{
	const char *why;
	struct err e;
	size_t i;

	err_clear(&e);
	if (!l->n)
		return 0;
	if (!l->db) {
		if (store_open(NULL, &l->db, &e) < 0) {
			ledger_off(l, e.msg);
			return -1;
		}
		if ((why = store_read_only_why(l->db))) {
			ledger_off(l, why);
			return -1;
		}
	}
	sqlite3_busy_timeout(l->db, wait ? 10000 : 0);
	if (sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (i = 0; i < l->n; i++)
		if (usage_record(l->db, &l->pend[i], &e) < 0)
			goto fail;
	if (sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	l->n = 0;
	return 0;
fail:
	snprintf(l->why, sizeof(l->why), "%s", sqlite3_errmsg(l->db));
	if (!sqlite3_get_autocommit(l->db))
		sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* An item's exchange, when it reached a model and the log is on. */
static void ledger_add(struct run *r, const struct chat_result *res)
{
	struct ledger *l = &r->ledger;

	if (!r->cfg->log || l->off || !res->model[0] ||
	    (!res->have_usage && res->err.code != ERR_OK))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : LEDGER_EVERY;
		l->pend = xrealloc(l->pend, l->cap * sizeof(*l->pend));
	}
	usage_entry_from(&l->pend[l->n++], res, "batch", NULL);
	if (l->n % LEDGER_EVERY == 0)
		ledger_write(l, 0);
}

/* The end of the run: what waits is written, or said to be left out. */
static void ledger_end(struct ledger *l)
{
	if (ledger_write(l, 1) < 0 && !l->off)
		l->lost += l->n;
	if (l->lost)
		fprintf(stderr, "aichat: batch: %zu exchange%s not in the usage ledger: %s\n",
			l->lost, l->lost == 1 ? " is" : "s are", l->why);
	store_close(l->db);
	free(l->pend);
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->id);
	free(it->result);
	chat_request_release(&it->req);
	free(it);
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static void emit(struct run *r, struct item *it)
{
	if (write_all(r->out_fd, it->result, strlen(it->result)) < 0 &&
	    !r->write_error) {
		r->write_error = errno;
		if (r->batch)
			loop_stop(r->loop);
	}
}

/* Writes every result that is next in input order. */
static void flush_window(struct run *r)
{
	size_t before = r->next_write;

	for (;;) {
		struct item **slot = &r->window[r->next_write % r->window_cap];
		if (!*slot || (*slot)->seq != r->next_write)
			break;
		emit(r, *slot);
		item_free(*slot);
		*slot = NULL;
		r->next_write++;
	}
	if (r->next_write != before && r->batch)
		batch_refill(r->batch);
}

static void progress(struct run *r, int force);

static void finish(struct run *r, struct item *it)
{
	r->items++;
	if (it->ok)
		r->ok++;
	else
		r->failed++;
	if (r->ordered) {
		r->window[it->seq % r->window_cap] = it;
		flush_window(r);
	} else {
		emit(r, it);
		item_free(it);
	}
	progress(r, 0);
}

static void set_result(struct item *it, const struct chat_result *res)
{
	cJSON *o = batch_result_json(it->id, res);
	char *text = json_print(o);

	cJSON_Delete(o);
	it->result = xmalloc(strlen(text) + 2);
	sprintf(it->result, "%s\n", text);
	free(text);
	it->ok = res->err.code == ERR_OK;
}

/* A line that never became a request: its error is its result. */
/*
 * The id of a line refused by the strict parser (a key twice, a NUL,
 * malformed UTF-8) that is still JSON: its result keeps the id the user
 * gave, when that id itself is a number or valid text.  NULL otherwise.
 */
static char *loose_id(const char *line, size_t n)
{
	cJSON *j = json_parse(line, n, NULL);
	const cJSON *id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
	char *out = NULL;

	if (cJSON_IsNumber(id) ||
	    (cJSON_IsString(id) &&
	     trust_utf8_invalid(id->valuestring, strlen(id->valuestring)) < 0))
		out = json_print(id);
	cJSON_Delete(j);
	return out;
}

static struct item *bad_line(struct run *r, char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct item *bad_line(struct run *r, char *id, const char *fmt, ...)
{
	struct item *it = xcalloc(1, sizeof(*it));
	struct chat_result res;
	va_list ap;

	memset(&res, 0, sizeof(res));
	buf_init(&res.content, 0);
	res.err.code = ERR_INVALID_REQUEST;
	va_start(ap, fmt);
	vsnprintf(res.err.msg, sizeof(res.err.msg), fmt, ap);
	va_end(ap);
	it->seq = r->next_seq++;
	it->line = r->line;
	if (id) {
		it->id = id;
	} else {
		it->id = xmalloc(24);
		snprintf(it->id, 24, "%ld", r->line);
	}
	set_result(it, &res);
	return it;
}

/* ==== resume ==== */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int already_done(const struct run *r, const char *id)
{
	return r->ndone && bsearch(&id, r->done_ids, r->ndone, sizeof(char *),
				   cmp_str) != NULL;
}

/*
 * Keeps the successful lines of a previous run's output (dropping failed
 * ones, which are retried, and a torn last line), remembers their ids,
 * and leaves the file ready for appending.
 */
static int resume_load(struct run *r, const char *path, struct err *e)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *tmp;
	size_t cap = 0;
	ssize_t n;
	FILE *out;
	struct buf tp;

	if (!f) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
	}
	buf_init(&tp, 0);
	buf_printf(&tp, "%s.resume.tmp", path);
	tmp = buf_detach(&tp);
	out = fopen(tmp, "w");
	if (!out) {
		fclose(f);
		err_set(e, ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		cJSON *j, *id;
		if (line[n - 1] != '\n')
			break;           /* torn by a kill: redo that item */
		j = json_parse(line, (size_t)n, NULL);
		id = j ? cJSON_GetObjectItemCaseSensitive(j, "id") : NULL;
		if (id && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "error"))) {
			if (r->ndone == r->done_cap) {
				r->done_cap = r->done_cap ? r->done_cap * 2 : 256;
				r->done_ids = xrealloc(r->done_ids,
						       r->done_cap * sizeof(char *));
			}
			r->done_ids[r->ndone++] = json_print(id);
			fwrite(line, 1, (size_t)n, out);
		}
		cJSON_Delete(j);
	}
	free(line);
	fclose(f);
	if (fclose(out) != 0 || rename(tmp, path) != 0) {
		err_set(e, ERR_IO, "cannot rewrite '%s': %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return -1;
	}
	free(tmp);
	qsort(r->done_ids, r->ndone, sizeof(char *), cmp_str);
	return 0;
}

/* ==== reading the input ==== */

static void first_error(const struct verrors *ve, char *dst, size_t cap)
{
	snprintf(dst, cap, "invalid value '%s' for '%s': %s", ve->v[0].value,
		 ve->v[0].loc, ve->v[0].msg);
}

/*
 * The next line of f into b, without its line end, or 0 at the end of
 * the input.  At most max bytes are kept and *len gets the whole length,
 * so that a longer line is refused without ever being held.
 */
static int next_line(FILE *f, struct buf *b, size_t max, size_t *len)
{
	char chunk[4096];
	size_t n = 0;
	int c;

	buf_clear(b);
	*len = 0;
	while ((c = getc_unlocked(f)) != EOF && c != '\n') {
		if (++*len > max)
			continue;
		chunk[n++] = (char)c;
		if (n == sizeof(chunk)) {
			buf_append(b, chunk, n);
			n = 0;
		}
	}
	buf_append(b, chunk, n);
	while (*len <= max && *len && b->ptr[*len - 1] == '\r')
		buf_truncate(b, --*len);
	return c != EOF || *len;
}

/* The bytes of the user's text in req: its messages and system prompt. */
static int check_bytes(const struct run *r, const struct chat_request *req,
		       int conversation, struct err *e)
{
	size_t n = 0;

	for (size_t i = 0; i < req->nmessages; i++)
		n += strlen(req->messages[i].content);
	if (cli_limit_check(&r->cap, conversation ? "the conversation" : "the prompt",
			    n, 0, e) < 0 ||
	    (req->system && cli_limit_check(&r->cap, "the system prompt",
					    strlen(req->system), 0, e) < 0))
		return -1;
	return 0;
}

/* Next line as an item: a request, or a bad line's error result.
 * NULL at the end of the input. */
static struct item *read_item(struct run *r)
{
	/* JSON escapes may take up to six bytes for one of the prompt. */
	struct cli_limit most = { r->cap.max * 8, "8 times max_prompt_bytes" };
	size_t n;

	if (r->text)
		most = r->cap;
	else if (strcmp(r->cap.source, "max_prompt_bytes"))
		most.source = "8 times AICHAT_MAX_PROMPT_BYTES";
	while (next_line(r->in, &r->text_line, most.max, &n)) {
		struct verrors ve = { 0 };
		struct chat_request req;
		struct err e;
		size_t pos = 0;
		cJSON *j, *idn;
		char *id = NULL, *line = r->text_line.ptr, msg[480];
		struct item *it;

		r->line++;
		if (n > most.max) {
			r->nonblank++;
			r->parsed++;   /* perhaps JSON: not a sign of plain text */
			cli_limit_check(&most, r->text ? "the prompt" : "the line", n, 0, &e);
			return bad_line(r, NULL, "line %ld: %s", r->line, e.msg);
		}
		if (strspn(line, " \t") == n)
			continue;
		r->nonblank++;
		if (r->text) {
			/* A C string ends at a NUL: refuse it rather than send
			 * part of the line; malformed UTF-8 has no JSON form. */
			if (memchr(line, '\0', n))
				return bad_line(r, NULL, "line %ld: must not contain a NUL byte",
						r->line);
			if (trust_utf8_invalid(line, n) >= 0)
				return bad_line(r, NULL, "line %ld: is not valid UTF-8 (byte %ld)",
						r->line, trust_utf8_invalid(line, n) + 1);
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "prompt", line);
		} else {
			struct json_issue iss;

			j = json_parse_strict(line, n, &pos, &iss);
			if (!j && iss.type) {
				char *lid = loose_id(line, n);
				r->parsed++;
				if (!strcmp(iss.type, "duplicate_key"))
					return bad_line(r, lid, "line %ld: %s", r->line, iss.msg);
				return bad_line(r, lid, "line %ld: '%s' %s", r->line,
						iss.loc, iss.msg);
			}
			if (!j) {
				int l, c;
				json_position(line, pos, &l, &c);
				return bad_line(r, NULL, "line %ld: invalid JSON at column %d",
						r->line, c);
			}
			r->parsed++;
		}
		if (!cJSON_IsObject(j)) {
			cJSON_Delete(j);
			return bad_line(r, NULL, "line %ld: must be a JSON object", r->line);
		}
		idn = cJSON_DetachItemFromObjectCaseSensitive(j, "id");
		if (idn && (cJSON_IsString(idn) || cJSON_IsNumber(idn)))
			id = json_print(idn);
		else if (idn && !cJSON_IsNull(idn)) {
			cJSON_Delete(idn);
			cJSON_Delete(j);
			return bad_line(r, NULL, "line %ld: 'id' must be a string or a number",
					r->line);
		}
		cJSON_Delete(idn);
		if (!id) {
			id = xmalloc(24);
			snprintf(id, 24, "%ld", r->line);
		}
		if (already_done(r, id)) {
			r->skipped++;
			free(id);
			cJSON_Delete(j);
			continue;
		}
		/* Flags fill in what the line leaves open. */
		for (cJSON *d = r->defaults->child; d; d = d->next)
			if (!cJSON_GetObjectItemCaseSensitive(j, d->string))
				cJSON_AddItemToObject(j, d->string, cJSON_Duplicate(d, 1));
		int conversation = cJSON_GetObjectItemCaseSensitive(j, "messages") != NULL;
		const struct schema *s = conversation ? r->conversation_table : r->chat_table;
		if (conversation) {
			/* ConversationRequest has no system field: keep it apart. */
			cJSON_DeleteItemFromObjectCaseSensitive(j, "prompt");
		}
		cJSON *system = cJSON_DetachItemFromObjectCaseSensitive(j, "system");
		if (schema_validate(s, j, &ve) || (system && !cJSON_IsString(system))) {
			if (ve.n)
				first_error(&ve, msg, sizeof(msg));
			else
				snprintf(msg, sizeof(msg), "'system' must be a string");
			verrors_release(&ve);
			cJSON_Delete(system);
			cJSON_Delete(j);
			return bad_line(r, id, "line %ld: %s", r->line, msg);
		}
		cJSON_DeleteItemFromObjectCaseSensitive(j, "stream");
		chat_request_from_json(&req, j, NULL);
		req.stream = 1;   /* idle timeouts guard every item */
		if (system)
			req.system = xstrdup(system->valuestring);
		cJSON_Delete(system);
		cJSON_Delete(j);
		/* Bounded by bytes and the model's context, checked before
		 * anything is sent. */
		if (check_bytes(r, &req, conversation, &e) < 0 ||
		    cli_check_budget(r->cfg, &req, &e) < 0) {
			chat_request_release(&req);
			return bad_line(r, id, "line %ld: %s", r->line, e.msg);
		}
		it = xcalloc(1, sizeof(*it));
		it->seq = r->next_seq++;
		it->line = r->line;
		it->id = id;
		it->req = req;
		return it;
	}
	r->eof = 1;
	return NULL;
}

/* ==== pacing: --rate, --tokens-per-minute, and 429s ==== */

static void on_wake(struct loop *l, void *data)
{
	struct run *r = data;

	(void)l;
	r->wake = NULL;
	if (r->batch)
		batch_refill(r->batch);
}

static void wake_in(struct run *r, int64_t ms)
{
	if (r->wake)
		return;
	r->wake = loop_add_timer(r->loop, ms < 1 ? 1 : ms, on_wake, r);
}

/* ms to wait before starting another item, 0 = now. */
static int64_t pace(struct run *r)
{
	int64_t now = loop_now_ms();

	if (r->paused_until > now)
		return r->paused_until - now;
	if (r->tpm > 0) {
		/* A bucket of tpm tokens refilled continuously. */
		r->tpm_tokens += (double)(now - r->tpm_at) * r->tpm / 60000.0;
		if (r->tpm_tokens > r->tpm)
			r->tpm_tokens = r->tpm;
		r->tpm_at = now;
		if (r->tpm_tokens <= 0)
			return (int64_t)(-r->tpm_tokens * 60000.0 / r->tpm) + 1;
	}
	if (r->rl) {
		struct rl_decision d;
		ratelimit_take(r->rl, "batch", now, &d);
		if (!d.allowed)
			return (int64_t)(d.retry_after_s * 1000) + 1;
	}
	return 0;
}

static enum batch_next next_item(void *ud, void **tag,
				 const struct chat_request **req)
{
	struct run *r = ud;
	struct item *it;
	int64_t wait;

	if (r->interrupted || r->write_error)
		return BATCH_END;
	for (;;) {
		if (r->held) {
			it = r->held;
		} else {
			/* Ordered output: never run further ahead than the
			 * window can hold. */
			if (r->ordered && r->next_seq - r->next_write >= r->window_cap)
				return BATCH_LATER;
			it = read_item(r);
			if (!it)
				return BATCH_END;
			if (it->result) {   /* a bad line */
				finish(r, it);
				continue;
			}
		}
		wait = pace(r);
		if (wait > 0) {
			r->held = it;
			wake_in(r, wait);
			return BATCH_LATER;
		}
		r->held = NULL;
		*tag = it;
		*req = &it->req;
		return BATCH_ITEM;
	}
}

static void on_item(void *ud, void *tag, const struct chat_result *res)
{
	struct run *r = ud;
	struct item *it = tag;

	set_result(it, res);
	ledger_add(r, res);
	if (res->have_usage) {
		long t = res->prompt_tokens + res->completion_tokens;
		r->tokens += t;
		r->tpm_tokens -= (double)t;
	}
	/* After a slowdown, win back one slot per few successes. */
	if (res->err.code == ERR_OK && r->limit < r->concurrency &&
	    ++r->successes_since_slowdown >= 5) {
		r->successes_since_slowdown = 0;
		batch_set_concurrency(r->batch, ++r->limit);
	}
	finish(r, it);
}

static void on_item_retry(void *ud, void *tag, const struct err *why,
			  int attempt, int64_t delay_ms)
{
	struct run *r = ud;

	(void)tag;
	(void)attempt;
	if (why->code != ERR_RATE_LIMITED)
		return;
	/* The provider is pushing back: everyone waits, fewer run. */
	r->paused_until = loop_now_ms() + delay_ms;
	if (r->limit > 1) {
		r->limit = r->limit / 2;
		batch_set_concurrency(r->batch, r->limit);
	}
	r->successes_since_slowdown = 0;
}

static void on_batch_done(void *ud)
{
	struct run *r = ud;

	r->batch = NULL;
	loop_stop(r->loop);
}

static const struct batch_cbs run_cbs = {
	.next = next_item,
	.on_item = on_item,
	.on_retry = on_item_retry,
	.on_done = on_batch_done,
};

/* ==== progress ==== */

static void progress(struct run *r, int force)
{
	int64_t now = loop_now_ms();
	double secs = (now - r->started) / 1000.0;
	char total[32] = "?", eta[32] = "";

	if (!r->progress || (!force && now - r->last_progress < 100))
		return;
	r->last_progress = now;
	if (r->total) {
		snprintf(total, sizeof(total), "%zu", r->total);
		if (r->items && r->items < r->total)
			snprintf(eta, sizeof(eta), "  ETA %.0fs",
				 secs / (double)r->items * (double)(r->total - r->items));
	}
	fprintf(stderr, "\r\033[K%zu/%s done  %zu failed  %.1f req/s  %lld tokens%s",
		r->items, total, r->failed, secs > 0 ? (double)r->items / secs : 0.0,
		r->tokens, eta);
	fflush(stderr);
}

static void on_signal(struct loop *l, int fd, int events, void *data)
{
	struct run *r = data;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	r->interrupted = (int)si.ssi_signo;
	loop_stop(l);
}

/* Non-empty lines of a regular file, for the progress total. */
static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n, lines = 0;
	int blank = 1;

	if (!f)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				lines += !blank;
				blank = 1;
			} else if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r') {
				blank = 0;
			}
		}
	lines += !blank;
	fclose(f);
	return lines;
}

int cmd_batch(int argc, char **argv)
{
	struct opt_result o = { 0 };
	struct run r = { 0 };
	struct config cfg = { 0 };
	struct llm_opts lo;
	cJSON *cli = NULL;
	const char *path = "-", *outpath;
	sigset_t mask, old;
	int sfd = -1, status = EXIT_OK;
	struct err e;
	double d;

	err_clear(&e);
	buf_init(&r.text_line, 0);
	r.out_fd = STDOUT_FILENO;
	if (opt_parse(batch_opts, batch_nopts, argc, argv, "batch", &o, &e) < 0) {
		status = cli_fail("batch", &e);
		goto cleanup;
	}
	if (o.seen[O_HELP]) {
		usage(stdout);
		goto cleanup;
	}
	if (o.noperands > 1) {
		fprintf(stderr, "aichat: batch: one input at most, got '%.64s' and '%.64s'\n",
			o.operands[0], o.operands[1]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (o.noperands)
		path = o.operands[0];
	outpath = o.values[O_OUTPUT];
	if (o.seen[O_RESUME] && !outpath) {
		fprintf(stderr, "aichat: batch: --resume needs -o FILE (the results to resume)\n");
		status = EXIT_USAGE;
		goto cleanup;
	}
	/* Item defaults are checked as a ChatRequest would be, the user's
	 * text bounded by bytes (as the items are). */
	r.chat_table = cli_schema_lift(&schema_chat_request);
	r.conversation_table = cli_schema_lift(&schema_conversation_request);
	r.defaults = cJSON_CreateObject();
	cJSON_AddStringToObject(r.defaults, "prompt", "x");
	cli = cJSON_CreateObject();
	if (opt_validate(batch_opts, batch_nopts, &o, r.chat_table,
			 r.defaults, "batch") +
	    opt_validate(batch_opts, batch_nopts, &o, &batch_cli_schema, cli, "batch")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (config_load(&cfg, &e) < 0 || cli_limit_load(&cfg, &r.cap, &e) < 0 ||
	    (o.values[O_SYSTEM] &&
	     cli_limit_check(&r.cap, "the system prompt", strlen(o.values[O_SYSTEM]), 0,
			     &e) < 0)) {
		status = cli_fail("batch", &e);
		goto cleanup;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(r.defaults, "prompt");
	cJSON_DeleteItemFromObjectCaseSensitive(r.defaults, "stream");
	if (!o.values[O_TEMPERATURE])
		cJSON_DeleteItemFromObjectCaseSensitive(r.defaults, "temperature");
	if (o.values[O_RATE]) {
		double per_s, burst;
		if (ratelimit_parse(o.values[O_RATE], &per_s, &burst, &e) < 0) {
			status = cli_fail("batch", &e);
			goto cleanup;
		}
		/* A steady pace: no burst beyond one request. */
		r.rl = ratelimit_new(per_s, 1, 1);
	}
	if (json_num(cli, "tokens_per_minute", &d) == 0) {
		r.tpm = d;
		r.tpm_tokens = d;
	}
	json_num(cli, "concurrency", &d);
	r.concurrency = r.limit = json_clamp_int(d, 1, INT_MAX);
	r.text = o.seen[O_TEXT] > 0;
	r.ordered = !o.seen[O_UNORDERED];

	if (!strcmp(path, "-")) {
		if (isatty(STDIN_FILENO)) {
			fprintf(stderr, "aichat: batch: no input: give a JSONL file or pipe one in (see 'aichat batch --help')\n");
			status = EXIT_USAGE;
			goto cleanup;
		}
		r.in = stdin;
	} else {
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			fprintf(stderr, "aichat: batch: '%s' is a directory, not a JSONL file\n", path);
			status = EXIT_USAGE;
			goto cleanup;
		}
		r.in = fopen(path, "r");
		if (!r.in) {
			fprintf(stderr, "aichat: batch: cannot read '%s': %s\n", path,
				strerror(errno));
			status = EXIT_USAGE;
			goto cleanup;
		}
		if (S_ISREG(st.st_mode))
			r.total = count_lines(path);
	}
	if (o.seen[O_RESUME] && resume_load(&r, outpath, &e) < 0) {
		status = cli_fail("batch", &e);
		goto cleanup;
	}
	if (outpath) {
		r.out_fd = open(outpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
				(o.seen[O_RESUME] ? 0 : O_TRUNC), 0644);
		if (r.out_fd < 0) {
			fprintf(stderr, "aichat: batch: cannot write '%s': %s\n", outpath,
				strerror(errno));
			status = EXIT_RUNTIME;
			goto cleanup;
		}
	}
	if (r.total >= r.ndone)
		r.total = r.total > r.ndone ? r.total - r.ndone : 0;
	r.window_cap = (size_t)r.concurrency * 4 + 64;
	r.window = xcalloc(r.window_cap, sizeof(*r.window));
	r.cfg = &cfg;
	r.progress = isatty(STDERR_FILENO);

	llm_opts_default(&lo);
	json_num(cli, "retries", &d);
	lo.retries = json_clamp_int(d, 0, INT_MAX);
	if (o.values[O_TIMEOUT] && json_num(cli, "timeout", &d) == 0)
		lo.total_ms = (int64_t)(d * 1000);

	r.loop = loop_new();
	r.eng = engine_new(r.loop);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	loop_add_fd(r.loop, sfd, LOOP_READ, on_signal, &r);
	r.started = r.tpm_at = loop_now_ms();
	r.batch = batch_start(r.eng, &cfg, r.concurrency, &lo, &run_cbs, &r);
	loop_run(r.loop);
	batch_cancel(r.batch);
	r.batch = NULL;
	if (r.ordered && !r.interrupted)
		flush_window(&r);

	if (r.progress)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "aichat: batch: %zu item%s, %zu ok, %zu failed, %lld tokens, %.1f s",
		r.items, r.items == 1 ? "" : "s", r.ok, r.failed, r.tokens,
		(loop_now_ms() - r.started) / 1000.0);
	if (r.skipped)
		fprintf(stderr, ", %zu skipped (already done)", r.skipped);
	fputc('\n', stderr);
	ledger_end(&r.ledger);

	if (r.write_error) {
		fprintf(stderr, "aichat: batch: cannot write results: %s\n",
			strerror(r.write_error));
		status = EXIT_RUNTIME;
	} else if (r.interrupted) {
		fprintf(stderr, "aichat: batch: interrupted; rerun with -o FILE --resume to finish\n");
		status = r.interrupted == SIGINT ? EXIT_INTERRUPTED : 128 + r.interrupted;
	} else if (!r.text && r.nonblank && !r.parsed) {
		fprintf(stderr, "aichat: batch: the input is not JSONL (no line is JSON); use --text for one prompt per line\n");
		status = EXIT_USAGE;
	} else if (r.failed) {
		status = EXIT_PARTIAL;
	}

cleanup:
	if (sfd >= 0) {
		close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (r.wake)
		loop_del_timer(r.loop, r.wake);
	item_free(r.held);
	for (size_t i = 0; r.window && i < r.window_cap; i++)
		item_free(r.window[i]);
	free(r.window);
	engine_free(r.eng);
	loop_free(r.loop);
	if (r.in && r.in != stdin)
		fclose(r.in);
	if (r.out_fd >= 0 && r.out_fd != STDOUT_FILENO)
		close(r.out_fd);
	for (size_t i = 0; i < r.ndone; i++)
		free(r.done_ids[i]);
	free(r.done_ids);
	ratelimit_free(r.rl);
	cJSON_Delete(r.defaults);
	schema_free(r.chat_table);
	schema_free(r.conversation_table);
	buf_release(&r.text_line);
	cJSON_Delete(cli);
	config_release(&cfg);
	opt_result_release(&o);
	return status;
}
