#!/usr/bin/env bats
# aichat serve: every route as an HTTP client sees it, against the fake
# upstream, and what the upstream received (often nothing).

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	serve_stop
	fake_stop
}

# curl with the response headers in $BATS_TEST_TMPDIR/h
hcurl() {
	curl -sS -D "$BATS_TEST_TMPDIR/h" "$@"
}

# gone PID: true once the process has exited (reaped or a zombie).
# /proc directly: a ps per poll takes long enough on a busy machine to
# outlast the drain timeout this is meant to beat.
gone() {
	local _pid _comm st
	read -r _pid _comm st _ 2>/dev/null <"/proc/$1/stat" || return 0
	[ "$st" = Z ]
}

# ---- basics ----

@test "health: 200 ok with a generated request id; prints where it listens" {
	serve_start
	[[ "$SERVE_URL" == http://127.0.0.1:* ]]
	run hcurl "$SERVE_URL/health"
	[ "$status" -eq 0 ]
	[ "$output" = '{"status":"ok"}' ]
	[ "$(status_line)" = 200 ]
	[[ "$(hdr X-Request-ID)" == req_* ]]
}

@test "POST /chat with mock:echo answers a ChatResponse" {
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"hello there","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[ "$(hdr Content-Type)" = application/json ]
	[ "$output" = '{"content":"hello there","model":"mock:echo","prompt_tokens":2,"completion_tokens":2,"total_tokens":4,"finish_reason":"stop"}' ]
}

@test "POST /chat through the openai provider: upstream gets the request, tokens reported" {
	with_openai_fake '{"usage":{"prompt_tokens":12,"completion_tokens":3}}'
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"a b c","model":"openai:gpt-4o-mini","temperature":0.2,"max_tokens":50,"system":"sys"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get content)" = "a b c" ]
	[ "$(echo "$output" | json_get total_tokens)" = 15 ]
	[ "$(fake_field 1 body.temperature)" = 0.2 ]
	[ "$(fake_field 1 body.max_tokens)" = 50 ]
	[ "$(fake_field 1 body.messages.0.content)" = sys ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer $KEY" ]
}

@test "SSE: framing, headers, newline and multibyte inside tokens, usage, [DONE]" {
	with_openai_fake '{"split":3,"deltas":["line one\nline two"," h\u00e9llo \ud83d\ude00"," \"q\""],"usage":{"prompt_tokens":4,"completion_tokens":3}}'
	serve_start
	run hcurl -N "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}'
	[ "$(status_line)" = 200 ]
	[ "$(hdr Content-Type)" = text/event-stream ]
	[ "$(hdr Cache-Control)" = no-cache ]
	[ "$(hdr X-Accel-Buffering)" = no ]
	expected=$(printf '%s\n\n' \
		'data: {"content":"line one\nline two"}' \
		'data: {"content":" héllo 😀"}' \
		'data: {"content":" \"q\""}' \
		"$(printf 'event: usage\ndata: {"prompt_tokens":4,"completion_tokens":3,"total_tokens":7,"finish_reason":"stop"}')" \
		'data: [DONE]')
	[ "$output" = "$expected" ]
}

@test "POST /conversation streams by default and sends the whole conversation" {
	with_openai_fake
	serve_start
	run hcurl -N "$SERVE_URL/conversation" -d '{"model":"openai:gpt-4o-mini","messages":[{"role":"system","content":"be terse"},{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"second question"}]}'
	[ "$(status_line)" = 200 ]
	[[ "$output" == 'data: {"content":"second"}'* ]]
	[[ "$output" == *'data: [DONE]' ]]
	[ "$(fake_field 1 body.messages.3.content)" = "second question" ]
	[ "$(fake_field 1 body.messages.2.role)" = assistant ]
	run hcurl "$SERVE_URL/conversation" -d '{"model":"mock:echo","stream":false,"messages":[{"role":"user","content":"one two"}]}'
	[ "$(echo "$output" | json_get content)" = "one two" ]
}

# ---- invalid input: 422, every field, nothing sent ----

@test "422 names every bad field with loc, msg and type; upstream gets nothing" {
	with_openai_fake
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"","model":"openai:gpt-4o-mini","temperature":5,"max_tokens":0}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","prompt"]' ]
	[ "$(echo "$output" | json_get detail.0.type)" = string_too_short ]
	[ "$(echo "$output" | json_get detail.1.loc)" = '["body","temperature"]' ]
	[ "$(echo "$output" | json_get detail.1.msg)" = "must be <= 2" ]
	[ "$(echo "$output" | json_get detail.1.type)" = less_than_equal ]
	[ "$(echo "$output" | json_get detail.2.loc)" = '["body","max_tokens"]' ]
	[ "$(echo "$output" | json_get detail.2.msg)" = "must be >= 1" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "422 for each field on its own: long prompt, max_tokens, types, missing prompt" {
	with_openai_fake
	serve_start
	long=$(head -c 32001 /dev/zero | tr '\0' a)
	for body in "{\"prompt\":\"$long\"}" '{"prompt":"x","max_tokens":20000}' \
		'{"prompt":"x","temperature":"hot"}' '{"prompt":"x","stream":"yes"}' \
		'{"model":"openai:gpt-4o-mini"}' '[1,2]' '{"prompt":"x","max_tokens":1.5}'; do
		run hcurl "$SERVE_URL/chat" -d "$body"
		[ "$(status_line)" = 422 ]
		[[ "$output" == '{"detail":[{"loc":["body"'* ]]
	done
	[ "$(fake_count)" -eq 0 ]
}

@test "422 inside conversations: no messages, 51 messages, a bad role" {
	serve_start
	run hcurl "$SERVE_URL/conversation" -d '{"messages":[]}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.type)" = too_short ]
	many=$(python3 -c 'import json; print(json.dumps({"messages":[{"role":"user","content":"x"}]*51}))')
	run hcurl "$SERVE_URL/conversation" -d "$many"
	[ "$(echo "$output" | json_get detail.0.type)" = too_long ]
	run hcurl "$SERVE_URL/conversation" -d '{"messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]}'
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","messages",1,"role"]' ]
	[ "$(echo "$output" | json_get detail.0.msg)" = "must be one of: user, assistant, system" ]
}

@test "malformed JSON is a 422 that says where" {
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt": "x",}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.type)" = json_invalid ]
	[[ "$(echo "$output" | json_get detail.0.msg)" == "invalid JSON at line 1, column "* ]]
}

@test "unknown model: 422 on the model field, nothing sent" {
	with_openai_fake
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"nosuch:thing"}'
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","model"]' ]
	[ "$(fake_count)" -eq 0 ]
}

@test "body over --max-body: 413; unknown route 404; wrong method 405" {
	serve_start --max-body 100
	big=$(python3 -c 'import json; print(json.dumps({"prompt":"x"*200}))')
	run hcurl "$SERVE_URL/chat" -d "$big"
	[ "$(status_line)" = 413 ]
	[ "$(echo "$output" | json_get error.code)" = payload_too_large ]
	run hcurl "$SERVE_URL/nope"
	[ "$(status_line)" = 404 ]
	[ "$(echo "$output" | json_get error.code)" = not_found ]
	run hcurl "$SERVE_URL/chat"
	[ "$(status_line)" = 405 ]
	[ "$(echo "$output" | json_get error.code)" = method_not_allowed ]
}

# ---- upstream failures ----

@test "upstream errors map to 502, 504, 429; keys never shown" {
	with_openai_fake '{"status":401,"body":"{\"error\":{\"message\":\"bad key sk-test-0123456789abcdef\"}}"}'
	serve_start --retries 0 --timeout 1
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 502 ]
	[ "$(echo "$output" | json_get error.code)" = upstream_auth_failed ]
	[[ "$output" != *"$KEY"* ]]
	fake_script '{"status":500}'
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 502 ]
	[ "$(echo "$output" | json_get error.code)" = upstream_error ]
	fake_script '{"status":429,"body":"{\"error\":{\"message\":\"slow down\"}}"}'
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 429 ]
	fake_script '{"stall_ms":10000}'
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 504 ]
	[ "$(echo "$output" | json_get error.code)" = upstream_timeout ]
	[[ "$(cat "$SERVE_LOG")" != *"$KEY"* ]]
}

