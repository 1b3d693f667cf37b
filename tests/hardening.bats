#!/usr/bin/env bats
# aichat serve under hostile or careless clients and operators: connection
# limits that must heal, request smuggling, failed keys that must cost,
# keys that must not be empty or approximate, HEAD.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

# curl with the response headers in $BATS_TEST_TMPDIR/h
hcurl() {
	curl -sS --max-time 5 -D "$BATS_TEST_TMPDIR/h" "$@"
}

# ---- the connection limit ----

@test "--max-connections reached, then the connections time out: the server accepts again" {
	serve_start --max-connections 10 --client-timeout 2
	run timeout 20 python3 -c '
import socket, sys, time
port = int(sys.argv[1])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
time.sleep(5)
# The server has dropped the idle ones by now.
for s in idle:
    s.settimeout(1)
    try:
        gone = s.recv(1) == b""
    except (socket.timeout, ConnectionResetError) as e:
        gone = isinstance(e, ConnectionResetError)
    print("idle closed" if gone else "idle open")
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
try:
    print(s.recv(100).split(b"\r\n")[0].decode())
except socket.timeout:
    print("no answer")
' "${SERVE_URL##*:}"
	[ "$status" -eq 0 ]
	[ "$(grep -c 'idle closed' <<<"$output")" -eq 10 ]
	[ "${lines[10]}" = "HTTP/1.1 200 OK" ]
	run hcurl "$SERVE_URL/health"
	[ "$(status_line)" = 200 ]
}

# ---- request smuggling ----

@test "Content-Length with Transfer-Encoding: one 400, the connection closed, nothing smuggled" {
	serve_start
	smuggled='GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'
	run raw_http 'POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'"$smuggled"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^HTTP/1.1 ' <<<"$output")" -eq 1 ]
	[[ "${lines[0]}" == "HTTP/1.1 400 "* ]]
	[[ "$output" == *'"code":"invalid_request"'* ]]
	[[ "$output" == *'Content-Length and Transfer-Encoding'* ]]
	[[ "$output" != *TIMEOUT ]]
	grep -q '"path":"/chat","status":400' "$SERVE_LOG"
	run ! grep -q '"path":"/health"' "$SERVE_LOG"
}

@test "Content-Length with Transfer-Encoding on /v1: 400 in OpenAI's shape" {
	serve_start
	run raw_http 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'
	[ "$status" -eq 0 ]
	[ "$(grep -c '^HTTP/1.1 ' <<<"$output")" -eq 1 ]
	[[ "${lines[0]}" == "HTTP/1.1 400 "* ]]
	[[ "$output" == *'"type":"invalid_request_error"'* ]]
	[[ "$output" != *TIMEOUT ]]
}

@test "Transfer-Encoding alone and Content-Length alone are still served" {
	serve_start
	run raw_http 'POST /chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n23\r\n{"prompt":"hi","model":"mock:echo"}\r\n0\r\n\r\n'
	[[ "${lines[0]}" == "HTTP/1.1 200 "* ]]
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"hi","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
}

# ---- failed keys count against the rate limit ----

@test "rate limit: wrong keys spend the address's budget: 401, 401, then 429" {
	serve_start --api-key k-right --rate-limit 2/minute
	for i in 1 2; do
		run hcurl "$SERVE_URL/chat" -H 'X-API-Key: k-wrong' -d '{"prompt":"x","model":"mock:echo"}'
		[ "$(status_line)" = 401 ]
	done
	run hcurl "$SERVE_URL/chat" -H 'X-API-Key: k-wrong' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 429 ]
	[ "$(echo "$output" | json_get error.code)" = rate_limited ]
	[ "$(hdr Retry-After)" -ge 1 ]
	run hcurl "$SERVE_URL/chat" -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 429 ]
	# The right key has its own budget.
	run hcurl "$SERVE_URL/chat" -H 'X-API-Key: k-right' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	grep -q '"status":429,.*"client":"127.0.0.1"' "$SERVE_LOG"
}

# ---- empty and approximate keys ----

@test "--api-key '' is a usage error, not an open server" {
	run --separate-stderr timeout 5 "$AICHAT_BIN" serve --port 0 --api-key ''
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: invalid value '' for '--api-key': must not be empty" ]
	run --separate-stderr timeout 5 "$AICHAT_BIN" serve --port 0 --api-key k-ok --api-key ' '
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: invalid value ' ' for '--api-key': must not be empty" ]
}

@test "AICHAT_API_KEYS with an empty key is a usage error" {
	for v in ',,' 'k-ok,' ' '; do
		AICHAT_API_KEYS=$v run --separate-stderr timeout 5 "$AICHAT_BIN" serve --port 0
		[ "$status" -eq 2 ]
		[ "$stderr" = "aichat: serve: invalid value for 'AICHAT_API_KEYS': a key is empty (keys are comma-separated)" ]
	done
}

@test "an --api-key-file without a key is a usage error" {
	printf '# keys\n\n   \n' >"$BATS_TEST_TMPDIR/keys"
	run --separate-stderr timeout 5 "$AICHAT_BIN" serve --port 0 --api-key-file "$BATS_TEST_TMPDIR/keys"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: API key file '$BATS_TEST_TMPDIR/keys' holds no key" ]
}

