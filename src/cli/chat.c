/*
 * chat.c - `aichat chat`: one prompt, the answer streamed to stdout.
 *
 * Flags become a JSON ChatRequest checked by the same schema table serve
 * uses, so a bad flag fails (exit 2) before any network request.  Deltas
 * are written and flushed as they arrive; the output is the exact text of
 * the answer plus a final newline, with no escape codes.  SIGINT/SIGTERM
 * arrive through a signalfd on the loop: the call is cancelled, what was
 * printed stays, exit 130.
 */
#include "aichat/attach.h"
#include "aichat/chat.h"
#include "aichat/cli.h"
#include "aichat/convlog.h"
#include "aichat/store.h"
#include "aichat/json.h"
#include "aichat/loop.h"
#include "aichat/render.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"
#include "aichat/trust.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

enum {
	O_MODEL, O_SYSTEM, O_TEMPERATURE, O_MAX_TOKENS, O_NO_STREAM, O_JSON,
	O_RETRIES, O_TIMEOUT, O_CONTINUE, O_CID, O_NO_LOG, O_INTERACTIVE,
	O_RAW, O_VERBOSE, O_FILE, O_OPTION, O_SCHEMA, O_THINKING, O_HELP,
};

/* Markdown styles on a terminal; --raw turns them off. */
static int cli_styles = 1;

