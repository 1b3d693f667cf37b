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
}

# curl with the response headers in $BATS_TEST_TMPDIR/h
hcurl() {
	curl -sS --max-time 5 -D "$BATS_TEST_TMPDIR/h" "$@"
}

hdr() {
	grep -i "^$1:" "$BATS_TEST_TMPDIR/h" | head -1 | cut -d' ' -f2- | tr -d '\r'
}

status_line() {
	head -1 "$BATS_TEST_TMPDIR/h" | cut -d' ' -f2
}

# raw_http BYTES: sends BYTES (Python escapes allowed) to the server on one
# connection and prints all it answers until it closes, or "TIMEOUT" when
# it is still open after 3 s.
raw_http() {
	timeout 10 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(3)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    out += b"TIMEOUT"
except ConnectionResetError:
    pass
sys.stdout.write(out.decode("latin-1"))
' "${SERVE_URL##*:}" "$1"
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
