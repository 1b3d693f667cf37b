#!/usr/bin/env bash
# bench/relay_ir.sh - instructions `aichat serve` executes per relayed
# request and per relayed token, counted by valgrind (callgrind), so that a
# change to the relay path can be measured on a machine whose other load
# makes CPU time too noisy to compare (no hardware counters in a VM).
# Not a test.  Counts every thread of aichat (the loop and the database
# writer); the instructions of starting and stopping an idle server are
# measured apart and taken off.
#
#   bench/relay_ir.sh [AICHAT_BINARY]
#
# Knobs: IR_SECONDS (wrk seconds, 5), IR_STREAMS (streams, 200), IR_ROUTE
# (openai: POST /v1/chat/completions to an OpenAI upstream, the default;
# anthropic: POST /v1/messages to an Anthropic upstream).  Every
# process it starts is killed by PID on exit (serve_lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$(realpath "${1:-./aichat}")
DURATION=${IR_SECONDS:-5}
NSTREAMS=${IR_STREAMS:-200}
WRK_THREADS=1
WRK_CONNS=16
TOKENS=50
INTERVAL=20
RATE=1000
DEADLINE=60
OUT=build/bench/ir
ROUTE=${IR_ROUTE:-openai}
mkdir -p "$OUT"
. bench/serve_lib.sh
command -v valgrind >/dev/null || { say "relay_ir.sh: valgrind not found"; exit 1; }

# start_vg NAME: aichat serve under callgrind; sets AI_PID AI_PORT
start_vg() {
	local i
	mkdir -p "$TMP/home"
	rm -f "$OUT/$1.cg" "$OUT/$1.log"
	env -i PATH=/usr/bin:/bin HOME="$TMP/home" AICHAT_HOME="$TMP/home/aichat" \
		XDG_CONFIG_HOME="$TMP/home/.config" \
		OPENAI_BASE_URL="http://127.0.0.1:$UP_PORT/v1" OPENAI_API_KEY=bench \
		ANTHROPIC_BASE_URL="http://127.0.0.1:$UP_PORT" ANTHROPIC_API_KEY=bench \
		valgrind --tool=callgrind --callgrind-out-file="$OUT/$1.cg" \
		"$BIN" serve --port 0 --max-connections 20000 --max-connections-per-ip 0 \
		--log-format text --drain-timeout 5 2>"$OUT/$1.log" &
	AI_PID=$!
	PIDS+=("$AI_PID")
	AI_PORT=
	for ((i = 0; i < 600; i++)); do
		# The log may not exist yet: the child opens it after fork.
		AI_PORT=$(sed -n 's/^aichat: listening on http:.*:\([0-9]*\)$/\1/p' "$OUT/$1.log" 2>/dev/null | head -1 || true)
		[ -n "$AI_PORT" ] && break
		sleep 0.05
	done
	[ -n "$AI_PORT" ] || { say "relay_ir.sh: aichat serve did not start"; cat "$OUT/$1.log" >&2; exit 1; }
}

# stop_vg NAME: SIGTERM, wait; the instructions counted in IR
stop_vg() {
	kill -TERM "$AI_PID" 2>/dev/null || true
	wait "$AI_PID" 2>/dev/null || true
	forget_pid "$AI_PID"
	IR=$(awk '/^(summary|totals):/ { print $2; exit }' "$OUT/$1.cg")
}

case $ROUTE in
openai) ;;
anthropic)
	WRK_PATH=/v1/messages STREAM_PATH=/v1/messages
	BODY_OPENAI='{"model":"anthropic:bench","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}'
	BODY_STREAM='{"model":"anthropic:bench","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"stream":true}' ;;
*) say "relay_ir.sh: IR_ROUTE is openai or anthropic, not '$ROUTE'"; exit 2 ;;
esac

start_upstream
start_vg idle
sleep 1
stop_vg idle
IDLE=$IR

start_vg wrk
wrk_run ir "$AI_PORT" "$BODY_OPENAI"
stop_vg wrk
IR_WRK=$IR
REQ=$W_REQ

start_vg streams
stream_run ir "$AI_PORT" "$NSTREAMS"
stop_vg streams
IR_STR=$IR
TOK=$(kv "$S_LINE" tokens)

awk -v i="$IDLE" -v w="$IR_WRK" -v r="$REQ" -v s="$IR_STR" -v t="$TOK" -v n="$NSTREAMS" -v b="$BIN" -v route="$ROUTE" 'BEGIN {
	printf "binary %s, route %s\n", b, route
	printf "idle start+stop: %.1f M instructions\n", i / 1e6
	printf "non-streamed: %d requests, %.0f instructions per request\n", r, (w - i) / r
	printf "streams: %d streams, %d tokens, %.0f instructions per token (%.0f per stream)\n", n, t, (s - i) / t, (s - i) / n
}'
