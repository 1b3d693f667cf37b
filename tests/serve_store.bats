#!/usr/bin/env bats
# aichat serve and its database: SQLite never on the event loop (a locked
# store slows the writes, never the server), every finished job item
# written, every usage row written (queued ones in one transaction),
# --max-upstream over every upstream call, and jobs owned by one
# live server at a time.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home/aichat"
	export AICHAT_RETRY_BASE=0.05
	DB="$AICHAT_HOME/aichat.db"
}

teardown() {
	local pid
	[ -z "${LOCK_PID:-}" ] || touch "$BATS_TEST_TMPDIR/release"
	for pid in ${LOCK_PID:-} ${SERVE2_PID:-}; do
		kill -CONT "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	serve_stop
	fake_stop
}

items() { # items N [PREFIX]: a JSON array of N items
	python3 -c 'import json,sys; n=int(sys.argv[1]); p=sys.argv[2]
print(json.dumps([{"id": "%s%d" % (p, i), "prompt": "%s%d" % (p, i)} for i in range(1, n + 1)]))' "$1" "${2:-p}"
}

# hold_lock: another process takes the database's write lock (BEGIN
# EXCLUSIVE) and keeps it until release_lock (120 s at most); returns
# once it holds it.
hold_lock() {
	local i
	rm -f "$BATS_TEST_TMPDIR/locked" "$BATS_TEST_TMPDIR/release"
	python3 -c 'import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
end = time.time() + 120
while not os.path.exists(sys.argv[3]) and time.time() < end:
    time.sleep(0.02)
c.execute("COMMIT")' "$DB" "$BATS_TEST_TMPDIR/locked" "$BATS_TEST_TMPDIR/release" &
	LOCK_PID=$!
	for ((i = 0; i < 400; i++)); do
		[ -e "$BATS_TEST_TMPDIR/locked" ] && return 0
		sleep 0.05
	done
	return 1
}

# release_lock: ends hold_lock's transaction and waits for its process.
release_lock() {
	touch "$BATS_TEST_TMPDIR/release"
	wait "$LOCK_PID"
	unset LOCK_PID
}

# msecs URL: how long the server took to answer a GET of URL, in
# milliseconds, as curl measures it (its own start-up left out).
msecs() {
	curl -sS -m 4 -o /dev/null -w '%{time_total}' "$1" | awk '{ printf "%d\n", $1 * 1000 }'
}

# status_of URL ID: a job's status as the server at URL reports it.
status_of() {
	curl -sS "$1/jobs/$2" | json_get status
}

