#!/usr/bin/env bats
# Backpressure: a model that streams faster than its reader takes the
# answer.  Against a fake upstream that sends a long stream as fast as it
# can (and reports how much it managed to send), a client that stalls or
# reads slowly must hold the upstream back -- the server's memory stays
# bounded -- and still get every byte once it reads; a client that leaves
# while the upstream is held back cancels it.  The same for the CLI writing
# to a pipe nobody reads.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef
DELTA=4000             # bytes of text per streamed event
MB=1000000

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
	REPORT="$BATS_TEST_TMPDIR/sent"
	# Under AddressSanitizer (make asan), freed memory waits in a 256 MB
	# quarantine, which would count as the server's: keep it small (at 16 MB
	# the /rag/query and pipe tests passed their bounds by 2 and 7 MB).
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
}

teardown() {
	serve_stop
	fake_stop
}

# flood_spec FORMAT N: a script line that streams N events of $DELTA bytes
# of text each (OpenAI or Anthropic events), then ends the answer properly;
# the fake keeps the bytes it has sent in $REPORT.
flood_spec() {
	python3 - "$1" "$2" "$DELTA" "$REPORT" <<-'EOF'
	import json, sys
	fmt, n, size, report = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
	def sse(obj, event=None):
	    head = "event: %s\n" % event if event else ""
	    return head + "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"
	if fmt == "openai":
	    def chunk(delta, finish=None):
	        return sse({"id": "c1", "object": "chat.completion.chunk", "created": 1,
	                    "model": "gpt-4o-mini",
	                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
	    events = [chunk({"role": "assistant", "content": ""}), chunk({"content": "x" * size}),
	              chunk({}, "stop"), "data: [DONE]\n\n"]
	else:
	    events = [sse({"type": "message_start", "message": {"id": "msg_1", "type": "message",
	                   "role": "assistant", "model": "claude-haiku-4-5", "content": [],
	                   "stop_reason": None, "stop_sequence": None,
	                   "usage": {"input_tokens": 1, "output_tokens": 1}}}, "message_start"),
	              sse({"type": "content_block_start", "index": 0,
	                   "content_block": {"type": "text", "text": ""}}, "content_block_start"),
	              sse({"type": "content_block_delta", "index": 0,
	                   "delta": {"type": "text_delta", "text": "x" * size}}, "content_block_delta"),
	              sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
	              sse({"type": "message_delta", "delta": {"stop_reason": "end_turn",
	                   "stop_sequence": None}, "usage": {"output_tokens": n}}, "message_delta"),
	              sse({"type": "message_stop"}, "message_stop")]
	at = 1 if fmt == "openai" else 2
	print(json.dumps({"events": events, "repeat": n, "repeat_at": at, "report": report}))
	EOF
}

# flood_start FORMAT N: the fake upstream with that flood, and both
# providers pointed at it.
flood_start() {
	fake_start "$(flood_spec "$1" "$2")"
	export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1"
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
}

# The whole body the fake sends for the flood, once it has sent it all.
sent() {
	tr -d ' \n' <"$REPORT"
}

# client PATH BODY [ARGS...]: tests/slow_client.py against the server,
# watching its memory and the fake's report; its JSON summary in $output.
client() {
	local path=$1 body=$2
	shift 2
	run python3 "$AICHAT_ROOT/tests/slow_client.py" --port "${SERVE_URL##*:}" \
		--path "$path" --body "$body" --pid "$SERVE_PID" --report "$REPORT" \
		--rcvbuf 65536 "$@"
	[ "$status" -eq 0 ]
	echo "$output"
}

field() {
	echo "$output" | json_get "$1"
}

pauses() {
	curl -s "$SERVE_URL/metrics" | awk '$1 == "aichat_stream_pauses_total" { print $2 }'
}

# wait_log PATTERN: up to ~10 s for a line of the server's log.
wait_log() {
	local i
	for ((i = 0; i < 200; i++)); do
		grep -q "$1" "$SERVE_LOG" && return 0
		sleep 0.05
	done
	echo "not in the log: $1" >&2
	cat "$SERVE_LOG" >&2
	return 1
}

# ---- a stalled client ----

@test "a stalled /chat client holds a 100 MB upstream back; memory bounded; then the whole answer arrives" {
	flood_start openai 25000                       # 100 MB of text
	serve_start
	client /chat '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' --stall 5
	[ "$(field status)" = 200 ]
	# While the client read nothing for 5 s, the upstream was held back
	# (unthrottled, it sends all 100 MB in well under a second) and had
	# stopped: what it sent no longer grew at the end of the stall.
	sent_end=$(field sent_at_stall_end)
	sent_late=$(field sent_late_in_stall)
	echo "sent: $sent_late then $sent_end; rss $(field rss_start_kb) -> $(field rss_max_kb) kB"
	[ "$sent_end" -lt $((48 * MB)) ]
	[ $((sent_end - sent_late)) -lt $((4 * MB)) ]
	# The server's memory grew by less than 32 MB over the whole stream
	# (it keeps no copy of a streamed answer it does not log).
	[ $(($(field rss_max_kb) - $(field rss_start_kb))) -lt 32768 ]
	# Then every byte arrived, in order and framed.
	[ "$(field content)" -eq $((25000 * DELTA)) ]
	[ "$(field events)" -eq 25002 ]               # deltas, usage, [DONE]
	[ "$(field bad_events)" -eq 0 ]
	[ "$(field error_events)" -eq 0 ]
	[ "$(field last)" = "[DONE]" ]
	[ "$(sent)" -gt $((100 * MB)) ]
	[ "$(pauses)" -ge 1 ]
	wait_log '"path":"/chat","status":200'
	run ! grep -q '"error"' "$SERVE_LOG"
}

# route PATH FORMAT BODY: a 40 MB flood on that route, its client stalled
# for 3 s, then read to the end.
route_holds_back() {
	local path=$1 format=$2 body=$3
	flood_start "$format" 10000                    # 40 MB of text
	serve_start
	client "$path" "$body" --stall 3
	[ "$(field status)" = 200 ]
	echo "sent $(field sent_at_stall_end) during the stall; rss $(field rss_start_kb) -> $(field rss_max_kb) kB"
	[ "$(field sent_at_stall_end)" -lt $((20 * MB)) ]
	[ $(($(field rss_max_kb) - $(field rss_start_kb))) -lt 32768 ]
	[ "$(pauses)" -ge 1 ]
	[ "$(field content)" -eq $((10000 * DELTA)) ]
	[ "$(field bad_events)" -eq 0 ]
	[ "$(field error_events)" -eq 0 ]
	[ "$(field cut)" = false ]
}

@test "/conversation: a stalled client holds the upstream back, then gets it all" {
	route_holds_back /conversation openai \
		'{"messages":[{"role":"user","content":"x"}],"model":"openai:gpt-4o-mini"}'
	[ "$(field last)" = "[DONE]" ]
}

@test "/v1/chat/completions relayed as bytes: a stalled client holds the upstream back" {
	route_holds_back /v1/chat/completions openai \
		'{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}'
	[ "$(field last)" = "[DONE]" ]
}

@test "/v1/chat/completions translated from Anthropic: a stalled client holds the upstream back" {
	route_holds_back /v1/chat/completions anthropic \
		'{"model":"anthropic:claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"x"}]}'
	[ "$(field last)" = "[DONE]" ]
}

@test "/v1/messages relayed as bytes: a stalled client holds the upstream back" {
	route_holds_back /v1/messages anthropic \
		'{"model":"anthropic:claude-haiku-4-5","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}'
	[ "$(field last)" = '{"type":"message_stop"}' ]
}

@test "/v1/messages translated from OpenAI: a stalled client holds the upstream back" {
	route_holds_back /v1/messages openai \
		'{"model":"openai:gpt-4o-mini","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}'
	[[ "$(field last)" == *'"type":"message_stop"'* ]]
}

@test "/rag/query: a stalled client holds the upstream back" {
	export AICHAT_HOME="$BATS_TEST_TMPDIR/data"
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Bicycles\nA bicycle chain needs oil every month.\n' >"$BATS_TEST_TMPDIR/docs/bike.md"
	aichat rag index -c home "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	route_holds_back /rag/query openai \
		'{"query":"bicycle chain oil","collection":"home","model":"openai:gpt-4o-mini","stream":true}'
	[ "$(field last)" = "[DONE]" ]
}

# ---- a slow client ----

@test "a client reading 100 KB/s gets the whole stream intact across pauses" {
	flood_start openai 250                         # 1 MB of text
	serve_start
	client /v1/chat/completions \
		'{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}' \
		--rate 100000 --rcvbuf 16384
	[ "$(field status)" = 200 ]
	[ "$(field content)" -eq $((250 * DELTA)) ]
	[ "$(field events)" -eq 253 ]                 # role, deltas, finish, [DONE]
	[ "$(field bad_events)" -eq 0 ]
	[ "$(field last)" = "[DONE]" ]
	# The upstream was held back and let go again, more than once.
	[ "$(pauses)" -ge 2 ]
}

# ---- a client that leaves ----

@test "a client that leaves while its upstream is held back cancels it" {
	flood_start openai 25000
	serve_start
	client /chat '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' \
		--stall 2 --close-after-stall
	[ "$(pauses)" -ge 1 ]
	wait_log '"client_disconnected":true'
	grep -q '"path":"/chat",.*"error":"cancelled","client_disconnected":true' "$SERVE_LOG"
	# The upstream connection is closed and the fake gave up early.
	for i in $(seq 100); do
		[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ] && break
		sleep 0.05
	done
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ]
	[ "$(sent)" -lt $((48 * MB)) ]
	run curl -s "$SERVE_URL/health"
	[ "$status" -eq 0 ]
}

@test "a client that stalls for good is dropped after --client-timeout, its upstream cancelled" {
	flood_start openai 25000
	serve_start --client-timeout 2
	client /chat '{"prompt":"x","model":"openai:gpt-4o-mini","stream":true}' --stall 6
	[ "$(field cut)" = true ]
	[ "$(field last)" != "[DONE]" ]
	wait_log '"client_disconnected":true'
	grep -q '"path":"/chat",.*"error":"cancelled"' "$SERVE_LOG"
	[ "$(sent)" -lt $((48 * MB)) ]
}

# ---- the CLI ----

# held N KIB ROUTE MODEL [EVENTS]: N streams with prompts of KIB KiB each
# on ROUTE, held by the fake upstream (its answer stalls) until all N
# reached it, and with EVENTS until each client has had an event; prints
# the server's RSS growth over them, in KiB.
held() {
	local n=$1 kib=$2 route=$3 model=$4 events=${5:-} i before after
	python3 - "$kib" "$route" "$model" >"$BATS_TEST_TMPDIR/big.json" <<-'EOF'
	import json, sys
	kib, route, model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
	text = ("lorem ipsum dolor sit amet " * (kib * 1024 // 27 + 1))[:kib * 1024]
	body = {"model": model, "stream": True,
	        "messages": [{"role": "user", "content": text}]}
	if route == "/v1/messages":
	    body["max_tokens"] = 16
	print(json.dumps(body))
	EOF
	before=$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVE_PID/status")
	for ((i = 0; i < n; i++)); do
		curl -sN -o "$BATS_TEST_TMPDIR/held.$i" "$SERVE_URL$route" \
			-d @"$BATS_TEST_TMPDIR/big.json" &
	done
	for ((i = 0; i < 200; i++)); do
		if [ "$(fake_count)" -ge "$n" ] && { [ -z "$events" ] ||
			[ "$(grep -l '^data: ' "$BATS_TEST_TMPDIR"/held.* 2>/dev/null | wc -l)" -ge "$n" ]; }; then
			break
		fi
		sleep 0.05
	done
	[ "$(fake_count)" -ge "$n" ] || { echo "only $(fake_count) of $n reached the upstream" >&2; return 1; }
	sleep 0.3
	after=$(awk '/^VmRSS/ { print $2 }' "/proc/$SERVE_PID/status")
	echo $((after - before))
}

@test "40 streams held with prompts of 256 KiB: the server keeps each prompt once, not in six copies" {
	# Kept while the answer comes: the upstream's body (10 MiB in all).
	# The rest of the growth is what the 40 uploads at once left to the
	# allocator.  Before, the request's bytes, its tree, the messages read
	# from it and the transfer's copy of the body were kept too: 60 MiB.
	with_openai_fake '{"stall_ms":6000}'
	serve_start --workers 1
	grow=$(held 40 256 /v1/chat/completions openai:gpt-4o-mini)
	echo "RSS grew by $grow KiB for 40 x 256 KiB of prompt" >&2
	[ "$grow" -lt $((40 * 256 * 3)) ]
	# What reached the upstream is the prompt, whole.
	[ "$(fake_field 1 body.messages.0.content | wc -c)" -gt $((256 * 1024)) ]
}

@test "40 streams of prompts of 256 KiB held after their first event: the prompts are not kept" {
	# The first event reached the client: no attempt can follow, and the
	# body is all sent, so the upstream's body goes too.
	with_openai_fake '{"stall_at":2,"stall_ms":6000}'
	serve_start --workers 1
	grow=$(held 40 256 /v1/chat/completions openai:gpt-4o-mini events)
	echo "RSS grew by $grow KiB for 40 x 256 KiB of prompt" >&2
	[ "$(grep -l '^data: ' "$BATS_TEST_TMPDIR"/held.* | wc -l)" -eq 40 ]
	# Kept, they make 20 MB (the test above); gone, about 10 (the streams'
	# own memory, curl's upload buffers, the allocator's).
	[ "$grow" -lt $((40 * 256 * 3 / 2)) ]
}

@test "40 Anthropic streams held with prompts of 256 KiB on /v1/messages: each prompt kept once" {
	fake_start '{"stall_ms":6000}'
	export ANTHROPIC_API_KEY=$KEY ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start --workers 1
	grow=$(held 40 256 /v1/messages anthropic:claude-haiku-4-5)
	echo "RSS grew by $grow KiB for 40 x 256 KiB of prompt" >&2
	[ "$grow" -lt $((40 * 256 * 3)) ]
	[ "$(fake_field 1 path)" = /v1/messages ]
}

@test "chat to a pipe nobody reads holds the upstream back; the answer is whole; the log keeps 16 MiB and says so" {
	flood_start openai 25000
	mkfifo "$BATS_TEST_TMPDIR/pipe"
	# The binary itself, not the aichat function: $! is then its pid.
	"$AICHAT_BIN" chat -m openai:gpt-4o-mini x >"$BATS_TEST_TMPDIR/pipe" \
		2>"$BATS_TEST_TMPDIR/err" 3>&- &
	apid=$!
	run python3 - "$BATS_TEST_TMPDIR/pipe" "$apid" "$REPORT" <<-'EOF'
	import json, sys, time
	path, pid, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
	def rss():
	    try:
	        for line in open("/proc/%d/status" % pid):
	            if line.startswith("VmRSS:"):
	                return int(line.split()[1])
	    except OSError:
	        pass
	    return 0
	def sent():
	    try:
	        return int(open(report).read().strip() or 0)
	    except (OSError, ValueError):
	        return 0
	f = open(path, "rb")
	start, peak = rss(), 0
	for _ in range(40):                 # 4 s without reading
	    peak = max(peak, rss())
	    time.sleep(0.1)
	stalled = sent()
	n, x = 0, 0
	while True:
	    b = f.read(1 << 16)
	    if not b:
	        break
	    n += len(b)
	    x += b.count(b"x")
	    peak = max(peak, rss())
	print(json.dumps({"rss_start_kb": start, "rss_max_kb": peak,
	                  "sent_at_stall_end": stalled, "bytes": n, "x": x}))
	EOF
	[ "$status" -eq 0 ]
	echo "$output"
	wait "$apid"
	[ "$(field sent_at_stall_end)" -lt $((48 * MB)) ]
	[ "$(field x)" -eq $((25000 * DELTA)) ]
	[ "$(field bytes)" -eq $((25000 * DELTA + 1)) ]
	# 100 MB went through; the process never held much more than the
	# 16 MiB of it kept for the log.
	[ "$(field rss_start_kb)" -gt 0 ]
	[ "$(field rss_max_kb)" -lt 65536 ]
	grep -q "the answer is larger than 16 MiB: the conversation log keeps its first 16 MiB" "$BATS_TEST_TMPDIR/err"
}

@test "chat --json: an answer over 16 MiB is an error, not a cut answer" {
	flood_start openai 5000                        # 20 MB of text
	run --separate-stderr aichat chat --json -m openai:gpt-4o-mini x
	[ "$status" -eq 4 ]
	[ "${stderr_lines[0]}" = "aichat: chat: the answer is larger than 16 MiB, too large to keep whole" ]
	[ "$(echo "$output" | json_get error.code)" = upstream_protocol_error ]
}
