#!/usr/bin/env bats
# Fault injection: upstreams that refuse, cut, stall, send garbage, HTML, a
# 10 MB line or storms of 429; clients that leave at every phase; a full or
# read-only disk.  Each gets its documented answer, nothing crashes, and the
# server's file descriptors and memory come back to where they were.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef
JSON='Content-Type: application/json'

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	serve_stop
	fake_stop
}

# Open descriptors of the server, and its resident memory in kB.
serve_fds() { ls "/proc/$SERVE_PID/fd" | wc -l; }
serve_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVE_PID/status"; }

# post PATH BODY [CURL ARGS...]: prints "STATUS BODY" of a POST to serve;
# the answer's headers are left in $BATS_TEST_TMPDIR/h.
post() {
	local path=$1 body=$2
	shift 2
	curl -sS -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/body" \
		-w '%{http_code}' -H "$JSON" \
		"$@" "$SERVE_URL$path" -d "$body"
	printf ' '
	cat "$BATS_TEST_TMPDIR/body"
}

# Waits up to ~4 s for the server to hold at most $1 descriptors.
wait_fds_at_most() {
	local i
	for ((i = 0; i < 80; i++)); do
		[ "$(serve_fds)" -le "$1" ] && return 0
		sleep 0.05
	done
	echo "descriptors: $(serve_fds), expected at most $1" >&2
	ls -l "/proc/$SERVE_PID/fd" >&2
	return 1
}

V1='{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi there"}]}'
V1S='{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi there"}]}'

# One request per upstream fault, non-streamed and streamed; each answer
# checked.  The script is rewritten before each so the fake sends it.
one_round() {
	local out big
	# garbage with 200
	fake_script '{"body":"not json at all","content_type":"application/json"}'
	out=$(post /v1/chat/completions "$V1")
	[ "${out%% *}" = 502 ]
	[[ "$out" == *'"type":"upstream_error"'* || "$out" == *'"error"'* ]]
	# an HTML page from a proxy, streamed: the client is told what came
	fake_script '{"body":"<html><head><title>502 Bad Gateway</title></head></html>","content_type":"text/html"}'
	out=$(post /v1/chat/completions "$V1S")
	[[ "$out" == *"text/html, not an event stream"* ]]
	[[ "$out" == *"502 Bad Gateway"* ]]
	# reset mid-stream: the deltas sent, then an error, never a [DONE]
	fake_script '{"deltas":["kept"," lost"," gone"],"cut_after_events":2,"close":true}'
	out=$(post /v1/chat/completions "$V1S")
	[[ "$out" == *'"content":"kept"'* ]]
	[[ "$out" == *'"error"'* ]]
	[[ "$out" != *'[DONE]'* ]]
	# a stall past --timeout: 504
	fake_script '{"stall_ms":5000}'
	out=$(post /v1/chat/completions "$V1")
	[ "${out%% *}" = 504 ]
	# a storm of 429 with Retry-After: retried, then 429 with Retry-After
	fake_script '{"status":429,"headers":{"Retry-After":"0.1"}}'
	out=$(post /v1/chat/completions "$V1")
	[ "${out%% *}" = 429 ]
	grep -qi '^retry-after: *[0-9]' "$BATS_TEST_TMPDIR/h"
	# a single event-stream line of 10 MB: refused with a clear error
	fake_script "$(cat "$BATS_TEST_TMPDIR/bigline.json")"
	out=$(post /v1/chat/completions "$V1S")
	[[ "$out" == *"line longer than"* ]]
}

@test "upstream faults: each gets its answer; descriptors and memory come back" {
	python3 -c 'import json; print(json.dumps({"events": [json.dumps({"x": "a" * 10000000})]}))' \
		>"$BATS_TEST_TMPDIR/bigline.json"
	with_openai_fake
	# One loop: each loop (--workers) keeps its own pool of upstream
	# connections, warmed by its first call, so with several the count
	# after the first round is no baseline.
	serve_start --workers 1 --timeout 1 --retries 2
	one_round
	fds=$(serve_fds)
	rss=$(serve_rss)
	for i in 1 2 3 4 5; do
		one_round
	done
	wait_fds_at_most "$fds"
	# Five more rounds hold no more memory than the first left (each
	# round moves 20 MB of big lines; 16 MB of slack for the allocator).
	[ "$(serve_rss)" -lt $((rss + 16384)) ]
	run curl -sS "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "an upstream that refuses connections: 502 naming the provider, fast" {
	# A port nothing listens on: the fake is started and stopped.
	fake_start
	port=$FAKE_PORT
	fake_stop
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="http://127.0.0.1:$port/v1"
	# One loop, as above: the baseline is the loop the request warmed.
	serve_start --workers 1 --retries 1
	post /v1/chat/completions "$V1" >/dev/null
	fds=$(serve_fds)
	start=$(date +%s%N)
	out=$(post /v1/chat/completions "$V1")
	[ "${out%% *}" = 502 ]
	[[ "$out" == *openai* ]]
	[ $(( ($(date +%s%N) - start) / 1000000 )) -lt 3000 ]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"openai"* ]]
	[ -z "$output" ]
	wait_fds_at_most "$fds"
}

