# tests/helpers.bash - shared by every bats file (`load helpers`).
#
# A test runs aichat against the fake upstream (tests/fake/) and checks both
# what aichat printed and what the fake received.  Typical use:
#
#   setup()    { aichat_env; }
#   teardown() { fake_stop; }
#
#   @test "..." {
#       fake_start '{"status":429,"headers":{"Retry-After":"1"}}' '{}'
#       run aichat chat --base-url "$FAKE_URL/v1" ...
#       [ "$(fake_count)" -eq 2 ]
#       [ "$(fake_field 1 body.model)" = gpt-4o-mini ]
#   }
#
# AICHAT_BIN and FAKE_UPSTREAM come from the environment (`make check` sets
# them); unset, they default to ./aichat and build/tests/fake_upstream of
# this tree.  Script lines are response specs, documented in
# tests/fake/fake_answer.c and tests/fake/fake_script.c; with none, the fake
# generates answers from the request, also listed in fake_answer.c: an echo
# of the last user message, tool calls when the request has "tools" (ids
# call_fake_1, toolu_fake_1) answered by "tool said: ...", image summaries,
# JSON for response_format, logprobs, n, thinking blocks.

AICHAT_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
: "${AICHAT_BIN:=$AICHAT_ROOT/aichat}"
: "${FAKE_UPSTREAM:=$AICHAT_ROOT/build/tests/fake_upstream}"
export AICHAT_BIN FAKE_UPSTREAM

# Runs the aichat under test.
aichat() {
	"$AICHAT_BIN" "$@"
}

# Isolates the test from the user's environment: a fresh HOME and XDG
# directories under $BATS_TEST_TMPDIR, no API keys, base URLs, model or
# config from outside, no proxy, NO_COLOR unset.  Call it from setup().
aichat_env() {
	local v
	export HOME="$BATS_TEST_TMPDIR/home"
	export XDG_CONFIG_HOME="$HOME/.config"
	export XDG_DATA_HOME="$HOME/.local/share"
	export XDG_CACHE_HOME="$HOME/.cache"
	export XDG_STATE_HOME="$HOME/.local/state"
	mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"
	# curl here speaks as the SDKs do: serve's JSON routes want
	# application/json (415 otherwise, see tests/hostcheck.bats, which
	# runs `curl -q` to leave this file out).
	echo 'header = "Content-Type: application/json"' >"$HOME/.curlrc"
	unset OPENAI_API_KEY ANTHROPIC_API_KEY OPENAI_BASE_URL ANTHROPIC_BASE_URL \
		AICHAT_MODEL AICHAT_CONFIG NO_COLOR \
		http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
	# Any other AICHAT_* setting of the user's, but not the binary under
	# test, nor AICHAT_WORKERS: the suite runs with serve's default workers
	# and again with AICHAT_WORKERS=1.
	for v in $(compgen -e AICHAT_); do
		[ "$v" = AICHAT_BIN ] || [ "$v" = AICHAT_WORKERS ] || unset "$v"
	done
}

# Writes the script lines (one JSONL line per argument) atomically, so the
# running fake never reads half a file.
_fake_write_script() {
	local file="$BATS_TEST_TMPDIR/fake.script"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" >"$file.tmp"
	else
		: >"$file.tmp"
	fi
	mv -f "$file.tmp" "$file"
}

# fake_start [LINE...]: starts the fake upstream with these script lines
# (none: every request gets the default answer) and waits up to ~5 s for
# it to listen.  Exports FAKE_PID, FAKE_PORT, FAKE_URL (http://127.0.0.1:PORT,
# no trailing slash) and FAKE_LOG.  The log starts empty.
fake_start() {
	local dir="$BATS_TEST_TMPDIR" i
	fake_stop
	_fake_write_script "$@"
	export FAKE_LOG="$dir/fake.log"
	rm -f "$FAKE_LOG" "$dir/fake.port"
	# fd 3 closed: bats waits for whoever holds it open.
	"$FAKE_UPSTREAM" --port-file "$dir/fake.port" --log "$FAKE_LOG" \
		--script "$dir/fake.script" </dev/null >"$dir/fake.stderr" 2>&1 3>&- &
	export FAKE_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$dir/fake.port" ] && break
		if ! kill -0 "$FAKE_PID" 2>/dev/null; then
			echo "fake_start: fake upstream exited:" >&2
			cat "$dir/fake.stderr" >&2
			unset FAKE_PID
			return 1
		fi
		sleep 0.05
	done
	if [ ! -s "$dir/fake.port" ]; then
		echo "fake_start: fake upstream did not start within 5 s" >&2
		fake_stop
		return 1
	fi
	export FAKE_PORT=$(<"$dir/fake.port")
	export FAKE_URL="http://127.0.0.1:$FAKE_PORT"
}

# fake_script LINE...: replaces the script of the running fake.  The next
# request reads it; its sequence starts again from its first line.
fake_script() {
	_fake_write_script "$@"
}

