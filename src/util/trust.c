/*
 * trust.c - the one trust boundary for text from outside (see trust.h).
 *
 * One scanner walks the input: at each position it first asks whether a
 * secret (or something shaped like a key) starts there, then whether an
 * escape sequence does, then decodes one UTF-8 character.  The three
 * faces (clean, escape, utf8) differ only in what they write for each.
 */
#include "aichat/trust.h"
#include "aichat/xalloc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets;

void trust_add_secret(const char *s)
{
	if (!s || strlen(s) < TRUST_SECRET_MIN)
		return;
	pthread_mutex_lock(&secrets_lock);
	for (size_t i = 0; i < nsecrets; i++)
		if (!strcmp(secrets[i], s))
			goto out;
	secrets = xrealloc(secrets, (nsecrets + 1) * sizeof(*secrets));
	secrets[nsecrets++] = xstrdup(s);
out:
	pthread_mutex_unlock(&secrets_lock);
}

void trust_clear_secrets(void)
{
	pthread_mutex_lock(&secrets_lock);
	for (size_t i = 0; i < nsecrets; i++)
		free(secrets[i]);
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
	pthread_mutex_unlock(&secrets_lock);
}

/* ==== the scanner ==== */

/* Length of the valid UTF-8 character at s (n bytes left), its code point
 * in *cp; 0 when the bytes there are malformed. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0], min;
	size_t k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF)
		k = 2, c &= 0x1F, min = 0x80;
	else if (c >= 0xE0 && c <= 0xEF)
		k = 3, c &= 0x0F, min = 0x800;
	else if (c >= 0xF0 && c <= 0xF4)
		k = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	if (n < k)
		return 0;
	for (size_t i = 1; i < k; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return k;
}

long trust_utf8_invalid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned cp;

	for (size_t i = 0, k; i < n; i += k) {
		if (p[i] < 0x80) {      /* most text: no call per byte */
			k = 1;
			continue;
		}
		if (!(k = utf8_seq(p + i, n - i, &cp)))
			return (long)i;
	}
	return -1;
}

static int key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Bytes of s (n left, i bytes after the start of the text) taken by a
 * secret or a key-shaped token starting there; 0 for none.  *keep: bytes
 * of it to keep as they are ("Bearer "). */
static size_t secret_at(const char *start, size_t i, size_t n, size_t *keep)
{
	const char *s = start + i;
	size_t hit = 0;

	*keep = 0;
	pthread_mutex_lock(&secrets_lock);
	for (size_t j = 0; j < nsecrets && !hit; j++) {
		size_t k = strlen(secrets[j]), same = 0;

		while (same < k && same < n && s[same] == secrets[j][same])
			same++;
		if (same == k)
			hit = k;
		/* Its beginning, where the text was cut short, or its first
		 * TRUST_SECRET_PREFIX bytes or more anywhere (an upstream may
		 * echo a key cut, followed by anything). */
		else if ((same == n && n >= TRUST_SECRET_MIN + 1) ||
			 same >= TRUST_SECRET_PREFIX)
			hit = same;
	}
	pthread_mutex_unlock(&secrets_lock);
	if (hit)
		return hit;
	if (n >= 11 && !memcmp(s, "sk-", 3) &&
	    (i == 0 || !key_char((unsigned char)s[-1]))) {
		size_t k = 3;
		while (k < n && key_char((unsigned char)s[k]))
			k++;
		if (k >= 11)
			return k;
	}
	if (n > 7 && !strncmp(s, "Bearer ", 7)) {
		size_t k = 7;
		while (k < n && (key_char((unsigned char)s[k]) || s[k] == '.' ||
				 s[k] == '~' || s[k] == '+' || s[k] == '/' || s[k] == '='))
			k++;
		if (k >= 7 + 8) {
			*keep = 7;
			return k;
		}
	}
	return 0;
}

/* Bytes of the escape sequence starting at s (n left): ESC or a C1
 * CSI/OSC/DCS; 0 when none starts there. */
