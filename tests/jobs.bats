#!/usr/bin/env bats
# Background jobs in aichat serve: POST /jobs, GET /jobs/{id},
# GET /jobs/{id}/results, DELETE /jobs/{id}; kept in SQLite under
# AICHAT_HOME, so they survive a restart.

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

items() { # items N [PREFIX]: a JSON array of N items
	python3 -c 'import json,sys; n=int(sys.argv[1]); p=sys.argv[2]
print(json.dumps([{"id": "%s%d" % (p, i), "prompt": "%s%d" % (p, i)} for i in range(1, n + 1)]))' "$1" "${2:-p}"
}

submit() { # submit BODY: prints the job id
	curl -sS "$SERVE_URL/jobs" -d "$1" | json_get id
}

wait_status() { # wait_status ID STATUS [SECONDS]
	local i tries=$(( ${3:-10} * 20 ))
	for ((i = 0; i < tries; i++)); do
		[ "$(curl -sS "$SERVE_URL/jobs/$1" | json_get status)" = "$2" ] && return 0
		sleep 0.05
	done
	curl -sS "$SERVE_URL/jobs/$1" >&2
	return 1
}

wait_callback() { # wait_callback ID CALLBACK_STATUS [SECONDS]
	local i tries=$(( ${3:-10} * 20 ))
	for ((i = 0; i < tries; i++)); do
		[ "$(curl -sS "$SERVE_URL/jobs/$1" | json_get callback_status)" = "$2" ] && return 0
		sleep 0.05
	done
	curl -sS "$SERVE_URL/jobs/$1" >&2
	return 1
}

wait_hooks() { # wait_hooks N: until the fake has N requests, looked at every 10 ms
	local i
	for ((i = 0; i < 1000; i++)); do
		[ "$(fake_count)" -ge "$1" ] && return 0
		sleep 0.01
	done
	return 1
}

wait_callback_attempts() { # wait_callback_attempts ID N: at least N counted
	local i n
	for ((i = 0; i < 200; i++)); do
		n=$(curl -sS "$SERVE_URL/jobs/$1" | json_get callback_attempts)
		[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge "$2" ] && return 0
		sleep 0.05
	done
	curl -sS "$SERVE_URL/jobs/$1" >&2
	return 1
}

@test "a job's life: 202 queued, then done, counts, timestamps, results in order" {
	serve_start
	run curl -sS -w '\n%{http_code}' "$SERVE_URL/jobs" -d "{\"model\":\"mock:echo\",\"items\":$(items 5)}"
	[ "${lines[1]}" = 202 ]
	id=$(echo "${lines[0]}" | json_get id)
	[[ "$id" =~ ^job_[0-9a-f]{16}$ ]]
	[ "$(echo "${lines[0]}" | json_get status)" = queued ]
	[ "$(echo "${lines[0]}" | json_get counts.total)" = 5 ]
	wait_status "$id" done
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get counts.succeeded)" = 5 ]
	[ "$(echo "$output" | json_get counts.failed)" = 0 ]
	[ "$(echo "$output" | json_get counts.pending)" = 0 ]
	[[ "$(echo "$output" | json_get created_at)" =~ ^20[0-9-]+T[0-9:]+Z$ ]]
	[[ "$(echo "$output" | json_get finished_at)" =~ ^20[0-9-]+T[0-9:]+Z$ ]]
	run curl -sS -D "$BATS_TEST_TMPDIR/h" "$SERVE_URL/jobs/$id/results"
	grep -qi '^Content-Type: application/x-ndjson' "$BATS_TEST_TMPDIR/h"
	[ "${#lines[@]}" -eq 5 ]
	[ "$(echo "${lines[0]}" | json_get id)" = p1 ]
	[ "$(echo "${lines[4]}" | json_get id)" = p5 ]
	[ "$(echo "${lines[2]}" | json_get content)" = p3 ]
	[ "$(echo "${lines[2]}" | json_get attempts)" = 1 ]
}

@test "items that fail upstream fail alone; the job is done with its counts" {
	with_openai_fake '{"match":"p2","status":400,"body":"{\"error\":{\"message\":\"bad\"}}"}' '{}'
	serve_start
	id=$(submit "{\"model\":\"openai:gpt-4o-mini\",\"items\":$(items 3)}")
	wait_status "$id" done
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get counts.succeeded)" = 2 ]
	[ "$(echo "$output" | json_get counts.failed)" = 1 ]
	run curl -sS "$SERVE_URL/jobs/$id/results"
	[ "$(echo "${lines[1]}" | json_get error.code)" = upstream_error ]
	[ "$(echo "${lines[2]}" | json_get content)" = p3 ]
}

