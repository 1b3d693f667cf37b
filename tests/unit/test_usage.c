/*
 * test_usage.c - unit tests for money amounts (src/util/money.c), prices
 * and costs (src/core/prices.c) and the ledger's days and --since
 * (src/store/usage.c).  Table-driven; each boundary from both sides.
 */
#include "aichat/money.h"
#include "aichat/prices.h"
#include "aichat/usage.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *s;
	int rc;
	int64_t micros;
} amounts[] = {
	{ "0", 0, 0 },
	{ "5", 0, 5000000 },
	{ "5.00", 0, 5000000 },
	{ "0.000001", 0, 1 },
	{ "0.0000001", -1, 0 },          /* a seventh decimal */
	{ "1.5", 0, 1500000 },
	{ "1000000000", 0, MONEY_MAX },
	{ "1000000000.000001", -1, 0 },  /* past MONEY_MAX */
	{ "10000000000", -1, 0 },
	{ "99999999999999999999", -1, 0 },
	{ "", -1, 0 },
	{ ".5", -1, 0 },
	{ "5.", -1, 0 },
	{ "-1", -1, 0 },
	{ "+1", -1, 0 },
	{ "1e3", -1, 0 },
	{ " 1", -1, 0 },
	{ "1 ", -1, 0 },
};

static const struct {
	const char *s;
	int rc;
	int64_t micros;
} per_day[] = {
	{ "5.00/day", 0, 5000000 },
	{ "0/day", 0, 0 },
	{ "5.00", -1, 0 },
	{ "5.00/days", -1, 0 },
	{ "5.00/week", -1, 0 },
	{ "/day", -1, 0 },
	{ "5.00/day/day", -1, 0 },
};

static const struct {
	const char *s;
	int rc;
	const char *day;
} sinces[] = {
	/* now is 2026-03-01T12:00:00Z below */
	{ "2026-03-01", 0, "2026-03-01" },
	{ "2024-02-29", 0, "2024-02-29" },
	{ "2026-02-29", -1, NULL },        /* not a leap year */
	{ "2026-02-30", -1, NULL },
	{ "2026-13-01", -1, NULL },
	{ "2026-00-10", -1, NULL },
	{ "2026-1-01", -1, NULL },
	{ "2026/01/01", -1, NULL },
	{ "2026-01-01x", -1, NULL },
	{ "1d", 0, "2026-03-01" },
	{ "2d", 0, "2026-02-28" },         /* across the end of February */
	{ "7d", 0, "2026-02-23" },
	{ "0d", -1, NULL },
	{ "36500d", 0, "1926-03-27" },
	{ "36501d", -1, NULL },
	{ "d", -1, NULL },
	{ "7", -1, NULL },
	{ "7D", -1, NULL },
	{ "-7d", -1, NULL },
	{ "", -1, NULL },
};