# fake_stop: stops the fake started by fake_start (by its PID) and waits for
# it to exit.  Does nothing when none is running.
fake_stop() {
	local pid=${FAKE_PID:-} i
	[ -n "$pid" ] || return 0
	unset FAKE_PID
	kill "$pid" 2>/dev/null || return 0
	# wait works only for our own child; otherwise poll.
	wait "$pid" 2>/dev/null && return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	return 0
}

# fake_count: prints how many requests the fake has logged (0 without a log).
fake_count() {
	local log=${FAKE_LOG:-$BATS_TEST_TMPDIR/fake.log}
	if [ -f "$log" ]; then
		wc -l <"$log" | tr -d ' '
	else
		echo 0
	fi
}

# fake_wait_count N [SECONDS]: waits (default up to 5 s) until the fake has
# logged at least N requests; fails if it has not by then.
fake_wait_count() {
	local want=$1 tries=$((${2:-5} * 20))
	while [ "$(fake_count)" -lt "$want" ]; do
		((tries-- > 0)) || return 1
		sleep 0.05
	done
}

# Prints field PATH of log line N (see fake_field) or the whole line.
_fake_json() {
	python3 - "${FAKE_LOG:-$BATS_TEST_TMPDIR/fake.log}" "$@" <<'EOF'
import json, re, sys

log, n = sys.argv[1], int(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else None
try:
    with open(log, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l]
except FileNotFoundError:
    lines = []
try:
    line = lines[n - 1 if n > 0 else n]
except IndexError:
    sys.exit("fake: no request %d (%d logged)" % (n, len(lines)))
if path is None:
    print(line)
    sys.exit(0)
v = json.loads(line)
for key in re.findall(r"[^.\[\]]+", path):
    if isinstance(v, list) and re.fullmatch(r"-?\d+", key):
        i = int(key)
        if not -len(v) <= i < len(v):
            sys.exit(1)
        v = v[i]
    elif isinstance(v, dict) and key in v:
        v = v[key]
    else:
        sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":")))
EOF
}

# fake_req N [PATH]: prints the Nth logged request (1-based; -1 is the last)
# as its JSON line, or only field PATH of it like fake_field.
fake_req() {
	_fake_json "$@"
}

# fake_peak: the most requests the fake was answering at once (each log
# line carries "inflight", the requests open when it arrived, itself
# included); 0 without a log.
fake_peak() {
	python3 - "${FAKE_LOG:-$BATS_TEST_TMPDIR/fake.log}" <<'EOF'
import json, os, sys
peak = 0
if os.path.exists(sys.argv[1]):
    for line in open(sys.argv[1]):
        if line.strip():
            peak = max(peak, json.loads(line).get("inflight", 0))
print(peak)
EOF
}

# fake_field N PATH: prints one field of the Nth logged request.  PATH is
# dotted keys, numbers index arrays (negative from the end):
#   fake_field 1 body.model               gpt-4o-mini
#   fake_field 1 headers.authorization    Bearer sk-test
#   fake_field -1 body.messages.0.role    system   (also messages[0].role)
# Strings print unquoted, anything else as compact JSON; a missing field
# prints nothing and fails.  Keys: n conn inflight method path headers body.
fake_field() {
	_fake_json "$1" "$2"
}

# serve_start [ARGS...]: starts `aichat serve --port 0 ARGS` in the
# background, waits (up to ~5 s) for its "listening on" line and exports
# SERVE_PID, SERVE_URL and SERVE_LOG (its stderr: the request log).
serve_start() {
	local i line
	serve_stop
	export SERVE_LOG="$BATS_TEST_TMPDIR/serve.log"
	: >"$SERVE_LOG"
	"$AICHAT_BIN" serve --port 0 "$@" </dev/null >"$BATS_TEST_TMPDIR/serve.out" \
		2>"$SERVE_LOG" 3>&- &
	export SERVE_PID=$!
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$SERVE_LOG" 2>/dev/null) && break
		if ! kill -0 "$SERVE_PID" 2>/dev/null; then
			echo "serve_start: aichat serve exited:" >&2
			cat "$SERVE_LOG" >&2
			unset SERVE_PID
			return 1
		fi
		sleep 0.05
	done
	[ -n "$line" ] || { echo "serve_start: not listening after 5 s" >&2; serve_stop; return 1; }
	export SERVE_URL=${line#listening on }
}

# serve_stop: SIGTERM to the server started by serve_start, then waits
# (SIGKILL after ~5 s).  Sets SERVE_STATUS to its exit status.
serve_stop() {
	local pid=${SERVE_PID:-}
	[ -n "$pid" ] || return 0
	unset SERVE_PID
	stop_pid "$pid"
	SERVE_STATUS=$STOPPED_STATUS
}

# stop_pid PID: SIGTERM to a server this test started, then waits (SIGKILL
# after ~5 s).  Sets STOPPED_STATUS to its exit status.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	STOPPED_STATUS=0
	wait "$pid" 2>/dev/null || STOPPED_STATUS=$?
}

