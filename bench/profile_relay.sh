#!/usr/bin/env bash
# bench/profile_relay.sh - where `aichat serve` spends its CPU relaying:
# perf samples of the serve process during (a) wrk -t1 -c64 of
# non-streamed POST /v1/chat/completions to the bench's mock upstream and
# (b) 1,000 concurrent 50-token streams (bench/streams.c).  Prints the top
# of each profile (self time, % of aichat's samples).  Not a test; needs
# perf (Debian: linux-perf) and wrk.  Every process it starts is killed by
# PID on exit (serve_lib.sh); every run is bounded in time.
#
# Knobs: BENCH_DURATION (wrk seconds, 5), PROFILE_STREAMS (1000),
# PROFILE_TOP (25 lines), PROFILE_ONLY (streams or wrk), PROFILE_CG (perf
# record's call-graph option, -g; "--call-graph dwarf" sees through
# libraries built without frame pointers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-5}
WRK_THREADS=1
WRK_CONNS=64
TOKENS=50
INTERVAL=20
RATE=10000
DEADLINE=30
NSTREAMS=${PROFILE_STREAMS:-1000}
TOP=${PROFILE_TOP:-25}
OUT=build/bench/profile
mkdir -p "$OUT"
. bench/serve_lib.sh

command -v perf >/dev/null || { say "profile_relay.sh: perf not found (apt-get install -y linux-perf)"; exit 1; }

report() {  # report NAME: the top of the flat profile
	perf report -i "$OUT/$1.data" --no-children --sort dso,symbol -g none \
		--percent-limit 0.7 --stdio 2>/dev/null |
		grep -v '^#' | grep -v '^$' | head -"$TOP" >"$OUT/$1.top"
	say "== $1: top of aichat's self time =="
	cat "$OUT/$1.top" >&2
}

start_upstream
start_aichat_log "$OUT/serve.log"
sleep 0.5

# (b) streams first, on a fresh server (as serve.sh).
if [ "${PROFILE_ONLY:-streams}" = streams ]; then
perf record -F 999 ${PROFILE_CG:--g} -p "$AI_PID" -o "$OUT/streams.data" -- sleep $((DEADLINE)) 2>/dev/null &
PP=$!
PIDS+=("$PP")
stream_run profile "$AI_PORT" "$NSTREAMS" "$AI_PID"
say "  $S_LINE"
kill -INT "$PP" 2>/dev/null || true
wait "$PP" 2>/dev/null || true
forget_pid "$PP"
report streams
fi
[ "${PROFILE_ONLY:-wrk}" = wrk ] || exit 0

perf record -F 999 ${PROFILE_CG:--g} -p "$AI_PID" -o "$OUT/wrk.data" -- sleep $((DURATION + 2)) 2>/dev/null &
PP=$!
PIDS+=("$PP")
sleep 0.3
wrk_run profile "$AI_PORT" "$BODY_OPENAI" "$AI_PID"
say "  wrk: $W_RPS req/s, p50 $W_P50 ms, $W_CPU us CPU per request"
wait "$PP" 2>/dev/null || true
forget_pid "$PP"
report wrk
