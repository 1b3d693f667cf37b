#!/usr/bin/env bash
# bench/serve.sh - `aichat serve` under load, next to the same load sent
# straight to a mock upstream in the same run.  Not a test: it reports
# numbers, ratios and the project's targets; it fails only when it cannot
# run at all.
#
#   (b) streaming, first, on a fresh server: 100, 1,000 and 5,000
#       concurrent streams of 50 tokens, one every 20 ms, straight to the
#       upstream and through aichat: completion, TTFT, stream time,
#       aichat's CPU per relayed token, RSS, RSS per held stream, threads.
#   (a) non-streaming: wrk POST /v1/chat/completions against the mock
#       upstream (baseline), through aichat to it (openai:bench), and
#       against aichat's own mock:echo model (no upstream: the server's
#       ceiling); then both aichat runs again on a second server whose
#       request log goes to /dev/null instead of a file: what logging costs.
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
# BENCH_DEADLINE (seconds per streaming run, 30).
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

say() { printf '%s\n' "$*" >&2; }

# ==== processes: every one we start is listed, and killed by PID ====

PIDS=()
TMP=$(mktemp -d)
cleanup() {
	local pid i
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_child PID: waits for a child started with &.  A signal interrupts
# `wait` at once (a foreground command would delay the trap until it
# ends), so the EXIT trap can kill everything by PID.
run_child() {
	PIDS+=("$1")
	wait "$1" || true
	forget_pid "$1"
}

forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]+"${keep[@]}"}")
}

# ==== build ====

[ -x ./aichat ] || make --no-print-directory all >&2
cc -O2 -Wall -Wextra -o build/bench/upstream bench/upstream.c
cc -O2 -Wall -Wextra -o build/bench/streams bench/streams.c

HAVE_WRK=1
if ! command -v wrk >/dev/null 2>&1; then
	HAVE_WRK=0
	say "serve.sh: wrk not found: the non-streaming part is skipped."
	say "serve.sh: install it with: apt-get install -y wrk   (Debian package 'wrk')"
fi

# ==== /proc readings ====

# utime+stime of PID in clock ticks.
cpu_ticks() {
	local f
	f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	f=${f##*) }
	# shellcheck disable=SC2086
	set -- $f
	echo $((${12} + ${13}))
}
HZ=$(getconf CLK_TCK)

status_kib() {  # status_kib PID FIELD
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# Machine-wide busy and total jiffies, "busy total".
machine_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i;
	     print t - $5 - $6, t; exit }' /proc/stat
}
busy_pct() {  # busy_pct "B0 T0" "B1 T1"
	local b0 t0 b1 t1
	read -r b0 t0 <<<"$1"
	read -r b1 t1 <<<"$2"
	awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", t ? 100 * b / t : 0 }'
}

# Samples VmRSS and Threads of PID every 0.1 s for at most SECONDS, then
# writes "max_rss_kib max_threads" to FILE.  Bounded by count.
sample_status() {
	local pid=$1 n=$(($2 * 10)) out=$3 rss=0 thr=0 i k v
	for ((i = 0; i < n; i++)); do
		[ -r "/proc/$pid/status" ] || break
		while read -r k v _; do
			case $k in
			VmRSS:) if ((v > rss)); then rss=$v; fi ;;
			Threads:) if ((v > thr)); then thr=$v; fi ;;
			esac
		done <"/proc/$pid/status"
		[ -f "$out.stop" ] && break
		sleep 0.1
	done
	echo "$rss $thr" >"$out"
}

# The value of KEY in a line of key=value pairs.
kv() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

