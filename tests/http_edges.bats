#!/usr/bin/env bats
# aichat serve at the edges of HTTP: a chunked body past --max-body is
# refused while it arrives, and a client that hangs up behind a pipelined
# byte still cancels its upstream call.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

# chunked_flood PATH: sends POST PATH with a chunked body of up to 100 MB,
# 64 KiB chunks, reading as it goes; prints the bytes sent before the
# answer came (or all of them), the seconds taken, then the answer.
chunked_flood() {
	timeout 60 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
chunk = b"x" * 65536
frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
sent, out, t0 = 0, b"", time.time()
s.setblocking(False)
while sent < 100 * 1024 * 1024 and time.time() - t0 < 40 and b"\r\n\r\n" not in out:
    try:
        sent += s.send(frame)
    except BlockingIOError:
        time.sleep(0.005)
    except OSError:
        break
    try:
        d = s.recv(65536)
        if not d:
            break
        out += d
    except BlockingIOError:
        pass
    except OSError:
        break
s.setblocking(True)
s.settimeout(5)
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
print(sent)
print("%.2f" % (time.time() - t0))
sys.stdout.write(out.decode("latin-1"))
' "${SERVE_URL##*:}" "$1"
}

@test "a chunked body over --max-body is a JSON 413 as soon as it passes the bound, not after 100 MB" {
	fake_start
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start --max-body 100000
	run chunked_flood /v1/chat/completions
	[ "$status" -eq 0 ]
	echo "bytes sent before the answer: ${lines[0]} in ${lines[1]} s"
	# The bound plus what sockets buffer on the way: far from 100 MB.
	[ "${lines[0]}" -lt 8000000 ]
	[[ "${lines[2]}" == "HTTP/1.1 413 "* ]]
	grep -q $'^X-Request-ID: req_' <<<"$output"
	grep -qi $'^Connection: close' <<<"$output"
	body=$(tail -1 <<<"$output")
	[ "$(json_get error.code <<<"$body")" = payload_too_large ]
	[ "$(json_get error.message <<<"$body")" = "request body larger than 100000 bytes" ]
	grep -q '"path":"/v1/chat/completions","status":413,.*"error":"payload_too_large"' "$SERVE_LOG"
	[ "$(fake_count)" -eq 0 ]
	# The server is fine afterwards.
	run curl -sS --max-time 5 "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "a chunked body over --max-body on /chat is 413 in aichat's error shape" {
	serve_start --max-body 5000
	run chunked_flood /chat
	[ "${lines[0]}" -lt 8000000 ]
	[[ "${lines[2]}" == "HTTP/1.1 413 "* ]]
	[ "$(json_get error.code <<<"$(tail -1 <<<"$output")")" = payload_too_large ]
}

@test "a chunked body at exactly --max-body is accepted" {
	local body='{"prompt":"exactly the bound","model":"mock:echo"}'
	serve_start --max-body ${#body}
	run curl -sS --max-time 10 -H 'Transfer-Encoding: chunked' -d "$body" "$SERVE_URL/chat"
	[ "$(json_get content <<<"$output")" = "exactly the bound" ]
	run curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' -d "${body} " "$SERVE_URL/chat"
	[ "$output" = 413 ]
}

@test "a client that sends its request plus one pipelined byte, then hangs up, cancels the upstream call: 499, with its provider" {
	fake_start '{"stall_ms":8000}'
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start --timeout 6
	local body='{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
	run timeout 20 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = sys.argv[2].encode()
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body + b"G")
time.sleep(0.5)
s.close()
print("closed")
' "${SERVE_URL##*:}" "$body"
	[ "$output" = closed ]
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '"path":"/v1/chat/completions"' "$SERVE_LOG" && break
		sleep 0.1
	done
	cat "$SERVE_LOG"
	grep -q '"path":"/v1/chat/completions","status":499,' "$SERVE_LOG"
	grep -q '"provider":"openai"' "$SERVE_LOG"
	grep -q '"client_disconnected":true' "$SERVE_LOG"
	run ! grep -q '"status":504' "$SERVE_LOG"
	# Noticed long before --timeout (6 s) would have ended it: the client
	# hung up 0.5 s in.
	local ms=$(grep '"path":"/v1/chat/completions"' "$SERVE_LOG" | json_get duration_ms)
	[ "$ms" -lt 3000 ]
	[ "$(fake_count)" -eq 1 ]
}

