#!/usr/bin/env bats
# aichat chat beyond words: files (-f), provider parameters (-o), structured
# output (--schema), an Anthropic thinking budget (--thinking), and the
# model families' parameters.  Each bad input is a clear error with nothing
# sent upstream.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home-aichat"
	cd "$BATS_TEST_TMPDIR"
	# The smallest PNG signature plus a header chunk's start: an image by
	# its bytes.
	printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR' >pixel.png
}

teardown() {
	fake_stop
}

openai_fake() {
	fake_start "$@"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
}

@test "-f adds a text file after its name, and an image as an image part" {
	openai_fake
	printf 'line one\nline two\n' >notes.txt
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f notes.txt -f pixel.png "sum up"
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$(fake_field 1 body.messages.0.content.0.text)" = "$(printf 'sum up\n\n==> notes.txt <==\nline one\nline two\n')" ]
	[ "$(fake_field 1 body.messages.0.content.1.image_url.url)" = "data:image/png;base64,$(base64 -w0 pixel.png)" ]
	[[ "$output" == "saw 1 image(s): data:image/png;16 bytes"* ]]
}

@test "-f - reads stdin as a file; a file alone is the prompt" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f - "what is this" <<<"piped text"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = "$(printf 'what is this\n\n==> stdin <==\npiped text\n')" ]
	printf 'only a file\n' >only.txt
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f only.txt </dev/null
	[ "$status" -eq 0 ]
	[ "$(fake_field 2 body.messages.0.content)" = "$(printf '==> only.txt <==\nonly a file\n')" ]
}

@test "-f refuses what is neither text nor an image, and a name that lies; nothing is sent" {
	openai_fake
	printf 'just text\n' >fake.png
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f fake.png hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: 'fake.png' is not an image: its bytes are not PNG, JPEG, GIF or WebP" ]
	head -c 64 /dev/urandom >blob.bin; printf '\x00\xff' >>blob.bin
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f blob.bin hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: 'blob.bin' is neither UTF-8 text nor an image (PNG, JPEG, GIF, WebP)" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -f missing.txt hi
	[ "$status" -eq 1 ]
	[[ "$stderr" == "aichat: chat: cannot read 'missing.txt': No such file or directory" ]]
	# Past the prompt's byte cap.
	head -c 3000 /dev/zero | tr '\0' a >big.txt
	AICHAT_MAX_PROMPT_BYTES=2000 run --separate-stderr aichat chat -m openai:gpt-4o-mini -f big.txt hi
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'big.txt' does not fit"* ]]
	[[ "$stderr" != *aaaa* ]]
	[ "$(fake_count)" -eq 0 ]
}

@test "-o passes provider parameters typed as JSON; aichat's own fields are refused" {
	openai_fake
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -o top_p=0.9 -o 'stop=["END"]' -o seed=7 -o user=ann -o 'logit_bias={"5":-1}' hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.top_p)" = 0.9 ]
	[ "$(fake_field 1 body.stop)" = '["END"]' ]
	[ "$(fake_field 1 body.seed)" = 7 ]
	[ "$(fake_field 1 body.user)" = ann ]
	[ "$(fake_field 1 body.logit_bias)" = '{"5":-1}' ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -o model=x hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: '--option model' is aichat's to set: use -m" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -o novalue hi
	[ "$status" -eq 2 ]
	[ "$(fake_count)" -eq 1 ]
}

@test "--schema asks for json_schema and prints the answer once it is JSON; not JSON is exit 4" {
	openai_fake '{}' '{"deltas":["not ", "json"]}'
	schema='{"type":"object","properties":{"answer":{"type":"string"},"n":{"type":"integer"}}}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --schema "$schema" "the answer"
	[ "$status" -eq 0 ]
	[ "$output" = '{"answer":"the answer","n":42}' ]
	[ "$(fake_field 1 body.response_format.type)" = json_schema ]
	[ "$(fake_field 1 body.response_format.json_schema.schema)" = "$schema" ]
	printf '%s' "$schema" >schema.json
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --schema schema.json "x"
	[ "$status" -eq 4 ]
	[ "$output" = "" ]
	[[ "$stderr" == "aichat: chat: the model's answer is not valid JSON (--schema)"* ]]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --schema '[1,2]' x
	[ "$status" -eq 2 ]
	[ "$(fake_count)" -eq 2 ]
}

@test "--schema on an Anthropic model goes through a forced tool" {
	fake_start '{"body":{"id":"m","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"tool_use","id":"t","name":"output","input":{"answer":"yes"}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}}'
	export ANTHROPIC_API_KEY=sk-ant ANTHROPIC_BASE_URL="$FAKE_URL"
	run --separate-stderr aichat chat --no-stream -m anthropic:claude-haiku-4-5 --schema '{"type":"object"}' q
	[ "$status" -eq 0 ] || { echo "$stderr"; return 1; }
	[ "$output" = '{"answer":"yes"}' ]
	[ "$(fake_field 1 body.tool_choice)" = '{"type":"tool","name":"output"}' ]
}

@test "--thinking: the budget reaches an Anthropic model; its thinking never mixes into piped output or --json content" {
	fake_start '{}' '{}'
	export ANTHROPIC_API_KEY=sk-ant ANTHROPIC_BASE_URL="$FAKE_URL"
	run --separate-stderr aichat chat -m anthropic:claude-haiku-4-5 --thinking 2048 "deep question"
	[ "$status" -eq 0 ]
	[ "$output" = "deep question" ]
	[ "$(fake_field 1 body.thinking)" = '{"type":"enabled","budget_tokens":2048}' ]
	[ "$(fake_field 1 body.max_tokens)" = 6144 ]
	run ! fake_field 1 body.temperature
	run --separate-stderr aichat chat --json -m anthropic:claude-haiku-4-5 --thinking 2048 "deep question"
	[ "$(printf '%s' "$output" | json_get content)" = "deep question" ]
	# Not for a model without a thinking budget; a budget too big for max-tokens.
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini --thinking 2048 q
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'--thinking' is for models that take a thinking budget"* ]]
	run --separate-stderr aichat chat -m anthropic:claude-haiku-4-5 --thinking 2048 --max-tokens 1000 q
	[ "$status" -eq 2 ]
	run --separate-stderr aichat chat -m anthropic:claude-haiku-4-5 --thinking 10 q
	[ "$status" -eq 2 ]
	[ "$(fake_count)" -eq 2 ]
}

@test "o-series models get max_completion_tokens and no default temperature; -t is a clear error" {
	openai_fake
	run --separate-stderr aichat chat -m openai:o3-mini --max-tokens 50 hi
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.max_completion_tokens)" = 50 ]
	run ! fake_field 1 body.max_tokens
	run ! fake_field 1 body.temperature
	run --separate-stderr aichat chat -m openai:o3-mini -t 0.3 hi
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'temperature' is not supported by openai:o3-mini"* ]]
	[ "$(fake_count)" -eq 1 ]
}
