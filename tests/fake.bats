#!/usr/bin/env bats
# tests/fake.bats - the fake upstream itself, driven with curl: if these
# fail, every other bats file's verdict is in doubt.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	fake_stop
}

# post PATH JSON [CURL-ARGS...]: POSTs JSON to the fake, prints the body.
post() {
	local path=$1 json=$2
	shift 2
	curl -sS --no-buffer -H 'Content-Type: application/json' \
		--data-binary "$json" "$@" "$FAKE_URL$path"
}

# data_lines: the payloads of the SSE "data:" lines on stdin.
data_lines() {
	sed -n 's/^data: //p'
}

@test "fake: default OpenAI stream echoes the last user message word by word" {
	fake_start
	run post /v1/chat/completions '{"model":"m1","stream":true,"messages":[
		{"role":"user","content":"not this"},
		{"role":"assistant","content":"ok"},
		{"role":"user","content":"hello big world"}]}'
	[ "$status" -eq 0 ]
	mapfile -t data < <(data_lines <<<"$output")
	[ "${#data[@]}" -eq 6 ]
	[ "${data[0]}" = '{"id":"chatcmpl-fake","object":"chat.completion.chunk","created":1700000000,"model":"m1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}' ]
	[[ "${data[1]}" == *'"delta":{"content":"hello"},"finish_reason":null}]}' ]]
	[[ "${data[2]}" == *'"delta":{"content":" big"}'* ]]
	[[ "${data[3]}" == *'"delta":{"content":" world"}'* ]]
	[[ "${data[4]}" == *'"delta":{},"finish_reason":"stop"}]}' ]]
	[ "${data[5]}" = '[DONE]' ]
}

@test "fake: OpenAI stream sends usage only when asked, counting prompt words" {
	fake_start '{"deltas":["a","b"]}'
	run post /v1/chat/completions '{"model":"m","stream":true,
		"stream_options":{"include_usage":true},
		"messages":[{"role":"system","content":"be brief"},
		{"role":"user","content":"one two three"}]}'
	[ "$status" -eq 0 ]
	[[ "$output" == *'"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}'* ]]
	run post /v1/chat/completions '{"stream":true,"messages":[{"role":"user","content":"x"}]}'
	[[ "$output" != *usage* ]]
}

@test "fake: Anthropic stream on /messages" {
	fake_start
	run post /v1/messages '{"model":"claude-x","stream":true,"system":"sys",
		"messages":[{"role":"user","content":[{"type":"text","text":"hi \"there\""}]}]}'
	[ "$status" -eq 0 ]
	run grep '^event: ' <<<"$output"
	[ "$output" = "event: message_start
event: content_block_start
event: ping
event: content_block_delta
event: content_block_delta
event: content_block_stop
event: message_delta
event: message_stop" ]
	run post /v1/messages '{"model":"claude-x","stream":true,
		"messages":[{"role":"user","content":"hi \"there\""}]}'
	[[ "$output" == *'"usage":{"input_tokens":2,"output_tokens":1}'* ]]
	[[ "$output" == *'"delta":{"type":"text_delta","text":" \"there\""}'* ]]
	[[ "$output" == *'"delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}'* ]]
}

@test "fake: non-stream JSON answers in both formats" {
	fake_start
	run post /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"a\nb"}]}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"a\nb"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}' ]
	run post /v1/messages '{"model":"c","messages":[{"role":"user","content":"yo"}]}'
	[ "$output" = '{"id":"msg_fake","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"yo"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}' ]
}

@test "fake: status and headers from the script, generic error body" {
	fake_start '{"status":429,"headers":{"Retry-After":"1","X-Num":7}}'
	run curl -sS -i "$FAKE_URL/v1/chat/completions" -d '{}'
	[ "$status" -eq 0 ]
	[[ "$output" == "HTTP/1.1 429 Too Many Requests"* ]]
	[[ "$output" == *$'Retry-After: 1\r'* ]]
	[[ "$output" == *$'X-Num: 7\r'* ]]
	[[ "$output" == *'{"error":{"message":"fake error","type":"server_error","code":null}}' ]]
}

@test "fake: sequential lines in order, then the last one repeats" {
	fake_start '{"body":"one"}' '{"body":"two"}'
	[ "$(post /x '{}')" = one ]
	[ "$(post /x '{}')" = two ]
	[ "$(post /x '{}')" = two ]
	fake_script '{"body":"three"}' '{"body":"four"}'
	[ "$(post /x '{}')" = three ]
	[ "$(post /x '{}')" = four ]
}

