#!/usr/bin/env bats
# aichat rag eval: a qrels file of questions with judged relevant files in,
# MRR@10, nDCG@10 and Recall@k per kind of question out.  The collection
# is small and fixed, built so that BM25's order is plain (the same words,
# the same length, more of the query word ranks higher), and every score
# below is worked out by hand in the comments.  Bad qrels files are
# refused before the store is opened: the store is byte for byte the same
# after, and nothing is sent upstream.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/aichat-home"
	T="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$T/c/sub"
	cd "$T" || return 1
	# z3.md is two chunks (--chunk-size 100), both with "zebra" three
	# times: the file counts once, at the rank of its first chunk.
	printf 'zebra zebra zebra fills the first part of this note with plain filler words here.\n\nzebra zebra zebra fills the second part of this note with plain filler words here.\n' >c/z3.md
	printf 'zebra zebra runs along with some plain filler words to pad this line out.\n' >c/z2.md
	printf 'zebra runs along with some more plain filler words to pad this line out.\n' >c/z1.md
	printf 'lemur lemur lemur sits with plain filler words to pad this line out.\n' >c/l3.md
	printf 'lemur lemur sits with some plain filler words to pad this line out.\n' >c/l2.md
	printf 'lemur sits with some more plain filler words to pad this line out.\n' >c/l1.md
	printf 'okapi okapi walks with plain filler words to pad this line out.\n' >c/o2.md
	printf 'okapi walks with some more plain filler words to pad this line out.\n' >c/sub/o1.md
	printf 'a tapir hides with plain filler words to pad this line out.\n' >c/x.md
	printf 'the animal hides with plain filler words to pad this line out.\n' >c/t.md
	run --separate-stderr aichat rag index -c ev --chunk-size 100 --overlap 0 c
	[ "$status" -eq 0 ] || { echo "$stderr" >&2; return 1; }
	# Relevant paths in the three forms: relative to the working
	# directory (c/z2.md), absolute, and a suffix of whole components
	# (o1.md is c/sub/o1.md).  missing.md names no document.
	cat >q.json <<EOF
[
 {"id": "q1", "kind": "natural", "query": "zebra", "relevant": ["c/z2.md"]},
 {"id": "q2", "kind": "natural", "query": "lemur", "relevant": ["$T/c/l3.md", "./c//l1.md"]},
 {"id": "q3", "kind": "keyword", "query": "okapi", "relevant": ["o1.md", "missing.md"]},
 {"query": "tapir", "relevant": ["c/t.md"]}
]
EOF
}

teardown() {
	fake_stop
}

eval_() {
	run --separate-stderr aichat rag eval "$@"
}

# A digest of everything in the store.
store_sum() {
	sqlite3 "$AICHAT_HOME/aichat.db" .dump | md5sum
}

# Hand computation, file level (D(r) = 1/log2(r+1): D1 = 1, D2 = 0.630930,
# D3 = 0.5):
#   q1 zebra: chunks z3, z3, z2, z1 -> files z3, z2, z1; relevant z2 at 2.
#      RR = 1/2; nDCG = D2 / D1 = 0.630930; Recall@10 = 1/1.
#      (Without the dedupe z2 would be 3rd: RR 1/3.)
#   q2 lemur: l3, l2, l1; relevant l3 (1) and l1 (3).
#      RR = 1; nDCG = (D1 + D3) / (D1 + D2) = 1.5 / 1.630930 = 0.919721;
#      Recall@10 = 2/2; Recall@2 = 1/2.
#   q3 okapi: o2, sub/o1; relevant o1 (2) and missing.md (never found).
#      RR = 1/2; nDCG = D2 / (D1 + D2) = 0.386853; Recall = 1/2.
#   4 tapir: x; relevant t.md not ranked: RR 0, nDCG 0, Recall 0.
#   natural (q1, q2): MRR (0.5 + 1)/2 = 0.750; nDCG (0.630930 +
#      0.919721)/2 = 0.775326; Recall@10 1.000, Recall@2 (1 + 0.5)/2 = 0.750.
#   keyword (q3): 0.500, 0.386853, 0.500 (@10 and @2).
#   all: MRR (0.5 + 1 + 0.5 + 0)/4 = 0.500; nDCG (0.630930 + 0.919721 +
#      0.386853 + 0)/4 = 0.484376; Recall@10 (1 + 1 + 0.5 + 0)/4 = 0.625,
#      Recall@2 (1 + 0.5 + 0.5 + 0)/4 = 0.500.

