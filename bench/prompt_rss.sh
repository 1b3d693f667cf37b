#!/usr/bin/env bash
# bench/prompt_rss.sh - memory per held stream against the size of its
# prompt.  aichat serve (one loop) and nginx (one worker, a pure proxy:
# the anchor, bench/nginx.conf) each relay BENCH_STREAMS streams at once
# (default 500) of BENCH_TOKENS tokens BENCH_INTERVAL_MS apart (50, 60:
# 3 s a stream) from bench/upstream.c, for prompts of each size in
# BENCH_PROMPTS_KIB (default "0 16 96" KiB of text in one user message).
#
# Per server and prompt: RSS per held stream = (the peak of VmRSS during
# the run, summed over nginx's master and worker, minus the same just
# before it) / streams, in KiB; and aichat's as a ratio to nginx's, both
# measured in the same run.  Prints a markdown table; the raw lines go to
# build/bench/prompt_rss/.
#
# Every process it starts is stopped by PID on exit (bench/serve_lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${BENCH_STREAMS:-500}
TOKENS=${BENCH_TOKENS:-50}
INTERVAL=${BENCH_INTERVAL_MS:-60}
PROMPTS=${BENCH_PROMPTS_KIB:-"0 16 96"}
DEADLINE=${BENCH_DEADLINE:-60}
# For bench/serve_lib.sh (its wrk part is not used here).
DURATION=10 WRK_THREADS=1 WRK_CONNS=1 RATE=2000

OUT=build/bench/prompt_rss
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.log

. bench/serve_lib.sh
. bench/nginx_lib.sh

NPROC=$(nproc)
say "== prompt_rss: RSS per held stream by prompt size, aichat serve vs nginx ($NPROC cores) =="
nginx_setup
say "  nginx: $NGINX_NOTE"
start_upstream

# body KIB: a chat request, streamed, whose user message is KIB KiB of text.
body() {
	python3 - "$1" <<-'EOF'
	import json, sys
	kib = int(sys.argv[1])
	text = ("lorem ipsum dolor sit amet " * (kib * 1024 // 27 + 1))[:kib * 1024] or "hi"
	print(json.dumps({"model": "openai:bench", "stream": True,
	                  "messages": [{"role": "user", "content": text}]}))
	EOF
}

# Each size on fresh servers: what the allocator kept from a run before
# would otherwise hide the next one's growth.
declare -A PER DONE PORT WATCH
for kib in $PROMPTS; do
	b=$(body "$kib")
	SIDES=(aichat) PORT=() WATCH=()
	AI_ARGS=(--workers 1)
	start_aichat_log "$OUT/serve-$kib.log"
	AI_ARGS=()
	PORT[aichat]=$AI_PORT WATCH[aichat]=$AI_PID
	if [ -n "$NGINX_BIN" ] && nginx_start "prompt-$kib" 1; then
		SIDES+=(nginx)
		PORT[nginx]=$NG_PORT WATCH[nginx]=$NG_PIDS
	fi
	for side in "${SIDES[@]}"; do
		# A few streams first: what either server sets up once (its
		# upstream connections, caches) is not a held stream's.
		build/bench/streams --port "${PORT[$side]}" --conns 20 --body "$b" \
			--deadline "$DEADLINE" >/dev/null 2>>"$OUT/streams.log" &
		run_child $!
		sleep 1
		idle=$(sum_rss "${WATCH[$side]}")
		say "  $side, prompts of $kib KiB: $N streams ..."
		build/bench/streams --port "${PORT[$side]}" --conns "$N" --body "$b" \
			--expect-tokens "$TOKENS" --ramp-ms 500 --deadline "$DEADLINE" \
			--label "$side-$kib" --watch-pid "${WATCH[$side]}" \
			>"$TMP/streams.out" 2>>"$OUT/streams.log" &
		run_child $!
		line=$(cat "$TMP/streams.out")
		echo "$line idle_kib=$idle" >>"$OUT/runs.txt"
		max=$(kv "$line" rss_max_kib)
		PER[$side-$kib]=$(awk -v m="${max:-0}" -v i="$idle" -v n="$N" \
			'BEGIN { if (m > 0) printf "%.1f", (m - i) / n; else print "n/a" }')
		DONE[$side-$kib]=$(kv "$line" completed)
	done
	stop_aichat
	[ -n "${WATCH[nginx]:-}" ] && nginx_stop "$ROOT/$OUT/nginx-prompt-$kib"
done

echo
echo "RSS per held stream (KiB): $N streams at once, $TOKENS tokens ${INTERVAL} ms apart; peak VmRSS during the run minus VmRSS before it, over the streams (nginx: master + 1 worker)"
echo
echo "| prompt | aichat serve, 1 loop | nginx, 1 worker | aichat ÷ nginx | streams completed (aichat / nginx) |"
echo "|---:|---:|---:|---:|---:|"
for kib in $PROMPTS; do
	a=${PER[aichat-$kib]:-n/a} n=${PER[nginx-$kib]:-n/a}
	echo "| $kib KiB | $a | $n | $(ratio "$a" "$n") | ${DONE[aichat-$kib]:-0} / ${DONE[nginx-$kib]:-n/a} |"
done
