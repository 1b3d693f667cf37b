/*
 * history.c - `aichat history`: list, show, search and remove logged
 * conversations.  Plain text for people, --json for scripts.
 */
#include "aichat/cli.h"
#include "aichat/convlog.h"
#include "aichat/json.h"
#include "aichat/store.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { O_LIMIT, O_JSON, O_HELP };

const struct opt history_opts[] = {
	[O_LIMIT] = { 'n', "limit", "N", "limit", "show at most N conversations" },
	[O_JSON] = { 0, "json", NULL, NULL, "print JSON instead of text" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t history_nopts = sizeof(history_opts) / sizeof(history_opts[0]);

static const struct field history_fields[] = {
	{ "limit", FIELD_INTEGER, 0, "20", 1, 100000, NULL, NULL, "" },
};
static const struct schema history_schema = { "HistoryOptions", history_fields, 1 };

static void usage(FILE *f)
{
	const struct schema *const schemas[] = { &history_schema, NULL };

	fputs("usage: aichat history list [options]\n"
	      "       aichat history show [options] ID\n"
	      "       aichat history search [options] TEXT...\n"
	      "       aichat history rm ID...\n"
	      "\n"
	      "Every exchange of 'aichat chat' is recorded in the conversation log under\n"
	      "$AICHAT_HOME (unless --no-log, or \"log\": false in the config file).\n"
	      "'aichat chat -c' continues the last conversation, '--cid ID' a given one.\n"
	      "\n"
	      "options:\n", f);
	opt_help(f, history_opts, history_nopts, schemas);
}

/* Text from the log as one line: a title, a model or a search match was
 * typed by a user or written by a model, and a row must stay a row (no
 * newline, no escape sequence).  Owned by the caller. */
static char *line_of(const char *s)
{
	return s ? trust_clean_dup(s, strlen(s)) : xstrdup("-");
}

static void print_row(const cJSON *c)
{
	char *m = line_of(json_str(c, "model")), *t = line_of(json_str(c, "title"));

	printf("%s  %.16s  %-24s  %s\n", json_str(c, "id"), json_str(c, "updated_at"),
	       m, t);
	free(m);
	free(t);
}

static void print_list(const cJSON *arr, int json)
{
	const cJSON *c;

	if (json) {
		char *t = json_print(arr);
		printf("%s\n", t);
		free(t);
		return;
	}
	cJSON_ArrayForEach(c, arr) {
		print_row(c);
		if (json_str(c, "match")) {
			char *t = line_of(json_str(c, "match"));
			printf("    %s\n", t);
			free(t);
		}
	}
}

/* A stored message on a terminal goes through the same filter as a
 * streamed answer: its escape sequences could retitle the terminal or
 * write its clipboard.  Piped, it is printed as it was stored. */
static void print_content(const char *s)
{
	struct trust_term term = { 0 };
	struct buf b = { 0 };

	if (!s)
		s = "";
	if (!isatty(STDOUT_FILENO)) {
		printf("%s\n", s);
		return;
	}
	trust_term_feed(&term, &b, s, strlen(s));
	fwrite(b.ptr, 1, b.len, stdout);
	putchar('\n');
	buf_release(&b);
}

static void print_show(const cJSON *o, int json)
{
	const cJSON *m;

	if (json) {
		char *t = json_print(o);
		printf("%s\n", t);
		free(t);
		return;
	}
	char *model = line_of(json_str(o, "model"));

	printf("conversation %s (%s), started %s\n", json_str(o, "id"), model,
	       json_str(o, "created_at"));
	free(model);
	cJSON_ArrayForEach(m, json_arr(o, "transcript")) {
		double pt, ct;
		printf("\n[%s]", json_str(m, "role"));
		if (json_num(m, "prompt_tokens", &pt) == 0 &&
		    json_num(m, "completion_tokens", &ct) == 0)
			printf(" (%.0f + %.0f tokens)", pt, ct);
		putchar('\n');
		print_content(json_str(m, "content"));
	}
}

int cmd_history(int argc, char **argv)
{
	struct opt_result r = { 0 };
	sqlite3 *db = NULL;
	cJSON *o = NULL, *opts = NULL;
	struct err e;
	const char *sub;
	int status = EXIT_OK;
	double d;

	err_clear(&e);
	if (opt_parse(history_opts, history_nopts, argc, argv, "history", &r, &e) < 0) {
		status = cli_fail("history", &e);
		goto cleanup;
	}
	if (r.seen[O_HELP]) {
		usage(stdout);
		goto cleanup;
	}
	opts = cJSON_CreateObject();
	if (opt_validate(history_opts, history_nopts, &r, &history_schema, opts, "history")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	json_num(opts, "limit", &d);
	sub = r.noperands ? r.operands[0] : "list";
	if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "search") &&
	    strcmp(sub, "rm")) {
		fprintf(stderr, "aichat: history: unknown subcommand '%.64s' (list, show, search, rm; see 'aichat history --help')\n",
			sub);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if ((!strcmp(sub, "show") || !strcmp(sub, "rm") || !strcmp(sub, "search")) &&
	    r.noperands < 2) {
		fprintf(stderr, "aichat: history: %s needs %s\n", sub,
			strcmp(sub, "search") ? "a conversation ID" : "some TEXT to look for");
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (store_open(NULL, &db, &e) < 0) {
		status = cli_fail("history", &e);
		goto cleanup;
	}
	if (!strcmp(sub, "list")) {
		o = convlog_list(db, (int)d, &e);
		if (o)
			print_list(o, r.seen[O_JSON] > 0);
	} else if (!strcmp(sub, "show")) {
		o = convlog_show(db, r.operands[1], &e);
		if (o)
			print_show(o, r.seen[O_JSON] > 0);
	} else if (!strcmp(sub, "search")) {
		struct buf text;
		buf_init(&text, 0);
		for (int i = 1; i < r.noperands; i++) {
			if (i > 1)
				buf_putc(&text, ' ');
			buf_appends(&text, r.operands[i]);
		}
		o = convlog_search(db, text.ptr, (int)d, &e);
		buf_release(&text);
		if (o)
			print_list(o, r.seen[O_JSON] > 0);
	} else {
		for (int i = 1; i < r.noperands; i++)
			if (convlog_rm(db, r.operands[i], &e) < 0) {
				status = cli_fail("history", &e);
				err_clear(&e);
			}
		goto cleanup;
	}
	if (!o)
		status = cli_fail("history", &e);

cleanup:
	cJSON_Delete(o);
	cJSON_Delete(opts);
	store_close(db);
	opt_result_release(&r);
	return status;
}
