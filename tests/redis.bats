#!/usr/bin/env bats
# tests/redis.bats - `aichat serve --redis`: several replicas share their
# rate limits and their response cache through one Redis, and a Redis that
# is down or does not answer is a documented mode, not a crash.
#
# Each test starts its own redis-server (redis_start in helpers.bash: a
# unix socket in its temp dir, no persistence) and stops it by PID;
# replicas are `aichat serve` processes started here, stopped by PID.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
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
	fake_stop
}

# replica_start VAR [ARG...]: one `aichat serve` on a free port, its URL in
# $VAR, its stderr in $BATS_TEST_TMPDIR/VAR.log.
replica_start() {
	local var=$1 log="$BATS_TEST_TMPDIR/$1.log" line i pid
	shift
	"$AICHAT_BIN" serve --port 0 "$@" </dev/null >/dev/null 2>"$log" 3>&- &
	pid=$!
	REPLICA_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$log" 2>/dev/null) && break
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	[ -n "$line" ] || { echo "replica_start: not listening" >&2; return 1; }
	printf -v "$var" '%s' "${line#listening on }"
}

# health_wait URL WORD: waits up to 5 s for /health's status to be WORD.
health_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -s "$1/health" | json_get status)" = "$2" ] && return 0
		sleep 0.05
	done
	curl -s "$1/health" >&2
	return 1
}

# chat URL BODY [CURL ARG...]: POST /chat, prints "STATUS BODY".
chat() {
	local url=$1 body=$2
	shift 2
	curl -s -w ' %{http_code}' "$@" "$url/chat" -d "$body" |
		awk '{ s = $NF; $NF = ""; sub(/ $/, ""); print s " " $0 }'
}

@test "redis: a key limited to 5/minute gets exactly 5 across three replicas; the rest 429 with Retry-After" {
	redis_start
	for v in A B C; do
		replica_start "$v" --redis "unix://$REDIS_SOCK" --rate-limit 5/minute --api-key k1
	done
	ok=0 limited=0
	for i in 1 2 3; do
		for u in "$A" "$B" "$C"; do
			code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k1' "$u/v1/models")
			case $code in
			200) ok=$((ok + 1)) ;;
			429) limited=$((limited + 1)) ;;
			*) echo "unexpected $code" >&2; false ;;
			esac
		done
	done
	[ "$ok" -eq 5 ]
	[ "$limited" -eq 4 ]
	run curl -s -D - -o /dev/null -H 'Authorization: Bearer k1' "$B/v1/models"
	[[ $output == *"429 Too Many Requests"* ]]
	[[ $output == *$'X-RateLimit-Limit: 5\r'* ]]
	[[ $output == *$'X-RateLimit-Remaining: 0\r'* ]]
	# One request comes back every 12 s.
	ra=$(printf '%s\n' "$output" | tr -d '\r' | sed -n 's/^Retry-After: //p')
	[ "$ra" -ge 1 ]
	[ "$ra" -le 12 ]
	# One key, under the prefix, holds the client: the key's id, not the key.
	run rcli --scan
	[ "$output" = "aichat:rl:key:1" ]
}

@test "redis: a client address limited to 4/minute gets exactly 4 across two replicas, and a POST waits for the verdict" {
	redis_start
	replica_start A --redis "unix://$REDIS_SOCK" --rate-limit 4/minute
	replica_start B --redis "unix://$REDIS_SOCK" --rate-limit 4/minute
	out=""
	for i in 1 2 3; do
		for u in "$A" "$B"; do
			r=$(chat "$u" '{"prompt":"hi","model":"mock:echo"}')
			out+="${r%% *} "
		done
	done
	[ "$out" = "200 200 200 200 429 429 " ]
	run rcli --scan
	[ "$output" = "aichat:rl:127.0.0.1" ]
}

