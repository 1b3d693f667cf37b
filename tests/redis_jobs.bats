#!/usr/bin/env bats
# tests/redis_jobs.bats - background jobs with `aichat serve --redis`: a job
# posted to one replica is seen, controlled and run by all of them, and
# survives the replica that took it.
#
# Each test starts its own redis-server (redis_start in helpers.bash: a
# unix socket in its temp dir, no persistence) and its replicas, and stops
# them by PID.  The visibility timeout (AICHAT_JOB_LEASE_MS) is short here.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef
# A script rule: the callback (the only request with "counts" in its
# body) is answered 200.
HOOK_OK='{"match":"\"counts\"","body":{"ok":true}}'

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home/aichat"
	export AICHAT_JOB_LEASE_MS=1000 AICHAT_JOB_POLL_MS=50
	REPLICA_PIDS=()
	REDIS_PID=
	REDIS_SOCK="$BATS_TEST_TMPDIR/redis.sock"
}

teardown() {
	local p
	for p in "${REPLICA_PIDS[@]}"; do
		stop_pid "$p"
	done
	redis_stop
	serve_stop
	fake_stop
}

# replica_start VAR [ARG...]: one `aichat serve --redis` on a free port,
# its URL in $VAR, its PID in ${VAR}_PID.
replica_start() {
	local var=$1 log="$BATS_TEST_TMPDIR/$1.log" line i pid
	shift
	"$AICHAT_BIN" serve --port 0 --redis "unix://$REDIS_SOCK" "$@" </dev/null \
		>/dev/null 2>"$log" 3>&- &
	pid=$!
	REPLICA_PIDS+=("$pid")
	printf -v "${var}_PID" '%s' "$pid"
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$log" 2>/dev/null) && break
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	[ -n "$line" ] || { echo "replica_start: not listening" >&2; return 1; }
	printf -v "$var" '%s' "${line#listening on }"
}

items() { # items N: a JSON array of N items, ids i0..i(N-1)
	python3 -c 'import json,sys; n=int(sys.argv[1])
print(json.dumps([{"id": "i%d" % i, "prompt": "p%d" % i} for i in range(n)]))' "$1"
}

post_job() { # post_job URL BODY: the answer's body, then its status, a line each
	curl -sS -w '\n%{http_code}' -H 'Content-Type: application/json' "$1/jobs" -d "$2"
}

wait_status() { # wait_status URL ID STATUS [SECONDS]
	local i tries=$(( ${4:-10} * 20 ))
	for ((i = 0; i < tries; i++)); do
		[ "$(curl -sS "$1/jobs/$2" | json_get status)" = "$3" ] && return 0
		sleep 0.05
	done
	curl -sS "$1/jobs/$2" >&2
	return 1
}

hook_count() { # requests the fake received on /hook
	local log=${FAKE_LOG:-$BATS_TEST_TMPDIR/fake.log}
	[ -f "$log" ] || { echo 0; return; }
	python3 -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("path") == "/hook"))' "$log"
}

@test "redis jobs: 200 items posted to A, A killed by SIGKILL midway: B and C finish them, one result each, one callback" {
	redis_start
	# Every answer takes ~0.2 s: the job is still running when A dies.
	with_openai_fake "$HOOK_OK" '{"deltas":["ok"],"delay_ms":50}'
	for v in A B C; do
		replica_start "$v" --max-upstream 4
	done
	run post_job "$A" "{\"model\":\"openai:gpt-4o-mini\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 200)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	[[ $id =~ ^job_[0-9a-f]{16}$ ]]
	# A runs items, then dies in the middle of some.
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -sS "$C/jobs/$id" | json_get counts.done)" -ge 30 ] && break
		sleep 0.05
	done
	pending=$(rcli XPENDING aichat:jobs:q run - + 1000 | grep -c ":$A_PID:") || true
	kill -KILL "$A_PID"
	wait "$A_PID" 2>/dev/null || true
	# A held items when it died: they are taken over after the timeout.
	[ "$pending" -ge 1 ]
	[ "$(curl -sS "$C/jobs/$id" | json_get counts.done)" -lt 200 ]
	wait_status "$C" "$id" done 30
	run curl -sS "$C/jobs/$id"
	[ "$(json_get counts.succeeded <<<"$output")" = 200 ]
	[ "$(json_get counts.failed <<<"$output")" = 0 ]
	[ "$(json_get counts.pending <<<"$output")" = 0 ]
	# Every item has exactly one result, in input order.
	curl -sS "$B/jobs/$id/results" >"$BATS_TEST_TMPDIR/results"
	run python3 -c 'import json,sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1])]
