/*
 * money.c - amounts of money in micro-units; see money.h.
 */
#include "aichat/money.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int money_parse(const char *s, int64_t *micros)
{
	int64_t whole = 0, frac = 0;
	int digits = 0, decimals = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		if (whole > MONEY_MAX / 1000000)
			return -1;
		whole = whole * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, decimals++) {
			if (decimals == 6)
				return -1;
			frac = frac * 10 + (*s - '0');
		}
		if (!decimals)
			return -1;
	}
	if (*s || !digits)
		return -1;
	for (int i = decimals; i < 6; i++)
		frac *= 10;
	if (whole > MONEY_MAX / 1000000)
		return -1;
	*micros = whole * 1000000 + frac;
	return *micros <= MONEY_MAX ? 0 : -1;
}

int money_parse_per_day(const char *s, int64_t *micros)
{
	const char *slash = strchr(s, '/');
	char amount[32];

	if (!slash || strcmp(slash, "/day") || (size_t)(slash - s) >= sizeof(amount))
		return -1;
	memcpy(amount, s, (size_t)(slash - s));
	amount[slash - s] = '\0';
	return money_parse(amount, micros);
}

void money_format(int64_t micros, char *dst, size_t cap)
{
	const char *sign = micros < 0 ? "-" : "";
	uint64_t m = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;

	snprintf(dst, cap, "%s%" PRIu64 ".%06" PRIu64, sign, m / 1000000, m % 1000000);
}