@test "eval scores a fixed collection as computed by hand; piped, the table is tab-separated" {
	eval_ -c ev q.json
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'KIND\tQUESTIONS\tMRR@10\tnDCG@10\tRECALL@10\nkeyword\t1\t0.500\t0.387\t0.500\nnatural\t2\t0.750\t0.775\t1.000\nall\t4\t0.500\t0.484\t0.625')" ]
	[ "$stderr" = "aichat: rag: eval: question 'q3': relevant path 'missing.md' matches no document of collection 'ev' (counted as a miss)" ]
}

@test "eval -k 2 changes Recall@k only" {
	eval_ -c ev -k 2 q.json
	[ "$status" -eq 0 ]
	[ "$output" = "$(printf 'KIND\tQUESTIONS\tMRR@10\tnDCG@10\tRECALL@2\nkeyword\t1\t0.500\t0.387\t0.500\nnatural\t2\t0.750\t0.775\t0.750\nall\t4\t0.500\t0.484\t0.500')" ]
}

@test "eval --json: the summary per kind and each question's scores and hits" {
	eval_ -c ev --json q.json
	[ "$status" -eq 0 ]
	[ "$(json_get collection <<<"$output")" = ev ]
	[ "$(json_get retrieval <<<"$output")" = bm25 ]
	[ "$(json_get k <<<"$output")" = 10 ]
	[ "$(json_get questions <<<"$output")" = 4 ]
	[ "$(json_get summary.2.kind <<<"$output")" = all ]
	python3 - "$output" <<'PY'
import json, math, sys
v = json.loads(sys.argv[1])
D2 = 1 / math.log2(3)
want = {"keyword": (1, 0.5, D2 / (1 + D2), 0.5),
        "natural": (2, 0.75, (D2 + 1.5 / (1 + D2)) / 2, 1.0),
        "all": (4, 0.5, (D2 + 1.5 / (1 + D2) + D2 / (1 + D2)) / 4, 0.625)}
assert [r["kind"] for r in v["summary"]] == ["keyword", "natural", "all"], v["summary"]
for r in v["summary"]:
    n, mrr, ndcg, rec = want[r["kind"]]
    assert r["questions"] == n, r
    assert abs(r["mrr_at_10"] - mrr) < 1e-9, r
    assert abs(r["ndcg_at_10"] - ndcg) < 1e-9, r
    assert abs(r["recall_at_k"] - rec) < 1e-9, r
q1, q2, q3, q4 = v["results"]
assert [q["id"] for q in v["results"]] == ["q1", "q2", "q3", "4"]
assert q4["kind"] == "all"
assert [(h["rank"], h["path"], h["relevant"]) for h in q1["hits"]] == [
    (1, "c/z3.md", False), (2, "c/z2.md", True), (3, "c/z1.md", False)], q1["hits"]
assert q1["first_relevant_rank"] == 2 and q1["rr"] == 0.5
assert q2["relevant"][0]["path"].endswith("/tree/c/l3.md"), q2["relevant"]
assert q2["relevant"][0]["document"] == "c/l3.md", q2["relevant"]
assert q2["relevant"][1] == {"path": "c/l1.md", "document": "c/l1.md"}, q2["relevant"]
assert q3["relevant"][1] == {"path": "missing.md", "document": None}
assert q3["relevant"][0]["document"] == "c/sub/o1.md"
assert q4["first_relevant_rank"] is None and q4["rr"] == 0 and q4["recall"] == 0
assert v["warnings"] == ["question 'q3': relevant path 'missing.md' matches no document of collection 'ev' (counted as a miss)"]
PY
}