static size_t escape_at(const unsigned char *s, size_t n)
{
	size_t i;
	int kind; /* '[' CSI, ']' string up to BEL or ST, 0 one more byte */

	if (s[0] == 0x1b) {
		if (n < 2)
			return 1;
		i = 2;
		kind = s[1] == '[' ? '[' :
		       (s[1] == ']' || s[1] == 'P' || s[1] == 'X' ||
			s[1] == '^' || s[1] == '_') ? ']' : 0;
		if (!kind)
			return 2;
	} else if (s[0] == 0xC2 && n >= 2 &&
		   (s[1] == 0x9B || s[1] == 0x9D || s[1] == 0x90 ||
		    s[1] == 0x98 || s[1] == 0x9E || s[1] == 0x9F)) {
		i = 2;
		kind = s[1] == 0x9B ? '[' : ']';
	} else {
		return 0;
	}
	if (kind == '[') {
		/* Parameters and intermediates, then one final byte. */
		while (i < n && s[i] >= 0x20 && s[i] <= 0x3F)
			i++;
		if (i < n && s[i] >= 0x40 && s[i] <= 0x7E)
			i++;
		return i;
	}
	for (; i < n; i++) {
		if (s[i] == 0x07)
			return i + 1;
		if (s[i] == 0x1b && i + 1 < n && s[i + 1] == '\\')
			return i + 2;
		if (s[i] == 0xC2 && i + 1 < n && s[i + 1] == 0x9C)
			return i + 2;
	}
	return n;
}

/* ==== clean: one line for a terminal ==== */

struct out {
	char *dst;
	size_t cap, o;
	int full;
};

/* Writes n bytes whole or not at all (a character is never cut). */
static void put(struct out *w, const char *p, size_t n)
{
	if (w->full || w->o + n + 1 > w->cap) {
		w->full = 1;
		return;
	}
	memcpy(w->dst + w->o, p, n);
	w->o += n;
}

static void put_space(struct out *w)
{
	if (w->o > 0 && w->dst[w->o - 1] != ' ')
		put(w, " ", 1);
}

/* Pass one of trust_clean(): escape sequences and control characters out,
 * malformed UTF-8 as U+FFFD, blanks as one space; dst holds len * 3 + 1. */
static size_t clean_text(char *dst, const char *src, size_t len)
{
	const unsigned char *p = (const unsigned char *)src;
	struct out w = { dst, len * 3 + 1, 0, 0 };
	size_t i = 0, k;
	unsigned cp;

	while (i < len) {
		if ((k = escape_at(p + i, len - i))) {
			i += k;
		} else if (!(k = utf8_seq(p + i, len - i, &cp))) {
			put(&w, "\xEF\xBF\xBD", 3);
			i++;
		} else {
			if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xA0) ||
			    cp == ' ')
				put_space(&w);
			else
				put(&w, src + i, k);
			i += k;
		}
	}
	return w.o;
}

size_t trust_clean(char *dst, size_t cap, const char *src, size_t len)
{
	/* Secrets are looked for in the cleaned text, not the raw one: what
	 * an escape sequence or a control byte kept apart ("sk-fu", ESC,
	 * "zz-...") must not join into a key after the check. */
	char *text = xmalloc(len * 3 + 1);
	size_t n = clean_text(text, src, len);
	struct out w = { dst, cap, 0, 0 };
	size_t i = 0, k, keep;
	unsigned cp;

	if (!cap) {
		free(text);
		return 0;
	}
	while (i < n && !w.full) {
		if ((k = secret_at(text, i, n - i, &keep))) {
			put(&w, text + i, keep);
			put(&w, TRUST_REDACTED, strlen(TRUST_REDACTED));
			i += k;
		} else {
			k = utf8_seq((const unsigned char *)text + i, n - i, &cp);
			if (!k)
				k = 1;
			put(&w, text + i, k);
			i += k;
		}
	}
	free(text);
	while (w.o > 0 && dst[w.o - 1] == ' ')
		w.o--;
	while (w.o > 0 && dst[0] == ' ') {
		memmove(dst, dst + 1, w.o - 1);
		w.o--;
	}
	dst[w.o] = '\0';
	return w.o;
}

char *trust_clean_dup(const char *src, size_t len)
{
	/* At most 3 bytes out per byte in (U+FFFD), or the redaction mark. */
	size_t cap = len * 3 + sizeof(TRUST_REDACTED) + 1;
	char *dst = xmalloc(cap);

	trust_clean(dst, cap, src, len);
	return dst;
}