fmt_int() { printf '%s' "${1%.*}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a >= 0) printf "%.2f", a / b; else printf "n/a" }'; }

# ==== the servers ====

UP_PID=
UP_PORT=
start_upstream() {
	build/bench/upstream --port-file "$TMP/up.port" --tokens "$TOKENS" \
		--interval-ms "$INTERVAL" --max-seconds 900 2>"$OUT/upstream.log" &
	UP_PID=$!
	PIDS+=("$UP_PID")
	for ((i = 0; i < 100; i++)); do
		[ -s "$TMP/up.port" ] && break
		sleep 0.05
	done
	UP_PORT=$(cat "$TMP/up.port")
}

AI_PID=
AI_PORT=
AI_LOG=
start_aichat_log() {  # start_aichat_log LOGFILE
	local log=$1 i
	AI_LOG=$log
	mkdir -p "$TMP/home"
	env -i PATH=/usr/bin:/bin HOME="$TMP/home" AICHAT_HOME="$TMP/home/aichat" \
		XDG_CONFIG_HOME="$TMP/home/.config" \
		OPENAI_BASE_URL="http://127.0.0.1:$UP_PORT/v1" OPENAI_API_KEY=bench \
		"$ROOT/aichat" serve --port 0 --max-connections 20000 --max-connections-per-ip 0 --log-format text \
		--drain-timeout 5 2>"$log" &
	AI_PID=$!
	PIDS+=("$AI_PID")
	AI_PORT=
	for ((i = 0; i < 100; i++)); do
		# With the log on /dev/null, ask the kernel for the listening port.
		if [ "$log" = /dev/null ]; then
			AI_PORT=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$AI_PID," \
				'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
		else
			AI_PORT=$(sed -n 's/^aichat: listening on http:.*:\([0-9]*\)$/\1/p' "$log" | head -1)
		fi
		[ -n "$AI_PORT" ] && break
		kill -0 "$AI_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$AI_PORT" ]; then
		say "serve.sh: aichat serve did not start"
		[ "$log" != /dev/null ] && cat "$log" >&2
		exit 1
	fi
}

# stop_aichat: SIGTERM, then up to 10 s for it to exit; says how it went
# in STOP_MSG.
stop_aichat() {
	local t0 t1 i
	t0=$(date +%s%N)
	kill -TERM "$AI_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$AI_PID" 2>/dev/null || break
		sleep 0.1
	done
	t1=$(date +%s%N)
	if kill -0 "$AI_PID" 2>/dev/null; then
		kill -9 "$AI_PID" 2>/dev/null || true
		STOP_MSG="did not exit within 10 s of SIGTERM (killed)"
	else
		wait "$AI_PID" 2>/dev/null && rc=0 || rc=$?
		STOP_MSG="exited $(((t1 - t0) / 1000000)) ms after SIGTERM, status $rc"
		if ((rc > 128)); then
			STOP_MSG="$STOP_MSG (killed by signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null))"
		fi
		if [ "$AI_LOG" != /dev/null ]; then
			last=$(grep -v '^20[0-9-]*T' "$AI_LOG" | tail -1)
			[ -n "$last" ] && STOP_MSG="$STOP_MSG; its last non-request stderr line: \`$last\`"
		fi
	fi
	forget_pid "$AI_PID"
}

ai_alive() { kill -0 "$AI_PID" 2>/dev/null; }

# ==== (a) non-streaming ====

cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
EOF
BODY_OPENAI='{"model":"openai:bench","messages":[{"role":"user","content":"hi"}],"stream":false}'
BODY_MOCK='{"model":"mock:echo","messages":[{"role":"user","content":"hi"}],"stream":false}'

to_ms() {  # 140.00us | 2.86ms | 1.02s -> ms
	awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
		printf "%.2f", n }'
}

# wrk_run NAME PORT BODY [WATCH_PID]: sets W_RPS W_P50 W_P99 W_ERR W_CPU W_THR W_RSS
wrk_run() {
	local name=$1 port=$2 body=$3 watch=${4:-} f="$OUT/wrk-$1.txt" c0=0 c1=0 sp=
	say "  wrk $name ..."
	if [ -n "$watch" ]; then
		rm -f "$TMP/sample.$name" "$TMP/sample.$name.stop"
		sample_status "$watch" $((DURATION + 5)) "$TMP/sample.$name" &
		sp=$!
		PIDS+=("$sp")
		c0=$(cpu_ticks "$watch")
	fi
	BENCH_BODY=$body timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" \
		-d"${DURATION}s" --timeout 5s --latency -s "$TMP/post.lua" \
		"http://127.0.0.1:$port/v1/chat/completions" >"$f" 2>&1 &
	run_child $!
	W_RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$f")
	W_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$f")")
	W_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$f")")
	W_REQ=$(awk '/requests in/ { print $1 }' "$f")
	W_ERR=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(/[^0-9 ]/, " ");
		for (i = 1; i <= NF; i++) n += $i } END { print n + 0 }' "$f")
	W_CPU=n/a W_THR=n/a
	if [ -n "$watch" ]; then
		c1=$(cpu_ticks "$watch")
		touch "$TMP/sample.$name.stop"
		wait "$sp" 2>/dev/null || true
		forget_pid "$sp"
		read -r _ W_THR <"$TMP/sample.$name" || true
		[ "${W_REQ:-0}" -gt 0 ] 2>/dev/null &&
			W_CPU=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$W_REQ" \
				'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
		ai_alive || say "serve.sh: aichat serve died during wrk $name"
	fi
	[ -n "$W_RPS" ] || { W_RPS=0; W_P50=n/a; W_P99=n/a; }
}

