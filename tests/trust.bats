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

# ---- request bodies no reader could trust ----

# post ROUTE BODY: POSTs BODY (bytes, from printf %b) to ROUTE of the server.
post() {
	printf '%b' "$2" >"$BATS_TEST_TMPDIR/body"
	hcurl "$SERVE_URL$1" -H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/body"
}

@test "serve: a duplicate key after a null is a 422 naming it, on every reference route; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /chat '{"prompt":"x","model":"openai:gpt-4o-mini","temperature":null,"temperature":99}'
	[ "$(status_line)" = 422 ]
	[ "$output" = '{"detail":[{"loc":["body","temperature"],"msg":"duplicate key '"'temperature'"'","type":"duplicate_key","input":""}]}' ]
	run post /chat '{"prompt":"x","model":"openai:gpt-4o-mini","max_tokens":null,"max_tokens":-5}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "duplicate key 'max_tokens'" ]
	run post /conversation '{"model":"openai:gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"a","role":"system"}]}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","messages",0,"role"]' ]
	run post /batch '{"model":"openai:gpt-4o-mini","items":[{"id":"a","prompt":"x"}],"items":[]}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "duplicate key 'items'" ]
	run post /jobs '{"model":"openai:gpt-4o-mini","items":[{"id":"a","prompt":"x"}],"concurrency":null,"concurrency":1000000}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "duplicate key 'concurrency'" ]
	[ "$(fake_count)" = 0 ]
}

@test "serve: a duplicate key on /v1 routes is a 400 in the route's shape, with param; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"x"}],"temperature":null,"temperature":99}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.param)" = temperature ]
	[ "$(echo "$output" | json_get error.message)" = "invalid value for 'temperature': duplicate key 'temperature'" ]
	run post /v1/messages '{"model":"openai:gpt-4o-mini","max_tokens":10,"max_tokens":10,"messages":[{"role":"user","content":"x"}]}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.type)" = invalid_request_error ]
	[[ "$(echo "$output" | json_get error.message)" == *"duplicate key 'max_tokens'"* ]]
	run post /v1/embeddings '{"model":"openai:text-embedding-3-small","input":"a","input":"b"}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.param)" = input ]
	[ "$(fake_count)" = 0 ]
}

@test "serve: the same key in two different objects is not a duplicate" {
	serve_start
	run post /conversation '{"model":"mock:echo","stream":false,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get content)" = c ]
}

@test "serve: malformed UTF-8 in a prompt is a 422 naming the field; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /chat '{"prompt":"caf\xe9","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 422 ]
	[ "$output" = '{"detail":[{"loc":["body","prompt"],"msg":"is not valid UTF-8","type":"string_unicode","input":""}]}' ]
	run post /conversation '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"\xc3("}]}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","messages",0,"content"]' ]
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"\xed\xa0\x80"}]}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.param)" = "messages[0].content" ]
	[ "$(fake_count)" = 0 ]
	# Valid UTF-8, escaped or not, goes through whole.
	serve_stop
	serve_start
	run post /chat '{"prompt":"caf\xc3\xa9 \\u00e9\\ud83d\\ude00","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get content)" = "café é😀" ]
}

@test "serve: a NUL in a prompt, raw or \\u0000, is a 422, never a shorter prompt; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /chat '{"prompt":"keep this\\u0000 and this","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 422 ]
	[ "$output" = '{"detail":[{"loc":["body","prompt"],"msg":"must not contain a NUL character (\\u0000)","type":"string_nul","input":""}]}' ]
	run post /chat '{"prompt":"keep this\x00 and this","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.type)" = string_nul ]
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"a\\u0000b"}]}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.param)" = "messages[0].content" ]
	[ "$(fake_count)" = 0 ]
	# An escaped backslash before u0000 is text, not a NUL.
	serve_stop
	serve_start
	run post /chat '{"prompt":"a\\\\u0000b","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get content)" = 'a\u0000b' ]
}

# ---- batch lines and the config file ----

