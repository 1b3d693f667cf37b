#!/usr/bin/env bats
# The usage ledger and `aichat usage`: every logged exchange with its
# tokens and, when its model has a price, its cost; totals by day, model,
# provider or key.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	# $1 and $2 per million tokens: a token costs 1 or 2 micro-dollars.
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<'EOF'
{"prices": {"openai:gpt-4o-mini": {"input": 1, "output": 2, "cached_input": 0.5}}}
EOF
}

teardown() {
	fake_stop
}

# ask MODEL PROMPT: one logged exchange through the fake upstream.
ask() {
	aichat chat -m "$1" "$2" >/dev/null
}

# The ledger's database, for moving rows back in time.
db() {
	python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute(sys.argv[2])
c.commit()
' "$AICHAT_HOME/aichat.db" "$1"
}

@test "usage totals equal the sum of the logged exchanges, tokens and cost" {
	with_openai_fake \
		'{"usage":{"prompt_tokens":1000,"completion_tokens":100}}' \
		'{"usage":{"prompt_tokens":2500,"completion_tokens":40}}' \
		'{"usage":{"prompt_tokens":7,"completion_tokens":3}}'
	ask openai:gpt-4o-mini "one"
	ask openai:gpt-4o-mini "two"
	ask openai:gpt-4o-mini "three"
	[ "$(fake_count)" -eq 3 ]
	run --separate-stderr aichat usage --json
	[ "$status" -eq 0 ]
	echo "$output" >"$BATS_TEST_TMPDIR/usage.json"
	# The same sums, from the conversation log's own record of each answer.
	for id in $(aichat history list --json | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)))'); do
		aichat history show --json "$id"
	done >"$BATS_TEST_TMPDIR/shows"
	python3 - "$BATS_TEST_TMPDIR/usage.json" "$BATS_TEST_TMPDIR/shows" <<'EOF'
import json, sys
total = json.load(open(sys.argv[1]))["total"]
dec = json.JSONDecoder()
text, pos, answers = open(sys.argv[2]).read(), 0, []
while pos < len(text):
    if text[pos].isspace():
        pos += 1
        continue
    o, pos = dec.raw_decode(text, pos)
    answers += [m for m in o["transcript"] if m["role"] == "assistant"]
assert len(answers) == 3, answers
p = sum(m["prompt_tokens"] for m in answers)
c = sum(m["completion_tokens"] for m in answers)
assert total["exchanges"] == 3, total
assert total["prompt_tokens"] == p == 3507, (total, p)
assert total["completion_tokens"] == c == 143, (total, c)
# 1 micro-dollar a prompt token, 2 a completion token.
assert total["cost_micros"] == p + 2 * c, total
assert total["cost"] == "0.003793", total
assert total["unpriced"] == 0, total
EOF
}

@test "cached prompt tokens are priced as cached input" {
	with_openai_fake '{"usage":{"prompt_tokens":1000,"completion_tokens":10,"cached_tokens":400}}'
	ask openai:gpt-4o-mini "cached"
	run aichat usage --json
	[ "$(json_get total.cached_tokens <<<"$output")" = 400 ]
	# 600 at 1 + 400 at 0.5 + 10 at 2
	[ "$(json_get total.cost_micros <<<"$output")" = 820 ]
	[ "$(json_get total.cost <<<"$output")" = 0.000820 ]
}

@test "Anthropic's cache writes are priced as cache_write, its cache reads as cached input" {
	fake_start '{"usage":{"input_tokens":1000,"cache_creation_input_tokens":2000,"cache_read_input_tokens":4000,"output_tokens":100}}' \
		'{"usage":{"input_tokens":10,"cache_creation_input_tokens":20,"output_tokens":1}}'
	export ANTHROPIC_API_KEY=$KEY ANTHROPIC_BASE_URL="$FAKE_URL"
	# Built-in: $1 input, $0.10 cache read, $1.25 cache write, $5 output.
	ask anthropic:claude-haiku-4-5 "built-in price"
	run aichat usage --json
	[ "$(json_get total.prompt_tokens <<<"$output")" = 7000 ]
	[ "$(json_get total.cached_tokens <<<"$output")" = 4000 ]
	# 1000 at 1 + 4000 at 0.1 + 2000 at 1.25 + 100 at 5
	[ "$(json_get total.cost_micros <<<"$output")" = 4400 ]
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<'EOF'
{"prices": {"anthropic:claude-x": {"input": 1, "output": 2, "cache_write": 100}}}
EOF
	ask anthropic:claude-x "the config's cache_write"
	run aichat usage --by model --json
	[ "$(json_get rows.0.group <<<"$output")" = anthropic:claude-haiku-4-5 ]
	[ "$(json_get rows.1.group <<<"$output")" = anthropic:claude-x ]
	# 10 at 1 + 20 at 100 + 1 at 2
	[ "$(json_get rows.1.cost_micros <<<"$output")" = 2012 ]
}