print(len(ids), len(set(ids)), ids == ["i%d" % i for i in range(200)])' "$BATS_TEST_TMPDIR/results"
	[ "$output" = "200 200 True" ]
	# The callback fired once, whichever replica finished the job.
	for ((i = 0; i < 40; i++)); do
		[ "$(hook_count)" -ge 1 ] && break
		sleep 0.05
	done
	sleep 0.5
	[ "$(hook_count)" -eq 1 ]
	run curl -sS "$C/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = delivered ]
	[ "$(json_get callback_attempts <<<"$output")" = 1 ]
	# Nothing is left in the queue.
	[ "$(rcli XLEN aichat:jobs:q)" = 0 ]
	run rcli XPENDING aichat:jobs:q run
	[ "${lines[0]}" = 0 ]
}

@test "redis jobs: a replica paused past the timeout comes back: the items it ran again are recorded once" {
	redis_start
	with_openai_fake "$HOOK_OK" '{"deltas":["ok"],"delay_ms":50}'
	replica_start A --max-upstream 4
	replica_start B --max-upstream 4
	run post_job "$A" "{\"model\":\"openai:gpt-4o-mini\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 120)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -sS "$B/jobs/$id" | json_get counts.done)" -ge 10 ] && break
		sleep 0.05
	done
	# A stops with items in flight; B takes them over and runs them again.
	kill -STOP "$A_PID"
	pending=$(rcli XPENDING aichat:jobs:q run - + 1000 | grep -c ":$A_PID:") || true
	[ "$pending" -ge 1 ]
	sleep 2
	# ... which are B's now.
	[ "$(rcli XPENDING aichat:jobs:q run - + 1000 | grep -c ":$A_PID:")" -eq 0 ]
	[ "$(curl -sS "$B/jobs/$id" | json_get status)" = running ]
	kill -CONT "$A_PID"
	wait_status "$B" "$id" done 30
	run curl -sS "$A/jobs/$id"
	[ "$(json_get counts.succeeded <<<"$output")" = 120 ]
	[ "$(json_get counts.pending <<<"$output")" = 0 ]
	# More calls than items: some ran twice, and count once.
	[ "$(( $(fake_count) - $(hook_count) ))" -gt 120 ]
	[ "$(curl -sS "$A/jobs/$id/results" | wc -l)" -eq 120 ]
	sleep 0.5
	[ "$(hook_count)" -eq 1 ]
}

@test "redis jobs: status, results and cancel from another replica; GET /jobs lists the job" {
	redis_start
	with_openai_fake '{"deltas":["ok"],"delay_ms":100}'
	replica_start A --max-upstream 1
	replica_start B --max-upstream 1
	run post_job "$A" "{\"model\":\"openai:gpt-4o-mini\",\"items\":$(items 40)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	run curl -sS "$B/jobs/$id"
	[ "$(json_get id <<<"$output")" = "$id" ]
	[ "$(json_get counts.total <<<"$output")" = 40 ]
	run curl -sS "$B/jobs"
	[ "$(json_get object <<<"$output")" = list ]
	[ "$(json_get data.0.id <<<"$output")" = "$id" ]
	# Some results, read from B while A and B run it.
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -sS "$B/jobs/$id" | json_get counts.done)" -ge 2 ] && break
		sleep 0.05
	done
	run curl -sS "$B/jobs/$id/results"
	[ "${#lines[@]}" -ge 2 ]
	[ "$(json_get content <<<"${lines[0]}")" = ok ]
	# Cancelled on B: A stops taking its items too.
	run curl -sS -X DELETE "$B/jobs/$id"
	[ "$(json_get status <<<"$output")" = cancelled ]
	[[ "$(json_get finished_at <<<"$output")" =~ ^20[0-9-]+T[0-9:]+Z$ ]]
	sleep 0.6   # the items running at the cancel end
	calls=$(fake_count)
	sleep 0.6
	[ "$(fake_count)" -eq "$calls" ]
	[ "$calls" -lt 40 ]
	run curl -sS "$A/jobs/$id"
	[ "$(json_get status <<<"$output")" = cancelled ]
	# No result lands after the cancel.
	done_after=$(json_get counts.done <<<"$output")
	[ "$(curl -sS "$A/jobs/$id/results" | wc -l)" -eq "$done_after" ]
	# An unknown id is a 404 on any replica.
	run curl -sS -w '\n%{http_code}' "$B/jobs/job_0000000000000000"
	[ "${lines[1]}" = 404 ]
	[ "$(json_get error.code <<<"${lines[0]}")" = not_found ]
}

