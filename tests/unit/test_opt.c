/*
 * test_opt.c - unit tests for table-driven option parsing and help
 * (src/cli/opt.c).
 *
 * Table-driven against a small local option table: each case is an argv
 * and either the exact usage error it must give or, per option, the value
 * and the count it must leave, plus the operands in order.  opt_help() is
 * printed into memory and checked line by line, with bounds taken from the
 * ChatRequest schema and from a local one.
 */
#include "aichat/opt.h"
#include "aichat/schema.h"
#include "aichat/xalloc.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

enum { M, T, MAXTOK, V, H, NOSTREAM, LIMIT, NOPTS };

static const struct opt opts[NOPTS] = {
	[M] = { 'm', "model", "MODEL", "model", "model to use" },
	[T] = { 't', "temperature", "X", "temperature", "sampling temperature" },
	[MAXTOK] = { 0, "max-tokens", "N", "max_tokens", "upper bound on tokens" },
	[V] = { 'v', "verbose", NULL, NULL, "say more" },
	[H] = { 'h', "help", NULL, NULL, "show this help and exit" },
	[NOSTREAM] = { 0, "no-stream", NULL, "stream", "wait for the whole answer" },
	[LIMIT] = { 'l', "limit", "N", "limit", "how many" },
};

#define ARGV(...) { __VA_ARGS__, NULL }
#define HINT "see 'aichat test --help')"

struct pcase {
	const char *name;
	const char *argv[12];           /* NULL-terminated */
	const char *err;                /* exact message; NULL: success */
	const char *values[NOPTS];
	int seen[NOPTS];
	const char *operands;           /* joined with '|' */
};

#define FAIL(name, av, msg) { name, av, msg, { 0 }, { 0 }, NULL }