@test "the config's price wins over the built-in table; a model without a price has no cost" {
	with_openai_fake '{"usage":{"prompt_tokens":1000000,"completion_tokens":0}}' \
		'{"usage":{"prompt_tokens":1000000,"completion_tokens":0}}'
	ask openai:gpt-4o "built-in"
	ask mock:echo "not priced at all"
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<'EOF'
{"prices": {"openai:gpt-4o": {"input": 7, "output": 9}}}
EOF
	ask openai:gpt-4o "from the config"
	run aichat usage --by model --json
	[ "$status" -eq 0 ]
	# Built-in: $2.50 per million input tokens; the config's: $7.
	[ "$(json_get rows.0.group <<<"$output")" = mock:echo ]
	[ "$(json_get rows.0.cost <<<"$output")" = null ]
	[ "$(json_get rows.0.unpriced <<<"$output")" = 1 ]
	[ "$(json_get rows.1.group <<<"$output")" = openai:gpt-4o ]
	[ "$(json_get rows.1.exchanges <<<"$output")" = 2 ]
	[ "$(json_get rows.1.cost <<<"$output")" = 9.500000 ]
	[ "$(json_get total.cost <<<"$output")" = 9.500000 ]
	[ "$(json_get total.unpriced <<<"$output")" = 1 ]
}

@test "--by day, model, provider and key group the same totals" {
	with_openai_fake '{"usage":{"prompt_tokens":10,"completion_tokens":1}}' \
		'{"usage":{"prompt_tokens":20,"completion_tokens":2}}'
	ask openai:gpt-4o-mini "a"
	ask openai:gpt-4o-mini "b"
	ask mock:echo "three words here"
	db "UPDATE usage SET day = '2026-01-05' WHERE model = 'mock:echo'"
	run aichat usage --by provider --json
	[ "$(json_get by <<<"$output")" = provider ]
	[ "$(json_get rows.0.group <<<"$output")" = mock ]
	[ "$(json_get rows.1.group <<<"$output")" = openai ]
	[ "$(json_get rows.1.prompt_tokens <<<"$output")" = 30 ]
	[ "$(json_get rows.1.cost_micros <<<"$output")" = 36 ]
	run aichat usage --by model --json
	[ "$(json_get rows.1.group <<<"$output")" = openai:gpt-4o-mini ]
	[ "$(json_get rows.1.exchanges <<<"$output")" = 2 ]
	run aichat usage --by day --json
	[ "$(json_get rows.0.group <<<"$output")" = 2026-01-05 ]
	[ "$(json_get rows.0.exchanges <<<"$output")" = 1 ]
	[ "$(json_get rows.1.group <<<"$output")" = "$(date -u +%F)" ]
	[ "$(json_get rows.1.exchanges <<<"$output")" = 2 ]
	# The CLI's exchanges have no API key: one row with a null group.
	run aichat usage --by key --json
	[ "$(json_get rows <<<"$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ]
	[ "$(json_get rows.0.group <<<"$output")" = null ]
	[ "$(json_get rows.0.exchanges <<<"$output")" = 3 ]
	[ "$(json_get total.exchanges <<<"$output")" = 3 ]
}

