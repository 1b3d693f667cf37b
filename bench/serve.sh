#!/usr/bin/env bash
# bench/serve.sh - `aichat serve` under load, next to nginx relaying the
# same load as a pure reverse proxy and to the same load sent straight to a
# mock upstream, all in the same run, in front of the same upstream.  Not a
# test: it reports numbers, ratios and the project's targets (issue #12's
# goals against nginx first); it fails only when it cannot run at all.
#
# The servers: direct (the mock upstream alone), nginx with 1 worker and
# with `worker_processes auto` (bench/nginx.conf; Debian's package,
# installed when missing, never the system service: bench/nginx_lib.sh),
# aichat serve with one loop, and with --workers 2 when the build has it
# (otherwise those rows read "n/a (no --workers in this build)").
#
#   (b) streaming, first, on fresh servers: 100, 1,000 and 5,000
#       concurrent streams of 50 tokens, one every 20 ms, to each server in
#       turn: completion, TTFT, stream time, the server's CPU per relayed
#       token, RSS, RSS per held stream, threads, and the most streams the
#       upstream served at once (its GET /stats).
#   (a) non-streaming: wrk POST /v1/chat/completions against the mock
#       upstream (baseline), through nginx, through aichat to it
#       (openai:bench), and against aichat's own mock:echo model (no
#       upstream: the server's ceiling); then both aichat runs again on a
#       second server whose request log goes to /dev/null instead of a
#       file: what logging costs.
#
# Streaming runs first because a client hanging up in the middle of a
# non-streaming request (wrk does, when it stops) has been seen to leave
# aichat busy; an idle check (CPU over 1 s, CLOSE-WAIT sockets) after each
# phase shows it.  aichat runs with --drain-timeout 5 so that stopping it
# stays bounded; how it stopped is reported.
#
# Every process it starts is killed by PID on exit; every load run is
# bounded in time.  Raw outputs and a summary of aichat's request log are
# kept in build/bench/serve/; the final table also goes to
# build/bench/serve/results.md.
#
# Knobs (environment): BENCH_DURATION (wrk seconds, 10), BENCH_WRK_THREADS
# (1), BENCH_WRK_CONNS (64), BENCH_LEVELS ("100 1000 5000"), BENCH_TOKENS
# (50), BENCH_INTERVAL_MS (20), BENCH_RATE (new streams per second, 10000),
# BENCH_DEADLINE (seconds per streaming run, 30), BENCH_COMPARE_MID and
# BENCH_COMPARE_TOP (the levels issue #12's figures are read at, 1000 and
# 5000), BENCH_NO_INSTALL=1 (never install nginx: its rows are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10}
WRK_THREADS=${BENCH_WRK_THREADS:-1}
WRK_CONNS=${BENCH_WRK_CONNS:-64}
LEVELS=${BENCH_LEVELS:-"100 1000 5000"}
TOKENS=${BENCH_TOKENS:-50}
INTERVAL=${BENCH_INTERVAL_MS:-20}
RATE=${BENCH_RATE:-10000}
DEADLINE=${BENCH_DEADLINE:-30}

OUT=build/bench/serve
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log "$OUT"/results.md

. bench/serve_lib.sh
. bench/nginx_lib.sh

# ==== run ====

NPROC=$(nproc)
DATE=$(date -u +%Y-%m-%d)
AI_BUILD="binary built $(date -u -r aichat '+%Y-%m-%d %H:%M UTC')"
[ -n "$(find src include -newer aichat 2>/dev/null | head -1)" ] &&
	AI_BUILD="$AI_BUILD (older than some of src/ or include/: run make)"
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
	AI_BUILD="$AI_BUILD, tree at commit $(git rev-parse --short HEAD)"
	[ -n "$(git --no-optional-locks status --porcelain -- src include 2>/dev/null)" ] &&
		AI_BUILD="$AI_BUILD with uncommitted changes in src/ or include/"
fi
say "== serve: aichat serve vs nginx vs a mock upstream ($NPROC cores) =="
nginx_setup
say "  nginx: $NGINX_NOTE"
# `--workers N` runs N event loops; a build without it gets "n/a" rows.
# With it, the "1 loop" server says --workers 1 (the default is one loop
# per core).
HAVE_WORKERS=0 ONE_LOOP=()
# (The help is read whole first: grep -q leaving early would be a SIGPIPE,
# a failed pipeline under pipefail.)
if grep -q -- '--workers' <<<"$("$ROOT/aichat" serve --help 2>&1)"; then
	HAVE_WORKERS=1 ONE_LOOP=(--workers 1)
