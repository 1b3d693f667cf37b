#!/usr/bin/env bats
# The conversation log: every `aichat chat` exchange recorded in SQLite,
# continued with -c / --cid, browsed with `aichat history`.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
}

teardown() {
	fake_stop
}

last_id() {
	aichat history list --json | json_get 0.id
}

@test "every exchange is logged with model, usage and timings" {
	run aichat chat -m mock:echo -s "be terse" "first question here"
	[ "$status" -eq 0 ]
	id=$(last_id)
	[[ "$id" =~ ^conv_[0-9a-f]{16}$ ]]
	run aichat history show --json "$id"
	[ "$(echo "$output" | json_get model)" = mock:echo ]
	[ "$(echo "$output" | json_get title)" = "first question here" ]
	[ "$(echo "$output" | json_get transcript.0.role)" = system ]
	[ "$(echo "$output" | json_get transcript.1.content)" = "first question here" ]
	[ "$(echo "$output" | json_get transcript.2.role)" = assistant ]
	[ "$(echo "$output" | json_get transcript.2.completion_tokens)" = 3 ]
	echo "$output" | json_get transcript.2.latency_ms
}

@test "-c continues the last conversation: the upstream gets the whole history" {
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	aichat chat -m openai:gpt-4o-mini "my name is Ada" >/dev/null
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -c -v "what is my name"
	[ "$status" -eq 0 ]
	[ "$(fake_field 2 body.messages.0.content)" = "my name is Ada" ]
	[ "$(fake_field 2 body.messages.1.role)" = assistant ]
	[ "$(fake_field 2 body.messages.1.content)" = "my name is Ada" ]
	[ "$(fake_field 2 body.messages.2.content)" = "what is my name" ]
	[[ "$stderr" == *"aichat: conversation $(last_id)"* ]]
	[ "$(aichat history list --json | json_get 0.messages)" = 4 ]
	[ "$(aichat history list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ]
}

@test "-c with two conversations continues the last one, not the first" {
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	aichat chat -m openai:gpt-4o-mini "first conversation" >/dev/null
	sleep 1.1
	aichat chat -m openai:gpt-4o-mini "second conversation" >/dev/null
	second=$(last_id)
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -c -v "go on"
	[ "$status" -eq 0 ]
	[ "$(fake_field 3 body.messages.0.content)" = "second conversation" ]
	[ "$(fake_field 3 body.messages.2.content)" = "go on" ]
	[[ "$stderr" == *"aichat: conversation $second"* ]]
	[ "$(aichat history show --json "$second" | json_get transcript.3.content)" = "go on" ]
}

@test "-c and --cid go on with the conversation's model, system prompt and temperature unless -m, -s, -t say otherwise" {
	fake_start
	export OPENAI_BASE_URL="$FAKE_URL/v1"
	aichat chat -m openai:model-a -s "sys A" -t 0.2 "first A" >/dev/null
	first=$(last_id)
	aichat chat -m openai:model-b -s "sys B" -t 1.3 "first B" >/dev/null
	# -c: the last conversation, B
	run --separate-stderr aichat chat -c "next"
	[ "$status" -eq 0 ]
	[ "$(fake_field 3 body.model)" = model-b ]
	[ "$(fake_field 3 body.temperature)" = 1.3 ]
	[ "$(fake_field 3 body.messages.0.role)" = system ]
	[ "$(fake_field 3 body.messages.0.content)" = "sys B" ]
	[ "$(fake_field 3 body.messages.1.content)" = "first B" ]
	[ "$(fake_field 3 body.messages.-1.content)" = next ]
	[ "$(fake_field 3 body.messages | python3 -c 'import json,sys; print(sum(m["role"] == "system" for m in json.load(sys.stdin)))')" = 1 ]
	# --cid: the other one, A
	run --separate-stderr aichat chat --cid "$first" "again A"
	[ "$status" -eq 0 ]
	[ "$(fake_field 4 body.model)" = model-a ]
	[ "$(fake_field 4 body.temperature)" = 0.2 ]
	[ "$(fake_field 4 body.messages.0.content)" = "sys A" ]
	# A is now the last one: -m, -s and -t override it, once and for what follows
	run --separate-stderr aichat chat -m openai:model-c -s "sys C" -t 0.9 -c "override"
	[ "$status" -eq 0 ]
	[ "$(fake_field 5 body.model)" = model-c ]
	[ "$(fake_field 5 body.temperature)" = 0.9 ]
	[ "$(fake_field 5 body.messages.0.content)" = "sys C" ]
	[ "$(fake_field 5 body.messages.1.content)" = "first A" ]
	[ "$(fake_field 5 body.messages | python3 -c 'import json,sys; print(sum(m["role"] == "system" for m in json.load(sys.stdin)))')" = 1 ]
	run --separate-stderr aichat chat -c "after the override"
	[ "$(fake_field 6 body.model)" = model-c ]
	[ "$(fake_field 6 body.temperature)" = 0.9 ]
	[ "$(fake_field 6 body.messages.0.content)" = "sys C" ]
	# the log shows when the system prompt changed
	[ "$(aichat history show --json "$first" | json_get transcript.5.content)" = "sys C" ]
	[ "$(aichat history show --json "$first" | json_get model)" = openai:model-c ]
}

@test "a log from before conversations kept their temperature still continues" {
	aichat chat -m mock:echo "old one" >/dev/null
	# as an older aichat left it: schema 5, no temperature column (nor
	# the job owners and leases of schema 7, nor what came after)
	schema_back_to_7 "$AICHAT_HOME/aichat.db"
	python3 - "$AICHAT_HOME/aichat.db" <<-'EOF'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	db.execute("ALTER TABLE conversations DROP COLUMN temperature")
	db.execute("ALTER TABLE jobs DROP COLUMN owner")
	db.execute("ALTER TABLE jobs DROP COLUMN lease_until")
	db.execute("PRAGMA user_version=5")
	db.commit()
	EOF
	fake_start
	export OPENAI_BASE_URL="$FAKE_URL/v1"
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -c "and on"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.temperature)" = 0.7 ]
	[ "$(fake_field 1 body.messages.0.content)" = "old one" ]
	run --separate-stderr aichat chat -c "once more"
	[ "$(fake_field 2 body.model)" = gpt-4o-mini ]
	[ "$(fake_field 2 body.temperature)" = 0.7 ]
}

