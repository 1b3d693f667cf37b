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

# post PATH JSON [CURL-ARGS...]: POSTs JSON to the fake, prints the body
# (-q: not ~/.curlrc, whose Content-Type would come twice).
post() {
	local path=$1 json=$2
	shift 2
	curl -q -sS --no-buffer -H 'Content-Type: application/json' \
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

@test "fake: inflight counts the requests being answered, inflight_model those of the same model" {
	# Streamed: 150 ms between events, about 1 s a request.
	fake_start '{"deltas":["a","b","c"],"delay_ms":150}'
	post /v1/chat/completions '{"model":"a","stream":true,"messages":[{"role":"user","content":"x"}]}' >/dev/null &
	p1=$!
	sleep 0.1
	post /v1/chat/completions '{"model":"a","stream":true,"messages":[{"role":"user","content":"y"}]}' >/dev/null &
	p2=$!
	sleep 0.1
	post /v1/chat/completions '{"model":"b","stream":true,"messages":[{"role":"user","content":"z"}]}' >/dev/null
	wait "$p1" "$p2"
	post /v1/chat/completions '{"model":"a","stream":true,"messages":[{"role":"user","content":"w"}]}' >/dev/null
	[ "$(fake_field 3 inflight)" = 3 ]
	[ "$(fake_field 2 inflight_model)" = 2 ]
	[ "$(fake_field 3 inflight_model)" = 1 ]
	[ "$(fake_field 4 inflight_model)" = 1 ]
	[ "$(fake_peak_model a)" = 2 ]
	[ "$(fake_peak_model b)" = 1 ]
	[ "$(fake_peak_model c)" = 0 ]
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

# py CODE [ARGS...]: runs python3 CODE with the stream on stdin decoded as
# strict UTF-8 (a piece cut inside a character fails), and in it
# data = the JSON payloads of its "data:" lines, [DONE] left out.
py() {
	local code=$1
	shift
	python3 -c 'import json, sys
raw = sys.stdin.buffer.read().decode("utf-8")
data = [json.loads(l[6:]) for l in raw.split("\n")
        if l.startswith("data: ") and l != "data: [DONE]"]
events = [l[7:] for l in raw.split("\n") if l.startswith("event: ")]
'"$code" "$@"
}

TOOLS='"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}},
	{"type":"function","function":{"name":"other"}}]'
ATOOLS='"tools":[{"name":"lookup","input_schema":{"type":"object"}},{"name":"other","input_schema":{}}]'

@test "fake: OpenAI tools get one call to the first tool, or to the one tool_choice names" {
	fake_start
	run post /v1/chat/completions '{"model":"m",'"$TOOLS"',"messages":[
		{"role":"user","content":"say \"hi\""}]}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_fake_1","type":"function","function":{"name":"lookup","arguments":"{\"query\":\"say \\\"hi\\\"\"}"}}],"refusal":null},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}' ]
	run post /v1/chat/completions '{'"$TOOLS"',"tool_choice":{"type":"function","function":{"name":"other"}},
		"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}'
	[ "$(json_get choices.0.message.tool_calls.0.function <<<"$output")" = '{"name":"other","arguments":"{\"query\":\"a b\"}"}' ]
	run post /v1/chat/completions '{'"$TOOLS"',"tool_choice":"required","messages":[{"role":"user","content":"x"}]}'
	[ "$(json_get choices.0.finish_reason <<<"$output")" = tool_calls ]
	run post /v1/chat/completions '{'"$TOOLS"',"tool_choice":"none","messages":[{"role":"user","content":"x"}]}'
	[ "$(json_get choices.0.message <<<"$output")" = '{"role":"assistant","content":"x"}' ]
	run post /v1/chat/completions '{"tools":[],"messages":[{"role":"user","content":"x"}]}'
	[ "$(json_get choices.0.finish_reason <<<"$output")" = stop ]
}

@test "fake: OpenAI streamed tool call: head chunk, then the arguments in pieces cut between characters" {
	fake_start
	post /v1/chat/completions '{"model":"m","stream":true,"stream_options":{"include_usage":true},
		'"$TOOLS"',"messages":[{"role":"user","content":"é日本😀 \"q\" ééé😀😀"}]}' >"$BATS_TEST_TMPDIR/out"
	py '
args = json.dumps({"query": "é日本😀 \"q\" ééé😀😀"}, ensure_ascii=False, separators=(",", ":"))
assert raw.endswith("data: [DONE]\n\n"), raw
deltas = [d["choices"][0]["delta"] for d in data[:-1]]
assert deltas[0] == {"role": "assistant", "content": None}, deltas[0]
assert deltas[1] == {"tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
    "function": {"name": "lookup", "arguments": ""}}]}, deltas[1]