@test "batch: a duplicate key, a NUL or malformed UTF-8 fails that line alone; the others run" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	printf '%b\n' '{"id":"a","prompt":"one"}' \
		'{"id":"b","prompt":"x","temperature":null,"temperature":99}' \
		'{"id":"c","prompt":"keep\\u0000cut"}' \
		'{"id":"d","prompt":"caf\xe9"}' \
		'{"id":"e","prompt":"two"}' >"$BATS_TEST_TMPDIR/in.jsonl"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 1 "$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 5 ]
	[ "$(printf '%s\n' "$output" | sed -n 2p | json_get error.message)" = "line 2: duplicate key 'temperature'" ]
	[ "$(printf '%s\n' "$output" | sed -n 3p | json_get error.message)" = "line 3: 'prompt' must not contain a NUL character (\\u0000)" ]
	[ "$(printf '%s\n' "$output" | sed -n 4p | json_get error.message)" = "line 4: 'prompt' is not valid UTF-8" ]
	[ "$(printf '%s\n' "$output" | sed -n 1p | json_get content)" = one ]
	[ "$(printf '%s\n' "$output" | sed -n 5p | json_get content)" = two ]
	[ "$(fake_count)" = 2 ]
	[ "$(fake_field 1 body.messages.0.content)" = one ]
	[ "$(fake_field 2 body.messages.0.content)" = two ]
}

@test "batch --text: a line with a NUL byte or malformed UTF-8 fails alone, never cut short" {
	printf 'alpha\nbe\0ta\ngam\xffma\ndelta\n' >"$BATS_TEST_TMPDIR/in.txt"
	run --separate-stderr aichat batch --text -m mock:echo "$BATS_TEST_TMPDIR/in.txt"
	[ "$status" -eq 5 ]
	[ "$(printf '%s\n' "$output" | sed -n 1p | json_get content)" = alpha ]
	[ "$(printf '%s\n' "$output" | sed -n 2p | json_get error.message)" = "line 2: must not contain a NUL byte" ]
	[ "$(printf '%s\n' "$output" | sed -n 3p | json_get error.message)" = "line 3: is not valid UTF-8 (byte 4)" ]
	[ "$(printf '%s\n' "$output" | sed -n 4p | json_get content)" = delta ]
}

@test "config: a duplicate key is a configuration error (exit 3) naming it; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '{"default_model":"mock:echo","default_model":"openai:gpt-4o-mini"}\n' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat chat hi
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: config file '$XDG_CONFIG_HOME/aichat/config.json': duplicate key 'default_model' at 'default_model'" ]
	[ "$(fake_count)" = 0 ]
}

# ---- the request log ----

@test "text log: a path with %0a and %1b is one escaped line, no raw escape, no forged line" {
	serve_start --log-format text
	run curl -sS --max-time 5 "$SERVE_URL/x%0a2030-01-01T00:00:00.000Z%20req_forged%20GET%20/admin%20200%201ms%1b%5d0;pwned%07"
	run curl -sS --max-time 5 "$SERVE_URL/health"
	serve_stop
	no_hostile_bytes "$(cat "$SERVE_LOG")"
	run grep -c 'req_forged' "$SERVE_LOG"
	[ "$output" = 1 ]
	line=$(grep 'req_forged' "$SERVE_LOG")
	[[ "$line" == *" GET /x\\x0a2030-01-01T00:00:00.000Z\\x20req_forged\\x20GET\\x20/admin\\x20200\\x201ms\\x1b]0;pwned\\x07 404 "* ]]
	[[ "$line" == *"Z req_"* ]]
	run grep -c ' GET /health 200 ' "$SERVE_LOG"
	[ "$output" = 1 ]
}

@test "JSON log: a path with malformed UTF-8 is logged as valid UTF-8 JSON" {
	serve_start
	run curl -sS --max-time 5 "$SERVE_URL/caf%e9%0a%1b%5b2J"
	serve_stop
	# Every line of the log that is JSON must decode as strict UTF-8.
	run python3 -c '
import json, sys
n = 0
for raw in open(sys.argv[1], "rb"):
    if raw.startswith(b"{"):
        d = json.loads(raw.decode("utf-8"))
        if d.get("path", "").startswith("/caf"):
            print(ascii(d["path"]))
            n += 1
sys.exit(0 if n == 1 else 1)
' "$SERVE_LOG"
	[ "$status" -eq 0 ]
	[ "$output" = "'/caf\\ufffd\\n\\x1b[2J'" ]
	no_hostile_bytes "$(cat "$SERVE_LOG")"
}