@test "redis jobs: items spend the submitter's key wherever they run; Redis holds its number, never the key" {
	redis_start
	with_openai_fake '{"deltas":["ok"],"delay_ms":20}'
	replica_start A --api-key k-one --api-key k-two --max-upstream 2
	replica_start B --api-key k-one --api-key k-two --max-upstream 2
	run curl -sS -H 'Authorization: Bearer k-two' -H 'Content-Type: application/json' "$A/jobs" \
		-d "{\"model\":\"openai:gpt-4o-mini\",\"items\":$(items 12)}"
	id=$(json_get id <<<"$output")
	[[ $id =~ ^job_ ]]
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -sS -H 'Authorization: Bearer k-one' "$B/jobs/$id" | json_get status)" = done ] && break
		sleep 0.1
	done
	[ "$(rcli HGET "aichat:job:$id" api_key)" = 2 ]
	run bash -c "for k in \$(redis-cli -s '$REDIS_SOCK' --scan); do redis-cli -s '$REDIS_SOCK' --no-raw DUMP \"\$k\"; done | grep -c 'k-two'"
	[ "$output" = 0 ]
	# Every item ran once, and the ledger has each under key:2.
	[ "$(grep -c '"path":"/v1/chat/completions"' "$FAKE_LOG")" -eq 12 ]
	for v in A B; do
		stop_pid "$(eval echo "\$${v}_PID")"
	done
	run "$AICHAT_BIN" usage --by key --json
	[ "$(json_get rows.0.group <<<"$output")" = key:2 ]
	[ "$(json_get rows.0.exchanges <<<"$output")" = 12 ]
}

@test "redis jobs: Redis down, the job routes answer 503 and the others follow --redis-fail; Redis back, jobs run again" {
	redis_start
	replica_start A --redis-fail open
	replica_start B --redis-fail open
	run post_job "$A" "{\"model\":\"mock:echo\",\"items\":$(items 3)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	wait_status "$B" "$id" done
	redis_stop
	for u in "$A" "$B"; do
		run post_job "$u" "{\"model\":\"mock:echo\",\"items\":$(items 3)}"
		[ "${lines[1]}" = 503 ]
		[ "$(json_get error.code <<<"${lines[0]}")" = overloaded ]
		[[ "$(json_get error.message <<<"${lines[0]}")" == "background jobs are unavailable: Redis"* ]]
		run curl -sS -D "$BATS_TEST_TMPDIR/h" -w '\n%{http_code}' "$u/jobs/$id"
		[ "${lines[1]}" = 503 ]
		[ "$(hdr Retry-After)" = 1 ]
		run curl -sS -o /dev/null -w '%{http_code}' "$u/jobs/$id/results"
		[ "$output" = 503 ]
		run curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$u/jobs/$id"
		[ "$output" = 503 ]
		run curl -sS -o /dev/null -w '%{http_code}' "$u/jobs"
		[ "$output" = 503 ]
		# Chat does not need Redis: with --redis-fail open it answers.
		run curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
			"$u/chat" -d '{"prompt":"hi","model":"mock:echo"}'
		[ "$output" = 200 ]
	done
	kill -0 "$A_PID"
	kill -0 "$B_PID"
	# Back up (empty: no persistence): new jobs run, on either replica.
	redis_start
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -s "$B/health" | json_get status)" = ok ] && break
		sleep 0.05
	done
	run post_job "$B" "{\"model\":\"mock:echo\",\"items\":$(items 5)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	wait_status "$A" "$id" done
	[ "$(curl -sS "$A/jobs/$id/results" | wc -l)" -eq 5 ]
}

@test "redis jobs: an invalid job body gets the same answer as without Redis, and nothing is queued" {
	redis_start
	replica_start A
	serve_start
	for body in '{"items":[]}' '{"items":[{"id":"a"}]}' '{"model":"mock:echo","items":[{"id":"a","prompt":"x"}],"concurrency":0}' \
		'{"items":[{"id":"a","prompt":"x"}],"temperature":3}' 'not json'; do
		run post_job "$A" "$body"
		with_redis=$output
		run post_job "$SERVE_URL" "$body"
		[ "$with_redis" = "$output" ]
		[[ "${lines[-1]}" == 4?? ]]
	done
	run rcli --scan --pattern 'aichat:job:*'
	[ "$output" = "" ]
	[ "$(rcli XLEN aichat:jobs:q)" = 0 ]
	[ "$(rcli ZCARD aichat:jobs)" = 0 ]
	run curl -sS "$A/jobs"
	[ "$output" = '{"object":"list","data":[]}' ]
	run curl -sS -w '\n%{http_code}' "$A/jobs/not-a-job"
	[ "${lines[1]}" = 404 ]
	[ "$(json_get error.code <<<"${lines[0]}")" = not_found ]
}

