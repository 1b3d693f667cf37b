#!/usr/bin/env bats
# aichat chat: the binary as a user runs it, against the fake upstream.
# Each test checks what the user sees (stdout, stderr, exit status) and what
# the upstream received -- often nothing at all.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	fake_stop
}

openai_fake() {
	fake_start "$@"
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
}

anthropic_fake() {
	fake_start "$@"
	export ANTHROPIC_API_KEY=$KEY ANTHROPIC_BASE_URL="$FAKE_URL"
}

# ---- offline ----

@test "mock:echo answers offline with the prompt" {
	run --separate-stderr aichat chat -m mock:echo hello
	[ "$status" -eq 0 ]
	[ "$output" = "hello" ]
	[ "$stderr" = "" ]
}

@test "mock:echo --json reports content, model and token counts" {
	run --separate-stderr aichat chat -m mock:echo --json "one two  three"
	[ "$status" -eq 0 ]
	[ "$output" = '{"content":"one two  three","model":"mock:echo","prompt_tokens":3,"completion_tokens":3,"total_tokens":6,"finish_reason":"stop"}' ]
}

@test "mock:echo stops at --max-tokens with finish_reason length" {
	run aichat chat -m mock:echo --json --max-tokens 2 "a b c d"
	[ "$status" -eq 0 ]
	[ "$output" = '{"content":"a b","model":"mock:echo","prompt_tokens":4,"completion_tokens":2,"total_tokens":6,"finish_reason":"length"}' ]
}

@test "output ends with exactly one newline and carries no escape codes" {
	aichat chat -m mock:echo "plain words" </dev/null >"$BATS_TEST_TMPDIR/out"
	printf 'plain words\n' | cmp - "$BATS_TEST_TMPDIR/out"
}

@test "stdout that cannot be written is an error, not silence" {
	run aichat chat -m mock:echo hi
	[ "$status" -eq 0 ]
	run bash -c '"$AICHAT_BIN" chat -m mock:echo hi >/dev/full'
	[ "$status" -eq 1 ]
	[[ "$output" == *"aichat: cannot write to stdout: No space left on device"* ]]
}

@test "stdin is appended after a blank line; alone it is the whole prompt" {
	openai_fake
	run --separate-stderr aichat chat summarize <<<"file content"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = "$(printf 'summarize\n\nfile content')" ]
	run --separate-stderr aichat chat <<<"only stdin"
	[ "$status" -eq 0 ]
	[ "$(fake_field 2 body.messages.0.content)" = "only stdin" ]
}

@test "no prompt at all is a usage error, not a hang; -i needs a terminal" {
	run --separate-stderr timeout 5 "$AICHAT_BIN" chat -m mock:echo </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"no prompt given"* ]]
	run --separate-stderr timeout 5 "$AICHAT_BIN" chat -i -m mock:echo </dev/null
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: --interactive needs a terminal on stdin" ]
}

# ---- OpenAI-compatible streams ----

@test "openai: streams the exact text, sends key, model and include_usage" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s "be brief" "hello big world"
	[ "$status" -eq 0 ]
	[ "$output" = "hello big world" ]
	[ "$(fake_field 1 path)" = /v1/chat/completions ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer $KEY" ]
	[ "$(fake_field 1 body.model)" = gpt-4o-mini ]
	[ "$(fake_field 1 body.stream)" = true ]
	[ "$(fake_field 1 body.stream_options.include_usage)" = true ]
	[ "$(fake_field 1 body.temperature)" = 0.7 ]
	[ "$(fake_field 1 body.messages.0.role)" = system ]
	[ "$(fake_field 1 body.messages.0.content)" = "be brief" ]
	[ "$(fake_field 1 body.messages.1.content)" = "hello big world" ]
}

@test "openai: 1- to 7-byte network pieces and multibyte text arrive intact" {
	openai_fake '{"split":7,"deltas":["h\u00e9llo"," w\u00f6rld"," \u65e5\u672c\u8a9e"," \ud83d\ude00!"]}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 0 ]
	[ "$output" = "héllo wörld 日本語 😀!" ]
}

