#!/usr/bin/env bats
# aichat serve against a web page that tries to drive it: without API keys
# only loopback Host values (and --host, --allow-host) are answered (DNS
# rebinding), and a JSON route takes only application/json bodies (a form
# or text/plain POST needs no CORS preflight).  `curl -q` leaves out the
# test environment's ~/.curlrc, which sends application/json.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
}

teardown() {
	serve_stop
	fake_stop
}

# code_of ARGS...: the HTTP status of one curl request, its body in
# $BATS_TEST_TMPDIR/body
code_of() {
	curl -q -sS --max-time 10 -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$@"
}

chat='{"model":"openai:gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'

@test "no keys: loopback Host values are answered, with any port" {
	fake_start
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start
	local port=${SERVE_URL##*:} h
	for h in "localhost" "localhost:$port" "LOCALHOST:1" "127.0.0.1" "127.0.0.1:$port" "[::1]" "[::1]:$port"; do
		run code_of -H "Host: $h" "$SERVE_URL/health"
		echo "$h -> $output"
		[ "$output" = 200 ]
	done
	run code_of -H "Host: localhost:$port" -H 'Content-Type: application/json' \
		-d "$chat" "$SERVE_URL/v1/chat/completions"
	[ "$output" = 200 ]
}

@test "no keys: another Host is a JSON 403 naming it, on every route, and nothing goes upstream" {
	fake_start
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start
	run code_of -H "Host: evil.example:8000" "$SERVE_URL/health"
	[ "$output" = 403 ]
	[ "$(json_get error.code <"$BATS_TEST_TMPDIR/body")" = forbidden ]
	[ "$(json_get error.message <"$BATS_TEST_TMPDIR/body")" = "Host 'evil.example:8000' is not allowed: a server without API keys answers only to localhost, 127.0.0.1, [::1], its --host and each --allow-host" ]
	run code_of -H "Host: evil.example" -H 'Content-Type: application/json' -d "$chat" "$SERVE_URL/v1/chat/completions"
	[ "$output" = 403 ]
	[ "$(json_get error.code <"$BATS_TEST_TMPDIR/body")" = forbidden ]
	grep -q "evil.example" "$BATS_TEST_TMPDIR/body"
	# Near misses are refused too.
	for h in "localhost.evil.example" "127.0.0.1.evil.example" "localhost:80x" "[::1]x" "127.0.0.2"; do
		run code_of -H "Host: $h" "$SERVE_URL/health"
		echo "$h -> $output"
		[ "$output" = 403 ]
	done
	sleep 0.2
	[ "$(fake_count)" -eq 0 ]
	grep -q '"status":403,.*"error":"forbidden"' "$SERVE_LOG"
}

@test "--allow-host adds a Host, any port; the rest stay refused" {
	serve_start --allow-host aichat.internal --allow-host 10.1.2.3
	run code_of -H "Host: aichat.internal:8443" "$SERVE_URL/health"
	[ "$output" = 200 ]
	run code_of -H "Host: AIChat.Internal" "$SERVE_URL/health"
	[ "$output" = 200 ]
	run code_of -H "Host: 10.1.2.3" "$SERVE_URL/health"
	[ "$output" = 200 ]
	run code_of -H "Host: other.internal" "$SERVE_URL/health"
	[ "$output" = 403 ]
}

@test "--allow-host: a port or an empty value is a usage error" {
	run -2 aichat serve --allow-host aichat.internal:8000
	[ "$output" = "aichat: serve: invalid value 'aichat.internal:8000' for '--allow-host': must be a host name or address, without a port" ]
	run -2 aichat serve --allow-host ''
	[ "$output" = "aichat: serve: invalid value '' for '--allow-host': must be a host name or address, without a port" ]
}

@test "with API keys any Host is answered (the key is what is checked)" {
	serve_start --api-key sekrit
	run code_of -H "Host: anything.example" -H 'Authorization: Bearer sekrit' "$SERVE_URL/v1/models"
	[ "$output" = 200 ]
	run code_of -H "Host: anything.example" "$SERVE_URL/v1/models"
	[ "$output" = 401 ]
}

@test "JSON routes: text/plain, a form or no Content-Type is 415, nothing sent upstream" {
	fake_start
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start
	run code_of -H 'Content-Type: text/plain' -d "$chat" "$SERVE_URL/v1/chat/completions"
	[ "$output" = 415 ]
	[ "$(json_get error.code <"$BATS_TEST_TMPDIR/body")" = unsupported_media_type ]
	[ "$(json_get error.message <"$BATS_TEST_TMPDIR/body")" = "Content-Type must be application/json, not 'text/plain'" ]
	# curl -d's own type, a form
	run code_of -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}' "$SERVE_URL/chat"
	[ "$output" = 415 ]
	[ "$(json_get error.message <"$BATS_TEST_TMPDIR/body")" = "Content-Type must be application/json, not 'application/x-www-form-urlencoded'" ]
	run code_of -H 'Content-Type:' -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}' "$SERVE_URL/chat"
	[ "$output" = 415 ]
	[ "$(json_get error.message <"$BATS_TEST_TMPDIR/body")" = "Content-Type must be application/json (none was sent)" ]
	run code_of -H 'Content-Type: application/jsonx' -d "$chat" "$SERVE_URL/v1/chat/completions"
	[ "$output" = 415 ]
	run code_of -H 'Content-Type: multipart/form-data; boundary=x' -d "$chat" "$SERVE_URL/v1/messages"
	[ "$output" = 415 ]
	[ "$(json_get error.type <"$BATS_TEST_TMPDIR/body")" = invalid_request_error ]
	sleep 0.2
	[ "$(fake_count)" -eq 0 ]
}

@test "JSON routes: application/json with parameters, in any case, is accepted" {
	fake_start
	OPENAI_BASE_URL=$FAKE_URL/v1 OPENAI_API_KEY=sk-test serve_start
	run code_of -H 'Content-Type: application/json; charset=utf-8' -d "$chat" "$SERVE_URL/v1/chat/completions"
	[ "$output" = 200 ]
	run code_of -H 'Content-Type: Application/JSON' -d '{"prompt":"hi","model":"openai:gpt-4o-mini"}' "$SERVE_URL/chat"
	[ "$output" = 200 ]
	[ "$(fake_count)" -eq 2 ]
}
