#!/usr/bin/env bash
# bench/overload.sh - `aichat serve` offered ten times what it admits, for a
# minute, next to the same server unloaded in the same run.  Not a test: it
# reports numbers, ratios and the targets of the hardening issue; it fails
# only when it cannot run at all.
#
# Capacity is set, not guessed: --max-upstream M with --max-queue 0, against
# the mock upstream's streams of TOKENS tokens INTERVAL ms apart (1 s by
# default), so the server can hold M streams a second.  Then:
#   unloaded  M/2 new streams a second for 10 s;
#   overload  10 x M new streams a second for DURATION s (open loop: the
#             arrivals are spread evenly whatever the answers do).
# Targets: no crash; memory bounded (peak RSS reported); admitted streams'
# TTFT p99 within 2x the unloaded p99; every refused request a 429 or 503
# with Retry-After, answered within 1 ms (time from connect to the status
# line, client side).
#
# Knobs: BENCH_OVERLOAD_SLOTS (M, 8), BENCH_DURATION (60), BENCH_TOKENS (50),
# BENCH_INTERVAL_MS (20).  Every process it starts is killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SLOTS=${BENCH_OVERLOAD_SLOTS:-8}
DURATION=${BENCH_DURATION:-60}
TOKENS=${BENCH_TOKENS:-50}
INTERVAL=${BENCH_INTERVAL_MS:-20}
DEADLINE=$((DURATION + 30))
WRK_THREADS=1 WRK_CONNS=1 RATE=1
OUT=build/bench/overload
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log "$OUT"/results.md

. bench/serve_lib.sh

BODY='{"model":"openai:bench","messages":[{"role":"user","content":"hi"}],"stream":true}'

# load LABEL STREAMS RAMP_MS: one open-loop run; its key=value line in L
load() {
	say "  $1: $2 streams over $3 ms ..."
	build/bench/streams --port "$AI_PORT" --conns "$2" --body "$BODY" \
		--expect-tokens "$TOKENS" --ramp-ms "$3" --deadline "$DEADLINE" \
		--label "$1" --watch-pid "$AI_PID" >"$TMP/load.out" 2>>"$OUT/streams.log" &
	run_child $!
	L=$(cat "$TMP/load.out")
	echo "$L" >>"$OUT/streams.txt"
}

say "== overload: $SLOTS slots, 10x for ${DURATION}s =="
AI_ARGS=(--max-upstream "$SLOTS" --max-queue 0)
start_upstream
start_aichat_log "$OUT/serve.log"
FDS0=$(ls "/proc/$AI_PID/fd" | wc -l)

load unloaded $((SLOTS * 10 / 2)) 10000
U=$L
load overload $((SLOTS * 10 * DURATION)) $((DURATION * 1000))
O=$L
sleep 2
ALIVE=no
ai_alive && ALIVE=yes
FDS1=$( [ "$ALIVE" = yes ] && ls "/proc/$AI_PID/fd" | wc -l || echo n/a)
# Connections to the upstream kept alive for reuse are not a leak.
POOL=$(ss -Htn state established "( dport = :$UP_PORT )" 2>/dev/null | wc -l)
HEALTH=$(curl -s -m 2 "http://127.0.0.1:$AI_PORT/health" || true)
idle_check "after the overload"
stop_aichat

u99=$(kv "$U" ttft_p99_ms)
o99=$(kv "$O" ttft_p99_ms)
offered=$(kv "$O" conns)
admitted=$(kv "$O" completed)
ref=$(kv "$O" refused)
ref99=$(kv "$O" refused_p99_ms)
refmax=$(kv "$O" refused_max_ms)
nora=$(kv "$O" refused_without_retry_after)
other=$((offered - admitted - ${ref:-0}))
rss0=$(kv "$O" rss_start_kib)
rss1=$(kv "$O" rss_max_kib)

{
	echo "### Overload: 10x capacity for ${DURATION} s ($(date -u +%Y-%m-%d), $(nproc) cores)"
	echo
	echo "\`aichat serve --max-upstream $SLOTS --max-queue 0\` against the mock upstream"
	echo "(streams of $TOKENS tokens, $INTERVAL ms apart); arrivals spread evenly."
	echo
	echo "| measure | unloaded ($((SLOTS / 2))/s) | overload ($((SLOTS * 10))/s) | target |"
	echo "|---|---:|---:|---|"
	echo "| streams offered | $(kv "$U" conns) | $offered | |"
	echo "| streams admitted and complete | $(kv "$U" completed) | $admitted | |"
	echo "| refused with 429/503 | $(kv "$U" refused) | ${ref:-0} | the rest |"
	echo "| neither (errors, timeouts) | | $other | 0 |"
	echo "| admitted TTFT p99 | $u99 ms | $o99 ms ($(ratio "$o99" "$u99")x) | ≤ 2x unloaded |"
	echo "| refused: status line p99 / max | | $ref99 / $refmax ms | ≤ 1 ms |"
	echo "| refused without Retry-After | | ${nora:-0} | 0 |"
	echo "| peak RSS (start) | | $rss1 KiB ($rss0) | bounded |"
	echo "| descriptors before / after (upstream connections kept alive) | | $FDS0 / $FDS1 ($POOL) | equal but for those |"
	echo "| alive after, /health | | $ALIVE, $HEALTH | ok |"
	echo "| stop | | $STOP_MSG | |"
	echo
	echo "Idle check: ${IDLE_NOTES[*]}"
} | tee "$OUT/results.md"
