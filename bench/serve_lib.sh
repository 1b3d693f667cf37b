# bench/serve_lib.sh - what bench/serve.sh, bench/overload.sh and the others share:
# process bookkeeping (every process started is killed by PID on exit),
# /proc readings, starting and stopping the mock upstream and aichat serve,
# wrk and streams runs, the idle check.  Sourced, not run; the caller sets
# OUT, DURATION, WRK_THREADS, WRK_CONNS, TOKENS, INTERVAL, RATE, DEADLINE,
# and may set AI_ARGS (an array of extra `aichat serve` arguments).
# shellcheck shell=bash
say() { printf '%s\n' "$*" >&2; }

# ==== processes: every one we start is listed, and killed by PID ====

PIDS=()
TMP=$(mktemp -d)
cleanup() {
	local pid i
	# nginx first, by the PID in its pid file (bench/nginx_lib.sh).
	if declare -F nginx_cleanup >/dev/null; then nginx_cleanup; fi
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

# utime+stime of PID in clock ticks; PID may be a comma-separated list
# (nginx's master and workers): the sum.
cpu_ticks() {
	local f p sum=0
	for p in ${1//,/ }; do
		f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		f=${f##*) }
		# shellcheck disable=SC2086
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}
HZ=$(getconf CLK_TCK)

status_kib() {  # status_kib PID FIELD
	awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

sum_rss() {  # sum_rss PID[,PID...]: summed VmRSS, KiB
	local p sum=0 v
	for p in ${1//,/ }; do
		v=$(status_kib "$p" VmRSS)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
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
		--drain-timeout 5 "${AI_ARGS[@]+"${AI_ARGS[@]}"}" 2>"$log" &
	AI_PID=$!
	PIDS+=("$AI_PID")
	AI_PORT=
	for ((i = 0; i < 100; i++)); do
		# With the log on /dev/null, ask the kernel for the listening port.
		if [ "$log" = /dev/null ]; then
			AI_PORT=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$AI_PID," \
				'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
		else
			# The log may not exist yet: the child opens it after fork.
			AI_PORT=$(sed -n 's/^aichat: listening on http:.*:\([0-9]*\)$/\1/p' "$log" 2>/dev/null | head -1 || true)
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
		sample_status "${watch%%,*}" $((DURATION + 5)) "$TMP/sample.$name" &
		sp=$!
		PIDS+=("$sp")
		c0=$(cpu_ticks "$watch")
	fi
	BENCH_BODY=$body timeout $((DURATION + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNS" \
		-d"${DURATION}s" --timeout 5s --latency -s "$TMP/post.lua" \
		"http://127.0.0.1:$port${WRK_PATH:-/v1/chat/completions}" >"$f" 2>&1 &
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
		[ "$watch" != "$AI_PID" ] || ai_alive || say "serve.sh: aichat serve died during wrk $name"
	fi
	[ -n "$W_RPS" ] || { W_RPS=0; W_P50=n/a; W_P99=n/a; }
}

# ==== (b) streaming ====

BODY_STREAM='{"model":"openai:bench","messages":[{"role":"user","content":"hi"}],"stream":true}'

# The mock upstream's counters since the last call (bench/upstream.c's
# GET /stats), one line "in_flight=N peak=N started=N span_ms=N".
up_stats() {
	curl -s -m 5 "http://127.0.0.1:$UP_PORT/stats" 2>/dev/null || echo "stats=unavailable"
}

# stream_run LABEL PORT N [WATCH_PID[,PID...]]: the key=value line in S_LINE
stream_run() {
	local label=$1 port=$2 n=$3 watch=${4:-} ramp j0 j1
	ramp=$((n * 1000 / RATE))
	say "  streams $label: $n streams ..."
	up_stats >/dev/null   # resets the upstream's peak
	j0=$(machine_jiffies)
	build/bench/streams --port "$port" --conns "$n" --body "$BODY_STREAM" \
		--path "${STREAM_PATH:-/v1/chat/completions}" \
		--expect-tokens "$TOKENS" --ramp-ms "$ramp" --deadline "$DEADLINE" \
		--label "$label" ${watch:+--watch-pid "$watch"} >"$TMP/streams.out" \
		2>>"$OUT/streams.log" &
	run_child $!
	S_LINE=$(cat "$TMP/streams.out")
	j1=$(machine_jiffies)
	S_LINE="$S_LINE machine_busy_pct=$(busy_pct "$j0" "$j1")"
	# What the upstream saw: the most streams in flight at once, how many
	# started, over how many ms (first start to last).
	S_LINE="$S_LINE $(up_stats | awk '{ for (i = 1; i <= NF; i++) printf "up_%s ", $i }')"
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