@test "API keys: one byte short, one byte long and empty are refused, in both headers" {
	serve_start --api-key k-secret
	for k in k-secre k-secret1 k-secreT; do
		run hcurl "$SERVE_URL/chat" -H "Authorization: Bearer $k" -d '{"prompt":"x","model":"mock:echo"}'
		[ "$(status_line)" = 401 ]
		run hcurl "$SERVE_URL/chat" -H "X-API-Key: $k" -d '{"prompt":"x","model":"mock:echo"}'
		[ "$(status_line)" = 401 ]
	done
	run hcurl "$SERVE_URL/chat" -H 'Authorization: Bearer ' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 401 ]
	run hcurl "$SERVE_URL/chat" -H 'X-API-Key;' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 401 ]
	[ "$(echo "$output" | json_get error.message)" = "invalid API key" ]
	run hcurl "$SERVE_URL/chat" -H 'Authorization: Bearer k-secret' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	run hcurl "$SERVE_URL/chat" -H 'X-API-Key: k-secret' -d '{"prompt":"x","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
}

# ---- body limits and draining ----

@test "a chunked body over --max-body is a 413, like one with Content-Length" {
	serve_start --max-body 100
	python3 -c 'import json; print(json.dumps({"prompt": "x" * 200, "model": "mock:echo"}))' >"$BATS_TEST_TMPDIR/big"
	run hcurl "$SERVE_URL/chat" -H 'Transfer-Encoding: chunked' --data-binary @"$BATS_TEST_TMPDIR/big"
	[ "$(status_line)" = 413 ]
	[ "$(echo "$output" | json_get error.code)" = payload_too_large ]
	# the same route still answers a small chunked body
	run hcurl "$SERVE_URL/chat" -H 'Transfer-Encoding: chunked' -d '{"prompt":"small","model":"mock:echo"}'
	[ "$(status_line)" = 200 ]
	[ "$(echo "$output" | json_get content)" = small ]
}

@test "while draining, a request on an already-open keep-alive connection gets 503" {
	fake_start '{"deltas":["1","2","3","4","5","6","7","8","9","10","11","12"],"delay_ms":300}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	serve_start
	# a second client: one request on a kept-alive connection, then a
	# second one on it once the server drains
	timeout 60 python3 -c '
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
def ask(req):
    s.sendall(req)
    out = b""
    while b"\r\n\r\n" not in out:
        d = s.recv(65536)
        if not d:
            sys.exit("closed after %r" % out)
        out += d
    head, body = out.split(b"\r\n\r\n", 1)
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            sys.exit("closed after %r" % body)
        body += d
    return (head + b"\r\n\r\n" + body).decode()
print(ask(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").split("\r\n")[0], flush=True)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
body = b"{\"prompt\":\"late\",\"model\":\"mock:echo\"}"
print(ask(b"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)), flush=True)
' "${SERVE_URL##*:}" "$BATS_TEST_TMPDIR/ready" "$BATS_TEST_TMPDIR/go" >"$BATS_TEST_TMPDIR/ka" 2>&1 &
	ka=$!
	for i in $(seq 400); do [ -e "$BATS_TEST_TMPDIR/ready" ] && break; sleep 0.05; done
	[ -e "$BATS_TEST_TMPDIR/ready" ]
	# a stream in flight keeps the server draining for a few seconds
	curl -sN "$SERVE_URL/chat" -d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' >"$BATS_TEST_TMPDIR/stream" &
	client=$!
	fake_wait_count 1
	kill -TERM "$SERVE_PID"
	for i in $(seq 100); do grep -q draining "$SERVE_LOG" && break; sleep 0.05; done
	grep -q "draining" "$SERVE_LOG"
	touch "$BATS_TEST_TMPDIR/go"
	wait "$ka" || { cat "$BATS_TEST_TMPDIR/ka" "$SERVE_LOG" >&2; false; }
	run cat "$BATS_TEST_TMPDIR/ka"
	[ "${lines[0]}" = "HTTP/1.1 200 OK" ]
	[[ "${lines[1]}" == "HTTP/1.1 503 "* ]]
	[[ "$output" == *"Retry-After: 5"* ]]
	[[ "$output" == *'"server is shutting down"'* ]]
	# the stream in flight still completes
	wait "$client"
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/stream"
	[ "$(fake_count)" -eq 1 ]
}

# ---- HEAD ----

@test "HEAD on a GET route answers like GET, without a body" {
	serve_start
	run curl -sS --max-time 5 -I "$SERVE_URL/health"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]]
	[[ "$output" == *"Content-Type: application/json"* ]]
	run raw_http 'HEAD /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
	[[ "${lines[0]}" == "HTTP/1.1 200 "* ]]
	# GET's headers (its Content-Length too), then nothing.
	[[ "$output" == *$'\r\nContent-Length: 15\r'* ]]
	[[ "$output" != *'"status"'* ]]
	[[ "$output" != *TIMEOUT ]]
	run curl -sS --max-time 5 -I "$SERVE_URL/openapi.json"
	[[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]]
	# A POST-only route stays a 405.
	run curl -sS --max-time 5 -I "$SERVE_URL/chat"
	[[ "${lines[0]}" == "HTTP/1.1 405 "* ]]
}