fi
start_upstream

# The servers under test, all in front of the same upstream, all started
# now and measured one after the other.  SIDES lists the ones that run:
# direct (the upstream alone), nginx-1 (worker_processes 1), nginx-auto
# (worker_processes auto: one per core), aichat (one loop), aichat-w2
# (--workers 2).  SIDE_PORT, SIDE_WATCH (PIDs whose CPU and RSS count,
# comma-separated) and SIDE_IDLE (their summed RSS at start, KiB).
declare -A SIDE_PORT SIDE_WATCH SIDE_IDLE SIDE_NAME
SIDES=(direct)
SIDE_PORT[direct]=$UP_PORT
SIDE_NAME[direct]="mock upstream, direct"
SIDE_NAME[nginx-1]="nginx, 1 worker"
SIDE_NAME[nginx-auto]="nginx, worker_processes auto ($NPROC)"
SIDE_NAME[aichat]="aichat serve, 1 loop"
SIDE_NAME[aichat-w2]="aichat serve --workers 2"
if [ -n "$NGINX_BIN" ]; then
	for w in 1 auto; do
		if nginx_start "$w" "$w"; then
			SIDES+=("nginx-$w")
			SIDE_PORT[nginx-$w]=$NG_PORT SIDE_WATCH[nginx-$w]=$NG_PIDS
			say "  nginx ($w) master pid $NG_PID, processes $NG_PIDS, port $NG_PORT"
		fi
	done
fi
AI2_PID='' AI2_PORT='' AI2_LOG=''
if [ "$HAVE_WORKERS" = 1 ]; then
	AI_ARGS=(--workers 2)
	start_aichat_log "$OUT/serve-w2.log"
	AI2_PID=$AI_PID AI2_PORT=$AI_PORT AI2_LOG=$AI_LOG
fi
AI_ARGS=("${ONE_LOOP[@]+"${ONE_LOOP[@]}"}")
start_aichat_log "$OUT/serve.log"
AI_ARGS=()
SIDES+=(aichat)
SIDE_PORT[aichat]=$AI_PORT SIDE_WATCH[aichat]=$AI_PID
if [ -n "$AI2_PID" ]; then
	SIDES+=(aichat-w2)
	SIDE_PORT[aichat-w2]=$AI2_PORT SIDE_WATCH[aichat-w2]=$AI2_PID
fi
sleep 0.5
for side in "${SIDES[@]}"; do
	[ -n "${SIDE_WATCH[$side]:-}" ] && SIDE_IDLE[$side]=$(sum_rss "${SIDE_WATCH[$side]}")
done
IDLE_RSS=$(status_kib "$AI_PID" VmRSS)
IDLE_ANON=$(status_kib "$AI_PID" RssAnon)
IDLE_FILE=$(status_kib "$AI_PID" RssFile)
IDLE_THREADS=$(status_kib "$AI_PID" Threads)
MAX_THREADS=$IDLE_THREADS
say "  aichat serve pid $AI_PID on port $AI_PORT, upstream pid $UP_PID on port $UP_PORT; idle RSS $IDLE_RSS KiB"
[ -n "$AI2_PID" ] && say "  aichat serve --workers 2 pid $AI2_PID on port $AI2_PORT"
idle_check "at start"

# stop_ai2: stop_aichat for the --workers 2 server.
stop_ai2() {
	local p=$AI_PID l=$AI_LOG
	AI_PID=$AI2_PID AI_LOG=$AI2_LOG
	if ai_alive; then stop_aichat; else STOP_MSG="had died"; fi
	AI_PID=$p AI_LOG=$l
}

