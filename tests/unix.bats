#!/usr/bin/env bats
# aichat serve --unix PATH: the same server on a unix-domain socket, for
# local apps; alone, or beside the TCP port.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	# Short: sun_path holds 107 bytes, and BATS_TEST_TMPDIR can be long.
	SOCKDIR=$(mktemp -d /tmp/aichat-unix.XXXXXX)
	SOCK=$SOCKDIR/aichat.sock
}

teardown() {
	serve_stop
	unix_stop
	rm -rf "$SOCKDIR"
}

# unix_start ARGS...: starts `aichat serve ARGS` in the background and waits
# (up to ~5 s) for its "listening on unix:" line; exports UNIX_PID and
# UNIX_LOG.
unix_start() {
	local i
	export UNIX_LOG="$BATS_TEST_TMPDIR/unix.log"
	: >"$UNIX_LOG"
	"$AICHAT_BIN" serve "$@" </dev/null >/dev/null 2>"$UNIX_LOG" 3>&- &
	export UNIX_PID=$!
	for ((i = 0; i < 100; i++)); do
		grep -q 'listening on unix:' "$UNIX_LOG" && return 0
		if ! kill -0 "$UNIX_PID" 2>/dev/null; then
			echo "unix_start: aichat serve exited:" >&2
			cat "$UNIX_LOG" >&2
			unset UNIX_PID
			return 1
		fi
		sleep 0.05
	done
	echo "unix_start: not listening after 5 s" >&2
	return 1
}

# unix_stop: SIGTERM to UNIX_PID, waits for it (SIGKILL after ~5 s) and
# sets UNIX_STATUS.
unix_stop() {
	local pid=${UNIX_PID:-}
	[ -n "$pid" ] || return 0
	unset UNIX_PID
	stop_pid "$pid"
	UNIX_STATUS=$STOPPED_STATUS
}

ucurl() {
	curl -sS --max-time 10 --unix-socket "$SOCK" "$@"
}

chat_body='{"model":"mock:echo","messages":[{"role":"user","content":"over the socket"}]}'
stream_body='{"model":"mock:echo","stream":true,"messages":[{"role":"user","content":"over the socket"}]}'

@test "--unix alone: /health and /v1/chat/completions, streamed and not, over the socket, and no TCP port" {
	unix_start --unix "$SOCK"
	run ucurl http://localhost/health
	[ "$status" -eq 0 ]
	[ "$output" = '{"status":"ok"}' ]
	run ucurl -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$status" -eq 0 ]
	[ "$(json_get choices.0.message.content <<<"$output")" = "over the socket" ]
	run ucurl -N -H 'Content-Type: application/json' -d "$stream_body" http://localhost/v1/chat/completions
	[ "$status" -eq 0 ]
	grep -q '"content":"over"' <<<"$output"
	[ "$(tail -1 <<<"$output")" = "data: [DONE]" ]
	# No TCP listener: no "http://" line, and no socket of the pid in ss.
	run ! grep -q 'listening on http://' "$UNIX_LOG"
	run ss -Htlnp
	run ! grep -q "pid=$UNIX_PID," <<<"$output"
	# The log names the client "unix".
	grep -q '"path":"/health","status":200,.*"client":"unix"' "$UNIX_LOG"
}

@test "--unix: the socket is created mode 0600 and removed on SIGTERM" {
	unix_start --unix "$SOCK"
	[ -S "$SOCK" ]
	[ "$(stat -c %a "$SOCK")" = 600 ]
	unix_stop
	[ "$UNIX_STATUS" -eq 0 ]
	[ ! -e "$SOCK" ]
	grep -q 'aichat: stopped' "$UNIX_LOG"
}

@test "--unix: the socket is removed when SIGTERM arrives during a request, and the request still finishes" {
	AICHAT_MOCK_DELAY_MS=200 unix_start --unix "$SOCK"
	ucurl -N -H 'Content-Type: application/json' -d "$stream_body" \
		http://localhost/v1/chat/completions >"$BATS_TEST_TMPDIR/out" &
	local cpid=$! i
	for ((i = 0; i < 100; i++)); do
		grep -q '"role":"assistant"' "$BATS_TEST_TMPDIR/out" 2>/dev/null && break
		sleep 0.05
	done
	kill -TERM "$UNIX_PID"
	for ((i = 0; i < 100; i++)); do
		[ -e "$SOCK" ] || break
		sleep 0.05
	done
	# Gone while draining: a new client is refused at once.
	[ ! -e "$SOCK" ]
	wait "$cpid"
	grep -qx "data: \[DONE\]" "$BATS_TEST_TMPDIR/out"
	unix_stop
	[ "$UNIX_STATUS" -eq 0 ]
}