@test "a failure after the stream started: event: error, then the end" {
	with_openai_fake '{"deltas":["kept"," lost"],"cut_after_events":2}'
	serve_start
	run hcurl -N "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}'
	[ "$(status_line)" = 200 ]
	[[ "$output" == 'data: {"content":"kept"}'* ]]
	[[ "$output" == *'event: error'$'\n''data: {"error":{"code":"upstream_protocol_error","message":"openai: connection cut mid-response'* ]]
	[[ "$output" != *"[DONE]"* ]]
}

# ---- security and limits ----

@test "API keys: missing or wrong 401; Bearer and X-API-Key accepted; /health open" {
	serve_start --api-key k-one --api-key k-two
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 401 ]
	[ "$(echo "$output" | json_get error.code)" = unauthorized ]
	run hcurl "$SERVE_URL/chat" -H 'Authorization: Bearer nope' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 401 ]
	run hcurl "$SERVE_URL/chat" -H 'Authorization: Bearer k-two' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	run hcurl "$SERVE_URL/chat" -H 'X-API-Key: k-one' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	run hcurl "$SERVE_URL/health"
	[ "$(status_line)" = 200 ]
	grep -q '"client":"key:2"' "$SERVE_LOG"
	run ! grep -q 'k-one\|k-two' "$SERVE_LOG"
}

