#!/usr/bin/env bats
# aichat batch: JSONL in, JSONL out, against the fake upstream.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
	IN=$BATS_TEST_TMPDIR/in.jsonl
	OUT=$BATS_TEST_TMPDIR/out.jsonl
}

teardown() {
	fake_stop
}

# ids of the result lines, space-separated
ids() {
	python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["id"]) for l in open(sys.argv[1])))' "$1"
}

field() { # field FILE LINE PATH
	sed -n "$2p" "$1" | json_get "$3"
}

@test "results in input order under random upstream latency" {
	with_openai_fake \
		'{"match":"p1 ","stall_ms":400}' '{"match":"p2 ","stall_ms":50}' \
		'{"match":"p3 ","stall_ms":250}' '{"match":"p5 ","stall_ms":150}' '{}'
	for i in 1 2 3 4 5 6; do echo "{\"id\":\"i$i\",\"prompt\":\"p$i \"}"; done >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 6 "$IN"
	[ "$status" -eq 0 ]
	echo "$output" >"$OUT"
	[ "$(ids "$OUT")" = "i1 i2 i3 i4 i5 i6" ]
	[ "$(field "$OUT" 3 content)" = p3 ]
	[ "$(field "$OUT" 3 error)" = null ]
	[ "$(field "$OUT" 3 model)" = openai:gpt-4o-mini ]
	[ "$(field "$OUT" 3 attempts)" = 1 ]
	[ "$(field "$OUT" 1 latency_ms)" -ge 350 ]
	[ "$(fake_count)" -eq 6 ]
	[[ "$stderr" == "aichat: batch: 6 items, 6 ok, 0 failed, "*" tokens, "*" s" ]]
}

@test "--unordered writes in completion order" {
	with_openai_fake '{"match":"slow","stall_ms":500}' '{}'
	printf '{"id":1,"prompt":"slow one"}\n{"id":2,"prompt":"fast"}\n' >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini --unordered "$IN"
	[ "$status" -eq 0 ]
	echo "$output" >"$OUT"
	[ "$(ids "$OUT")" = "2 1" ]
}

@test "bad lines become error results; the rest runs; exit 5" {
	cat >"$IN" <<-'JSONL'
	{"id":"ok1","prompt":"fine"}
	this is not json
	{"id":"hot","prompt":"x","temperature":5}
	{"prompt":"no id here"}
	[1,2]
	{"id":{"x":1},"prompt":"bad id"}
	{"id":"m","messages":[{"role":"robot","content":"x"}]}

	{"id":"ok2","prompt":"also fine"}
	JSONL
	run --separate-stderr aichat batch -m mock:echo "$IN"
	[ "$status" -eq 5 ]
	echo "$output" >"$OUT"
	[ "$(ids "$OUT")" = "ok1 2 hot 4 5 6 m ok2" ]
	[ "$(field "$OUT" 2 error.message)" = "line 2: invalid JSON at column 1" ]
	[ "$(field "$OUT" 3 error.message)" = "line 3: invalid value '5' for 'temperature': must be <= 2" ]
	[ "$(field "$OUT" 4 content)" = "no id here" ]
	[ "$(field "$OUT" 5 error.message)" = "line 5: must be a JSON object" ]
	[ "$(field "$OUT" 6 error.message)" = "line 6: 'id' must be a string or a number" ]
	[ "$(field "$OUT" 7 error.message)" = "line 7: invalid value 'robot' for 'messages.0.role': must be one of: user, assistant, system" ]
	[ "$(field "$OUT" 8 content)" = "also fine" ]
	[[ "$stderr" == "aichat: batch: 8 items, 3 ok, 5 failed, "* ]]
}