@test "redis jobs: a job's concurrency holds across replicas, and the items of another job run past it" {
	redis_start
	with_openai_fake '{"deltas":["ok"],"delay_ms":50}'
	replica_start A --max-upstream 4
	replica_start B --max-upstream 4
	# X: 24 items, 2 at a time, queued first; Y: 16 items behind them.
	run post_job "$A" "{\"model\":\"openai:gpt-x\",\"concurrency\":2,\"items\":$(items 24)}"
	[ "${lines[1]}" = 202 ]
	x=$(json_get id <<<"${lines[0]}")
	run post_job "$B" "{\"model\":\"openai:gpt-y\",\"items\":$(items 16)}"
	[ "${lines[1]}" = 202 ]
	y=$(json_get id <<<"${lines[0]}")
	# Y is done while X still runs: X's waiting items held up nothing.
	wait_status "$A" "$y" done 20
	[ "$(curl -sS "$B/jobs/$x" | json_get status)" = running ]
	wait_status "$B" "$x" done 30
	# Never more than 2 of X's calls at once, over both replicas; Y used
	# the slots X could not.
	[ "$(fake_peak_model gpt-x)" -eq 2 ]
	[ "$(fake_peak_model gpt-y)" -ge 3 ]
	# X's items ran on both replicas ...
	[ "$(grep -c '"model":"gpt-x"' "$FAKE_LOG")" -eq 24 ]
	run curl -sS "$A/jobs/$x"
	[ "$(json_get counts.succeeded <<<"$output")" = 24 ]
	[ "$(json_get concurrency <<<"$output")" = 2 ]
	# ... each once, with one result each; nothing waits any more.
	[ "$(curl -sS "$A/jobs/$x/results" | wc -l)" -eq 24 ]
	[ "$(curl -sS "$A/jobs/$y/results" | wc -l)" -eq 16 ]
	[ "$(rcli XLEN aichat:jobs:q)" = 0 ]
	run rcli XPENDING aichat:jobs:q run
	[ "${lines[0]}" = 0 ]
	[ "$(rcli EXISTS aichat:jobs:parked "aichat:job:$x:wait" "aichat:job:$x:run")" = 0 ]
}

@test "redis jobs: the parked items of a job at its limit run as soon as its slots free, not at the next poll" {
	redis_start
	# No poll within the test: only a finished item makes the replica
	# look again.
	AICHAT_JOB_POLL_MS=60000 replica_start A --max-upstream 8
	run post_job "$A" "{\"model\":\"mock:echo\",\"concurrency\":1,\"items\":$(items 300)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	wait_status "$A" "$id" done 10
	[ "$(curl -sS "$A/jobs/$id/results" | wc -l)" -eq 300 ]
}

@test "redis jobs: a job at its limit on a replica that dies: its slots come back after the lease, no item is lost" {
	redis_start
	with_openai_fake '{"deltas":["ok"],"delay_ms":50}'
	replica_start A --max-upstream 4
	run post_job "$A" "{\"model\":\"openai:gpt-x\",\"concurrency\":2,\"items\":$(items 12)}"
	[ "${lines[1]}" = 202 ]
	x=$(json_get id <<<"${lines[0]}")
	for ((i = 0; i < 100; i++)); do
		[ "$(rcli ZCARD "aichat:job:$x:run")" -eq 2 ] && break
		sleep 0.02
	done
	# A holds both of X's slots and dies; B comes up later.
	kill -KILL "$A_PID"
	wait "$A_PID" 2>/dev/null || true
	[ "$(rcli ZCARD "aichat:job:$x:run")" -eq 2 ]
	replica_start B --max-upstream 4
	wait_status "$B" "$x" done 30
	run curl -sS "$B/jobs/$x"
	[ "$(json_get counts.succeeded <<<"$output")" = 12 ]
	[ "$(fake_peak_model gpt-x)" -le 2 ]
	run python3 -c 'import json,sys
ids = [json.loads(l)["id"] for l in sys.stdin]
print(len(ids), ids == ["i%d" % i for i in range(12)])' < <(curl -sS "$B/jobs/$x/results")
	[ "$output" = "12 True" ]
}