@test "openai: a character split across single-byte reads is never garbled" {
	openai_fake '{"split":1,"deltas":["\u00e9","\u20ac","\ud83d\ude00"]}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 0 ]
	[ "$output" = "é€😀" ]
}

@test "openai: CRLF, CR, BOM, comments, multi-line data (over CRLF too), usage chunk with null choices" {
	openai_fake "$(cat "$BATS_TEST_DIRNAME/fixtures/chat/openai_mixed.json")"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --json hi
	[ "$status" -eq 0 ]
	[ "$output" = '{"content":"Hi! there, 😀 line\nbreak","model":"openai:gpt-4o-mini","prompt_tokens":9,"completion_tokens":5,"total_tokens":14,"finish_reason":"stop"}' ]
}

@test "openai: --json reports the provider's exact token counts" {
	openai_fake '{"usage":{"prompt_tokens":1234,"completion_tokens":567}}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --json "a b"
	[ "$status" -eq 0 ]
	[ "$output" = '{"content":"a b","model":"openai:gpt-4o-mini","prompt_tokens":1234,"completion_tokens":567,"total_tokens":1801,"finish_reason":"stop"}' ]
}

@test "openai: --no-stream sends stream false and prints the answer" {
	openai_fake '{"usage":{"prompt_tokens":3,"completion_tokens":2}}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --no-stream --json "x y"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.stream)" = false ]
	[ "$output" = '{"content":"x y","model":"openai:gpt-4o-mini","prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"finish_reason":"stop"}' ]
}

@test "openai: an error object inside a 200 stream keeps the partial text, exit 4" {
	openai_fake '{"events":["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"partial \"}}]}\n\n","data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n"]}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$output" = "partial " ]
	[ "$stderr" = "aichat: chat: openai stream error: The server had an error" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "openai: a malformed JSON chunk is a clear error with the partial text kept" {
	openai_fake '{"events":["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok so far\"}}]}\n\n","data: {\"choices\":[{\"delta\":\n\n"]}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$output" = "ok so far" ]
	[[ "$stderr" == "aichat: chat: malformed JSON in stream from openai: "* ]]
}

@test "openai: a stream cut mid-way keeps the partial text and exits 4" {
	openai_fake '{"deltas":["one"," two"," three"," four"],"cut_after_events":3}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$output" = "one two" ]
	[[ "$stderr" == "aichat: chat: openai: connection cut mid-response"* ]] ||
		[[ "$stderr" == *"stream ended before the answer was complete"* ]]
	[ "$(fake_count)" -eq 1 ]
}

# ---- Anthropic ----

@test "anthropic: streams text_delta only, sends x-api-key, version, system, max_tokens" {
	anthropic_fake '{"split":7,"deltas":["Bonjour"," \u00e0"," tous"]}'
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 -s "sys prompt" hi
	[ "$status" -eq 0 ]
	[ "$output" = "Bonjour à tous" ]
	[ "$(fake_field 1 path)" = /v1/messages ]
	[ "$(fake_field 1 headers.x-api-key)" = "$KEY" ]
	[ "$(fake_field 1 headers.anthropic-version)" = 2023-06-01 ]
	[ "$(fake_field 1 body.system)" = "sys prompt" ]
	[ "$(fake_field 1 body.max_tokens)" = 4096 ]
	[ "$(fake_field 1 body.messages.0.role)" = user ]
	run ! fake_field 1 headers.authorization
}

@test "anthropic: stop_reason max_tokens is finish_reason length, streamed or not" {
	anthropic_fake '{"deltas":["cut"," short"],"stop_reason":"max_tokens"}'
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 --json hi
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get content)" = "cut short" ]
	[ "$(echo "$output" | json_get finish_reason)" = length ]
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 --no-stream --json hi
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get content)" = "cut short" ]
	[ "$(echo "$output" | json_get finish_reason)" = length ]
	run ! fake_field 2 body.stream
	fake_script '{"stop_reason":"end_turn"}'
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 --json hi
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get finish_reason)" = stop ]
}

