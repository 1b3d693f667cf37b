#!/usr/bin/env bash
# bench/backpressure.sh [BEFORE_BIN] - what a stalled client costs aichat
# serve: a fake upstream streams 1 GB of answer as fast as it can, the
# client reads nothing for 10 s, then hangs up.  For each binary (BEFORE_BIN,
# when given, then ./aichat) it reports the server's peak VmRSS during the
# stall (sampled every 100 ms; VmHWM at the end) and how many bytes the
# upstream managed to send.  Not a test: numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s all build/tests/fake_upstream
stall=${STALL:-10}
events=${EVENTS:-250000}              # of 4000 bytes of text: 1 GB
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$events" "$dir/sent" >"$dir/script" <<'EOF'
import json, sys
n, report = int(sys.argv[1]), sys.argv[2]
def chunk(delta, finish=None):
    return "data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk",
        "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]},
        separators=(",", ":")) + "\n\n"
events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "x" * 4000}),
          chunk({}, "stop"), "data: [DONE]\n\n"]
print(json.dumps({"events": events, "repeat": n, "report": report}))
EOF

run() {
	local bin=$1 port fpid spid out
	rm -f "$dir/port" "$dir/sent" "$dir/serve.log"
	build/tests/fake_upstream --port-file "$dir/port" --log /dev/null \
		--script "$dir/script" & fpid=$!
	for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
	OPENAI_API_KEY=sk-bench OPENAI_BASE_URL="http://127.0.0.1:$(cat "$dir/port")/v1" \
		AICHAT_HOME="$dir/home" "$bin" serve --port 0 2>"$dir/serve.log" & spid=$!
	for _ in $(seq 50); do grep -qs "listening on" "$dir/serve.log" && break; sleep 0.1; done
	port=$(grep -o 'listening on http://[^ ]*' "$dir/serve.log" | sed 's/.*://')
	out=$(python3 tests/slow_client.py --port "$port" --path /chat \
		--body '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' \
		--stall "$stall" --close-after-stall --pid "$spid" --report "$dir/sent")
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$spid/status")
	kill "$spid"; wait "$spid" || true
	kill "$fpid"; wait "$fpid" 2>/dev/null || true
	echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
name, hwm = sys.argv[1], int(sys.argv[2])
print("| %s | %.1f | %.1f | %.1f | %.1f |" % (name, r["rss_start_kb"] / 1024,
      r["rss_max_kb"] / 1024, hwm / 1024, r["sent_at_stall_end"] / 1e6))
' "$2" "$hwm"
}

echo "stalled client: ${stall} s, upstream: $((events * 4 / 1000)) MB of text as fast as it goes"
echo
echo "| aichat serve | RSS at start MiB | peak RSS in the stall MiB | VmHWM MiB | upstream sent in the stall MB |"
echo "|---|---:|---:|---:|---:|"
if [ $# -ge 1 ]; then
	run "$1" "before: $1"
fi
run "$PWD/aichat" "after: ./aichat ($(git rev-parse --short HEAD))"