@test "eval -v lists each question's top files, relevant ones marked, and the relevant ones not found" {
	eval_ -c ev -v q.json
	[ "$status" -eq 0 ]
	[[ $output == *"q1 (natural): zebra
  RR 0.500  nDCG@10 0.631  Recall@10 1.000
    1   c/z3.md
    2 * c/z2.md
    3   c/z1.md
"* ]]
	[[ $output == *"q3 (keyword): okapi
  RR 0.500  nDCG@10 0.387  Recall@10 0.500
    1   c/o2.md
    2 * c/sub/o1.md
      - missing.md (no such document)
"* ]]
	[[ $output == *"4 (all): tapir
  RR 0.000  nDCG@10 0.000  Recall@10 0.000
    1   c/x.md
      - c/t.md (relevant, not in the first 10)
"* ]]
	# The table still ends the output.
	[[ $output == *$'\nall\t4\t0.500\t0.484\t0.625' ]]
}

@test "eval on a terminal aligns the table in columns" {
	python3 -c 'import pty, sys; pty.spawn(sys.argv[1:])' "$AICHAT_BIN" rag eval -c ev q.json >out.txt 2>&1
	tr -d '\r' <out.txt >table.txt
	grep -qx 'KIND     QUESTIONS   MRR@10  nDCG@10  RECALL@10' table.txt
	grep -qx 'keyword          1    0.500    0.387      0.500' table.txt
	grep -qx 'all              4    0.500    0.484      0.625' table.txt
}

@test "a relevant path that matches several documents is warned about; the shortest is taken" {
	mkdir -p c/deep
	printf 'quagga quagga lives here with filler words to pad this line out.\n' >c/deep/o2.md
	run --separate-stderr aichat rag index -c ev --chunk-size 100 --overlap 0 c
	printf '[{"id": "a", "query": "okapi", "relevant": ["o2.md"]}]' >amb.json
	eval_ -c ev --json amb.json
	[ "$status" -eq 0 ]
	[ "$stderr" = "aichat: rag: eval: question 'a': relevant path 'o2.md' matches 2 documents; taking 'c/o2.md', the shortest (give more of its path)" ]
	[ "$(json_get results.0.relevant.0.document <<<"$output")" = c/o2.md ]
	[ "$(json_get results.0.rr <<<"$output")" = 1 ]
}

# bad ARGS... EXIT MESSAGE: eval fails with that status and exactly that
# one line on stderr, prints nothing, and the store is unchanged.
bad() {
	local want_status=${*: -2:1} want=${*: -1} before
	before=$(store_sum)
	run --separate-stderr aichat rag eval "${@:1:$#-2}"
	[ "$status" -eq "$want_status" ] || { echo "status $status: $stderr" >&2; return 1; }
	[ "$stderr" = "$want" ] || { echo "stderr: $stderr" >&2; echo "want:   $want" >&2; return 1; }
	[ -z "$output" ]
	[ "$(store_sum)" = "$before" ]
}

@test "bad qrels files: missing, a directory, not JSON, another shape; each named, exit 2, nothing changed" {
	bad -c ev nope.json 2 "aichat: rag: eval: cannot read 'nope.json': No such file or directory"
	bad -c ev c 2 "aichat: rag: eval: 'c' is a directory, not a qrels file"
	printf '[{"query": "x",\n  "relevant": ["a"]' >cut.json
	bad -c ev cut.json 2 "aichat: rag: 'cut.json' is not JSON (line 2, column 19): expected an array of questions"
	printf '{"query": "zebra", "relevant": ["c/z2.md"]}' >obj.json
	bad -c ev obj.json 2 "aichat: rag: 'obj.json' must hold a JSON array of questions, not an object"
	printf '[]' >none.json
	bad -c ev none.json 2 "aichat: rag: 'none.json' holds no question"
	printf '[{"query": "zebra", "relevant": ["c/z2.md"]}, {"query": "lemur", "relevant": "c/l1.md"}]' >shape.json
	bad -c ev shape.json 2 "aichat: rag: 'shape.json': entry 2: field 'relevant' must be an array of paths, not a string"
	printf '[{"query": "zebra", "relevant": []}]' >norel.json
	bad -c ev norel.json 2 "aichat: rag: 'norel.json': entry 1: field 'relevant' is empty: a question needs at least one relevant path"
	printf '[{"query": "zebra", "relevant": ["c/z2.md", 3]}]' >num.json
	bad -c ev num.json 2 "aichat: rag: 'num.json': entry 1: field 'relevant' item 2 must be a non-empty path, not a number"
	printf '[{"query": "zebra", "relevant": ["a"], "kind": ["x"]}]' >kind.json
	bad -c ev kind.json 2 "aichat: rag: 'kind.json': entry 1: field 'kind' must be a string, not an array"
	printf '[{"id": "q", "query": "zebra", "relevant": ["a"]}, {"id": "q", "query": "lemur", "relevant": ["b"]}]' >dup.json
	bad -c ev dup.json 2 "aichat: rag: 'dup.json': entry 2: field 'id' 'q' is entry 1's too"
	printf '[{"query": "zebra", "relevant": ["a"], "relevant": ["b"]}]' >twice.json
	bad -c ev twice.json 2 "aichat: rag: 'twice.json': entry 1, 'relevant': duplicate key 'relevant'"
}

@test "an empty query, or one without a word, is refused naming its entry; exit 2" {
	printf '[{"query": "zebra", "relevant": ["a"]}, {"query": "", "relevant": ["a"]}]' >empty.json
	bad -c ev empty.json 2 "aichat: rag: 'empty.json': entry 2: field 'query' is empty"
	printf '[{"query": "  ", "relevant": ["a"]}]' >blank.json
	bad -c ev blank.json 2 "aichat: rag: 'blank.json': entry 1: field 'query' is empty"
	printf '[{"query": "*** ()", "relevant": ["a"]}]' >noword.json
	bad -c ev noword.json 2 "aichat: rag: 'noword.json': entry 1: field 'query' has no word to search for"
	printf '[{"relevant": ["a"]}]' >noq.json
	bad -c ev noq.json 2 "aichat: rag: 'noq.json': entry 1: field 'query' is missing"
	printf '[{"query": null, "relevant": ["a"]}]' >nullq.json
	bad -c ev nullq.json 2 "aichat: rag: 'nullq.json': entry 1: field 'query' must be a string, not null"
}

@test "eval's arguments: an unknown collection exit 2 and not created, an empty one exit 3, -k bounds, one file" {
	bad -c nope q.json 2 "aichat: rag: no collection 'nope' (see 'aichat rag list'; create one with 'aichat rag index -c nope PATH')"
	run aichat rag list
	[[ $output != *nope* ]]
	printf '\n\n' >blank.md
	run --separate-stderr aichat rag index -c empty blank.md
	bad -c empty q.json 3 "aichat: rag: collection 'empty' is empty: index some files first ('aichat rag index -c empty PATH')"
	bad -c ev -k 0 q.json 2 "aichat: rag: invalid value '0' for '--top-k': must be >= 1"
	bad -c ev -k 1001 q.json 2 "aichat: rag: invalid value '1001' for '--top-k': must be <= 1000"
	bad -c ev 2 "aichat: rag: eval takes one qrels file, none was given (see 'aichat rag eval --help')"
	bad -c ev q.json q.json 2 "aichat: rag: eval takes one qrels file, not several (see 'aichat rag eval --help')"
	bad -c 'a/b' q.json 2 "aichat: rag: invalid collection name 'a/b': use 1..64 characters of A-Z a-z 0-9 . _ -"
	# The largest k is accepted; the top 1000 files of 10 are all 10.
	eval_ -c ev -k 1000 q.json
	[ "$status" -eq 0 ]
	[[ $output == *$'\nall\t4\t0.500\t0.484\t0.625' ]]
}

@test "eval sends nothing upstream for a BM25 collection; a hybrid one embeds each query as search does" {
	use_fake() {
		fake_start "$@"
		export OPENAI_BASE_URL="$FAKE_URL/v1" OPENAI_API_KEY=sk-test AICHAT_RETRY_BASE=0.01
	}
	use_fake
	eval_ -c ev q.json
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 0 ]
	run --separate-stderr aichat rag index -c hy --embed-model openai:text-embedding-3-small \
		--chunk-size 100 --overlap 0 c
	[ "$status" -eq 0 ]
	local before
	before=$(fake_count)
	# A bad qrels file: nothing is sent.
	printf '[{"query": "", "relevant": ["a"]}]' >empty.json
	bad -c hy empty.json 2 "aichat: rag: 'empty.json': entry 1: field 'query' is empty"
	[ "$(fake_count)" -eq "$before" ]
	eval_ -c hy --json q.json
	[ "$status" -eq 0 ]
	[ "$(json_get retrieval <<<"$output")" = hybrid ]
	[ "$(json_get results.0.retrieval <<<"$output")" = hybrid ]
	# One embedding request per question, each the question's query.
	[ "$(fake_count)" -eq $((before + 4)) ]
	[ "$(fake_field $((before + 1)) body.input.0)" = zebra ]
	[ "$(fake_field $((before + 4)) body.input.0)" = tapir ]
	# Each question's hits are rag search's, as files.
	run --separate-stderr aichat rag search -c hy --json -k 20 lemur
	local first
	first=$(json_get 0.path <<<"$output")
	eval_ -c hy --json q.json
	[ "$(json_get results.1.hits.0.path <<<"$output")" = "$first" ]
}

@test "eval --help shows its own options; index's are refused" {
	eval_ --help
	[ "$status" -eq 0 ]
	[[ $output == "usage: aichat rag eval [-c NAME] [-k N] [-v] [--json] QRELS"* ]]
	[[ $output == *"-k, --top-k N           eval: the k of Recall@k, in files (1..1000, default 10)"* ]]
	[[ $output != *--chunk-size* ]]
	bad -c ev --chunk-size 200 q.json 2 "aichat: rag: unknown option '--chunk-size' (see 'aichat rag eval --help')"
}
