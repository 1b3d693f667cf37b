#!/usr/bin/env bash
# bench/run.sh - benchmarks; each reports a ratio to a baseline measured in
# the same run, or a figure against its target.  Not a test: numbers
# depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bench
cc -O2 -Wall -Wextra -o build/bench/startup bench/startup.c
home=$(mktemp -d)
echo "== startup: aichat chat -m mock:echo hello vs /bin/true (500 runs each) =="
echo "-- with the conversation log (the default): opens SQLite, records the exchange"
env -i PATH=/usr/bin:/bin HOME="$home" build/bench/startup 500 -- /bin/true -- \
	"$PWD/aichat" chat -m mock:echo hello
echo "-- with --no-log"
env -i PATH=/usr/bin:/bin HOME="$home" build/bench/startup 500 -- /bin/true -- \
	"$PWD/aichat" chat --no-log -m mock:echo hello
rm -rf "$home"
echo
echo "== serve: aichat serve under load vs nginx as a pure proxy vs the same load straight to a mock upstream =="
bench/serve.sh
echo
echo "== prompt_rss: memory per held stream by prompt size, aichat serve vs nginx =="
bench/prompt_rss.sh
echo
echo "== batch: aichat batch against a 50 ms mock upstream vs the ideal wall time =="
bench/batch.sh
echo
echo "== rag: index 100 MB, BM25 search at a million chunks, dense brute force vs reading memory =="
bench/rag.sh
echo
echo "== redis: 2 replicas sharing Redis vs 2 on their own, and Redis round trips a request =="
bench/redis.sh
