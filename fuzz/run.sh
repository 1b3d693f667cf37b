#!/usr/bin/env bash
# fuzz/run.sh BUILD NAME... - what `make fuzz` runs once the targets are
# built: for each target, replays fuzz/regress/NAME and fuzz/corpus/NAME
# (no fuzzing), then fuzzes for FUZZ_SECONDS (default 60) in one process,
# starting from the seeds and from what earlier runs kept in
# BUILD/corpus/NAME.  A crash, a leak or a broken property leaves its
# input in BUILD/crashes/NAME/ (add it to fuzz/regress/NAME once fixed).
# FUZZ_SEED=N makes a run repeatable (libFuzzer's -seed).
# One line per target, then "fuzz: N passed, N failed".
set -u
cd "$(dirname "$0")/.." || exit 1
build=$1
shift
secs=${FUZZ_SECONDS:-60}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for name in "$@"; do
	bin=$build/fuzz/fuzz_$name
	work=$build/corpus/$name crashes=$build/crashes/$name
	mkdir -p "$work" "$crashes" "fuzz/corpus/$name"
	dirs=("fuzz/corpus/$name")
	[ -d "fuzz/regress/$name" ] && dirs+=("fuzz/regress/$name")
	if ! "$bin" -runs=0 -artifact_prefix="$crashes/" "${dirs[@]}" >"$log" 2>&1; then
		echo "not ok - fuzz $name: a seed or regression input fails"
		grep -aE 'ERROR|property broken|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /' | cat -v
		failed=$((failed + 1))
		continue
	fi
	if "$bin" -max_total_time="$secs" -print_final_stats=1 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
		-artifact_prefix="$crashes/" "$work" "${dirs[@]}" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
		speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
		cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
		echo "ok - fuzz $name: ${runs:-?} runs in ${secs} s, ${speed:-?} exec/s, ${cov:-cov: ?}"
		passed=$((passed + 1))
	else
		echo "not ok - fuzz $name: crashed; input in $crashes/"
		grep -aE 'ERROR|property broken|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /' | cat -v
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
