/*
 * models.c - `aichat models`: the models of the configured providers, the
 * offline ones and the aliases, one per line (or one JSON object).
 *
 * A provider that could not be listed is one line on stderr; the listing
 * goes on with the others.  Exit 4 only when every provider asked over the
 * network failed.
 */
#include "aichat/cli.h"
#include "aichat/json.h"
#include "aichat/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { O_JSON, O_TIMEOUT, O_HELP };

const struct opt models_opts[] = {
	[O_JSON] = { 0, "json", NULL, NULL,
		     "print one JSON object: models, aliases and errors" },
	[O_TIMEOUT] = { 0, "timeout", "SECONDS", "timeout",
			"time each provider has to answer" },
	[O_HELP] = { 'h', "help", NULL, NULL, "show this help and exit" },
};
const size_t models_nopts = sizeof(models_opts) / sizeof(models_opts[0]);

static const struct field models_fields[] = {
	{ "timeout", FIELD_NUMBER, 0, "5", 0.001, 600, NULL, NULL, "timeout" },
};
static const struct schema models_schema = { "ModelsOptions", models_fields, 1 };

/* Widest first column worth aligning to; longer ids push their note. */
#define ID_COLUMN_MAX 40

static void usage(FILE *f)
{
	const struct schema *const schemas[] = { &models_schema, NULL };

	fputs("usage: aichat models [options] [PROVIDER]\n"
	      "\n"
	      "List the models of every configured provider (asked at once), the offline\n"
	      "mock models and the aliases of the config file; PROVIDER (openai, anthropic,\n"
	      "ollama, mock or a provider of the config file) lists that one alone.\n"
	      "A provider that cannot be listed is reported on stderr; the others still are.\n"
	      "\n"
	      "options:\n", f);
	opt_help(f, models_opts, models_nopts, schemas);
	fputs("\n"
	      "See aichat-models(1) for which providers are asked and the exit statuses.\n", f);
}

static void print_text(const struct models_list *l)
{
	int w = 0;

	for (size_t i = 0; i < l->n; i++) {
		int n = (int)strlen(l->v[i].id);
		if (n > w && n <= ID_COLUMN_MAX)
			w = n;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct model_entry *m = &l->v[i];

		if (m->target)
			printf("%-*s  -> %s (alias)\n", w, m->id, m->target);
		else if (m->name)
			printf("%-*s  %s\n", w, m->id, m->name);
		else
			printf("%s\n", m->id);
	}
}

int cmd_models(int argc, char **argv)
{
	struct opt_result r = { 0 };
	struct config cfg = { 0 };
	struct models_list *l = NULL;
	cJSON *opts = NULL;
	struct err e;
	int status = EXIT_OK;
	double timeout = 5;

	err_clear(&e);
	if (opt_parse(models_opts, models_nopts, argc, argv, "models", &r, &e) < 0) {
		status = cli_fail("models", &e);
		goto cleanup;
	}
	if (r.seen[O_HELP]) {
		usage(stdout);
		goto cleanup;
	}
	opts = cJSON_CreateObject();
	if (opt_validate(models_opts, models_nopts, &r, &models_schema, opts, "models")) {
		status = EXIT_USAGE;
		goto cleanup;
	}
	json_num(opts, "timeout", &timeout);
	if (r.noperands > 1) {
		fprintf(stderr, "aichat: models: too many arguments: '%.64s' (one PROVIDER at most; see 'aichat models --help')\n",
			r.operands[1]);
		status = EXIT_USAGE;
		goto cleanup;
	}
	if (config_load(&cfg, &e) < 0) {
		status = cli_fail("models", &e);
		goto cleanup;
	}
	l = models_run(&cfg, r.noperands ? r.operands[0] : NULL,
		       (int64_t)(timeout * 1000), &e);
	if (!l) {
		status = cli_fail("models", &e);
		goto cleanup;
	}
	for (size_t i = 0; i < l->nsrc; i++) {
		const struct models_source *s = &l->src[i];

		if (s->err.code != ERR_OK)
			fprintf(stderr, "aichat: models: %s: %s\n", s->provider, s->err.msg);
		if (s->dropped)
			fprintf(stderr, "aichat: models: %s: %zu model%s left out (a malformed id, or past the first %d)\n",
				s->provider, s->dropped, s->dropped == 1 ? "" : "s",
				MODELS_PER_PROVIDER_MAX);
	}
	if (r.seen[O_JSON]) {
		cJSON *o = models_to_json(l);
		char *t = json_print(o);
		printf("%s\n", t);
		free(t);
		cJSON_Delete(o);
	} else {
		print_text(l);
	}
	status = models_all_failed(l) ? EXIT_PROVIDER : EXIT_OK;
cleanup:
	models_list_free(l);
	config_release(&cfg);
	cJSON_Delete(opts);
	opt_result_release(&r);
	return status;
}
