/*
 * opt.c - table-driven option parsing and help; see opt.h.
 */
#include "aichat/opt.h"
#include "aichat/cli.h"
#include "aichat/buf.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_fail(const char *cmd, const struct err *e)
{
	char msg[sizeof(e->msg) * 3];

	/* Messages may quote an upstream or a file: the trust boundary has
	 * cleaned them at their source; this is the last gate before a
	 * terminal. */
	trust_clean(msg, sizeof(msg), e->msg, strnlen(e->msg, sizeof(e->msg)));
	fprintf(stderr, "aichat: %s: %s\n", cmd, msg);
	return err_exit_status(e->code);
}

void opt_result_release(struct opt_result *r)
{
	free(r->values);
	free(r->seen);
	free(r->operands);
	free(r->given);
	memset(r, 0, sizeof(*r));
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

const char *opt_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, names[i]);
		if (d < bestd || (strlen(word) >= 3 &&
				  !strncmp(names[i], word, strlen(word)) && bestd > 1)) {
			bestd = d < bestd ? d : 1;
			best = names[i];
		}
	}
	return best;
}

static int unknown(const struct opt *opts, size_t n, const char *cmd,
		   const char *arg, struct err *e)
{
	const char *names[64];
	char word[64];
	size_t k = 0;
	const char *s;

	for (size_t i = 0; i < n && k < 64; i++)
		names[k++] = opts[i].long_name;
	snprintf(word, sizeof(word), "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
	s = !strncmp(arg, "--", 2) ? opt_suggest(word, names, k) : NULL;
	if (s)
		return err_set(e, ERR_USAGE,
			       "unknown option '%.64s' (did you mean '--%s'? see 'aichat %s --help')",
			       arg, s, cmd);
	return err_set(e, ERR_USAGE, "unknown option '%.64s' (see 'aichat %s --help')",
		       arg, cmd);
}

/* At most one entry per argv word, so the array sized argc never fills. */
static void give(struct opt_result *r, size_t k, const char *value)
{
	r->given[r->ngiven].opt = k;
	r->given[r->ngiven].value = value;
	r->ngiven++;
}

int opt_parse(const struct opt *opts, size_t n, int argc, char **argv,
	      const char *cmd, struct opt_result *out, struct err *e)
{
	int only_operands = 0;

	out->values = xcalloc(n ? n : 1, sizeof(*out->values));
	out->seen = xcalloc(n ? n : 1, sizeof(*out->seen));
	out->operands = xcalloc((size_t)argc + 1, sizeof(*out->operands));
	out->noperands = 0;
	out->given = xcalloc((size_t)argc + 1, sizeof(*out->given));
	out->ngiven = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];

		if (only_operands || a[0] != '-' || !a[1]) {
			out->operands[out->noperands++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_operands = 1;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			size_t k;

			for (k = 0; k < n; k++)
				if (strlen(opts[k].long_name) == len &&
				    !strncmp(opts[k].long_name, a + 2, len))
					break;
			if (k == n)
				return unknown(opts, n, cmd, a, e);
			out->seen[k]++;
			if (!opts[k].arg) {
				if (eq)
					return err_set(e, ERR_USAGE,
						       "option '--%s' takes no value", opts[k].long_name);
				give(out, k, NULL);
				continue;
			}
			if (eq) {
				out->values[k] = eq + 1;
			} else if (i + 1 < argc) {
				out->values[k] = argv[++i];
			} else {
				return err_set(e, ERR_USAGE,
					       "option '--%s' needs a value (%s)",
					       opts[k].long_name, opts[k].arg);
			}
			give(out, k, out->values[k]);
			continue;
		}
		/* Short options, possibly bundled. */
		for (char *p = a + 1; *p; p++) {
			size_t k;
			for (k = 0; k < n; k++)
				if (opts[k].short_name == *p)
					break;
			if (k == n) {
				char tmp[3] = { '-', *p, 0 };
				return unknown(opts, n, cmd, tmp, e);
			}
			out->seen[k]++;
			if (!opts[k].arg) {
				give(out, k, NULL);
				continue;
			}
			if (p[1]) {
				out->values[k] = p + 1;
			} else if (i + 1 < argc) {
				out->values[k] = argv[++i];
			} else {
				return err_set(e, ERR_USAGE,
					       "option '-%c' needs a value (%s)", *p,
					       opts[k].arg);
			}
			give(out, k, out->values[k]);
			break;
		}
	}
	return 0;
}