@test "items are bounded by bytes, not the HTTP route's 32000 characters; past the cap nothing is sent" {
	with_openai_fake
	export AICHAT_MAX_PROMPT_BYTES=40000
	python3 - "$IN" <<-'EOF'
	import json, sys
	a = "a" * 40000
	with open(sys.argv[1], "w") as f:
	    for item in ({"id": "long", "prompt": a},
	                 {"id": "over", "prompt": a + "b"},
	                 {"id": "conv", "messages": [{"role": "user", "content": a[:20000]},
	                                             {"role": "assistant", "content": "ok"},
	                                             {"role": "user", "content": a[:19998]}]},
	                 {"id": "conv-over", "messages": [{"role": "user", "content": a[:20000]},
	                                                  {"role": "user", "content": a[:20001]}]},
	                 {"id": "sys-over", "prompt": "hi", "system": a + "b"},
	                 {"id": "escaped", "prompt": "\u00e9" * 20000}):
	        f.write(json.dumps(item) + "\n")
	EOF
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 1 "$IN"
	[ "$status" -eq 5 ]
	echo "$output" >"$OUT"
	[ "$(ids "$OUT")" = "long over conv conv-over sys-over escaped" ]
	[ "$(field "$OUT" 1 error)" = null ]
	[ "$(field "$OUT" 2 error.message)" = "line 2: the prompt is 39.1 KiB (40001 bytes), over the 40000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(field "$OUT" 3 error)" = null ]
	[ "$(field "$OUT" 4 error.message)" = "line 4: the conversation is 39.1 KiB (40001 bytes), over the 40000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(field "$OUT" 5 error.message)" = "line 5: the system prompt is 39.1 KiB (40001 bytes), over the 40000-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	# 20000 characters of two bytes, written as \u00e9 escapes: 120006 bytes of JSON
	[ "$(field "$OUT" 6 error)" = null ]
	[ "$(fake_count)" -eq 3 ]
	[ "$(fake_field 1 body.messages.0.content | wc -c)" -eq 40001 ]
}

@test "--text and -s are bounded by bytes too; an over-long line fails alone" {
	with_openai_fake
	export AICHAT_MAX_PROMPT_BYTES=100
	{ head -c 100 /dev/zero | tr '\0' a; echo; head -c 5000000 /dev/zero | tr '\0' b; echo; echo last; } >"$IN"
	run --separate-stderr aichat batch --text -m openai:gpt-4o-mini -j 1 "$IN"
	[ "$status" -eq 5 ]
	echo "$output" >"$OUT"
	[ "$(ids "$OUT")" = "1 2 3" ]
	[ "$(field "$OUT" 1 error)" = null ]
	[ "$(field "$OUT" 2 error.message)" = "line 2: the prompt is 4.8 MiB (5000000 bytes), over the 100-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(field "$OUT" 3 content)" = last ]
	[ "$(fake_count)" -eq 2 ]
	# a JSON line may hold escapes: up to 8 times the cap, then it is refused unread
	printf '{"id":"j","prompt":"%s"}\n' "$(head -c 800 /dev/zero | tr '\0' c)" >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini "$IN"
	[ "$status" -eq 5 ]
	[ "$(echo "$output" | json_get error.message)" = "line 1: the line is 822 bytes, over the 800-byte limit (8 times AICHAT_MAX_PROMPT_BYTES)" ]
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -s "$(head -c 101 /dev/zero | tr '\0' s)" "$IN"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: batch: the system prompt is 101 bytes, over the 100-byte limit (AICHAT_MAX_PROMPT_BYTES)" ]
	[ "$(fake_count)" -eq 2 ]
}

@test "an item past its model's context budget fails alone, unsent" {
	with_openai_fake
	export AICHAT_CONTEXT_BUDGET=100
	printf '{"id":"fits","prompt":"%s"}\n{"id":"big","prompt":"%s"}\n' \
		"$(head -c 384 /dev/zero | tr '\0' a)" "$(head -c 385 /dev/zero | tr '\0' a)" >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini "$IN"
	[ "$status" -eq 5 ]
	echo "$output" >"$OUT"
	[ "$(field "$OUT" 1 error)" = null ]
	[ "$(field "$OUT" 2 error.message)" = "line 2: the prompt is about 101 tokens (385 bytes), over the 100-token context budget of openai:gpt-4o-mini (AICHAT_CONTEXT_BUDGET)" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "api_key_cmd runs once for the whole batch; its key reaches every request" {
	fake_start
	runs=$BATS_TEST_TMPDIR/runs
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	python3 -c 'import json, sys; print(json.dumps({"providers": {"local": {"kind": "openai", "base_url": sys.argv[1], "api_key_cmd": sys.argv[2]}}}))' \
		"$FAKE_URL/v1" "echo run >>'$runs'; echo sk-batch-key-0123456789" >"$XDG_CONFIG_HOME/aichat/config.json"
	for i in 1 2 3 4 5; do echo "{\"id\":$i,\"prompt\":\"p$i\"}"; done >"$IN"
	run --separate-stderr aichat batch -m local:m -j 3 "$IN"
	[ "$status" -eq 0 ]
	[ "$(fake_count)" -eq 5 ]
	for i in 1 2 3 4 5; do
		[ "$(fake_field "$i" headers.authorization)" = "Bearer sk-batch-key-0123456789" ]
	done
	[ "$(wc -l <"$runs")" -eq 1 ]
	[[ "$output$stderr" != *sk-batch-key* ]]
}

@test "items the upstream fails stay failed alone; retries are counted" {
	with_openai_fake '{"match":"doomed","status":400,"body":"{\"error\":{\"message\":\"nope\"}}"}' \
		'{"status":503}' '{}'
	printf '{"id":"a","prompt":"first"}\n{"id":"b","prompt":"doomed"}\n{"id":"c","prompt":"third"}\n' >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 1 "$IN"
	[ "$status" -eq 5 ]
	echo "$output" >"$OUT"
	[ "$(field "$OUT" 1 content)" = first ]
	[ "$(field "$OUT" 1 attempts)" = 2 ]
	[ "$(field "$OUT" 2 error.code)" = upstream_error ]
	[ "$(field "$OUT" 2 error.message)" = "openai returned HTTP 400: nope" ]
	[ "$(field "$OUT" 2 attempts)" = 1 ]
	[ "$(field "$OUT" 3 content)" = third ]
	[ "$(field "$OUT" 3 attempts)" = 1 ]
}

@test "--text: one prompt per line, the line number is the id" {
	printf 'alpha beta\n\ngamma\n' | aichat batch --text -m mock:echo >"$OUT"
	[ "$(ids "$OUT")" = "1 3" ]
	[ "$(field "$OUT" 2 content)" = gamma ]
}

@test "defaults from flags apply to items that set none" {
	with_openai_fake
	printf '{"id":1,"prompt":"a"}\n{"id":2,"prompt":"b","temperature":0.1,"system":"own"}\n' >"$IN"
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -t 1.5 -s "default sys" --max-tokens 7 -j 1 "$IN"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.temperature)" = 1.5 ]
	[ "$(fake_field 1 body.max_tokens)" = 7 ]
	[ "$(fake_field 1 body.messages.0.content)" = "default sys" ]
	[ "$(fake_field 2 body.temperature)" = 0.1 ]
	[ "$(fake_field 2 body.messages.0.content)" = own ]
}

@test "resume after kill -9: finished items are not redone, no torn line" {
	with_openai_fake '{"delay_ms":30,"deltas":["x","y","z"]}'
	for i in $(seq 1 40); do echo "{\"id\":$i,\"prompt\":\"p$i\"}"; done >"$IN"
	"$AICHAT_BIN" batch -m openai:gpt-4o-mini -j 4 -o "$OUT" "$IN" 2>/dev/null &
	pid=$!
	for i in $(seq 100); do [ "$(wc -l <"$OUT" 2>/dev/null || echo 0)" -ge 10 ] && break; sleep 0.02; done
	kill -9 "$pid"
	wait "$pid" || true
	done_before=$(wc -l <"$OUT")
	[ "$done_before" -ge 10 ]
	[ "$done_before" -lt 40 ]
	before=$(fake_count)
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 4 -o "$OUT" --resume "$IN"
	[ "$status" -eq 0 ]
	[ "$(wc -l <"$OUT")" -eq 40 ]
	# every id exactly once, each line whole JSON
	[ "$(ids "$OUT" | tr ' ' '\n' | sort -n | uniq | wc -l)" -eq 40 ]
	# at most the items in flight at the kill were asked again
	[ "$(( $(fake_count) - before ))" -le $(( 40 - done_before + 4 )) ]
	[[ "$stderr" == *"skipped (already done)"* ]]
}

@test "--resume retries the failed ones only" {
	printf '{"id":"a","prompt":"x"}\n{"id":"b","prompt":"y","temperature":9}\n' >"$IN"
	run aichat batch -m mock:echo -o "$OUT" "$IN"
	[ "$status" -eq 5 ]
	printf '{"id":"a","prompt":"x"}\n{"id":"b","prompt":"y","temperature":1}\n' >"$IN"
	run --separate-stderr aichat batch -m mock:echo -o "$OUT" --resume "$IN"
	[ "$status" -eq 0 ]
	[ "$(ids "$OUT")" = "a b" ]
	[ "$(field "$OUT" 2 content)" = y ]
	[[ "$stderr" == *"1 item, 1 ok, 0 failed"*"1 skipped (already done)" ]]
}

@test "a 429 slows the whole batch down and is retried" {
	with_openai_fake '{"status":429,"headers":{"Retry-After":"1"}}' '{}'
	for i in 1 2 3 4; do echo "{\"id\":$i,\"prompt\":\"p$i\"}"; done >"$IN"
	start=$(date +%s%N)
	run --separate-stderr aichat batch -m openai:gpt-4o-mini -j 1 "$IN"
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 0 ]
	echo "$output" >"$OUT"
	[ "$(field "$OUT" 1 attempts)" = 2 ]
	[ "$elapsed" -ge 1000 ]
}

@test "--rate paces the requests" {
	for i in 1 2 3 4; do echo "{\"id\":$i,\"prompt\":\"p\"}"; done >"$IN"
	start=$(date +%s%N)
	run --separate-stderr aichat batch -m mock:echo --rate 10/second "$IN"
	elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
	[ "$status" -eq 0 ]
	[ "$elapsed" -ge 250 ]
	run --separate-stderr aichat batch -m mock:echo --rate 10/fortnight "$IN"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"invalid rate limit '10/fortnight'"* ]]
}