pieces = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[2:-1]]
assert all(d["tool_calls"][0] == {"index": 0, "function": {"arguments": p}}
           for d, p in zip(deltas[2:-1], pieces)), deltas
assert len(pieces) >= 3 and all(pieces), pieces
assert "".join(pieces) == args, pieces
assert deltas[-1] == {} and data[-2]["choices"][0]["finish_reason"] == "tool_calls"
assert data[-1]["choices"] == [] and data[-1]["usage"]["completion_tokens"] == len(pieces)
' <"$BATS_TEST_TMPDIR/out"
}

@test "fake: OpenAI answers a tool message with what the tool said, whatever came before" {
	fake_start
	local call='{"role":"assistant","content":null,"tool_calls":[{"id":"call_fake_1","type":"function","function":{"name":"lookup","arguments":"{}"}}]}'
	run post /v1/chat/completions '{'"$TOOLS"',"messages":[{"role":"user","content":"q"},'"$call"',
		{"role":"tool","tool_call_id":"call_fake_1","content":"21 \"C\""}]}'
	[ "$(json_get choices.0 <<<"$output")" = '{"index":0,"message":{"role":"assistant","content":"tool said: 21 \"C\""},"finish_reason":"stop"}' ]
	run post /v1/chat/completions '{"stream":true,'"$TOOLS"',"messages":[{"role":"user","content":"q"},'"$call"',
		{"role":"tool","tool_call_id":"call_fake_1","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}'
	py 'assert "".join(d["choices"][0]["delta"].get("content", "") for d in data) == "tool said: a b"' <<<"$output"
	# A new user question after the tool's answer: a new call.
	run post /v1/chat/completions '{'"$TOOLS"',"messages":[{"role":"user","content":"q"},'"$call"',
		{"role":"tool","tool_call_id":"call_fake_1","content":"x"},
		{"role":"assistant","content":"tool said: x"},{"role":"user","content":"again"}]}'
	[ "$(json_get choices.0.message.tool_calls.0.function.arguments <<<"$output")" = '{"query":"again"}' ]
}

@test "fake: Anthropic tools get text and a tool_use block, streamed as input_json_delta pieces" {
	fake_start
	run post /v1/messages '{"model":"c",'"$ATOOLS"',"messages":[{"role":"user","content":"w \"x\""}]}'
	[ "$output" = '{"id":"msg_fake","type":"message","role":"assistant","model":"c","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_fake_1","name":"lookup","input":{"query":"w \"x\""}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":2,"output_tokens":4}}' ]
	run post /v1/messages '{"model":"c","stream":true,'"$ATOOLS"',"tool_choice":{"type":"tool","name":"other"},
		"messages":[{"role":"user","content":[{"type":"text","text":"é😀 \"q\" ééé😀😀"}]}]}'
	py '
assert events == ["message_start", "content_block_start", "ping", "content_block_delta",
    "content_block_stop", "content_block_start"] + ["content_block_delta"] * (len(events) - 9) + [
    "content_block_stop", "message_delta", "message_stop"], events
assert data[1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
assert data[3]["delta"] == {"type": "text_delta", "text": "Let me check."}
assert data[5] == {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
    "id": "toolu_fake_1", "name": "other", "input": {}}}, data[5]
pieces = [d["delta"]["partial_json"] for d in data[6:-3]]
assert all(d["index"] == 1 and d["delta"]["type"] == "input_json_delta" for d in data[6:-3])
assert len(pieces) >= 3 and all(pieces), pieces
assert json.loads("".join(pieces)) == {"query": "é😀 \"q\" ééé😀😀"}, pieces
assert data[-3] == {"type": "content_block_stop", "index": 1}
assert data[-2]["delta"]["stop_reason"] == "tool_use"
assert data[-2]["usage"]["output_tokens"] == 1 + len(pieces)
' <<<"$output"
	run post /v1/messages '{'"$ATOOLS"',"tool_choice":{"type":"none"},"messages":[{"role":"user","content":"x"}]}'
	[ "$(json_get content <<<"$output")" = '[{"type":"text","text":"x"}]' ]
}

@test "fake: Anthropic answers a tool_result with what the tool said" {
	fake_start
	local use='{"role":"assistant","content":[{"type":"tool_use","id":"toolu_fake_1","name":"lookup","input":{}}]}'
	run post /v1/messages '{'"$ATOOLS"',"messages":[{"role":"user","content":"q"},'"$use"',
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_fake_1","content":"sunny"}]}]}'
	[ "$(json_get content <<<"$output")" = '[{"type":"text","text":"tool said: sunny"}]' ]
	[ "$(json_get stop_reason <<<"$output")" = end_turn ]
	run post /v1/messages '{"stream":true,'"$ATOOLS"',"messages":[{"role":"user","content":"q"},'"$use"',
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_fake_1",
		"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}]}'
	py '
assert "tool_use" not in raw
assert "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta") == "tool said: a b"
' <<<"$output"
}

