/*
 * jscan.c - a strict one-pass JSON scanner; see jscan.h.
 *
 * Every function follows one contract: 0 (or 1 for "one more" in
 * jscan_more) with the cursor moved past what it read, or -1 when the text
 * is not JSON it is sure of, with the cursor anywhere.  Nothing reads
 * past s->end.
 */
#include "aichat/jscan.h"
#include "aichat/json.h"

#include <stdlib.h>
#include <string.h>

void jscan_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
				 *s->p == '\r'))
		s->p++;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

static void put_utf8(struct buf *b, unsigned u)
{
	char t[4];
	size_t n;

	if (u < 0x80) {
		t[0] = (char)u;
		n = 1;
	} else if (u < 0x800) {
		t[0] = (char)(0xC0 | u >> 6);
		t[1] = (char)(0x80 | (u & 0x3F));
		n = 2;
	} else if (u < 0x10000) {
		t[0] = (char)(0xE0 | u >> 12);
		t[1] = (char)(0x80 | (u >> 6 & 0x3F));
		t[2] = (char)(0x80 | (u & 0x3F));
		n = 3;
	} else {
		t[0] = (char)(0xF0 | u >> 18);
		t[1] = (char)(0x80 | (u >> 12 & 0x3F));
		t[2] = (char)(0x80 | (u >> 6 & 0x3F));
		t[3] = (char)(0x80 | (u & 0x3F));
		n = 4;
	}
	buf_append(b, t, n);
}

int jscan_string(struct jscan *s, struct buf *out)
{
	const char *p = s->p + 1, *end = s->end;

	while (p < end && *p != '"') {
		unsigned u, lo;
		char ch;

		if ((unsigned char)*p < 0x20)
			return -1;
		if (*p != '\\') {
			const char *q = p;
			while (q < end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
				q++;
			if (out)
				buf_append(out, p, (size_t)(q - p));
			p = q;
			continue;
		}
		if (end - p < 2)
			return -1;
		switch (p[1]) {
		case '"': case '\\': case '/': ch = p[1]; break;
		case 'b': ch = '\b'; break;
		case 'f': ch = '\f'; break;
		case 'n': ch = '\n'; break;
		case 'r': ch = '\r'; break;
		case 't': ch = '\t'; break;
		case 'u':
			if (end - p < 6 || hex4(p + 2, &u) < 0)
				return -1;
			p += 6;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return -1;
			if (u >= 0xD800 && u <= 0xDBFF) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    hex4(p + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				p += 6;
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			}
			if (u == 0)
				return -1;
			if (out)
				put_utf8(out, u);
			continue;
		default:
			return -1;
		}
		if (out)
			buf_putc(out, ch);
		p += 2;
	}
	if (p >= end)
		return -1;
	s->p = p + 1;
	return 0;
}

int jscan_number(struct jscan *s, double *v)
{
	const char *p = s->p, *end = s->end;
	char tmp[64];

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return -1;
	if (p < end && *p == '.') {
		if (++p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return -1;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if ((size_t)(p - s->p) >= sizeof(tmp))
		return -1;
	if (v && p - s->p <= 15 && !memchr(s->p, '.', (size_t)(p - s->p)) &&
	    !memchr(s->p, 'e', (size_t)(p - s->p)) && !memchr(s->p, 'E', (size_t)(p - s->p))) {
		/* An integer of at most 15 digits is exact in a double: the
		 * value strtod() gives, without its cost (an index, a count). */
		const char *q = s->p + (*s->p == '-');
		double d = 0;

		while (q < p)
			d = d * 10 + (*q++ - '0');
		*v = *s->p == '-' ? -d : d;
	} else if (v) {
		memcpy(tmp, s->p, (size_t)(p - s->p));
		tmp[p - s->p] = '\0';
		*v = strtod(tmp, NULL);
	}
	s->p = p;
	return 0;
}

int jscan_word(struct jscan *s, const char *w, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n))
		return -1;
	s->p += n;
	return 0;
}

int jscan_more(struct jscan *s, char close, int *first, const char **name,
	       size_t *nlen)
{
	jscan_ws(s);
	if (s->p >= s->end)
		return -1;
	if (*s->p == close && *first) {
		s->p++;
		return 0;
	}
	if (!*first) {
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p != ',')
			return -1;
		s->p++;
		jscan_ws(s);
	}
	*first = 0;
	if (s->p >= s->end)
		return -1;
	if (!name)
		return 1;
	if (s->p >= s->end || *s->p != '"')
		return -1;
	*name = s->p + 1;
	if (jscan_string(s, NULL) < 0)
		return -1;
	*nlen = (size_t)(s->p - 1 - *name);
	if (memchr(*name, '\\', *nlen))
		return -1;
	jscan_ws(s);
	if (s->p >= s->end || *s->p != ':')
		return -1;
	s->p++;
	jscan_ws(s);
	return s->p < s->end ? 1 : -1;
}

int jscan_value(struct jscan *s, int depth)
{
	const char *name;
	size_t nlen;
	int first = 1, rc;

	jscan_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return jscan_string(s, NULL);
	case '{':
	case '[':
		if (depth >= JSCAN_DEPTH)
			return -1;
		if (*s->p++ == '{') {
			while ((rc = jscan_more(s, '}', &first, &name, &nlen)) > 0)
				if (jscan_value(s, depth + 1) < 0)
					return -1;
		} else {
			while ((rc = jscan_more(s, ']', &first, NULL, NULL)) > 0)
				if (jscan_value(s, depth + 1) < 0)
					return -1;
		}
		return rc;
	case 't':
		return jscan_word(s, "true", 4);
	case 'f':
		return jscan_word(s, "false", 5);
	case 'n':
		return jscan_word(s, "null", 4);
	default:
		return jscan_number(s, NULL);
	}
}

static int at_number(const struct jscan *s)
{
	return *s->p == '-' || (*s->p >= '0' && *s->p <= '9');
}

int jscan_count(struct jscan *s, double *out, int depth)
{
	double d;

	if (!at_number(s))
		return jscan_value(s, depth);
	if (jscan_number(s, &d) < 0)
		return -1;
	/* json_count()'s reading; NaN cannot come from strict JSON. */
	*out = d >= 0 ? (d <= JSON_COUNT_MAX ? (double)(long long)d : JSON_COUNT_MAX) : 0;
	return 0;
}

int jscan_text(struct jscan *s, struct buf *out, int *have, int depth)
{
	if (*s->p != '"')
		return jscan_value(s, depth);
	*have = 1;
	return jscan_string(s, out);
}
