/*
 * test_xlate.c - unit tests for the dialect translations
 * (src/provider/xlate.c) and the model family table (src/provider/family.c).
 *
 * The streamed translation is fed OpenAI chunks as an upstream sends them
 * (role, text, a tool call's fragments, finish, usage) and must give the
 * exact Anthropic event sequence, with the tool's argument fragments
 * byte-exact; the non-streamed one a whole message.  The request
 * translation turns an Anthropic request with every block kind into the
 * OpenAI request, and refuses a field with no OpenAI meaning by name.
 */
#include "aichat/json.h"
#include "aichat/provider.h"
#include "aichat/xlate.h"
#include "aichat/buf.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static struct buf events;

static void collect(void *ud, const char *name, const char *data, size_t n,
		    int answer)
{
	(void)ud;
	(void)answer;
	buf_printf(&events, "%s %.*s\n", name ? name : "(whole)", (int)n, data);
}

static void feed(struct xo2a *x, const char *json)
{
	cJSON *o = cJSON_Parse(json);

	ok(o != NULL, "fixture parses: %.40s", json);
	xo2a_feed(x, o, collect, NULL);
	cJSON_Delete(o);
}

static void test_o2a_stream(void)
{
	struct xo2a *x = xo2a_new("gpt-4o-mini");

	buf_init(&events, 0);
	feed(x, "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"\"}}]}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"caf\\u00e9\\\"}\"}}]}}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}");
	feed(x, "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"prompt_tokens_details\":{\"cached_tokens\":2}}}");
	xo2a_finish(x, collect, NULL);
	xo2a_finish(x, collect, NULL);  /* a second finish adds nothing */
	is_str(events.ptr,
	       "message_start {\"type\":\"message_start\",\"message\":{\"id\":\"msg_c1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o-mini\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n"
	       "content_block_start {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
	       "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Let me \"}}\n"
	       "content_block_delta {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"check.\"}}\n"
	       "content_block_stop {\"type\":\"content_block_stop\",\"index\":0}\n"
	       "content_block_start {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"lookup\",\"input\":{}}}\n"
	       "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\"}}\n"
	       "content_block_delta {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"caf\xc3\xa9\\\"}\"}}\n"
	       "content_block_stop {\"type\":\"content_block_stop\",\"index\":1}\n"
	       "message_delta {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":2,\"output_tokens\":7}}\n"
	       "message_stop {\"type\":\"message_stop\"}\n",
	       "a streamed tool call becomes text and tool_use blocks, arguments byte-exact");
	xo2a_free(x);
	buf_release(&events);
}

static void test_o2a_whole(void)
{
	struct xo2a *x = xo2a_new("gpt-4o");

	buf_init(&events, 0);
	feed(x, "{\"id\":\"c2\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}");
	is_str(events.ptr,
	       "(whole) {\"id\":\"msg_c2\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gpt-4o\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_9\",\"name\":\"f\",\"input\":{\"a\":1}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":3}}\n",
	       "a whole completion with a tool call becomes a message with a tool_use block");
	xo2a_finish(x, collect, NULL);
	ok(!strstr(events.ptr, "message_stop"), "finish after a whole message adds nothing");
	xo2a_free(x);
	buf_release(&events);
}

static void test_stop_reasons(void)
{
	static const char *const pairs[][2] = {
		{ "stop", "end_turn" }, { "length", "max_tokens" },
		{ "tool_calls", "tool_use" }, { "content_filter", "refusal" },
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		is_str(xlate_stop_reason(pairs[i][0]), pairs[i][1], "finish %s", pairs[i][0]);
		is_str(xlate_finish_reason(pairs[i][1]), pairs[i][0], "stop %s", pairs[i][1]);
	}
	is_str(xlate_finish_reason("stop_sequence"), "stop", "stop_sequence is stop");
}

static char *a2o(const char *areq, char *param, struct err *e)
{
	cJSON *in = cJSON_Parse(areq), *out;
	char *text;

	err_clear(e);
	out = xa2o_request(in, param, 64, e);
	cJSON_Delete(in);
	if (!out)
		return NULL;
	text = json_print(out);
	cJSON_Delete(out);
	return text;
}

