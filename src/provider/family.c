/*
 * family.c - per model family, the request parameters a model takes; see
 * provider.h.  The table is data: a new family is one row, above the
 * catch-all row of its provider kind.
 */
#include "aichat/provider.h"
#include "aichat/json.h"

#include <string.h>

static const struct model_family families[] = {
	/* gpt-5-chat is the non-reasoning model of the gpt-5 line. */
	{ "openai", "gpt-5-chat", "OpenAI chat models", 0 },
	{ "openai", "gpt-5", "OpenAI reasoning models",
	  FAMILY_COMPLETION_TOKENS | FAMILY_FIXED_SAMPLING },
	{ "openai", "o1", "OpenAI reasoning models",
	  FAMILY_COMPLETION_TOKENS | FAMILY_FIXED_SAMPLING },
	{ "openai", "o3", "OpenAI reasoning models",
	  FAMILY_COMPLETION_TOKENS | FAMILY_FIXED_SAMPLING },
	{ "openai", "o4", "OpenAI reasoning models",
	  FAMILY_COMPLETION_TOKENS | FAMILY_FIXED_SAMPLING },
	{ "openai", "", "OpenAI-compatible chat models", 0 },
	{ "anthropic", "", "Anthropic models", FAMILY_THINKING },
	{ "mock", "", "the offline mock model", 0 },
};

/* Sampling parameters a FAMILY_FIXED_SAMPLING model takes only at their
 * default value, with that value. */
static const struct {
	const char *name;
	double def;
} fixed[] = {
	{ "temperature", 1 }, { "top_p", 1 }, { "presence_penalty", 0 },
	{ "frequency_penalty", 0 }, { "logprobs", 0 }, { "top_logprobs", 0 },
};

const struct model_family *model_family(const char *kind, const char *model)
{
	size_t n = sizeof(families) / sizeof(families[0]);

	for (size_t i = 0; i < n; i++) {
		const struct model_family *f = &families[i];
		if (!strcmp(f->kind, kind) &&
		    !strncmp(model, f->prefix, strlen(f->prefix)))
			return f;
	}
	return &families[n - 1];
}

static int is_default(const cJSON *v, double def)
{
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v) == (def != 0);
	return cJSON_IsNumber(v) && v->valuedouble == def;
}

int model_family_apply(const struct model_ref *m, cJSON *body,
		       int temperature_default, struct err *e)
{
	const struct model_family *f = model_family(m->ops->kind, m->model);
	cJSON *v;

	if (f->flags & FAMILY_COMPLETION_TOKENS) {
		cJSON *mt = cJSON_DetachItemFromObjectCaseSensitive(body, "max_tokens");
		/* Both given: they mean the same, the newer name wins. */
		if (mt && !cJSON_GetObjectItemCaseSensitive(body, "max_completion_tokens"))
			cJSON_AddItemToObject(body, "max_completion_tokens", mt);
		else
			cJSON_Delete(mt);
	}
	if (!(f->flags & FAMILY_FIXED_SAMPLING))
		return 0;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		v = cJSON_GetObjectItemCaseSensitive(body, fixed[i].name);
		if (!v || cJSON_IsNull(v) || is_default(v, fixed[i].def))
			continue;
		if (!strcmp(fixed[i].name, "temperature") && temperature_default) {
			cJSON_DeleteItemFromObjectCaseSensitive(body, "temperature");
			continue;
		}
		return err_set(e, ERR_INVALID_REQUEST,
			       "'%s' is not supported by %s (%s): leave it out",
			       fixed[i].name, m->full, f->name);
	}
	return 0;
}
