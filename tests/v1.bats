#!/usr/bin/env bats
# /v1/chat/completions as a faithful relay: what a client sends reaches the
# upstream field by field (tools, response_format, sampling fields, fields
# added later), content parts and tool messages are accepted, the
# upstream's answer comes back with every field it had, streamed tool calls
# arrive byte-exact, an Anthropic upstream gets the same request translated
# (and a field with no Anthropic meaning is a 400 naming it), and every bad
# input is a 400 naming its param with nothing sent upstream.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

# post PATH JSON: the body of a POST to serve; HTTP status in $BATS_TMP_STATUS.
post() {
	# Through a file: one argument holds at most 128 KiB.
	printf '%s' "$2" >"$BATS_TEST_TMPDIR/req"
	curl -sS -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/req" \
		"$SERVE_URL$1" >"$BATS_TEST_TMPDIR/status"
	cat "$BATS_TEST_TMPDIR/body"
}

http_status() {
	cat "$BATS_TEST_TMPDIR/status"
}

# same_fields SENT RECEIVED [SKIP...]: every top-level field of SENT (JSON
# text) but the skipped ones is in RECEIVED with the same JSON value.
same_fields() {
	python3 - "$@" <<'EOF'
import json, sys
sent, got = json.loads(sys.argv[1]), json.loads(sys.argv[2])
skip = set(sys.argv[3:])
bad = [k for k in sent if k not in skip and got.get(k, "<missing>") != sent[k]]
if bad:
    for k in bad:
        print("field %s: sent %s, upstream got %s" % (k, json.dumps(sent[k]),
              json.dumps(got.get(k, "<missing>"))))
    sys.exit(1)
EOF
}

FIELDS='"tools":[{"type":"function","function":{"name":"lookup","description":"looks up","parameters":{"type":"object","properties":{"query":{"type":"string"}}},"strict":true}}],
"tool_choice":{"type":"function","function":{"name":"lookup"}},"parallel_tool_calls":false,
"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}},
"top_p":0.9,"stop":["END","STOP"],"seed":12345678901,"n":1,"logprobs":true,"top_logprobs":2,
"presence_penalty":0.5,"frequency_penalty":-0.5,"logit_bias":{"50256":-100},"user":"u-1",
"metadata":{"k":"v"},"max_completion_tokens":77,"reasoning_effort":"low","modalities":["text"],
"prediction":{"type":"content","content":"x"},"service_tier":"auto","store":false,
"a_field_added_later":{"nested":[1,2,{"x":null}]}'

@test "/v1: every field the client sent reaches an OpenAI upstream unchanged" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	body="{\"model\":\"openai:gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$FIELDS}"
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ]
	[ "$(fake_count)" -eq 1 ]
	sent=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')
	same_fields "$sent" "$(fake_field 1 body)" model
	[ "$(fake_field 1 body.model)" = gpt-4o-mini ]
	[ "$(fake_field 1 body.stream)" = false ]
}

@test "/v1: streamed, the fields arrive too; usage is asked for, and its chunk not passed on unless asked" {
	fake_start '{}' '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	body="{\"model\":\"openai:gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$FIELDS}"
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ]
	sent=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')
	same_fields "$sent" "$(fake_field 1 body)" model
	[ "$(fake_field 1 body.stream_options.include_usage)" = true ]
	[[ "$output" == *'data: [DONE]'* ]]
	run ! grep -q '"usage"' "$BATS_TEST_TMPDIR/body"
	# Asked for, the usage chunk comes through.
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
	grep -q '"choices":\[\],"usage"' "$BATS_TEST_TMPDIR/body"
}

@test "/v1: content parts, tool messages, null content, name and developer role are forwarded as written" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	msgs='[{"role":"developer","content":"be terse"},
{"role":"user","name":"ann","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}},{"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERg=="}}]},
{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},
{"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"42"}]}]'
	body="{\"model\":\"openai:gpt-4o-mini\",\"messages\":$msgs,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\"}}]}"
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ] || { echo "$output"; return 1; }
	want=$(printf '%s' "$msgs" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin),separators=(",",":"),ensure_ascii=False))')
	[ "$(fake_field 1 body.messages)" = "$want" ]
	# The fake answered the tool's result.
	[[ "$(printf "%s" "$output" | json_get choices.0.message.content)" == *"tool said: 42" ]] || { echo "$output"; return 1; }
}