@test "redis: an answer cached by replica A is an X-Cache HIT on replica B, the upstream called once" {
	redis_start
	fake_start '{"deltas":["Paris"]}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	replica_start A --redis "unix://$REDIS_SOCK"
	replica_start B --redis "unix://$REDIS_SOCK"
	body='{"prompt":"capital of France?","model":"openai:gpt-4o-mini","temperature":0}'
	run curl -s -D "$BATS_TEST_TMPDIR/a.h" "$A/chat" -d "$body"
	[ "$(json_get content <<<"$output")" = Paris ]
	first=$output
	run grep -ci '^x-cache' "$BATS_TEST_TMPDIR/a.h"
	[ "$output" = 0 ]
	run curl -s -D "$BATS_TEST_TMPDIR/b.h" "$B/chat" -d "$body"
	[ "$output" = "$first" ]
	run grep -i '^x-cache' "$BATS_TEST_TMPDIR/b.h"
	[ "$output" = $'X-Cache: HIT\r' ]
	[ "$(fake_count)" -eq 1 ]
	# The entry has its lifetime in Redis (--cache-ttl, 300 s).
	key=$(rcli --scan --pattern 'aichat:cache:*')
	[[ $key =~ ^aichat:cache:[0-9a-f]{64}$ ]]
	ttl=$(rcli PTTL "$key")
	[ "$ttl" -gt 200000 ]
	[ "$ttl" -le 300000 ]
}

@test "redis: no API key and no prompt is found in Redis, keys or values" {
	redis_start
	fake_start '{"deltas":["Paris"]}'
	export OPENAI_API_KEY=sk-upstream-secret-1234 OPENAI_BASE_URL="$FAKE_URL/v1"
	# (A bucket's key lives until it would be full again: 2/hour keeps
	# them for the scan.)
	replica_start A --redis "unix://$REDIS_SOCK" --rate-limit 2/hour \
		--api-key client-secret-5678
	for t in 0 0.5; do
		run curl -s -H 'Authorization: Bearer client-secret-5678' "$A/chat" \
			-d "{\"prompt\":\"zebra-prompt-91\",\"model\":\"openai:gpt-4o-mini\",\"temperature\":$t}"
		[ "$(json_get content <<<"$output")" = Paris ]
	done
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong-secret-0000' "$A/v1/models"
	[ "$output" = 401 ]
	dump="$BATS_TEST_TMPDIR/dump"
	: >"$dump"
	n=0
	while read -r k; do
		n=$((n + 1))
		printf '%s\n' "$k" >>"$dump"
		rcli --raw GET "$k" </dev/null >>"$dump"
	done < <(rcli --scan)
	# The limiter's key and the one cached answer (temperature 0).
	[ "$n" -eq 3 ]
	grep -q '^aichat:rl:key:1$' "$dump"
	grep -q '^aichat:rl:127.0.0.1$' "$dump"
	grep -q 'Paris' "$dump"
	run grep -c -e secret -e zebra-prompt "$dump"
	[ "$output" = 0 ]
}