# redis_start [ARG...]: a redis-server of this test's own, without
# persistence, listening on the unix socket $REDIS_SOCK (default
# $BATS_TEST_TMPDIR/redis.sock; no TCP port unless ARG gives one, e.g.
# --port N --bind 127.0.0.1, as later arguments win), answering PING (or
# NOAUTH, with --requirepass) within 5 s.  Its PID in REDIS_PID, its log
# in $BATS_TEST_TMPDIR/redis.log.  Started again after redis_stop, it is
# empty.
redis_start() {
	local i
	: "${REDIS_SOCK:=$BATS_TEST_TMPDIR/redis.sock}"
	redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 \
		--save '' --appendonly no "$@" </dev/null \
		>>"$BATS_TEST_TMPDIR/redis.log" 2>&1 3>&- &
	REDIS_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$REDIS_SOCK" ] && rcli PING 2>/dev/null | grep -qE 'PONG|NOAUTH' &&
			return 0
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "redis_start: no PONG within 5 s" >&2
	cat "$BATS_TEST_TMPDIR/redis.log" >&2
	return 1
}

# redis_stop: stops the redis-server of redis_start by its PID (woken
# first if it was stopped with SIGSTOP).  Nothing when none runs.
redis_stop() {
	[ -n "${REDIS_PID:-}" ] || return 0
	kill -CONT "$REDIS_PID" 2>/dev/null || true
	stop_pid "$REDIS_PID"
	REDIS_PID=
}

# redis_kill: SIGKILL to it, the way a crashed Redis goes.
redis_kill() {
	kill -KILL "$REDIS_PID"
	wait "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=
	rm -f "$REDIS_SOCK"
}

# rcli ARG...: redis-cli on that Redis.
rcli() {
	redis-cli -s "${REDIS_SOCK:-$BATS_TEST_TMPDIR/redis.sock}" "$@"
}

# fake_peak_model MODEL: as fake_peak, for the requests whose body "model"
# is MODEL only (each such log line carries "inflight_model").
fake_peak_model() {
	python3 - "${FAKE_LOG:-$BATS_TEST_TMPDIR/fake.log}" "$1" <<'EOF'
import json, os, sys
peak = 0
if os.path.exists(sys.argv[1]):
    for line in open(sys.argv[1]):
        if line.strip():
            d = json.loads(line)
            if isinstance(d.get("body"), dict) and d["body"].get("model") == sys.argv[2]:
                peak = max(peak, d.get("inflight_model", 0))
print(peak)
EOF
}

# jq-like field of a JSON document on stdin: json_get PATH
json_get() {
	python3 -c '
import json, re, sys
v = json.load(sys.stdin)
for k in re.findall(r"[^.\[\]]+", sys.argv[1]):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":")))
' "$1"
}

# with_openai_fake [LINE...]: fake_start, then the openai provider pointed
# at it with the file's $KEY.
with_openai_fake() {
	fake_start "$@"
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
}

# hdr NAME: a header of the last answer whose headers curl wrote to
# $BATS_TEST_TMPDIR/h (curl -D); status_line: that answer's status.
hdr() {
	grep -i "^$1:" "$BATS_TEST_TMPDIR/h" | head -1 | cut -d' ' -f2- | tr -d '\r'
}

status_line() {
	head -1 "$BATS_TEST_TMPDIR/h" | cut -d' ' -f2
}

# raw_http BYTES: sends BYTES (Python escapes allowed) to the server at
# SERVE_URL on one connection and prints all it answers until it closes, or "TIMEOUT" when
# it is still open after 3 s.
raw_http() {
	timeout 10 python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(3)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    out += b"TIMEOUT"
except ConnectionResetError:
    pass
sys.stdout.write(out.decode("latin-1"))
' "${SERVE_URL##*:}" "$1"
}

# schema_back_to_7 DB: turns an aichat database back into schema 7 (before
# the usage ledger, 8, rag languages, 9, the key of a job, 10, and its
# callback's state, 11), as an older aichat left it,
# so that a test can see the next open migrate it.  Anything stored in
# what 8 to 11 added is lost, as it would not exist.
schema_back_to_7() {
	python3 - "$1" <<-'PYEOF'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	for stmt in (
	    "DROP TRIGGER chunks_ai", "DROP TRIGGER chunks_ad", "DROP TRIGGER chunks_au",
	    "DROP TABLE chunks_en", "DROP TABLE chunks_plain",
	    "ALTER TABLE chunks DROP COLUMN head", "ALTER TABLE chunks DROP COLUMN fts",
	    "ALTER TABLE collections DROP COLUMN language",
	    "CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN"
	    "  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text); END",
	    "CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN"
	    "  INSERT INTO chunks_fts(chunks_fts, rowid, text)"
	    "  VALUES ('delete', old.id, old.text); END",
	    "DROP TABLE usage",
	    "ALTER TABLE jobs DROP COLUMN api_key",
	    "DROP INDEX jobs_callbacks",
	    "ALTER TABLE jobs DROP COLUMN callback_status",
	    "ALTER TABLE jobs DROP COLUMN callback_attempts",
	    "ALTER TABLE jobs DROP COLUMN callback_error",
	    "PRAGMA user_version = 7"):
	    db.execute(stmt)
	db.commit()
	PYEOF
}
