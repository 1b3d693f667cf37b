/*
 * test_buf.c - unit tests for the growable buffer (src/util/buf.c).
 *
 * Table-driven: each case is a cap and a list of steps, each step an
 * operation, the return it must give and the content it must leave.  After
 * buf_init() and after every step the invariants are checked too: ptr never
 * NULL, ptr[len] == '\0', len within max, and a failed call leaves ptr, len,
 * cap and the bytes exactly as they were.
 */
#include "aichat/buf.h"
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum op {
	OP_END = 0,
	OP_APPEND,      /* buf_append(b, s, n) */
	OP_APPENDS,     /* buf_appends(b, s) */
	OP_PUTC,        /* buf_putc(b, n) */
	OP_PRINTF,      /* buf_printf(b, "%s:%zu", s, n) */
	OP_GROW,        /* buf_grow(b, n) */
	OP_CONSUME,     /* buf_consume(b, n) */
	OP_TRUNCATE,    /* buf_truncate(b, n) */
	OP_CLEAR,
	OP_RELEASE,
	OP_DETACH,      /* must return s */
	OP_FIT,         /* buf_fit(b): cap must be len + 1 (0 when empty) */
};

static const char *const op_names[] = {
	"end", "append", "appends", "putc", "printf", "grow", "consume",
	"truncate", "clear", "release", "detach", "fit",
};

struct step {
	enum op op;
	const char *s;
	size_t n;
	int rc;
	const char *want;       /* content afterwards */
	size_t want_len;        /* 0: strlen(want) */
};

struct buf_case {
	const char *name;
	size_t max;
	struct step steps[12];
};

#define DO(op, s, n, rc, want) { op, s, n, rc, want, 0 }
#define DOL(op, s, n, rc, want, len) { op, s, n, rc, want, len }

#define LONGSTR "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"01234567890123456789012345678901234567"