@test "/v1: the upstream's answer comes back with every field it sent" {
	fake_start '{"extras":true}' '{"extras":true}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","logprobs":true,"messages":[{"role":"user","content":"two words"}]}'
	[ "$(http_status)" = 200 ]
	[ "$(printf '%s' "$output" | json_get system_fingerprint)" = fp_fake ]
	[ "$(printf '%s' "$output" | json_get usage.prompt_tokens_details.cached_tokens)" = 0 ]
	[ "$(printf '%s' "$output" | json_get usage.completion_tokens_details.reasoning_tokens)" = 0 ]
	[ "$(printf '%s' "$output" | json_get choices.0.logprobs.content.0.token)" = two ]
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"logprobs":true,"messages":[{"role":"user","content":"two words"}]}'
	grep -q '"system_fingerprint":"fp_fake"' "$BATS_TEST_TMPDIR/body"
	grep -q '"logprobs":{"content":\[{"token":" words"' "$BATS_TEST_TMPDIR/body"
}

@test "/v1: a streamed tool call reaches the client byte-exact" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	body='{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"look up \"café\" now"}],"tools":[{"type":"function","function":{"name":"lookup"}}]}'
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ]
	# What the upstream sends for the same request, straight from the fake.
	direct=$(curl -sS -H 'Content-Type: application/json' --data-binary \
		"$(printf '%s' "$body" | sed 's/openai:gpt-4o-mini/gpt-4o-mini/')" "$FAKE_URL/v1/chat/completions")
	[ "$(grep '^data: ' "$BATS_TEST_TMPDIR/body")" = "$(printf '%s\n' "$direct" | grep '^data: ')" ]
	args=$(grep '^data: {' "$BATS_TEST_TMPDIR/body" | sed 's/^data: //' | python3 -c '
import json, sys
print("".join(tc["function"].get("arguments", "") for l in sys.stdin
              for ch in json.loads(l)["choices"] for tc in ch["delta"].get("tool_calls", [])))')
	[ "$args" = '{"query":"look up \"café\" now"}' ]
}

# A stream with escapes, multi-byte text and usage, as the fake sends it.
RELAY_SPEC='"deltas":["h\u00e9llo"," \"q\"\n\t"," \ud83d\ude00","\u65e5\u672c"],"usage":{"prompt_tokens":4,"completion_tokens":3,"cached_tokens":1}'

@test "/v1: an upstream stream sent one byte at a time reaches the client whole and byte-identical" {
	fake_start "{\"split\":1,\"split_pause_us\":20,$RELAY_SPEC}" "{$RELAY_SPEC}"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	body='{"model":"openai:gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ]
	# Every split of every event was a TCP read of its own: the events
	# still reach the client whole, each byte as the upstream sent it.
	direct=$(curl -sS --data-binary "$(printf '%s' "$body" | sed 's/openai:gpt-4o-mini/gpt-4o-mini/')" \
		"$FAKE_URL/v1/chat/completions")
	[ "$(grep -c '^data: ' "$BATS_TEST_TMPDIR/body")" -eq 8 ]
	[ "$(grep '^data: ' "$BATS_TEST_TMPDIR/body")" = "$(printf '%s\n' "$direct" | grep '^data: ')" ]
	# ... and aichat read them: the usage and the finish in its log line,
	# a first token timed.
	line=$(grep '"path":"/v1/chat/completions"' "$SERVE_LOG")
	[ "$(echo "$line" | json_get prompt_tokens)" = 4 ]
	[ "$(echo "$line" | json_get completion_tokens)" = 3 ]
	echo "$line" | json_get ttft_ms
}

@test "/v1: a stream's usage reaches /metrics, the log and the ledger, whether or not the client gets its chunk" {
	fake_start "{$RELAY_SPEC}" "{$RELAY_SPEC}"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[ "$(http_status)" = 200 ]
	run ! grep -q '"usage"' "$BATS_TEST_TMPDIR/body"
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
	grep -q '"choices":\[\],"usage":{"prompt_tokens":4,' "$BATS_TEST_TMPDIR/body"
	run curl -sS "$SERVE_URL/metrics"
	[[ "$output" == *'aichat_tokens_total{model="openai:gpt-4o-mini",kind="prompt"} 8'* ]]
	[[ "$output" == *'aichat_tokens_total{model="openai:gpt-4o-mini",kind="completion"} 6'* ]]
	[ "$(grep -c '"prompt_tokens":4,"completion_tokens":3' "$SERVE_LOG")" -eq 2 ]
	serve_stop
	run --separate-stderr "$AICHAT_BIN" usage --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get total.exchanges)" = 2 ]
	[ "$(echo "$output" | json_get total.prompt_tokens)" = 8 ]
	[ "$(echo "$output" | json_get total.completion_tokens)" = 6 ]
}