static cJSON *flag_value(const struct field *f, const char *v)
{
	char *end;
	double d;

	if (f->type == FIELD_NUMBER || f->type == FIELD_INTEGER) {
		errno = 0;
		d = strtod(v, &end);
		if (*v && !*end && !errno && isfinite(d))
			return cJSON_CreateNumber(d);
	}
	if (f->type == FIELD_BOOL && (!strcmp(v, "true") || !strcmp(v, "false")))
		return cJSON_CreateBool(!strcmp(v, "true"));
	return cJSON_CreateString(v);
}

size_t opt_validate(const struct opt *opts, size_t n,
		    const struct opt_result *r, const struct schema *s,
		    cJSON *obj, const char *cmd)
{
	struct verrors ve = { 0 };
	size_t nerr;

	for (size_t k = 0; k < n; k++) {
		const struct field *f;

		if (!r->values[k] || !opts[k].field ||
		    !(f = schema_field(s, opts[k].field)))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(obj, f->name);
		cJSON_AddItemToObject(obj, f->name, flag_value(f, r->values[k]));
	}
	nerr = schema_validate(s, obj, &ve);
	for (size_t i = 0; i < ve.n; i++) {
		const struct verror *v = &ve.v[i];
		char name[80];

		snprintf(name, sizeof(name), "%s", v->field);
		for (size_t k = 0; k < n; k++)
			if (opts[k].field && !strcmp(opts[k].field, v->field) &&
			    r->seen[k])
				snprintf(name, sizeof(name), "--%s", opts[k].long_name);
		fprintf(stderr, "aichat: %s: invalid value '%s' for '%s': %s\n",
			cmd, v->value, name, v->msg);
	}
	verrors_release(&ve);
	return nerr;
}

static void bounds(struct buf *b, const struct field *f)
{
	int lo = f->min != FIELD_NO_BOUND, hi = f->max != FIELD_NO_BOUND;

	if (f->type == FIELD_NUMBER || f->type == FIELD_INTEGER) {
		if (lo && hi)
			buf_printf(b, ", %.15g..%.15g", f->min, f->max);
		else if (lo)
			buf_printf(b, ", >= %.15g", f->min);
		else if (hi)
			buf_printf(b, ", <= %.15g", f->max);
	}
	if (f->def && strcmp(f->def, "false") && strcmp(f->def, "true")) {
		size_t n = strlen(f->def);
		/* A string default reads better without its JSON quotes. */
		if (n >= 2 && f->def[0] == '"')
			buf_printf(b, ", default %.*s", (int)(n - 2), f->def + 1);
		else
			buf_printf(b, ", default %s", f->def);
	}
}

void opt_help(FILE *f, const struct opt *opts, size_t n,
	      const struct schema *const *schemas)
{
	struct buf left, right;

	buf_init(&left, 0);
	buf_init(&right, 0);
	for (size_t i = 0; i < n; i++) {
		const struct opt *o = &opts[i];
		const struct field *fd = NULL;

		for (const struct schema *const *s = schemas; s && *s && !fd && o->field; s++)
			fd = schema_field(*s, o->field);

		buf_clear(&left);
		buf_clear(&right);
		if (o->short_name)
			buf_printf(&left, "  -%c, --%s", o->short_name, o->long_name);
		else
			buf_printf(&left, "      --%s", o->long_name);
		if (o->arg)
			buf_printf(&left, " %s", o->arg);
		buf_appends(&right, o->help);
		if (fd) {
			size_t mark = right.len;
			buf_appends(&right, " (");
			bounds(&right, fd);
			if (right.len == mark + 2) {
				buf_truncate(&right, mark);
			} else {
				/* bounds() starts with ", " */
				memmove(right.ptr + mark + 2, right.ptr + mark + 4,
					right.len - mark - 4);
				buf_truncate(&right, right.len - 2);
				buf_putc(&right, ')');
			}
		}
		if (left.len < 25)   /* at least two spaces before the help */
			fprintf(f, "%-26s%s\n", left.ptr, right.ptr);
		else
			fprintf(f, "%s\n%-26s%s\n", left.ptr, "", right.ptr);
	}
	buf_release(&left);
	buf_release(&right);
}
