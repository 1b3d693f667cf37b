#!/usr/bin/env bats
# aichat chat on a real terminal (a tmux pane), as a person runs it.
# CI has no terminal, so each test makes one on its own tmux socket.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	command -v tmux >/dev/null || { echo "tmux is missing (tools/deps.sh installs it)" >&2; return 1; }
	SOCK="aichat-test-$$-$BATS_TEST_NUMBER"
	DONE="$BATS_TEST_TMPDIR/done"
}

teardown() {
	tmux -L "$SOCK" kill-server 2>/dev/null || true
	fake_stop
}

# Runs a shell command in a fresh pane; its exit status lands in $DONE.
# Right after a kill-server the old server may still hold the socket
# ("server exited unexpectedly"): then try again, a few times.
pane_run() {
	local i
	for ((i = 0; i < 40; i++)); do
		tmux -L "$SOCK" -f /dev/null new-session -d -x 100 -y 20 \
			"env HOME='$HOME' XDG_CONFIG_HOME='$XDG_CONFIG_HOME' $1; echo \$? >'$DONE'; sleep 30" &&
			return 0
		sleep 0.05
	done
	return 1
}

pane_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$DONE" ] && return 0
		sleep 0.05
	done
	return 1
}

@test "on a terminal with no prompt: the interactive chat starts; Ctrl-D leaves" {
	pane_run "'$AICHAT_BIN' chat -m mock:echo"
	for i in $(seq 60); do
		tmux -L "$SOCK" capture-pane -p | grep -q '^mock:echo>' && break
		sleep 0.05
	done
	tmux -L "$SOCK" capture-pane -p | grep -q '^mock:echo>'
	tmux -L "$SOCK" send-keys C-d
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
}

@test "on a terminal the answer is plain text: no escape codes" {
	pane_run "'$AICHAT_BIN' chat -m mock:echo 'plain on a tty' >'$BATS_TEST_TMPDIR/out' 2>&1 </dev/tty"
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
	printf 'plain on a tty\n' | cmp - "$BATS_TEST_TMPDIR/out"
	tmux -L "$SOCK" kill-server
	rm -f "$DONE"
	pane_run "'$AICHAT_BIN' chat -m mock:echo 'seen on screen'"
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
	screen=$(tmux -L "$SOCK" capture-pane -p -e)
	[[ "$screen" == *"seen on screen"* ]]
	[[ "$screen" != *$'\e['*"seen"* ]]
}

@test "Ctrl-C typed on the terminal stops the reply, keeps what was shown, exit 130" {
	pane_run "AICHAT_MOCK_DELAY_MS=200 '$AICHAT_BIN' chat -m mock:echo one two three four five six seven eight nine ten"
	for i in $(seq 60); do
		tmux -L "$SOCK" capture-pane -p | grep -q three && break
		sleep 0.05
	done
	tmux -L "$SOCK" send-keys C-c
	pane_wait
	[ "$(cat "$DONE")" -eq 130 ]
	screen=$(tmux -L "$SOCK" capture-pane -p)
	[[ "$screen" == *"one two three"* ]]
	[[ "$screen" != *"ten"* ]]
	[[ "$screen" == *"aichat: chat: interrupted"* ]]
}

@test "batch on a terminal: a progress line on stderr, results untouched, summary at the end" {
	for i in $(seq 1 8); do echo "{\"id\":$i,\"prompt\":\"word$i\"}"; done >"$BATS_TEST_TMPDIR/in.jsonl"
	pane_run "AICHAT_MOCK_DELAY_MS=150 '$AICHAT_BIN' batch -m mock:echo -j 2 '$BATS_TEST_TMPDIR/in.jsonl' >'$BATS_TEST_TMPDIR/out.jsonl'"
	seen=
	for i in $(seq 60); do
		screen=$(tmux -L "$SOCK" capture-pane -p)
		if [[ "$screen" =~ [0-9]+/8\ done\ +0\ failed ]]; then seen=1; break; fi
		sleep 0.05
	done
	[ -n "$seen" ]
	[[ "$screen" == *"req/s"* ]]
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
	screen=$(tmux -L "$SOCK" capture-pane -p)
	[[ "$screen" == *"aichat: batch: 8 items, 8 ok, 0 failed"* ]]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out.jsonl")" -eq 8 ]
	run ! grep -q $'\e' "$BATS_TEST_TMPDIR/out.jsonl"
}

@test "markdown on a terminal: styled while it streams, not one character lost" {
	printf '# Title here\nsome **bold** and *soft* and `code` words\n- item one\n* item two\n> quoted\n```c\nint x = 2 * 3;\n```\nafter the fence é 😀\n' >"$BATS_TEST_TMPDIR/md"
	pane_run "AICHAT_MOCK_DELAY_MS=5 '$AICHAT_BIN' chat --no-log -m mock:echo <'$BATS_TEST_TMPDIR/md'"
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
	# the text on screen is the text, exactly
	diff <(tmux -L "$SOCK" capture-pane -p | sed '/^$/d') <(sed '/^$/d' "$BATS_TEST_TMPDIR/md")
	# and it was styled
	styled=$(tmux -L "$SOCK" capture-pane -p -e)
	[[ "$styled" == *$'\e['* ]]
}

@test "--raw and NO_COLOR on a terminal: the bytes exactly as streamed" {
	printf 'some **bold** and `code`\n' >"$BATS_TEST_TMPDIR/md"
	pane_run "'$AICHAT_BIN' chat --raw --no-log -m mock:echo <'$BATS_TEST_TMPDIR/md'"
	pane_wait
	[[ "$(tmux -L "$SOCK" capture-pane -p -e)" != *$'\e['*bold* ]]
	[[ "$(tmux -L "$SOCK" capture-pane -p)" == *'some **bold** and `code`'* ]]
	rm -f "$DONE"
	tmux -L "$SOCK" kill-server
	pane_run "NO_COLOR=1 '$AICHAT_BIN' chat --no-log -m mock:echo <'$BATS_TEST_TMPDIR/md'"
	pane_wait
	[ "$(cat "$DONE")" -eq 0 ]
	# the text is there, exactly as streamed, on a line of its own with
	# no escape sequence in it
	run grep -F 'some' <(tmux -L "$SOCK" capture-pane -p -e)
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = 'some **bold** and `code`' ]
}