# An Anthropic stream with what the relay reads written every way an
# upstream may write it: escapes, a surrogate pair, counts with an
# exponent, members in another order, nested members it does not read, a
# member given twice (read as cJSON reads it: the first), a ping, cache
# counts, thinking.
anthropic_events() {
	cat <<'EOF'
event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"stop_reason":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":2e1,"cache_read_input_tokens":30,"output_tokens":1}}}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"let me \"think\""}}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"index":1,"delta":{"text":"h\u00e9llo \"q\"\n\t","type":"text_delta"},"type":"content_block_delta"}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" \ud83d\ude00 \u65e5"},"extra":{"a":[1,{"b":null}]}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"!","text":"twice"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1.5e1}}

event: message_stop
data: {"type":"message_stop"}

EOF
}

# Those events as the fake's spec, or (with "client") as the client gets
# them: the same bytes, but the ping.
anthropic_spec() {
	anthropic_events | python3 -c '
import json, sys
events = [e + "\n\n" for e in sys.stdin.read().strip("\n").split("\n\n")]
if sys.argv[1:] == ["client"]:
    print("".join(e for e in events if not e.startswith("event: ping")), end="")
else:
    print(json.dumps({"events": events}))' "$@"
}

# usage_counted: the two answers' usage (input 10, cache writes 20, cache
# reads 30, output 15 each) is in /metrics, the request log and, once serve
# has stopped, the ledger.
usage_counted() {
	run curl -sS "$SERVE_URL/metrics"
	# prompt: input + cache writes + cache reads; completion: the last
	# (cumulative) output_tokens.
	[[ "$output" == *'aichat_tokens_total{model="anthropic:claude-haiku-4-5",kind="prompt"} 120'* ]]
	[[ "$output" == *'aichat_tokens_total{model="anthropic:claude-haiku-4-5",kind="completion"} 30'* ]]
	line=$(grep '"path":"/v1/messages"' "$SERVE_LOG" | tail -1)
	[ "$(echo "$line" | json_get prompt_tokens)" = 60 ]
	[ "$(echo "$line" | json_get completion_tokens)" = 15 ]
	serve_stop
	run --separate-stderr "$AICHAT_BIN" usage --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get total.exchanges)" = 2 ]
	[ "$(echo "$output" | json_get total.prompt_tokens)" = 120 ]
	[ "$(echo "$output" | json_get total.cached_tokens)" = 60 ]
	[ "$(echo "$output" | json_get total.completion_tokens)" = 30 ]
	# claude-haiku-4-5, built in: $1 input, $0.10 cache read, $1.25 cache
	# write, $5 output a million: 2 x (10 + 3 + 25 + 75) micro-dollars.
	[ "$(echo "$output" | json_get total.cost_micros)" = 226 ]
}

@test "/v1/messages: an Anthropic stream reaches the client as its bytes; its usage reaches /metrics, the log and the ledger" {
	local spec
	spec=$(anthropic_spec)
	fake_start "$spec" "$spec"
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	anthropic_spec client >"$BATS_TEST_TMPDIR/want"
	for i in 1 2; do
		run post /v1/messages '{"model":"anthropic:claude-haiku-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
		[ "$(http_status)" = 200 ]
		cmp "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/body"
	done
	# The headers built once reach every request.
	[ "$(fake_field 1 headers.x-api-key)" = sk-ant-test ]
	[ "$(fake_field 2 headers.x-api-key)" = sk-ant-test ]
	[ "$(fake_field 2 headers.anthropic-version)" = 2023-06-01 ]
	usage_counted
}