# wait_job URL ID STATUS [SECONDS]
wait_job() {
	local i tries=$((${4:-15} * 10))
	for ((i = 0; i < tries; i++)); do
		[ "$(status_of "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	curl -sS "$1/jobs/$2" >&2
	return 1
}

# serve2_start [ARGS...]: a second server on the same AICHAT_HOME; sets
# SERVE2_PID and SERVE2_URL.
serve2_start() {
	local i line log="$BATS_TEST_TMPDIR/serve2.log"
	: >"$log"
	"$AICHAT_BIN" serve --port 0 "$@" </dev/null >/dev/null 2>"$log" 3>&- &
	SERVE2_PID=$!
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$log" 2>/dev/null) && break
		sleep 0.05
	done
	[ -n "$line" ]
	SERVE2_URL=${line#listening on }
}

sql() {
	sqlite3 -cmd '.timeout 5000' "$DB" "$1"
}

@test "a locked database freezes nothing: /health stays fast, the job and the log land after" {
	serve_start --log-conversations
	body="{\"model\":\"mock:echo\",\"items\":$(items 3)}"
	hold_lock
	curl -sS -o "$BATS_TEST_TMPDIR/job.out" -w '%{http_code}' "$SERVE_URL/jobs" \
		-d "$body" >"$BATS_TEST_TMPDIR/job.code" &
	job_curl=$!
	# /conversation answers at once; its log entry waits for the lock
	curl -sS -m 10 -o /dev/null "$SERVE_URL/conversation" \
		-d '{"model":"mock:echo","messages":[{"role":"user","content":"logged while locked"}]}'
	sleep 1
	# every /health answers well within 1 s while the lock holds
	for i in 1 2 3 4; do
		t=$(msecs "$SERVE_URL/health")
		echo "health $i: ${t} ms" >&3
		[ "$t" -lt 1000 ]
	done
	# the job waits for the lock: not answered yet, nothing logged yet
	[ ! -s "$BATS_TEST_TMPDIR/job.code" ]
	[ "$(sqlite3 "$DB" 'PRAGMA query_only=1; SELECT count(*) FROM messages')" -eq 0 ]
	release_lock
	wait "$job_curl"
	[ "$(cat "$BATS_TEST_TMPDIR/job.code")" = 202 ]
	id=$(json_get id <"$BATS_TEST_TMPDIR/job.out")
	wait_job "$SERVE_URL" "$id" done
	[ "$(curl -sS "$SERVE_URL/jobs/$id/results" | wc -l)" -eq 3 ]
	# the conversation was logged once the lock went
	for i in $(seq 100); do
		[ "$(sql "SELECT count(*) FROM messages WHERE role = 'user' AND content = 'logged while locked'")" -eq 1 ] && break
		sleep 0.1
	done
	[ "$(sql "SELECT count(*) FROM messages WHERE role = 'user' AND content = 'logged while locked'")" -eq 1 ]
}

@test "the database writes waiting are bounded: past --max-queue a 503 with Retry-After, nothing half-stored" {
	serve_start --max-queue 1
	body="{\"model\":\"mock:echo\",\"items\":$(items 2)}"
	hold_lock
	for n in 1 2 3; do
		: >"$BATS_TEST_TMPDIR/code$n"
		curl -sS -D "$BATS_TEST_TMPDIR/h$n" -o "$BATS_TEST_TMPDIR/b$n" -w '%{http_code}\n' \
			"$SERVE_URL/jobs" -d "$body" >"$BATS_TEST_TMPDIR/code$n" &
		pids+=($!)
	done
	# two are refused at once, while the lock holds
	for i in $(seq 400); do
		[ "$(cat "$BATS_TEST_TMPDIR"/code? | grep -c 503)" -eq 2 ] && break
		sleep 0.05
	done
	[ "$(cat "$BATS_TEST_TMPDIR"/code? | grep -c 503)" -eq 2 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/code? | grep -c 202)" -eq 0 ]
	for n in 1 2 3; do
		[ "$(cat "$BATS_TEST_TMPDIR/code$n")" = 503 ] || continue
		grep -qi '^Retry-After: 1' "$BATS_TEST_TMPDIR/h$n"
		[ "$(json_get error.code <"$BATS_TEST_TMPDIR/b$n")" = overloaded ]
	done
	# the one that waited is stored once the lock goes; the others nowhere
	release_lock
	wait "${pids[@]}"
	[ "$(cat "$BATS_TEST_TMPDIR"/code? | grep -c 202)" -eq 1 ]
	[ "$(sql 'SELECT count(*) FROM jobs')" -eq 1 ]
	[ "$(sql 'SELECT count(*) FROM job_items')" -eq 2 ]
}

@test "a job run under a held lock loses no result and leaves no item queued" {
	with_openai_fake '{"stall_ms":50}'
	AICHAT_WRITER_BUSY_MS=50 serve_start
	id=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":4,\"items\":$(items 40)}" | json_get id)
	fake_wait_count 5
	hold_lock
	# the items in flight finish upstream while their writes wait;
	# new items wait too once as many results are unwritten
	sleep 2
	release_lock
	wait_job "$SERVE_URL" "$id" done 30
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get counts.succeeded)" -eq 40 ]
	[ "$(echo "$output" | json_get counts.pending)" -eq 0 ]
	[ "$(curl -sS "$SERVE_URL/jobs/$id/results" | wc -l)" -eq 40 ]
	[ "$(sql "SELECT count(*) FROM job_items WHERE job_id = '$id' AND state = 'queued'")" -eq 0 ]
	[ "$(sql "SELECT count(*) FROM job_items WHERE job_id = '$id' AND result IS NULL")" -eq 0 ]
	# each item asked once
	[ "$(fake_count)" -eq 40 ]
}

