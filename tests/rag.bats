#!/usr/bin/env bats
# aichat rag: index a generated tree, search it, answer from it with the
# offline mock model.  Each test checks what the user sees (stdout,
# stderr, exit status); nothing here touches the network.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/aichat-home"
	T="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$T/docs/sub" "$T/docs/.hidden" "$T/docs/.git"
	cat >"$T/docs/guide.md" <<'EOF'
# Installing

Run make to build the binary, then make install.

## Resuming a batch

Use the resume flag with an output file to resume a batch after a crash.
Finished ids are skipped.

```sh
aichat batch -o out.jsonl in.jsonl
```
EOF
	printf 'The quokka lives on Rottnest Island.\n\nIt is small and friendly.\n' >"$T/docs/animals.txt"
	printf 'int main(void)\n{\n\treturn zebrafish();\n}\n' >"$T/docs/sub/code.c"
	printf 'hiddenword lives here\n' >"$T/docs/.hidden/secret.md"
	printf '[core]\n\tgitword = 1\n' >"$T/docs/.git/config"
	printf 'binaryword\0\1\2\3' >"$T/docs/blob.bin"
	cd "$T" || return 1
}

teardown() {
	fake_stop
}

index() {
	run --separate-stderr aichat rag index "$@"
}

# index_unprivileged ARGS: like index, but without root's power to read any
# file: as root, aichat runs as the only user of a new user namespace, which
# keeps the files (and AICHAT_HOME) its own but takes every capability away.
index_unprivileged() {
	if [ "$(id -u)" -eq 0 ]; then
		run --separate-stderr unshare --user --map-user=65534 --map-group=65534 \
			"$AICHAT_BIN" rag index "$@"
	else
		index "$@"
	fi
}

@test "index a tree: text files in, hidden, VCS and binary files out, a summary" {
	index docs
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	[[ $stderr != *"blob.bin"* ]]
	[[ $stderr == *"aichat: rag: skipped 1 file: 1 binary (--verbose lists them)"* ]]
	[[ $stderr =~ aichat:\ rag:\ 3\ files\ added,\ 0\ updated,\ 0\ unchanged,\ 1\ skipped,\ [0-9]+\ chunks,\ [0-9]+\.[0-9]\ s ]]
	index -v --prune docs
	[[ $stderr == *"aichat: rag: '$T/docs/blob.bin' looks binary, skipped"* ]]
	[[ $stderr == *"aichat: rag: skipped 1 file: 1 binary"$'\n'* ]]
	run --separate-stderr aichat rag search hiddenword
	[ "$output" = "" ]
	run --separate-stderr aichat rag search gitword
	[ "$output" = "" ]
	run --separate-stderr aichat rag search binaryword
	[ "$output" = "" ]
}

@test "search finds the file that holds the words, with its lines" {
	index docs
	run --separate-stderr aichat rag search quokka island
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^\ 1\ +[0-9.]+\ +docs/animals.txt:1-[0-9]+\ +The\ quokka ]]
	run --separate-stderr aichat rag search zebrafish
	[[ ${lines[0]} == *docs/sub/code.c:1-4* ]]
	run --separate-stderr aichat rag search resume crash
	[[ ${lines[0]} == *docs/guide.md:5-* ]]
}

@test "search keeps the best matches: with -k 1, the passage that holds the word most" {
	{
		echo "A long note about many other things."
		for i in $(seq 40); do echo "Line $i talks about gardens, rivers and weather."; done
		echo "Somewhere it says resume once."
	} >"$T/docs/note.md"
	index docs
	run --separate-stderr aichat rag search --json -k 2 resume
	[ "$status" -eq 0 ]
	[ "$(json_get 0.path <<<"$output")" = docs/guide.md ]
	[ "$(json_get 1.path <<<"$output")" = docs/note.md ]
	run --separate-stderr aichat rag search --json -k 1 resume
	[ "$status" -eq 0 ]
	[ "$(json_get 0.path <<<"$output")" = docs/guide.md ]
	[ "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$output")" -eq 1 ]
}