# (b) first, on a fresh server: a client that hangs up during a
# non-streaming request (as wrk does when it stops) can leave aichat busy,
# which would skew everything measured after it.
declare -A S
declare -a S_CPT S_PER S_VS S_COMP
for n in $LEVELS; do
	for side in "${SIDES[@]}"; do
		case $side in
		aichat)
			if ! ai_alive; then
				say "serve.sh: aichat serve is not running: level $n skipped"
				S[aichat-$n]="completed=0 failed=$n"
				continue
			fi ;;
		aichat-w2)
			if ! kill -0 "$AI2_PID" 2>/dev/null; then
				say "serve.sh: aichat serve --workers 2 is not running: level $n skipped"
				S[aichat-w2-$n]="completed=0 failed=$n"
				continue
			fi ;;
		esac
		stream_run "$side-$n" "${SIDE_PORT[$side]}" "$n" "${SIDE_WATCH[$side]:-}"
		S[$side-$n]=$S_LINE
		if [ "$side" = aichat ]; then
			t=$(kv "$S_LINE" threads_max)
			if [ -n "$t" ] && ((t > MAX_THREADS)); then MAX_THREADS=$t; fi
		fi
	done
done
AFTER_RSS=$(status_kib "$AI_PID" VmRSS)
AFTER_HWM=$(status_kib "$AI_PID" VmHWM)
AFTER_FDS=$(ls "/proc/$AI_PID/fd" 2>/dev/null | wc -l)
idle_check "after the streaming levels"

STOP_NOTES=()
msg="had died"
if ai_alive; then stop_aichat; msg=$STOP_MSG; fi
STOP_NOTES+=("streaming server, after the streaming levels: $msg")
if [ -n "$AI2_PID" ]; then
	stop_ai2
	STOP_NOTES+=("streaming server with --workers 2, after the streaming levels: $STOP_MSG")
fi

# (a) Each aichat run gets a fresh server: a run must not inherit what
# the previous one's end did to the server (see the idle checks).  nginx
# keeps its processes (its workers are long-lived by design).
declare -A A_RPS A_P50 A_P99 A_ERR A_CPU A_THR
AI_RUNS=(openai-logfile openai-nolog mock-logfile mock-nolog)
[ "$HAVE_WORKERS" = 1 ] && AI_RUNS+=(w2-openai-logfile)
if [ "$HAVE_WRK" = 1 ]; then
	wrk_run direct "$UP_PORT" "$BODY_OPENAI"
	A_RPS[direct]=$W_RPS A_P50[direct]=$W_P50 A_P99[direct]=$W_P99 A_ERR[direct]=$W_ERR A_CPU[direct]=n/a A_THR[direct]=n/a
	for side in nginx-1 nginx-auto; do
		[ -n "${SIDE_WATCH[$side]:-}" ] || continue
		wrk_run "$side" "${SIDE_PORT[$side]}" "$BODY_OPENAI" "${SIDE_WATCH[$side]}"
		A_RPS[$side]=$W_RPS A_P50[$side]=$W_P50 A_P99[$side]=$W_P99
		A_ERR[$side]=$W_ERR A_CPU[$side]=$W_CPU A_THR[$side]=n/a
	done
	for run in "${AI_RUNS[@]}"; do
		body=$BODY_OPENAI
		case $run in mock-*) body=$BODY_MOCK ;; esac
		log="$OUT/serve-$run.log"
		case $run in *-nolog) log=/dev/null ;; esac
		AI_ARGS=("${ONE_LOOP[@]+"${ONE_LOOP[@]}"}")
		case $run in w2-*) AI_ARGS=(--workers 2) ;; esac
		start_aichat_log "$log"
		AI_ARGS=()
		sleep 0.3
		wrk_run "$run" "$AI_PORT" "$body" "$AI_PID"
		A_RPS[$run]=$W_RPS A_P50[$run]=$W_P50 A_P99[$run]=$W_P99
		A_ERR[$run]=$W_ERR A_CPU[$run]=$W_CPU A_THR[$run]=$W_THR
		if [ "$W_THR" != n/a ] && ((W_THR > MAX_THREADS)); then MAX_THREADS=$W_THR; fi
		idle_check "after wrk $run"
		msg="had died"
		if ai_alive; then stop_aichat; msg=$STOP_MSG; fi
		STOP_NOTES+=("wrk $run server: $msg")
	done
fi