@test "a job where every item failed is reported failed, not done" {
	with_openai_fake '{"status":400,"body":"{\"error\":{\"message\":\"bad\"}}"}'
	serve_start
	id=$(submit "{\"model\":\"openai:gpt-4o-mini\",\"items\":$(items 2)}")
	wait_status "$id" failed
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get status)" = failed ]
	[ "$(echo "$output" | json_get counts.succeeded)" = 0 ]
	[ "$(echo "$output" | json_get counts.failed)" = 2 ]
	[ "$(echo "$output" | json_get counts.pending)" = 0 ]
	run curl -sS "$SERVE_URL/jobs/$id/results"
	[ "${#lines[@]}" -eq 2 ]
	[ "$(echo "${lines[0]}" | json_get error.code)" = upstream_error ]
	[ "$(echo "${lines[1]}" | json_get error.code)" = upstream_error ]
}

@test "bad job ids: 404, never a path trick" {
	serve_start
	for path in /jobs/job_0123456789abcdef /jobs/nope /jobs/job_0123456789ABCDEF \
		"/jobs/job_0123456789abcdef'%20OR%201=1" /jobs/..%2F..%2Fetc%2Fpasswd \
		/jobs/job_0123456789abcdef/results; do
		run curl -sS --path-as-is -w '\n%{http_code}' "$SERVE_URL$path"
		[ "${lines[-1]}" = 404 ]
		[ "$(echo "${lines[0]}" | json_get error.code)" = not_found ]
	done
	run curl -sS -X DELETE -w '\n%{http_code}' "$SERVE_URL/jobs/x;DROP%20TABLE%20jobs"
	[ "${lines[-1]}" = 404 ]
	run curl -sS --path-as-is -w '\n%{http_code}' "$SERVE_URL/jobs/../health"
	[ "${lines[-1]}" = 404 ]
}

@test "invalid job bodies: 422, nothing stored" {
	serve_start
	run curl -sS -w '\n%{http_code}' "$SERVE_URL/jobs" -d '{"items":[]}'
	[ "${lines[-1]}" = 422 ]
	echo "{\"items\":$(items 10001)}" >"$BATS_TEST_TMPDIR/big.json"
	run curl -sS -w '\n%{http_code}' "$SERVE_URL/jobs" -d @"$BATS_TEST_TMPDIR/big.json"
	[ "${lines[-1]}" = 422 ]
	[ "$(echo "${lines[0]}" | json_get detail.0.type)" = too_long ]
	run curl -sS -w '\n%{http_code}' "$SERVE_URL/jobs" -d '{"items":[{"id":"a","prompt":"x"}],"concurrency":0}'
	[ "${lines[-1]}" = 422 ]
	[ "$(sqlite3 "$AICHAT_HOME/aichat.db" 'SELECT count(*) FROM jobs')" -eq 0 ]
}

@test "DELETE cancels a running job: no more upstream calls" {
	with_openai_fake '{"stall_ms":300}'
	serve_start
	id=$(submit "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":1,\"items\":$(items 60)}")
	wait_status "$id" running
	fake_wait_count 1
	run curl -sS -X DELETE "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get status)" = cancelled ]
	calls=$(fake_count)
	sleep 0.8
	[ "$(fake_count)" -eq "$calls" ]
	[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get status)" = cancelled ]
}

@test "a restart mid-job continues it without redoing finished items" {
	# 12 rounds of 0.8 s: long enough that even a loaded machine sees it
	# mid-way
	with_openai_fake '{"stall_ms":800}'
	serve_start
	id=$(submit "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":2,\"items\":$(items 24)}")
	for i in $(seq 200); do
		[ "$(sqlite3 "$AICHAT_HOME/aichat.db" "SELECT count(*) FROM job_items WHERE result IS NOT NULL")" -ge 2 ] && break
		sleep 0.05
	done
	kill -9 "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	unset SERVE_PID
	done_before=$(sqlite3 "$AICHAT_HOME/aichat.db" "SELECT count(*) FROM job_items WHERE result IS NOT NULL")
	# killed mid-job: some items finished, not all
	[ "$done_before" -ge 2 ]
	[ "$done_before" -lt 24 ]
	calls_before=$(fake_count)
	serve_start
	wait_status "$id" done 30
	run curl -sS "$SERVE_URL/jobs/$id/results"
	[ "${#lines[@]}" -eq 24 ]
	[ "$(printf '%s\n' "${lines[@]}" | python3 -c 'import json,sys; print(len({json.loads(l)["id"] for l in sys.stdin}))')" -eq 24 ]
	# after the restart, exactly the unfinished items are asked (the ones
	# in flight at the kill among them), no finished one again
	[ "$(( $(fake_count) - calls_before ))" -eq $((24 - done_before)) ]
}

