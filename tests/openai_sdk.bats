#!/usr/bin/env bats
# The official openai npm package against `aichat serve`: streaming and
# non-streaming chat completions, and embeddings, through /v1 with the
# base URL changed and nothing else.  The package is installed from the npm registry by
# setup_file into build/ (once; reused by later runs).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	command -v node >/dev/null || { echo "node is missing (tools/deps.sh installs it)" >&2; return 1; }
	SDK_DIR="$AICHAT_ROOT/build/sdk"
	if [ ! -f "$SDK_DIR/node_modules/openai/package.json" ]; then
		mkdir -p "$SDK_DIR"
		(cd "$SDK_DIR" && npm install --no-audit --no-fund --silent \
			--prefix "$SDK_DIR" openai@5 >/dev/null 2>&1) ||
			{ echo "npm install openai failed" >&2; return 1; }
	fi
	cp "$BATS_TEST_DIRNAME/sdk/openai_client.mjs" "$BATS_TEST_DIRNAME/sdk/openai_embed.mjs" "$SDK_DIR/"
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
	node "$SDK_DIR/openai_client.mjs" "$SERVE_URL/v1" "$@"
}

@test "openai SDK: non-streaming completion through an openai upstream" {
	fake_start '{"usage":{"prompt_tokens":6,"completion_tokens":3}}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run --separate-stderr sdk openai:gpt-4o-mini plain
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "plain through the sdk" ]
	[ "${lines[1]}" = "usage 6 3" ]
	[ "$(fake_field 1 body.messages.0.role)" = system ]
}

@test "openai SDK: streaming with include_usage through an anthropic upstream" {
	fake_start '{"usage":{"input_tokens":7,"output_tokens":4}}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	run --separate-stderr sdk anthropic:claude-haiku-4-5 stream
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "streamed through the sdk" ]
	[ "${lines[1]}" = "usage 7 4" ]
	[ "$(fake_field 1 path)" = /v1/messages ]
}

@test "openai SDK: mock model streams offline; a bad request is a 400 the SDK understands" {
	serve_start
	run --separate-stderr sdk mock:echo stream
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "streamed through the sdk" ]
	run --separate-stderr sdk mock:echo error
	[ "$status" -eq 3 ]
	[ "$output" = "error 400 invalid_request_error" ]
}

@test "openai SDK: a tool-call round trip, not streamed and streamed, through an openai upstream" {
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	for mode in tools tools-stream; do
		run --separate-stderr sdk openai:gpt-4o-mini "$mode"
		[ "$status" -eq 0 ] || { echo "$mode: $output $stderr"; return 1; }
		[ "${lines[0]}" = 'call lookup {"query":"look up \"café\""}' ]
		[ "${lines[1]}" = "finish tool_calls" ]
		[ "${lines[2]}" = "tool said: 42" ]
	done
	# The second request of each round carried the call and its result.
	[ "$(fake_field 2 body.messages.1.tool_calls.0.id)" = call_fake_1 ]
	[ "$(fake_field 2 body.messages.2.role)" = tool ]
	[ "$(fake_field 2 body.messages.2.tool_call_id)" = call_fake_1 ]
	[ "$(fake_field 4 body.messages.2.tool_call_id)" = call_fake_1 ]
}

@test "openai SDK: a tool-call round trip through an anthropic upstream, streamed and not" {
	fake_start
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	for mode in tools tools-stream; do
		run --separate-stderr sdk anthropic:claude-haiku-4-5 "$mode"
		[ "$status" -eq 0 ] || { echo "$mode: $output $stderr"; return 1; }
		[ "${lines[0]}" = 'call lookup {"query":"look up \"café\""}' ]
		[ "${lines[1]}" = "finish tool_calls" ]
		[ "${lines[2]}" = "tool said: 42" ]
	done
	[ "$(fake_field 2 body.messages.2.content.0.type)" = tool_result ]
}

@test "openai SDK: an image part and a json_schema response format" {
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run --separate-stderr sdk openai:gpt-4o-mini image
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "saw 1 image(s): data:image/png;8 bytes" ]
	[ "$(fake_field 1 body.messages.0.content.1.image_url.url)" = "data:image/png;base64,iVBORw0KGgo=" ]
	run --separate-stderr sdk openai:gpt-4o-mini schema
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = '{"answer":"give the answer","n":42}' ]
	[ "${lines[1]}" = "valid json" ]
	[ "$(fake_field 2 body.response_format.json_schema.name)" = answer ]
}

@test "openai SDK: the server's API key goes in as the SDK's apiKey" {
	serve_start --api-key sdk-secret
	run --separate-stderr sdk mock:echo plain
	[ "$output" = "error 401 authentication_error" ]
	SDK_KEY=sdk-secret run --separate-stderr sdk mock:echo plain
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "plain through the sdk" ]
}

@test "openai SDK: embeddings from mock:embed (its default base64 decoded) and relayed from an openai upstream" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run --separate-stderr node "$SDK_DIR/openai_embed.mjs" "$SERVE_URL/v1" mock:embed none
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${#lines[@]}" -eq 3 ]
	[[ "${lines[0]}" == "0 64 1.000000 "* ]]
	[[ "${lines[1]}" == "1 64 1.000000 "* ]]
	[ "${lines[2]}" = "usage 6 6" ]
	# The same numbers as floats.
	base64_first=${lines[0]}
	run --separate-stderr node "$SDK_DIR/openai_embed.mjs" "$SERVE_URL/v1" mock:embed float
	[ "${lines[0]}" = "$base64_first" ]
	run --separate-stderr node "$SDK_DIR/openai_embed.mjs" "$SERVE_URL/v1" openai:text-embedding-3-small float
	[ "$status" -eq 0 ] || { echo "$output $stderr"; return 1; }
	[ "${lines[0]%% *}" = 0 ]
	[[ "${lines[0]}" == "0 8 1.000000 "* ]]
	[ "$(fake_field 1 body.model)" = text-embedding-3-small ]
	[ "$(fake_field 1 body.input)" = '["the cat sat","stock prices fell"]' ]
	run --separate-stderr node "$SDK_DIR/openai_embed.mjs" "$SERVE_URL/v1" anthropic:claude-haiku-4-5 float
	[ "$output" = "error 400 invalid_request_error" ]
}