@test "fake: images are counted and described before the echo, both dialects" {
	fake_start
	# "aGVsbG8=" is 5 bytes, "AAAA" 3; "A" alone is not base64.
	run post /v1/chat/completions '{"messages":[{"role":"user","content":"old"},{"role":"user","content":[
		{"type":"image_url","image_url":{"url":"data:image/png;base64,aGVsbG8="}},
		{"type":"text","text":"what is"},
		{"type":"image_url","image_url":{"url":"https://e.x/cat.png","detail":"low"}},
		{"type":"text","text":"this"}]}]}'
	[ "$(json_get choices.0.message.content <<<"$output")" = "saw 2 image(s): data:image/png;5 bytes, url:https://e.x/cat.png
what is this" ]
	run post /v1/chat/completions '{"stream":true,"messages":[{"role":"user","content":[
		{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,A"}}]},
		{"role":"assistant","content":"ok"},{"role":"user","content":"and now"}]}'
	py 'assert "".join(d["choices"][0]["delta"].get("content", "") for d in data) == "saw 1 image(s): data:image/jpeg;bad base64\nand now"' <<<"$output"
	run post /v1/messages '{"messages":[{"role":"user","content":[
		{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"AAAA"}},
		{"type":"image","source":{"type":"url","url":"https://e.x/a.gif"}},
		{"type":"text","text":"two"}]}]}'
	[ "$(json_get content.0.text <<<"$output")" = "saw 2 image(s): data:image/webp;3 bytes, url:https://e.x/a.gif
two" ]
	run post /v1/messages '{"messages":[{"role":"user","content":[{"type":"text","text":"none"}]}]}'
	[ "$(json_get content.0.text <<<"$output")" = none ]
}

@test "fake: OpenAI response_format gives JSON built from the schema; deltas still win" {
	fake_start
	local schema='{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object","properties":{
		"answer":{"type":"string"},"n":{"type":"integer"},"x":{"type":"number"},"ok":{"type":"boolean"},
		"tags":{"type":"array","items":{"type":"string"}},"more":{"type":"object"},
		"kind":{"type":"string","enum":["b","c"]},"opt":{"type":["null","string"]}}}}}'
	run post /v1/chat/completions '{"response_format":'"$schema"',"messages":[{"role":"user","content":"a \"b\""}]}'
	[ "$(json_get choices.0.message.content <<<"$output")" = '{"answer":"a \"b\"","n":42,"x":42,"ok":true,"tags":[],"more":{},"kind":"b","opt":"a \"b\""}' ]
	run post /v1/chat/completions '{"response_format":'"$schema"',"messages":[]}'
	[ "$(json_get choices.0.message.content <<<"$output")" = '{"answer":"x","n":42,"x":42,"ok":true,"tags":[],"more":{},"kind":"b","opt":"x"}' ]
	run post /v1/chat/completions '{"stream":true,"response_format":{"type":"json_object"},
		"messages":[{"role":"user","content":"hi there"}]}'
	py '
pieces = [d["choices"][0]["delta"]["content"] for d in data[1:-1]]
assert len(pieces) >= 3 and "".join(pieces) == "{\"echo\":\"hi there\"}", pieces' <<<"$output"
	run post /v1/chat/completions '{"response_format":{"type":"text"},"messages":[{"role":"user","content":"plain"}]}'
	[ "$(json_get choices.0.message.content <<<"$output")" = plain ]
	fake_script '{"deltas":["not json"]}'
	run post /v1/chat/completions '{"response_format":'"$schema"','"$TOOLS"',"messages":[{"role":"user","content":"a"}]}'
	[ "$(json_get choices.0.message <<<"$output")" = '{"role":"assistant","content":"not json"}' ]
}

@test "fake: logprobs, n choices and service_tier only when the request asks" {
	fake_start
	run post /v1/chat/completions '{"n":3,"logprobs":true,"top_logprobs":2,"service_tier":"flex",
		"messages":[{"role":"user","content":"hé yo"}]}'
	py '
d = json.loads(raw)
lp = {"content": [{"token": "hé", "logprob": -0.1, "bytes": [104, 195, 169], "top_logprobs": []},
                  {"token": " yo", "logprob": -0.1, "bytes": [32, 121, 111], "top_logprobs": []}]}
assert d["service_tier"] == "flex"
assert [c["index"] for c in d["choices"]] == [0, 1, 2], d
assert all(c["message"]["content"] == "hé yo" and c["logprobs"] == lp for c in d["choices"]), d
assert d["usage"]["completion_tokens"] == 6' <<<"$output"
	run post /v1/chat/completions '{"stream":true,"logprobs":true,"service_tier":"default",
		"messages":[{"role":"user","content":"a b"}]}'
	py '