# The request logs: what they said, then drop the bulk of them.
LOG_LINES=$(cat "$OUT"/serve*.log | wc -l)
LOG_BYTES=$(cat "$OUT"/serve*.log | wc -c)
awk '$5 ~ /^[0-9]+$/ { st[$5]++; for (i = 7; i <= NF; i++) if ($i ~ /^error=/) er[$i]++;
	if ($0 ~ /client_disconnected/) cd++ }
	END { for (s in st) printf "status %s: %d\n", s, st[s];
	      for (e in er) printf "%s: %d\n", e, er[e];
	      printf "client_disconnected: %d\n", cd }' "$OUT"/serve*.log | sort >"$OUT/serve-log-summary.txt"
for f in "$OUT"/serve*.log; do
	echo "== $f"
	grep -v '^20[0-9-]*T[0-9:.]*Z req_[0-9a-f]* [A-Z]* [^ ]* 200 ' "$f" | head -100 || true
done >"$OUT/serve-log-unusual.txt"
rm -f "$OUT"/serve*.log

# nginx: its error logs are kept (short), its access logs dropped.
nginx_cleanup
for p in "${NGINX_PREFIXES[@]+"${NGINX_PREFIXES[@]}"}"; do
	rm -f "$p/access.log"
	rm -rf "$p/tmp"
done

kill "$UP_PID" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
forget_pid "$UP_PID"

# ==== the table ====

# ==== aichat against nginx: the figures of issue #12 ====

# The levels the figures are read at (each must be in BENCH_LEVELS).
L_MID=${BENCH_COMPARE_MID:-1000}
L_TOP=${BENCH_COMPARE_TOP:-5000}
ALL_SIDES=(direct nginx-1 nginx-auto aichat aichat-w2)
declare -A F_RPS F_CPR F_CPT F_TTFT1 F_ADD1 F_TTFT2 F_ADD2 F_FLY2 F_DONE2 F_RSS1
num() { awk -v v="$1" 'BEGIN { if (v == "" || v == "n/a" || v + 0 < 0) print "n/a"; else print v }'; }
sub_ms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "n/a" || b == "n/a" || a < 0 || b < 0) print "n/a"; else printf "%.1f", a - b }'; }
for side in "${ALL_SIDES[@]}"; do
	case $side in
	aichat) run=openai-logfile ;;
	aichat-w2) run=w2-openai-logfile ;;
	*) run=$side ;;
	esac
	F_RPS[$side]=$(num "${A_RPS[$run]:-}")
	F_CPR[$side]=$(num "${A_CPU[$run]:-}")
	l=${S[$side-$L_MID]:-}
	if [ -n "$l" ] && [ "$side" != direct ]; then
		F_CPT[$side]=$(awk -v c="$(kv "$l" cpu_us)" -v t="$(kv "$l" tokens)" 'BEGIN { if (t > 0 && c >= 0) printf "%.1f", c / t; else print "n/a" }')
		F_RSS1[$side]=$(awk -v r="$(kv "$l" rss_max_kib)" 'BEGIN { if (r > 0) printf "%.1f", r / 1024; else print "n/a" }')
	else
		F_CPT[$side]=n/a F_RSS1[$side]=n/a
	fi
	F_TTFT1[$side]=$(num "$(kv "$l" ttft_p50_ms)")
	F_ADD1[$side]=$(sub_ms "${F_TTFT1[$side]}" "$(kv "${S[direct-$L_MID]:-}" ttft_p50_ms)")
	l=${S[$side-$L_TOP]:-}
	F_TTFT2[$side]=$(num "$(kv "$l" ttft_p50_ms)")
	F_ADD2[$side]=$(sub_ms "${F_TTFT2[$side]}" "$(kv "${S[direct-$L_TOP]:-}" ttft_p50_ms)")
	F_FLY2[$side]=$(num "$(kv "$l" up_peak)")
	F_DONE2[$side]=$(num "$(kv "$l" completed)")
done
why_absent() {  # why a side has no figures
	case $1 in
	nginx-*) [ -n "$NGINX_BIN" ] && echo "n/a (nginx did not start)" || echo "n/a (no nginx: $NGINX_NOTE)" ;;
	aichat-w2) echo "n/a (no --workers in this build)" ;;
	*) echo "n/a" ;;
	esac
}
side_ran() { [[ " ${SIDES[*]} " == *" $1 "* ]]; }
plus() { awk -v v="$1" 'BEGIN { if (v == "n/a") print v; else printf "%+.1f ms", v }'; }
# rel A B: A / B as "0.28×", or n/a
rel() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b <= 0 || a == "" || b == "") print "n/a"; else printf "%.2f×", a / b }'; }

