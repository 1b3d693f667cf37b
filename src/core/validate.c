/*
 * validate.c - checks JSON values against the schema tables.
 *
 * Every failing field is reported, so a client fixes all of them in one
 * round.  Messages name the bound ("must be <= 2"); the caller adds the
 * field and value in its own face's words.
 */
#include "aichat/schema.h"
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_length(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

const struct field *schema_field(const struct schema *s, const char *name)
{
	for (size_t i = 0; i < s->nfields; i++)
		if (!strcmp(s->fields[i].name, name))
			return &s->fields[i];
	return NULL;
}

void verrors_release(struct verrors *v)
{
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

/* A short, printable rendering of the offending value: the client's
 * text, so it goes through the trust boundary (one line, valid UTF-8,
 * no key), cut at a character boundary with "..." when it is long. */
static void show_value(const cJSON *n, char *dst, size_t cap)
{
	char *text = NULL, *clean;
	const char *src;
	size_t len;

	dst[0] = '\0';
	if (!n)
		return;
	if (cJSON_IsString(n))
		src = n->valuestring;
	else
		src = text = cJSON_PrintUnformatted(n);
	if (!src)
		src = "";
	/* Past cap bytes of input the rendering is cut anyway. */
	len = strnlen(src, cap * 4);
	clean = trust_clean_dup(src, len);
	if (strlen(clean) < cap && len == strlen(src)) {
		memcpy(dst, clean, strlen(clean) + 1);
	} else {
		len = trust_clean(dst, cap - 3, clean, strlen(clean));
		memcpy(dst + len, "...", 4);
	}
	free(clean);
	free(text);
}

static void add(struct verrors *out, const char *prefix, const char *field,
		const cJSON *value, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void add(struct verrors *out, const char *prefix, const char *field,
		const cJSON *value, const char *type, const char *fmt, ...)
{
	struct verror *e;
	va_list ap;

	out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	e = &out->v[out->n++];
	memset(e, 0, sizeof(*e));
	if (*prefix)
		snprintf(e->loc, sizeof(e->loc), "%s.%s", prefix, field);
	else
		snprintf(e->loc, sizeof(e->loc), "%s", field);
	snprintf(e->field, sizeof(e->field), "%s", field);
	show_value(value, e->value, sizeof(e->value));
	e->type = type;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void verrors_add(struct verrors *out, const char *loc, const cJSON *value,
		 const char *type, const char *fmt, ...)
{
	struct verror *e;
	const char *last = strrchr(loc, '.');
	va_list ap;

	out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	e = &out->v[out->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->loc, sizeof(e->loc), "%s", loc);
	snprintf(e->field, sizeof(e->field), "%s", last ? last + 1 : loc);
	show_value(value, e->value, sizeof(e->value));
	e->type = type;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

static const char *plural(double n, const char *word)
{
	static char tmp[32];
	snprintf(tmp, sizeof(tmp), "%s%s", word, n == 1 ? "" : "s");
	return tmp;
}

static size_t check(const struct schema *s, cJSON *obj, const char *prefix,
		    struct verrors *out);

const struct schema_check *schema_check_of(const struct schema *s,
					   const char *field)
{
	for (const struct schema_check *c = schema_checks; c->schema; c++)
		if (c->schema == s && (field ? c->field && !strcmp(c->field, field) :
				       !c->field))
			return c;
	return NULL;
}

const struct schema_check *schema_check_for(const struct field *f)
{
	for (const struct schema_check *c = schema_checks; c->schema; c++)
		if (f >= c->schema->fields && f < c->schema->fields + c->schema->nfields &&
		    c->field && !strcmp(c->field, f->name))
			return c;
	return NULL;
}

static void check_type(const struct field *f, cJSON *obj, cJSON *n,
		       const char *prefix, struct verrors *out);

static void check_field(const struct schema *s, const struct field *f,
			cJSON *obj, cJSON *n, const char *prefix,
			struct verrors *out)
{
	const struct schema_check *sc;
	size_t before = out->n;
	char loc[160];

	check_type(f, obj, n, prefix, out);
	if (out->n != before || !(sc = schema_check_of(s, f->name)) || !sc->check)
		return;
	if (*prefix)
		snprintf(loc, sizeof(loc), "%s.%s", prefix, f->name);
	else
		snprintf(loc, sizeof(loc), "%s", f->name);
	sc->check(n, loc, out);
}

static void check_type(const struct field *f, cJSON *obj, cJSON *n,
		       const char *prefix, struct verrors *out)
{
	switch (f->type) {
	case FIELD_ANY:
		return;
	case FIELD_STRING: {
		if (!cJSON_IsString(n)) {
			add(out, prefix, f->name, n, "string_type", "must be a string");
			return;
		}
		if (f->enums) {
			struct { char s[120]; size_t n; } list = { "", 0 };
			for (const char *const *e = f->enums; *e; e++) {
				if (!strcmp(*e, n->valuestring))
					return;
				list.n += (size_t)snprintf(list.s + list.n,
					sizeof(list.s) - list.n, "%s%s",
					list.n ? ", " : "", *e);
				if (list.n >= sizeof(list.s))
					list.n = sizeof(list.s) - 1;
			}
			add(out, prefix, f->name, n, "literal_error",
			    "must be one of: %s", list.s);
			return;
		}
		size_t len = utf8_length(n->valuestring);
		if (f->min >= 0 && (double)len < f->min)
			add(out, prefix, f->name, n, "string_too_short",
			    "must be at least %.15g %s", f->min, plural(f->min, "character"));
		else if (f->max >= 0 && (double)len > f->max)
			add(out, prefix, f->name, n, "string_too_long",
			    "must be at most %.15g characters (got %zu)", f->max, len);
		return;
	}
	case FIELD_NUMBER:
	case FIELD_INTEGER: {
		double v;
		if (!cJSON_IsNumber(n)) {
			add(out, prefix, f->name, n,
			    f->type == FIELD_INTEGER ? "int_type" : "float_type",
			    f->type == FIELD_INTEGER ? "must be an integer" :
			    "must be a number");
			return;
		}
		v = n->valuedouble;
		/* A whole number out of range is a bound error, not a type
		 * error: every integer field has bounds that keep it in int. */
		if (f->type == FIELD_INTEGER && v != floor(v)) {
			add(out, prefix, f->name, n, "int_type", "must be an integer");
			return;
		}
		if (f->min != FIELD_NO_BOUND && v < f->min)
			add(out, prefix, f->name, n, "greater_than_equal",
			    "must be >= %.15g", f->min);
		else if (f->max != FIELD_NO_BOUND && v > f->max)
			add(out, prefix, f->name, n, "less_than_equal",
			    "must be <= %.15g", f->max);
		return;
	}
	case FIELD_BOOL:
		if (!cJSON_IsBool(n))
			add(out, prefix, f->name, n, "bool_type",
			    "must be true or false");
		return;
	case FIELD_OBJECT: {
		char sub[160];
		if (!cJSON_IsObject(n)) {
			add(out, prefix, f->name, n, "model_type",
			    "must be a JSON object");
			return;
		}
		if (!f->items)
			return;  /* any object: logit_bias, metadata, ... */
		if (*prefix)
			snprintf(sub, sizeof(sub), "%s.%s", prefix, f->name);
		else
			snprintf(sub, sizeof(sub), "%s", f->name);
		check(f->items, n, sub, out);
		return;
	}
	case FIELD_ARRAY: {
		int count, i = 0;
		cJSON *it;
		if (!cJSON_IsArray(n)) {
			add(out, prefix, f->name, n, "list_type", "must be an array");
			return;
		}
		count = cJSON_GetArraySize(n);
		if (f->min >= 0 && count < f->min) {
			add(out, prefix, f->name, n, "too_short",
			    "must have at least %.15g %s", f->min, plural(f->min, "item"));
			return;
		}
		if (f->max >= 0 && count > f->max) {
			add(out, prefix, f->name, n, "too_long",
			    "must have at most %.15g items (got %d)", f->max, count);
			return;
		}
		if (!f->items)
			return;
		cJSON_ArrayForEach(it, n) {
			char sub[160];
			if (*prefix)
				snprintf(sub, sizeof(sub), "%s.%s.%d", prefix, f->name, i);
			else
				snprintf(sub, sizeof(sub), "%s.%d", f->name, i);
			check(f->items, it, sub, out);
			i++;
		}
		return;
	}
	}
	(void)obj;
}

static size_t check(const struct schema *s, cJSON *obj, const char *prefix,
		    struct verrors *out)
{
	size_t before = out->n;

	if (!cJSON_IsObject(obj)) {
		add(out, prefix, *prefix ? "" : "body", obj, "model_type",
		    "must be a JSON object");
		if (*prefix && out->n) {
			/* loc is the element itself, not a field of it */
			struct verror *v = &out->v[out->n - 1];
			const char *last = strrchr(prefix, '.');
			snprintf(v->loc, sizeof(v->loc), "%s", prefix);
			snprintf(v->field, sizeof(v->field), "%s",
				 last ? last + 1 : prefix);
		}
		return out->n - before;
	}
	for (size_t i = 0; i < s->nfields; i++) {
		const struct field *f = &s->fields[i];
		cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, f->name);

		/* A null is an absent field, except where FIELD_ANY's check
		 * gives null a meaning of its own (content: null). */
		if (!n || (cJSON_IsNull(n) && !f->required && f->type != FIELD_ANY)) {
			if (f->required) {
				add(out, prefix, f->name, NULL, "missing",
				    "is required");
			} else if (f->def) {
				if (n)
					cJSON_DeleteItemFromObjectCaseSensitive(obj, f->name);
				cJSON_AddItemToObject(obj, f->name, cJSON_Parse(f->def));
			} else if (n) {
				cJSON_DeleteItemFromObjectCaseSensitive(obj, f->name);
			}
			continue;
		}
		check_field(s, f, obj, n, prefix, out);
	}
	if (out->n == before) {
		const struct schema_check *sc = schema_check_of(s, NULL);
		if (sc)
			sc->check(obj, prefix, out);
	}
	return out->n - before;
}

size_t schema_validate(const struct schema *s, cJSON *obj, struct verrors *out)
{
	return check(s, obj, "", out);
}

struct schema *schema_lift(const struct schema *s, const char *const *names)
{
	struct schema *c = xmalloc(sizeof(*c));
	struct field *f = xcalloc(s->nfields ? s->nfields : 1, sizeof(*f));

	memcpy(f, s->fields, s->nfields * sizeof(*f));
	for (size_t i = 0; i < s->nfields; i++) {
		for (const char *const *n = names; *n; n++)
			if (!strcmp(f[i].name, *n))
				f[i].max = FIELD_NO_BOUND;
		if (f[i].items)
			f[i].items = schema_lift(f[i].items, names);
	}
	c->name = s->name;
	c->fields = f;
	c->nfields = s->nfields;
	return c;
}

void schema_free(struct schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nfields; i++)
		schema_free((struct schema *)s->fields[i].items);
	free((struct field *)s->fields);
	free(s);
}