@test "AICHAT_API_KEYS and --api-key-file are honoured" {
	printf '# keys\nfile-key\n' >"$BATS_TEST_TMPDIR/keys"
	AICHAT_API_KEYS="env-a, env-b" serve_start --api-key-file "$BATS_TEST_TMPDIR/keys"
	for k in env-a env-b file-key; do
		run hcurl "$SERVE_URL/chat" -H "X-API-Key: $k" -d '{"prompt":"x","model":"mock:echo"}'
		[ "$(status_line)" = 200 ]
	done
}

@test "a non-loopback address without a key is refused" {
	run --separate-stderr aichat serve --host 0.0.0.0 --port 0
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"refusing to listen on 0.0.0.0 without an API key"* ]]
}

@test "rate limit: 429 with Retry-After and X-RateLimit headers, per client" {
	serve_start --rate-limit 2/minute
	for i in 1 2; do
		run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"mock:echo"}'
		[ "$(status_line)" = 200 ]
	done
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 429 ]
	[ "$(echo "$output" | json_get error.code)" = rate_limited ]
	[ "$(hdr Retry-After)" -ge 1 ]
	[ "$(hdr X-RateLimit-Limit)" = 2 ]
	[ "$(hdr X-RateLimit-Remaining)" = 0 ]
	[ -n "$(hdr X-RateLimit-Reset)" ]
	run hcurl "$SERVE_URL/health"
	[ "$(status_line)" = 200 ]
}

@test "--max-upstream with a full queue answers 503 with Retry-After" {
	with_openai_fake '{"stall_ms":1500}'
	serve_start --max-upstream 1 --max-queue 0
	curl -s "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}' >/dev/null &
	first=$!
	fake_wait_count 1
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 503 ]
	[ "$(hdr Retry-After)" = 1 ]
	wait "$first"
}

@test "request id: a client's id is sanitized, capped, echoed and logged" {
	serve_start
	run hcurl "$SERVE_URL/chat" -H 'X-Request-ID: abc-123<script>' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(hdr X-Request-ID)" = "abc-123script" ]
	sleep 0.1
	grep -q '"request_id":"abc-123script"' "$SERVE_LOG"
	long=$(head -c 300 /dev/zero | tr '\0' x)
	run hcurl "$SERVE_URL/health" -H "X-Request-ID: $long"
	[ "$(hdr X-Request-ID | wc -c)" -le 65 ]
}

@test "one JSON log line per request: fields, never the prompt" {
	with_openai_fake '{"usage":{"prompt_tokens":5,"completion_tokens":2}}'
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"secret prompt text","model":"openai:gpt-4o-mini"}'
	sleep 0.1
	line=$(grep '"path":"/chat"' "$SERVE_LOG")
	[ "$(echo "$line" | json_get status)" = 200 ]
	[ "$(echo "$line" | json_get model)" = openai:gpt-4o-mini ]
	[ "$(echo "$line" | json_get provider)" = openai ]
	[ "$(echo "$line" | json_get prompt_tokens)" = 5 ]
	[ "$(echo "$line" | json_get completion_tokens)" = 2 ]
	[ "$(echo "$line" | json_get method)" = POST ]
	echo "$line" | json_get duration_ms
	echo "$line" | json_get ttft_ms
	[[ "$line" != *secret* ]]
}

@test "metrics change after requests" {
	serve_start
	run hcurl "$SERVE_URL/metrics"
	[ "$(status_line)" = 200 ]
	[[ "$output" == *"# TYPE aichat_http_requests_total counter"* ]]
	hcurl "$SERVE_URL/chat" -d '{"prompt":"a b","model":"mock:echo"}' >/dev/null
	hcurl "$SERVE_URL/chat" -d '{"prompt":"","model":"mock:echo"}' >/dev/null
	run hcurl "$SERVE_URL/metrics"
	[[ "$output" == *'aichat_http_requests_total{route="/chat",method="POST",status="200"} 1'* ]]
	[[ "$output" == *'aichat_http_requests_total{route="/chat",method="POST",status="422"} 1'* ]]
	[[ "$output" == *'aichat_validation_failures_total{route="/chat"} 1'* ]]
	[[ "$output" == *'aichat_tokens_total{model="mock:echo",kind="completion"} 2'* ]]
}

