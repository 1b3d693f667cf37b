/*
 * usage.c - `aichat usage`: totals of the usage ledger (usage.h), as an
 * aligned table on a terminal, tab-separated values when piped, JSON
 * with --json.
 */
#include "aichat/cli.h"
#include "aichat/json.h"
#include "aichat/store.h"
#include "aichat/trust.h"
#include "aichat/usage.h"
#include "aichat/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { O_SINCE, O_BY, O_JSON, O_HELP };

const struct opt usage_opts[] = {
	[O_SINCE] = { 0, "since", "DATE", NULL,
		      "count from DATE on: YYYY-MM-DD, or Nd for the last N days, today included (UTC days)" },
	[O_BY] = { 0, "by", "GROUP", NULL,
		   "one row per day, model, provider or key (serve's API key label); default: totals only" },
	[O_JSON] = { 0, "json", NULL, NULL, "print JSON instead of a table" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t usage_nopts = sizeof(usage_opts) / sizeof(usage_opts[0]);

static const char *const groups[] = { "day", "model", "provider", "key" };

static void usage(FILE *f)
{
	fputs("usage: aichat usage [--since DATE] [--by day|model|provider|key] [--json]\n"
	      "\n"
	      "Tokens and cost of the exchanges in the usage ledger: every exchange\n"
	      "'aichat chat' logs, and every exchange 'aichat serve' makes.  Cost is in US\n"
	      "dollars, from the config file's \"prices\" or the built-in table, for the\n"
	      "exchanges whose model has a price; UNPRICED counts the others.  Days are\n"
	      "UTC dates.\n"
	      "\n"
	      "options:\n", f);
	opt_help(f, usage_opts, usage_nopts, NULL);
	fputs("\n"
	      "examples:\n"
	      "  aichat usage\n"
	      "  aichat usage --since 7d --by day\n"
	      "  aichat usage --since 2026-01-01 --by model --json\n", f);
}

/* One row's cells: group, exchanges, prompt, cached, completion, cost,
 * unpriced. */
static void cells(const cJSON *row, const char *group, char c[7][64])
{
	static const char *const num[] = { "exchanges", "prompt_tokens",
		"cached_tokens", "completion_tokens" };
	double d;

	/* A model's name came from a request: one clean line, so that a
	 * row stays a row on a terminal and in a pipe. */
	trust_clean(c[0], 64, group, strlen(group));
	for (int i = 0; i < 4; i++) {
		json_num(row, num[i], &d);
		snprintf(c[1 + i], 64, "%.0f", d);
	}
	snprintf(c[5], 64, "%s", json_str(row, "cost") ? json_str(row, "cost") : "-");
	json_num(row, "unpriced", &d);
	snprintf(c[6], 64, "%.0f", d);
}

static void print_table(const cJSON *o, const char *by, int tty)
{
	static const char *const head[7] = { "GROUP", "EXCHANGES", "PROMPT",
		"CACHED", "COMPLETION", "COST_USD", "UNPRICED" };
	const cJSON *rows = json_arr(o, "rows"), *row;
	int n = cJSON_GetArraySize(rows) + 2, w[7] = { 0 }, k = 0;
	char (*t)[7][64] = xcalloc((size_t)n, sizeof(*t));

	for (int i = 0; i < 7; i++)
		snprintf(t[0][i], 64, "%s", head[i]);
	if (by) {
		/* the heading names the grouping: DAY, MODEL, ... */
		for (int i = 0; by[i] && i < 63; i++)
			t[0][0][i] = (char)(by[i] >= 'a' && by[i] <= 'z' ? by[i] - 32 : by[i]);
		t[0][0][strlen(by) < 63 ? strlen(by) : 63] = '\0';
	}
	k = 1;
	cJSON_ArrayForEach(row, rows) {
		const char *g = json_str(row, "group");
		cells(row, g ? g : "-", t[k++]);
	}
	cells(json_obj(o, "total"), "total", t[k++]);
	for (int r = 0; r < k; r++)
		for (int i = 0; i < 7; i++)
			if ((int)strlen(t[r][i]) > w[i])
				w[i] = (int)strlen(t[r][i]);
	for (int r = 0; r < k; r++) {
		for (int i = 0; i < 7; i++) {
			if (!tty)
				printf("%s%s", i ? "\t" : "", t[r][i]);
			else if (i == 0)
				printf("%-*s", w[i], t[r][i]);
			else
				printf("  %*s", w[i], t[r][i]);
		}
		putchar('\n');
	}
	free(t);
}

int cmd_usage(int argc, char **argv)
{
	struct opt_result r = { 0 };
	sqlite3 *db = NULL;
	cJSON *o = NULL;
	struct err e;
	char since[USAGE_DAY_MAX] = "";
	const char *by = NULL;
	int status = EXIT_OK;

	err_clear(&e);
	if (opt_parse(usage_opts, usage_nopts, argc, argv, "usage", &r, &e) < 0) {
		status = cli_fail("usage", &e);
		goto cleanup;
	}
	if (r.seen[O_HELP]) {
		usage(stdout);
		goto cleanup;
	}
	if (r.noperands) {
		fprintf(stderr, "aichat: usage: unexpected argument '%.64s' (see 'aichat usage --help')\n",
			r.operands[0]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (r.values[O_SINCE] &&
	    usage_parse_since(r.values[O_SINCE], time(NULL), since) < 0) {
		fprintf(stderr, "aichat: usage: invalid value '%.64s' for '--since': must be a date YYYY-MM-DD or a number of days such as 7d\n",
			r.values[O_SINCE]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (r.values[O_BY]) {
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			if (!strcmp(r.values[O_BY], groups[i]))
				by = groups[i];
		if (!by) {
			fprintf(stderr, "aichat: usage: invalid value '%.64s' for '--by': must be one of day, model, provider, key\n",
				r.values[O_BY]);
			status = EXIT_USAGE;
			goto cleanup;
		}
	}
	if (store_open(NULL, &db, &e) < 0 || !(o = usage_report(db, since, by, &e))) {
		status = cli_fail("usage", &e);
		goto cleanup;
	}
	if (r.seen[O_JSON]) {
		char *t = json_print(o);
		printf("%s\n", t);
		free(t);
	} else {
		print_table(o, by, isatty(STDOUT_FILENO));
	}

cleanup:
	cJSON_Delete(o);
	store_close(db);
	opt_result_release(&r);
	return status;
}