@test "anthropic: bare claude-* names resolve; usage replaced not added" {
	anthropic_fake "$(cat "$BATS_TEST_DIRNAME/fixtures/chat/anthropic_full.json")"
	run --separate-stderr aichat chat -m claude-haiku-4-5 --json hi
	[ "$status" -eq 0 ]
	[ "$output" = '{"content":"Hello, world","model":"anthropic:claude-haiku-4-5","prompt_tokens":25,"completion_tokens":15,"total_tokens":40,"finish_reason":"stop"}' ]
}

@test "anthropic: event: error mid-stream keeps the partial text, exit 4" {
	anthropic_fake "$(cat "$BATS_TEST_DIRNAME/fixtures/chat/anthropic_overloaded.json")"
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 hi
	[ "$status" -eq 4 ]
	[ "$output" = "Partial answer" ]
	[ "$stderr" = "aichat: chat: anthropic stream error: overloaded_error: Overloaded" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "anthropic: temperature above 1 is refused before the network" {
	anthropic_fake
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 -t 1.5 hi
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'temperature'"*"<= 1"* ]]
	[ "$(fake_count)" -eq 0 ]
}

# ---- invalid input: exit 2, the field named, nothing sent ----

@test "temperature 5: exit 2, names the flag, value and bound; nothing sent" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -t 5 hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value '5' for '--temperature': must be <= 2" ]
	[ "$output" = "" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "max-tokens 0 and 20000 are refused; nothing sent" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --max-tokens 0 hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value '0' for '--max-tokens': must be >= 1" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --max-tokens 20000 hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value '20000' for '--max-tokens': must be <= 16384" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --max-tokens 1.5 hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value '1.5' for '--max-tokens': must be an integer" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -t warm hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value 'warm' for '--temperature': must be a number" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "every failing flag is reported, not just the first" {
	run --separate-stderr aichat chat -m mock:echo -t -1 --max-tokens 99999 --retries 50 hi
	[ "$status" -eq 2 ]
	[ "${#stderr_lines[@]}" -eq 3 ]
	[[ "${stderr_lines[0]}" == *"'--temperature': must be >= 0" ]]
	[[ "${stderr_lines[1]}" == *"'--max-tokens': must be <= 16384" ]]
	[[ "${stderr_lines[2]}" == *"'--retries': must be <= 10" ]]
}

@test "empty prompt: exit 2, nothing sent" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini ""
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: invalid value '' for 'prompt': must be at least 1 character" ]
	[ "$(fake_count)" -eq 0 ]
}

# ---- the prompt: bounded by bytes and the context budget, not characters ----

# a_bytes N: N bytes of 'a' on stdout.
a_bytes() {
	head -c "$1" /dev/zero | tr '\0' a
}

@test "past 32000 characters is fine: the HTTP cap is serve's, the CLI counts bytes" {
	openai_fake
	long=$(a_bytes 40000)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s "$long" "$long"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = "$long" ]
	[ "$(fake_field 1 body.messages.1.content)" = "$long" ]
	# 1000 two-byte characters are 2000 bytes: past a 1999-byte cap
	export AICHAT_MAX_PROMPT_BYTES=1999
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(python3 -c 'print("é" * 1000, end="")')"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 2.0 KiB (2000 bytes), over the 1999-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "AICHAT_MAX_PROMPT_BYTES: the largest prompt is sent, one byte more is refused unechoed, nothing sent" {
	openai_fake
	export AICHAT_MAX_PROMPT_BYTES=1000
	# arguments alone
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 1000)"
	[ "$status" -eq 0 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 1001)"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 1001 bytes, over the 1000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$output" = "" ]
	# stdin alone, through a pipe
	run --separate-stderr bash -c 'head -c 1000 /dev/zero | tr "\0" b | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 0 ]
	run --separate-stderr bash -c 'head -c 1001 /dev/zero | tr "\0" b | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 1001 bytes, over the 1000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	# arguments, the blank line and stdin count together: 2 + 2 + 996
	a_bytes 996 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "$(fake_field -1 body.messages.0.content)" = "hi