@test "/v1/messages: a whole Anthropic answer reaches the client as its bytes; its usage reaches /metrics, the log and the ledger" {
	# Written every way an upstream may write it: escapes, members in
	# another order, a block that is not an object, a tool block with
	# nested input, a text given twice (read as cJSON reads it).
	local answer='{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"thinking","thinking":"hm \"q\"","signature":"s"},{"text":"h\u00e9llo \ud83d\ude00","type":"text"},7,{"type":"tool_use","id":"t1","name":"f","input":{"a":[1,{"b":null}]}},{"type":"text","text":" one","text":" two"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":2e1,"cache_read_input_tokens":30,"output_tokens":1.5e1}}'
	local spec
	spec=$(python3 -c 'import json, sys; print(json.dumps({"body": sys.argv[1]}))' "$answer")
	fake_start "$spec"
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	for i in 1 2; do
		run post /v1/messages '{"model":"anthropic:claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}'
		[ "$(http_status)" = 200 ]
		[ "$(cat "$BATS_TEST_TMPDIR/body")" = "$answer" ]
	done
	usage_counted
}

@test "/v1: each provider's own headers reach every request, interleaved through one server" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-one OPENAI_BASE_URL="$FAKE_URL/v1" OTHER_KEY=sk-two
	export ANTHROPIC_API_KEY=sk-ant-three ANTHROPIC_BASE_URL="$FAKE_URL"
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<EOF
{"providers": {"other": {"kind": "openai", "base_url": "$FAKE_URL/v1", "api_key_env": "OTHER_KEY"},
               "keyless": {"kind": "openai", "base_url": "$FAKE_URL/v1"}}}
EOF
	serve_start
	local models=(openai:m other:m anthropic:claude-haiku-4-5 keyless:m) i n=0
	for i in 1 2; do
		for m in "${models[@]}"; do
			run post /v1/chat/completions "{\"model\":\"$m\",\"stream\":$([ $i = 1 ] && echo true || echo false),\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
			[ "$(http_status)" = 200 ]
			n=$((n + 1))
			case $m in
			openai:m) [ "$(fake_field $n headers.authorization)" = "Bearer sk-one" ] ;;
			other:m) [ "$(fake_field $n headers.authorization)" = "Bearer sk-two" ] ;;
			keyless:m) run ! fake_field $n headers.authorization ;;
			anthropic:*)
				[ "$(fake_field $n headers.x-api-key)" = sk-ant-three ]
				[ "$(fake_field $n headers.anthropic-version)" = 2023-06-01 ]
				run ! fake_field $n headers.authorization ;;
			esac
			[ "$(fake_field $n headers.content-type)" = application/json ]
			run ! fake_field $n headers.expect
		done
	done
	[ "$(fake_count)" -eq 8 ]
}

@test "/v1: an upstream error event mid-stream ends the stream with an OpenAI error, no [DONE]" {
	chunk='{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}'
	fake_start "{\"events\":[$chunk,{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}},$chunk]}"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --retries 0
	run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
	[ "$(http_status)" = 200 ]
	# The chunk before it as sent; then the error; nothing after it.
	[ "$(grep -c '^data: ' "$BATS_TEST_TMPDIR/body")" -eq 2 ]
	[ "$(grep '^data: ' "$BATS_TEST_TMPDIR/body" | head -1)" = "data: $chunk" ]
	err=$(grep '^data: ' "$BATS_TEST_TMPDIR/body" | sed -n '2s/^data: //p')
	[ "$(echo "$err" | json_get error.message)" = "openai stream error: boom" ]
	run ! grep -q '\[DONE\]' "$BATS_TEST_TMPDIR/body"
	[ "$(grep '"path":"/v1/chat/completions"' "$SERVE_LOG" | json_get error)" = upstream_error ]
}

@test "/v1: an upstream chunk that is not JSON ends the stream with an error; the chunks before it pass as sent" {
	chunk='{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}'
	for bad in '{"choices":[{"delta":{"content":"a"}}],}' '{"choices":[{"delta":{"content":"a\x"}}]}' \
		'{"choices":[]} x' '{"choices":[{"delta":{"content":"a"}}]' '{"usage":{"prompt_tokens":-}}'; do
		# A string event is sent as written: framed here.
		fake_start "{\"events\":[$chunk,$(printf 'data: %s\n\n' "$bad" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')]}"
		export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
		serve_start --retries 0
		run post /v1/chat/completions '{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
		[ "$(grep '^data: ' "$BATS_TEST_TMPDIR/body" | head -1)" = "data: $chunk" ]
		[ "$(grep -c '^data: ' "$BATS_TEST_TMPDIR/body")" -eq 2 ]
		msg=$(grep '^data: ' "$BATS_TEST_TMPDIR/body" | sed -n '2s/^data: //p' | json_get error.message)
		[[ "$msg" == "malformed JSON in stream from openai: '"* ]]
		run ! grep -q '\[DONE\]' "$BATS_TEST_TMPDIR/body"
	done
}