@test "--since takes a date or the last N days, today included" {
	with_openai_fake '{"usage":{"prompt_tokens":10,"completion_tokens":1}}' \
		'{"usage":{"prompt_tokens":20,"completion_tokens":2}}' \
		'{"usage":{"prompt_tokens":40,"completion_tokens":4}}'
	ask openai:gpt-4o-mini "today"
	ask openai:gpt-4o-mini "six days ago"
	ask openai:gpt-4o-mini "seven days ago"
	six=$(date -u -d '6 days ago' +%F)
	seven=$(date -u -d '7 days ago' +%F)
	db "UPDATE usage SET day = '$six' WHERE prompt_tokens = 20"
	db "UPDATE usage SET day = '$seven' WHERE prompt_tokens = 40"
	run aichat usage --since 7d --json
	[ "$status" -eq 0 ]
	[ "$(json_get since <<<"$output")" = "$six" ]
	[ "$(json_get total.prompt_tokens <<<"$output")" = 30 ]
	run aichat usage --since 1d --json
	[ "$(json_get total.prompt_tokens <<<"$output")" = 10 ]
	run aichat usage --since 8d --json
	[ "$(json_get total.prompt_tokens <<<"$output")" = 70 ]
	run aichat usage --since "$seven" --json
	[ "$(json_get total.prompt_tokens <<<"$output")" = 70 ]
	run aichat usage --since "$six" --json
	[ "$(json_get total.prompt_tokens <<<"$output")" = 30 ]
	# Nothing in range: zeros, and no cost rather than a cost of 0.
	run aichat usage --since 2999-01-01 --json
	[ "$(json_get total.exchanges <<<"$output")" = 0 ]
	[ "$(json_get total.cost <<<"$output")" = null ]
}

@test "the --json shape: since, by, rows and total with every field" {
	with_openai_fake '{"usage":{"prompt_tokens":10,"completion_tokens":1}}'
	ask openai:gpt-4o-mini "shape"
	run --separate-stderr aichat usage --by model --since 2000-01-01 --json
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert sorted(o) == ["by", "rows", "since", "total"], o
assert o["since"] == "2000-01-01" and o["by"] == "model", o
fields = ["cached_tokens", "completion_tokens", "cost", "cost_micros",
          "exchanges", "prompt_tokens", "unpriced"]
assert sorted(o["total"]) == fields, o["total"]
assert [sorted(r) for r in o["rows"]] == [sorted(fields + ["group"])], o["rows"]
assert o["rows"][0] == dict(o["total"], group="openai:gpt-4o-mini"), o
' "$output"
	run aichat usage --json
	[ "$(json_get since <<<"$output")" = null ]
	[ "$(json_get by <<<"$output")" = null ]
	[ "$(json_get rows <<<"$output")" = "[]" ]
}

@test "piped, the table is tab-separated with a header and a total line; on a terminal it is aligned" {
	with_openai_fake '{"usage":{"prompt_tokens":1000,"completion_tokens":100}}'
	ask openai:gpt-4o-mini "table"
	ask mock:echo "unpriced one"
	run --separate-stderr aichat usage --by model
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$(printf 'MODEL\tEXCHANGES\tPROMPT\tCACHED\tCOMPLETION\tCOST_USD\tUNPRICED')" ]
	[ "${lines[1]}" = "$(printf 'mock:echo\t1\t2\t0\t2\t-\t1')" ]
	[ "${lines[2]}" = "$(printf 'openai:gpt-4o-mini\t1\t1000\t0\t100\t0.001200\t0')" ]
	[ "${lines[3]}" = "$(printf 'total\t2\t1002\t0\t102\t0.001200\t1')" ]
	[ "${#lines[@]}" -eq 4 ]
	script -qec "$AICHAT_BIN usage --by model" /dev/null | tr -d '\r' >"$BATS_TEST_TMPDIR/tty"
	[ "$(sed -n 1p "$BATS_TEST_TMPDIR/tty")" = "MODEL               EXCHANGES  PROMPT  CACHED  COMPLETION  COST_USD  UNPRICED" ]
	[ "$(sed -n 3p "$BATS_TEST_TMPDIR/tty")" = "openai:gpt-4o-mini          1    1000       0         100  0.001200         0" ]
	[ "$(sed -n 4p "$BATS_TEST_TMPDIR/tty")" = "total                       2    1002       0         102  0.001200         1" ]
}

@test "an exchange that is not logged (--no-log) is not in the ledger either" {
	with_openai_fake '{"usage":{"prompt_tokens":10,"completion_tokens":1}}' \
		'{"usage":{"prompt_tokens":20,"completion_tokens":2}}'
	ask openai:gpt-4o-mini "logged"
	aichat chat --no-log -m openai:gpt-4o-mini "not logged" >/dev/null
	[ "$(fake_count)" -eq 2 ]
	run aichat usage --json
	[ "$(json_get total.exchanges <<<"$output")" = 1 ]
	[ "$(json_get total.prompt_tokens <<<"$output")" = 10 ]
}