$(a_bytes 996)" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi! <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 1001 bytes, over the 1000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[[ "$stderr" != *aaa* && "$stderr" != *bbb* ]]
	[ "$(fake_count)" -eq 3 ]
}

@test "max_prompt_bytes in the config file; the variable wins; a bad value is exit 3" {
	openai_fake
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	echo '{"max_prompt_bytes": "1K"}' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 1024)"
	[ "$status" -eq 0 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 1025)"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 1.0 KiB (1025 bytes), over the 1 KiB limit (max_prompt_bytes)" ]
	AICHAT_MAX_PROMPT_BYTES=2k run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 1025)"
	[ "$status" -eq 0 ]
	AICHAT_MAX_PROMPT_BYTES=lots run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: AICHAT_MAX_PROMPT_BYTES must be a size in bytes, such as 16777216 or 16M, not 'lots'" ]
	echo '{"max_prompt_bytes": 0}' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"'max_prompt_bytes' must be a size in bytes"* ]]
	[ "$(fake_count)" -eq 2 ]
}

@test "the default cap: 16 MiB on stdin is sent whole, one byte more and 17 MiB are refused" {
	openai_fake
	export AICHAT_CONTEXT_BUDGET=5000000
	run --separate-stderr bash -c 'head -c 16777216 /dev/zero | tr "\0" a | "$AICHAT_BIN" chat -m mock:echo --no-log | wc -c'
	[ "$status" -eq 0 ]
	[ "$output" -eq 16777217 ]
	run --separate-stderr bash -c 'head -c 16777217 /dev/zero | tr "\0" a | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 16.0 MiB (16777217 bytes), over the 16 MiB limit (max_prompt_bytes)" ]
	run --separate-stderr bash -c 'head -c 17825792 /dev/zero | tr "\0" a | "$AICHAT_BIN" chat -m openai:gpt-4o-mini write a commit message'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is 17.0 MiB (17825816 bytes), over the 16 MiB limit (max_prompt_bytes)" ]
	[ "$output" = "" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "a 200 KB diff through a pipe: whole to mock:echo, and to a server at a base URL with no key" {
	python3 -c '
for i in range(5000):
    print("+    line %d of a diff: x[%d] = f(y, \"z\");" % (i, i))' >"$BATS_TEST_TMPDIR/diff"
	[ "$(wc -c <"$BATS_TEST_TMPDIR/diff")" -gt 200000 ]
	run --separate-stderr bash -c '"$AICHAT_BIN" chat -m mock:echo --raw "write a commit message" <"$1" | tail -n 1' _ "$BATS_TEST_TMPDIR/diff"
	[ "$status" -eq 0 ]
	[ "$output" = "$(tail -n 1 "$BATS_TEST_TMPDIR/diff")" ]
	# (an answer of its own: the fake's echo of 200 KB is slow)
	fake_start '{"deltas":["Add line numbers"]}'
	run --separate-stderr bash -c 'cat "$1" | OPENAI_BASE_URL="$FAKE_URL/v1" "$AICHAT_BIN" chat -m openai:local "write a commit message"' _ "$BATS_TEST_TMPDIR/diff"
	[ "$status" -eq 0 ]
	[ "$output" = "Add line numbers" ]
	[ "$(fake_field 1 body.messages.0.content)" = "write a commit message

$(cat "$BATS_TEST_TMPDIR/diff")" ]
	run ! fake_field 1 headers.authorization
}

@test "a system prompt past the cap is refused, nothing sent" {
	openai_fake
	export AICHAT_MAX_PROMPT_BYTES=100
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s "$(a_bytes 100)" hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = "$(a_bytes 100)" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s "$(a_bytes 101)" hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the system prompt is 101 bytes, over the 100-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "past the model's context budget: refused naming the budget, nothing sent" {
	openai_fake
	# about 4 bytes a token plus 4 per message: 384 bytes are 100 tokens
	export AICHAT_CONTEXT_BUDGET=100
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 384)"
	[ "$status" -eq 0 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 385)"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is about 101 tokens (385 bytes), over the 100-token context budget of openai:gpt-4o-mini (AICHAT_CONTEXT_BUDGET)" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s "be brief" "$(a_bytes 380)"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt with its system prompt is about 105 tokens (388 bytes), over the 100-token context budget of openai:gpt-4o-mini (AICHAT_CONTEXT_BUDGET)" ]
	unset AICHAT_CONTEXT_BUDGET
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	echo '{"context_budget": {"openai:gpt-4o-mini": 50}}' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "$(a_bytes 185)"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is about 51 tokens (185 bytes), over the 50-token context budget of openai:gpt-4o-mini (context_budget)" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "blank stdin alone is an empty prompt, exit 2; after arguments it adds nothing" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini < <(printf ' \n\t\r\n  \n')
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is empty (stdin held only whitespace)" ]
	[ "$(fake_count)" -eq 0 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini summarize < <(printf ' \n\n')
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = summarize ]
	# empty stdin alone is still "no prompt"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"no prompt given"* ]]
	[ "$(fake_count)" -eq 1 ]
}

@test "unknown provider: exit 3 naming it, nothing sent" {
	openai_fake
	run --separate-stderr aichat chat -m nosuch:model hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: unknown provider 'nosuch' (known: openai, anthropic, ollama, mock)" ]
	run --separate-stderr aichat chat -m llama3 hi
	[ "$status" -eq 3 ]
	[[ "$stderr" == "aichat: chat: unknown model 'llama3': name it as provider:model"* ]]
	[ "$(fake_count)" -eq 0 ]
}

@test "missing API key at the vendor's URL: exit 3 naming the variable" {
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: no API key for provider openai: set OPENAI_API_KEY (or try the offline model: -m mock:echo)" ]
	# the vendor's URL given by hand is still the vendor's
	OPENAI_BASE_URL=https://api.openai.com/v1/ run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: no API key for provider anthropic: set ANTHROPIC_API_KEY" ]
}

@test "a base URL of one's own needs no key: no Authorization header is sent" {
	fake_start
	OPENAI_BASE_URL="$FAKE_URL/v1" run --separate-stderr aichat chat -m openai:x hi
	[ "$status" -eq 0 ]
	[ "$output" = hi ]
	[ "$(fake_field 1 body.model)" = x ]
	run ! fake_field 1 headers.authorization
	ANTHROPIC_BASE_URL="$FAKE_URL" run --separate-stderr aichat chat -m anthropic:claude-x hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 2 path)" = /v1/messages ]
	run ! fake_field 2 headers.x-api-key
	# a key that is set is still sent
	OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1" run aichat chat -m openai:x hi
	[ "$(fake_field 3 headers.authorization)" = "Bearer $KEY" ]
}

# key_cmd_config CMD: a config file whose openai provider runs CMD for its key.
key_cmd_config() {
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	python3 -c 'import json, sys; print(json.dumps({"providers": {"openai": {"api_key_cmd": sys.argv[1]}}}))' \
		"$1" >"$XDG_CONFIG_HOME/aichat/config.json"
}

@test "api_key_cmd: its output is the key; it runs only when a key is needed; the variable wins" {
	openai_fake
	unset OPENAI_API_KEY
	runs=$BATS_TEST_TMPDIR/runs
	key_cmd_config "echo run >>'$runs'; printf 'sk-from-cmd-0123456789\\n'"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer sk-from-cmd-0123456789" ]
	[ "$(wc -l <"$runs")" -eq 1 ]
	[[ "$output$stderr" != *sk-from-cmd* ]]
	# not for the offline model, not when OPENAI_API_KEY is set
	run --separate-stderr aichat chat -m mock:echo hi
	[ "$status" -eq 0 ]
	OPENAI_API_KEY=$KEY run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 2 headers.authorization)" = "Bearer $KEY" ]
	[ "$(wc -l <"$runs")" -eq 1 ]
	# stdin is not the command's: the prompt on stdin reaches the model
	run --separate-stderr aichat chat -m openai:gpt-4o-mini <<<"from stdin"
	[ "$(fake_field 3 body.messages.0.content)" = "from stdin" ]
	# a 401 says where the key came from, never the key
	fake_script '{"status":401,"body":"{\"error\":{\"message\":\"bad key sk-from-cmd-0123456789\"}}"}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$stderr" = "aichat: chat: authentication failed for provider openai (check its api_key_cmd)" ]
}

@test "api_key_cmd that fails or prints nothing: exit 3 naming the provider and status, output never shown, nothing sent" {
	openai_fake
	unset OPENAI_API_KEY
	key_cmd_config "echo sk-half-printed-secret; echo 'vault: sealed' >&2; exit 4"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[ "${stderr_lines[0]}" = "vault: sealed" ]
	[ "${stderr_lines[1]}" = "aichat: chat: the api_key_cmd of provider openai failed with exit status 4" ]
	[[ "$output$stderr" != *sk-half-printed-secret* ]]
	key_cmd_config "true"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: the api_key_cmd of provider openai printed no key (exit status 0)" ]
	key_cmd_config "printf 'sk-one\\nsk-two\\n'"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: the api_key_cmd of provider openai printed more than one line or a control character" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "unknown option and unknown command: exit 2 with a hint" {
	run --separate-stderr aichat chat --temprature 1 hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: unknown option '--temprature' (did you mean '--temperature'? see 'aichat chat --help')" ]
	run --separate-stderr aichat caht hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: unknown command 'caht' (did you mean 'chat'? see 'aichat --help')" ]
	run --separate-stderr aichat chat --max-tokens
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: option '--max-tokens' needs a value (N)" ]
}

# ---- upstream failures and retries ----

@test "unreachable base URL: exit 4 after the retries, clear message" {
	fake_start
	port=$FAKE_PORT
	fake_stop
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 1 hi
	[ "$status" -eq 4 ]
	[[ "${stderr_lines[-1]}" == "aichat: chat: openai: cannot connect: "* ]]
	[[ "${stderr_lines[0]}" == *"retrying in "*"(attempt 2)" ]]
}

@test "401: authentication failed naming the variable; key never printed; no retry" {
	openai_fake '{"status":401,"body":"{\"error\":{\"message\":\"Incorrect API key provided: sk-test-0123456789abcdef\",\"type\":\"invalid_request_error\"}}"}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -v hi
	[ "$status" -eq 4 ]
	[ "${stderr_lines[0]}" = "aichat: chat: authentication failed for provider openai (check OPENAI_API_KEY)" ]
	[[ "$output$stderr" != *"$KEY"* ]]
	[ "$(fake_count)" -eq 1 ]
}

@test "429 with Retry-After: 1, then success: waits, retries once, prints the answer" {
	openai_fake '{"status":429,"headers":{"Retry-After":"1"},"body":"{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}"}' '{}'
	start=$(date +%s%N)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "after the wait"
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 0 ]
	[ "$output" = "after the wait" ]
	[ "$(fake_count)" -eq 2 ]
	[ "$elapsed" -ge 1000 ]
	[[ "$stderr" == *"rate limited by openai (HTTP 429): Rate limit reached; retrying in 1.0 s (attempt 2)" ]]
}