compare_section() {
	local side what ng
	echo "### aichat against nginx and direct (the figures of issue #12)"
	echo
	echo "Same mock upstream, same run, one server measured at a time. Non-streamed:"
	echo "wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s (aichat and nginx each log every request to a file)."
	echo "Streams: $TOKENS tokens $INTERVAL ms apart, opened at $RATE/s (so $L_TOP streams open over $((L_TOP * 1000 / RATE)) ms)."
	echo "CPU = the server's utime+stime from /proc over the run (nginx: master + workers); RSS = peak VmRSS"
	echo "sampled every 50 ms (nginx: summed); TTFT added = the server's TTFT p50 − direct's, same level, same run;"
	echo "in flight = the most streams the upstream was serving at once."
	echo
	echo "| server | non-streamed req/s | CPU µs per relayed request | CPU µs per relayed token, $L_MID streams | TTFT added at $L_MID streams (p50) | $L_TOP streams: TTFT added (p50) | $L_TOP streams: in flight upstream at once | peak RSS at $L_MID streams |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for side in "${ALL_SIDES[@]}"; do
		what=${SIDE_NAME[$side]}
		if ! side_ran "$side"; then
			echo "| $what | $(why_absent "$side") | | | | | | |"
			continue
		fi
		if [ "$side" = direct ]; then
			echo "| $what | $(fmt_int "${F_RPS[$side]}") | – | – | (TTFT p50 ${F_TTFT1[$side]} ms) | (TTFT p50 ${F_TTFT2[$side]} ms) | ${F_FLY2[$side]} | – |"
			continue
		fi
		echo "| $what | $(fmt_int "${F_RPS[$side]}") | ${F_CPR[$side]} | ${F_CPT[$side]} | $(plus "${F_ADD1[$side]}") | $(plus "${F_ADD2[$side]}") | ${F_FLY2[$side]} (${F_DONE2[$side]} of $L_TOP completed) | ${F_RSS1[$side]} MiB |"
	done
	echo
	echo "As ratios: to nginx, 1 worker (first block) and to direct (second block); below 1 is less."
	echo
	echo "| server ÷ nginx, 1 worker | req/s | CPU µs/request | CPU µs/token | TTFT added, $L_MID | TTFT added, $L_TOP | in flight, $L_TOP | peak RSS |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	ng=nginx-1
	for side in nginx-auto aichat aichat-w2; do
		side_ran "$side" || { echo "| ${SIDE_NAME[$side]} | $(why_absent "$side") | | | | | | |"; continue; }
		echo "| ${SIDE_NAME[$side]} | $(rel "${F_RPS[$side]}" "${F_RPS[$ng]:-n/a}") | $(rel "${F_CPR[$side]}" "${F_CPR[$ng]:-n/a}") | $(rel "${F_CPT[$side]}" "${F_CPT[$ng]:-n/a}") | $(rel "${F_ADD1[$side]}" "${F_ADD1[$ng]:-n/a}") | $(rel "${F_ADD2[$side]}" "${F_ADD2[$ng]:-n/a}") | $(rel "${F_FLY2[$side]}" "${F_FLY2[$ng]:-n/a}") | $(rel "${F_RSS1[$side]}" "${F_RSS1[$ng]:-n/a}") |"
	done
	echo
	echo "| server ÷ direct | req/s | TTFT p50, $L_MID | TTFT p50, $L_TOP | in flight, $L_TOP |"
	echo "|---|---:|---:|---:|---:|"
	for side in nginx-1 nginx-auto aichat aichat-w2; do
		side_ran "$side" || { echo "| ${SIDE_NAME[$side]} | $(why_absent "$side") | | | |"; continue; }
		echo "| ${SIDE_NAME[$side]} | $(rel "${F_RPS[$side]}" "${F_RPS[direct]}") | $(rel "${F_TTFT1[$side]}" "${F_TTFT1[direct]}") | $(rel "${F_TTFT2[$side]}" "${F_TTFT2[direct]}") | $(rel "${F_FLY2[$side]}" "${F_FLY2[direct]}") |"
	done
	echo
	goals aichat nginx-1
	goals aichat-w2 nginx-auto
}