@test "rag query's answer is in the ledger too; with log false in the config it is not" {
	with_openai_fake '{"usage":{"prompt_tokens":300,"completion_tokens":20}}'
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf 'The quokka lives on Rottnest Island.\n' >"$BATS_TEST_TMPDIR/docs/q.txt"
	aichat rag index "$BATS_TEST_TMPDIR/docs" 2>/dev/null
	run --separate-stderr aichat rag query -m openai:gpt-4o-mini "where does the quokka live"
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 1 ]
	run --separate-stderr aichat usage --by model --json
	[ "$(json_get rows.0.group <<<"$output")" = openai:gpt-4o-mini ]
	[ "$(json_get total.exchanges <<<"$output")" = 1 ]
	[ "$(json_get total.prompt_tokens <<<"$output")" = 300 ]
	# 300 x $1 + 20 x $2 per million
	[ "$(json_get total.cost_micros <<<"$output")" = 340 ]
	printf '{"log": false, "prices": {"openai:gpt-4o-mini": {"input": 1, "output": 2}}}\n' \
		>"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat rag query -m openai:gpt-4o-mini "where does the quokka live"
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 2 ]
	[ "$(aichat usage --json | json_get total.exchanges)" = 1 ]
}

@test "aichat batch: each item's exchange is in the ledger; with log false in the config none is" {
	with_openai_fake '{"usage":{"prompt_tokens":100,"completion_tokens":10}}'
	printf '{"id":"a","prompt":"x"}\n{"id":"b","prompt":"y"}\n{"id":"c","prompt":"z"}\n' >"$BATS_TEST_TMPDIR/in.jsonl"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini "$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 3 ]
	run --separate-stderr aichat usage --by model --json
	[ "$(json_get total.exchanges <<<"$output")" = 3 ]
	[ "$(json_get total.prompt_tokens <<<"$output")" = 300 ]
	# 3 x (100 x $1 + 10 x $2) per million
	[ "$(json_get total.cost_micros <<<"$output")" = 360 ]
	printf '{"log": false}\n' >"$XDG_CONFIG_HOME/aichat/config.json"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini "$BATS_TEST_TMPDIR/in.jsonl"
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 6 ]
	[ "$(aichat usage --json | json_get total.exchanges)" = 3 ]
}

@test "aichat batch: a database locked by another process holds no item back, and no exchange is lost" {
	python3 -c 'import json
for i in range(700):
    print(json.dumps({"id": i, "prompt": "p%d" % i}))' >"$BATS_TEST_TMPDIR/in.jsonl"
	aichat chat -m mock:echo "create the store" >/dev/null
	rm -f "$BATS_TEST_TMPDIR/locked"
	python3 -c 'import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(4)
c.execute("COMMIT")' "$AICHAT_HOME/aichat.db" "$BATS_TEST_TMPDIR/locked" &
	lock=$!
	for ((i = 0; i < 100; i++)); do
		[ -e "$BATS_TEST_TMPDIR/locked" ] && break
		sleep 0.05
	done
	# 700 items: the ledger is tried after 256 and 512 of them, while the
	# lock holds; the items go on, and the end waits for the lock.
	aichat batch -m mock:echo -o "$BATS_TEST_TMPDIR/out.jsonl" "$BATS_TEST_TMPDIR/in.jsonl" \
		2>"$BATS_TEST_TMPDIR/err" &
	batch=$!
	sleep 2.5
	# Every item is answered and written while the lock still holds.
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out.jsonl")" -eq 700 ]
	kill -0 "$lock"
	wait "$batch"
	wait "$lock"
	[[ "$(cat "$BATS_TEST_TMPDIR/err")" != *"not in the usage ledger"* ]]
	# 700 items and the one chat exchange.
	[ "$(aichat usage --json | json_get total.exchanges)" = 701 ]
}

