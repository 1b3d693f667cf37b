/*
 * prices.c - model prices and exchange costs; see prices.h.
 *
 * The built-in table is data: the providers' list prices in US dollars per
 * million tokens on PRICES_AS_OF.  Prices change; the config file's
 * "prices" wins over every entry here.
 */
#include "aichat/prices.h"

#include <string.h>

#define USD(x) ((int64_t)((x) * 1000000 + 0.5))

static const struct {
	const char *model;
	int64_t input, output, cached_input, cache_write;
} builtin[] = {
	/* Anthropic bills writing to its prompt cache (5-minute lifetime) at
	 * 1.25 times input, reading from it at a tenth. */
	{ "anthropic:claude-haiku-4-5", USD(1.00), USD(5.00), USD(0.10), USD(1.25) },
	{ "anthropic:claude-sonnet-4-6", USD(3.00), USD(15.00), USD(0.30), USD(3.75) },
	{ "groq:llama-3.1-8b-instant", USD(0.05), USD(0.08), USD(0.05), USD(0.05) },
	{ "openai:gpt-4o", USD(2.50), USD(10.00), USD(1.25), USD(2.50) },
	{ "openai:gpt-4o-mini", USD(0.15), USD(0.60), USD(0.075), USD(0.15) },
	{ "openai:o3-mini", USD(1.10), USD(4.40), USD(0.55), USD(1.10) },
	/* Embeddings: input only. */
	{ "openai:text-embedding-3-large", USD(0.13), 0, USD(0.13), USD(0.13) },
	{ "openai:text-embedding-3-small", USD(0.02), 0, USD(0.02), USD(0.02) },
};

/* Is model name itself, or name followed by a date ("-2024-08-06",
 * "-20240806")? */
static int same_or_snapshot(const char *model, const char *name)
{
	size_t n = strlen(name), digits = 0;
	const char *p;

	if (strncmp(model, name, n))
		return 0;
	if (!model[n])
		return 1;
	if (model[n] != '-')
		return 0;
	for (p = model + n + 1; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p != '-')
			return 0;
	}
	return digits == 8;
}

int price_lookup(const struct config *cfg, const char *model, struct price *p)
{
	for (size_t i = 0; cfg && i < cfg->nprices; i++)
		if (!strcmp(cfg->prices[i].model, model)) {
			p->input = cfg->prices[i].input;
			p->output = cfg->prices[i].output;
			p->cached_input = cfg->prices[i].cached_input;
			p->cache_write = cfg->prices[i].cache_write;
			p->source = "config";
			return 0;
		}
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (same_or_snapshot(model, builtin[i].model)) {
			p->input = builtin[i].input;
			p->output = builtin[i].output;
			p->cached_input = builtin[i].cached_input;
			p->cache_write = builtin[i].cache_write;
			p->source = "built-in";
			return 0;
		}
	return -1;
}

/* Token counts are bounded so that count times price fits in 64 bits:
 * 10^8 tokens at $100,000 per million is 10^19 micro-dollars-per-million,
 * so the sum is done in unsigned 128-bit arithmetic. */
int64_t price_cost(const struct price *p, long prompt, long cached,
		   long written, long completion)
{
	const long max = 100000000;
	unsigned __int128 total;

	prompt = prompt < 0 ? 0 : prompt > max ? max : prompt;
	completion = completion < 0 ? 0 : completion > max ? max : completion;
	cached = cached < 0 ? 0 : cached > prompt ? prompt : cached;
	written = written < 0 ? 0 : written > prompt - cached ? prompt - cached : written;
	total = (unsigned __int128)(prompt - cached - written) * (uint64_t)p->input +
		(unsigned __int128)cached * (uint64_t)p->cached_input +
		(unsigned __int128)written * (uint64_t)p->cache_write +
		(unsigned __int128)completion * (uint64_t)p->output;
	return (int64_t)((total + 500000) / 1000000);
}

const char *price_builtin(size_t i, struct price *p)
{
	if (i >= sizeof(builtin) / sizeof(builtin[0]))
		return NULL;
	p->input = builtin[i].input;
	p->output = builtin[i].output;
	p->cached_input = builtin[i].cached_input;
	p->cache_write = builtin[i].cache_write;
	p->source = "built-in";
	return builtin[i].model;
}