@test "callback_url receives the final status" {
	# The callback (the only request with "counts" in its body) is
	# answered 200.
	fake_start '{"match":"\"counts\"","body":{"ok":true}}'
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 2)}")
	wait_status "$id" done
	fake_wait_count 1
	[ "$(fake_field 1 path)" = /hook ]
	[ "$(fake_field 1 method)" = POST ]
	[ "$(fake_field 1 body.id)" = "$id" ]
	[ "$(fake_field 1 body.status)" = done ]
	[ "$(fake_field 1 body.counts.succeeded)" = 2 ]
	# The callback's own state is the job's, not part of what it sent.
	[ "$(fake_field 1 body | python3 -c 'import json,sys; print(sorted(k for k in json.load(sys.stdin) if k.startswith("callback")))')" = "[]" ]
	wait_callback "$id" delivered
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_attempts <<<"$output")" = 1 ]
	[ "$(json_get callback_error <<<"$output")" = null ]
	[ "$(fake_count)" -eq 1 ]
}

@test "a job without a callback_url shows no callback state" {
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"items\":$(items 1)}")
	wait_status "$id" done
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(python3 -c 'import json,sys; print(sorted(k for k in json.load(sys.stdin) if k.startswith("callback")))' <<<"$output")" = "[]" ]
}

@test "a callback answered 500 twice is tried again after 1 s, then 2 s; the third attempt delivers it" {
	fake_start '{"status":500}' '{"status":500}' '{"body":{"ok":true}}'
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 3)}")
	wait_hooks 1
	t1=$(date +%s%N)
	# After the first failure: pending, with what went wrong.
	wait_callback_attempts "$id" 1
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get status <<<"$output")" = done ]
	[ "$(json_get callback_status <<<"$output")" = pending ]
	[ "$(json_get callback_error <<<"$output")" = "HTTP 500" ]
	wait_hooks 2
	t2=$(date +%s%N)
	wait_hooks 3
	t3=$(date +%s%N)
	wait_callback "$id" delivered
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_attempts <<<"$output")" = 3 ]
	[ "$(json_get callback_error <<<"$output")" = null ]
	# GET /jobs shows it the same.
	run curl -sS "$SERVE_URL/jobs"
	[ "$(json_get data.0.callback_status <<<"$output")" = delivered ]
	[ "$(json_get data.0.callback_attempts <<<"$output")" = 3 ]
	# Waited 1 s, then 2 s, between the attempts.
	[ $(( (t2 - t1) / 1000000 )) -ge 800 ]
	[ $(( (t3 - t2) / 1000000 )) -ge 1800 ]
	sleep 1.5
	[ "$(fake_count)" -eq 3 ]
	[ "$(fake_field 3 body.id)" = "$id" ]
	[ "$(fake_field 3 body.counts.succeeded)" = 3 ]
}

@test "a callback that always fails is tried 5 times, then the job shows it failed" {
	fake_start '{"status":500}'
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 2)}")
	# 1 + 2 + 4 + 8 s of backoff.
	wait_callback "$id" failed 25
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_attempts <<<"$output")" = 5 ]
	[ "$(json_get callback_error <<<"$output")" = "HTTP 500" ]
	[ "$(json_get status <<<"$output")" = done ]
	sleep 1.5
	[ "$(fake_count)" -eq 5 ]
	# Nothing left for a restart to send.
	serve_start
	sleep 1
	[ "$(fake_count)" -eq 5 ]
	[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get callback_status)" = failed ]
}

