#!/usr/bin/env bash
# bench/redis.sh - what sharing state through Redis costs: requests per
# second through 2 replicas of `aichat serve` sharing one Redis (--redis)
# against 2 that keep their limits and cache to themselves, and the Redis
# round trips per request.
#
# Each replica runs with --rate-limit (a limit nobody reaches) and the
# cache; the upstream is mock:echo (no network), so what is measured is
# serve itself and its talk to Redis.  Two workloads:
#   hits    the same body every time: after the first, a cache hit
#           (target: 2 round trips, the limit's EVALSHA and the cache's GET)
#   misses  a new prompt every request: the limit, the GET that misses and
#           the SET that stores the answer (3)
# Round trips are counted by the replicas themselves
# (aichat_redis_roundtrip_seconds_count, before and after) and checked
# against Redis' INFO commandstats (the top-level commands).
#
# Usage: bench/redis.sh [SECONDS]   (default 5 per run; wrk, 2 x 32
# connections, one thread each).  Everything started here is stopped by
# PID on exit (bench/serve_lib.sh's cleanup); nothing outlives the script.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-5}
CONNS=${CONNS:-32}

# say, PIDS, TMP and the cleanup that kills every PID listed on exit.
mkdir -p build/bench
. bench/serve_lib.sh

for tool in wrk redis-server redis-cli; do
	command -v "$tool" >/dev/null || { say "redis.sh: $tool not found (tools/deps.sh installs it)"; exit 1; }
done
[ -x ./aichat ] || make --no-print-directory all >&2

export AICHAT_HOME="$TMP/home" AICHAT_JOB_POLL_MS=1000
SOCK="$TMP/redis.sock"

redis_start() {
	local i
	redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --save '' \
		--appendonly no </dev/null >"$TMP/redis.log" 2>&1 &
	REDIS_PID=$!
	PIDS+=("$REDIS_PID")
	for ((i = 0; i < 100; i++)); do
		redis-cli -s "$SOCK" PING 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	say "redis.sh: redis-server did not start"
	exit 1
}

# replica NAME [ARG...]: an aichat serve on a free port; its URL in
# $TMP/NAME.url, its PID in PIDS.
replica() {
	local name=$1 line i
	shift
	./aichat serve --port 0 --rate-limit 1000000/second --log-format text "$@" \
		</dev/null >/dev/null 2>"$TMP/$name.log" &
	PIDS+=("$!")
	REPLICAS+=("$!")
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$TMP/$name.log" 2>/dev/null) && break
		sleep 0.05
	done
	[ -n "$line" ] || { say "redis.sh: replica $name did not start"; cat "$TMP/$name.log" >&2; exit 1; }
	echo "${line#listening on }" >"$TMP/$name.url"
}

REPLICAS=()
stop_replicas() {
	local pid
	for pid in "${REPLICAS[@]+"${REPLICAS[@]}"}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		forget_pid "$pid"
	done
	REPLICAS=()
}

cat >"$TMP/hits.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"the same question","model":"mock:echo","temperature":0}'
EOF
# One script per replica: the two never ask the same question (Lua's
# random numbers start from the same seed in both wrk processes).
for r in A B; do
	cat >"$TMP/misses.$r.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
	n = n + 1
	return wrk.format(nil, nil, nil,
		'{"prompt":"question $r $$ ' .. n .. '","model":"mock:echo","temperature":0}')
end
EOF
	cp "$TMP/hits.lua" "$TMP/hits.$r.lua"
done

# roundtrips URL: the replica's own count of Redis round trips.
roundtrips() {
	curl -s "$1/metrics" | awk '$1 == "aichat_redis_roundtrip_seconds_count" { print $2 }'
}

# Top-level commands Redis ran (commandstats counts the calls of scripts
# too: those are left out by taking only what a client sends).
redis_calls() {
	redis-cli -s "$SOCK" INFO commandstats | tr -d '\r' |
		awk -F'[:=,]' '/^cmdstat_(evalsha|eval|get|set|hgetall|xclaim)/ { print $1, $3 }'
}

# run LABEL WORKLOAD: wrk on both replicas at once; prints
# "LABEL WORKLOAD rps requests non2xx rt_per_req".
run() {
	local label=$1 work=$2 a b before=0 after=0 reqs=0 rps=0 bad=0 f
	a=$(cat "$TMP/A.url")
	b=$(cat "$TMP/B.url")
	# Warm: the first answer of "hits" is cached before measuring.
	curl -s -o /dev/null -H 'Content-Type: application/json' "$a/chat" \
		-d '{"prompt":"the same question","model":"mock:echo","temperature":0}'
	if [ "$label" = redis ]; then
		before=$(($(roundtrips "$a") + $(roundtrips "$b")))
		redis-cli -s "$SOCK" CONFIG RESETSTAT >/dev/null
	fi
	timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/$work.A.lua" "$a/chat" \
		>"$TMP/wrk.A" 2>&1 &
	local wa=$!
	timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/$work.B.lua" "$b/chat" \
		>"$TMP/wrk.B" 2>&1 &
	local wb=$!
	PIDS+=("$wa" "$wb")
	wait "$wa" || true
	wait "$wb" || true
	forget_pid "$wa"
	forget_pid "$wb"
	for f in "$TMP/wrk.A" "$TMP/wrk.B"; do
		reqs=$((reqs + $(awk '/requests in/ { print $1 }' "$f")))
		rps=$(awk -v r="$rps" '/^Requests\/sec/ { printf "%.0f", r + $2 }' "$f")
		bad=$((bad + $(awk '/Non-2xx/ { print $NF }' "$f" | tr -d ' ' || echo 0) + 0))
	done
	if [ "$label" = redis ]; then
		after=$(($(roundtrips "$a") + $(roundtrips "$b")))
		redis_calls | sed "s/^/  $work: /" >&2
	fi
	awk -v l="$label" -v w="$work" -v rps="$rps" -v n="$reqs" -v bad="$bad" \
	    -v rt=$((after - before)) 'BEGIN {
		printf "%-8s %-7s %8d rps %8d requests %5d non-2xx", l, w, rps, n, bad
		if (l == "redis") printf "  %.2f Redis round trips a request", rt / (n ? n : 1)
		printf "\n" }'
}

say "redis.sh: nproc $(nproc), ${DURATION}s a run, 2 x wrk -t1 -c$CONNS"
replica A
replica B
run local hits
run local misses
stop_replicas

redis_start
replica A --redis "unix://$SOCK"
replica B --redis "unix://$SOCK"
run redis hits
run redis misses
stop_replicas