@test "search --json is an array of rank, score, path, lines, snippet" {
	index docs
	run --separate-stderr aichat rag search --json -k 1 zebrafish
	[ "$status" -eq 0 ]
	[ "$(json_get 0.path <<<"$output")" = docs/sub/code.c ]
	[ "$(json_get 0.rank <<<"$output")" = 1 ]
	[ "$(json_get 0.lines <<<"$output")" = "[1,4]" ]
	[[ $(json_get 0.snippet <<<"$output") == *zebrafish* ]]
	python3 -c 'import json,sys; v=json.load(sys.stdin); assert len(v)==1 and v[0]["score"] > 0' <<<"$output"
	run --separate-stderr aichat rag search --json nosuchwordanywhere
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
}

@test "a file of several MiB is read in windows: every part searchable, lines right, memory small" {
	# 12 MiB: paragraphs numbered by line, a unique word at the start, in
	# the middle and on the last line.
	python3 - "$T/big.md" <<'PY'
import sys
out = open(sys.argv[1], "w")
line = 1
out.write("firstmarker opens the file.\n\n"); line += 2
for i in range(200000):
    if i == 100000:
        out.write("middlemarker sits on line %d.\n\n" % line); line += 2
    out.write("Paragraph %d has plain words in it for padding the file.\n\n" % i); line += 2
out.write("lastmarker closes the file on line %d.\n" % line)
PY
	[ "$(stat -c %s "$T/big.md")" -gt $((11 * 1024 * 1024)) ]
	head -c 20000 "$T/big.md" >"$T/small.md"
	run --separate-stderr /usr/bin/time -f 'maxrss %M' "$AICHAT_BIN" rag index -c small small.md
	[ "$status" -eq 0 ]
	small=$(sed -n 's/^maxrss //p' <<<"$stderr")
	run --separate-stderr /usr/bin/time -f 'maxrss %M' "$AICHAT_BIN" rag index big.md
	[ "$status" -eq 0 ]
	[[ $stderr == *"1 files added"* ]]
	big=$(sed -n 's/^maxrss //p' <<<"$stderr")
	# Peak RSS in KiB: the 12 MiB file costs less than 6 MiB more than a
	# 20 KB one (held whole, it alone would be 12 MiB more).  AddressSanitizer
	# makes RSS meaningless, so not under asan.
	[[ "$AICHAT_BIN" == */build-asan/* ]] || [ $((big - small)) -lt 6144 ]
	for w in firstmarker middlemarker lastmarker; do
		run --separate-stderr aichat rag search --json -k 1 "$w"
		[ "$status" -eq 0 ]
		IFS='[,]' read -r _ first last <<<"$(json_get 0.lines <<<"$output")"
		want=$(grep -n "$w" "$T/big.md" | cut -d: -f1)
		[ "$first" -le "$want" ]
		[ "$want" -le "$last" ]
		[[ $(json_get 0.snippet <<<"$output") == *"$w"* ]]
	done
}

@test "re-index: unchanged skipped, changed updated, --prune forgets deleted files" {
	index docs
	index docs
	[ "$status" -eq 0 ]
	[[ $stderr == *"0 files added, 0 updated, 3 unchanged, 1 skipped, 0 chunks"* ]]
	printf 'The wombat digs burrows.\n' >"$T/docs/animals.txt"
	rm "$T/docs/sub/code.c"
	index docs
	[[ $stderr == *"0 files added, 1 updated, 1 unchanged, 1 skipped, 1 chunks"* ]]
	run --separate-stderr aichat rag search quokka
	[ "$output" = "" ]
	run aichat rag search wombat
	[[ $output == *docs/animals.txt* ]]
	# Without --prune the deleted file is still there; with it, gone.
	run aichat rag search zebrafish
	[[ $output == *code.c* ]]
	index --prune docs
	[ "$status" -eq 0 ]
	[[ $stderr == *"pruned 1 file that is gone"* ]]
	run --separate-stderr aichat rag search zebrafish
	[ "$output" = "" ]
	run aichat rag info --json default
	[ "$(json_get documents <<<"$output")" = 2 ]
}

@test "'-' reads the paths to index from stdin" {
	run --separate-stderr aichat rag index -c piped - <<<"$(printf 'docs/animals.txt\ndocs/sub/code.c\n')"
	[ "$status" -eq 0 ]
	[[ $stderr == *"2 files added"* ]]
	run aichat rag search -c piped quokka
	[[ $output == *docs/animals.txt* ]]
}

@test "a missing path is reported, the others are indexed, exit 1" {
	index docs/animals.txt nope.md docs/sub
	[ "$status" -eq 1 ]
	[[ $stderr == *"aichat: rag: cannot index 'nope.md': No such file or directory"* ]]
	[[ $stderr == *"2 files added"* ]]
	run aichat rag search zebrafish
	[[ $output == *code.c* ]]
}

@test "an unreadable file is reported, the others are indexed, exit 1" {
	printf 'locked words\n' >"$T/docs/locked.md"
	chmod 000 "$T/docs/locked.md"
	index_unprivileged docs
	chmod 644 "$T/docs/locked.md"
	[ "$status" -eq 1 ]
	[[ $stderr == *"cannot read '$T/docs/locked.md': Permission denied"* ]]
	[[ $stderr == *"3 files added"* ]]
}

@test "a file whose read fails is reported, even for root, the others indexed" {
	# /proc/self/mem is a regular file whose read at offset 0 fails (EIO).
	[ -e /proc/self/mem ] || skip "platform: no /proc"
	index /proc/self/mem docs/animals.txt
	[ "$status" -eq 1 ]
	[[ $stderr =~ aichat:\ rag:\ cannot\ read\ \'/proc/[0-9]+/mem\':\  ]]
	[[ $stderr == *"1 files added"* ]]
}

@test "an unreadable directory is reported, the others are indexed, exit 1" {
	mkdir "$T/docs/closed"
	chmod 000 "$T/docs/closed"
	index_unprivileged docs
	chmod 755 "$T/docs/closed"
	[ "$status" -eq 1 ]
	[[ $stderr == *"cannot read directory 'docs/closed': Permission denied"* ]]
}

@test "a fifo named on the command line is skipped, not waited on" {
	mkfifo "$T/docs/pipe"
	run --separate-stderr timeout 5 "$AICHAT_BIN" rag index -v docs/pipe docs/animals.txt
	[ "$status" -eq 0 ]
	[[ $stderr == *"'$T/docs/pipe' is not a regular file, skipped"* ]]
	[[ $stderr == *"skipped 1 file: 1 not a regular file"$'\n'* ]]
	[[ $stderr == *"1 files added"* ]]
}

@test "--include and --exclude select files by name" {
	index --include '*.md' docs
	[[ $stderr == *"1 files added, 0 updated, 0 unchanged, 0 skipped"* ]]
	index -c other --exclude sub --exclude '*.md' docs
	[[ $stderr == *"1 files added, 0 updated, 0 unchanged, 1 skipped"* ]]
	run --separate-stderr aichat rag search -c other zebrafish
	[ "$output" = "" ]
}

@test "an unknown collection is exit 2, an empty one exit 3; nothing is created" {
	run --separate-stderr aichat rag search -c nope words
	[ "$status" -eq 2 ]
	[[ $stderr == "aichat: rag: no collection 'nope' (see 'aichat rag list'; create one with 'aichat rag index -c nope PATH')" ]]
	printf '\n\n' >"$T/blank.md"
	index -c empty blank.md
	[ "$status" -eq 0 ]
	run --separate-stderr aichat rag query -c empty -m mock:echo words
	[ "$status" -eq 3 ]
	[[ $stderr == *"collection 'empty' is empty"* ]]
	run aichat rag list
	[[ $output != *nope* ]]
}

@test "a question past 2000 characters is fine here (the cap is serve's); bytes and the budget bound it" {
	index docs
	long="quokka $(printf 'a%.0s' {1..2001})"
	run --separate-stderr aichat rag search "$long"
	[ "$status" -eq 0 ]
	[[ $output == *animals.txt* ]]
	run --separate-stderr aichat rag query -m mock:echo "$long"
	[ "$status" -eq 0 ]
	[[ $output == *"Question: $long"* ]]
	export AICHAT_MAX_PROMPT_BYTES=2008
	run --separate-stderr aichat rag query -m mock:echo "$long"
	[ "$status" -eq 0 ]
	run --separate-stderr aichat rag query -m mock:echo "$long"b
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: rag: the question is 2.0 KiB (2009 bytes), over the 2008-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	run --separate-stderr aichat rag search "$long"b
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: rag: the query is 2.0 KiB (2009 bytes), over the 2008-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	unset AICHAT_MAX_PROMPT_BYTES
	# the question and its passages must fit the model's context
	AICHAT_CONTEXT_BUDGET=100 run --separate-stderr aichat rag query -m mock:echo "$long"
	[ "$status" -eq 2 ]
	[[ $stderr == "aichat: rag: the prompt is about "*" tokens ("*" bytes), over the 100-token context budget of mock:echo (AICHAT_CONTEXT_BUDGET)" ]]
	[ "$output" = "" ]
	run --separate-stderr aichat rag search -k 21 quokka
	[ "$status" -eq 2 ]
	[[ $stderr == *"for '-k'"* || $stderr == *"for '--top-k'"* ]]
}

@test "a question or query that is not valid UTF-8 is exit 2 saying where; nothing sent" {
	index docs
	use_fake
	run --separate-stderr aichat rag query -m openai:gpt-4o-mini $'caf\xe9 quokka'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: rag: the question is not valid UTF-8 (byte 4): convert it first, e.g. with iconv" ]
	[ "$output" = "" ]
	run --separate-stderr aichat rag search $'quokka \xc3'
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: rag: the query is not valid UTF-8 (byte 8): convert it first, e.g. with iconv" ]
	[ "$(fake_count)" = 0 ]
	# Valid UTF-8 reaches the model whole.
	run --separate-stderr aichat rag query -m openai:gpt-4o-mini 'café quokka'
	[ "$status" -eq 0 ]
	[ "$(fake_count)" = 1 ]
	[[ "$(fake_field 1 body.messages.0.content)" == *"Question: café quokka"* ]]
}

@test "collection names with quotes, slashes or SQL are refused clearly" {
	local name
	for name in "x'y" 'a"b' ../etc a/b "x; DROP TABLE chunks; --" "" \
		"$(printf 'n%.0s' {1..65})" "sp ace"; do
		run --separate-stderr aichat rag index -c "$name" docs
		[ "$status" -eq 2 ]
		# The name check, or for "" and 65 characters the schema's bounds.
		[[ $stderr == "aichat: rag: invalid collection name '"*"': use 1..64 characters of A-Z a-z 0-9 . _ -" ||
			$stderr == "aichat: rag: invalid value '"*"' for '--collection': "* ]]
		run --separate-stderr aichat rag search -c "$name" words
		[ "$status" -eq 2 ]
		run --separate-stderr aichat rag rm "$name"
		[ "$status" -eq 2 ]
	done
	index -c ok.name_1-x docs
	[ "$status" -eq 0 ]
}

@test "FTS5 syntax in a query is plain words, never an error" {
	index docs
	local q
	for q in '"foo" OR bar*' 'NEAR(' 'quokka AND' '"unbalanced' 'col:quokka' '^start' \
		'a - b' 'NOT quokka' "it's" 'quokka)' '{a b}' '+x'; do
		run --separate-stderr aichat rag search "$q"
		[ "$status" -eq 0 ] || { echo "query '$q': $stderr" >&2; false; }
	done
	run --separate-stderr aichat rag search 'NEAR(quokka'
	[[ $output == *animals.txt* ]]
	run --separate-stderr aichat rag search '*** ((('
	[ "$status" -eq 2 ]
	[[ $stderr == *"the query has no words to search for"* ]]
}

@test "query streams the answer from mock:echo, then lists the sources" {
	index docs
	run --separate-stderr aichat rag query -m mock:echo "where does the quokka live"
	[ "$status" -eq 0 ]
	[[ $output == *"[1] docs/animals.txt:1-3"* ]]
	[[ $output == *"The quokka lives on Rottnest Island."* ]]
	[[ $output == *"Question: where does the quokka live"* ]]
	[[ $output == *"Cite the sources"* ]]
	[[ $output == *$'\nSources:\n[1] docs/animals.txt:1-3'* ]]
	[ "$stderr" = "" ]
	run --separate-stderr aichat rag query --no-stream -m mock:echo quokka
	[ "$status" -eq 0 ]
	[[ $output == *$'\nSources:\n[1] docs/animals.txt:1-3'* ]]
}

@test "query --json: answer, sources, latency, model, token counts" {
	index docs
	run --separate-stderr aichat rag query --json -m mock:echo quokka zebrafish
	[ "$status" -eq 0 ]
	[[ $(json_get answer <<<"$output") == *"Question: quokka zebrafish"* ]]
	[ "$(json_get model <<<"$output")" = mock:echo ]
	[ "$(json_get sources.0.n <<<"$output")" = 1 ]
	[[ $(json_get sources.0.path <<<"$output") == docs/* ]]
	python3 -c '
import json, sys
v = json.load(sys.stdin)
assert set(v) == {"answer", "sources", "retrieval_latency_ms", "retrieval", "model", "prompt_tokens", "completion_tokens"}, v
assert v["retrieval"] == "bm25"
assert len(v["sources"]) == 2
assert set(v["sources"][0]) == {"n", "path", "lines", "score"}
assert isinstance(v["retrieval_latency_ms"], (int, float)) and v["prompt_tokens"] > 0
' <<<"$output"
}

@test "query with no matching passage sends nothing, exit 1" {
	index docs
	run --separate-stderr aichat rag query -m mock:echo nosuchwordanywhere
	[ "$status" -eq 1 ]
	[[ $stderr == *"no passage of collection 'default' matches the question; nothing was sent"* ]]
}

@test "8 parallel index processes into one collection never hit 'database is locked'" {
	local i
	mkdir -p "$T/many"
	for i in $(seq 1 40); do
		printf '# File %d\n\nword%d appears in file %d only.\n' "$i" "$i" "$i" >"$T/many/f$i.md"
	done
	run bash -c 'ls many/*.md | xargs -P 8 -n 5 "$AICHAT_BIN" rag index -c par 2>&1; echo "rc=$?"'
	[[ $output == *rc=0 ]] || { echo "$output" >&2; false; }
	[[ $output != *locked* ]]
	run aichat rag info --json par
	[ "$(json_get documents <<<"$output")" = 40 ]
	run aichat rag search -c par word17
	[[ ${lines[0]} == *many/f17.md* ]]
}

@test "list, info and rm" {
	index docs
	index -c second docs/animals.txt
	run --separate-stderr aichat rag list
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == NAME*DOCUMENTS*CHUNKS*SIZE ]]
	[[ ${lines[1]} =~ ^default\ +3\ +[0-9]+\ +[0-9.]+\ (B|KiB)$ ]]
	[[ ${lines[2]} =~ ^second\ +1\  ]]
	run aichat rag list --json
	[ "$(json_get 1.name <<<"$output")" = second ]
	[ "$(json_get 1.documents <<<"$output")" = 1 ]
	run --separate-stderr aichat rag info second
	[ "$status" -eq 0 ]
	[[ $output == *"documents:       1"* ]]
	# -c NAME as for the other subcommands; info defaults to "default".
	run --separate-stderr aichat rag info -c second --json
	[ "$status" -eq 0 ]
	[ "$(json_get name <<<"$output")" = second ]
	run --separate-stderr aichat rag info --json
	[ "$(json_get name <<<"$output")" = default ]
	run --separate-stderr aichat rag info -c second default
	[ "$status" -eq 2 ]
	[[ $stderr == *"info takes one collection name"* ]]
	run --separate-stderr aichat rag rm
	[ "$status" -eq 2 ]
	[[ $stderr == *"rm needs a collection name: -c NAME or NAME"* ]]
	run --separate-stderr aichat rag rm -c second
	[ "$status" -eq 0 ]
	[ "$stderr" = "aichat: rag: removed collection 'second'" ]
	index -c second docs/animals.txt
	run --separate-stderr aichat rag rm second
	[ "$status" -eq 0 ]
	[ "$stderr" = "aichat: rag: removed collection 'second'" ]
	run --separate-stderr aichat rag info second
	[ "$status" -eq 2 ]
	run --separate-stderr aichat rag rm second
	[ "$status" -eq 2 ]
	run aichat rag list --json
	[ "$(json_get 0.name <<<"$output")" = default ]
	[[ $output != *second* ]]
}

@test "help: rag --help lists the subcommands; each has its own options" {
	local help s
	run --separate-stderr aichat rag --help
	[ "$status" -eq 0 ]
	[[ $output == "usage: aichat rag SUBCOMMAND"* ]]
	help=$output
	for s in index search query list info rm eval; do
		[[ $help == *"  $s "* ]]
		run --separate-stderr aichat rag "$s" --help
		[ "$status" -eq 0 ]
		[[ $output == "usage: aichat rag $s"* ]]
	done
	run --separate-stderr aichat rag index --help
	[[ $output == *--chunk-size* && $output != *--top-k* ]]
	run --separate-stderr aichat rag search --chunk-size 5 words
	[ "$status" -eq 2 ]
	[[ $stderr == *"unknown option '--chunk-size'"* ]]
	run --separate-stderr aichat rag serach words
	[ "$status" -eq 2 ]
	[[ $stderr == *"did you mean 'search'?"* ]]
	run --separate-stderr aichat rag
	[ "$status" -eq 2 ]
	run --separate-stderr aichat rag index
	[ "$status" -eq 2 ]
	[[ $stderr == *"no path given"* ]]
	run --separate-stderr aichat rag index --chunk-size 200 --overlap 150 docs
	[ "$status" -eq 2 ]
}

# ---- embeddings and hybrid search ----

# Chunks of collection $1 with a vector of $2 bytes, as "with/all".
vectors() {
	sqlite3 "$AICHAT_HOME/aichat.db" "SELECT sum(length(k.embedding) = $2) || '/' || count(*)
		FROM chunks k JOIN collections c ON c.id = k.collection_id WHERE c.name = '$1'"
}

# The fake upstream as the openai provider; retries without long waits.
use_fake() {
	fake_start "$@"
	export OPENAI_BASE_URL="$FAKE_URL/v1" OPENAI_API_KEY=sk-test AICHAT_RETRY_BASE=0.01
}

@test "--embed-model mock:embed stores a float32 vector per chunk and the model" {
	command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (tools/deps.sh installs it)" >&2; return 1; }
	index --embed-model mock:embed docs
	[ "$status" -eq 0 ]
	[[ $stderr =~ 3\ files\ added,\ 0\ updated,\ 0\ unchanged,\ 1\ skipped,\ ([0-9]+)\ chunks,\ ([0-9]+)\ vectors,\ [0-9.]+\ s$ ]]
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
	[ "$(vectors default 256)" = "${BASH_REMATCH[1]}/${BASH_REMATCH[1]}" ]
	run aichat rag info --json default
	[ "$(json_get embed_model <<<"$output")" = mock:embed ]
	[ "$(json_get dim <<<"$output")" = 64 ]
	# A rerun without the option keeps embedding new chunks with it.
	printf 'The wombat digs burrows.\n' >"$T/docs/wombat.txt"
	index docs
	[ "$status" -eq 0 ]
	[[ $stderr == *"1 files added, 0 updated, 3 unchanged, 1 skipped, 1 chunks, 1 vectors,"* ]]
	run aichat rag info default
	[[ $output == *"embedding model: mock:embed (64 dimensions; "*" chunks have vectors; hybrid search)"* ]]
}

@test "hybrid search finds a file by a word form that BM25 alone misses" {
	# --language none: words as written (en would stem "quokkas").
	index -c plain --language none docs
	run --separate-stderr aichat rag search -c plain quokkas
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	index -c dense --language none --embed-model mock:embed docs
	run --separate-stderr aichat rag search -c dense quokkas
	[ "$status" -eq 0 ]
	[[ ${lines[0]} =~ ^\ 1\ +0\.[0-9]+\ +docs/animals.txt:1-3\ +The\ quokka ]]
	[ "$stderr" = "" ]
	run --separate-stderr aichat rag search -c dense --json -k 2 resume crash
	[ "$(json_get 0.path <<<"$output")" = docs/guide.md ]
	[ "$(json_get 0.retrieval <<<"$output")" = hybrid ]
	python3 -c 'import json,sys; v=json.load(sys.stdin); assert abs(v[0]["score"] - 2/61) < 1e-9, v' <<<"$output"
	run --separate-stderr aichat rag search -c plain --json quokka
	[ "$(json_get 0.retrieval <<<"$output")" = bm25 ]
	run --separate-stderr aichat rag query -c dense --json -m mock:echo quokkas
	[ "$(json_get retrieval <<<"$output")" = hybrid ]
	[ "$(json_get sources.0.path <<<"$output")" = docs/animals.txt ]
}

@test "embeddings go in batches of 64 to {base}/embeddings with the key" {
	local i
	mkdir -p "$T/many"
	for i in $(seq 1 100); do
		printf 'word%d appears in file %d only.\n' "$i" "$i" >"$T/many/f$i.md"
	done
	use_fake
	index --embed-model openai:text-embedding-3-small many
	[ "$status" -eq 0 ]
	[[ $stderr == *"100 chunks, 100 vectors,"* ]]
	[ "$(fake_count)" -eq 2 ]
	[ "$(fake_field 1 path)" = /v1/embeddings ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer sk-test" ]
	[ "$(fake_field 1 body.model)" = text-embedding-3-small ]
	[ "$(python3 -c 'import json,sys; print(sorted(len(json.loads(l)["body"]["input"]) for l in open(sys.argv[1])))' "$FAKE_LOG")" = "[36, 64]" ]
	run aichat rag info --json default
	[ "$(json_get vectors <<<"$output")" = 100 ]
	[ "$(json_get dim <<<"$output")" = 8 ]
	# The query is embedded by the same model: one more request.
	run --separate-stderr aichat rag search --json word17
	[ "$(json_get 0.path <<<"$output")" = many/f17.md ]
	[ "$(json_get 0.retrieval <<<"$output")" = hybrid ]
	[ "$(fake_field 3 body.input.0)" = word17 ]
}

@test "another embedding model, or another dimension, is a clear error naming both" {
	index --embed-model mock:embed docs
	use_fake
	index --embed-model openai:text-embedding-3-small docs
	[ "$status" -eq 2 ]
	[[ $stderr == "aichat: rag: collection 'default' uses embedding model 'mock:embed', not 'openai:text-embedding-3-small'"* ]]
	[ "$(fake_count)" -eq 0 ]
	# The same model name, now answering with 3 dimensions instead of 8.
	index -c dims --embed-model openai:text-embedding-3-small docs
	[ "$status" -eq 0 ]
	fake_script '{"body":{"data":[{"index":0,"embedding":[0.1,0.2,0.3]}]}}'
	printf 'The wombat digs burrows.\n' >"$T/docs/animals.txt"
	index -c dims docs
	[ "$status" -eq 3 ]
	[[ $stderr == *"aichat: rag: embedding model 'openai:text-embedding-3-small' returned 3-dimension vectors but collection 'dims' holds 8-dimension vectors"* ]]
	[[ $stderr == *"1 updated"*"1 chunks without vectors, "* ]]
	# The text part is there all the same.
	run --separate-stderr aichat rag search -c dims wombat
	[[ ${lines[0]} == *docs/animals.txt* ]]
	[[ $stderr == *"searching with BM25 only: cannot embed the query: "*"3-dimension"* ]]
	ANTHROPIC_API_KEY=k run --separate-stderr aichat rag index -c other --embed-model anthropic:claude-x docs
	[ "$status" -eq 3 ]
	[[ $stderr == *"'anthropic:claude-x' has no embeddings API"* ]]
}

@test "provider down: BM25 kept and said, search falls back and says so, a rerun fills the vectors" {
	command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (tools/deps.sh installs it)" >&2; return 1; }
	use_fake '{"status":500}'
	index --embed-model openai:text-embedding-3-small docs
	[ "$status" -eq 4 ]
	[[ $stderr == *"aichat: rag: indexed without vectors: openai returned HTTP 500: fake error"* ]]
	[[ $stderr =~ 3\ files\ added,\ 0\ updated,\ 0\ unchanged,\ 1\ skipped,\ ([0-9]+)\ chunks,\ 0\ vectors,\ ([0-9]+)\ chunks\ without\ vectors ]]
	[ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
	# One batch, tried three times (two retries).
	[ "$(fake_count)" -eq 3 ]
	run --separate-stderr aichat rag search quokka
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *docs/animals.txt* ]]
	fake_script '{}'
	index docs
	[ "$status" -eq 0 ]
	[[ $stderr == *" 0 chunks, "*" vectors, "* && $stderr != *without* ]]
	local v
	v=$(vectors default 32)
	[ "${v%/*}" = "${v#*/}" ]
	[ "${v%/*}" -gt 0 ]
	# Connection refused, once the vectors are there.
	fake_stop
	run --separate-stderr aichat rag search --json quokka
	[ "$status" -eq 0 ]
	[[ $stderr == "aichat: rag: searching with BM25 only: cannot embed the query: openai: cannot connect: "* ]]
	[ "$(json_get 0.path <<<"$output")" = docs/animals.txt ]
	[ "$(json_get 0.retrieval <<<"$output")" = bm25 ]
	printf 'The wombat digs burrows.\n' >"$T/docs/wombat.txt"
	index docs
	[ "$status" -eq 4 ]
	[[ $stderr == *"indexed without vectors: openai: cannot connect: "* ]]
	[[ $stderr == *"1 files added"*", 0 vectors, 1 chunks without vectors (run the index again to add them), "* ]]
}