@test "--unix: a stale socket file (nobody listening) is replaced" {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.close()' "$SOCK"
	[ -S "$SOCK" ]
	unix_start --unix "$SOCK"
	run ucurl http://localhost/health
	[ "$status" -eq 0 ]
	[ "$output" = '{"status":"ok"}' ]
	[ "$(stat -c %a "$SOCK")" = 600 ]
}

@test "--unix: a path that is not a socket is refused, exit 2, the file untouched" {
	echo "precious data" >"$SOCK"
	chmod 644 "$SOCK"
	run -2 aichat serve --unix "$SOCK"
	[ "$output" = "aichat: serve: refusing to listen on '$SOCK': it exists and is not a socket" ]
	[ "$(cat "$SOCK")" = "precious data" ]
	[ "$(stat -c %a "$SOCK")" = 644 ]
	mkdir "$SOCKDIR/dir"
	run -2 aichat serve --unix "$SOCKDIR/dir"
	[ "$output" = "aichat: serve: refusing to listen on '$SOCKDIR/dir': it exists and is not a socket" ]
	[ -d "$SOCKDIR/dir" ]
}

@test "--unix: a socket another server listens on is refused, exit 2, and that server keeps serving" {
	unix_start --unix "$SOCK"
	run -2 aichat serve --unix "$SOCK"
	[ "$output" = "aichat: serve: refusing to listen on '$SOCK': another server is listening on it" ]
	[ -S "$SOCK" ]
	run ucurl http://localhost/health
	[ "$output" = '{"status":"ok"}' ]
}

@test "--unix: a path longer than a socket address holds is a usage error" {
	local long=$SOCKDIR/$(printf 'x%.0s' {1..120})
	run -2 aichat serve --unix "$long"
	[[ "$output" == "aichat: serve: invalid value '"*"' for '--unix': must be a path of 1..107 bytes" ]]
	[ ! -e "$long" ]
}

@test "--unix with --port: TCP and the socket at once, one server" {
	serve_start --unix "$SOCK"
	[ -S "$SOCK" ]
	grep -q "listening on unix:$SOCK" "$SERVE_LOG"
	run curl -sS --max-time 10 "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
	run ucurl -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$(json_get choices.0.message.content <<<"$output")" = "over the socket" ]
	run curl -sS --max-time 10 -H 'Content-Type: application/json' -d "$chat_body" "$SERVE_URL/v1/chat/completions"
	[ "$(json_get choices.0.message.content <<<"$output")" = "over the socket" ]
	grep -q '"client":"unix"' "$SERVE_LOG"
	grep -q '"client":"127.0.0.1"' "$SERVE_LOG"
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	[ ! -e "$SOCK" ]
}

@test "--unix: API keys and the rate limit hold over the socket (clients keyed 'unix')" {
	unix_start --unix "$SOCK" --api-key sekrit-key --rate-limit 2/minute
	run ucurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$output" = 401 ]
	run ucurl -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekrit-key' -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$output" = 200 ]
	# The failed key spent one of the address's two tokens: the next
	# keyless request is the third from "unix".
	run ucurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$output" = 401 ]
	run ucurl -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$chat_body" http://localhost/v1/chat/completions
	[ "$output" = 429 ]
	grep -q '"status":429,.*"client":"unix"' "$UNIX_LOG"
}

@test "--unix: --max-connections-per-ip does not count the socket's clients" {
	unix_start --unix "$SOCK" --max-connections-per-ip 1
	run timeout 10 python3 -c '
import socket, sys
held = []
for i in range(3):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
s = held[-1]
s.settimeout(5)
s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
print(s.recv(200).split(b"\r\n")[0].decode())
' "$SOCK"
	[ "$output" = "HTTP/1.1 200 OK" ]
}
