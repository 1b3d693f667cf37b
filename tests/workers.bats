#!/usr/bin/env bats
# aichat serve --workers N: N event loops that a client sees as one server.
# Limits, /metrics and jobs do not depend on which loop took a connection;
# aichat_worker_connections_total shows that both loops took some.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home/aichat"
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	serve_stop
	fake_stop
}

# worker_conns N: connections worker N has accepted, from /metrics.
worker_conns() {
	curl -s -H "${METRICS_AUTH:-X-None: 1}" "$SERVE_URL/metrics" |
		sed -n "s/^aichat_worker_connections_total{worker=\"$1\"} //p"
}

# both_workers_used MIN: each of the two workers took at least MIN
# connections.
both_workers_used() {
	local w0 w1
	w0=$(worker_conns 0)
	w1=$(worker_conns 1)
	echo "worker 0: $w0, worker 1: $w1" >&2
	[ "${w0:-0}" -ge "$1" ]
	[ "${w1:-0}" -ge "$1" ]
}

@test "--workers: bad values are usage errors naming the option; nothing starts" {
	fake_start
	for v in 0 -1 abc 1000 65 1.5 ''; do
		run -2 aichat serve --port 0 --workers "$v"
		[[ "$output" = "aichat: serve: invalid value '$v' for '--workers': "* ]]
		[[ "$output" != *listening* ]]
	done
	run -2 aichat serve --port 0 --workers 0
	[ "$output" = "aichat: serve: invalid value '0' for '--workers': must be >= 1" ]
	run -2 aichat serve --port 0 --workers 1000
	[ "$output" = "aichat: serve: invalid value '1000' for '--workers': must be <= 64" ]
	run -2 aichat serve --port 0 --workers abc
	[ "$output" = "aichat: serve: invalid value 'abc' for '--workers': must be an integer" ]
	for v in 0 abc 65 -1; do
		AICHAT_WORKERS=$v run -2 aichat serve --port 0
		[ "$output" = "aichat: serve: invalid value '$v' for 'AICHAT_WORKERS': must be an integer, 1..64" ]
	done
	[ "$(fake_count)" -eq 0 ]
}

@test "--workers 64 and 1 are accepted; --workers wins over AICHAT_WORKERS" {
	serve_start --workers 64
	run curl -s "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	AICHAT_WORKERS=abc serve_start --workers 1
	run curl -s "$SERVE_URL/health"
	[ "$output" = '{"status":"ok"}' ]
}

@test "--workers 2: a rate limit of 5/minute allows exactly 5 of 40 requests over 40 connections" {
	# Two keys: the limit is key:1's; /metrics is read with key:2's.
	serve_start --workers 2 --rate-limit 5/minute -m mock:echo --api-key "$KEY" --api-key sk-other-key-0123456789
	for i in $(seq 40); do
		curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $KEY" \
			"$SERVE_URL/chat" -d '{"prompt":"hi"}'
	done >"$BATS_TEST_TMPDIR/codes"
	[ "$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes")" -eq 5 ]
	[ "$(grep -c '^429$' "$BATS_TEST_TMPDIR/codes")" -eq 35 ]
	METRICS_AUTH="Authorization: Bearer sk-other-key-0123456789" both_workers_used 10
}

@test "--workers 2 --max-upstream 3: never a fourth upstream call at once; all 16 answered" {
	with_openai_fake '{"stall_ms":300,"done_before_reply":true}'
	serve_start --workers 2 --max-upstream 3
	pids=()
	for i in $(seq 16); do
		curl -s -o "$BATS_TEST_TMPDIR/out.$i" -w '%{http_code}\n' "$SERVE_URL/v1/chat/completions" \
			-d "{\"model\":\"openai:gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"m$i\"}]}" \
			>"$BATS_TEST_TMPDIR/code.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	[ "$(cat "$BATS_TEST_TMPDIR"/code.* | grep -c '^200$')" -eq 16 ]
	[ "$(fake_count)" -eq 16 ]
	echo "peak: $(fake_peak)" >&2
	[ "$(fake_peak)" -eq 3 ]
	both_workers_used 2
}

@test "--workers 2: GET /v1/models is listed once for both workers; askers during the listing share it" {
	fake_start '{"models":["gpt-4o-mini"],"stall_ms":400}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1" AICHAT_OLLAMA_PROBE=off
	serve_start --workers 2
	pids=()
	for i in $(seq 12); do
		curl -sS -o "$BATS_TEST_TMPDIR/list.$i" "$SERVE_URL/v1/models" &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq 12) ; do
		curl -sS -o "$BATS_TEST_TMPDIR/list.again.$i" "$SERVE_URL/v1/models"
	done
	for f in "$BATS_TEST_TMPDIR"/list.*; do
		grep -q '"id":"openai:gpt-4o-mini"' "$f" || { cat "$f"; return 1; }
	done
	[ "$(fake_count)" -eq 1 ]
	both_workers_used 4
}

