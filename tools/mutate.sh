#!/usr/bin/env bash
# tools/mutate.sh - a small mutation run: breaks the code on purpose, one
# change at a time, and checks that the tests named for that change fail.
#
#     tools/mutate.sh [--check] [ID...]      (make mutate runs it with no ID)
#
# The changes are rows of tests/mutants.tsv (tab-separated):
#
#     ID  FILE  FROM  TO  TESTS
#
# FROM is a fixed string that must occur exactly once in FILE; it becomes
# TO (a tab, a newline and a backslash are written \t, \n and \\).  TESTS are
# space-separated: test_NAME (a unit test binary), NAME.bats (a whole bats
# file) or NAME.bats:REGEX (only the tests whose name matches REGEX, spaces
# in it written as '.').  Lines starting with '#' and empty lines are
# ignored.
#
# Nothing is changed in this tree: the tree (with build/, so that only the
# mutated file is compiled again) is copied to a temporary directory, each
# mutant is applied there, built, its tests run until one fails, and the
# file restored.  A mutant is killed when a test fails, survives when all
# pass; one that does not apply or does not build is an error.  Logs go to
# build/mutate/ID.log.  The last line is "mutate: N killed, N survived"
# (", N errors" when there are some); the exit status is 1 unless every
# mutant was killed.  --check only verifies that every FROM applies.
#
# MUTATE_JOBS (default 1) is make's -j; MUTANTS names another table.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
table=${MUTANTS:-$root/tests/mutants.tsv}
jobs=${MUTATE_JOBS:-1}
check_only=0
if [ "${1:-}" = --check ]; then
	check_only=1
	shift
fi

# apply FILE FROM TO: replaces the one occurrence of FROM; exit 3 when FROM
# occurs zero or several times.
apply() {
	python3 - "$@" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
import re
unesc = lambda s: re.sub(r"\\([\\tn])",
                         lambda m: {"t": "\t", "n": "\n", "\\": "\\"}[m.group(1)], s)
old, new = unesc(old), unesc(new)
with open(path, encoding="utf-8") as f:
    text = f.read()
n = text.count(old)
if n != 1:
    sys.stderr.write("'%s' occurs %d times in %s\n" % (old, n, path))
    sys.exit(3)
if len(sys.argv) > 4:
    sys.exit(0)            # check only
with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(old, new, 1))
EOF
}

rows=()
while IFS= read -r line; do
	case $line in '' | '#'*) continue ;; esac
	IFS=$'\t' read -r id file from to tests <<<"$line"
	if [ -z "${tests:-}" ]; then
		echo "mutate: $table: malformed row: $line" >&2
		exit 2
	fi
	if [ $# -gt 0 ]; then
		want=0
		for a in "$@"; do [ "$a" = "$id" ] && want=1; done
		[ $want -eq 1 ] || continue
	fi
	rows+=("$line")
done <"$table"
[ ${#rows[@]} -gt 0 ] || { echo "mutate: no mutant selected" >&2; exit 2; }

if [ $check_only -eq 1 ]; then
	bad=0
	for line in "${rows[@]}"; do
		IFS=$'\t' read -r id file from to tests <<<"$line"
		apply "$root/$file" "$from" "$to" check || { echo "error    $id"; bad=$((bad + 1)); }
	done
	echo "mutate: ${#rows[@]} mutants, $bad that do not apply"
	[ $bad -eq 0 ]
	exit
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aichat-mutate.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
logs=$root/build/mutate
mkdir -p "$logs"
tree=$tmp/tree
mkdir -p "$tree"
(cd "$root" && tar --exclude=./.git --exclude=./build-asan --exclude=./build/sdk \
	--exclude=./build/mutate --exclude=./build/demo-home -cf - .) | tar -C "$tree" -xf - || exit 1
# The SDK tests install their package once; share it rather than copy it.
[ -d "$root/build/sdk" ] && ln -s "$root/build/sdk" "$tree/build/sdk"

units() { # the unit test binaries TESTS names, as make targets
	local t
	for t in $1; do
		case $t in test_*) printf ' build/tests/%s' "$t" ;; esac
	done
}

build() { # build LOG TESTS
	make -C "$tree" -j"$jobs" all build/tests/fake_upstream $(units "$2") >>"$1" 2>&1
}

# run_tests LOG TESTS: 0 when all pass; prints the first failing spec.
run_tests() {
	local log=$1 t f re rc
	for t in $2; do
		echo "== $t" >>"$log"
		case $t in
		test_*)
			timeout 300 "$tree/build/tests/$t" >>"$log" 2>&1 || { echo "$t"; return 1; } ;;
		*.bats*)
			f=${t%%:*} re=
			[ "$f" = "$t" ] || re=${t#*:}
			(cd "$tree" && AICHAT_BIN="$tree/aichat" FAKE_UPSTREAM="$tree/build/tests/fake_upstream" \
				timeout 900 bats --tap ${re:+-f "${re//./ }"} "tests/$f") >"$tmp/out" 2>&1
			rc=$?
			cat "$tmp/out" >>"$log"
			# A filter that matches nothing would let every mutant live.
			if grep -q '^1\.\.0$' "$tmp/out"; then
				echo "$t matches no test" >>"$log"; echo "$t?"; return 1
			fi
			[ $rc -eq 0 ] || { echo "$t"; return 1; } ;;
		*)
			echo "unknown test spec '$t'" >>"$log"; echo "$t?"; return 1 ;;
		esac
	done
	return 0
}

# The tree as it is must build before any mutant.
echo "mutate: building the copy in $tree" >&2
all_tests=$(for line in "${rows[@]}"; do IFS=$'\t' read -r _ _ _ _ t <<<"$line"; echo "$t"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
if ! build "$logs/baseline.log" "$all_tests"; then
	echo "mutate: the unmutated tree does not build (see $logs/baseline.log)" >&2
	exit 2
fi

killed=0 survived=0 errors=0
for line in "${rows[@]}"; do
	IFS=$'\t' read -r id file from to tests <<<"$line"
	log=$logs/$id.log
	printf '%s: %s\n-%s\n+%s\n' "$id" "$file" "$from" "$to" >"$log"
	cp -p "$tree/$file" "$tmp/orig"
	if ! apply "$tree/$file" "$from" "$to" 2>>"$log"; then
		echo "error    $id: does not apply ($(tail -1 "$log"))"
		errors=$((errors + 1))
		continue
	fi
	if ! build "$log" "$tests"; then
		echo "error    $id: does not build (see $log)"
		errors=$((errors + 1))
	elif by=$(run_tests "$log" "$tests"); then
		echo "SURVIVED $id: $file: '$from' -> '$to' (tests: $tests)"
		survived=$((survived + 1))
	elif [ "${by%\?}" != "$by" ]; then
		echo "error    $id: test spec '${by%\?}' runs nothing (see $log)"
		errors=$((errors + 1))
	else
		echo "killed   $id by $by"
		killed=$((killed + 1))
	fi
	# Back to the original text; its new mtime makes the next build
	# compile it again, so no mutated object survives the mutant.
	cat "$tmp/orig" >"$tree/$file"
done
build "$logs/baseline.log" "" || echo "mutate: the restored tree does not build" >&2

if [ $errors -gt 0 ]; then
	echo "mutate: $killed killed, $survived survived, $errors errors"
else
	echo "mutate: $killed killed, $survived survived"
fi
[ $survived -eq 0 ] && [ $errors -eq 0 ]