@test "cache: temperature 0 answers twice, upstream called once, X-Cache HIT" {
	with_openai_fake
	serve_start
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"cache me","model":"openai:gpt-4o-mini","temperature":0}'
	[ "$(hdr X-Cache)" = "" ] || [ "$(hdr X-Cache)" = MISS ]
	first=$output
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"cache me","model":"openai:gpt-4o-mini","temperature":0}'
	[ "$(hdr X-Cache)" = HIT ]
	[ "$output" = "$first" ]
	[ "$(fake_count)" -eq 1 ]
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"cache me","model":"openai:gpt-4o-mini","temperature":0.5}'
	[ "$(fake_count)" -eq 2 ]
}

# ---- batch ----

@test "POST /batch: results in input order, one failing item keeps the rest" {
	with_openai_fake '{"match":"item-two","status":400,"body":"{\"error\":{\"message\":\"bad item\"}}"}' '{"delay_ms":50}'
	serve_start
	run hcurl "$SERVE_URL/batch" -d '{"model":"openai:gpt-4o-mini","items":[{"id":"a","prompt":"item-one"},{"id":"b","prompt":"item-two"},{"id":"c","prompt":"item-three"}]}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get results.0.id)" = a ]
	[ "$(echo "$output" | json_get results.0.content)" = item-one ]
	[ "$(echo "$output" | json_get results.0.error)" = null ]
	[ "$(echo "$output" | json_get results.1.id)" = b ]
	[ "$(echo "$output" | json_get results.1.content)" = null ]
	[ "$(echo "$output" | json_get results.1.error.code)" = upstream_error ]
	[ "$(echo "$output" | json_get results.2.content)" = item-three ]
	run hcurl "$SERVE_URL/batch" -d '{"items":[]}'
	[ "$(status_line)" = 422 ]
}

# ---- OpenAI-compatible ----

@test "POST /batch: 100 items are answered, 101 are a 422 on items" {
	serve_start
	items() { python3 -c 'import json,sys; print(json.dumps({"model":"mock:echo","items":[{"id":"i%d" % i,"prompt":"p%d" % i} for i in range(int(sys.argv[1]))]}))' "$1"; }
	run hcurl "$SERVE_URL/batch" -d "$(items 100)"
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get results.99.content)" = p99 ]
	run hcurl "$SERVE_URL/batch" -d "$(items 101)"
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","items"]' ]
	[ "$(echo "$output" | json_get detail.0.type)" = too_long ]
}

@test "/v1/chat/completions non-streaming: OpenAI shape" {
	with_openai_fake '{"usage":{"prompt_tokens":3,"completion_tokens":2}}'
	serve_start
	run hcurl "$SERVE_URL/v1/chat/completions" -d '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"two words"}]}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get object)" = chat.completion ]
	[ "$(echo "$output" | json_get choices.0.message.role)" = assistant ]
	[ "$(echo "$output" | json_get choices.0.message.content)" = "two words" ]
	[ "$(echo "$output" | json_get choices.0.finish_reason)" = stop ]
	[ "$(echo "$output" | json_get usage.total_tokens)" = 5 ]
}

@test "/v1/chat/completions streaming: chunks, include_usage, [DONE]" {
	serve_start
	run hcurl -N "$SERVE_URL/v1/chat/completions" -d '{"model":"mock:echo","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi there"}]}'
	[ "$(status_line)" = 200 ]
	[ "$(hdr Content-Type)" = text/event-stream ]
	chunks=$(echo "$output" | grep '^data: {' | sed 's/^data: //')
	[ "$(echo "$chunks" | sed -n 1p | json_get object)" = chat.completion.chunk ]
	[ "$(echo "$chunks" | sed -n 1p | json_get choices.0.delta.role)" = assistant ]
	[ "$(echo "$chunks" | sed -n 2p | json_get choices.0.delta.content)" = hi ]
	[ "$(echo "$chunks" | sed -n 3p | json_get choices.0.delta.content)" = " there" ]
	[ "$(echo "$chunks" | sed -n 4p | json_get choices.0.finish_reason)" = stop ]
	[ "$(echo "$chunks" | sed -n 5p | json_get choices)" = "[]" ]
	[ "$(echo "$chunks" | sed -n 5p | json_get usage.total_tokens)" = 4 ]
	[[ "$output" == *'data: [DONE]' ]]
}