# ==== (b) streaming ====

BODY_STREAM='{"model":"openai:bench","messages":[{"role":"user","content":"hi"}],"stream":true}'

# stream_run LABEL PORT N [WATCH_PID]: the key=value line in S_LINE
stream_run() {
	local label=$1 port=$2 n=$3 watch=${4:-} ramp j0 j1
	ramp=$((n * 1000 / RATE))
	say "  streams $label: $n streams ..."
	j0=$(machine_jiffies)
	build/bench/streams --port "$port" --conns "$n" --body "$BODY_STREAM" \
		--expect-tokens "$TOKENS" --ramp-ms "$ramp" --deadline "$DEADLINE" \
		--label "$label" ${watch:+--watch-pid "$watch"} >"$TMP/streams.out" \
		2>>"$OUT/streams.log" &
	run_child $!
	S_LINE=$(cat "$TMP/streams.out")
	j1=$(machine_jiffies)
	S_LINE="$S_LINE machine_busy_pct=$(busy_pct "$j0" "$j1")"
	echo "$S_LINE" >>"$OUT/streams.txt"
	sleep 1   # let both sides close their sockets
}

# ==== health: is aichat idle when it should be? ====

# idle_check WHEN: aichat's CPU over 1 s with no load, and client sockets
# it left in CLOSE-WAIT (the client hung up, aichat never closed).
IDLE_NOTES=()
idle_check() {
	local c0 c1 cw pct
	ai_alive || { IDLE_NOTES+=("$1: aichat serve is not running"); return; }
	c0=$(cpu_ticks "$AI_PID")
	sleep 1
	c1=$(cpu_ticks "$AI_PID")
	pct=$(((c1 - c0) * 100 / HZ))
	cw=$(ss -Htan state close-wait "( sport = :$AI_PORT )" 2>/dev/null | wc -l)
	IDLE_NOTES+=("$1: $pct% of a core, $cw client socket(s) in CLOSE-WAIT")
	IDLE_MAX=$((pct > IDLE_MAX ? pct : IDLE_MAX))
	say "  idle check $1: aichat CPU $pct%, $cw CLOSE-WAIT"
}
IDLE_MAX=0

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
say "== serve: aichat serve vs a mock upstream ($NPROC cores) =="
start_upstream
start_aichat_log "$OUT/serve.log"
sleep 0.5
IDLE_RSS=$(status_kib "$AI_PID" VmRSS)
IDLE_ANON=$(status_kib "$AI_PID" RssAnon)
IDLE_FILE=$(status_kib "$AI_PID" RssFile)
IDLE_THREADS=$(status_kib "$AI_PID" Threads)
MAX_THREADS=$IDLE_THREADS
say "  aichat serve pid $AI_PID on port $AI_PORT, upstream pid $UP_PID on port $UP_PORT; idle RSS $IDLE_RSS KiB"
idle_check "at start"

# (b) first, on a fresh server: a client that hangs up during a
# non-streaming request (as wrk does when it stops) can leave aichat busy,
# which would skew everything measured after it.
declare -A S
declare -a S_CPT S_PER S_VS S_COMP
for n in $LEVELS; do
	stream_run "direct-$n" "$UP_PORT" "$n"
	S[direct-$n]=$S_LINE
	if ai_alive; then
		stream_run "aichat-$n" "$AI_PORT" "$n" "$AI_PID"
		S[aichat-$n]=$S_LINE
		t=$(kv "$S_LINE" threads_max)
		if [ -n "$t" ] && ((t > MAX_THREADS)); then MAX_THREADS=$t; fi
	else
		say "serve.sh: aichat serve is not running: level $n skipped"
		S[aichat-$n]="completed=0 failed=$n"
	fi
done
AFTER_RSS=$(status_kib "$AI_PID" VmRSS)
AFTER_HWM=$(status_kib "$AI_PID" VmHWM)
AFTER_FDS=$(ls "/proc/$AI_PID/fd" 2>/dev/null | wc -l)
idle_check "after the streaming levels"

