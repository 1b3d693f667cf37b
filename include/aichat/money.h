/*
 * money.h - amounts of money as integer micro-units (millionths of a
 * dollar), never floats: sums of many small costs stay exact, and every
 * amount prints with fixed decimals.
 */
#ifndef AICHAT_MONEY_H
#define AICHAT_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* The largest amount money_parse() takes: a billion dollars. */
#define MONEY_MAX ((int64_t)1000000000 * 1000000)

/*
 * A non-negative decimal amount, "5", "5.00" or "0.000125" (at most six
 * decimals, no sign, no exponent, at most MONEY_MAX) into *micros.
 * -1 when s is not one.
 */
int money_parse(const char *s, int64_t *micros);

/*
 * A daily budget, "AMOUNT/day" ("5.00/day"), into *micros.  -1 when s is
 * not one.
 */
int money_parse_per_day(const char *s, int64_t *micros);

/* micros as a decimal with six decimals ("1.250000") into dst. */
void money_format(int64_t micros, char *dst, size_t cap);

#endif