const struct opt chat_opts[] = {
	[O_MODEL] = { 'm', "model", "MODEL", "model",
		      "provider:model or an alias (default: $AICHAT_MODEL, then the config file, then " CONFIG_DEFAULT_MODEL ")" },
	[O_SYSTEM] = { 's', "system", "TEXT", "system", "system prompt" },
	[O_TEMPERATURE] = { 't', "temperature", "X", "temperature",
			    "sampling temperature" },
	[O_MAX_TOKENS] = { 0, "max-tokens", "N", "max_tokens",
			   "upper bound on tokens generated" },
	[O_NO_STREAM] = { 0, "no-stream", NULL, NULL,
			  "wait for the whole answer instead of streaming it" },
	[O_JSON] = { 0, "json", NULL, NULL,
		     "print one JSON object: content, model, token counts, finish_reason" },
	[O_RETRIES] = { 0, "retries", "N", "retries",
			"retries after a failed connection, 408, 429, 500, 502-504 or 529" },
	[O_TIMEOUT] = { 0, "timeout", "SECONDS", "timeout",
			"give up after this many seconds in all" },
	[O_CONTINUE] = { 'c', "continue", NULL, NULL,
			 "continue the last conversation of the log" },
	[O_CID] = { 0, "cid", "ID", NULL,
		    "continue conversation ID (see 'aichat history list')" },
	[O_NO_LOG] = { 0, "no-log", NULL, NULL,
		       "do not record this exchange in the conversation log" },
	[O_INTERACTIVE] = { 'i', "interactive", NULL, NULL,
			    "chat interactively (the default on a terminal with no prompt)" },
	[O_RAW] = { 0, "raw", NULL, NULL,
		    "print the answer exactly as streamed, without markdown styles" },
	[O_VERBOSE] = { 'v', "verbose", NULL, NULL,
			"print token usage and timings to stderr" },
	[O_FILE] = { 'f', "file", "PATH", NULL,
		     "add a file: text after a '==> PATH <==' line, PNG/JPEG/GIF/WebP as an image; - is stdin; repeatable" },
	[O_OPTION] = { 'o', "option", "PARAM", NULL,
		       "pass a provider parameter as KEY=VALUE, VALUE as JSON if it parses; repeatable" },
	[O_SCHEMA] = { 0, "schema", "SCHEMA", NULL,
		       "answer as JSON following this JSON Schema (or the file holding it); exit 4 if the answer is not JSON" },
	[O_THINKING] = { 0, "thinking", "N", "thinking",
			 "let an Anthropic model think with a budget of N tokens (shown dimmed on a terminal)" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t chat_nopts = sizeof(chat_opts) / sizeof(chat_opts[0]);

/* Flags that are not part of ChatRequest, checked the same way. */
static const struct field cli_fields[] = {
	{ "retries", FIELD_INTEGER, 0, "2", 0, 10, NULL, NULL, "retries" },
	{ "timeout", FIELD_NUMBER, 0, "600", 0.001, 86400, NULL, NULL, "timeout" },
	{ "thinking", FIELD_INTEGER, 0, NULL, 1024, 1000000, NULL, NULL,
	  "thinking budget in tokens" },
};
static const struct schema cli_schema = { "ChatOptions", cli_fields, 3 };

static void usage(FILE *f)
{
	fputs("usage: aichat chat [options] [PROMPT...]\n"
	      "\n"
	      "Send PROMPT (the arguments joined by spaces) to a model and stream the\n"
	      "answer to stdout.  When stdin is not a terminal, its content is read and\n"
	      "appended after a blank line (or is the whole prompt without arguments).\n"
	      "The prompt may have up to 16 MiB (unless AICHAT_MAX_PROMPT_BYTES or\n"
	      "max_prompt_bytes in the config file say otherwise) and must fit the\n"
	      "model's context budget (AICHAT_CONTEXT_BUDGET, context_budget).  -c and\n"
	      "--cid go on with the conversation's model, system prompt and temperature\n"
	      "unless -m, -s or -t are given.\n"
	      "\n"
	      "options:\n", f);
	const struct schema *const schemas[] = {
		&schema_chat_request, &cli_schema, NULL
	};

	opt_help(f, chat_opts, chat_nopts, schemas);
	fputs("\n"
	      "examples:\n"
	      "  aichat chat -m mock:echo hello            offline, no key needed\n"
	      "  aichat chat \"explain this\" < main.c\n"
	      "  git diff | aichat chat -m anthropic:claude-sonnet-4-6 write a commit message\n"
	      "  aichat chat --json -t 0 \"one word for joy\"\n"
	      "\n"
	      "See aichat-chat(1) for providers, environment and exit statuses.\n", f);
}

/*
 * The prompt: operands joined by spaces, then stdin after a blank line,
 * all within the byte cap l.  Empty or blank stdin adds nothing; alone,
 * blank stdin is an error.
 */
static int gather_prompt(const struct opt_result *r, const struct cli_limit *l,
			 int use_stdin, struct buf *prompt, int *have,
			 struct err *e)
{
	size_t mark;

	*have = 0;
	for (int i = 0; i < r->noperands; i++) {
		if (i)
			buf_putc(prompt, ' ');
		buf_appends(prompt, r->operands[i]);
		*have = 1;
	}
	if (cli_limit_check(l, "the prompt", prompt->len, 0, e) < 0)
		return -1;
	if (!use_stdin || isatty(STDIN_FILENO))
		return 0;
	mark = prompt->len;
	if (*have)
		buf_appends(prompt, "\n\n");
	if (cli_read_stdin(prompt, l, "the prompt", e) < 0)
		return -1;
	if (strspn(prompt->ptr + mark, " \t\r\n\f\v") == prompt->len - mark) {
		/* Nothing but blanks: no part of the prompt. */
		int blank = prompt->len > mark + (*have ? 2 : 0);
		buf_truncate(prompt, mark);
		if (blank && !*have)
			return err_set(e, ERR_INVALID_REQUEST,
				       "the prompt is empty (stdin held only whitespace)");
		return 0;
	}
	*have = 1;
	return 0;
}

/* ---- running the call ---- */

struct run {
	struct loop *loop;
	struct chat *chat;
	int json, verbose;
	int interrupted;
	int done;
	size_t printed;
	char last;
	struct chat_result res;  /* the result, content included */
	char *content;           /* for --json */
	int styled;              /* markdown styles on a terminal */
	int on_tty;              /* stdout a terminal: text passes term */
	struct trust_term term;  /* a model's escapes never reach it */
	struct buf shown;        /* the part of a piece term let through */
	int thought;             /* thinking shown, the answer not yet */
	const char *cmd;         /* for messages: "chat", "rag" */
	struct render md;
};

/* An Anthropic model's thinking: dimmed on a terminal, before the
 * answer; never in piped output nor in --json's content. */
static void on_reasoning(void *ud, const char *s, size_t n)
{
	struct run *r = ud;

	if (r->json || !r->styled)
		return;
	buf_clear(&r->shown);
	trust_term_feed(&r->term, &r->shown, s, n);
	fputs("\033[2m", stdout);
	fwrite(r->shown.ptr, 1, r->shown.len, stdout);
	fputs("\033[0m", stdout);
	fflush(stdout);
	r->thought = 1;
}

static void on_delta(void *ud, const char *s, size_t n)
{
	struct run *r = ud;

	if (r->json)
		return;
	if (r->thought) {
		fputs("\n\n", stdout);
		r->thought = 0;
	}
	if (r->on_tty) {
		/* A model's answer is an upstream's text: on a terminal, its
		 * escape sequences could retitle it or write the clipboard. */
		buf_clear(&r->shown);
		trust_term_feed(&r->term, &r->shown, s, n);
		s = r->shown.ptr;
		n = r->shown.len;
		if (!n)
			return;
	}
	if (r->styled)
		render_feed(&r->md, s, n);
	else
		fwrite(s, 1, n, stdout);
	fflush(stdout);
	r->printed += n;
	r->last = s[n - 1];
}

static void on_retry(void *ud, const struct err *why, int attempt,
		     int64_t delay_ms)
{
	struct run *r = ud;
	char msg[sizeof(why->msg) * 3];

	trust_clean(msg, sizeof(msg), why->msg, strnlen(why->msg, sizeof(why->msg)));
	fprintf(stderr, "aichat: %s: %s; retrying in %.1f s (attempt %d)\n",
		r->cmd, msg, delay_ms / 1000.0, attempt);
}

static void on_done(void *ud, const struct chat_result *res)
{
	struct run *r = ud;

	r->chat = NULL;
	r->done = 1;
	r->res = *res;
	buf_init(&r->res.content, 0);
	buf_append(&r->res.content, res->content.ptr, res->content.len);
	/* Printed whole or not at all: an answer too large to keep is an
	 * error when the output is the result. */
	if (r->json && r->res.err.code == ERR_OK)
		chat_result_whole(res, &r->res.err);
	if (r->json) {
		cJSON *o = chat_result_json(&r->res);
		r->content = json_print(o);
		cJSON_Delete(o);
	}
	loop_stop(r->loop);
}

static void on_signal(struct loop *l, int fd, int events, void *data)
{
	struct run *r = data;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	r->interrupted = (int)si.ssi_signo;
	if (r->chat) {
		/* Keep what arrived: it was shown, so it is logged too. */
		const struct chat_result *part = chat_progress(r->chat);
		r->res = *part;
		buf_init(&r->res.content, 0);
		buf_append(&r->res.content, part->content.ptr, part->content.len);
		err_set(&r->res.err, ERR_CANCELLED, "interrupted");
		if (r->json) {
			/* Report what arrived before the interruption. */
			struct chat_result part = *chat_progress(r->chat);
			err_set(&part.err, ERR_CANCELLED, "interrupted");
			cJSON *o = chat_result_json(&part);
			r->content = json_print(o);
			cJSON_Delete(o);
		}
		chat_cancel(r->chat);
		r->chat = NULL;
	}
	loop_stop(l);
}

static const struct chat_cbs run_cbs = {
	.on_delta = on_delta,
	.on_retry = on_retry,
	.on_done = on_done,
	.on_reasoning = on_reasoning,
};

static void verbose_report(const struct chat_result *res)
{
	if (res->have_usage)
		fprintf(stderr, "aichat: %s: %ld prompt + %ld completion = %ld tokens",
			res->model, res->prompt_tokens, res->completion_tokens,
			res->prompt_tokens + res->completion_tokens);
	else
		fprintf(stderr, "aichat: %s: token usage not reported", res->model);
	if (res->first_token_ms >= 0)
		fprintf(stderr, "; first token %lld ms", (long long)res->first_token_ms);
	fprintf(stderr, "; total %lld ms; %d attempt%s; finish %s\n",
		(long long)res->total_ms, res->attempts,
		res->attempts == 1 ? "" : "s",
		res->finish_reason[0] ? res->finish_reason : "unknown");
}

/*
 * Runs one request on a fresh loop, printing as it streams.  The result
 * (partial when interrupted) is left in *out for the log: the caller
 * releases out->content.
 */
int cli_chat_once(const char *cmd, const struct config *cfg,
		  const struct chat_request *req, const struct llm_opts *lo,
		  enum cli_output mode, int verbose, struct chat_result *out)
{
	int json = mode != CLI_STREAM;
	struct run r = { .json = json, .verbose = verbose, .cmd = cmd };

	/* Styles only for a person at a terminal: piped output and --raw
	 * get the bytes exactly as streamed, NO_COLOR no styles. */
	r.styled = !json && cli_styles && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
	/* --raw keeps the bytes even on a terminal; otherwise a terminal
	 * gets the answer without its escape sequences (trust.h). */
	r.on_tty = !json && cli_styles && isatty(STDOUT_FILENO);
	buf_init(&r.shown, 0);
	render_init(&r.md, stdout);
	struct engine *eng = NULL;
	struct err e;
	sigset_t mask, old;
	int sfd = -1, status;

	err_clear(&e);
	r.loop = loop_new();
	if (!r.loop || !(eng = engine_new(r.loop))) {
		err_set(&e, ERR_INTERNAL, "cannot start the event loop");
		status = cli_fail(cmd, &e);
		goto cleanup;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd >= 0)
		loop_add_fd(r.loop, sfd, LOOP_READ, on_signal, &r);

	buf_init(&r.res.content, 0);
	r.chat = chat_start(eng, cfg, req, lo, &run_cbs, &r, &e);
	if (!r.chat) {
		status = cli_fail(cmd, &e);
		goto cleanup;
	}
	loop_run(r.loop);

	if (r.styled)
		render_finish(&r.md);
	if (!json && r.printed && r.last != '\n')
		fputc('\n', stdout);
	else if (!json && !r.printed && r.done && r.res.err.code == ERR_OK)
		fputc('\n', stdout);
	if (mode == CLI_JSON && r.content)
		printf("%s\n", r.content);
	fflush(stdout);
	if (r.interrupted) {
		fprintf(stderr, "aichat: %s: interrupted\n", cmd);
		/* 130 for Ctrl-C, 143 for SIGTERM: the shell's convention. */
		status = r.interrupted == SIGINT ? EXIT_INTERRUPTED :
			 128 + r.interrupted;
	} else if (r.res.err.code != ERR_OK) {
		status = cli_fail(cmd, &r.res.err);
	} else {
		status = EXIT_OK;
	}
	if (verbose && r.done)
		verbose_report(&r.res);
	*out = r.res;
	buf_init(&r.res.content, 0);

cleanup:
	buf_release(&r.res.content);
	buf_release(&r.shown);
	chat_cancel(r.chat);
	free(r.content);
	if (sfd >= 0) {
		loop_del_fd(r.loop, sfd);
		close(sfd);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	engine_free(eng);
	loop_free(r.loop);
	return status;
}

/* ---- files, provider parameters, --schema, --thinking ---- */

static int file_stdin(const struct opt_result *r)
{
	for (size_t i = 0; i < r->ngiven; i++)
		if (r->given[i].opt == O_FILE && !strcmp(r->given[i].value, "-"))
			return 1;
	return 0;
}

/* -f: text files onto the prompt, images into att, all within the cap. */
static int add_files(const struct opt_result *r, const struct cli_limit *l,
		     struct buf *prompt, struct attachments *att, int *have,
		     struct err *e)
{
	for (size_t i = 0; i < r->ngiven; i++) {
		size_t used = prompt->len + att->bytes;

		if (r->given[i].opt != O_FILE)
			continue;
		if (attach_file(att, r->given[i].value, used < l->max ? l->max - used : 0,
				e) < 0)
			return -1;
		*have = 1;
	}
	if (att->text.len) {
		/* The files follow the words; alone, they are the prompt. */
		buf_append(prompt, prompt->len ? att->text.ptr : att->text.ptr + 2,
			   prompt->len ? att->text.len : att->text.len - 2);
	}
	return 0;
}

/* -o, --schema and --thinking into req's extra fields. */
static int provider_options(const struct opt_result *r, const struct config *cfg,
			    const cJSON *cli, struct chat_request *req,
			    struct err *e)
{
	double budget;

	for (size_t i = 0; i < r->ngiven; i++)
		if (r->given[i].opt == O_OPTION &&
		    attach_option(&req->extra, r->given[i].value, e) < 0)
			return -1;
	if (r->values[O_SCHEMA] && attach_schema(&req->extra, r->values[O_SCHEMA], e) < 0)
		return -1;
	if (json_num(cli, "thinking", &budget) == 0) {
		struct model_ref m;
		int rc = model_resolve(cfg, req->model, &m, e);

		if (rc == 0)
			rc = attach_thinking(&req->extra, (long)budget, m.ops->kind,
					     m.model, &req->max_tokens, e);
		model_ref_release(&m);
		return rc;
	}
	return 0;
}

/* --schema: the answer is printed only once it is known to be JSON. */
static int print_structured(const struct chat_result *res, int json_mode)
{
	cJSON *j = json_parse(res->content.ptr, res->content.len, NULL);

	if (!j) {
		fprintf(stderr, "aichat: chat: the model's answer is not valid JSON (--schema); %zu bytes, not printed\n",
			res->content.len);
		return EXIT_PROVIDER;
	}
	cJSON_Delete(j);
	if (!json_mode)
		printf("%s\n", res->content.ptr);
	return EXIT_OK;
}

/* The interactive chat starts with no message of its own. */
static void chat_request_drop_messages(struct chat_request *req)
{
	for (size_t i = 0; i < req->nmessages; i++) {
		free((char *)req->messages[i].role);
		free((char *)req->messages[i].content);
	}
	req->nmessages = 0;
}

const char *cli_system_change(const char *cid, const char *system,
			      const char *logged)
{
	if (!cid[0])
		return system;
	if (system && logged && !strcmp(system, logged))
		return NULL;
	if (!system && !logged)
		return NULL;
	return system ? system : "";
}

/*
 * -c / --cid: the logged messages go before the new prompt, and the
 * exchange is recorded in that conversation.  Its model, system prompt
 * and temperature apply unless -m, -s or -t say otherwise; *logged gets
 * its system prompt (owned; NULL if none).
 */
static int continue_conversation(struct chat_request *req,
				 const struct opt_result *r,
				 char cid[CONVLOG_ID_MAX], sqlite3 **db,
				 char **logged, struct err *e)
{
	struct chat_request past = { 0 };
	int rc = -1;

	if (r->seen[O_CONTINUE] && r->values[O_CID])
		return err_set(e, ERR_USAGE, "give either --continue or --cid, not both");
	if (store_open(NULL, db, e) < 0)
		return -1;
	if (r->values[O_CID]) {
		snprintf(cid, CONVLOG_ID_MAX, "%s", r->values[O_CID]);
		/* convlog_load refuses a malformed id with the usual message. */
		if (!convlog_valid_id(r->values[O_CID])) {
			convlog_load(*db, r->values[O_CID], &past, e);
			goto cleanup;
		}
	} else if (convlog_last(*db, cid, e) < 0) {
		goto cleanup;
	}
	if (convlog_load(*db, cid, &past, e) < 0)
		goto cleanup;
	if (!r->values[O_MODEL] && past.model) {
		free(req->model);
		req->model = past.model;
		past.model = NULL;
	}
	*logged = past.system ? xstrdup(past.system) : NULL;
	if (!r->values[O_SYSTEM]) {
		free(req->system);
		req->system = past.system;
		past.system = NULL;
	}
	if (!r->values[O_TEMPERATURE] && past.temperature >= 0)
		req->temperature = past.temperature;
	/* past's messages, then the new prompt. */
	past.messages = xrealloc(past.messages,
				 (past.nmessages + req->nmessages) * sizeof(*past.messages));
	memcpy(past.messages + past.nmessages, req->messages,
	       req->nmessages * sizeof(*req->messages));
	free(req->messages);
	req->messages = past.messages;
	req->nmessages += past.nmessages;
	past.messages = NULL;
	past.nmessages = 0;
	rc = 0;
cleanup:
	chat_request_release(&past);
	return rc;
}

/* CLI copies of the HTTP tables: the user's text bounded by bytes. */
static const char *const cli_text_fields[] = {
	"prompt", "system", "content", "messages", "query", NULL
};

struct schema *cli_schema_lift(const struct schema *s)
{
	return schema_lift(s, cli_text_fields);
}

int cmd_chat(int argc, char **argv)
{
	struct opt_result r = { 0 };
	struct config cfg = { 0 };
	struct chat_request req = { 0 };
	struct cli_limit limit;
	struct attachments att;
	struct llm_opts lo;
	struct buf prompt;
	struct chat_result res;
	struct schema *table = NULL;
	cJSON *body = NULL, *cli = NULL;
	sqlite3 *db = NULL;
	char cid[CONVLOG_ID_MAX] = "", *logged = NULL;
	struct err e;
	int have, status, interactive = 0;

	err_clear(&e);
	buf_init(&prompt, 0);
	attach_init(&att);
	if (opt_parse(chat_opts, chat_nopts, argc, argv, "chat", &r, &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (r.seen[O_HELP]) {
		usage(stdout);
		status = EXIT_OK;
		goto cleanup;
	}
	if (r.seen[O_RAW])
		cli_styles = 0;
	/* The byte cap bounds stdin as it is read. */
	if (config_load(&cfg, &e) < 0 || cli_limit_load(&cfg, &limit, &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (r.seen[O_INTERACTIVE] || (!r.noperands && isatty(STDIN_FILENO) &&
				       isatty(STDOUT_FILENO))) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "aichat: chat: --interactive needs a terminal on stdin\n");
			status = EXIT_USAGE;
			goto cleanup;
		}
		interactive = 1;
		buf_appends(&prompt, "x");   /* validated, never sent */
		have = 1;
	} else if (gather_prompt(&r, &limit, !file_stdin(&r), &prompt, &have, &e) < 0 ||
		   add_files(&r, &limit, &prompt, &att, &have, &e) < 0 ||
		   cli_text_check("the prompt", prompt.ptr, prompt.len, &e) < 0 ||
		   (r.values[O_SYSTEM] &&
		    cli_text_check("the system prompt", r.values[O_SYSTEM],
			       strlen(r.values[O_SYSTEM]), &e) < 0)) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (!have) {
		fprintf(stderr, "aichat: chat: no prompt given: pass it as arguments or on stdin (see 'aichat chat --help')\n");
		status = EXIT_USAGE;
		goto cleanup;
	}

	body = cJSON_CreateObject();
	cJSON_AddStringToObject(body, "prompt", prompt.ptr);
	cJSON_AddBoolToObject(body, "stream", !r.seen[O_NO_STREAM]);
	cli = cJSON_CreateObject();
	table = cli_schema_lift(&schema_chat_request);
	/* Both tables are checked, so every bad flag is reported at once. */
	if (opt_validate(chat_opts, chat_nopts, &r, table, body, "chat") +
	    opt_validate(chat_opts, chat_nopts, &r, &cli_schema, cli, "chat")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (r.values[O_SYSTEM] &&
	    cli_limit_check(&limit, "the system prompt", strlen(r.values[O_SYSTEM]), 0,
			    &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}

	chat_request_from_json(&req, body, NULL);
	req.temperature_default = !r.values[O_TEMPERATURE];
	attach_images(&att, &req);
	if (interactive)
		chat_request_drop_messages(&req);
	if ((r.seen[O_CONTINUE] || r.values[O_CID]) &&
	    continue_conversation(&req, &r, cid, &db, &logged, &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (!interactive && cli_fit_budget("chat", &cfg, &req, &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (provider_options(&r, &cfg, cli, &req, &e) < 0) {
		status = cli_fail("chat", &e);
		goto cleanup;
	}
	if (!db && !r.seen[O_NO_LOG] && cfg.log) {
		/* The log is a convenience: a chat still runs without it. */
		if (store_open(NULL, &db, &e) < 0)
			fprintf(stderr, "aichat: chat: not logging this exchange: %s\n", e.msg);
	}
	llm_opts_default(&lo);
	double d;
	if (json_num(cli, "retries", &d) == 0)
		lo.retries = (int)d;
	if (r.values[O_TIMEOUT] && json_num(cli, "timeout", &d) == 0)
		lo.total_ms = (int64_t)(d * 1000);
	if (interactive) {
		status = repl_run(&cfg, &req, &lo, r.seen[O_NO_LOG] ? NULL : db, cid,
				  logged, r.seen[O_VERBOSE] > 0);
		goto cleanup;
	}
	memset(&res, 0, sizeof(res));
	buf_init(&res.content, 0);
	status = cli_chat_once("chat", &cfg, &req, &lo, r.seen[O_JSON] ? CLI_JSON :
			       r.values[O_SCHEMA] ? CLI_QUIET : CLI_STREAM,
			       r.seen[O_VERBOSE] > 0, &res);
	if (r.values[O_SCHEMA] && status == EXIT_OK)
		status = print_structured(&res, r.seen[O_JSON]);
	if (db && !r.seen[O_NO_LOG] && res.model[0] &&
	    (res.err.code == ERR_OK || res.content.len)) {
		if (res.content_truncated)
			fprintf(stderr, "aichat: chat: the answer is larger than %zu MiB: the conversation log keeps its first %zu MiB\n",
				CHAT_CONTENT_MAX >> 20, CHAT_CONTENT_MAX >> 20);
		if (convlog_record(db, cid, cli_system_change(cid, req.system, logged),
				   req.temperature, prompt.ptr, &res, &e) < 0)
			fprintf(stderr, "aichat: chat: could not log this exchange: %s\n", e.msg);
		else if (r.seen[O_VERBOSE])
			fprintf(stderr, "aichat: conversation %s\n", cid);
	}
	buf_release(&res.content);

cleanup:
	store_close(db);
	schema_free(table);
	cJSON_Delete(body);
	cJSON_Delete(cli);
	chat_request_release(&req);
	config_release(&cfg);
	buf_release(&prompt);
	attach_release(&att);
	free(logged);
	opt_result_release(&r);
	return status;
}