static void test_a2o_request(void)
{
	char param[64], *got;
	struct err e;

	got = a2o("{\"model\":\"m\",\"max_tokens\":100,\"system\":[{\"type\":\"text\",\"text\":\"Be brief.\"}],"
		  "\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u1\"},"
		  "\"tools\":[{\"name\":\"lookup\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}}],"
		  "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
		  "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
		  "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]},"
		  "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"x\",\"signature\":\"s\"},{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"lookup\",\"input\":{\"q\":\"a\"}}]},"
		  "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"42\"},{\"type\":\"text\",\"text\":\"and?\"}]}]}",
		  param, &e);
	is_str(got,
	       "{\"model\":\"m\",\"max_tokens\":100,\"messages\":["
	       "{\"role\":\"system\",\"content\":\"Be brief.\"},"
	       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]},"
	       "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"q\\\":\\\"a\\\"}\"}}]},"
	       "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"42\"},"
	       "{\"role\":\"user\",\"content\":\"and?\"}],"
	       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}}],"
	       "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,"
	       "\"stop\":[\"END\"],\"user\":\"u1\"}",
	       "an Anthropic request with every block kind becomes the OpenAI request");
	free(got);

	got = a2o("{\"model\":\"m\",\"max_tokens\":1,\"top_k\":5,\"messages\":[]}", param, &e);
	ok(got == NULL, "top_k is refused");
	is_str(param, "top_k", "its param is named");
	is_int(e.code, ERR_INVALID_REQUEST, "as an invalid request");
	free(got);

	got = a2o("{\"model\":\"m\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"search_result\"}]}]}",
		  param, &e);
	ok(got == NULL, "an unknown block is refused");
	is_str(param, "messages.0.content.0", "with its path");
	free(got);
}

static void test_family(void)
{
	struct model_ref m = { .ops = &provider_openai, .provider = "openai",
			       .model = "o3-mini", .full = "openai:o3-mini" };
	cJSON *b = cJSON_Parse("{\"max_tokens\":50,\"temperature\":0.7}");
	struct err e;
	char *text;

	err_clear(&e);
	is_int(model_family_apply(&m, b, 1, &e), 0, "o3-mini with a default temperature");
	text = json_print(b);
	is_str(text, "{\"max_completion_tokens\":50}",
	       "max_tokens is renamed, the default temperature left out");
	free(text);
	cJSON_Delete(b);

	b = cJSON_Parse("{\"temperature\":0.2}");
	is_int(model_family_apply(&m, b, 0, &e), -1, "a temperature the user set");
	is_str(e.msg, "'temperature' is not supported by openai:o3-mini (OpenAI reasoning models): leave it out",
	       "is a clear error");
	cJSON_Delete(b);

	b = cJSON_Parse("{\"temperature\":1,\"max_tokens\":9}");
	is_int(model_family_apply(&m, b, 0, &e), 0, "temperature 1 is the default and allowed");
	cJSON_Delete(b);

	m.model = "gpt-4o-mini";
	b = cJSON_Parse("{\"max_tokens\":50,\"temperature\":0.2}");
	is_int(model_family_apply(&m, b, 0, &e), 0, "gpt-4o-mini takes both");
	text = json_print(b);
	is_str(text, "{\"max_tokens\":50,\"temperature\":0.2}", "unchanged");
	free(text);
	cJSON_Delete(b);

	is_str(model_family("openai", "gpt-5-mini")->name, "OpenAI reasoning models", "gpt-5-mini");
	is_str(model_family("openai", "gpt-5-chat-latest")->name, "OpenAI chat models",
	       "gpt-5-chat is not a reasoning model");
	is_str(model_family("openai", "o1")->name, "OpenAI reasoning models", "o1");
	ok(model_family("anthropic", "claude-sonnet-4-6")->flags & FAMILY_THINKING,
	   "Anthropic models take a thinking budget");
	ok(!(model_family("openai", "llama3.2")->flags & FAMILY_COMPLETION_TOKENS),
	   "other OpenAI-compatible models keep max_tokens");
}

int main(void)
{
	test_o2a_stream();
	test_o2a_whole();
	test_stop_reasons();
	test_a2o_request();
	test_family();
	return tap_done();
}