int main(void)
{
	const time_t now = 1772366400;   /* 2026-03-01T12:00:00Z */
	struct price p = { 2500000, 10000000, 1250000, 3125000, "test" }, q;
	char buf[40];
	int64_t m;

	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		m = -7;
		is_int(money_parse(amounts[i].s, &m), amounts[i].rc, "money_parse '%s'",
		       amounts[i].s);
		if (amounts[i].rc == 0)
			is_int(m, amounts[i].micros, "money_parse '%s' value", amounts[i].s);
	}
	for (size_t i = 0; i < sizeof(per_day) / sizeof(per_day[0]); i++) {
		m = -7;
		is_int(money_parse_per_day(per_day[i].s, &m), per_day[i].rc,
		       "money_parse_per_day '%s'", per_day[i].s);
		if (per_day[i].rc == 0)
			is_int(m, per_day[i].micros, "money_parse_per_day '%s' value",
			       per_day[i].s);
	}
	money_format(1, buf, sizeof(buf));
	is_str(buf, "0.000001", "money_format of one micro-dollar");
	money_format(12345678901, buf, sizeof(buf));
	is_str(buf, "12345.678901", "money_format keeps every digit");
	money_format(-1500000, buf, sizeof(buf));
	is_str(buf, "-1.500000", "money_format of a negative amount");

	/* $2.50 / $10 / $1.25 / $3.125 per million. */
	is_int(price_cost(&p, 1000000, 0, 0, 0), 2500000, "a million input tokens");
	is_int(price_cost(&p, 0, 0, 0, 1000000), 10000000, "a million output tokens");
	is_int(price_cost(&p, 1000, 200, 0, 500), 2000 + 250 + 5000, "cached tokens at the cached price");
	is_int(price_cost(&p, 1000, 200, 400, 0), 1000 + 250 + 1250,
	       "written tokens at the cache-write price");
	is_int(price_cost(&p, 100, 500, 0, 0), 125, "cached is at most prompt");
	is_int(price_cost(&p, 100, 60, 90, 0), 75 + 125,
	       "written is at most what the cache did not serve");
	is_int(price_cost(&p, -5, -1, -3, -9), 0, "unknown counts cost nothing");
	is_int(price_cost(&p, 1, 0, 0, 0), 3, "2.5 micro-dollars round half up");
	is_int(price_cost(&p, 1, 1, 0, 0), 1, "1.25 rounds down");
	p.input = 100000LL * 1000000;    /* the most a price may be */
	is_int(price_cost(&p, 100000000, 0, 0, 0), 10000000000000LL,
	       "the largest price times the largest count does not overflow");

	ok(price_lookup(NULL, "openai:gpt-4o", &q) == 0 && q.input == 2500000 &&
	   !strcmp(q.source, "built-in"), "built-in price of openai:gpt-4o");
	ok(price_lookup(NULL, "openai:gpt-4o-2024-08-06", &q) == 0 && q.input == 2500000,
	   "a dated snapshot has its model's price");
	ok(price_lookup(NULL, "openai:gpt-4o-20240806", &q) == 0, "a compact date too");
	ok(price_lookup(NULL, "anthropic:claude-haiku-4-5", &q) == 0 &&
	   q.cache_write == q.input * 5 / 4 && q.cached_input == q.input / 10,
	   "Anthropic's cache writes cost 1.25 times input, reads a tenth");
	ok(price_lookup(NULL, "openai:gpt-4o-mini", &q) == 0 && q.cache_write == q.input,
	   "OpenAI's cache writes cost what input costs");
	ok(price_lookup(NULL, "openai:gpt-4o-audio", &q) < 0, "another model is not priced");
	ok(price_lookup(NULL, "openai:gpt-4o-2024-08", &q) < 0, "half a date is not a date");
	ok(price_lookup(NULL, "ollama:llama3.2", &q) < 0, "a local model has no price");
	ok(price_lookup(NULL, "gpt-4o", &q) < 0, "a name without its provider has no price");
	{
		struct config_price cp = { "openai:gpt-4o", 1, 2, 3, 4 };
		struct config c;
		memset(&c, 0, sizeof(c));
		c.prices = &cp;
		c.nprices = 1;
		ok(price_lookup(&c, "openai:gpt-4o", &q) == 0 && q.input == 1 &&
		   q.output == 2 && q.cached_input == 3 && q.cache_write == 4 &&
		   !strcmp(q.source, "config"),
		   "the config's price wins");
		ok(price_lookup(&c, "openai:gpt-4o-mini", &q) == 0 && q.input == 150000,
		   "others keep the built-in price");
	}

	for (size_t i = 0; i < sizeof(sinces) / sizeof(sinces[0]); i++) {
		char day[USAGE_DAY_MAX] = "";
		is_int(usage_parse_since(sinces[i].s, now, day), sinces[i].rc,
		       "--since '%s'", sinces[i].s);
		if (sinces[i].rc == 0)
			is_str(day, sinces[i].day, "--since '%s' day", sinces[i].s);
	}
	usage_day(now, buf);
	is_str(buf, "2026-03-01", "usage_day");
	is_int(usage_seconds_to_midnight(now), 43200, "noon: half a day to midnight");
	is_int(usage_seconds_to_midnight(now - 43200), 86400, "at midnight: a whole day");
	is_int(usage_seconds_to_midnight(now + 43199), 1, "a second before midnight");
	return tap_done();
}