# goal LABEL MET(0/1/-) FIGURES: one line
goal() {
	local v
	case $2 in
	1) v="met" ;;
	0) v="NOT met" ;;
	*) v="not measured" ;;
	esac
	echo "- $1: **$v** ($3)"
}
# cmp A OP B: 1 when A OP B holds, 0 when not, - when either is missing
cmp() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN { if (a == "n/a" || b == "n/a" || a == "" || b == "") { print "-"; exit }
	print (op == "<=" ? a + 0 <= b + 0 : a + 0 >= b + 0) ? 1 : 0 }'; }
mul() { awk -v a="$1" -v k="$2" 'BEGIN { if (a == "n/a" || a == "") print "n/a"; else printf "%.2f", a * k }'; }

# goals SIDE NGINX: the issue's goals for SIDE against NGINX's figures
goals() {
	local a=$1 n=$2 an=${SIDE_NAME[$1]} nn=${SIDE_NAME[$2]} lim ok2
	echo "Goals, $an against $nn:"
	echo
	if ! side_ran "$a"; then
		echo "- $(why_absent "$a")"
		echo
		return
	fi
	if ! side_ran "$n"; then
		echo "- every goal not measured: $nn $(why_absent "$n")"
		echo
		return
	fi
	lim=$(mul "${F_RPS[$n]}" 0.5)
	goal "non-streamed req/s ≥ 0.5× nginx" "$(cmp "${F_RPS[$a]}" '>=' "$lim")" "$(fmt_int "${F_RPS[$a]}") req/s, limit $(fmt_int "$lim"); nginx $(fmt_int "${F_RPS[$n]}"): $(rel "${F_RPS[$a]}" "${F_RPS[$n]}")"
	lim=$(mul "${F_CPR[$n]}" 2)
	goal "CPU µs per relayed request ≤ 2× nginx" "$(cmp "${F_CPR[$a]}" '<=' "$lim")" "${F_CPR[$a]} µs, limit $lim; nginx ${F_CPR[$n]}: $(rel "${F_CPR[$a]}" "${F_CPR[$n]}")"
	goal "CPU µs per relayed token at $L_MID streams ≤ nginx" "$(cmp "${F_CPT[$a]}" '<=' "${F_CPT[$n]}")" "${F_CPT[$a]} µs, nginx ${F_CPT[$n]}: $(rel "${F_CPT[$a]}" "${F_CPT[$n]}")"
	goal "TTFT added at $L_MID streams (p50) ≤ +2 ms" "$(cmp "${F_ADD1[$a]}" '<=' 2)" "$(plus "${F_ADD1[$a]}"); nginx $(plus "${F_ADD1[$n]}")"
	lim=$(awk -v v="${F_ADD2[$n]}" 'BEGIN { if (v == "n/a") print v; else printf "%.1f", (v > 0 ? v : 0) * 1.5 }')
	ok2=$(cmp "${F_ADD2[$a]}" '<=' "$lim")
	case "$ok2$(cmp "${F_FLY2[$a]}" '>=' "$L_TOP")" in
	11) ok2=1 ;; *-*) ok2=- ;; *) ok2=0 ;;
	esac
	goal "$L_TOP streams: TTFT added ≤ 1.5× nginx's and $L_TOP in flight upstream at once" "$ok2" "$(plus "${F_ADD2[$a]}"), limit $(plus "$lim") (nginx $(plus "${F_ADD2[$n]}")); ${F_FLY2[$a]} in flight (nginx ${F_FLY2[$n]})"
	goal "peak RSS at $L_MID streams ≤ nginx" "$(cmp "${F_RSS1[$a]}" '<=' "${F_RSS1[$n]}")" "${F_RSS1[$a]} MiB, nginx ${F_RSS1[$n]} MiB: $(rel "${F_RSS1[$a]}" "${F_RSS1[$n]}")"
	echo
}

verdict() {  # verdict VALUE OP LIMIT UNIT: met / missed (by how much)
	awk -v v="$1" -v op="$2" -v l="$3" -v u="$4" 'BEGIN {
		if (v == "" || v == "n/a") { print "not measured"; exit }
		ok = (op == "<=") ? v <= l : v >= l
		if (ok) { print "met"; exit }
		d = (op == "<=") ? v - l : l - v
		printf "**missed** by %s%s (%.0f%%)\n", (d == int(d) ? d : sprintf("%.2f", d)), u, 100 * d / l }'
}