@test "Retry-After as an HTTP date is honoured too" {
	when=$(LC_ALL=C TZ=GMT date -d '+2 seconds' '+%a, %d %b %Y %H:%M:%S GMT')
	openai_fake "{\"status\":503,\"headers\":{\"Retry-After\":\"$when\"}}" '{}'
	start=$(date +%s%N)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "dated"
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 0 ]
	[ "$output" = dated ]
	[ "$(fake_count)" -eq 2 ]
	[ "$elapsed" -ge 900 ]
}

@test "429 insufficient_quota is not retried" {
	openai_fake '{"status":429,"body":"{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}"}' '{}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$stderr" = "aichat: chat: openai: insufficient quota (HTTP 429): You exceeded your current quota" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "500 then success: retried exactly once, on the same kept-alive connection" {
	openai_fake '{"status":500}' '{}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini "second time lucky"
	[ "$status" -eq 0 ]
	[ "$output" = "second time lucky" ]
	[ "$(fake_count)" -eq 2 ]
	[ "$(fake_field 2 conn)" = "$(fake_field 1 conn)" ]
}

@test "502 then success: retried with --retries 1, the user sees only the answer" {
	openai_fake '{"status":502,"body":"{\"error\":{\"message\":\"bad gateway\"}}"}' '{}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 1 "through the gateway"
	[ "$status" -eq 0 ]
	[ "$output" = "through the gateway" ]
	[ "$(fake_count)" -eq 2 ]
}