@test "/v1 errors use the OpenAI error object; /v1/models lists models" {
	serve_start
	run hcurl "$SERVE_URL/v1/chat/completions" -d '{"model":"mock:echo","temperature":3,"messages":[{"role":"user","content":"x"}]}'
	[ "$(status_line)" = 400 ]
	[ "$(echo "$output" | json_get error.type)" = invalid_request_error ]
	[ "$(echo "$output" | json_get error.param)" = temperature ]
	run hcurl "$SERVE_URL/v1/models"
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get object)" = list ]
	[[ "$output" == *'"id":"mock:echo"'* ]]
}

# ---- docs ----

@test "/openapi.json and /docs are served" {
	serve_start
	run hcurl "$SERVE_URL/openapi.json"
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get openapi)" = 3.1.0 ]
	[ "$(echo "$output" | json_get 'paths./chat.post.requestBody.content.application/json.schema.$ref')" = "#/components/schemas/ChatRequest" ]
	run hcurl "$SERVE_URL/docs"
	[ "$(status_line)" = 200 ]
	[[ "$(hdr Content-Type)" == text/html* ]]
}

# ---- lifecycle ----

@test "a client that disconnects mid-stream cancels its upstream call" {
	with_openai_fake '{"deltas":["a","b","c","d","e","f","g","h"],"delay_ms":400}'
	serve_start
	curl -sN "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' >"$BATS_TEST_TMPDIR/out" &
	client=$!
	fake_wait_count 1
	sleep 0.5
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -ge 1 ]
	kill "$client"
	wait "$client" || true
	for i in $(seq 40); do
		[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ] && break
		sleep 0.05
	done
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ]
	sleep 0.1
	grep -q '"client_disconnected":true' "$SERVE_LOG"
}

@test "SIGTERM drains: the stream in flight completes, then exit 0" {
	with_openai_fake '{"deltas":["one"," two"," three"," four"],"delay_ms":250}'
	serve_start
	curl -sN "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' >"$BATS_TEST_TMPDIR/out" &
	client=$!
	fake_wait_count 1
	kill -TERM "$SERVE_PID"
	# new connections are refused from now on
	for i in $(seq 60); do
		curl -s --max-time 1 "$SERVE_URL/health" >/dev/null || break
		sleep 0.05
	done
	run curl -s --max-time 2 "$SERVE_URL/health"
	[ "$status" -ne 0 ]
	wait "$client"
	grep -q 'data: {"content":" four"}' "$BATS_TEST_TMPDIR/out"
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/out"
	# it exits by itself once the stream is done
	for i in $(seq 100); do gone "$SERVE_PID" && break; sleep 0.05; done
	gone "$SERVE_PID"
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	grep -q "draining 1 request" "$SERVE_LOG"
}

@test "drain timeout: a stream still running gets an error event" {
	with_openai_fake '{"deltas":["a","b","c","d","e","f"],"delay_ms":500}'
	serve_start --drain-timeout 0.5
	curl -sN "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' >"$BATS_TEST_TMPDIR/out" &
	client=$!
	fake_wait_count 1
	kill -TERM "$SERVE_PID"
	wait "$client" || true
	grep -q 'event: error' "$BATS_TEST_TMPDIR/out"
	grep -q 'server shutting down' "$BATS_TEST_TMPDIR/out"
}

@test "a slow client is dropped after --client-timeout" {
	serve_start --client-timeout 1
	port=${SERVE_URL##*:}
	start=$(date +%s%N)
	run timeout 5 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /chat HTTP/1.1\r\nHost: x\r\n")
try:
    while True:
        d = s.recv(100)
        if not d:
            break
except ConnectionResetError:
    pass
' "$port"
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 0 ]
	[ "$elapsed" -lt 4000 ]
	run hcurl "$SERVE_URL/health"
	[ "$(status_line)" = 200 ]
}

@test "SSE keep-alive comments while waiting for the first token" {
	with_openai_fake '{"stall_ms":700,"stall_at":0,"deltas":["late"]}'
	AICHAT_SSE_KEEPALIVE_MS=200 serve_start
	run hcurl -N "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}'
	[ "$(status_line)" = 200 ]
	[[ "$output" == ': keep-alive'$'\n\n'': keep-alive'* ]]
	[[ "$output" == *'data: {"content":"late"}'* ]]
	[ "$(grep -c 'keep-alive' <<<"$output")" -le 4 ]
}