static const struct pcase cases[] = {
	{ "nothing", { NULL }, NULL, { 0 }, { 0 }, "" },
	{ "operands only", ARGV("hello", "world"), NULL, { 0 }, { 0 },
	  "hello|world" },
	{ "long with a space", ARGV("--model", "gpt", "hi"), NULL,
	  { [M] = "gpt" }, { [M] = 1 }, "hi" },
	{ "long with =", ARGV("--model=gpt", "hi"), NULL,
	  { [M] = "gpt" }, { [M] = 1 }, "hi" },
	{ "long with = and an empty value", ARGV("--model="), NULL,
	  { [M] = "" }, { [M] = 1 }, "" },
	{ "long with = in the value", ARGV("--model=a=b"), NULL,
	  { [M] = "a=b" }, { [M] = 1 }, "" },
	{ "long with an empty separate value", ARGV("--model", ""), NULL,
	  { [M] = "" }, { [M] = 1 }, "" },
	{ "short with a separate value", ARGV("-m", "gpt"), NULL,
	  { [M] = "gpt" }, { [M] = 1 }, "" },
	{ "short with an attached value", ARGV("-mgpt", "x"), NULL,
	  { [M] = "gpt" }, { [M] = 1 }, "x" },
	{ "bundled flags", ARGV("-vh"), NULL, { 0 }, { [V] = 1, [H] = 1 }, "" },
	{ "bundled flag twice", ARGV("-vv", "-v"), NULL, { 0 }, { [V] = 3 }, "" },
	{ "bundled flag and attached value", ARGV("-vmgpt"), NULL,
	  { [M] = "gpt" }, { [M] = 1, [V] = 1 }, "" },
	{ "bundled flag and separate value", ARGV("-vm", "gpt", "x"), NULL,
	  { [M] = "gpt" }, { [M] = 1, [V] = 1 }, "x" },
	{ "attached value that looks like flags", ARGV("-mvh"), NULL,
	  { [M] = "vh" }, { [M] = 1 }, "" },
	{ "options after operands", ARGV("a", "-v", "b", "--model", "x", "c"),
	  NULL, { [M] = "x" }, { [M] = 1, [V] = 1 }, "a|b|c" },
	{ "double dash ends options",
	  ARGV("-v", "--", "-m", "x", "--help", "--"), NULL,
	  { 0 }, { [V] = 1 }, "-m|x|--help|--" },
	{ "double dash after operands", ARGV("a", "--", "-v"), NULL,
	  { 0 }, { 0 }, "a|-v" },
	{ "dash alone is an operand", ARGV("-", "-v", "-"), NULL,
	  { 0 }, { [V] = 1 }, "-|-" },
	{ "last value wins", ARGV("-m", "a", "--model", "b", "-mc", "--model=d",
				  "-m", "e"), NULL,
	  { [M] = "e" }, { [M] = 5 }, "" },
	{ "value that looks like an option", ARGV("-m", "-v", "--model", "--help"),
	  NULL, { [M] = "--help" }, { [M] = 2 }, "" },
	{ "negative number as a value", ARGV("-t", "-1", "--temperature=-0.5"),
	  NULL, { [T] = "-0.5" }, { [T] = 2 }, "" },
	{ "option without a short name", ARGV("--max-tokens", "10", "--no-stream"),
	  NULL, { [MAXTOK] = "10" }, { [MAXTOK] = 1, [NOSTREAM] = 1 }, "" },
	{ "operand with spaces and =", ARGV("a b=c", "--verbose"), NULL,
	  { 0 }, { [V] = 1 }, "a b=c" },

	/* ---- errors ---- */
	FAIL("missing value, long", ARGV("hi", "--model"),
	  "option '--model' needs a value (MODEL)"),
	FAIL("missing value, short", ARGV("-m"),
	  "option '-m' needs a value (MODEL)"),
	FAIL("missing value, bundled", ARGV("-vm"),
	  "option '-m' needs a value (MODEL)"),
	FAIL("missing value, other option", ARGV("-v", "--limit"),
	  "option '--limit' needs a value (N)"),
	FAIL("flag given a value", ARGV("--verbose=1"),
	  "option '--verbose' takes no value"),
	FAIL("flag given an empty value", ARGV("--no-stream="),
	  "option '--no-stream' takes no value"),
	FAIL("unknown long with a suggestion", ARGV("--modle", "x"),
	  "unknown option '--modle' (did you mean '--model'? " HINT),
	FAIL("unknown long with = and a suggestion", ARGV("--temprature=1"),
	  "unknown option '--temprature=1' (did you mean '--temperature'? " HINT),
	FAIL("unknown long, wrong case", ARGV("--Verbose"),
	  "unknown option '--Verbose' (did you mean '--verbose'? " HINT),
	FAIL("unknown long, max_tokens spelled with _", ARGV("--max_tokens", "5"),
	  "unknown option '--max_tokens' (did you mean '--max-tokens'? " HINT),
	FAIL("unknown long without a suggestion", ARGV("--xyzzy"),
	  "unknown option '--xyzzy' (" HINT),
	FAIL("unknown short", ARGV("-x"), "unknown option '-x' (" HINT),
	FAIL("unknown short in a bundle", ARGV("-vxh"),
	  "unknown option '-x' (" HINT),
	FAIL("unknown option after operands", ARGV("a", "b", "--nope"),
	  "unknown option '--nope' (" HINT),
	FAIL("very long unknown option is cut",
	  ARGV("--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	  "unknown option '--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' ("
	  HINT),
};

static char **argv_dup(const char *const *src, int *argc)
{
	char **av;
	int n = 0;

	while (src[n])
		n++;
	av = xcalloc((size_t)n + 1, sizeof(*av));
	for (int i = 0; i < n; i++)
		av[i] = xstrdup(src[i]);
	*argc = n;
	return av;
}

static void check_case(const struct pcase *c)
{
	struct opt_result r = { 0 };
	struct err e;
	char **av;
	char joined[256] = "";
	int argc, rc;

	av = argv_dup(c->argv, &argc);
	err_clear(&e);
	rc = opt_parse(opts, NOPTS, argc, av, "test", &r, &e);
	if (c->err) {
		is_int(rc, -1, "%s: fails", c->name);
		is_int(e.code, ERR_USAGE, "%s: ERR_USAGE", c->name);
		is_str(e.msg, c->err, "%s: message", c->name);
		goto cleanup;
	}
	if (!ok(rc == 0, "%s: parses", c->name)) {
		printf("#   %s\n", e.msg);
		goto cleanup;
	}
	for (int k = 0; k < NOPTS; k++) {
		is_str(r.values[k], c->values[k], "%s: value of --%s", c->name,
		       opts[k].long_name);
		is_int(r.seen[k], c->seen[k], "%s: --%s seen", c->name,
		       opts[k].long_name);
	}
	for (int i = 0; i < r.noperands; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined),
			 "%s%s", i ? "|" : "", r.operands[i]);
	is_str(joined, c->operands, "%s: operands", c->name);
	/* Operands and values are borrowed from argv. */
	for (int i = 0; i < r.noperands; i++) {
		int found = 0;

		for (int j = 0; j < argc; j++)
			found |= r.operands[i] == av[j];
		if (!ok(found, "%s: operand %d points into argv", c->name, i))
			break;
	}
cleanup:
	opt_result_release(&r);
	ok(!r.values && !r.seen && !r.operands && !r.noperands,
	   "%s: release empties", c->name);
	for (int i = 0; i < argc; i++)
		free(av[i]);
	free(av);
}

/* ==== suggestions ==== */

static void test_suggest(void)
{
	static const char *const names[] = {
		"model", "system", "temperature", "max-tokens", "no-stream",
		"json", "retries", "timeout", "verbose", "help",
	};
	static const struct {
		const char *word;
		const char *want;
	} t[] = {
		{ "model", "model" },
		{ "mdel", "model" },         /* deletion */
		{ "modle", "model" },        /* transposition: distance 2 */
		{ "moddel", "model" },       /* insertion */
		{ "mod3l", "model" },        /* substitution */
		{ "temprature", "temperature" },
		{ "temperatur", "temperature" },
		{ "max-token", "max-tokens" },
		{ "max_tokens", "max-tokens" },
		{ "nostream", "no-stream" },
		{ "jsn", "json" },
		{ "hlep", "help" },
		{ "timeuot", "timeout" },
		{ "retires", "retries" },    /* distance 2 */
		{ "xyzzy", NULL },
		{ "stream-all", NULL },
		{ "abcdefghij", NULL },
		{ "mxdxx", NULL },           /* distance 3 from model */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_str(opt_suggest(t[i].word, names, sizeof(names) / sizeof(names[0])),
		       t[i].want, "opt_suggest '%s'", t[i].word);

	/* The closest wins, not the first within reach. */
	{
		static const char *const two[] = { "steam", "stream" };
		static const char *const tie[] = { "model", "modem" };

		is_str(opt_suggest("strean", two, 2), "stream",
		       "opt_suggest: distance 1 beats an earlier distance 2");
		is_str(opt_suggest("model", tie, 2), "model",
		       "opt_suggest: exact match");
		is_str(opt_suggest("modem", tie, 2), "modem",
		       "opt_suggest: exact match later in the list");
		is_str(opt_suggest("model", NULL, 0), NULL,
		       "opt_suggest: no names");
	}
}

/* ==== help ==== */

/* A local schema: an upper bound only, a lower bound only, a default. */
static const struct field local_fields[] = {
	{ "limit", FIELD_INTEGER, 0, NULL, FIELD_NO_BOUND, 77, NULL, NULL, "" },
	{ "offset", FIELD_INTEGER, 0, "5", 0, FIELD_NO_BOUND, NULL, NULL, "" },
	{ "name", FIELD_STRING, 0, "\"bob\"", FIELD_NO_BOUND, FIELD_NO_BOUND,
	  NULL, NULL, "" },
};
static const struct schema local_schema = { "Local", local_fields, 3 };

static const struct opt help_opts[] = {
	{ 'm', "model", "MODEL", "model", "model to use" },
	{ 't', "temperature", "X", "temperature", "sampling temperature" },
	{ 0, "max-tokens", "N", "max_tokens", "upper bound on tokens" },
	{ 0, "no-stream", NULL, "stream", "wait for the whole answer" },
	{ 'v', "verbose", NULL, NULL, "say more" },
	{ 'l', "limit", "N", "limit", "how many" },
	{ 0, "offset", "N", "offset", "where to start" },
	{ 0, "name", "NAME", "name", "who" },
	{ 0, "a-rather-long-option", "VALUE", NULL, "long one" },
	{ 0, "unknown-field", "X", "nope", "field in no schema" },
};

/* Prints help into memory; returns the owned text. */
static char *help_text(const struct opt *o, size_t n,
		       const struct schema *const *schemas)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		perror("open_memstream");
		exit(1);
	}
	opt_help(f, o, n, schemas);
	fclose(f);
	return text;
}