@test "--workers 2: jobs submitted on either worker each run once" {
	with_openai_fake
	serve_start --workers 2
	ids=()
	for j in 1 2 3 4 5 6; do
		body="{\"model\":\"openai:gpt-4o-mini\",\"items\":[{\"id\":\"a\",\"prompt\":\"j${j}a\"},{\"id\":\"b\",\"prompt\":\"j${j}b\"}]}"
		ids+=("$(curl -sS "$SERVE_URL/jobs" -d "$body" | json_get id)")
	done
	for id in "${ids[@]}"; do
		[[ "$id" =~ ^job_[0-9a-f]{16}$ ]]
		for i in $(seq 200); do
			[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get status)" = done ] && break
			sleep 0.05
		done
		[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get status)" = done ]
		run curl -sS "$SERVE_URL/jobs/$id/results"
		[ "${#lines[@]}" -eq 2 ]
	done
	[ "$(fake_count)" -eq 12 ]
	for i in $(seq 12); do fake_field "$i" body.messages.0.content; done | sort >"$BATS_TEST_TMPDIR/seen"
	for j in 1 2 3 4 5 6; do printf 'j%sa\nj%sb\n' "$j" "$j"; done | sort >"$BATS_TEST_TMPDIR/want"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/seen"
	both_workers_used 3
}

@test "--workers 2: a job resumes after a restart and runs each item once" {
	with_openai_fake '{"stall_ms":400}'
	serve_start --workers 2 --max-upstream 1
	body='{"model":"openai:gpt-4o-mini","items":[{"id":"a","prompt":"r1"},{"id":"b","prompt":"r2"},{"id":"c","prompt":"r3"},{"id":"d","prompt":"r4"}]}'
	id=$(curl -sS "$SERVE_URL/jobs" -d "$body" | json_get id)
	fake_wait_count 1
	serve_stop
	before=$(fake_count)
	fake_script
	serve_start --workers 2
	for i in $(seq 200); do
		[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get status)" = done ] && break
		sleep 0.05
	done
	[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get counts.succeeded)" = 4 ]
	run curl -sS "$SERVE_URL/jobs/$id/results"
	[ "${#lines[@]}" -eq 4 ]
	# Items cut by the stop may run again; a finished one never does.
	[ "$(fake_count)" -le $((4 + before)) ]
	for p in r1 r2 r3 r4; do
		n=$(for i in $(seq "$(fake_count)"); do fake_field "$i" body.messages.0.content; done | grep -c "^$p\$")
		[ "$n" -ge 1 ]
	done
}

@test "--workers 2: /metrics request totals equal the requests sent" {
	serve_start --workers 2 -m mock:echo
	for i in $(seq 30); do
		curl -s -o /dev/null "$SERVE_URL/chat" -d '{"prompt":"hi"}'
	done
	for i in $(seq 7); do
		curl -s -o /dev/null "$SERVE_URL/chat" -d '{"prompt":""}'
	done
	run curl -s "$SERVE_URL/metrics"
	echo "$output" | grep -qx 'aichat_http_requests_total{route="/chat",method="POST",status="200"} 30'
	echo "$output" | grep -qx 'aichat_http_requests_total{route="/chat",method="POST",status="422"} 7'
	echo "$output" | grep -qx 'aichat_validation_failures_total{route="/chat"} 7'
	# 37 requests and this scrape, each on its own connection.
	w0=$(echo "$output" | sed -n 's/^aichat_worker_connections_total{worker="0"} //p')
	w1=$(echo "$output" | sed -n 's/^aichat_worker_connections_total{worker="1"} //p')
	[ $((w0 + w1)) -eq 38 ]
	[ "$w0" -ge 3 ]
	[ "$w1" -ge 3 ]
}

@test "--workers 2: SIGTERM during 200 streams over both workers: all 200 finish whole, then exit 0" {
	with_openai_fake '{"deltas":["one"," two"," three"," four"],"delay_ms":400}'
	serve_start --workers 2 --max-connections-per-ip 0
	python3 - "$SERVE_URL" "$BATS_TEST_TMPDIR/streams" <<'EOF' &
import http.client, sys, threading, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
ok = []
def one(i):
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("POST", "/chat", '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}',
                  {"Content-Type": "application/json"})
        body = c.getresponse().read().decode()
        ok.append('data: {"content":" four"}' in body and "data: [DONE]" in body)
    except Exception as e:
        ok.append(False)
ts = [threading.Thread(target=one, args=(i,)) for i in range(200)]
for t in ts: t.start()
for t in ts: t.join()
open(sys.argv[2], "w").write("%d %d\n" % (len(ok), sum(ok)))
EOF
	client=$!
	fake_wait_count 200 20
	both_workers_used 40
	kill -TERM "$SERVE_PID"
	wait "$client"
	[ "$(cat "$BATS_TEST_TMPDIR/streams")" = "200 200" ]
	for i in $(seq 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.05; done
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	grep -q 'draining [0-9]* requests' "$SERVE_LOG"
	grep -q 'aichat: stopped' "$SERVE_LOG"
}

@test "--workers 2: --max-connections-per-ip counts over both workers" {
	serve_start --workers 2 --max-connections-per-ip 3
	python3 - "$SERVE_URL" <<'EOF'
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
socks = [socket.create_connection((u.hostname, u.port)) for _ in range(8)]
time.sleep(0.3)
open_ = 0
for s in socks:
    s.settimeout(1)
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        if s.recv(100).startswith(b"HTTP/1.1 200"):
            open_ += 1
    except OSError:
        pass
print(open_)
sys.exit(0 if open_ == 3 else 1)
EOF
}