cJSON *trust_json_string(const char *s)
{
	char *clean = trust_clean_dup(s, strlen(s));
	cJSON *j = cJSON_CreateString(clean);

	free(clean);
	return j;
}

/* ==== escape: a field of a text log line ==== */

void trust_escape(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, keep;
	unsigned cp;

	while (i < n) {
		if ((k = secret_at(s, i, n - i, &keep))) {
			trust_escape(b, s + i, keep);
			buf_appends(b, TRUST_REDACTED);
			i += k;
			continue;
		}
		k = utf8_seq(p + i, n - i, &cp);
		if (k && cp > 0x20 && cp != 0x7f && cp != '\\' &&
		    !(cp >= 0x80 && cp < 0xA0)) {
			buf_append(b, s + i, k);
			i += k;
			continue;
		}
		if (k == 0)
			k = 1;
		for (size_t j = 0; j < k; j++) {
			if (p[i + j] == '\\')
				buf_appends(b, "\\\\");
			else
				buf_printf(b, "\\x%02x", p[i + j]);
		}
		i += k;
	}
}

/* ==== utf8: text for a JSON encoder ==== */

/* Valid UTF-8 of n bytes of s into b: each malformed byte and each NUL
 * as U+FFFD; the secrets redacted too when redact is set. */
static void utf8_into(struct buf *b, const char *s, size_t n, int redact)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, keep;
	unsigned cp;

	while (i < n) {
		if (redact && (k = secret_at(s, i, n - i, &keep))) {
			buf_append(b, s + i, keep);
			buf_appends(b, TRUST_REDACTED);
			i += k;
		} else if (!(k = utf8_seq(p + i, n - i, &cp)) || cp == 0) {
			buf_appends(b, "\xEF\xBF\xBD");
			i++;
		} else {
			buf_append(b, s + i, k);
			i += k;
		}
	}
}

void trust_utf8(struct buf *b, const char *s, size_t n)
{
	utf8_into(b, s, n, 1);
}

void trust_utf8_valid(struct buf *b, const char *s, size_t n)
{
	utf8_into(b, s, n, 0);
}

/* ==== a terminal stream ==== */

enum { T_TEXT, T_ESC, T_CSI, T_STR, T_STR_ESC, T_C2 };

void trust_term_feed(struct trust_term *t, struct buf *out, const char *s,
		     size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (t->state) {
		case T_ESC:
			t->state = c == '[' ? T_CSI :
				   (c == ']' || c == 'P' || c == 'X' || c == '^' ||
				    c == '_') ? T_STR : T_TEXT;
			continue;
		case T_CSI:
			if (c < 0x20 || c > 0x3F)
				t->state = T_TEXT;  /* the final byte, dropped */
			continue;
		case T_STR_ESC:
			if (c == 0x1b)
				continue;
			t->state = c == '\\' ? T_TEXT : T_STR;
			continue;
		case T_STR:
			/* Up to BEL or ST; a newline ends it too, so an unended
			 * one cannot hide the rest of the answer. */
			if (c == 0x07)
				t->state = T_TEXT;
			else if (c == 0x1b)
				t->state = T_STR_ESC;
			else if (c == '\n') {
				t->state = T_TEXT;
				buf_putc(out, '\n');
			}
			continue;
		case T_C2:
			t->state = T_TEXT;
			if (c == 0x9B) {
				t->state = T_CSI;
				continue;
			}
			if (c == 0x90 || c == 0x98 || c == 0x9D || c == 0x9E || c == 0x9F) {
				t->state = T_STR;
				continue;
			}
			if (c >= 0x80 && c <= 0x9F)
				continue;           /* another C1 control */
			buf_putc(out, 0xC2);    /* U+00A0..U+00BF: text */
			break;
		}
		/* T_TEXT */
		if (c == 0x1b)
			t->state = T_ESC;
		else if (c == 0xC2)
			t->state = T_C2;
		else if (c >= 0x20 ? c != 0x7f : (c == '\n' || c == '\t'))
			buf_putc(out, c);
	}
}
