/*
 * opt.h - command-line options as tables.
 *
 * One table per command drives parsing, --help and (through a test) the
 * completions and man pages.  Parsing is GNU-style: options and operands
 * may mix, "--" ends options, "--name=value" and "-xVALUE" work, flags
 * may be bundled ("-vh").
 */
#ifndef AICHAT_OPT_H
#define AICHAT_OPT_H

#include <stddef.h>
#include <stdio.h>

#include "aichat/err.h"
#include "aichat/schema.h"

#include <cJSON.h>

struct opt {
	char short_name;        /* 0 = none */
	const char *long_name;
	const char *arg;        /* metavariable ("MODEL"); NULL = a flag */
	const char *field;      /* schema field checked against, or NULL */
	const char *help;
};

struct opt_given {
	size_t opt;             /* index into the table */
	const char *value;      /* borrowed from argv; NULL for a flag */
};

struct opt_result {
	const char **values;    /* per option: last value given, or NULL */
	int *seen;              /* per option: times given */
	char **operands;        /* borrowed from argv */
	int noperands;
	struct opt_given *given;/* every option in command-line order, for
				 * options that may repeat */
	size_t ngiven;
};

/*
 * Parses argv[0..argc) against opts[0..n).  cmd names the command in
 * messages.  On an unknown option or a missing argument returns -1 with e
 * (ERR_USAGE) naming it, with a "did you mean" hint when one is close.
 * out's arrays are owned: opt_result_release().
 */
int opt_parse(const struct opt *opts, size_t n, int argc, char **argv,
	      const char *cmd, struct opt_result *out, struct err *e);
void opt_result_release(struct opt_result *r);

/*
 * Adds the value of every option tied to a field of s to obj (numbers
 * as JSON numbers when they parse, else as the string, so validation
 * names the type error), then validates obj against s.  Every failure is
 * printed as "aichat: CMD: invalid value 'V' for '--flag': MSG".
 * Returns the number of failures.
 */
size_t opt_validate(const struct opt *opts, size_t n,
		    const struct opt_result *r, const struct schema *s,
		    cJSON *obj, const char *cmd);

/*
 * Prints the options section of --help.  An option tied to a field of one
 * of the schemas (a NULL-terminated list, may be NULL) shows the field's
 * bounds and default from that table.
 */
void opt_help(FILE *f, const struct opt *opts, size_t n,
	      const struct schema *const *schemas);

/* The name closest to word (edit distance <= 2, or one that word is a
 * prefix of, for words of 3 or more characters), or NULL. */
const char *opt_suggest(const char *word, const char *const *names, size_t n);

#endif
