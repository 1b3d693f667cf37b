#!/usr/bin/env bash
# bench/rag_eval.sh - how well aichat rag finds the file that answers a
# question, against SQLite FTS5 (porter, whole files) and lunr (npm), in
# one run on the same text.  See bench/rag_eval/ and bench/RESULTS.md.
#   corpus:    documentation installed on this Debian system, rendered to
#              text by aichat's extractor (bench/rag_eval/build_corpus.py)
#   questions: bench/rag_eval/qrels.json, 30 natural-language, 30 keyword
# Not a test: the figures depend on what is installed.  RAG_EVAL_DIR sets
# the work directory (default: a temporary one, removed at the end);
# RAG_EVAL_DETAIL=1 adds each question's reciprocal rank per engine.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/rag_eval
mkdir -p "$B"
if [ -n "${RAG_EVAL_DIR:-}" ]; then
	W=$RAG_EVAL_DIR
	rm -rf "$W"
	mkdir -p "$W"
else
	W=$(mktemp -d)
	trap 'rm -rf "$W"' EXIT
fi
make -s all
cc -O2 -Wall -Wextra -D_GNU_SOURCE -Iinclude -o "$B/dumptext" \
	bench/rag_eval/dumptext.c src/core/extract.c src/util/xalloc.c src/util/buf.c -lz
[ -d "$B/node_modules/lunr" ] ||
	npm install --silent --no-audit --no-fund --prefix "$B" lunr@2.3.9 >/dev/null
n=$(python3 bench/rag_eval/build_corpus.py "$B/dumptext" "$W/corpus")
echo "corpus: $n files, $(du -sm "$W/corpus" | cut -f1) MB of text; $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' bench/rag_eval/qrels.json) questions"
AICHAT_HOME="$W/home" ./aichat rag index -c eval ${RAG_EVAL_INDEX_FLAGS:-} "$W/corpus" 2>"$W/index.log"
echo "aichat: $(tail -1 "$W/index.log" | sed 's/^aichat: rag: //')"
NODE_PATH="$B/node_modules" node --max-old-space-size=4096 bench/rag_eval/lunr_search.js \
	"$W/corpus" bench/rag_eval/qrels.json >"$W/lunr.json"
python3 bench/rag_eval/evaluate.py "$W/corpus" bench/rag_eval/qrels.json "$W/home" \
	./aichat "$W/lunr.json"