@test "redis: killed, limits fail as configured, the cache is bypassed, /health is degraded and /metrics counts; restarted, the replicas come back" {
	redis_start
	fake_start '{"deltas":["Paris"]}'
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	# Defaults: closed for a key, open for an address.
	replica_start K --redis "unix://$REDIS_SOCK" --rate-limit 2/minute --api-key k1
	replica_start D --redis "unix://$REDIS_SOCK" --rate-limit 2/minute
	# Explicit: open for a key, closed for an address.
	replica_start O --redis "unix://$REDIS_SOCK" --rate-limit 2/minute --api-key k1 --redis-fail open
	replica_start C --redis "unix://$REDIS_SOCK" --rate-limit 2/minute --redis-fail closed
	body='{"prompt":"capital?","model":"openai:gpt-4o-mini","temperature":0}'
	run chat "$D" "$body"
	[ "${output%% *}" = 200 ]
	[ "$(fake_count)" -eq 1 ]
	health_wait "$K" ok

	redis_kill
	health_wait "$K" degraded
	run curl -s "$D/health"
	[ "$(json_get redis <<<"$output")" = down ]
	[[ $(json_get reason <<<"$output") == *"unix://$REDIS_SOCK"* ]]

	run chat "$K" "$body" -H 'Authorization: Bearer k1'
	[ "$output" = '503 {"error":{"code":"overloaded","message":"rate limit unavailable (Redis is down), try again later"}}' ]
	run chat "$C" "$body"
	[ "${output%% *}" = 503 ]
	[ "$(fake_count)" -eq 1 ]   # neither reached the upstream
	# Open: served, and past the limit of 2 as nothing counts; the cache
	# is bypassed, so every answer comes from the upstream, still right.
	for i in 1 2 3; do
		run curl -s -D "$BATS_TEST_TMPDIR/h" "$D/chat" -d "$body"
		[ "$(json_get content <<<"$output")" = Paris ]
		run grep -ci '^x-cache' "$BATS_TEST_TMPDIR/h"
		[ "$output" = 0 ]
	done
	run chat "$O" "$body" -H 'Authorization: Bearer k1'
	[ "${output%% *}" = 200 ]
	[ "$(fake_count)" -eq 5 ]
	run curl -s "$D/metrics"
	errs=$(printf '%s\n' "$output" | sed -n 's/^aichat_redis_errors_total //p')
	[ "$errs" -ge 3 ]
	[[ $output == *$'\naichat_redis_up 0\n'* ]]

	# Back: every replica reconnects (backoff up to 2 s) and limits hold.
	redis_start
	for u in "$K" "$D" "$O" "$C"; do
		health_wait "$u" ok
	done
	run curl -s "$D/health"
	[ "$output" = '{"status":"ok","redis":"up"}' ]
	out=""
	for i in 1 2 3; do
		r=$(chat "$C" '{"prompt":"hi","model":"mock:echo"}')
		out+="${r%% *} "
	done
	[ "$out" = "200 200 429 " ]
	# (The address has spent its 2 on C: K's key asks.)
	run curl -s -H 'Authorization: Bearer k1' "$K/metrics"
	[[ $output == *$'\naichat_redis_up 1\n'* ]]
	[[ $output == *$'\naichat_redis_roundtrip_seconds_count '* ]]
}

@test "redis: a Redis that does not answer costs at most --redis-timeout, then counts as down" {
	redis_start
	replica_start A --redis "unix://$REDIS_SOCK" --rate-limit 10/minute --redis-timeout 0.2
	health_wait "$A" ok
	kill -STOP "$REDIS_PID"
	# A client that leaves while its request waits for Redis: nothing
	# is left waiting for it.
	run curl -s -m 0.05 "$A/chat" -d '{"prompt":"hi","model":"mock:echo"}'
	[ "$status" -eq 28 ]
	start=$(date +%s%N)
	run chat "$A" '{"prompt":"hi","model":"mock:echo"}'
	ms=$((($(date +%s%N) - start) / 1000000))
	[ "${output%% *}" = 200 ]       # an address fails open
	[ "$ms" -ge 200 ]
	[ "$ms" -lt 2000 ]
	run curl -s "$A/health"
	[ "$(json_get status <<<"$output")" = degraded ]
	kill -CONT "$REDIS_PID"
	health_wait "$A" ok
	r=$(chat "$A" '{"prompt":"hi","model":"mock:echo"}')
	[ "$r" = '200 {"content":"hi","model":"mock:echo","prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"finish_reason":"stop"}' ]
}

@test "redis: a script flushed from Redis (NOSCRIPT) is sent again, and the limit still holds" {
	redis_start
	replica_start A --redis "unix://$REDIS_SOCK" --rate-limit 3/minute
	health_wait "$A" ok
	r=$(chat "$A" '{"prompt":"hi","model":"mock:echo"}')
	[ "${r%% *}" = 200 ]
	[ "$(rcli SCRIPT FLUSH)" = OK ]
	out=""
	for i in 1 2 3; do
		r=$(chat "$A" '{"prompt":"hi","model":"mock:echo"}')
		out+="${r%% *} "
	done
	[ "$out" = "200 200 429 " ]
	run curl -s "$A/health"
	[ "$output" = '{"status":"ok","redis":"up"}' ]
}

@test "redis: --redis-prefix keeps two deployments on one Redis apart" {
	redis_start
	replica_start A --redis "unix://$REDIS_SOCK" --rate-limit 2/minute --redis-prefix blue:
	replica_start B --redis "unix://$REDIS_SOCK" --rate-limit 2/minute --redis-prefix green:
	out=""
	for u in "$A" "$A" "$B" "$B" "$A" "$B"; do
		r=$(chat "$u" '{"prompt":"hi","model":"mock:echo"}')
		out+="${r%% *} "
	done
	[ "$out" = "200 200 200 200 429 429 " ]
	run bash -c "redis-cli -s '$REDIS_SOCK' --scan | sort"
	[ "$output" = $'blue:rl:127.0.0.1\ngreen:rl:127.0.0.1' ]
}

