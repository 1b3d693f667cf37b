/*
 * fuzz_config.c - the config file parser (src/util/config.c).
 *
 * Input: a config file's text.  Properties: config_parse() returns 0, or
 * -1 with ERR_CONFIG and a message with no control character (it names
 * keys of the file, and goes to a terminal); on success every alias and
 * provider is complete, every context budget is at least one token and
 * max_prompt_bytes is 0 or a size from 1 byte to 1 TiB; config_release()
 * frees it all (the fuzzer's leak check).  The text, as a string, through
 * config_parse_size() is -1 or a size in that range.
 */
#include "fuzz.h"

#include "aichat/config.h"

#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* The file alone decides. */
	unsetenv("AICHAT_CONTEXT_BUDGET");
	unsetenv("AICHAT_MAX_PROMPT_BYTES");
	unsetenv("AICHAT_MODEL");
	return 0;
}

static void no_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in '%s'", *p, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	struct err e;
	char *text = malloc(size + 1);
	size_t n;

	memcpy(text, data, size);
	text[size] = '\0';
	err_clear(&e);
	if (config_parse(&c, "fuzz.json", text, size, &e) < 0) {
		FUZZ_CHECK(e.code == ERR_CONFIG, "code %d", e.code);
		no_controls(e.msg);
	} else {
		for (size_t i = 0; i < c.naliases; i++)
			FUZZ_CHECK(c.aliases[i].name && c.aliases[i].target &&
				   *c.aliases[i].target, "alias %zu", i);
		for (size_t i = 0; i < c.nproviders; i++) {
			const struct provider_conf *p = &c.providers[i];

			FUZZ_CHECK(p->name && p->kind && (!strcmp(p->kind, "openai") ||
							  !strcmp(p->kind, "anthropic")),
				   "provider %zu", i);
			FUZZ_CHECK(config_provider(&c, p->name) != NULL, "lookup %s", p->name);
		}
		for (size_t i = 0; i < c.nbudgets; i++) {
			long b = config_context_budget(&c, c.budgets[i].name, NULL);

			FUZZ_CHECK(b >= 1, "budget %ld for '%s' ('%s')", b,
				   c.budgets[i].name, c.budgets[i].target);
		}
		FUZZ_CHECK(config_context_budget(&c, "no:such-model", NULL) >= 1,
			   "default budget");
		FUZZ_CHECK(c.max_prompt_bytes <= (size_t)1 << 40, "max_prompt_bytes %zu",
			   c.max_prompt_bytes);
		FUZZ_CHECK(config_default_model(&c) && *config_default_model(&c),
			   "default model");
	}
	config_release(&c);
	if (config_parse_size(text, &n) == 0)
		FUZZ_CHECK(n >= 1 && n <= (size_t)1 << 40, "size %zu from '%s'", n, text);
	free(text);
	return 0;
}