@test "/v1: an Anthropic upstream gets tools, images, system, stop and tool_choice translated" {
	fake_start '{}' '{}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	body='{"model":"anthropic:claude-haiku-4-5","max_tokens":300,"stop":"END","user":"u-9",
"messages":[{"role":"system","content":"be terse"},{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}],
"tools":[{"type":"function","function":{"name":"lookup","description":"d","parameters":{"type":"object","properties":{"query":{"type":"string"}}}}}],"tool_choice":"required"}'
	run post /v1/chat/completions "$body"
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 path)" = /v1/messages ]
	[ "$(fake_field 1 body.system)" = "be terse" ]
	[ "$(fake_field 1 body.max_tokens)" = 300 ]
	[ "$(fake_field 1 body.stop_sequences)" = '["END"]' ]
	[ "$(fake_field 1 body.metadata.user_id)" = u-9 ]
	[ "$(fake_field 1 body.tool_choice)" = '{"type":"any"}' ]
	[ "$(fake_field 1 body.tools)" = '[{"name":"lookup","description":"d","input_schema":{"type":"object","properties":{"query":{"type":"string"}}}}]' ]
	[ "$(fake_field 1 body.messages.0.content.1)" = '{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}' ]
	[ "$(fake_field 1 body.messages.0.content.2)" = '{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}' ]
	# The answer is an OpenAI tool call.
	[ "$(printf '%s' "$output" | json_get choices.0.finish_reason)" = tool_calls ]
	[ "$(printf '%s' "$output" | json_get choices.0.message.tool_calls.0.id)" = toolu_fake_1 ]
	[ "$(printf '%s' "$output" | json_get choices.0.message.tool_calls.0.function.name)" = lookup ]
	[ "$(printf '%s' "$output" | json_get choices.0.message.tool_calls.0.function.arguments)" = '{"query":"look"}' ]
	# The round trip: the tool's answer goes back as a tool_result.
	body2='{"model":"anthropic:claude-haiku-4-5","messages":[{"role":"user","content":"look"},
{"role":"assistant","content":null,"tool_calls":[{"id":"toolu_fake_1","type":"function","function":{"name":"lookup","arguments":"{\"query\":\"look\"}"}}]},
{"role":"tool","tool_call_id":"toolu_fake_1","content":"42"}],"tools":[{"type":"function","function":{"name":"lookup"}}]}'
	run post /v1/chat/completions "$body2"
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 2 body.messages.1.content.0)" = '{"type":"tool_use","id":"toolu_fake_1","name":"lookup","input":{"query":"look"}}' ]
	[ "$(fake_field 2 body.messages.2.content.0.type)" = tool_result ]
	[ "$(fake_field 2 body.messages.2.content.0.tool_use_id)" = toolu_fake_1 ]
	[ "$(printf "%s" "$output" | json_get choices.0.message.content)" = "tool said: 42" ] || { echo "$output"; return 1; }
}

@test "/v1: an Anthropic upstream's streamed tool call becomes OpenAI argument deltas" {
	fake_start '{"usage":{"input_tokens":9,"output_tokens":5,"cache_read_input_tokens":3}}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	run post /v1/chat/completions '{"model":"anthropic:claude-haiku-4-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"find \"é\" please"}],"tools":[{"type":"function","function":{"name":"lookup"}}]}'
	[ "$(http_status)" = 200 ]
	grep '^data: {' "$BATS_TEST_TMPDIR/body" | sed 's/^data: //' >"$BATS_TEST_TMPDIR/chunks"
	python3 - "$BATS_TEST_TMPDIR/chunks" <<'EOF'
import json, sys
text, args, ids, names, finish, usage = "", "", set(), set(), None, None
for l in open(sys.argv[1], encoding="utf-8"):
    c = json.loads(l)
    assert c["object"] == "chat.completion.chunk", c
    if c.get("usage"):
        usage = c["usage"]
    for ch in c["choices"]:
        d = ch["delta"]
        text += d.get("content") or ""
        for tc in d.get("tool_calls", []):
            assert tc["index"] == 0
            if "id" in tc: ids.add(tc["id"])
            if tc.get("function", {}).get("name"): names.add(tc["function"]["name"])
            args += tc.get("function", {}).get("arguments", "")
        finish = ch.get("finish_reason") or finish