@test "chat: an answer that is not an event stream says what came instead" {
	export OPENAI_API_KEY=$KEY
	with_openai_fake '{"body":"<html><head><title>Captive portal</title></head></html>","content_type":"text/html"}' \
		'{"body":{"error":{"message":"model is loading"}}}' \
		'{"body":""}'
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	[[ "$stderr" == *"openai answered text/html, not an event stream: HTML error page: Captive portal"* ]]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"not an event stream: model is loading"* ]]
	run --separate-stderr aichat chat -m openai:gpt-4o-mini hi
	[ "$status" -eq 4 ]
	[[ "$stderr" == *"empty body"* ]]
}

# A raw client: sends $2 (printf format) to the server, waits $3 s, leaves.
raw_client() {
	python3 - "$SERVE_URL" "$1" "$2" <<'PY'
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(float(sys.argv[3]))
try:
    s.recv(200)  # mid-stream: take a little, then leave
except Exception:
    pass
s.close()
PY
}

@test "clients that leave at every phase: server unharmed, upstream calls cancelled" {
	with_openai_fake '{"deltas":["a","b","c","d","e","f"],"delay_ms":300}'
	# One loop, whose warm-up is the baseline (see above).
	serve_start --workers 1
	# warm up, then count
	post /v1/chat/completions "$V1" >/dev/null
	fds=$(serve_fds)
	body=$V1S
	len=${#body}
	# in the request line, in the headers, in the body, after the body
	# (before the answer), and mid-stream
	raw_client 'POST /v1/chat/comp' 0.2
	raw_client 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty' 0.2
	raw_client "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: $len\r\n\r\n${body:0:20}" 0.2
	raw_client "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: $len\r\n\r\n$body" 0.05
	raw_client "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: $len\r\n\r\n$body" 0.8
	# The two that reached the upstream are cancelled there: no
	# connection from serve to the fake stays open.
	for i in $(seq 60); do
		[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ] && break
		sleep 0.05
	done
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ]
	wait_fds_at_most "$fds"
	# The three that sent a whole request head are logged as left.
	[ "$(grep -c '"client_disconnected":true' "$SERVE_LOG")" -eq 3 ]
	out=$(post /v1/chat/completions "$V1")
	[ "${out%% *}" = 200 ]
}

@test "a full disk: the answer is still printed, the failure to log said once" {
	command -v unshare >/dev/null
	home="$BATS_TEST_TMPDIR/full"
	mkdir -p "$home"
	run --separate-stderr unshare -m sh -c '
		mount -t tmpfs -o size=1m tmpfs "$1" || exit 99
		export AICHAT_HOME="$1"
		"$2" chat -m mock:echo "the first words" || exit 98
		dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null
		"$2" chat -m mock:echo "words on a full disk"
		echo "rc=$?"
		"$2" chat -c -m mock:echo "continued on a full disk"
		echo "rc=$?"
	' _ "$home" "$AICHAT_BIN"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "the first words" ]
	[ "${lines[1]}" = "words on a full disk" ]
	[ "${lines[2]}" = "rc=0" ]
	[ "${lines[3]}" = "continued on a full disk" ]
	[ "${lines[4]}" = "rc=0" ]
	[ "$(grep -c 'log this exchange' <<<"$stderr")" -eq 2 ]
	[[ "$stderr" == *"disk is full"* ]]
}

@test "a read-only AICHAT_HOME: history and -c still read it, answers are not lost" {
	command -v unshare >/dev/null
	export AICHAT_HOME="$BATS_TEST_TMPDIR/ro"
	mkdir -p "$AICHAT_HOME"
	run aichat chat -m mock:echo "remember the walrus"
	[ "$status" -eq 0 ]
	run --separate-stderr unshare -m sh -c '
		mount --bind "$AICHAT_HOME" "$AICHAT_HOME" &&
		mount -o remount,bind,ro "$AICHAT_HOME" || exit 99
		"$1" history || exit 97
		"$1" chat -c "and the carpenter" || exit 98
		"$1" rag index docs "$1" 2>&1 | head -1 >&2
	' _ "$AICHAT_BIN"
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *"remember the walrus"* ]]
	[ "${lines[1]}" = "and the carpenter" ]
	[[ "$stderr" == *"could not log this exchange"*"read-only file system"* ]]
	# Nothing was changed: one conversation, one exchange.
	run aichat history
	[ "${#lines[@]}" -eq 1 ]
}

@test "a second SIGTERM while streams drain stops the server at once, cleanly" {
	with_openai_fake '{"deltas":["a","b","c","d","e","f","g","h"],"delay_ms":400}'
	serve_start
	curl -sN "$SERVE_URL/v1/chat/completions" -H "$JSON" -d "$V1S" >"$BATS_TEST_TMPDIR/s1" &
	c1=$!
	curl -sN "$SERVE_URL/chat" -H "$JSON" \
		-d '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' >"$BATS_TEST_TMPDIR/s2" &
	c2=$!
	fake_wait_count 2
	pid=$SERVE_PID
	kill -TERM "$pid"
	for i in $(seq 100); do grep -q draining "$SERVE_LOG" && break; sleep 0.05; done
	grep -q draining "$SERVE_LOG"
	kill -TERM "$pid"
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	run ! kill -0 "$pid"
	status=0
	wait "$pid" || status=$?
	unset SERVE_PID
	# exit 0, not killed by SIGABRT (134) from the HTTP library
	[ "$status" -eq 0 ]
	grep -q 'aichat: stopped' "$SERVE_LOG"
	wait "$c1" || true
	wait "$c2" || true
	# both streams were cut, not finished: no [DONE]
	run ! grep -q '\[DONE\]' "$BATS_TEST_TMPDIR/s1" "$BATS_TEST_TMPDIR/s2"
}