/* Line k (0-based) of text, in a static buffer; NULL past the end. */
static const char *line_of(const char *text, int k)
{
	static char line[256];
	const char *p = text, *nl;

	while (k-- > 0) {
		if (!(p = strchr(p, '\n')))
			return NULL;
		p++;
	}
	if (!*p)
		return NULL;
	nl = strchr(p, '\n');
	snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - p) : (int)strlen(p), p);
	return line;
}

static void test_help(void)
{
	static const struct schema *const schemas[] = {
		&schema_chat_request, &local_schema, NULL,
	};
	static const char *const want[] = {
		"  -m, --model MODEL       model to use",
		"  -t, --temperature X     sampling temperature (0..2, default 0.7)",
		"      --max-tokens N      upper bound on tokens (1..16384)",
		"      --no-stream         wait for the whole answer",
		"  -v, --verbose           say more",
		"  -l, --limit N           how many (<= 77)",
		"      --offset N          where to start (>= 0, default 5)",
		"      --name NAME         who (default bob)",
		"      --a-rather-long-option VALUE",
		"                          long one",
		"      --unknown-field X   field in no schema",
	};
	size_t n = sizeof(help_opts) / sizeof(help_opts[0]);
	char *text = help_text(help_opts, n, schemas);
	int k;

	for (k = 0; k < (int)(sizeof(want) / sizeof(want[0])); k++)
		is_str(line_of(text, k), want[k], "help line %d", k + 1);
	is_str(line_of(text, k), NULL, "help has no extra lines");
	ok(strlen(text) && text[strlen(text) - 1] == '\n',
	   "help ends with a newline");
	ok(!strstr(text, "(,") && !strstr(text, "()") && !strstr(text, ", )"),
	   "help has no empty or half-built brackets");
	free(text);

	/* Without schemas, no bounds at all. */
	text = help_text(help_opts, 3, NULL);
	is_str(line_of(text, 1), "  -t, --temperature X     sampling temperature",
	       "help without schemas: no bounds");
	free(text);

	/* Every schema in the list is searched. */
	{
		static const struct schema *const local_first[] = {
			&local_schema, &schema_chat_request, NULL,
		};
		text = help_text(help_opts + 1, 1, local_first);
		is_str(line_of(text, 0),
		       "  -t, --temperature X     sampling temperature (0..2, default 0.7)",
		       "help: field found in a later schema");
		free(text);
	}
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	test_suggest();
	test_help();
	return tap_done();
}
