#!/usr/bin/env bats
# The official @anthropic-ai/sdk npm package against `aichat serve`'s
# /v1/messages, with baseURL changed and nothing else: plain and streamed
# messages, a tool-use round trip and an image, routed to an Anthropic
# upstream (relayed as it came), to an OpenAI upstream (translated both
# ways) and to the offline mock.  The package is installed from the npm
# registry by setup_file into build/ (once; reused by later runs).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	SDK_DIR="$AICHAT_ROOT/build/sdk"
	if [ ! -f "$SDK_DIR/node_modules/@anthropic-ai/sdk/package.json" ]; then
		mkdir -p "$SDK_DIR"
		(cd "$SDK_DIR" && npm install --no-audit --no-fund --silent \
			--prefix "$SDK_DIR" @anthropic-ai/sdk >/dev/null 2>&1) ||
			{ echo "npm install @anthropic-ai/sdk failed" >&2; return 1; }
	fi
	cp "$BATS_TEST_DIRNAME/sdk/anthropic_client.mjs" "$SDK_DIR/"
	export SDK_DIR
}

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

sdk() {
	node "$SDK_DIR/anthropic_client.mjs" "$SERVE_URL" "$@"
}

@test "anthropic SDK: plain and streamed messages through an anthropic upstream" {
	fake_start '{"usage":{"input_tokens":7,"output_tokens":4}}' '{"usage":{"input_tokens":7,"output_tokens":4}}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	run --separate-stderr sdk anthropic:claude-haiku-4-5 plain
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${lines[0]}" = "plain through the anthropic sdk" ]
	[ "${lines[1]}" = "usage 7 4" ]
	[ "${lines[2]}" = "stop end_turn" ]
	[ "$(fake_field 1 path)" = /v1/messages ]
	[ "$(fake_field 1 body.system)" = "be brief" ]
	[ "$(fake_field 1 body.model)" = claude-haiku-4-5 ]
	run --separate-stderr sdk anthropic:claude-haiku-4-5 stream
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${lines[0]}" = "stream through the anthropic sdk" ]
	[ "${lines[1]}" = "usage 7 4" ]
	[ "$(fake_field 2 body.stream)" = true ]
}

@test "anthropic SDK: the same through an openai upstream, translated both ways" {
	fake_start '{"usage":{"prompt_tokens":6,"completion_tokens":3}}' '{"usage":{"prompt_tokens":6,"completion_tokens":3}}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run --separate-stderr sdk openai:gpt-4o-mini plain
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${lines[0]}" = "plain through the anthropic sdk" ]
	[ "${lines[1]}" = "usage 6 3" ]
	[ "${lines[2]}" = "stop end_turn" ]
	[ "$(fake_field 1 path)" = /v1/chat/completions ]
	[ "$(fake_field 1 body.messages.0.role)" = system ]
	[ "$(fake_field 1 body.max_tokens)" = 200 ]
	run --separate-stderr sdk openai:gpt-4o-mini stream
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${lines[0]}" = "stream through the anthropic sdk" ]
	[ "${lines[1]}" = "usage 6 3" ]
	[ "${lines[2]}" = "stop end_turn" ]
}

@test "anthropic SDK: a tool-use round trip, streamed and not, both upstreams" {
	fake_start
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	for model in anthropic:claude-haiku-4-5 openai:gpt-4o-mini; do
		for mode in tools tools-stream; do
			run --separate-stderr sdk "$model" "$mode"
			[ "$status" -eq 0 ] || { echo "$model $mode: $output $stderr"; return 1; }
			[ "${lines[0]}" = 'call lookup {"query":"look up \"café\""}' ]
			[ "${lines[1]}" = "stop tool_use" ]
			[ "${lines[2]}" = "tool said: 42" ]
		done
	done
	# Through the OpenAI upstream the tool_result became a tool message.
	[ "$(fake_field -1 body.messages.2.role)" = tool ]
	[ "$(fake_field -1 body.messages.2.tool_call_id)" = call_fake_1 ]
}

@test "anthropic SDK: an image reaches either upstream" {
	fake_start
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run --separate-stderr sdk anthropic:claude-haiku-4-5 image
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "saw 1 image(s): data:image/png;8 bytes" ]
	run --separate-stderr sdk openai:gpt-4o-mini image
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "saw 1 image(s): data:image/png;8 bytes" ]
	[ "$(fake_field 2 body.messages.0.content.1.image_url.url)" = "data:image/png;base64,iVBORw0KGgo=" ]
}

@test "anthropic SDK: the mock model answers offline; a bad request is an error the SDK understands" {
	serve_start
	run --separate-stderr sdk mock:echo plain
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "plain through the anthropic sdk" ]
	run --separate-stderr sdk mock:echo stream
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "stream through the anthropic sdk" ]
	run --separate-stderr sdk mock:echo error
	[ "$status" -eq 3 ]
	[ "$output" = "error 400 invalid_request_error" ]
}
