#!/usr/bin/env bash
# bench/batch.sh - `aichat batch` against a mock upstream with a fixed
# latency: wall time next to the ideal (items x latency / concurrency)
# measured in the same run, and peak RSS as the item count grows 10x.
# Not a test: it prints a Markdown table.  Uses the test fake upstream
# (built by `make check` or here) with a 50 ms stall per request.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s all build/tests/fake_upstream
tmp=$(mktemp -d)
fake_pid=
cleanup() {
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

latency_ms=${LATENCY_MS:-50}
conc=${CONCURRENCY:-200}
echo "{\"stall_ms\":$latency_ms,\"deltas\":[\"ok\"]}" >"$tmp/script"
build/tests/fake_upstream --port-file "$tmp/port" --log /dev/null --script "$tmp/script" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
export OPENAI_API_KEY=bench OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")/v1"
export HOME=$tmp AICHAT_RETRY_BASE=0.05

echo "| items | concurrency | latency | ideal s | wall s | wall / ideal | peak RSS KiB | failed |"
echo "|------:|------------:|--------:|--------:|-------:|-------------:|-------------:|-------:|"
for n in ${ITEMS:-10000 100000}; do
	python3 -c 'import sys
n = int(sys.argv[1])
with open(sys.argv[2], "w") as f:
    for i in range(n):
        f.write("{\"id\":%d,\"prompt\":\"item %d\"}\n" % (i, i))' "$n" "$tmp/in.jsonl"
	start=$(date +%s%N)
	/usr/bin/time -f '%M' -o "$tmp/rss" ./aichat batch -m openai:bench -j "$conc" \
		-o "$tmp/out.jsonl" "$tmp/in.jsonl" 2>"$tmp/err" || true
	wall=$(( ($(date +%s%N) - start) / 1000000 ))
	ideal=$(( n * latency_ms / conc ))
	failed=$(grep -c '"error":{' "$tmp/out.jsonl" || true)
	awk -v n="$n" -v c="$conc" -v l="$latency_ms" -v w="$wall" -v i="$ideal" \
		-v r="$(tail -1 "$tmp/rss")" -v f="$failed" \
		'BEGIN { printf "| %d | %d | %d ms | %.2f | %.2f | %.3f | %d | %d |\n", n, c, l, i/1000, w/1000, w/i, r, f }'
done
echo
echo "Target: wall / ideal <= 1.15 at 10,000 items; peak RSS flat as items grow 10x."