static const struct buf_case cases[] = {
	{ "fresh buffer", 0, { DO(OP_END, NULL, 0, 0, "") } },
	{ "append", 0, {
		DO(OP_APPEND, "abc", 3, 0, "abc"),
		DO(OP_APPEND, "", 0, 0, "abc"),
		DO(OP_APPEND, "xyz", 1, 0, "abcx"),
		DOL(OP_APPEND, "d\0e", 3, 0, "abcxd\0e", 7),
	} },
	{ "empty append to a fresh buffer", 0, {
		DO(OP_APPEND, "", 0, 0, ""),
		DO(OP_APPENDS, "", 0, 0, ""),
	} },
	{ "appends and putc", 0, {
		DO(OP_APPENDS, "hello", 0, 0, "hello"),
		DO(OP_PUTC, NULL, ' ', 0, "hello "),
		DO(OP_PUTC, NULL, 0xE9, 0, "hello \xE9"),
		DOL(OP_PUTC, NULL, 0, 0, "hello \xE9\0", 8),
	} },
	{ "printf", 0, {
		DO(OP_PRINTF, "x", 1, 0, "x:1"),
		DO(OP_PRINTF, "", 0, 0, "x:1:0"),
		DO(OP_PRINTF, LONGSTR, 200, 0, "x:1:0" LONGSTR ":200"),
	} },
	{ "growth keeps content", 0, {
		DO(OP_APPENDS, LONGSTR, 0, 0, LONGSTR),
		DO(OP_APPENDS, LONGSTR, 0, 0, LONGSTR LONGSTR),
		DO(OP_GROW, NULL, 5000, 0, LONGSTR LONGSTR),
		DO(OP_APPENDS, "!", 0, 0, LONGSTR LONGSTR "!"),
	} },
	{ "consume", 0, {
		DO(OP_APPENDS, "hello world", 0, 0, "hello world"),
		DO(OP_CONSUME, NULL, 6, 0, "world"),
		DO(OP_CONSUME, NULL, 0, 0, "world"),
		DO(OP_CONSUME, NULL, 5, 0, ""),
		DO(OP_APPENDS, "x", 0, 0, "x"),
		DO(OP_CONSUME, NULL, 10, 0, ""),
		DO(OP_CONSUME, NULL, 1, 0, ""),
	} },
	{ "consume of a fresh buffer", 0, {
		DO(OP_CONSUME, NULL, 0, 0, ""),
		DO(OP_CONSUME, NULL, 3, 0, ""),
	} },
	{ "truncate", 0, {
		DO(OP_APPENDS, "hello", 0, 0, "hello"),
		DO(OP_TRUNCATE, NULL, 5, 0, "hello"),
		DO(OP_TRUNCATE, NULL, 2, 0, "he"),
		DO(OP_TRUNCATE, NULL, 0, 0, ""),
		DO(OP_APPENDS, "z", 0, 0, "z"),
	} },
	{ "truncate of a fresh buffer", 0, {
		DO(OP_TRUNCATE, NULL, 0, 0, ""),
	} },
	{ "clear and release", 0, {
		DO(OP_APPENDS, "abc", 0, 0, "abc"),
		DO(OP_CLEAR, NULL, 0, 0, ""),
		DO(OP_APPENDS, "de", 0, 0, "de"),
		DO(OP_RELEASE, NULL, 0, 0, ""),
		DO(OP_RELEASE, NULL, 0, 0, ""),
		DO(OP_APPENDS, "fg", 0, 0, "fg"),
		DO(OP_CLEAR, NULL, 0, 0, ""),
		DO(OP_CLEAR, NULL, 0, 0, ""),
	} },
	{ "detach", 0, {
		DO(OP_APPENDS, "abc", 0, 0, "abc"),
		DO(OP_DETACH, "abc", 0, 0, ""),
		DO(OP_DETACH, "", 0, 0, ""),
		DO(OP_APPENDS, "x", 0, 0, "x"),
		DO(OP_CLEAR, NULL, 0, 0, ""),
		DO(OP_DETACH, "", 0, 0, ""),
	} },
	{ "detach of a fresh buffer", 0, {
		DO(OP_DETACH, "", 0, 0, ""),
	} },
	{ "max", 5, {
		DO(OP_APPENDS, "abc", 0, 0, "abc"),
		DO(OP_APPEND, "def", 3, -1, "abc"),
		DO(OP_APPENDS, "de", 0, 0, "abcde"),
		DO(OP_PUTC, NULL, 'x', -1, "abcde"),
		DO(OP_APPEND, "", 0, 0, "abcde"),
		DO(OP_PRINTF, "", 0, -1, "abcde"),
		DO(OP_GROW, NULL, 1, -1, "abcde"),
		DO(OP_GROW, NULL, 0, 0, "abcde"),
		DO(OP_CONSUME, NULL, 2, 0, "cde"),
		DO(OP_APPEND, "fgh", 2, 0, "cdefg"),
		DO(OP_DETACH, "cdefg", 0, 0, ""),
		DO(OP_APPENDS, "12345", 0, 0, "12345"),
	} },
	{ "max on a fresh buffer", 3, {
		DO(OP_APPENDS, "abcd", 0, -1, ""),
		DO(OP_PRINTF, "ab", 0, -1, ""),
		DO(OP_GROW, NULL, 4, -1, ""),
		DO(OP_PRINTF, "a", 0, 0, "a:0"),
		DO(OP_PUTC, NULL, 'x', -1, "a:0"),
		DO(OP_TRUNCATE, NULL, 1, 0, "a"),
		DO(OP_PUTC, NULL, 'x', 0, "ax"),
	} },
	{ "max of one byte", 1, {
		DO(OP_APPEND, "ab", 2, -1, ""),
		DO(OP_PUTC, NULL, 'a', 0, "a"),
		DO(OP_PUTC, NULL, 'b', -1, "a"),
		DO(OP_RELEASE, NULL, 0, 0, ""),
		DO(OP_PUTC, NULL, 'c', 0, "c"),
	} },
	{ "max over a long content", 64, {
		DOL(OP_APPEND, LONGSTR, 64, 0, LONGSTR "", 64),
		DOL(OP_APPEND, "x", 1, -1, LONGSTR "", 64),
		DOL(OP_PRINTF, "", 0, -1, LONGSTR "", 64),
		DOL(OP_APPENDS, LONGSTR, 0, -1, LONGSTR "", 64),
	} },
	{ "fit after growth, then growth again", 0, {
		DO(OP_FIT, NULL, 0, 0, ""),
		DO(OP_APPENDS, LONGSTR, 0, 0, LONGSTR),
		DO(OP_TRUNCATE, NULL, 10, 0, "0123456789"),
		DO(OP_FIT, NULL, 0, 0, "0123456789"),
		DO(OP_FIT, NULL, 0, 0, "0123456789"),
		DO(OP_PUTC, NULL, 'x', 0, "0123456789x"),
		DO(OP_CLEAR, NULL, 0, 0, ""),
		DO(OP_FIT, NULL, 0, 0, ""),
		DO(OP_APPENDS, "ab", 0, 0, "ab"),
	} },
	{ "size overflow", 0, {
		DO(OP_GROW, NULL, SIZE_MAX, -1, ""),
		DO(OP_APPENDS, "a", 0, 0, "a"),
		DO(OP_GROW, NULL, SIZE_MAX, -1, "a"),
		DO(OP_GROW, NULL, SIZE_MAX - 1, -1, "a"),
		DO(OP_APPEND, "b", SIZE_MAX, -1, "a"),
	} },
};