@test "--max-upstream bounds /batch items: 12 items, at most 2 upstream calls at once" {
	with_openai_fake '{"stall_ms":300}'
	serve_start --max-upstream 2 --batch-concurrency 10
	run curl -sS "$SERVE_URL/batch" -d "{\"model\":\"openai:gpt-4o-mini\",\"items\":$(items 12)}"
	[ "$(echo "$output" | json_get results.11.content)" = p12 ]
	[ "$(fake_count)" -eq 12 ]
	echo "peak: $(fake_peak)" >&3
	[ "$(fake_peak)" -eq 2 ]
}

@test "--max-upstream bounds jobs too, and chat requests still get their turn" {
	with_openai_fake '{"stall_ms":200}'
	serve_start --max-upstream 3
	a=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":10,\"items\":$(items 15 a)}" | json_get id)
	b=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":10,\"items\":$(items 15 b)}" | json_get id)
	fake_wait_count 3
	# a chat request waits its turn behind the jobs' items, not behind the jobs
	t=$(curl -sS -m 10 -o /dev/null -w '%{time_total}' "$SERVE_URL/chat" \
		-d '{"prompt":"hello","model":"openai:gpt-4o-mini"}' | awk '{ printf "%d\n", $1 * 1000 }')
	echo "chat during jobs: ${t} ms" >&3
	[ "$t" -lt 3000 ]
	wait_job "$SERVE_URL" "$a" done 30
	wait_job "$SERVE_URL" "$b" done 30
	[ "$(fake_count)" -eq 31 ]
	echo "peak: $(fake_peak)" >&3
	[ "$(fake_peak)" -eq 3 ]
}

@test "two servers on one AICHAT_HOME: each item of a job runs exactly once" {
	with_openai_fake '{"stall_ms":100}'
	export AICHAT_JOB_LEASE_MS=1500
	serve_start
	serve2_start
	id=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":3,\"items\":$(items 30)}" | json_get id)
	wait_job "$SERVE2_URL" "$id" done 30
	run curl -sS "$SERVE_URL/jobs/$id"
	[ "$(echo "$output" | json_get counts.done)" -eq 30 ]
	[ "$(echo "$output" | json_get counts.succeeded)" -eq 30 ]
	# another lease period: nobody runs anything again
	sleep 2
	[ "$(fake_count)" -eq 30 ]
	[ "$(python3 -c 'import json,sys
print(len({json.loads(l)["body"]["messages"][-1]["content"] for l in open(sys.argv[1])}))' "$BATS_TEST_TMPDIR/fake.log")" -eq 30 ]
}