@test "--retries 0 disables retries; --retries N makes N+1 attempts" {
	openai_fake '{"status":503}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 0 hi
	[ "$status" -eq 4 ]
	[ "$(fake_count)" -eq 1 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 3 hi
	[ "$status" -eq 4 ]
	[ "$(fake_count)" -eq 5 ]
}

@test "HTML 502 from a proxy: a readable message, not HTML" {
	openai_fake '{"status":502,"content_type":"text/html","body":"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 0 hi
	[ "$status" -eq 4 ]
	[ "$stderr" = "aichat: chat: openai returned HTTP 502: HTML error page: 502 Bad Gateway" ]
}

@test "no retry once text was printed" {
	openai_fake '{"deltas":["first"," second"," third"],"cut_after_events":2}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$output" = "first" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "stall before any byte past --timeout: upstream_timeout, exit 4, promptly" {
	openai_fake '{"stall_ms":20000}'
	start=$(date +%s%N)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 0 --timeout 1 hi
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 4 ]
	[[ "$stderr" == "aichat: chat: openai: timed out"* ]]
	[ "$elapsed" -lt 4000 ]
}

@test "a stream that stalls mid-way hits the idle timeout, partial text kept" {
	openai_fake '{"deltas":["early"," late"],"stall_ms":20000,"stall_at":2}'
	export AICHAT_IDLE_TIMEOUT=0.5
	start=$(date +%s%N)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 4 ]
	[ "$output" = "early" ]
	[ "$stderr" = "aichat: chat: openai: stream stalled: no data for 0.5 s" ]
	[ "$elapsed" -lt 4000 ]
}

