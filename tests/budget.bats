#!/usr/bin/env bats
# serve --budget: each API key's daily spending cap, counted from the
# fake upstream's usage figures at the config's prices; the usage ledger
# and /metrics of serve.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	# $1 per million tokens both ways: a token costs one micro-dollar, so
	# each answer below (1000 + 1000 tokens) costs $0.002000.
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<'EOF'
{"prices": {"openai:gpt-4o-mini": {"input": 1, "output": 1}}}
EOF
	ANSWER='{"usage":{"prompt_tokens":1000,"completion_tokens":1000}}'
}

teardown() {
	serve_stop
	fake_stop
}

# chat KEY: one /chat call with the API key KEY; headers in $BATS_TEST_TMPDIR/h.
chat() {
	curl -sS -D "$BATS_TEST_TMPDIR/h" -H "Authorization: Bearer $1" \
		"$SERVE_URL/chat" -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}'
}

# Seconds to the next midnight UTC.
to_midnight() {
	echo $((86400 - $(date -u +%s) % 86400))
}

@test "a key spends its budget: the request that crosses it is answered, the next is 429 until midnight UTC" {
	with_openai_fake "$ANSWER"
	serve_start --api-key k-one --api-key k-two --budget key:1=0.005/day
	run chat k-one
	[ "$(status_line)" = 200 ]
	[ "$(hdr X-Budget-Limit)" = 0.005000 ]
	[ "$(hdr X-Budget-Remaining)" = 0.003000 ]
	run chat k-one
	[ "$(status_line)" = 200 ]
	[ "$(hdr X-Budget-Remaining)" = 0.001000 ]
	# $0.004 spent, under $0.005: this one may run, and crosses it.
	run chat k-one
	[ "$(status_line)" = 200 ]
	[ "$(json_get content <<<"$output")" = hi ]
	[ "$(hdr X-Budget-Remaining)" = 0.000000 ]
	[ "$(fake_count)" -eq 3 ]
	want=$(to_midnight)
	run chat k-one
	[ "$(status_line)" = 429 ]
	[ "$(json_get error.code <<<"$output")" = rate_limited ]
	[[ "$(json_get error.message <<<"$output")" == "the daily budget of API key key:1 is spent (\$0.006000 of \$0.005000 a day); it renews at midnight UTC, in "*" s" ]]
	got=$(hdr Retry-After)
	[ "$got" -le "$want" ]
	[ "$got" -ge $((want - 5)) ]
	[ "$(hdr X-Budget-Remaining)" = 0.000000 ]
	# Refused before anything was sent.
	[ "$(fake_count)" -eq 3 ]
	# The OpenAI-compatible route is capped too, in OpenAI's shape.
	run curl -sS -D "$BATS_TEST_TMPDIR/h" -H "Authorization: Bearer k-one" \
		"$SERVE_URL/v1/chat/completions" \
		-d '{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
	[ "$(status_line)" = 429 ]
	[[ "$(json_get error.message <<<"$output")" == "the daily budget of API key key:1 is spent"* ]]
	[ "$(fake_count)" -eq 3 ]
	# Routes that call no model still answer.
	run curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer k-one" "$SERVE_URL/v1/models"
	[ "$output" != 429 ]
}

@test "a budget spent exactly is spent: the next request is refused" {
	with_openai_fake "$ANSWER"
	serve_start --api-key k-one --budget key:1=0.004/day
	run chat k-one
	[ "$(hdr X-Budget-Remaining)" = 0.002000 ]
	run chat k-one
	[ "$(status_line)" = 200 ]
	[ "$(hdr X-Budget-Remaining)" = 0.000000 ]
	run chat k-one
	[ "$(status_line)" = 429 ]
	[ "$(fake_count)" -eq 2 ]
}

@test "other keys are not affected by one key's budget" {
	with_openai_fake "$ANSWER"
	serve_start --api-key k-one --api-key k-two --budget key:1=0.001/day
	run chat k-one
	[ "$(status_line)" = 200 ]
	run chat k-one
	[ "$(status_line)" = 429 ]
	for i in 1 2 3; do
		run chat k-two
		[ "$(status_line)" = 200 ]
		[ -z "$(hdr X-Budget-Remaining)" ]
	done
	[ "$(fake_count)" -eq 4 ]
}

@test "the config's budgets apply; --budget wins over them" {
	with_openai_fake "$ANSWER"
	cat >"$XDG_CONFIG_HOME/aichat/config.json" <<'EOF'
{"prices": {"openai:gpt-4o-mini": {"input": 1, "output": 1}},
 "budgets": {"key:1": "0.001/day", "key:2": "0.001/day"}}
EOF
	serve_start --api-key k-one --api-key k-two --budget key:2=1/day
	run chat k-one
	[ "$(hdr X-Budget-Limit)" = 0.001000 ]
	run chat k-one
	[ "$(status_line)" = 429 ]
	run chat k-two
	[ "$(hdr X-Budget-Limit)" = 1.000000 ]
	run chat k-two
	[ "$(status_line)" = 200 ]
}