assert text == "Let me check.", text
assert args == '{"query":"find \\"é\\" please"}', args
assert ids == {"toolu_fake_1"} and names == {"lookup"}, (ids, names)
assert finish == "tool_calls", finish
assert usage["prompt_tokens"] == 12 and usage["completion_tokens"] == 5, usage
assert usage["prompt_tokens_details"]["cached_tokens"] == 3, usage
EOF
	tail -n 1 "$BATS_TEST_TMPDIR/body" | grep -q '^$'
	grep -q '^data: \[DONE\]$' "$BATS_TEST_TMPDIR/body"
}

@test "/v1: json_schema on an Anthropic model comes back as the JSON answer" {
	fake_start '{"body":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"tool_use","id":"t","name":"answer","input":{"a":"yes","n":2}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	run post /v1/chat/completions '{"model":"anthropic:claude-haiku-4-5","messages":[{"role":"user","content":"q"}],"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"}}}}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 body.tool_choice)" = '{"type":"tool","name":"answer"}' ]
	[ "$(fake_field 1 body.tools.0.name)" = answer ]
	[ "$(printf '%s' "$output" | json_get choices.0.message.content)" = '{"a":"yes","n":2}' ]
	[ "$(printf '%s' "$output" | json_get choices.0.finish_reason)" = stop ]
}

@test "/v1: a field with no Anthropic meaning is a 400 naming it, and nothing is sent" {
	fake_start '{}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	for f in '"seed":7' '"logprobs":true' '"n":2' '"presence_penalty":0.5' '"a_field_added_later":1'; do
		run post /v1/chat/completions "{\"model\":\"anthropic:claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],$f}"
		[ "$(http_status)" = 400 ]
		name=${f%%\":*}; name=${name#\"}
		[ "$(printf '%s' "$output" | json_get error.param)" = "$name" ]
		[[ "$(printf '%s' "$output" | json_get error.message)" == *"'$name'"*"no meaning for Anthropic"* ]]
	done
	# The same fields at their no-op defaults are fine.
	run post /v1/chat/completions '{"model":"anthropic:claude-haiku-4-5","messages":[{"role":"user","content":"q"}],"n":1,"logprobs":false,"presence_penalty":0}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_count)" -eq 1 ]
}

@test "/v1: bad shapes are 400s naming the param, and nothing is sent upstream" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	check() {
		run post /v1/chat/completions "$1"
		[ "$(http_status)" = 400 ] || { echo "status $(http_status) for $1: $output"; return 1; }
		[ "$(printf '%s' "$output" | json_get error.type)" = invalid_request_error ]
		p=$(printf '%s' "$output" | json_get error.param)
		[ "$p" = "$2" ] || { echo "param '$p', want '$2' for $1"; return 1; }
	}
	m='"model":"openai:gpt-4o-mini"'
	u='"messages":[{"role":"user","content":"q"}]'
	check "{$m,$u,\"tools\":{}}" tools
	check "{$m,$u,\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"bad name\"}}]}" 'tools[0].function.name'
	check "{$m,$u,\"tool_choice\":5}" tool_choice
	check "{$m,$u,\"tool_choice\":\"sometimes\"}" tool_choice
	check "{$m,$u,\"response_format\":{\"type\":\"xml\"}}" response_format.type
	check "{$m,$u,\"response_format\":{\"type\":\"json_schema\"}}" response_format.json_schema
	check "{$m,$u,\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}" stop
	check "{$m,$u,\"top_p\":1.5}" top_p
	check "{$m,$u,\"seed\":1.5}" seed
	check "{$m,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\",\"video\":{}}]}]}" 'messages[0].content[0].type'
	check "{$m,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}" 'messages[0].content[0].image_url.url'
	check "{$m,\"messages\":[{\"role\":\"tool\",\"content\":\"42\"}]}" 'messages[0].tool_call_id'
	check "{$m,\"messages\":[{\"role\":\"user\",\"content\":null}]}" 'messages[0].content'
	check "{$m,\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}" 'messages[0].role'
	check "{$m,\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}]}" 'messages[0].tool_calls[0].function.arguments'
	[ "$(fake_count)" -eq 0 ]
}