@test "a streamed call cancelled by a client that hangs up logs its provider" {
	fake_start '{"delay_ms":1000}'
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start
	timeout 2 curl -sN -d '{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
		"$SERVE_URL/v1/chat/completions" >/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q '"path":"/v1/chat/completions"' "$SERVE_LOG" && break
		sleep 0.1
	done
	cat "$SERVE_LOG"
	grep -q '"path":"/v1/chat/completions","status":[0-9]*,.*"provider":"openai"' "$SERVE_LOG"
	grep -q '"client_disconnected":true' "$SERVE_LOG"
}

# pads N: N curl -H arguments of 80 bytes each, one per line
pads() {
	local i
	for ((i = 0; i < $1; i++)); do
		echo "-H"
		printf 'X-Pad-%03d: %s\n' "$i" "$(printf 'a%.0s' {1..68})"
	done
}

@test "80 headers are served; a head past 8 KiB is a JSON 431 with X-Request-ID, not MHD's HTML" {
	serve_start
	local -a h
	mapfile -t h < <(pads 80)
	run curl -sS --max-time 10 "${h[@]}" "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
	mapfile -t h < <(pads 105)
	run curl -sS --max-time 10 -D "$BATS_TEST_TMPDIR/h" "${h[@]}" "$SERVE_URL/health"
	[ "$(head -1 "$BATS_TEST_TMPDIR/h" | cut -d' ' -f2)" = 431 ]
	grep -qi '^Content-Type: application/json' "$BATS_TEST_TMPDIR/h"
	grep -qi '^X-Request-ID: req_' "$BATS_TEST_TMPDIR/h"
	[ "$(json_get error.code <<<"$output")" = request_header_too_large ]
	[ "$(json_get error.message <<<"$output")" = "request head larger than 8192 bytes" ]
}

@test "a request target past 8 KiB is a JSON 414 in the route's shape" {
	serve_start
	local q=$(head -c 9000 /dev/zero | tr '\0' a)
	run curl -sS --max-time 10 -D "$BATS_TEST_TMPDIR/h" "$SERVE_URL/v1/models?$q"
	[ "$(head -1 "$BATS_TEST_TMPDIR/h" | cut -d' ' -f2)" = 414 ]
	grep -qi '^X-Request-ID: ' "$BATS_TEST_TMPDIR/h"
	[ "$(json_get error.code <<<"$output")" = uri_too_long ]
	[ "$(json_get error.type <<<"$output")" = invalid_request_error ]
	q=$(head -c 8000 /dev/zero | tr '\0' a)
	run curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$SERVE_URL/health?$q"
	[ "$output" = 200 ]
}

@test "a head past 16 KiB or a malformed request gets the HTTP library's 431/400 and a close; serving goes on" {
	serve_start
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	run raw_http "GET /health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nX-Big: $big\\r\\n\\r\\n"
	[[ "${lines[0]}" == "HTTP/1.1 431 "* ]]
	[[ "$output" == *$'\r\nConnection: close\r\n'* ]]
	[[ "$output" != *TIMEOUT* ]]
	run raw_http "GET /health HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nBad Header\\r\\n\\r\\n"
	[[ "${lines[0]}" == "HTTP/1.1 400 "* ]]
	[[ "$output" != *TIMEOUT* ]]
	# A request line that is not HTTP: closed without an answer.
	run raw_http "GARBAGE\\r\\n\\r\\n"
	[[ "$output" != *TIMEOUT* ]]
	[[ "$output" != *"HTTP/1.1 200"* ]]
	run curl -sS --max-time 5 "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}