# ---- fields a route does not have ----

@test "/conversation: a prompt or system beside messages is a 422, never read; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /conversation '{"model":"openai:gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"hi"}],"prompt":"replaced"}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","prompt"]' ]
	[ "$(echo "$output" | json_get detail.0.type)" = extra_forbidden ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "is not a field of ConversationRequest: send it as a message with role user" ]
	long=$(python3 -c 'print("s" * 40000)')
	run post /conversation '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"system":"'"$long"'"}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","system"]' ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "is not a field of ConversationRequest: send it as a message with role system" ]
	[ "$(fake_count)" = 0 ]
	# The same system prompt as a message is bounded like any message.
	run post /conversation '{"model":"openai:gpt-4o-mini","messages":[{"role":"system","content":"'"$long"'"},{"role":"user","content":"hi"}]}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","messages",0,"content"]' ]
	[ "$(fake_count)" = 0 ]
}

@test "/v1/chat/completions: a prompt field never replaces messages; it is relayed as written" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /v1/chat/completions '{"model":"mock:echo","messages":[{"role":"user","content":"from messages"}],"prompt":"replaced"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get choices.0.message.content)" = "from messages" ]
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"from messages"}],"prompt":"replaced"}'
	[ "$(status_line)" = 200 ]
	[ "$(fake_field 1 body.messages.0.content)" = "from messages" ]
	[ "$(fake_field 1 body.prompt)" = replaced ]
}

# ---- the CLI's prompt ----

@test "chat: a NUL or malformed UTF-8 on stdin is exit 2 saying where; nothing sent" {
	fake_start
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr bash -c 'printf "keep\0cut" | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt holds a NUL byte (byte 5): it must be text" ]
	run --separate-stderr bash -c 'printf "caf\xe9" | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the prompt is not valid UTF-8 (byte 4): convert it first, e.g. with iconv" ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -s $'sys\xc3' hi
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: chat: the system prompt is not valid UTF-8 (byte 4): convert it first, e.g. with iconv" ]
	[ "$(fake_count)" = 0 ]
	# Valid UTF-8 goes through whole.
	run --separate-stderr bash -c 'printf "caf\xc3\xa9 \xf0\x9f\x98\x80" | "$AICHAT_BIN" chat -m openai:gpt-4o-mini'
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.messages.0.content)" = "café 😀" ]
}

# ---- a model's answer on a terminal ----

# on_pty CMD...: runs CMD with stdout on a pseudo-terminal; prints what the
# terminal received, hex-encoded.
on_pty() {
	python3 -c '
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdout=s, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(s)
out = b""
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    out += d
p.wait()
sys.stdout.write(out.hex())
' "$@"
}

@test "chat on a terminal: a model's escape sequences are dropped, split or not; piped, the bytes stay" {
	fake_start '{"deltas":["one \u001b]0;pw","ned\u0007two \u001b]52;c;Y2xpcA==\u001b\\three\u001b[2","J four\n"]}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	run on_pty env NO_COLOR=1 "$AICHAT_BIN" chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 0 ]
	[ "$(printf '%s' "$output" | xxd -r -p)" = "$(printf 'one two three four\r')" ]
	# With styles on, the only escapes are aichat's own colours (CSI ... m).
	run on_pty "$AICHAT_BIN" chat -m openai:gpt-4o-mini hi
	text=$(printf '%s' "$output" | xxd -r -p)
	[[ "$text" != *$'\e]'* ]]
	[[ "$text" != *$'\a'* ]]
	[[ "$text" != *$'\e[2J'* ]]
	[[ "$text" == *"one two three four"* ]]
	# Piped, and with --raw on a terminal, the bytes are the model's.
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$output" = "$(printf 'one \e]0;pwned\atwo \e]52;c;Y2xpcA==\e\\three\e[2J four')" ]
	run on_pty "$AICHAT_BIN" chat --raw -m openai:gpt-4o-mini hi
	[[ "$(printf '%s' "$output" | xxd -r -p)" == *$'\e]0;pwned\a'* ]]
}