@test "spending is read back from the ledger at start; yesterday's does not count" {
	with_openai_fake "$ANSWER"
	serve_start --api-key k-one --budget key:1=0.003/day
	run chat k-one
	run chat k-one
	[ "$(status_line)" = 200 ]
	serve_stop
	serve_start --api-key k-one --budget key:1=0.003/day
	run chat k-one
	[ "$(status_line)" = 429 ]
	[ "$(hdr X-Budget-Remaining)" = 0.000000 ]
	[ "$(fake_count)" -eq 2 ]
	serve_stop
	# The same spending, a day earlier: today starts afresh.
	python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE usage SET day = ?", (sys.argv[2],))
c.commit()' "$AICHAT_HOME/aichat.db" "$(date -u -d yesterday +%F)"
	serve_start --api-key k-one --budget key:1=0.003/day
	run chat k-one
	[ "$(status_line)" = 200 ]
	[ "$(hdr X-Budget-Remaining)" = 0.001000 ]
}

@test "the ledger records serve's exchanges by key label, never the key; usage totals match" {
	with_openai_fake "$ANSWER" '{"usage":{"prompt_tokens":5,"completion_tokens":7}}'
	serve_start --api-key secret-key-one --api-key secret-key-two
	run chat secret-key-one
	run chat secret-key-two
	serve_stop
	run aichat usage --by key --json
	[ "$(json_get rows.0.group <<<"$output")" = key:1 ]
	[ "$(json_get rows.0.cost_micros <<<"$output")" = 2000 ]
	[ "$(json_get rows.1.group <<<"$output")" = key:2 ]
	[ "$(json_get rows.1.prompt_tokens <<<"$output")" = 5 ]
	[ "$(json_get rows.1.cost_micros <<<"$output")" = 12 ]
	[ "$(json_get total.cost_micros <<<"$output")" = 2012 ]
	run sh -c "cat \"$AICHAT_HOME\"/aichat.db* | grep -c secret-key"
	[ "$output" = 0 ]
}

@test "a job's items spend its submitter's budget, in the ledger under its key, after a restart too" {
	with_openai_fake "$ANSWER"
	serve_start --api-key k-one --api-key k-two --budget key:1=0.005/day
	run curl -sS -H "Authorization: Bearer k-one" "$SERVE_URL/jobs" \
		-d '{"model":"openai:gpt-4o-mini","concurrency":1,"items":[{"id":"a","prompt":"x"},{"id":"b","prompt":"y"},{"id":"c","prompt":"z"}]}'
	id=$(json_get id <<<"$output")
	[ -n "$id" ]
	for ((i = 0; i < 100; i++)); do
		[ "$(curl -sS -H "Authorization: Bearer k-one" "$SERVE_URL/jobs/$id" | json_get status)" = done ] && break
		sleep 0.1
	done
	[ "$(fake_count)" -eq 3 ]
	# Three items of $0.002: the key's $0.005 is spent, by the job alone.
	run chat k-one
	[ "$(status_line)" = 429 ]
	[[ "$(json_get error.message <<<"$output")" == "the daily budget of API key key:1 is spent (\$0.006000 of \$0.005000 a day)"* ]]
	run chat k-two
	[ "$(status_line)" = 200 ]
	[ "$(fake_count)" -eq 4 ]
	# The ledger has them under key:1, so a restart still knows.
	serve_stop
	run aichat usage --by key --json
	[ "$(json_get rows.0.group <<<"$output")" = key:1 ]
	[ "$(json_get rows.0.exchanges <<<"$output")" = 3 ]
	[ "$(json_get rows.0.cost_micros <<<"$output")" = 6000 ]
	serve_start --api-key k-one --api-key k-two --budget key:1=0.005/day
	run chat k-one
	[ "$(status_line)" = 429 ]
	[ "$(fake_count)" -eq 4 ]
}

@test "/metrics counts tokens and cost per model" {
	with_openai_fake "$ANSWER" '{"usage":{"prompt_tokens":3,"completion_tokens":4}}'
	serve_start
	curl -sS "$SERVE_URL/chat" -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}' >/dev/null
	curl -sS "$SERVE_URL/chat" -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}' >/dev/null
	curl -sS "$SERVE_URL/chat" -d '{"prompt":"hi there","model":"mock:echo"}' >/dev/null
	run curl -sS "$SERVE_URL/metrics"
	[[ "$output" == *'aichat_tokens_total{model="openai:gpt-4o-mini",kind="prompt"} 1003'* ]]
	[[ "$output" == *'aichat_tokens_total{model="openai:gpt-4o-mini",kind="completion"} 1004'* ]]
	[[ "$output" == *'aichat_cost_microdollars_total{model="openai:gpt-4o-mini"} 2007'* ]]
	[[ "$output" == *'aichat_tokens_total{model="mock:echo",kind="completion"} 2'* ]]
	# mock:echo has no price: no cost series for it.
	[[ "$output" != *'aichat_cost_microdollars_total{model="mock:echo"}'* ]]
}