{
	echo "## aichat serve: $DATE, nproc $NPROC"
	echo
	echo "aichat: $AI_BUILD."
	echo "Mock upstream: $TOKENS tokens per stream, one every $INTERVAL ms. Clients, mock upstream and"
	echo "aichat serve share the same $NPROC cores. aichat serve runs with \`--log-format text\`,"
	echo "request log to a file unless said otherwise. nginx: $NGINX_NOTE, from bench/nginx.conf."
	echo "Figures from a shared machine are indicative: every server, the clients and the mock"
	echo "upstream compete for the same cores."
	echo
	compare_section
	if [ "$HAVE_WRK" = 1 ]; then
		echo "### Non-streaming: wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s, POST /v1/chat/completions"
		echo
		echo "| run | req/s | p50 ms | p99 ms | errors | vs direct | server CPU µs/req | threads |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		for run in direct nginx-1 nginx-auto "${AI_RUNS[@]}"; do
			[ -n "${A_RPS[$run]:-}" ] || continue
			case $run in
			direct) what="mock upstream, direct (baseline)" ;;
			nginx-1) what="nginx, 1 worker → mock upstream, access log to file" ;;
			nginx-auto) what="nginx, $NPROC workers (auto) → mock upstream, access log to file" ;;
			w2-openai-logfile) what="aichat --workers 2 → mock upstream, log to file" ;;
			openai-logfile) what="aichat → mock upstream (openai:bench), log to file" ;;
			mock-logfile) what="aichat mock:echo (no upstream: server ceiling), log to file" ;;
			openai-nolog) what="aichat → mock upstream, log to /dev/null" ;;
			mock-nolog) what="aichat mock:echo, log to /dev/null" ;;
			esac
			echo "| $what | $(fmt_int "${A_RPS[$run]:-0}") | ${A_P50[$run]:-n/a} | ${A_P99[$run]:-n/a} | ${A_ERR[$run]:-n/a} | $(ratio "${A_RPS[$run]:-0}" "${A_RPS[direct]:-0}") | ${A_CPU[$run]:-n/a} | ${A_THR[$run]:-n/a} |"
		done
		echo
	fi
	echo "### Streaming: N concurrent streams, opened at $RATE/s, POST /v1/chat/completions stream:true"
	echo
	echo "| streams | to | completed | TTFT p50 ms | TTFT p99 ms | stream p50 ms | stream p99 ms | stream p50 vs direct | server CPU µs/token | server CPU use | server max RSS MiB | RSS per stream KiB | threads | upstream: most in flight at once / ms from first start to last | machine CPU busy |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in $LEVELS; do
		for side in "${SIDES[@]}"; do
			l=${S[$side-$n]:-}
			comp="$(kv "$l" completed)/$n"
			fails=$(sed 's/ /\n/g' <<<"$l" | grep -E '^(connect_error|reset|early_eof|http_status|no_done|error_event|short_stream|timeout)=' | tr '\n' ' ' || true)
			[ -n "$fails" ] && comp="$comp (${fails% })"
			if [ "$side" != direct ]; then
				cpu=$(kv "$l" cpu_us) tok=$(kv "$l" tokens) rss=$(kv "$l" rss_max_kib)
				cpt=$(awk -v c="$cpu" -v t="$tok" 'BEGIN { if (t > 0 && c >= 0) printf "%.1f", c / t; else print "n/a" }')
				rssm=$(awk -v r="$rss" 'BEGIN { if (r > 0) printf "%.1f", r / 1024; else print "n/a" }')
				per=$(awk -v r="$rss" -v i="${SIDE_IDLE[$side]:-0}" -v n="$n" 'BEGIN { if (r > 0) printf "%.1f", (r - i) / n; else print "n/a" }')
				vs=$(ratio "$(kv "$l" stream_p50_ms)" "$(kv "${S[direct-$n]}" stream_p50_ms)")
				thr=$(kv "$l" threads_max)
				use=$(awk -v c="$cpu" -v w="$(kv "$l" wall_ms)" 'BEGIN { if (w > 0 && c >= 0) printf "%.0f%% of a core", c / (w * 10); else print "n/a" }')
				case $side in nginx-*) thr="$thr (processes: $(tr ',' '\n' <<<"${SIDE_WATCH[$side]}" | wc -l))" ;; esac
				if [ "$side" = aichat ]; then
					S_CPT[n]=$cpt S_PER[n]=$per S_VS[n]=$vs S_COMP[n]=$(kv "$l" completed)
				fi
			else
				cpt=- rssm=- per=- vs=1 thr=- use=-
			fi
			echo "| $n | $side | $comp | $(kv "$l" ttft_p50_ms) | $(kv "$l" ttft_p99_ms) | $(kv "$l" stream_p50_ms) | $(kv "$l" stream_p99_ms) | $vs | $cpt | $use | $rssm | $per | $thr | $(kv "$l" up_peak) / $(kv "$l" up_span_ms) | $(kv "$l" machine_busy_pct)% |"
		done
	done
	echo
	echo "RSS per stream = (max VmRSS sampled every 50 ms during the level − idle RSS at start) / streams."
	echo "nginx's CPU and RSS are its master's and workers' summed (from /proc; shared pages of the binary count once per process)."
	echo "aichat idle RSS at start: $IDLE_RSS KiB ($IDLE_ANON KiB anonymous, $IDLE_FILE KiB file-backed: the binary and shared libraries); after all streaming levels: $AFTER_RSS KiB (VmHWM $AFTER_HWM KiB, $AFTER_FDS fds open)."
	echo
	echo "How each aichat serve stopped on SIGTERM (\`--drain-timeout 5\`):"
	for note in "${STOP_NOTES[@]}"; do
		echo "- $note"
	done
	echo
	echo "Idle checks (aichat CPU over 1 s with no load):"
	for note in "${IDLE_NOTES[@]}"; do
		echo "- $note"
	done
	echo
	echo "Request logs (files): $LOG_LINES lines, $LOG_BYTES bytes; $(tr '\n' ';' <"$OUT/serve-log-summary.txt" | sed 's/;$//; s/;/, /g')."
	echo
	echo "### Targets"
	echo
	top=${LEVELS##* }
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	if [ "$HAVE_WRK" = 1 ]; then
		echo "| ≥ 25,000 req/s non-streaming (aichat → upstream, log to file) | $(fmt_int "${A_RPS[openai-logfile]}") req/s | $(verdict "${A_RPS[openai-logfile]}" '>=' 25000 ' req/s') |"
		echo "| same, log to /dev/null | $(fmt_int "${A_RPS[openai-nolog]}") req/s | $(verdict "${A_RPS[openai-nolog]}" '>=' 25000 ' req/s') |"
	fi
	for n in $LEVELS; do
		echo "| ≤ 10 µs aichat CPU per relayed token, $n streams | ${S_CPT[$n]} µs | $(verdict "${S_CPT[$n]}" '<=' 10 ' µs') |"
	done
	echo "| $top streams all complete | ${S_COMP[$top]}/$top | $( [ "${S_COMP[$top]:-0}" = "$top" ] && echo met || echo "**missed** by $((top - ${S_COMP[$top]:-0})) streams") |"
	echo "| $top streams: stream time p50 ≤ 1.1× direct | ${S_VS[$top]}× | $(verdict "${S_VS[$top]}" '<=' 1.1 '×') |"
	for n in $LEVELS; do
		echo "| ≤ 16 KiB RSS per held stream, $n streams | ${S_PER[$n]} KiB | $(verdict "${S_PER[$n]}" '<=' 16 ' KiB') |"
	done
	echo "| ≤ 8 threads at any load | $MAX_THREADS | $(verdict "$MAX_THREADS" '<=' 8 '') |"
	echo "| (no target) aichat idle CPU after load | max $IDLE_MAX% of a core | $( [ "$IDLE_MAX" -le 5 ] && echo ok || echo "**busy while idle**") |"
	echo "| idle RSS ≤ 8 MiB | $(awk -v r="$IDLE_RSS" 'BEGIN { printf "%.1f", r / 1024 }') MiB | $(verdict "$(awk -v r="$IDLE_RSS" 'BEGIN { printf "%.2f", r / 1024 }')" '<=' 8 ' MiB') |"
} >"$OUT/results.md"
cat "$OUT/results.md"