@test "fake: a match line takes matching requests out of the sequence" {
	fake_start '{"body":"first"}' '{"match":"secret","status":500,"body":"matched"}' \
		'{"body":"second"}'
	[ "$(post /x '{"q":"secret"}')" = matched ]
	[ "$(post /x '{"q":"plain"}')" = first ]
	[ "$(post /x '{"q":"secret"}')" = matched ]
	[ "$(post /x '{"q":"plain"}')" = second ]
}

@test "fake: cut_after_events ends the stream without its last chunk" {
	fake_start '{"cut_after_events":2}'
	run -18 post /v1/chat/completions '{"stream":true,"messages":[{"role":"user","content":"a b c"}]}'
	[[ "$output" == *'"content":"a"'* ]]
	[[ "$output" != *'" b"'* ]]
	[[ "$output" == *'transfer closed'* ]]
}

@test "fake: cut_after_bytes, split and stall still deliver the right bytes" {
	fake_start '{"body":"0123456789","cut_after_bytes":4}' \
		'{"split":3,"delay_ms":1,"stall_ms":200,"stall_at":1}'
	run -18 curl -sS -o "$BATS_TEST_TMPDIR/out" "$FAKE_URL/x"
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = 0123 ]
	run post /v1/messages '{"stream":true,"messages":[{"role":"user","content":"x y"}]}'
	[ "$status" -eq 0 ]
	[ "$(grep -c '^event: ' <<<"$output")" -eq 8 ]
	[[ "$output" == *'"text":" y"'* ]]
}

@test "fake: logs method, path, lower-cased headers and the parsed body first" {
	fake_start '{"stall_ms":10000}'
	post '/v1/chat/completions?api-version=1' '{"model":"m","n":[1,2]}' \
		-H 'X-Custom-Thing: yes' -m 0.5 || true
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 n)" = 1 ]
	[ "$(fake_field 1 method)" = POST ]
	[ "$(fake_field 1 path)" = '/v1/chat/completions?api-version=1' ]
	[ "$(fake_field 1 headers.x-custom-thing)" = yes ]
	[ "$(fake_field 1 headers.content-type)" = application/json ]
	[ "$(fake_field 1 body.model)" = m ]
	[ "$(fake_field 1 body.n)" = '[1,2]' ]
	[ "$(fake_field 1 'body.n[1]')" = 2 ]
	run fake_field 1 body.missing
	[ "$status" -ne 0 ]
	fake_script
	curl -sS "$FAKE_URL/v1/x" -d 'not json'
	[ "$(fake_field 2 body)" = 'not json' ]
	[[ "$(fake_req -1)" == '{"n":2,'* ]]
}

@test "fake: keep-alive serves two requests on one connection, close ends it" {
	fake_start
	curl -sS "$FAKE_URL/v1/models" "$FAKE_URL/v1/models" >/dev/null
	[ "$(fake_field 1 conn)" = "$(fake_field 2 conn)" ]
	fake_script '{"close":true}'
	run curl -sS -i "$FAKE_URL/v1/models" "$FAKE_URL/v1/models"
	[[ "$output" == *$'Connection: close\r'* ]]
	[ "$(fake_field 3 conn)" != "$(fake_field 4 conn)" ]
}

@test "fake: chunked request bodies and embeddings" {
	fake_start
	run post /v1/embeddings '{"model":"e","input":["a","b c"]}' -H 'Transfer-Encoding: chunked'
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.input.1)" = 'b c' ]
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert [e["index"] for e in d["data"]] == [0, 1]
assert all(len(e["embedding"]) == 8 for e in d["data"])
assert d["data"][0]["embedding"] != d["data"][1]["embedding"]
assert d["usage"]["prompt_tokens"] == 3' "$output"
	[ "$(post /v1/embeddings '{"input":"a"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["embedding"])')" = \
		"$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"][0]["embedding"])' "$output")" ]
}

@test "fake: exits promptly on SIGTERM while stalling" {
	fake_start '{"stall_ms":60000}'
	curl -sS "$FAKE_URL/v1/models" -m 30 >/dev/null 2>&1 3>&- &
	local curl_pid=$!
	fake_wait_count 1
	SECONDS=0
	fake_stop
	wait "$curl_pid" || true
	[ "$SECONDS" -le 2 ]
}
