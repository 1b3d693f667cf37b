#!/usr/bin/env bats
# The interactive chat, driven as a person would in a real terminal:
# tmux send-keys to type, capture-pane to read the screen.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	command -v tmux >/dev/null || { echo "tmux is missing (tools/deps.sh installs it)" >&2; return 1; }
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	SOCK="aichat-repl-$$-$BATS_TEST_NUMBER"
	DONE="$BATS_TEST_TMPDIR/done"
}

teardown() {
	tmux -L "$SOCK" kill-server 2>/dev/null || true
	fake_stop
}

# start [ENV...]: aichat chat -m mock:echo in a fresh 100x30 terminal.
start() {
	tmux -L "$SOCK" -f /dev/null new-session -d -x 100 -y 30 \
		"env HOME='$HOME' AICHAT_HOME='$AICHAT_HOME' XDG_CONFIG_HOME='$XDG_CONFIG_HOME' $* '$AICHAT_BIN' chat -m mock:echo; echo \$? >'$DONE'; sleep 30"
	wait_for 'mock:echo>'
}

screen() {
	tmux -L "$SOCK" capture-pane -p -S -200
}

# wait_for TEXT: until the screen shows TEXT, which may span lines (at
# most ~5 s).  capture-pane drops trailing blanks: a prompt reads
# "mock:echo>".
wait_for() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ "$(screen)" == *"$1"* ]] && return 0
		sleep 0.05
	done
	echo "never saw '$1' on:" >&2
	screen >&2
	return 1
}

# count TEXT: lines of the screen holding TEXT.
count() {
	screen | grep -cF -- "$1" || true
}

type_line() {
	tmux -L "$SOCK" send-keys -l -- "$1"
	tmux -L "$SOCK" send-keys Enter
}

@test "a multi-turn chat; Ctrl-D leaves with status 0; the conversation is logged" {
	start
	type_line "first question"
	wait_for $'first question\nmock:echo>'
	type_line "second one"
	[ "$(screen | grep -c '^second one$')" -ge 1 ] || wait_for $'second one\nmock:echo>'
	tmux -L "$SOCK" send-keys C-d
	for i in $(seq 100); do [ -s "$DONE" ] && break; sleep 0.05; done
	[ "$(cat "$DONE")" -eq 0 ]
	id=$(aichat history list --json | json_get 0.id)
	run aichat history show --json "$id"
	[ "$(echo "$output" | json_get transcript.0.content)" = "first question" ]
	[ "$(echo "$output" | json_get transcript.2.content)" = "second one" ]
	[ "$(echo "$output" | json_get transcript.3.role)" = assistant ]
}