@test "/v1/embeddings spends like a chat: its prompt tokens priced as input, in /metrics, the ledger and the key's budget" {
	# 1,000,000 prompt tokens at the built-in $0.02 a million: $0.020000.
	with_openai_fake '{"usage":{"prompt_tokens":1000000}}' '{"usage":{"prompt_tokens":1000000}}' \
		'{"usage":{"prompt_tokens":1000000}}'
	serve_start --api-key k-one --budget key:1=0.03/day
	local i codes=""
	for i in 1 2 3; do
		codes="$codes $(curl -sS -o /dev/null -w '%{http_code}' -D "$BATS_TEST_TMPDIR/h" \
			-H 'Authorization: Bearer k-one' "$SERVE_URL/v1/embeddings" \
			-d '{"model":"openai:text-embedding-3-small","input":"one"}')"
		[ "$i" != 1 ] || [ "$(hdr X-Budget-Remaining)" = 0.010000 ]
	done
	# The second call crossed the budget; the third was refused unsent.
	[ "$codes" = " 200 200 429" ]
	[ "$(fake_count)" -eq 2 ]
	run curl -sS -H 'Authorization: Bearer k-one' "$SERVE_URL/metrics"
	[[ "$output" == *'aichat_tokens_total{model="openai:text-embedding-3-small",kind="prompt"} 2000000'* ]]
	[[ "$output" == *'aichat_cost_microdollars_total{model="openai:text-embedding-3-small"} 40000'* ]]
	serve_stop
	run aichat usage --by key --json
	[ "$status" -eq 0 ]
	[ "$(json_get total.prompt_tokens <<<"$output")" = 2000000 ]
	[ "$(json_get total.cost_micros <<<"$output")" = 40000 ]
	[ "$(json_get rows.0.group <<<"$output")" = key:1 ]
}

@test "/v1/models: a priced model carries its pricing, the config's or the built-in; an unpriced one none" {
	config_file='{"prices": {"openai:gpt-4o-mini": {"input": 1, "output": 2, "cache_write": 3}}, "aliases": {"cheap": "openai:gpt-4o-mini"}}'
	printf '%s' "$config_file" >"$XDG_CONFIG_HOME/aichat/config.json"
	with_openai_fake '{"models":["gpt-4o","gpt-4o-mini"]}'
	serve_start
	run curl -sS "$SERVE_URL/v1/models"
	[ "$status" -eq 0 ]
	python3 -c '
import json, sys
m = {e["id"]: e.get("pricing") for e in json.load(sys.stdin)["data"]}
assert m["openai:gpt-4o"] == {"input": 2.5, "output": 10, "cached_input": 1.25, "cache_write": 2.5}, m
assert m["openai:gpt-4o-mini"] == {"input": 1, "output": 2, "cached_input": 1, "cache_write": 3}, m
assert m["cheap"] == m["openai:gpt-4o-mini"], m
assert m["mock:echo"] is None, m
' <<<"$output"
}

@test "bad budgets: exit 2 (flag) or 3 (config) naming what and why; nothing starts" {
	local f="$XDG_CONFIG_HOME/aichat/config.json"
	for bad in key:1 key:1=5 key:1=5/week key:1=-1/day key:1=1.0000001/day; do
		run --separate-stderr aichat serve --port 0 --api-key k --budget "$bad"
		[ "$status" -eq 2 ]
		[ "$stderr" = "aichat: serve: invalid value '$bad' for '--budget': must be key:N=AMOUNT/day, such as key:1=5.00/day" ]
	done
	for bad in key:2=1/day key:0=1/day one=1/day key:01=1/day =1/day; do
		run --separate-stderr aichat serve --port 0 --api-key k --budget "$bad"
		[ "$status" -eq 2 ]
		[ "$stderr" = "aichat: serve: invalid value '$bad' for '--budget': no such API key: keys are key:1 to key:1, in the order --api-key, \$AICHAT_API_KEYS, --api-key-file" ]
	done
	run --separate-stderr aichat serve --port 0 --budget key:1=1/day
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: serve: '--budget' needs API keys: a budget belongs to a key (--api-key, \$AICHAT_API_KEYS or --api-key-file)" ]
	echo '{"budgets": {"key:1": 5}}' >"$f"
	run --separate-stderr aichat serve --port 0 --api-key k
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: serve: config file '$f': 'budgets.key:1' must be an amount a day, such as \"5.00/day\"" ]
	echo '{"budgets": {"key:3": "1/day"}}' >"$f"
	run --separate-stderr aichat serve --port 0 --api-key k
	[ "$status" -eq 3 ]
	[ "$stderr" = "aichat: serve: config file '$f': 'budgets.key:3': no such API key: keys are key:1 to key:1, in the order --api-key, \$AICHAT_API_KEYS, --api-key-file" ]
}