@test "a model name with escapes or a tab from the ledger is printed as one clean cell" {
	aichat chat -m mock:echo "create the store" >/dev/null
	db "INSERT INTO usage (created_at, day, source, provider, model, prompt_tokens, completion_tokens, cached_tokens) VALUES ('2026-01-01T00:00:00.000Z', '2026-01-01', 'serve', 'openai', 'openai:x'||char(27)||']0;pwn'||char(7)||char(9)||'y', 1, 1, 0)"
	run --separate-stderr aichat usage --by model
	[ "$status" -eq 0 ]
	[[ "$output" != *$'\e'* && "$output" != *$'\a'* ]]
	# header, two models, total: four rows of seven tab-separated cells
	[ "${#lines[@]}" -eq 4 ]
	for l in "${lines[@]}"; do
		[ "$(awk -F'\t' '{ print NF }' <<<"$l")" -eq 7 ]
	done
	[[ "$output" == *"openai:x y"* ]]
}

@test "bad flags: exit 2 naming the flag, and the ledger is left as it was" {
	with_openai_fake '{"usage":{"prompt_tokens":10,"completion_tokens":1}}'
	ask openai:gpt-4o-mini "keep me"
	before=$(aichat usage --json)
	local since_msg="must be a date YYYY-MM-DD or a number of days such as 7d"
	for bad in 2026-02-30 2026-13-01 2026-1-01 0d -1d 36501d yesterday 7 7days ""; do
		run --separate-stderr aichat usage --since "$bad"
		[ "$status" -eq 2 ]
		[ "$stderr" = "aichat: usage: invalid value '$bad' for '--since': $since_msg" ]
		[ -z "$output" ]
	done
	run --separate-stderr aichat usage --since 36500d
	[ "$status" -eq 0 ]
	run --separate-stderr aichat usage --since 2024-02-29
	[ "$status" -eq 0 ]
	run --separate-stderr aichat usage --by week
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: usage: invalid value 'week' for '--by': must be one of day, model, provider, key" ]
	run --separate-stderr aichat usage --since
	[ "$status" -eq 2 ]
	[[ "$stderr" == "aichat: usage: "*"--since"* ]]
	run --separate-stderr aichat usage extra
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: usage: unexpected argument 'extra' (see 'aichat usage --help')" ]
	[ "$(aichat usage --json)" = "$before" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "a bad price in the config: exit 3 naming the key, nothing sent" {
	with_openai_fake
	local f="$XDG_CONFIG_HOME/aichat/config.json"
	echo '{"prices": {"openai:gpt-4o": {"input": -1, "output": 2}}}' >"$f"
	run --separate-stderr aichat chat -m openai:gpt-4o "hi"
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: config file '$f': 'prices.openai:gpt-4o.input' must be a number of dollars per million tokens, 0 to 100000" ]
	echo '{"prices": {"openai:gpt-4o": {"input": 1}}}' >"$f"
	run --separate-stderr aichat chat -m openai:gpt-4o "hi"
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: config file '$f': 'prices.openai:gpt-4o' needs 'output' (dollars per million tokens)" ]
	echo '{"prices": {"openai:gpt-4o": {"input": 1, "output": 1, "cache": 1}}}' >"$f"
	run --separate-stderr aichat chat -m openai:gpt-4o "hi"
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: chat: config file '$f': 'prices.openai:gpt-4o': unknown key 'cache' (expected input, output, cached_input, cache_write)" ]
	echo '{"prices": {"gpt-4o": {"input": 1, "output": 1}}}' >"$f"
	run --separate-stderr aichat chat -m openai:gpt-4o "hi"
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"'prices.gpt-4o' must be an object {\"input\": N, \"output\": N} for a model named provider:model" ]]
	[ "$(fake_count)" -eq 0 ]
}

@test "exchanges logged before the ledger existed are counted, without a cost" {
	aichat chat -m mock:echo "one two three" >/dev/null
	aichat chat -m mock:echo "four five" >/dev/null
	# Back to the schema before the ledger (version 7): the next open
	# migrates, copying the logged answers in.
	schema_back_to_7 "$AICHAT_HOME/aichat.db"
	run --separate-stderr aichat usage --by model --json
	[ "$status" -eq 0 ]
	[ "$(json_get rows.0.group <<<"$output")" = mock:echo ]
	[ "$(json_get total.exchanges <<<"$output")" = 2 ]
	[ "$(json_get total.completion_tokens <<<"$output")" = 5 ]
	[ "$(json_get total.cost <<<"$output")" = null ]
	[ "$(json_get total.unpriced <<<"$output")" = 2 ]
	# Migrated once: another run counts the same.
	[ "$(aichat usage --json | json_get total.exchanges)" = 2 ]
}