@test "a frozen owner loses its job when the lease expires; the other server finishes it, nothing counted twice" {
	with_openai_fake '{"stall_ms":150}'
	export AICHAT_JOB_LEASE_MS=1000
	serve_start
	id=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":2,\"items\":$(items 20)}" | json_get id)
	fake_wait_count 3
	serve2_start
	owner=$(sql "SELECT owner FROM jobs WHERE id = '$id'")
	[[ "$owner" == *":$SERVE_PID:"* ]]
	# the owner is alive but stopped: only the lease's end frees the job
	kill -STOP "$SERVE_PID"
	start=$(date +%s%N)
	for i in $(seq 100); do
		[[ "$(sql "SELECT owner FROM jobs WHERE id = '$id'")" == *":$SERVE2_PID:"* ]] && break
		sleep 0.05
	done
	took=$((($(date +%s%N) - start) / 1000000))
	echo "taken over after ${took} ms" >&3
	[[ "$(sql "SELECT owner FROM jobs WHERE id = '$id'")" == *":$SERVE2_PID:"* ]]
	[ "$took" -ge 300 ]
	kill -CONT "$SERVE_PID"
	wait_job "$SERVE2_URL" "$id" done 30
	run curl -sS "$SERVE2_URL/jobs/$id"
	[ "$(echo "$output" | json_get counts.done)" -eq 20 ]
	[ "$(curl -sS "$SERVE2_URL/jobs/$id/results" | wc -l)" -eq 20 ]
	[ "$(sql "SELECT count(*) FROM job_items WHERE job_id = '$id' AND state = 'queued'")" -eq 0 ]
	# at most the two items in flight at the stop were asked twice
	[ "$(fake_count)" -le 22 ]
}

@test "kill -9 of the owner: the other server resumes the job without redoing finished items" {
	with_openai_fake '{"stall_ms":150}'
	export AICHAT_JOB_LEASE_MS=60000
	serve_start
	serve2_start
	id=$(curl -sS "$SERVE_URL/jobs" -d "{\"model\":\"openai:gpt-4o-mini\",\"concurrency\":2,\"items\":$(items 16)}" | json_get id)
	fake_wait_count 4
	owner=$(sql "SELECT owner FROM jobs WHERE id = '$id'")
	if [[ "$owner" == *":$SERVE_PID:"* ]]; then
		victim=$SERVE_PID other=$SERVE2_URL
		unset SERVE_PID
	else
		victim=$SERVE2_PID other=$SERVE_URL
		unset SERVE2_PID
	fi
	kill -9 "$victim"
	wait "$victim" 2>/dev/null || true
	# a dead owner on this host needs no lease to expire (60 s here)
	wait_job "$other" "$id" done 20
	[ "$(curl -sS "$other/jobs/$id/results" | wc -l)" -eq 16 ]
	# asked again: at most the 2 items in flight at the kill and the 2
	# results still on their way to the database
	[ "$(fake_count)" -le 20 ]
}

@test "usage rows queued behind a held lock are all written once it goes: 30 exchanges, 30 rows, exact sums" {
	with_openai_fake '{"usage":{"prompt_tokens":5,"completion_tokens":2}}'
	serve_start
	# The first write makes the ledger's table; then the lock is taken.
	curl -sS -o /dev/null "$SERVE_URL/v1/chat/completions" \
		-d '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
	for i in $(seq 100); do
		[ "$(sql 'SELECT count(*) FROM usage')" -eq 1 ] && break
		sleep 0.05
	done
	hold_lock
	# Answered at once, every one; their rows wait for the lock, in line
	# behind the first, and go in together once it goes.
	echo '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
		>"$BATS_TEST_TMPDIR/req"
	seq 29 | xargs -P 8 -I{} curl -sS -m 10 -o /dev/null -w '%{http_code}\n' \
		"$SERVE_URL/v1/chat/completions" -d "@$BATS_TEST_TMPDIR/req" >"$BATS_TEST_TMPDIR/codes"
	[ "$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes")" -eq 29 ]
	[ "$(sqlite3 "$DB" 'PRAGMA query_only=1; SELECT count(*) FROM usage')" -eq 1 ]
	release_lock
	for i in $(seq 100); do
		[ "$(sql 'SELECT count(*) FROM usage')" -eq 30 ] && break
		sleep 0.1
	done
	[ "$(sql 'SELECT count(*) FROM usage')" -eq 30 ]
	[ "$(sql 'SELECT sum(prompt_tokens), sum(completion_tokens) FROM usage')" = "150|60" ]
	serve_stop
	[ "$(sql 'SELECT count(*) FROM usage')" -eq 30 ]
	run ! grep -q 'could not record the usage' "$SERVE_LOG"
}
