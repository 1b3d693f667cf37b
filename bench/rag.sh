#!/usr/bin/env bash
# bench/rag.sh - aichat rag on a generated corpus (bench/ragcorpus.c):
#   1. index 100 MB of text, BM25 only (target <= 30 s, memory bounded);
#   2. BM25 search p50 at a million chunks (target <= 20 ms);
#   3. dense brute force over 100,000 x 1536 vectors, against the time to
#      read those bytes once from memory in the same run (target <= 2x).
# Not a test: the figures depend on the machine.  RAG_BENCH_MB sets the
# corpus size, RAG_BENCH_DIR where it goes (default build/bench/rag).
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/bench
W=${RAG_BENCH_DIR:-$B/rag}
MB=${RAG_BENCH_MB:-100}
mkdir -p "$B"
cc -O2 -Wall -Wextra -o "$B/ragcorpus" bench/ragcorpus.c -lm
make -s all "$B/ragbench"
rm -rf "$W"
mkdir -p "$W"

# Seconds and peak RSS (MiB) of a command, into $secs and $rss.
timed() {
	/usr/bin/time -f '%e %M' -o "$W/time" "$@"
	read -r secs rss <"$W/time"
	rss=$((rss / 1024))
}

"$B/ragcorpus" "$W/corpus" "$MB" 50 200 >"$W/queries.tsv" 2>"$W/corpus.log"
echo "corpus: $(cat "$W/corpus.log" | sed 's/^ragcorpus: //'), 200 queries of 4-6 words from its sentences"

echo "-- 1. index $MB MB, BM25 only (chunk size 1000, overlap 100)"
AICHAT_HOME="$W/home" timed ./aichat rag index -c docs "$W/corpus" 2>"$W/index.log"
echo "   $(tail -1 "$W/index.log" | sed 's/^aichat: rag: //')"
echo "   wall $secs s (target <= 30 s), peak RSS $rss MiB"
cat "$W"/corpus/d*/*.md >"$W/one.md"
AICHAT_HOME="$W/home-one" timed ./aichat rag index -c one "$W/one.md" 2>/dev/null
echo "   the same $MB MB as one file: wall $secs s, peak RSS $rss MiB (read and chunked in 1 MiB windows)"
rm -f "$W/one.md"
rm -rf "$W/home-one"

echo "-- 2. BM25 search at a million chunks (the same corpus in a store of its own, chunk size 100, no overlap)"
AICHAT_HOME="$W/home-m" timed ./aichat rag index -c m --chunk-size 100 --overlap 0 "$W/corpus" 2>/dev/null
chunks=$(AICHAT_HOME="$W/home-m" ./aichat rag info --json m |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
echo "   $chunks chunks, indexed in $secs s"
echo -n "   in one process, as serve runs it: "
AICHAT_HOME="$W/home-m" "$B/ragbench" search m "$W/queries.tsv" 5
echo "   (target: p50 <= 20 ms)"
# The whole command, process start and store open included.
cut -f2 "$W/queries.tsv" | head -50 >"$W/q50"
while read -r q; do
	s=$(date +%s%N)
	AICHAT_HOME="$W/home-m" ./aichat rag search -c m -k 5 "$q" >/dev/null
	echo $((($(date +%s%N) - s) / 1000))
done <"$W/q50" | sort -n >"$W/cli.us"
echo "   aichat rag search as a command (50 queries): p50 $(sed -n 25p "$W/cli.us" | awk '{printf "%.1f", $1/1000}') ms"
# The reference: bm25() over every word of the query, no word left out.
make -s BUILD="$B/exact" OPT='-O2 -DRAG_BM25_POSTINGS=2000000000' "$B/exact/bench/ragbench" >/dev/null
head -50 "$W/queries.tsv" >"$W/q50.tsv"
echo -n "   reference, every word ranked (50 queries): "
AICHAT_HOME="$W/home-m" "$B/exact/bench/ragbench" search m "$W/q50.tsv" 5
echo -n "   the same 50 queries as shipped:            "
AICHAT_HOME="$W/home-m" "$B/ragbench" search m "$W/q50.tsv" 5

echo "-- 3. dense brute force, 100,000 x 1536 float32 vectors in memory"
echo -n "   "
"$B/ragbench" dense 100000 1536 5
echo "   (target: ratio <= 2x)"
echo -n "   the same vectors through the store, rag_search_hybrid(): "
AICHAT_HOME="$W/home-vec" "$B/ragbench" hybrid 100000 1536
rm -rf "$W/home-vec"
rm -rf "$W/corpus"