/* Runs one step; returns its return (0 for the void ones). */
static int step_run(struct buf *b, const struct step *st, char **detached)
{
	switch (st->op) {
	case OP_APPEND:
		return buf_append(b, st->s, st->n);
	case OP_APPENDS:
		return buf_appends(b, st->s);
	case OP_PUTC:
		return buf_putc(b, (int)st->n);
	case OP_PRINTF:
		return buf_printf(b, "%s:%zu", st->s, st->n);
	case OP_GROW:
		return buf_grow(b, st->n);
	case OP_CONSUME:
		buf_consume(b, st->n);
		return 0;
	case OP_TRUNCATE:
		buf_truncate(b, st->n);
		return 0;
	case OP_CLEAR:
		buf_clear(b);
		return 0;
	case OP_RELEASE:
		buf_release(b);
		return 0;
	case OP_DETACH:
		*detached = buf_detach(b);
		return 0;
	case OP_FIT:
		buf_fit(b);
		return 0;
	case OP_END:
		break;
	}
	return 0;
}

/* Checks the invariants and the content; returns why not, or NULL. */
static const char *buf_bad(const struct buf *b, size_t max, const char *want,
			   size_t want_len)
{
	if (!b->ptr)
		return "ptr is NULL";
	if (b->ptr[b->len] != '\0')
		return "not NUL-terminated";
	if (b->max != max)
		return "max changed";
	if (max && b->len > max)
		return "len passes max";
	if (b->cap && b->len >= b->cap)
		return "len not below cap";
	if (!b->cap && b->len)
		return "content without storage";
	if (b->len != want_len || memcmp(b->ptr, want, want_len) != 0)
		return "wrong content";
	return NULL;
}

static void check_case(const struct buf_case *c)
{
	struct buf b, before;
	const struct step *st;
	const char *why;
	char *snap, *detached;
	size_t i, wlen;
	int rc;

	buf_init(&b, c->max);
	why = buf_bad(&b, c->max, "", 0);
	if (!ok(!why && b.cap == 0, "%s: init", c->name))
		printf("#   %s\n", why ? why : "init allocated");
	for (i = 0; i < sizeof(c->steps) / sizeof(c->steps[0]); i++) {
		st = &c->steps[i];
		if (st->op == OP_END)
			break;
		before = b;
		snap = malloc(b.len + 1);
		memcpy(snap, b.ptr, b.len + 1);
		detached = NULL;
		rc = step_run(&b, st, &detached);
		wlen = st->want_len ? st->want_len : strlen(st->want);
		why = buf_bad(&b, c->max, st->want, wlen);
		if (!why && rc != st->rc)
			why = "wrong return";
		if (!why && rc < 0 && (b.ptr != before.ptr || b.len != before.len ||
				       b.cap != before.cap ||
				       memcmp(b.ptr, snap, b.len + 1) != 0))
			why = "failed call changed the buffer";
		if (!why && st->op == OP_GROW && rc == 0 &&
		    b.cap < b.len + st->n + 1)
			why = "grow left too little room";
		if (!why && st->op == OP_DETACH &&
		    (!detached || strcmp(detached, st->s) != 0))
			why = "detach returned the wrong string";
		if (!why && st->op == OP_DETACH && b.cap != 0)
			why = "detach kept the storage";
		if (!why && st->op == OP_FIT && b.cap != (b.len ? b.len + 1 : 0))
			why = "fit kept room past the content";
		if (!ok(!why, "%s: step %zu %s", c->name, i + 1, op_names[st->op]))
			printf("#   %s (rc %d, len %zu, content '%s')\n", why, rc,
			       b.len, b.ptr ? b.ptr : "(null)");
		free(detached);
		free(snap);
	}
	buf_release(&b);
	if (!ok(b.ptr && b.ptr[0] == '\0' && b.len == 0 && b.cap == 0,
		"%s: release", c->name))
		printf("#   release left len %zu cap %zu\n", b.len, b.cap);
}

int main(void)
{
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	return tap_done();
}
