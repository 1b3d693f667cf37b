#!/usr/bin/env bash
# tests/run.sh - runs every unit test binary and every bats file.  Called by
# `make check` / `make asan`, which set AICHAT_BIN, FAKE_UPSTREAM and
# UNIT_DIR.  The last lines are
#
#     skipped: FILE: TEST (REASON)     one per skipped test
#     N skipped
#     failed: WHAT                     one per failure, named
#     N passed, N failed
#
# and the very last one is always "N passed, N failed" (CI reads it).
#
# What counts as failed, besides a "not ok":
# - a tool the suite runs that is missing (bats, tmux, node, ...):
#   tools/deps.sh installs them all, so a missing one is a broken machine,
#   never a reason to run less;
# - a file whose executed tests differ from its plan (bats --count, or the
#   unit test's own "1..N"), e.g. a setup_file that failed or a crash;
# - a skip, unless its reason starts with "platform:" (a limit of the
#   machine that no package fixes, see README); with CI=true, every skip.
# A skip is never counted as passed.
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0 skipped=0
skips=() failures=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() { # fail WHAT: one failure that is not a "not ok" line
	failures+=("$1")
	failed=$((failed + 1))
	echo "    FAILED: $1"
}

# count NAME PLANNED: counts the TAP lines of $out into the totals; PLANNED
# is the number of tests the file should have run (empty: take the TAP
# plan line).
count() {
	local name=$1 planned=$2 p f s ran line reason
	p=$(grep -cE '^ok ' "$out")
	f=$(grep -cE '^not ok ' "$out")
	s=$(grep -ciE '^ok [0-9]+ .*# skip' "$out")
	passed=$((passed + p - s))
	failed=$((failed + f))
	grep -E '^not ok |^#' "$out" | sed 's/^/    /' | head -40
	[ "$f" -eq 0 ] || failures+=("$name: $f not ok")
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		reason=$(printf '%s' "$line" | sed -E 's/.*# [sS][kK][iI][pP] ?//; s/^\((.*)\)$/\1/')
		line=$(printf '%s' "$line" | sed -E 's/^ok [0-9]+ (- )?//; s/ *# [sS][kK][iI][pP].*//')
		skipped=$((skipped + 1))
		skips+=("$name: $line (${reason:-no reason given})")
		if [ "${CI:-}" = true ]; then
			fail "$name: '$line' skipped (CI=true: every skip fails)"
		elif [[ $reason != platform:* ]]; then
			fail "$name: '$line' skipped without a platform reason: ${reason:-none}"
		fi
	done < <(grep -iE '^ok [0-9]+ .*# skip' "$out")
	ran=$((p + f))
	if [ -z "$planned" ]; then
		planned=$(sed -nE 's/^1\.\.([0-9]+)$/\1/p' "$out" | head -1)
		if [ -z "$planned" ]; then
			# A unit test prints its plan last: none means it died.
			fail "$name: no TAP plan: it stopped after $ran tests"
			return
		fi
	fi
	[ "$ran" -eq "$planned" ] || fail "$name: executed $ran of $planned planned tests"
}

# The tools the tests run.  tools/deps.sh installs every one of them.
for tool in bats tmux node npm python3 curl ss sqlite3 zsh fish chromium redis-server redis-cli \
	systemd-analyze; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "missing: $tool, which the tests need (tools/deps.sh installs it)"
done
# (nginx is in /usr/sbin, off the PATH of a user who is not root.)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ||
	fail "missing: nginx, which the tests need (tools/deps.sh installs it)"

units=0
for t in "$UNIT_DIR"/test_*; do
	[ -x "$t" ] || continue
	case $t in *.d | *.o) continue ;; esac
	units=$((units + 1))
	echo "unit: ${t##*/}"
	"$t" >"$out" 2>&1
	rc=$?
	count "${t##*/}" ""
	if [ $rc -ne 0 ] && ! grep -qE '^not ok ' "$out"; then
		tail -5 "$out" | sed 's/^/    /'
		fail "${t##*/}: exited with status $rc"
	fi
done
[ $units -gt 0 ] || fail "no unit test binaries in ${UNIT_DIR:-UNIT_DIR (unset)}"

export AICHAT_BIN FAKE_UPSTREAM
for f in tests/*.bats; do
	[ -f "$f" ] || continue
	echo "bats: ${f##*/}"
	if ! command -v bats >/dev/null 2>&1; then
		fail "${f##*/}: not run: bats is missing"
		continue
	fi
	planned=$(bats --count "$f" 2>/dev/null) || planned=
	if [ -z "$planned" ]; then
		fail "${f##*/}: bats --count failed"
		continue
	fi
	bats --tap "$f" >"$out" 2>&1
	count "${f##*/}" "$planned"
done

for s in "${skips[@]}"; do
	echo "skipped: $s"
done
echo "$skipped skipped"
for s in "${failures[@]}"; do
	echo "failed: $s"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