@test "no first byte within AICHAT_FIRST_BYTE_TIMEOUT: upstream_timeout" {
	openai_fake '{"stall_ms":20000}'
	export AICHAT_FIRST_BYTE_TIMEOUT=0.5
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --retries 0 hi
	[ "$status" -eq 4 ]
	[ "$stderr" = "aichat: chat: openai: no response within 0.5 s" ]
}

# ---- interrupting ----

@test "Ctrl-C mid-stream stops the generation, keeps the printed text, exit 130" {
	openai_fake '{"deltas":["one"," two"," three"," four"," five"," six"],"delay_ms":300}'
	out=$BATS_TEST_TMPDIR/out
	"$AICHAT_BIN" chat -m openai:gpt-4o-mini hi >"$out" 2>"$out.err" &
	pid=$!
	for i in $(seq 50); do grep -q two "$out" && break; sleep 0.05; done
	kill -INT "$pid"
	wait "$pid" && rc=0 || rc=$?
	[ "$rc" -eq 130 ]
	[[ "$(cat "$out")" == "one two"* ]]
	[[ "$(cat "$out")" != *six* ]]
	[ "$(cat "$out.err")" = "aichat: chat: interrupted" ]
}

@test "SIGTERM stops the generation too, exit 143; --json reports the partial answer" {
	export AICHAT_MOCK_DELAY_MS=200
	out=$BATS_TEST_TMPDIR/out
	"$AICHAT_BIN" chat -m mock:echo --json one two three four five six seven >"$out" 2>"$out.err" &
	pid=$!
	sleep 0.5
	kill -TERM "$pid"
	wait "$pid" && rc=0 || rc=$?
	[ "$rc" -eq 143 ]
	[[ "$(cat "$out")" == '{"content":"one two'*'","model":"mock:echo",'*'"error":{"code":"cancelled","message":"interrupted"}}' ]]
	[[ "$(cat "$out")" != *seven* ]]
}

