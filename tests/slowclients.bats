#!/usr/bin/env bats
# aichat serve against slow and half-gone clients (slowloris): a deadline
# for the whole request (--request-timeout), a cap per address
# (--max-connections-per-ip), and no connection left in CLOSE-WAIT after
# its client hung up mid-request.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

# trickle FAST SLOW: sends FAST at once, then SLOW one byte every 0.1 s, on one
# connection, reading as it goes; prints the seconds taken, then what the
# server answered, once it closes.  Python escapes (\r\n) are decoded (or "UNFINISHED" when all was sent
# without an answer).
trickle() {
	timeout 60 python3 -c '
import socket, sys, time
port = int(sys.argv[1])
def raw(a):
    return a.encode().decode("unicode_escape").encode("latin-1")
msg = raw(sys.argv[3])
t = time.time()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(raw(sys.argv[2]))
s.setblocking(False)
out, closed = b"", False
for b in msg:
    try:
        s.send(bytes([b]))
    except OSError:
        closed = True
        break
    time.sleep(0.1)
    try:
        d = s.recv(4096)
        if not d:
            closed = True
            break
        out += d
    except BlockingIOError:
        pass
    except OSError:
        closed = True
        break
if closed:
    s.setblocking(True)
    s.settimeout(2)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            out += d
    except OSError:
        pass
print("%.1f" % (time.time() - t))
print(out.decode("latin-1") if closed else "UNFINISHED")
' "${SERVE_URL##*:}" "$1" "$2"
}

@test "a request head trickled in under --client-timeout is cut at --request-timeout with a JSON 408" {
	serve_start --request-timeout 2 --client-timeout 30
	# 30 header lines: about 9 s at 0.1 s a byte, one byte at a time
	# keeps --client-timeout from ever firing.
	local head="POST /chat HTTP/1.1\r\nHost: localhost\r\n" i
	for ((i = 0; i < 30; i++)); do head+="X-Pad-$i: y\r\n"; done
	run trickle "" "$head\r\n"
	[ "$status" -eq 0 ]
	local secs=${lines[0]%.*}
	[ "$secs" -ge 1 ]
	[ "$secs" -lt 6 ]
	[[ "${lines[1]}" == "HTTP/1.1 408 Request Timeout"* ]]
	grep -q $'^X-Request-ID: req_' <<<"$output"
	body=$(tail -1 <<<"$output")
	[ "$(json_get error.code <<<"$body")" = request_timeout ]
	[ "$(json_get error.message <<<"$body")" = "request not received within 2 s (--request-timeout)" ]
	run curl -sS --max-time 5 "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "a body trickled in is cut at --request-timeout: 408, logged, nothing sent upstream" {
	fake_start
	serve_start --request-timeout 2 --client-timeout 30
	local body='{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"this body arrives one byte every tenth of a second"}]}'
	run trickle "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n" "$body"
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == "HTTP/1.1 408 Request Timeout"* ]]
	local secs=${lines[0]%.*}
	[ "$secs" -lt 6 ]
	for ((i = 0; i < 40; i++)); do
		grep -q '"status":408' "$SERVE_LOG" && break
		sleep 0.1
	done
	grep -q '"path":"/v1/chat/completions","status":408,.*"error":"request_timeout"' "$SERVE_LOG"

	[ "$(fake_count)" -eq 0 ]
}

@test "--request-timeout bounds receiving only: a stream longer than it runs to the end" {
	AICHAT_MOCK_DELAY_MS=400 serve_start --request-timeout 1
	run curl -sS -N --max-time 20 -H 'Content-Type: application/json' \
		-d '{"model":"mock:echo","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}' \
		"$SERVE_URL/v1/chat/completions"
	[ "$status" -eq 0 ]
	grep -q '"content":" six"' <<<"$output"
	grep -qx 'data: \[DONE\]' <<<"$output"
}

@test "a keep-alive connection serves a second request after the first took longer than --request-timeout" {
	AICHAT_MOCK_DELAY_MS=300 serve_start --request-timeout 1
	run curl -sS --max-time 20 -H 'Content-Type: application/json' \
		-d '{"model":"mock:echo","messages":[{"role":"user","content":"a b c d e f"}]}' \
		"$SERVE_URL/v1/chat/completions" --next -H 'Content-Type: application/json' \
		-d '{"model":"mock:echo","messages":[{"role":"user","content":"again"}]}' \
		"$SERVE_URL/v1/chat/completions"
	[ "$status" -eq 0 ]
	grep -q '"content":"a b c d e f"' <<<"$output"
	grep -q '"content":"again"' <<<"$output"
}

@test "--max-connections-per-ip: past the cap a connection is closed unanswered; under it, served" {
	serve_start --max-connections-per-ip 3
	run timeout 20 python3 -c '
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
# Answered once each, so every loop (--workers) has taken its held
# connections before the 4th comes: which of four racing connections a
# loop takes first is the kernel'"'"'s choice.
for h in held:
    h.settimeout(3)
    h.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    h.recv(1000)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
try:
    s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    print("4th:", repr(s.recv(100)))
except ConnectionResetError:
    print("4th: reset")
except socket.timeout:
    print("4th: hangs")
held.pop().close()
import time; time.sleep(0.5)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
print("after one left:", s.recv(100).split(b"\r\n")[0].decode())
' "${SERVE_URL##*:}"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "4th: b''" || "${lines[0]}" == "4th: reset" ]]
	[ "${lines[1]}" = "after one left: HTTP/1.1 200 OK" ]
}

@test "--max-connections-per-ip 0 means no cap" {
	serve_start --max-connections-per-ip 0 --max-connections 50
	run timeout 20 python3 -c '
import socket, sys
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(3)
s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
' "${SERVE_URL##*:}"
	[ "$output" = "HTTP/1.1 200 OK" ]
}

@test "clients that send half a request and close leave no socket in CLOSE-WAIT" {
	serve_start --client-timeout 120 --request-timeout 120
	local port=${SERVE_URL##*:} n i
	run timeout 120 python3 -c '
import socket, sys
port = int(sys.argv[1])
for i in range(2000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /chat HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"pro" if i % 2 else b"GET /heal")
    s.close()
print("done")
' "$port"
	[ "$output" = done ]
	# Both timeouts are 2 minutes: only noticing the FIN frees them.
	for ((i = 0; i < 100; i++)); do
		n=$(ss -Htanp state close-wait | grep -c "pid=$SERVE_PID," || true)
		[ "$n" -eq 0 ] && break
		sleep 0.1
	done
	echo "CLOSE-WAIT sockets left: $n"
	[ "$n" -eq 0 ]
	run curl -sS --max-time 5 "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "a request sent whole with its FIN (half-close) is still answered" {
	serve_start
	run timeout 20 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
s.shutdown(socket.SHUT_WR)
s.settimeout(5)
out = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        out += d
except OSError:
    pass
print(out.split(b"\r\n")[0].decode())
' "${SERVE_URL##*:}"
	[ "$output" = "HTTP/1.1 200 OK" ]
}

@test "--request-timeout and --max-connections-per-ip: bad values are usage errors" {
	run -2 aichat serve --request-timeout 0
	[ "$output" = "aichat: serve: invalid value '0' for '--request-timeout': must be >= 0.5" ]
	run -2 aichat serve --request-timeout 3601
	[ "$output" = "aichat: serve: invalid value '3601' for '--request-timeout': must be <= 3600" ]
	run -2 aichat serve --max-connections-per-ip -1
	[ "$output" = "aichat: serve: invalid value '-1' for '--max-connections-per-ip': must be >= 0" ]
}
