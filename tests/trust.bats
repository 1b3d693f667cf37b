#!/usr/bin/env bats
# The trust boundary: text from an upstream or a client reaches a terminal,
# a log or another client only cleaned (no escape sequence, no control
# byte, valid UTF-8) and with every configured key redacted, however short;
# request bodies that cJSON would take but that cannot be trusted (a key
# twice, malformed UTF-8, a NUL) are refused before anything is sent.

bats_require_minimum_version 1.5.0
load helpers

# A short local key, as local servers are often given.
KEY=sk-1234
# What a hostile upstream puts in its error text: an OSC that retitles the
# terminal, a CSI that clears it, and the key it was sent.
EVIL='\u001b]0;pwned\u0007 \u001b[2J echo of sk-1234'

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	serve_stop
	fake_stop
}

hcurl() {
	curl -sS --max-time 5 -D "$BATS_TEST_TMPDIR/h" "$@"
}

status_line() {
	head -1 "$BATS_TEST_TMPDIR/h" | cut -d' ' -f2
}

# no_hostile_bytes TEXT: fails, showing TEXT, when it holds ESC, BEL, a C1
# control or the key.
no_hostile_bytes() {
	if printf '%s' "$1" | LC_ALL=C grep -q $'[\x1b\x07]\|\xc2[\x80-\x9f]' ||
		[[ "$1" == *"$KEY"* ]]; then
		printf 'hostile bytes in: %q\n' "$1" >&2
		return 1
	fi
}

# ---- upstream text on the terminal ----

@test "chat: an Anthropic stream error's type and message reach stderr cleaned, the short key redacted" {
	fake_start '{"events":[{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":1,"output_tokens":0}}},{"type":"error","error":{"type":"'"$EVIL"'","message":"'"$EVIL"'"}}]}'
	export ANTHROPIC_API_KEY=$KEY ANTHROPIC_BASE_URL="$FAKE_URL"
	run --separate-stderr aichat chat -m anthropic:claude-sonnet-4-6 hi
	[ "$status" -eq 4 ]
	no_hostile_bytes "$stderr"
	[[ "$stderr" == *"stream error: echo of [redacted]: echo of [redacted]"* ]]
}

@test "chat: an OpenAI HTTP error message is cleaned and the short key redacted" {
	fake_start '{"status":400,"body":{"error":{"message":"'"$EVIL"'","type":"'"$EVIL"'"}}}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	no_hostile_bytes "$stderr"
	[ "$stderr" = "aichat: chat: openai returned HTTP 400: echo of [redacted]" ]
}

@test "chat: a key-shaped token the upstream echoes is redacted even when it is not ours" {
	fake_start '{"status":400,"body":{"error":{"message":"key sk-proj-abcdefgh12345 is not valid"}}}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ "$stderr" = "aichat: chat: openai returned HTTP 400: key [redacted] is not valid" ]
}

# ---- upstream text to a client and in the log ----

@test "serve: an upstream error reaches the client and the log cleaned, the short key redacted" {
	fake_start '{"status":400,"body":{"error":{"message":"'"$EVIL"'"}}}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --retries 0
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 502 ]
	msg=$(echo "$output" | json_get error.message)
	no_hostile_bytes "$msg"
	[ "$msg" = "openai returned HTTP 400: echo of [redacted]" ]
	run hcurl "$SERVE_URL/v1/chat/completions" -d '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"x"}]}'
	msg=$(echo "$output" | json_get error.message)
	no_hostile_bytes "$msg"
	[[ "$msg" == *"[redacted]"* ]]
	no_hostile_bytes "$(cat "$SERVE_LOG")"
}

@test "serve: a streamed upstream error event is cleaned and redacted too" {
	fake_start '{"events":[{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]},{"error":{"message":"'"$EVIL"'","type":"server_error"}}]}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --retries 0
	run hcurl -N "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}'
	[[ "$output" == *"event: error"* ]]
	msg=$(printf '%s\n' "$output" | sed -n 's/^data: \({"error".*\)/\1/p' | json_get error.message)
	no_hostile_bytes "$msg"
	[ "$msg" = "openai stream error: echo of [redacted]" ]
}

@test "serve: a client key of serve itself is redacted where it would be echoed" {
	fake_start '{"status":400,"body":{"error":{"message":"the key key-xyz is wrong"}}}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --retries 0 --api-key key-xyz
	run hcurl "$SERVE_URL/chat" -H 'Authorization: Bearer key-xyz' -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 502 ]
	msg=$(echo "$output" | json_get error.message)
	[ "$msg" = "openai returned HTTP 400: the key [redacted] is wrong" ]
}