@test "redis jobs: the replica that records the last result dies before the callback: another sends it" {
	redis_start
	fake_start "$HOOK_OK"
	# Each replica waits 60 s before the callback of a job it finished.
	AICHAT_TEST_CALLBACK_HOLD_MS=60000 replica_start A
	AICHAT_TEST_CALLBACK_HOLD_MS=60000 replica_start B
	run post_job "$A" "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 20)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	wait_status "$B" "$id" done
	run curl -sS "$B/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = pending ]
	[ "$(json_get callback_attempts <<<"$output")" = 0 ]
	# The one that recorded the last result holds the claim: killed.
	holder=$(rcli GET "aichat:job:$id:callback")
	pid=$(cut -d: -f2 <<<"$holder")
	if [ "$pid" = "$A_PID" ]; then other=$B; else other=$A; fi
	[ "$pid" = "$A_PID" ] || [ "$pid" = "$B_PID" ]
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	[ "$(hook_count)" -eq 0 ]
	# The other one's sweep claims it once the claim lapses (1 s here).
	for ((i = 0; i < 100; i++)); do
		[ "$(hook_count)" -ge 1 ] && break
		sleep 0.05
	done
	sleep 0.5
	[ "$(hook_count)" -eq 1 ]
	run curl -sS "$other/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = delivered ]
	[ "$(json_get callback_attempts <<<"$output")" = 1 ]
	# It carried the job's final status.
	run python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["path"] == "/hook":
        b = d["body"]
        print(b["id"], b["status"], b["counts"]["succeeded"], "callback_status" in b)' "$FAKE_LOG"
	[ "$output" = "$id done 20 False" ]
	[ "$(rcli SCARD aichat:jobs:callbacks)" = 0 ]
}

@test "redis jobs: a callback answered 500 twice is tried again after a backoff; the third attempt delivers it" {
	redis_start
	fake_start '{"status":500}' '{"status":503}' '{"body":{"ok":true}}'
	replica_start A
	replica_start B
	run post_job "$A" "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 3)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	wait_status "$B" "$id" done
	fake_wait_count 1
	t0=$(date +%s%N)
	# After the first failure: pending, with what went wrong.
	for ((i = 0; i < 40; i++)); do
		[ "$(curl -sS "$A/jobs/$id" | json_get callback_attempts)" = 1 ] && break
		sleep 0.05
	done
	run curl -sS "$A/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = pending ]
	[ "$(json_get callback_error <<<"$output")" = "HTTP 500" ]
	for ((i = 0; i < 200; i++)); do
		[ "$(curl -sS "$B/jobs/$id" | json_get callback_status)" = delivered ] && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	run curl -sS "$B/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = delivered ]
	[ "$(json_get callback_attempts <<<"$output")" = 3 ]
	[ "$(json_get callback_error <<<"$output")" = null ]
	# Waited 1 s, then 2 s, between the attempts.
	[ $(( (t1 - t0) / 1000000 )) -ge 2800 ]
	sleep 1.5
	[ "$(hook_count)" -eq 3 ]
}

@test "redis jobs: a callback that always fails is tried 5 times, then the job shows it failed" {
	redis_start
	fake_start '{"status":500}'
	replica_start A
	replica_start B
	run post_job "$A" "{\"model\":\"mock:echo\",\"callback_url\":\"$FAKE_URL/hook\",\"items\":$(items 2)}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	# 1 + 2 + 4 + 8 s of backoff.
	for ((i = 0; i < 500; i++)); do
		[ "$(curl -sS "$B/jobs/$id" | json_get callback_status)" = failed ] && break
		sleep 0.05
	done
	run curl -sS "$A/jobs/$id"
	[ "$(json_get callback_status <<<"$output")" = failed ]
	[ "$(json_get callback_attempts <<<"$output")" = 5 ]
	[ "$(json_get callback_error <<<"$output")" = "HTTP 500" ]
	[ "$(json_get status <<<"$output")" = done ]
	sleep 1.5
	[ "$(hook_count)" -eq 5 ]
	[ "$(rcli SCARD aichat:jobs:callbacks)" = 0 ]
	[ "$(rcli EXISTS "aichat:job:$id:callback")" = 0 ]
}
