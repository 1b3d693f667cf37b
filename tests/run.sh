#!/usr/bin/env bash
# tests/run.sh - runs every unit test binary and every bats file, then prints
# one line "N passed, N failed".  Called by `make check` / `make asan`, which
# set AICHAT_BIN, FAKE_UPSTREAM and UNIT_DIR.
set -u
cd "$(dirname "$0")/.." || exit 1
passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

count() { # count TAP lines of $out into the totals
	local p f
	p=$(grep -cE '^ok ' "$out")
	f=$(grep -cE '^not ok ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	grep -E '^not ok |^#' "$out" | sed 's/^/    /' | head -40
}

for t in "$UNIT_DIR"/test_*; do
	[ -x "$t" ] || continue
	echo "unit: ${t##*/}"
	"$t" >"$out" 2>&1
	rc=$?
	count
	if [ $rc -ne 0 ] && ! grep -qE '^not ok ' "$out"; then
		echo "    ${t##*/} exited $rc"; tail -5 "$out" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done

export AICHAT_BIN FAKE_UPSTREAM
for f in tests/*.bats; do
	[ -f "$f" ] || continue
	echo "bats: ${f##*/}"
	bats --tap "$f" >"$out" 2>&1
	count
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