STOP_NOTES=()
msg="had died"
if ai_alive; then stop_aichat; msg=$STOP_MSG; fi
STOP_NOTES+=("streaming server, after the streaming levels: $msg")

# (a) Each aichat run gets a fresh server: a run must not inherit what
# the previous one's end did to the server (see the idle checks).
declare -A A_RPS A_P50 A_P99 A_ERR A_CPU A_THR
if [ "$HAVE_WRK" = 1 ]; then
	wrk_run direct "$UP_PORT" "$BODY_OPENAI"
	A_RPS[direct]=$W_RPS A_P50[direct]=$W_P50 A_P99[direct]=$W_P99 A_ERR[direct]=$W_ERR A_CPU[direct]=n/a A_THR[direct]=n/a
	for run in openai-logfile openai-nolog mock-logfile mock-nolog; do
		body=$BODY_OPENAI
		case $run in mock-*) body=$BODY_MOCK ;; esac
		log="$OUT/serve-$run.log"
		case $run in *-nolog) log=/dev/null ;; esac
		start_aichat_log "$log"
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

kill "$UP_PID" 2>/dev/null || true
for ((i = 0; i < 50; i++)); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.1; done
forget_pid "$UP_PID"

# ==== the table ====

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
	echo "request log to a file unless said otherwise."
	echo
	if [ "$HAVE_WRK" = 1 ]; then
		echo "### Non-streaming: wrk -t$WRK_THREADS -c$WRK_CONNS -d${DURATION}s, POST /v1/chat/completions"
		echo
		echo "| run | req/s | p50 ms | p99 ms | errors | vs direct | aichat CPU µs/req | threads |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		for run in direct openai-logfile openai-nolog mock-logfile mock-nolog; do
			case $run in
			direct) what="mock upstream, direct (baseline)" ;;
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
	echo "| streams | to | completed | TTFT p50 ms | TTFT p99 ms | stream p50 ms | stream p99 ms | stream p50 vs direct | aichat CPU µs/token | aichat CPU use | aichat max RSS MiB | RSS per stream KiB | threads | machine CPU busy |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in $LEVELS; do
		for side in direct aichat; do
			l=${S[$side-$n]}
			comp="$(kv "$l" completed)/$n"
			fails=$(sed 's/ /\n/g' <<<"$l" | grep -E '^(connect_error|reset|early_eof|http_status|no_done|error_event|short_stream|timeout)=' | tr '\n' ' ' || true)
			[ -n "$fails" ] && comp="$comp (${fails% })"
			if [ $side = aichat ]; then
				cpu=$(kv "$l" cpu_us) tok=$(kv "$l" tokens) rss=$(kv "$l" rss_max_kib)
				cpt=$(awk -v c="$cpu" -v t="$tok" 'BEGIN { if (t > 0 && c >= 0) printf "%.1f", c / t; else print "n/a" }')
				rssm=$(awk -v r="$rss" 'BEGIN { if (r > 0) printf "%.1f", r / 1024; else print "n/a" }')
				per=$(awk -v r="$rss" -v i="$IDLE_RSS" -v n="$n" 'BEGIN { if (r > 0) printf "%.1f", (r - i) / n; else print "n/a" }')
				vs=$(ratio "$(kv "$l" stream_p50_ms)" "$(kv "${S[direct-$n]}" stream_p50_ms)")
				thr=$(kv "$l" threads_max)
				use=$(awk -v c="$cpu" -v w="$(kv "$l" wall_ms)" 'BEGIN { if (w > 0 && c >= 0) printf "%.0f%% of a core", c / (w * 10); else print "n/a" }')
				S_CPT[$n]=$cpt S_PER[$n]=$per S_VS[$n]=$vs S_COMP[$n]=$(kv "$l" completed)
			else
				cpt=- rssm=- per=- vs=1 thr=- use=-
			fi
			echo "| $n | $side | $comp | $(kv "$l" ttft_p50_ms) | $(kv "$l" ttft_p99_ms) | $(kv "$l" stream_p50_ms) | $(kv "$l" stream_p99_ms) | $vs | $cpt | $use | $rssm | $per | $thr | $(kv "$l" machine_busy_pct)% |"
		done
	done
	echo
	echo "RSS per stream = (max VmRSS sampled every 50 ms during the level − idle RSS at start) / streams."
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