@test "unusable input: missing file, a directory, not JSONL at all: exit 2" {
	run --separate-stderr aichat batch -m mock:echo "$BATS_TEST_TMPDIR/nope.jsonl"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "aichat: batch: cannot read '$BATS_TEST_TMPDIR/nope.jsonl': No such file or directory" ]]
	run --separate-stderr aichat batch -m mock:echo "$BATS_TEST_TMPDIR"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"is a directory"* ]]
	printf 'just some\nplain text\n' >"$IN"
	run --separate-stderr aichat batch -m mock:echo "$IN"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"the input is not JSONL"* ]]
	run --separate-stderr aichat batch -m mock:echo -j 0 "$IN"
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: batch: invalid value '0' for '--concurrency': must be >= 1" ]
	run --separate-stderr aichat batch --resume "$IN"
	[ "$status" -eq 2 ]
}

@test "a large input runs in bounded memory" {
	python3 -c '
import sys
with open(sys.argv[1], "w") as f:
    for i in range(200000):
        f.write("{\"id\":%d,\"prompt\":\"item %d with a few words\"}\n" % (i, i))
' "$IN"
	/usr/bin/time -f '%M' -o "$BATS_TEST_TMPDIR/rss" "$AICHAT_BIN" batch -m mock:echo -j 50 "$IN" >"$OUT" 2>/dev/null
	[ "$(wc -l <"$OUT")" -eq 200000 ]
	[ "$(tail -1 "$OUT" | json_get id)" = 199999 ]
	# peak RSS in KiB: far below the 200k results' size (AddressSanitizer's
	# shadow memory makes any RSS figure meaningless, so not under asan)
	[[ "$AICHAT_BIN" == */build-asan/* ]] ||
		[ "$(tail -1 "$BATS_TEST_TMPDIR/rss")" -lt 30000 ]
}