@test "a callback_url that is not http(s) fails at once, after one attempt, nothing sent" {
	fake_start
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"ftp://127.0.0.1:${FAKE_PORT}/hook\",\"items\":$(items 1)}")
	wait_callback "$id" failed
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_attempts <<<"$output")" = 1 ]
	[ "$(json_get callback_error <<<"$output")" = "not an http(s) URL" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "a server killed while its callback is pending: the restarted one delivers it" {
	fake_start '{"status":500}'
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 4)}")
	wait_status "$id" done
	wait_callback_attempts "$id" 1
	kill -KILL "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	unset SERVE_PID
	# Killed with the callback pending (after 1 attempt counted, or 2 on
	# a slow machine; one more may have been under way).
	[ "$(sqlite3 "$AICHAT_HOME/aichat.db" "SELECT callback_status FROM jobs")" = pending ]
	counted=$(sqlite3 "$AICHAT_HOME/aichat.db" "SELECT callback_attempts FROM jobs")
	[ "$counted" -ge 1 ]
	# The receiver is back.
	fake_script '{"body":{"ok":true}}'
	sleep 0.5
	before=$(fake_count)
	serve_start
	wait_callback "$id" delivered
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_attempts <<<"$output")" = $((counted + 1)) ]
	[ "$(json_get callback_error <<<"$output")" = null ]
	sleep 0.5
	[ "$(fake_count)" -eq $((before + 1)) ]
	# The same final status, without the callback's own state.
	[ "$(fake_field -1 body | python3 -c 'import json,sys; b = json.load(sys.stdin)
print(b["id"], b["status"], b["counts"]["succeeded"], [k for k in b if k.startswith("callback")])')" = "$id done 4 []" ]
}

@test "a server stopped before its first callback attempt: the next one sends it, once" {
	fake_start '{"body":{"ok":true}}'
	# It waits 60 s before the callback of a job it finished.
	AICHAT_TEST_CALLBACK_HOLD_MS=60000 serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 2)}")
	wait_status "$id" done
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = pending ]
	[ "$(json_get callback_attempts <<<"$output")" = 0 ]
	[ "$(json_get callback_error <<<"$output")" = null ]
	serve_stop
	[ "$SERVE_STATUS" -eq 0 ]
	[ "$(fake_count)" -eq 0 ]
	# Its lease ended with it: the next server sends it at once.
	serve_start
	wait_callback "$id" delivered 3
	[ "$(curl -sS "$SERVE_URL/jobs/$id" | json_get callback_attempts)" = 1 ]
	sleep 0.5
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 body.id)" = "$id" ]
}

@test "a job that ended before callbacks were kept (schema 10) migrates: no callback state, nothing sent again" {
	fake_start '{"body":{"ok":true}}'
	serve_start
	id=$(submit "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 1)}")
	wait_callback "$id" delivered
	serve_stop
	# As an older aichat left it: schema 10, its callback sent and forgotten.
	python3 - "$AICHAT_HOME/aichat.db" <<-'EOF'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	for stmt in ("DROP INDEX jobs_callbacks",
	             "ALTER TABLE jobs DROP COLUMN callback_status",
	             "ALTER TABLE jobs DROP COLUMN callback_attempts",
	             "ALTER TABLE jobs DROP COLUMN callback_error",
	             "PRAGMA user_version = 10"):
	    db.execute(stmt)
	db.commit()
	EOF
	serve_start
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(json_get status <<<"$output")" = done ]
	[ "$(python3 -c 'import json,sys; print(sorted(k for k in json.load(sys.stdin) if k.startswith("callback")))' <<<"$output")" = "[]" ]
	[ "$(sqlite3 "$AICHAT_HOME/aichat.db" 'PRAGMA user_version')" = 11 ]
	sleep 0.5
	[ "$(fake_count)" -eq 1 ]
}

@test "GET /jobs lists the jobs, the newest first, each with its status" {
	serve_start
	run curl -sS "$SERVE_URL/jobs"
	[ "$output" = '{"object":"list","data":[]}' ]
	first=$(submit "{\"model\":\"mock:echo\",\"items\":$(items 2)}")
	wait_status "$first" done
	second=$(submit "{\"model\":\"mock:echo\",\"items\":$(items 3)}")
	wait_status "$second" done
	run curl -sS "$SERVE_URL/jobs"
	[ "$(json_get object <<<"$output")" = list ]
	[ "$(json_get data.0.id <<<"$output")" = "$second" ]
	[ "$(json_get data.0.counts.total <<<"$output")" = 3 ]
	[ "$(json_get data.1.id <<<"$output")" = "$first" ]
	[ "$(json_get data.1.status <<<"$output")" = done ]
	[ "$(json_get data <<<"$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ]
}