assert all(d["service_tier"] == "default" for d in data)
chunks = [d["choices"][0] for d in data]
assert "logprobs" not in chunks[0] and "logprobs" not in chunks[-1]
assert [c["logprobs"]["content"][0]["token"] for c in chunks[1:-1]] == ["a", " b"], chunks' <<<"$output"
	run post /v1/chat/completions '{"n":2,"logprobs":true,'"$TOOLS"',"messages":[{"role":"user","content":"x"}]}'
	py '
d = json.loads(raw)
assert [c["logprobs"] for c in d["choices"]] == [None, None]
assert d["choices"][1]["message"]["tool_calls"][0]["id"] == "call_fake_1"' <<<"$output"
	run post /v1/chat/completions '{"n":1,"logprobs":false,"messages":[{"role":"user","content":"x"}]}'
	[[ "$output" != *logprobs* ]]
	[[ "$output" != *service_tier* ]]
}

@test "fake: extras add fingerprint, token details and cache usage; a usage field implies them" {
	fake_start '{"extras":true}'
	run post /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":"a"}]}'
	[ "$output" = '{"id":"chatcmpl-fake","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":"fp_fake","choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}' ]
	run post /v1/chat/completions '{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a"}]}'
	py '
assert all(d["system_fingerprint"] == "fp_fake" for d in data)
assert data[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}' <<<"$output"
	run post /v1/messages '{"model":"c","messages":[{"role":"user","content":"a"}]}'
	[ "$(json_get usage <<<"$output")" = '{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}' ]
	fake_script '{"usage":{"cache_read_input_tokens":7,"cached_tokens":5}}'
	run post /v1/messages '{"stream":true,"messages":[{"role":"user","content":"a"}]}'
	py 'assert data[0]["message"]["usage"] == {"input_tokens": 1, "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 7, "output_tokens": 1}, data[0]' <<<"$output"
	run post /v1/chat/completions '{"messages":[{"role":"user","content":"a"}]}'
	[ "$(json_get usage.prompt_tokens_details.cached_tokens <<<"$output")" = 5 ]
}

@test "fake: Anthropic thinking comes first, streamed as thinking and signature deltas" {
	fake_start
	run post /v1/messages '{"model":"c","thinking":{"type":"enabled","budget_tokens":1024},
		"messages":[{"role":"user","content":"why \"so\""}]}'
	[ "$output" = '{"id":"msg_fake","type":"message","role":"assistant","model":"c","content":[{"type":"thinking","thinking":"Thinking about: why \"so\"","signature":"sig_fake"},{"type":"text","text":"why \"so\""}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2,"output_tokens":6}}' ]
	run post /v1/messages '{"stream":true,"thinking":{"type":"enabled","budget_tokens":1024},'"$ATOOLS"',
		"messages":[{"role":"user","content":"a b"}]}'
	py '
blocks = [(d["index"], d["content_block"]["type"]) for d in data if d["type"] == "content_block_start"]
assert blocks == [(0, "thinking"), (1, "text"), (2, "tool_use")], blocks
assert data[1]["content_block"] == {"type": "thinking", "thinking": ""}
deltas = [d["delta"] for d in data if d["type"] == "content_block_delta" and d["index"] == 0]
assert "".join(x["thinking"] for x in deltas[:-1]) == "Thinking about: a b", deltas
assert all(x["type"] == "thinking_delta" for x in deltas[:-1])
assert deltas[-1] == {"type": "signature_delta", "signature": "sig_fake"}
assert data[-2]["delta"]["stop_reason"] == "tool_use"' <<<"$output"
	run post /v1/messages '{"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"a"}]}'
	[ "$(json_get content <<<"$output")" = '[{"type":"text","text":"a"}]' ]
}

@test "fake: Ollama GET /api/tags lists the spec's models or llama3.2:latest" {
	fake_start
	run curl -sS "$FAKE_URL/api/tags"
	[ "$status" -eq 0 ]
	py '
d = json.loads(raw)
assert [m["name"] for m in d["models"]] == ["llama3.2:latest"], d
m = d["models"][0]
assert m["model"] == "llama3.2:latest" and len(m["digest"]) == 64 and m["details"]["format"] == "gguf", m' <<<"$output"
	fake_script '{"models":["qwen2.5:7b","llama3.2:latest"]}'
	run curl -sS "$FAKE_URL/api/tags"
	py 'assert [m["model"] for m in json.loads(raw)["models"]] == ["qwen2.5:7b", "llama3.2:latest"]' <<<"$output"
	run curl -sS "$FAKE_URL/v1/models"
	[ "$(json_get data.0.id <<<"$output")" = qwen2.5:7b ]
}