# ---- verbose, config ----

@test "-v prints usage and timings to stderr, stdout unchanged" {
	openai_fake '{"usage":{"prompt_tokens":7,"completion_tokens":2}}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -v "a b"
	[ "$status" -eq 0 ]
	[ "$output" = "a b" ]
	[[ "${stderr_lines[0]}" == "aichat: openai:gpt-4o-mini: 7 prompt + 2 completion = 9 tokens; first token "*" ms; total "*" ms; 1 attempt; finish stop" ]]
	[[ "${stderr_lines[1]}" =~ ^aichat:\ conversation\ conv_[0-9a-f]{16}$ ]]
}

@test "config file: aliases, named providers with their own key variable" {
	fake_start
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<-JSON
	{ "default_model": "fast",
	  "aliases": { "fast": "local:tiny-model" },
	  "providers": { "local": { "kind": "openai", "base_url": "$FAKE_URL/v1/", "api_key_env": "LOCAL_KEY" } } }
	JSON
	LOCAL_KEY=local-secret-key run --separate-stderr aichat chat "via alias"
	[ "$status" -eq 0 ]
	[ "$output" = "via alias" ]
	[ "$(fake_field 1 body.model)" = tiny-model ]
	[ "$(fake_field 1 path)" = /v1/chat/completions ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer local-secret-key" ]
	# at its own base URL, no key is needed: none is sent
	run --separate-stderr aichat chat "no key"
	[ "$status" -eq 0 ]
	run ! fake_field 2 headers.authorization
}

@test "AICHAT_MODEL sets the default model" {
	AICHAT_MODEL=mock:echo run --separate-stderr aichat chat --json hi
	[ "$status" -eq 0 ]
	[[ "$output" == *'"model":"mock:echo"'* ]]
}

@test "a malformed config file: exit 3 naming the file and position" {
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '{\n  "default_model": "mock:echo",\n  "aliases": {,}\n}\n' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat chat -m mock:echo hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: config file '$XDG_CONFIG_HOME/aichat/config.json': invalid JSON at line 3, column 16" ]
	export AICHAT_CONFIG=$BATS_TEST_TMPDIR/missing.json
	run --separate-stderr aichat chat -m mock:echo hi
	[ "$status" -eq 3 ]
	[[ "$stderr" == "aichat: chat: cannot read config file '$AICHAT_CONFIG': No such file or directory" ]]
	printf '{"providers":{"x":{"kind":"grpc"}}}' >"$BATS_TEST_TMPDIR/bad.json"
	AICHAT_CONFIG=$BATS_TEST_TMPDIR/bad.json run --separate-stderr aichat chat -m mock:echo hi
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"'providers.x.kind' must be \"openai\" or \"anthropic\"" ]]
}

@test "ollama: OpenAI-compatible at OLLAMA_HOST/v1 with no key" {
	fake_start
	export OLLAMA_HOST=$FAKE_URL
	run --separate-stderr aichat chat -m ollama:llama3.2 "local model"
	[ "$status" -eq 0 ]
	[ "$output" = "local model" ]
	[ "$(fake_field 1 path)" = /v1/chat/completions ]
	[ "$(fake_field 1 body.model)" = llama3.2 ]
	run ! fake_field 1 headers.authorization
}