@test "history on a terminal: stored escape sequences are dropped; a title stays one line; piped show keeps the bytes" {
	fake_start '{"deltas":["one \u001b]0;pw","ned\u0007two\n"]}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini $'title \e]0;x\a\nsecond line'
	[ "$status" -eq 0 ]
	id=$(aichat history list --json | json_get 0.id)
	[ -n "$id" ]
	run on_pty "$AICHAT_BIN" history show "$id"
	[ "$status" -eq 0 ]
	text=$(printf '%s' "$output" | xxd -r -p)
	[[ "$text" != *$'\e'* ]]
	[[ "$text" != *$'\a'* ]]
	[[ "$text" == *"one two"* ]]
	# The list is one row per conversation, wherever it goes.
	run --separate-stderr aichat history list
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" != *$'\e'* ]]
	[[ "$output" == *"title second line"* ]]
	# Piped, show prints what was stored.
	run --separate-stderr aichat history show "$id"
	[[ "$output" == *$'one \e]0;pwned\atwo'* ]]
}

# valid_utf8_sse: reads an SSE body on stdin; fails unless it is valid
# UTF-8 and every data line but [DONE] is JSON; prints the text deltas
# (OpenAI content or Anthropic text_delta) joined.
valid_utf8_sse() {
	python3 -c '
import json, sys
raw = sys.stdin.buffer.read()
text = raw.decode("utf-8")  # raises on malformed UTF-8
out = []
for line in text.splitlines():
    if not line.startswith("data: ") or line == "data: [DONE]":
        continue
    o = json.loads(line[6:])
    for ch in o.get("choices") or []:
        out.append((ch.get("delta") or {}).get("content") or "")
    if o.get("type") == "content_block_delta":
        out.append(o["delta"].get("text", ""))
sys.stdout.write("".join(out))
'
}

@test "serve: malformed UTF-8 in an upstream's answer reaches a translating client as U+FFFD, valid JSON" {
	fake_start $'{"deltas":["caf\xe9"," ok"]}' $'{"deltas":["na\xc3","ive"]}' \
		$'{"deltas":["bad \xff\xfe end"]}' $'{"deltas":["caf\xe9"]}'
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start --retries 0
	# An Anthropic upstream, an OpenAI client.
	curl -sS -N --max-time 5 "$SERVE_URL/v1/chat/completions" \
		-d '{"model":"anthropic:claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"x"}]}' >"$BATS_TEST_TMPDIR/a"
	[ "$(valid_utf8_sse <"$BATS_TEST_TMPDIR/a")" = "caf� ok" ]
	# An OpenAI upstream, an Anthropic client.
	curl -sS -N --max-time 5 "$SERVE_URL/v1/messages" \
		-d '{"model":"openai:gpt-4o-mini","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"x"}]}' >"$BATS_TEST_TMPDIR/b"
	[ "$(valid_utf8_sse <"$BATS_TEST_TMPDIR/b")" = "na�ive" ]
	# Not streamed, and /chat's own JSON.
	run curl -sS --max-time 5 "$SERVE_URL/v1/messages" \
		-d '{"model":"openai:gpt-4o-mini","max_tokens":9,"messages":[{"role":"user","content":"x"}]}'
	[ "$(printf '%s' "$output" | python3 -c 'import json,sys; print(json.loads(sys.stdin.buffer.read().decode())["content"][0]["text"])')" = "bad �� end" ]
	run curl -sS --max-time 5 "$SERVE_URL/chat" -d '{"prompt":"x","model":"anthropic:claude-haiku-4-5"}'
	[ "$(printf '%s' "$output" | python3 -c 'import json,sys; print(json.loads(sys.stdin.buffer.read().decode())["content"])')" = "caf�" ]
	[ "$(fake_count)" = 4 ]
}