@test "CORS: off by default; --cors-origin answers preflight and tags responses" {
	serve_start
	run hcurl "$SERVE_URL/health" -H 'Origin: http://app.test'
	[ -z "$(hdr Access-Control-Allow-Origin)" ]
	serve_stop
	serve_start --cors-origin http://app.test
	run hcurl -X OPTIONS "$SERVE_URL/chat" -H 'Origin: http://app.test' -H 'Access-Control-Request-Method: POST'
	[ "$(status_line)" = 204 ]
	[ "$(hdr Access-Control-Allow-Origin)" = http://app.test ]
	[[ "$(hdr Access-Control-Allow-Headers)" == *Authorization* ]]
	run hcurl "$SERVE_URL/chat" -H 'Origin: http://app.test' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(hdr Access-Control-Allow-Origin)" = http://app.test ]
}

@test "--log-format text writes one readable line per request" {
	serve_start --log-format text
	hcurl "$SERVE_URL/chat" -H 'X-Request-ID: text-log-1' -d '{"prompt":"a b","model":"mock:echo"}' >/dev/null
	sleep 0.1
	line=$(grep ' text-log-1 ' "$SERVE_LOG")
	[[ "$line" =~ ^[0-9-]+T[0-9:.]+Z\ text-log-1\ POST\ /chat\ 200\ [0-9]+ms\ model=mock:echo ]]
	[[ "$line" == *"tokens=2+2 client=127.0.0.1"* ]]
}

@test "cache opt-in with X-AIChat-Cache: 1 at any temperature; streams never cached" {
	with_openai_fake
	serve_start
	for i in 1 2; do
		run hcurl "$SERVE_URL/chat" -H 'X-AIChat-Cache: 1' -d '{"prompt":"opt in","model":"openai:gpt-4o-mini","temperature":0.9}'
	done
	[ "$(hdr X-Cache)" = HIT ]
	[ "$(fake_count)" -eq 1 ]
	for i in 1 2; do
		hcurl -N "$SERVE_URL/chat" -d '{"prompt":"s","model":"openai:gpt-4o-mini","temperature":0,"stream":true}' >/dev/null
	done
	[ "$(fake_count)" -eq 3 ]
	run hcurl "$SERVE_URL/metrics"
	[[ "$output" == *"aichat_cache_hits_total 1"* ]]
}

@test "keep-alive: several requests on one client connection" {
	serve_start
	run curl -sS "$SERVE_URL/health" "$SERVE_URL/health" -w '%{num_connects}\n'
	[ "${lines[0]}" = '{"status":"ok"}1' ]
	[ "${lines[1]}" = '{"status":"ok"}0' ]
}

@test "a client that leaves a non-streaming request: upstream cancelled, logged 499, no busy loop" {
	with_openai_fake '{"stall_ms":3000}'
	serve_start
	curl -s --max-time 0.3 "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}' >/dev/null || true
	for i in $(seq 40); do
		grep -q '"status":499' "$SERVE_LOG" && break
		sleep 0.05
	done
	grep -q '"path":"/chat","status":499' "$SERVE_LOG"
	grep -q '"client_disconnected":true' "$SERVE_LOG"
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ]
	# idle afterwards: under 0.2 s of CPU in a whole second
	before=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	sleep 1
	after=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	[ $((after - before)) -lt 20 ]
	run curl -sS "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "a drain that times out ends cleanly (exit 0, no crash)" {
	with_openai_fake '{"stall_ms":10000}'
	serve_start --drain-timeout 0.2
	curl -s --max-time 5 "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini"}' >"$BATS_TEST_TMPDIR/out" &
	client=$!
	fake_wait_count 1
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	wait "$client" || true
	[ "$(json_get error.code <"$BATS_TEST_TMPDIR/out")" = overloaded ]
}

@test "--log-conversations records each /conversation in the log; off by default" {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	serve_start
	curl -s "$SERVE_URL/conversation" -d '{"model":"mock:echo","stream":false,"messages":[{"role":"user","content":"not logged"}]}' >/dev/null
	serve_stop
	[ "$(aichat history list --json)" = "[]" ]
	serve_start --log-conversations
	curl -s "$SERVE_URL/conversation" -d '{"model":"mock:echo","stream":false,"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"logged now"}]}' >/dev/null
	curl -sN "$SERVE_URL/conversation" -d '{"model":"mock:echo","messages":[{"role":"user","content":"streamed too"}]}' >/dev/null
	curl -s "$SERVE_URL/chat" -d '{"model":"mock:echo","prompt":"chat is not"}' >/dev/null
	serve_stop
	run aichat history list --json
	[ "$(echo "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ]
	id=$(aichat history search --json logged | json_get 0.id)
	run aichat history show --json "$id"
	[ "$(echo "$output" | json_get transcript.0.content)" = sys ]
	[ "$(echo "$output" | json_get transcript.3.content)" = "logged now" ]
	[ "$(echo "$output" | json_get transcript.4.role)" = assistant ]
	[ "$(echo "$output" | json_get transcript.4.content)" = "logged now" ]
}

