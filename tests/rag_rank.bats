#!/usr/bin/env bats
# How aichat rag search ranks, as a user notices it: English words by
# their stem, stop words not ranked (but never leaving a query empty),
# "phrases" and prefix* kept, the manual page over the changelog,
# identical documents once, and --language per collection.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/aichat-home"
	T="$BATS_TEST_TMPDIR/tree"
	mkdir -p "$T/docs"
	cd "$T" || return 1
	cat >"$T/docs/journal.md" <<'EOF'
# Journal

To extract the log of one service, name its unit. The journal keeps
every message the system wrote since boot.
EOF
	cat >"$T/docs/network.md" <<'EOF'
# Network

Services that listen on a port are listed with their process. A
service may log through the network too, and extraction of packets
is a matter for a capture tool.
EOF
	cat >"$T/docs/recipes.md" <<'EOF'
# Recipes

How to bake bread: flour, water, salt. Do it in the morning.
EOF
}

index() {
	run --separate-stderr aichat rag index "$@"
}

# The paths of the hits of a search, one per line, relative to $T.
paths() {
	run --separate-stderr aichat rag search --json "$@"
	[ "$status" -eq 0 ]
	python3 -c 'import json,sys,os
for h in json.load(sys.stdin): print(os.path.relpath(h["path"], sys.argv[1]))' "$T" <<<"$output"
}

@test "a word finds its other forms: 'extracting logs' finds 'extract the log'" {
	index -c en docs
	[ "$status" -eq 0 ]
	run paths -c en extracting logs
	[ "${lines[0]}" = docs/journal.md ]
	# Words as written (--language none): no chunk says "extracting" or
	# "logs", so nothing is found.
	index -c raw --language none docs
	[ "$status" -eq 0 ]
	run --separate-stderr aichat rag search -c raw extracting logs
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
}

@test "stop words are not ranked, and a query of stop words only still finds" {
	index docs
	# "how", "do", "to" and "it" would favour the recipe; "extract" is
	# what the question is about.
	run paths how do I extract it
	[ "${lines[0]}" = docs/journal.md ]
	run paths how do
	[ "${lines[*]}" = docs/recipes.md ]
}

@test "a quoted phrase matches its words in order, a prefix* the words it starts" {
	index docs
	run paths '"extract the log"'
	[ "${lines[*]}" = docs/journal.md ]
	# The same words, not as a phrase, are in network.md too.
	run paths extract the log
	[ "${#lines[@]}" -eq 2 ]
	run paths '"the log extract"'
	[ "$output" = "" ]
	# A prefix is matched against stems: "extrac" starts "extract" and
	# "extraction" (stem "extract") alike.
	run paths 'extrac*'
	[ "${#lines[@]}" -eq 2 ]
	run paths 'captu*'
	[ "${lines[*]}" = docs/network.md ]
	run paths captu
	[ "$output" = "" ]
}

@test "the manual page beats the changelog for a natural question" {
	mkdir -p man doc/frob
	cat >man/frob.1 <<'EOF'
.TH FROB 1
.SH NAME
frob \- compress and archive files
.SH SYNOPSIS
.B frob
[options] FILE...
.SH DESCRIPTION
.B frob
packs files into one archive and compresses it.
Use it to make a backup of a directory before an upgrade.
.SH OPTIONS
.TP
.B \-x
Extract the files of an archive into the current directory.
.TP
.B \-9
Compress the archive as small as it can, slowly.
.TP
.B \-l
List the files an archive holds.
.SH EXAMPLES
To extract an archive: frob \-x backup.frob
EOF
	cat >doc/frob/changelog <<'EOF'
frob (2.1) unstable; urgency=medium
  * Extract files of an archive faster.
  * Fix how an archive is extracted when files are large.
 -- Maintainer <m@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
EOF
	for i in 1 2 3 4 5 6; do
		printf 'Unrelated notes number %d about weather and rain.\n' "$i" >"docs/n$i.md"
	done
	index man doc docs
	[ "$status" -eq 0 ]
	run paths -k 3 how do I extract files from an archive
	[ "${lines[0]}" = man/frob.1 ]
	[ "${lines[1]}" = doc/frob/changelog ]
}

@test "identical documents appear once" {
	mkdir -p a b
	cp docs/journal.md a/copy.md
	cp docs/journal.md b/copy.md
	index docs a b
	[ "$status" -eq 0 ]
	[[ $stderr == *"5 files added"* ]]
	run paths -k 10 extract log journal
	[ "$(grep -c 'journal.md\|copy.md' <<<"$output")" -eq 1 ]
	[ "${lines[0]}" = docs/journal.md ]
	# Not lost: each copy is still in the store, and found alone.
	rm docs/journal.md a/copy.md
	index --prune docs a b
	[ "$status" -eq 0 ]
	run paths extract log journal
	[ "${lines[0]}" = b/copy.md ]
}

@test "--language: unknown values exit 2 naming it, and nothing is indexed" {
	index -c x --language klingon docs
	[ "$status" -eq 2 ]
	[[ $stderr == *"--language"* ]]
	[[ $stderr == *"klingon"* ]]
	[[ $stderr == *"en"*"none"* ]]
	run --separate-stderr aichat rag list --json
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
}

@test "--language changes an existing collection: its chunks move, search follows" {
	index -c c --language none docs
	[ "$status" -eq 0 ]
	run aichat rag info --json c
	[ "$(json_get language <<<"$output")" = none ]
	run paths -c c extracting logs
	[ "$output" = "" ]
	index -c c --language en docs/recipes.md
	[ "$status" -eq 0 ]
	run aichat rag info --json c
	[ "$(json_get language <<<"$output")" = en ]
	# journal.md was not named this time: its chunks moved all the same.
	run paths -c c extracting logs
	[ "${lines[0]}" = docs/journal.md ]
	# A later run without --language keeps the collection's.
	index -c c docs
	[ "$status" -eq 0 ]
	run aichat rag info --json c
	[ "$(json_get language <<<"$output")" = en ]
}

@test "a collection indexed before languages keeps working, and --language en upgrades it" {
	command -v sqlite3 >/dev/null || { echo "sqlite3 is missing (tools/deps.sh installs it)" >&2; return 1; }
	index -c old docs
	[ "$status" -eq 0 ]
	# What migration 8 leaves of a collection made before it: no
	# language, its chunks in chunks_fts, no heads.
	sqlite3 "$AICHAT_HOME/aichat.db" "UPDATE chunks SET fts = NULL; UPDATE collections SET language = NULL;"
	run --separate-stderr aichat rag search -c old extract log
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *docs/journal.md* ]]
	run --separate-stderr aichat rag search -c old extracting logs
	[ "$output" = "" ]
	run aichat rag info --json old
	[ "$(json_get language <<<"$output")" = null ]
	index -c old --language en docs
	[ "$status" -eq 0 ]
	run paths -c old extracting logs
	[ "${lines[0]}" = docs/journal.md ]
	# The old index holds nothing of it any more.
	[ "$(sqlite3 "$AICHAT_HOME/aichat.db" "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'journal'")" = 0 ]
}