@test "redis: AICHAT_REDIS_URL, and a password: AUTH is sent, a refusal is the reason, the password shown nowhere" {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	redis_start --port "$port" --bind 127.0.0.1 --requirepass pw-right-42
	# No password: Redis refuses the script, and /health says why.
	AICHAT_REDIS_URL="unix://$REDIS_SOCK" replica_start N --rate-limit 2/minute
	health_wait "$N" degraded
	run curl -s "$N/health"
	[[ $(json_get reason <<<"$output") == "SCRIPT LOAD refused: NOAUTH"* ]]
	# The right password, over TCP, database 3.
	replica_start B --redis "redis://:pw-right-42@127.0.0.1:$port/3" --rate-limit 2/minute
	health_wait "$B" ok
	r=$(chat "$B" '{"prompt":"hi","model":"mock:echo"}')
	[ "${r%% *}" = 200 ]
	[ "$(rcli -a pw-right-42 --no-auth-warning -n 3 --scan)" = "aichat:rl:127.0.0.1" ]
	# A wrong one.
	replica_start W --redis "redis://:pw-wrong-43@127.0.0.1:$port" --rate-limit 2/minute
	health_wait "$W" degraded
	run curl -s "$W/health"
	[[ $(json_get reason <<<"$output") == "AUTH refused: "* ]]
	run grep -l -e pw-right -e pw-wrong "$BATS_TEST_TMPDIR/N.log" "$BATS_TEST_TMPDIR/B.log" "$BATS_TEST_TMPDIR/W.log"
	[ "$output" = "" ]
	run curl -s "$W/metrics"
	[[ $output != *pw-wrong* ]]
}

@test "redis: bad --redis settings are refused before anything starts, naming the option" {
	run -2 aichat serve --port 0 --redis rediss://h:6380
	[ "$output" = "aichat: serve: invalid Redis URL 'rediss://h:6380': rediss:// (TLS) is not supported by the hiredis aichat is built with; use redis:// or unix://" ]
	run -2 aichat serve --port 0 --redis http://h
	[ "$output" = "aichat: serve: invalid Redis URL 'http://h': expected redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH" ]
	run -2 aichat serve --port 0 --redis redis://h:0
	[ "$output" = "aichat: serve: invalid Redis URL 'redis://h:0': the port must be 1 to 65535" ]
	run -2 aichat serve --port 0 --redis redis://:hunter2@h:99999
	[ "$output" = "aichat: serve: invalid Redis URL '(password hidden)': the port must be 1 to 65535" ]
	run -2 aichat serve --port 0 --redis unix://relative.sock
	[ "$output" = "aichat: serve: invalid Redis URL 'unix://relative.sock': expected unix:///PATH (an absolute path)" ]
	AICHAT_REDIS_URL=redis:// run -2 aichat serve --port 0
	[ "$output" = "aichat: serve: invalid Redis URL 'redis://': no host" ]
	run -2 aichat serve --port 0 --redis-fail sometimes
	[ "$output" = "aichat: serve: invalid value 'sometimes' for '--redis-fail': must be one of: auto, open, closed" ]
	run -2 aichat serve --port 0 --redis-timeout 0
	[ "$output" = "aichat: serve: invalid value '0' for '--redis-timeout': must be >= 0.001" ]
	run -2 aichat serve --port 0 --redis-prefix ''
	[ "$output" = "aichat: serve: invalid value '' for '--redis-prefix': must be at least 1 character" ]
}

@test "redis: one command that times out is one error in /metrics, not two (the command and the connection it drops)" {
	redis_start
	# The jobs' idle look for items waits: the request's commands are the only ones.
	# No rate limit: the one command of /chat is the cache's GET.
	AICHAT_JOB_POLL_MS=60000 replica_start A --redis "unix://$REDIS_SOCK" \
		--redis-timeout 0.2
	health_wait "$A" ok
	errs() { curl -s "$A/metrics" | sed -n 's/^aichat_redis_errors_total //p'; }
	[ "$(errs)" = 0 ]
	kill -STOP "$REDIS_PID"
	run chat "$A" '{"prompt":"hi","model":"mock:echo","temperature":0}'
	[ "${output%% *}" = 200 ]       # a cache miss
	sleep 0.3                       # the reconnection waits for the stopped Redis
	[ "$(curl -s "$A/health" | json_get reason)" = "no reply within 200 ms" ]
	[ "$(errs)" = 1 ]
	kill -CONT "$REDIS_PID"
	health_wait "$A" ok
	[ "$(errs)" = 1 ]
}