# ---- rag ----

rag_setup() {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Kettles\nThe kettle boils water for tea in three minutes.\n' >"$BATS_TEST_TMPDIR/docs/kettle.md"
	printf '# Bicycles\nA bicycle chain needs oil every month.\n' >"$BATS_TEST_TMPDIR/docs/bike.md"
	aichat rag index -c home "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
}

@test "POST /rag/search ranks the passages of a collection" {
	rag_setup
	serve_start
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"how long does the kettle take","collection":"home","top_k":2}'
	[ "$(status_line)" = 200 ]
	[[ "$(echo "$output" | json_get results.0.path)" == *kettle.md ]]
	[ "$(echo "$output" | json_get results.0.n)" = 1 ]
	[ "$(echo "$output" | json_get results.0.lines)" = "[1,2]" ]
	echo "$output" | json_get retrieval_latency_ms
}

@test "POST /rag/query answers with numbered sources; streaming sends metadata first" {
	rag_setup
	serve_start
	run hcurl "$SERVE_URL/rag/query" -d '{"query":"bicycle chain oil","collection":"home","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[[ "$(echo "$output" | json_get sources.0.path)" == *bike.md ]]
	[[ "$(echo "$output" | json_get answer)" == *"[1]"*"bike.md"* ]]
	[ "$(echo "$output" | json_get model)" = mock:echo ]
	run hcurl -N "$SERVE_URL/rag/query" -d '{"query":"bicycle chain oil","collection":"home","model":"mock:echo","stream":true}'
	[ "$(status_line)" = 200 ]
	[[ "${lines[0]}" == "event: metadata" ]]
	[[ "${lines[1]}" == 'data: {"sources":[{"n":1,"path":"'*'bike.md"'* ]]
	[[ "$output" == *'data: {"content":'* ]]
	[[ "$output" == *'data: [DONE]' ]]
}

@test "rag routes: bad input gets a clear error and nothing is sent" {
	rag_setup
	with_openai_fake
	serve_start
	long=$(head -c 2001 /dev/zero | tr '\0' q)
	run hcurl "$SERVE_URL/rag/query" -d "{\"query\":\"$long\",\"collection\":\"home\",\"model\":\"openai:gpt-4o-mini\"}"
	[ "$(status_line)" = 422 ]
	[ "$(echo "$output" | json_get detail.0.loc)" = '["body","query"]' ]
	run hcurl "$SERVE_URL/rag/query" -d '{"query":"x","top_k":21,"collection":"home"}'
	[ "$(status_line)" = 422 ]
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"kettle","collection":"nope"}'
	[ "$(status_line)" = 404 ]
	[ "$(echo "$output" | json_get error.code)" = not_found ]
	run hcurl "$SERVE_URL/rag/search" -d "{\"query\":\"kettle\",\"collection\":\"x'; DROP TABLE chunks; --\"}"
	[ "$(status_line)" = 422 ]
	run hcurl "$SERVE_URL/rag/query" -d '{"query":"zebra giraffe","collection":"home","model":"openai:gpt-4o-mini"}'
	[ "$(status_line)" = 404 ]
	[ "$(fake_count)" -eq 0 ]
}

@test "rag routes: a search runs off the event loop, and a client that leaves cancels it" {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Kettles\nThe kettle boils water.\n' >"$BATS_TEST_TMPDIR/docs/k.md"
	aichat rag index -c home "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	# Every search takes 1.5 s more than it would (test hook).
	AICHAT_SEARCH_DELAY_MS=1500 serve_start --rag-search-timeout 0.5
	curl -sS -o "$BATS_TEST_TMPDIR/search.out" -w '%{http_code}' "$SERVE_URL/rag/search" \
		-d '{"query":"kettle","collection":"home"}' >"$BATS_TEST_TMPDIR/search.code" &
	local pid=$!
	sleep 0.2
	# Meanwhile the loop answers at once (as curl times it: its own
	# start-up, slow on a busy machine, left out).
	ms=$(curl -sS -m 4 -o /dev/null -w '%{http_code} %{time_total}' "$SERVE_URL/health" |
		awk '{ printf "%s %d\n", $1, $2 * 1000 }')
	[ "${ms% *}" = 200 ]
	[ "${ms#* }" -lt 500 ] || { echo "/health took ${ms#* } ms" >&2; return 1; }
	wait "$pid"
	# The delay is before the search: its own time limit is not spent.
	[ "$(cat "$BATS_TEST_TMPDIR/search.code")" = 200 ]
	[[ "$(json_get results.0.path <"$BATS_TEST_TMPDIR/search.out")" == *k.md ]]
	# A client that gives up: its search is dropped, serve carries on.
	run curl -s -m 0.3 "$SERVE_URL/rag/search" -H 'content-type: application/json' \
		-d '{"query":"kettle","collection":"home"}'
	[ "$status" -eq 28 ]
	sleep 1.6
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"water","collection":"home"}'
	[ "$(status_line)" = 200 ]
	grep -q '"path":"/rag/search","status":499,.*"error":"cancelled"' "$SERVE_LOG"
}