@test "a failed first log write does not stick: the next exchange is logged and 'chat -c' goes on" {
	# the database exists; a trigger refuses the first conversation only
	aichat history list --json >/dev/null
	sqlite3 "$AICHAT_HOME/aichat.db" "CREATE TRIGGER refuse_first BEFORE INSERT ON conversations
		WHEN new.title LIKE 'refused%' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;"
	start
	type_line "refused question"
	wait_for $'could not log this exchange: conversation log: disk on fire\nmock:echo>'
	type_line "second one"
	wait_for $'second one\nmock:echo>'
	type_line "third one"
	wait_for $'third one\nmock:echo>'
	[ "$(count 'could not log')" -eq 1 ]
	tmux -L "$SOCK" send-keys C-d
	for i in $(seq 100); do [ -s "$DONE" ] && break; sleep 0.05; done
	[ "$(aichat history list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 1 ]
	id=$(aichat history list --json | json_get 0.id)
	run aichat history show --json "$id"
	[ "$(echo "$output" | json_get transcript.0.content)" = "second one" ]
	[ "$(echo "$output" | json_get transcript.2.content)" = "third one" ]
	run aichat chat -c "fourth one"
	[ "$status" -eq 0 ]
	run aichat history show --json "$id"
	[ "$(echo "$output" | json_get transcript.4.content)" = "fourth one" ]
	[ "$(echo "$output" | json_get transcript.5.role)" = assistant ]
}

@test "Ctrl-C mid-reply stops it and keeps the conversation; the next question goes on" {
	start AICHAT_MOCK_DELAY_MS=150
	type_line "alpha beta gamma delta epsilon zeta eta theta"
	wait_for $'theta\nalpha beta'       # the reply has begun
	tmux -L "$SOCK" send-keys C-c
	wait_for "aichat: chat: interrupted"
	[ "$(count theta)" -eq 1 ]     # only the typed line, the reply stopped
	type_line "next"
	wait_for $'next\nmock:echo>'
	type_line "/history"
	wait_for "[user] next"
	screen | grep -q '^\[assistant\] alpha beta'
	screen | grep -q '^\[user\] alpha beta gamma delta epsilon zeta eta theta$'
}

@test "Ctrl-C at the prompt clears the line; the up arrow recalls history" {
	start
	type_line "remember me"
	wait_for $'remember me\nmock:echo>'
	tmux -L "$SOCK" send-keys -l "half typed"
	tmux -L "$SOCK" send-keys C-c
	sleep 0.2
	tmux -L "$SOCK" send-keys Up
	sleep 0.2
	screen | grep -v '^$' | tail -1 | grep -qx 'mock:echo> remember me'
	tmux -L "$SOCK" send-keys Enter
	wait_for $'remember me\nremember me\nmock:echo>' || [ "$(count 'remember me')" -ge 4 ]
	# the history file outlives the session
	grep -qx 'remember me' "$AICHAT_HOME/history"
}

@test "/model, /temperature (validated), /retry, /clear" {
	start
	type_line "/model nosuch:model"
	wait_for "aichat: /model: unknown provider 'nosuch'"
	type_line "/temperature 5"
	wait_for "aichat: /temperature: invalid value '5': must be <= 2"
	type_line "/temperature 0.3"
	wait_for "temperature: 0.3"
	type_line "say it twice"
	wait_for $'say it twice\nmock:echo>'
	type_line "/retry"
	wait_for $'/retry\nsay it twice'
	type_line "/history"
	wait_for "[assistant] say it twice"
	[ "$(screen | grep -c '^\[assistant\]')" -eq 1 ]
	type_line "/clear"
	wait_for "new conversation"
	type_line "/history"
	wait_for "(empty)"
}

@test "/save and /load bring a conversation back" {
	start
	type_line "keep this"
	wait_for $'keep this\nmock:echo>'
	type_line "/save mine"
	wait_for "saved 2 messages as 'mine'"
	type_line "/clear"
	wait_for "new conversation"
	type_line "/load mine"
	wait_for "loaded 2 messages from 'mine'"
	type_line "/history"
	wait_for "[assistant] keep this"
	type_line "/save ../../etc/evil"
	wait_for "invalid name"
}

@test "a message past the byte cap or the context budget is refused and left out" {
	start AICHAT_MAX_PROMPT_BYTES=40 AICHAT_CONTEXT_BUDGET=12
	type_line "0123456789012345678901234567890123456789X"
	wait_for "aichat: chat: the message is 41 bytes, over the 40-byte limit (AICHAT_MAX_PROMPT_BYTES)"
	type_line "012345678901234567890123456789012"
	wait_for "aichat: chat: the prompt is about 13 tokens (33 bytes), over the 12-token context budget"
	type_line "/history"
	wait_for "(empty)"
	type_line "01234567890123456789012345678901"
	wait_for $'01234567890123456789012345678901\nmock:echo>'
	type_line "/history"
	wait_for "[assistant] 01234567890123456789012345678901"
}

@test "/load puts the loaded conversation in the log: 'aichat chat -c' goes on from it" {
	mkdir -p "$AICHAT_HOME/sessions"
	cat >"$AICHAT_HOME/sessions/lab.json" <<-'JSON'
	{"model": "openai:loaded-model", "system": "loaded sys", "temperature": 0.4,
	 "messages": [{"role": "user", "content": "remember pelican"},
	              {"role": "assistant", "content": "noted: pelican"}]}
	JSON
	start
	type_line "before the load"
	wait_for $'before the load\nmock:echo>'
	type_line "/load lab"
	wait_for "loaded 2 messages from 'lab'"
	tmux -L "$SOCK" send-keys C-d
	for i in $(seq 100); do [ -s "$DONE" ] && break; sleep 0.05; done
	[ "$(cat "$DONE")" -eq 0 ]
	# two conversations: the one typed, then the loaded one, the last
	[ "$(aichat history list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 2 ]
	run aichat history show --json "$(aichat history list --json | json_get 0.id)"
	[ "$(echo "$output" | json_get model)" = openai:loaded-model ]
	[ "$(echo "$output" | json_get transcript.0.content)" = "loaded sys" ]
	[ "$(echo "$output" | json_get transcript.2.content)" = "noted: pelican" ]
	fake_start
	OPENAI_BASE_URL="$FAKE_URL/v1" run --separate-stderr aichat chat -c "which bird?"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.model)" = loaded-model ]
	[ "$(fake_field 1 body.temperature)" = 0.4 ]
	[ "$(fake_field 1 body.messages.0.content)" = "loaded sys" ]
	[ "$(fake_field 1 body.messages.1.content)" = "remember pelican" ]
	[ "$(fake_field 1 body.messages.2.content)" = "noted: pelican" ]
	[ "$(fake_field 1 body.messages.3.content)" = "which bird?" ]
}

@test "/system and /temperature of a session carry to 'aichat chat -c'" {
	start
	type_line "/system be terse"
	wait_for "system prompt set"
	type_line "/temperature 0.3"
	wait_for "temperature: 0.3"
	type_line "hello there"
	wait_for $'hello there\nmock:echo>'
	type_line "/system be verbose"
	wait_for $'system prompt set\nmock:echo>'
	type_line "again"
	wait_for $'again\nmock:echo>'
	tmux -L "$SOCK" send-keys C-d
	for i in $(seq 100); do [ -s "$DONE" ] && break; sleep 0.05; done
	fake_start
	OPENAI_BASE_URL="$FAKE_URL/v1" run --separate-stderr aichat chat -m openai:x -c "and now?"
	[ "$status" -eq 0 ]
	[ "$(fake_field 1 body.temperature)" = 0.3 ]
	[ "$(fake_field 1 body.messages.0.role)" = system ]
	[ "$(fake_field 1 body.messages.0.content)" = "be verbose" ]
	[ "$(fake_field 1 body.messages.1.content)" = "hello there" ]
	[ "$(fake_field 1 body.messages.3.content)" = again ]
	[ "$(fake_field 1 body.messages.-1.content)" = "and now?" ]
}

@test "multi-line input: a pasted block stays whole, and \"\"\" blocks" {
	start
	printf 'line one\nline two\nline three' >"$BATS_TEST_TMPDIR/paste"
	tmux -L "$SOCK" load-buffer "$BATS_TEST_TMPDIR/paste"
	tmux -L "$SOCK" paste-buffer -p
	tmux -L "$SOCK" send-keys Enter
	wait_for $'line three\nmock:echo>'
	type_line "/history"
	wait_for "[user] line one"
	# one user message holding all three lines
	[ "$(screen | grep -c '^\[user\]')" -eq 1 ]
	type_line '"""'
	type_line "block a"
	type_line "block b"
	type_line '"""'
	wait_for $'block b\nmock:echo>'
	run aichat history show --json "$(aichat history list --json | json_get 0.id)"
	[ "$(echo "$output" | json_get transcript.2.content)" = $'block a\nblock b' ]
}

@test "Tab completes commands and model names" {
	start
	tmux -L "$SOCK" send-keys -l "/mod"
	tmux -L "$SOCK" send-keys Tab
	sleep 0.2
	tmux -L "$SOCK" send-keys -l "anthropic:claude-hai"
	tmux -L "$SOCK" send-keys Tab
	sleep 0.2
	screen | grep -v '^$' | tail -1 | grep -qx 'mock:echo> /model anthropic:claude-haiku-4-5 *'
}