@test "/v1: 60 messages pass; 10,000 is the cap" {
	fake_start '{}' '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --max-body 4000000
	mk() { python3 -c 'import json,sys; n=int(sys.argv[1]); print(json.dumps({"model":"openai:gpt-4o-mini","messages":[{"role":"user" if i%2==0 else "assistant","content":"m%d"%i} for i in range(n)]}))' "$1"; }
	run post /v1/chat/completions "$(mk 61)"
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 body.messages | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 61 ]
	run post /v1/chat/completions "$(mk 10000)"
	[ "$(http_status)" = 200 ]
	run post /v1/chat/completions "$(mk 10001)"
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = messages ]
	[ "$(fake_count)" -eq 2 ]
}

@test "/v1: o-series models get max_completion_tokens; a temperature they do not take is a clear 400" {
	fake_start '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	run post /v1/chat/completions '{"model":"openai:o3-mini","max_tokens":50,"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 body.max_completion_tokens)" = 50 ]
	run ! fake_field 1 body.max_tokens
	run ! fake_field 1 body.temperature
	run post /v1/chat/completions '{"model":"openai:o3-mini","temperature":0.3,"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = temperature ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"not supported by openai:o3-mini"* ]]
	[ "$(fake_count)" -eq 1 ]
}

@test "/v1: the cache answers a request that differs only in member order, never one that differs in a field" {
	fake_start '{}' '{}' '{}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --cache-size 10
	a='{"model":"openai:gpt-4o-mini","temperature":0,"seed":1,"messages":[{"role":"user","content":"q"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}}}]}'
	b='{"tools":[{"function":{"parameters":{"properties":{"b":{"type":"integer"},"a":{"type":"string"}},"type":"object"},"name":"f"},"type":"function"}],"messages":[{"content":"q","role":"user"}],"seed":1,"temperature":0,"model":"openai:gpt-4o-mini"}'
	run post /v1/chat/completions "$a"
	first=$output
	[ "$(fake_count)" -eq 1 ]
	run post /v1/chat/completions "$b"
	[ "$output" = "$first" ]
	[ "$(fake_count)" -eq 1 ]
	# One field different: the upstream is asked again.
	run post /v1/chat/completions "${a/\"seed\":1/\"seed\":2}"
	[ "$(fake_count)" -eq 2 ]
	run post /v1/chat/completions "${a/\"type\":\"integer\"/\"type\":\"number\"}"
	[ "$(fake_count)" -eq 3 ]
}

@test "/v1 and /chat: a request naming no model needs a default; -m gives one" {
	serve_start
	run post /v1/chat/completions '{"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = model ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"no default model"*"-m MODEL"* ]]
	run post /chat '{"prompt":"q"}'
	[ "$(http_status)" = 422 ]
	[ "$(printf '%s' "$output" | json_get detail.0.loc)" = '["body","model"]' ]
	run post /v1/messages '{"max_tokens":10,"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.type)" = invalid_request_error ]
	serve_start -m mock:echo
	run post /v1/chat/completions '{"messages":[{"role":"user","content":"two words"}]}'
	[ "$(http_status)" = 200 ]
	[ "$(printf '%s' "$output" | json_get choices.0.message.content)" = "two words" ]
	[ "$(printf '%s' "$output" | json_get model)" = mock:echo ]
	run post /chat '{"prompt":"via chat"}'
	[ "$(printf '%s' "$output" | json_get content)" = "via chat" ]
	# A default that cannot answer is refused at start.
	run aichat serve --port 0 -m nosuch:model
	[ "$status" -eq 3 ]
	[[ "$output" == *"unknown provider 'nosuch'"* ]]
}

@test "/v1/messages: bad shapes are Anthropic errors, and nothing is sent" {
	fake_start '{}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	for b in '{"model":"anthropic:claude-haiku-4-5","messages":[{"role":"user","content":"q"}]}' \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":0,"messages":[{"role":"user","content":"q"}]}' \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"messages":[{"role":"system","content":"q"}]}' \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}' \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"text":"no type"}]}]}' \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"tool_choice":{"type":"maybe"},"messages":[{"role":"user","content":"q"}]}'; do
		run post /v1/messages "$b"
		[ "$(http_status)" = 400 ] || { echo "$b: $(http_status) $output"; return 1; }
		[ "$(printf '%s' "$output" | json_get type)" = error ]
		[ "$(printf '%s' "$output" | json_get error.type)" = invalid_request_error ]
	done
	[ "$(fake_count)" -eq 0 ]
	# top_k has a meaning only for Anthropic models: relayed there, refused elsewhere.
	run post /v1/messages '{"model":"anthropic:claude-haiku-4-5","max_tokens":5,"top_k":3,"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 body.top_k)" = 3 ]
	run post /v1/messages '{"model":"mock:echo","max_tokens":5,"top_k":3,"messages":[{"role":"user","content":"q"}]}'
	[ "$(http_status)" = 400 ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"'top_k'"* ]]
}