@test "rag routes: the search and the query's embedding each have a time limit" {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	run --separate-stderr aichat serve --rag-search-timeout 0
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: invalid value '0' for '--rag-search-timeout': must be >= 0.001" ]
	run --separate-stderr aichat serve --rag-embed-timeout abc
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: invalid value 'abc' for '--rag-embed-timeout': must be a number" ]
	mkdir -p "$BATS_TEST_TMPDIR/many" "$BATS_TEST_TMPDIR/docs"
	# 40,000 chunks that all hold "common": ranking them takes milliseconds.
	python3 -c 'print("".join("Common word %d here.\n\n" % i for i in range(40000)))' \
		>"$BATS_TEST_TMPDIR/many/many.md"
	aichat rag index -c many --chunk-size 100 --overlap 0 "$BATS_TEST_TMPDIR/many" >/dev/null 2>&1
	serve_start --rag-search-timeout 0.001
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"common","collection":"many"}'
	[ "$(status_line)" = 504 ]
	[[ $output == *"document search took longer than --rag-search-timeout"* ]]
	serve_stop
	serve_start
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"common","collection":"many"}'
	[ "$(status_line)" = 200 ]
	serve_stop
	# An embedding provider that stalls: BM25 alone once the limit passes.
	printf '# Kettles\nThe kettle boils water.\n' >"$BATS_TEST_TMPDIR/docs/k.md"
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	aichat rag index -c remote --embed-model openai:text-embedding-3-small "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	fake_start '{"stall_ms":20000}'
	export OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start --rag-embed-timeout 0.3
	start=$(date +%s%N)
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"kettle","collection":"remote"}'
	elapsed=$((($(date +%s%N) - start) / 1000000))
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get retrieval)" = bm25 ]
	[[ "$(echo "$output" | json_get warning)" == "searched with BM25 only: "* ]]
	[[ "$(echo "$output" | json_get results.0.path)" == *k.md ]]
	# 0.3 s, not the default 5 s (slack for a loaded machine)
	[ "$elapsed" -lt 3000 ]
}

@test "rag routes search hybrid when the collection has vectors, and fall back to BM25 saying why" {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Quokkas\nQuokkas live on Rottnest Island.\n' >"$BATS_TEST_TMPDIR/docs/q.md"
	printf '# Kettles\nThe kettle boils water.\n' >"$BATS_TEST_TMPDIR/docs/k.md"
	aichat rag index -c vec --embed-model mock:embed "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	serve_start
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"where do quokka live","collection":"vec"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get retrieval)" = hybrid ]
	[[ "$(echo "$output" | json_get results.0.path)" == *q.md ]]
	# A file indexed while serve runs is found at once: the vectors it
	# keeps in memory are read again when the collection's change.
	# ("wombat" is not a word of the file: only its vector can match.)
	printf '# Wombats\nWombats dig burrows.\n' >"$BATS_TEST_TMPDIR/docs/w.md"
	aichat rag index -c vec "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	run hcurl "$SERVE_URL/rag/search" -d '{"query":"wombat","collection":"vec"}'
	[ "$(status_line)" = 200 ]
	[[ "$(echo "$output" | json_get results.0.path)" == *w.md ]]
	serve_stop
	# a collection embedded through a provider that is now gone
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	aichat rag index -c remote --embed-model openai:text-embedding-3-small "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	fake_stop
	serve_start
	run hcurl "$SERVE_URL/rag/query" -d '{"query":"kettle water","collection":"remote","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get retrieval)" = bm25 ]
	[[ "$(echo "$output" | json_get warning)" == "searched with BM25 only: "* ]]
	[[ "$(echo "$output" | json_get sources.0.path)" == *k.md ]]
}
