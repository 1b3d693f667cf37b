/*
 * prices.h - what a model costs, and what an exchange cost.
 *
 * Prices are in micro-dollars per million tokens: input (prompt tokens not
 * served from the provider's cache), cached input, cache write (prompt
 * tokens written to the provider's cache: Anthropic bills them at 1.25
 * times input), and output.  They come
 * from the config file's "prices" first, then from a built-in table of the
 * models the README names, dated PRICES_AS_OF.  A model in neither has no
 * price: its exchanges record tokens and no cost.
 */
#ifndef AICHAT_PRICES_H
#define AICHAT_PRICES_H

#include <stdint.h>

#include "aichat/config.h"

/* When the built-in table was last checked against the providers' pages. */
#define PRICES_AS_OF "2025-08-01"

struct price {
	int64_t input, output, cached_input;  /* micro-dollars per 1M tokens */
	int64_t cache_write;                  /* prompt tokens written to the
					       * provider's cache */
	const char *source;                   /* "config" or "built-in" */
};

/*
 * The price of model ("provider:model") into *p: the config's entry for
 * that exact name, else the built-in one for it or for a dated snapshot of
 * it ("openai:gpt-4o-2024-08-06" is priced as "openai:gpt-4o").  0 when
 * found, -1 when the model has no price.  cfg may be NULL.
 */
int price_lookup(const struct config *cfg, const char *model, struct price *p);

/*
 * The cost in micro-dollars of prompt tokens (cached of them read from
 * the provider's cache, written of them written to it) and completion
 * tokens at price p, rounded to the nearest micro-dollar.  Negative counts
 * count as 0; cached is at most prompt, written at most what is left.
 */
int64_t price_cost(const struct price *p, long prompt, long cached,
		   long written, long completion);

/* The built-in table, for listing: entry i (NULL model past the end). */
const char *price_builtin(size_t i, struct price *p);

#endif