@test "redis: the config file's \"redis\" settings apply when no option is given; an option wins" {
	redis_start
	export AICHAT_CONFIG="$BATS_TEST_TMPDIR/config.json"
	printf '{"redis": {"url": "unix://%s", "prefix": "cfg:", "fail": "closed", "timeout": 0.5}}\n' \
		"$REDIS_SOCK" >"$AICHAT_CONFIG"
	replica_start A --rate-limit 2/minute
	replica_start B --rate-limit 2/minute --redis-prefix cli:
	for u in "$A" "$B"; do
		r=$(chat "$u" '{"prompt":"hi","model":"mock:echo"}')
		[ "${r%% *}" = 200 ]
	done
	run bash -c "redis-cli -s '$REDIS_SOCK' --scan | sort"
	[ "$output" = $'cfg:rl:127.0.0.1\ncli:rl:127.0.0.1' ]
	# fail: closed from the file: an address is refused while Redis is down.
	redis_stop
	health_wait "$A" degraded
	r=$(chat "$A" '{"prompt":"hi","model":"mock:echo"}')
	[ "${r%% *}" = 503 ]
	# A bad URL in the file is a configuration error naming it.
	printf '{"redis": {"url": "rediss://h"}}\n' >"$AICHAT_CONFIG"
	run -3 "$AICHAT_BIN" serve --port 0
	[[ $output == "aichat: serve: config file '$AICHAT_CONFIG': 'redis.url': invalid Redis URL 'rediss://h': rediss://"* ]]
	# A bad setting in the file: exit 3, naming it.
	printf '{"redis": {"url": "redis://h", "fail": "sometimes"}}\n' >"$AICHAT_CONFIG"
	run -3 "$AICHAT_BIN" serve --port 0
	[ "$output" = "aichat: serve: config file '$AICHAT_CONFIG': 'redis.fail' must be auto, open or closed" ]
}

@test "redis: with --workers 2 /health and /metrics speak for every loop's connection: a frozen Redis seen by one loop is degraded on all" {
	redis_start
	# (The first loop's jobs would look for items every second: not
	# while this test looks.)
	AICHAT_JOB_POLL_MS=600000 replica_start A --workers 2 --redis "unix://$REDIS_SOCK" \
		--rate-limit 100/minute --redis-timeout 0.2
	health_wait "$A" ok
	# The metrics add up both loops' connections: one connect each,
	# whichever loop answers.
	for i in 1 2 3 4 5 6; do
		run curl -s "$A/metrics"
		grep -qx 'aichat_redis_connects_total 2' <<<"$output"
	done
	kill -STOP "$REDIS_PID"
	# One request: the loop it reaches waits on Redis and counts it down;
	# the other loop has not sent anything.
	r=$(chat "$A" '{"prompt":"hi","model":"mock:echo"}')
	[ "${r%% *}" = 200 ]
	# Every new connection, whichever loop takes it, says degraded.
	for i in $(seq 20); do
		run curl -s "$A/health"
		[ "$(json_get status <<<"$output")" = degraded ]
		[ "$(json_get redis <<<"$output")" = down ]
		[[ $(json_get reason <<<"$output") == *"no reply within 200 ms"* ]]
		run curl -s "$A/metrics"
		[[ $output == *$'\naichat_redis_up 0\n'* ]]
	done
	kill -CONT "$REDIS_PID"
	health_wait "$A" ok
	run curl -s "$A/metrics"
	[[ $output == *$'\naichat_redis_up 1\n'* ]]
	# Both loops' connections count (one connect each, at least).
	n=$(grep -o '^aichat_redis_connects_total [0-9]*' <<<"$output" | cut -d' ' -f2)
	[ "$n" -ge 2 ]
}