@test "--cid continues a given conversation; a bad or unknown id is a clear error, nothing sent" {
	aichat chat -m mock:echo "one" >/dev/null
	first=$(last_id)
	aichat chat -m mock:echo "two" >/dev/null
	run aichat chat -m mock:echo --cid "$first" "one more"
	[ "$status" -eq 0 ]
	[ "$(aichat history show --json "$first" | json_get transcript.3.content)" = "one more" ]
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	for bad in conv_0000000000000000 "x'; DROP TABLE messages; --" ../../etc/passwd; do
		run --separate-stderr aichat chat -m openai:gpt-4o-mini --cid "$bad" hi
		[ "$status" -eq 1 ]
		[[ "$stderr" == "aichat: chat: no conversation '"* ]]
	done
	[ "$(fake_count)" -eq 0 ]
	run --separate-stderr aichat chat -m mock:echo -c --cid "$first" hi
	[ "$status" -eq 2 ]
}

@test "--no-log and \"log\": false record nothing" {
	aichat chat -m mock:echo --no-log "secret one" >/dev/null
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	echo '{"log": false}' >"$XDG_CONFIG_HOME/aichat/config.json"
	aichat chat -m mock:echo "secret two" >/dev/null
	run aichat history list --json
	[ "$output" = "[]" ]
}

@test "-c --no-log continues a conversation without adding to it" {
	aichat chat -m mock:echo "kept question" >/dev/null
	id=$(last_id)
	run --separate-stderr aichat chat -m mock:echo -c --no-log "unkept question"
	[ "$status" -eq 0 ]
	[ "$output" = "unkept question" ]
	[ "$(aichat history list --json | json_get 0.messages)" = 2 ]
	run aichat history show --json "$id"
	[[ "$output" == *"kept question"* ]]
	[[ "$output" != *"unkept question"* ]]
}

@test "history search finds a conversation by its words (FTS5); syntax in the text is only text" {
	aichat chat -m mock:echo "the quick brown fox" >/dev/null
	aichat chat -m mock:echo "lazy dogs sleep" >/dev/null
	run aichat history search fox
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == *"the quick brown fox"* ]]
	[[ "${lines[1]}" == *"[fox]"* ]]
	run aichat history search --json 'NEAR( "dogs' 'OR*'
	[ "$status" -eq 0 ]
	[ "$output" = "[]" ]
	run aichat history search --json lazy
	[ "$(echo "$output" | json_get 0.title)" = "lazy dogs sleep" ]
}

@test "history rm removes a conversation and its search entries" {
	aichat chat -m mock:echo "remove me please" >/dev/null
	id=$(last_id)
	run aichat history rm "$id"
	[ "$status" -eq 0 ]
	[ "$(aichat history list --json)" = "[]" ]
	[ "$(aichat history search --json remove)" = "[]" ]
	run --separate-stderr aichat history rm "$id"
	[ "$status" -eq 1 ]
	run --separate-stderr aichat history frobnicate
	[ "$status" -eq 2 ]
}

@test "eight parallel chats never fail on a locked database" {
	seq 1 8 | xargs -P 8 -I{} "$AICHAT_BIN" chat -m mock:echo "parallel {}" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err"
	[ ! -s "$BATS_TEST_TMPDIR/err" ]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -eq 8 ]
	[ "$(aichat history list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 8 ]
}

@test "an interrupted chat logs what was shown" {
	AICHAT_MOCK_DELAY_MS=200 "$AICHAT_BIN" chat -m mock:echo one two three four five six >"$BATS_TEST_TMPDIR/out" &
	pid=$!
	sleep 0.5
	kill -INT "$pid"
	wait "$pid" || true
	shown=$(cat "$BATS_TEST_TMPDIR/out")
	[ "$(aichat history show --json "$(last_id)" | json_get transcript.1.content)" = "$shown" ]
}

@test "past the context budget the oldest turns are dropped, the system prompt kept, with a notice" {
	fake_start
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	long=$(head -c 400 /dev/zero | tr '\0' a)
	aichat chat -m openai:gpt-4o-mini -s "stay brief" "first $long" >/dev/null
	aichat chat -m openai:gpt-4o-mini -c "second $long" >/dev/null
	AICHAT_CONTEXT_BUDGET=260 run --separate-stderr aichat chat -m openai:gpt-4o-mini -c "third"
	[ "$status" -eq 0 ]
	[ "$stderr" = "aichat: chat: the conversation is past the 260-token budget of openai:gpt-4o-mini: dropped the 2 oldest messages (the system prompt stays)" ]
	[ "$(fake_field 3 body.messages.0.content)" = "stay brief" ]
	[ "$(fake_field 3 body.messages.1.content)" = "second $long" ]
	[ "$(fake_field 3 body.messages.-1.content)" = third ]
	# within budget: nothing dropped, nothing said
	run --separate-stderr aichat chat -m openai:gpt-4o-mini -c "fourth"
	[ "$stderr" = "" ]
}