@test "/v1/messages: a tool name or a tool call id outside [A-Za-z0-9_-] is a 400 naming it; nothing sent" {
	fake_start '{}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start
	M='"model":"anthropic:claude-haiku-4-5","max_tokens":5'
	TU='{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}]}'
	TR='{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}'
	Q='{"role":"user","content":"q"}'
	for case in \
		"tools.0.name|{$M,\"tools\":[{\"name\":\"get weather\",\"input_schema\":{}}],\"messages\":[$Q]}" \
		"tools.0.name|{$M,\"tools\":[{\"name\":\"bell\\u0007\",\"input_schema\":{}}],\"messages\":[$Q]}" \
		"tool_choice.name|{$M,\"tool_choice\":{\"type\":\"tool\",\"name\":\"a/b\"},\"messages\":[$Q]}" \
		"messages.1.content.0.id|{$M,\"messages\":[$Q,{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"id\\u001b[2J\",\"name\":\"f\",\"input\":{}}]},$TR]}" \
		"messages.1.content.0.name|{$M,\"messages\":[$Q,{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f()\",\"input\":{}}]},$TR]}" \
		"messages.2.content.0.tool_use_id|{$M,\"messages\":[$Q,$TU,{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"\",\"content\":\"x\"}]}]}"; do
		field=${case%%|*} body=${case#*|}
		run post /v1/messages "$body"
		[ "$(http_status)" = 400 ] || { echo "$field: $(http_status) $output"; return 1; }
		[ "$(printf '%s' "$output" | json_get error.type)" = invalid_request_error ]
		msg=$(printf '%s' "$output" | json_get error.message)
		[[ "$msg" == *"$field"* ]] || { echo "$field: $msg"; return 1; }
		[[ "$msg" != *$'\e'* && "$msg" != *$'\a'* ]]
	done
	[ "$(fake_count)" -eq 0 ]
	# Names and ids of the allowed characters are relayed as written.
	run post /v1/messages "{$M,\"tools\":[{\"name\":\"get_weather-2\",\"input_schema\":{}}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather-2\"},\"messages\":[$Q,$TU,$TR]}"
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 body.tools.0.name)" = get_weather-2 ]
	[ "$(fake_field 1 body.messages.1.content.0.id)" = toolu_1 ]
	[ "$(fake_field 1 body.messages.2.content.0.tool_use_id)" = toolu_1 ]
}

@test "/v1/models: what the providers report, merged with the aliases, each once, listed once a minute" {
	fake_start '{"models":["gpt-4o-mini","gpt-4o"]}' '{"models":["claude-haiku-4-5"]}'
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '{"aliases":{"fast":"openai:gpt-4o-mini","openai:gpt-4o":"openai:gpt-4o"}}\n' \
		>"$XDG_CONFIG_HOME/aichat/config.json"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1" AICHAT_OLLAMA_PROBE=off
	serve_start
	run curl -sS "$SERVE_URL/v1/models"
	ids=$(printf '%s' "$output" | python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(sys.stdin)["data"]))')
	[[ " $ids " == *" openai:gpt-4o-mini "* ]]
	[[ " $ids " == *" mock:echo "* ]]
	[[ " $ids " == *" fast "* ]]
	[ "$(printf '%s\n' $ids | sort | uniq -d)" = "" ]
	[ "$(printf '%s\n' $ids | grep -c '^openai:gpt-4o$')" -eq 1 ]
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 path)" = /v1/models ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer sk-test" ]
	# Within the minute the list is not asked for again.
	run curl -sS "$SERVE_URL/v1/models"
	[ "$(fake_count)" -eq 1 ]
}

@test "/v1/models: a provider that fails is left out and logged, the rest listed" {
	fake_start '{"status":401}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1" AICHAT_OLLAMA_PROBE=off
	serve_start
	run curl -sS -w '\n%{http_code}' "$SERVE_URL/v1/models"
	[ "${lines[-1]}" = 200 ]
	[[ "$output" == *'"id":"mock:echo"'* ]]
	[[ "$output" != *'openai:'* ]]
	grep -q 'aichat: serve: models: openai: ' "$SERVE_LOG"
	run ! grep -q 'sk-test' "$SERVE_LOG"
}
