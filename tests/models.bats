#!/usr/bin/env bats
# aichat models: the merged list of the configured providers' models, the
# offline ones and the aliases, against the fake upstream on 127.0.0.1.
# Each test checks what the user sees and what the fake received.  The
# Ollama probe of localhost:11434 is off unless a test points it at the
# fake or at a closed port: no test reaches anything else.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef
AKEY=sk-ant-test-0123456789abcdef

# The mock models' lines, their second column at WIDTH + 2: the width of
# the longest id listed.
mock_at() {
	printf '%-*s  %s\n' "$1" mock:echo 'offline: answers with the prompt' \
		"$1" mock:embed 'offline: embeddings for rag'
}
MOCK=$(mock_at 10)

ANTHROPIC_LIST='{"body":{"data":[{"type":"model","id":"claude-sonnet-4-6","display_name":"Claude Sonnet 4.6","created_at":"2025-01-01T00:00:00Z"},{"type":"model","id":"claude-haiku-4-5","display_name":"Claude Haiku 4.5","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-6","last_id":"claude-haiku-4-5"}}'

setup() {
	aichat_env
	unset OLLAMA_HOST GROQ_API_KEY
	export AICHAT_OLLAMA_PROBE=off
}

teardown() {
	fake_stop
}

# point PROVIDER...: configures openai and/or anthropic, with their test
# keys, at the running fake.
point() {
	local p
	for p; do
		case $p in
		openai) export OPENAI_API_KEY=$KEY OPENAI_BASE_URL="$FAKE_URL/v1" ;;
		anthropic) export ANTHROPIC_API_KEY=$AKEY ANTHROPIC_BASE_URL="$FAKE_URL" ;;
		esac
	done
}

# A port on 127.0.0.1 where nothing listens (the fake's, once stopped).
closed_port() {
	fake_start
	CLOSED=$FAKE_PORT
	fake_stop
}

config() {
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '%s\n' "$1" >"$XDG_CONFIG_HOME/aichat/config.json"
}

# ---- offline ----

@test "nothing configured: the mock models, offline, exit 0" {
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "$MOCK" ]
	[ "$stderr" = "" ]
}

# ---- the dialects ----

@test "openai: GET {base}/models with the key; ids as openai:MODEL" {
	fake_start '{"models":["gpt-4o-mini","gpt-4o"]}'
	point openai
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "openai:gpt-4o
openai:gpt-4o-mini
$(mock_at 18)" ]
	[ "$stderr" = "" ]
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 method)" = GET ]
	[ "$(fake_field 1 path)" = /v1/models ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer $KEY" ]
	run fake_field 1 headers.x-api-key
	[ "$status" -ne 0 ]
}

@test "openai: a base URL without a key is asked without one" {
	fake_start '{"models":["local-model"]}'
	export OPENAI_BASE_URL="$FAKE_URL/v1/"
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = openai:local-model ]
	[ "$(fake_field 1 path)" = /v1/models ]
	run fake_field 1 headers.authorization
	[ "$status" -ne 0 ]
}

@test "anthropic: GET {base}/v1/models?limit=1000 with x-api-key and anthropic-version; display names" {
	fake_start "$ANTHROPIC_LIST"
	point anthropic
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "anthropic:claude-haiku-4-5   Claude Haiku 4.5
anthropic:claude-sonnet-4-6  Claude Sonnet 4.6
mock:echo                    offline: answers with the prompt
mock:embed                   offline: embeddings for rag" ]
	[ "$stderr" = "" ]
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 method)" = GET ]
	[ "$(fake_field 1 path)" = '/v1/models?limit=1000' ]
	[ "$(fake_field 1 headers.x-api-key)" = "$AKEY" ]
	[ "$(fake_field 1 headers.anthropic-version)" = 2023-06-01 ]
	run fake_field 1 headers.authorization
	[ "$status" -ne 0 ]
}

@test "every configured provider is asked at once, and the answers merged in one list" {
	# Each answer waits 3 s: both requests must arrive before either ends.
	fake_start '{"stall_ms":3000,"body":{"data":[{"id":"m1"}]}}'
	point openai anthropic
	aichat models >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! rc=0
	fake_wait_count 2 2 || rc=$?
	wait "$pid"
	[ "$rc" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/out")" = "openai:m1
anthropic:m1
$(mock_at 12)" ]
	[ ! -s "$BATS_TEST_TMPDIR/err" ]
}

# ---- aliases ----

@test "an alias of a model the provider lists: the model once, the alias once" {
	config '{"aliases":{"fast":"openai:gpt-4o-mini","quick":"fast","smart":"anthropic:claude-sonnet-4-6"}}'
	fake_start '{"models":["gpt-4o-mini","gpt-4o-mini","gpt-4o"]}'
	point openai
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$(grep -c '^openai:gpt-4o-mini' <<<"$output")" -eq 1 ]
	[ "$(grep -c '^fast ' <<<"$output")" -eq 1 ]
	[ "$output" = "openai:gpt-4o
openai:gpt-4o-mini
mock:echo           offline: answers with the prompt
mock:embed          offline: embeddings for rag
fast                -> openai:gpt-4o-mini (alias)
quick               -> fast (alias)
smart               -> anthropic:claude-sonnet-4-6 (alias)" ]
}

@test "an alias named like a listed model is listed as the alias, once" {
	config '{"aliases":{"openai:gpt-4o":"anthropic:claude-haiku-4-5"}}'
	fake_start '{"models":["gpt-4o","gpt-4o-mini"]}'
	point openai
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$(grep -c '^openai:gpt-4o ' <<<"$output")" -eq 1 ]
	[ "${lines[0]}" = openai:gpt-4o-mini ]
	[ "${lines[-1]}" = "openai:gpt-4o       -> anthropic:claude-haiku-4-5 (alias)" ]
}

# ---- failures ----

@test "a provider that cannot be reached is one stderr line; the others are listed, exit 0" {
	closed_port
	fake_start '{"models":["gpt-4o"]}'
	point openai
	export ANTHROPIC_API_KEY=$AKEY ANTHROPIC_BASE_URL="http://127.0.0.1:$CLOSED"
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "openai:gpt-4o
$(mock_at 13)" ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == "aichat: models: anthropic: cannot connect: "* ]]
	[ "$(fake_count)" -eq 1 ]
}

@test "401, an error page, not JSON, no data, a time limit: one line each; exit 4 when all failed" {
	local spec want
	fake_start
	point openai
	while IFS='|' read -r spec want; do
		fake_script "$spec"
		run --separate-stderr aichat models --timeout 0.5
		[ "$status" -eq 4 ] || { echo "$spec: status $status" >&2; false; }
		[ "$stderr" = "aichat: models: openai: $want" ] || { echo "$spec: '$stderr'" >&2; false; }
		# The offline models are still listed.
		[ "$output" = "$MOCK" ]
	done <<EOF
{"status":401,"body":"{\"error\":{\"message\":\"Incorrect API key provided: $KEY\"}}"}|authentication failed for provider openai (check OPENAI_API_KEY)
{"status":500}|returned HTTP 500: fake error
{"status":502,"content_type":"text/html","body":"<html><title>Bad Gateway</title></html>"}|returned HTTP 502: HTML error page: Bad Gateway
{"body":"<html>not a list</html>"}|malformed models list: not JSON
{"body":{"object":"list","data":{"id":"x"}}}|malformed models list: no "data" array
{"stall_ms":3000}|no response within 0.5 s
EOF
	# No retries: one request each.
	[ "$(fake_count)" -eq 6 ]
}

@test "ids with control characters are dropped and counted; display names are cleaned" {
	fake_start '{"body":{"data":[{"id":"good"},{"id":"bad\u001b[31m"},{"id":"c1\u009b31m"},{"id":"x","display_name":"Evil\u001b]0;pwned\u0007 name"},{"id":7}]}}'
	point anthropic
	run --separate-stderr aichat models anthropic
	[ "$status" -eq 0 ]
	[ "$output" = "anthropic:good
anthropic:x     Evil name" ]
	[ "$stderr" = "aichat: models: anthropic: 3 models left out (a malformed id, or past the first 1000)" ]
	[[ $output != *$'\e'* && $output != *$'\a'* ]]
}

@test "--json: models, aliases and errors in one object that parses" {
	closed_port
	config '{"aliases":{"fast":"openai:gpt-4o-mini"}}'
	fake_start '{"models":["gpt-4o-mini"]}'
	point openai
	export ANTHROPIC_API_KEY=$AKEY ANTHROPIC_BASE_URL="http://127.0.0.1:$CLOSED"
	run --separate-stderr aichat models --json
	[ "$status" -eq 0 ]
	python3 -c 'import json, sys; json.loads(sys.argv[1])' "$output"
	[ "$(json_get models <<<"$output")" = '[{"id":"openai:gpt-4o-mini","type":"model","provider":"openai","model":"gpt-4o-mini"},{"id":"mock:echo","type":"model","provider":"mock","model":"echo","name":"offline: answers with the prompt"},{"id":"mock:embed","type":"model","provider":"mock","model":"embed","name":"offline: embeddings for rag"},{"id":"fast","type":"alias","target":"openai:gpt-4o-mini"}]' ]
	[ "$(json_get errors.0.provider <<<"$output")" = anthropic ]
	[ "$(json_get errors.0.code <<<"$output")" = upstream_unreachable ]
	[[ $(json_get errors.0.message <<<"$output") == "cannot connect: "* ]]
	[ "$(json_get errors <<<"$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 1 ]
	[[ $stderr == "aichat: models: anthropic: cannot connect: "* ]]
}

# ---- PROVIDER ----

@test "PROVIDER lists that provider and the aliases leading to it, asking no other" {
	config '{"aliases":{"fast":"openai:gpt-4o-mini","smart":"anthropic:claude-sonnet-4-6","best":"smart"}}'
	fake_start "$ANTHROPIC_LIST"
	point anthropic openai
	run --separate-stderr aichat models anthropic
	[ "$status" -eq 0 ]
	[ "$output" = "anthropic:claude-haiku-4-5   Claude Haiku 4.5
anthropic:claude-sonnet-4-6  Claude Sonnet 4.6
best                         -> smart (alias)
smart                        -> anthropic:claude-sonnet-4-6 (alias)" ]
	[ "$(fake_count)" -eq 1 ]
	[ "$(fake_field 1 path)" = '/v1/models?limit=1000' ]
	run --separate-stderr aichat models mock
	[ "$status" -eq 0 ]
	[ "$output" = "$MOCK" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "PROVIDER that nothing configures: its missing key is reported, nothing sent, exit 4" {
	fake_start
	run --separate-stderr aichat models openai
	[ "$status" -eq 4 ]
	[ "$output" = "" ]
	[ "$stderr" = "aichat: models: openai: no API key: set OPENAI_API_KEY (or OPENAI_BASE_URL for a server that needs none)" ]
	[ "$(fake_count)" -eq 0 ]
}

@test "unknown PROVIDER, two of them or a bad --timeout: exit 2, nothing sent" {
	config '{"providers":{"groq":{"kind":"openai","base_url":"http://127.0.0.1:9/v1"}}}'
	fake_start
	point openai
	run --separate-stderr aichat models nope
	[ "$status" -eq 2 ]
	[ "$output" = "" ]
	[ "$stderr" = "aichat: models: unknown provider 'nope' (known: openai, anthropic, ollama, mock, groq)" ]
	run --separate-stderr aichat models openai anthropic
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: models: too many arguments: 'anthropic' (one PROVIDER at most; see 'aichat models --help')" ]
	run --separate-stderr aichat models --timeout 0
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: models: invalid value '0' for '--timeout': must be >= 0.001" ]
	run --separate-stderr aichat models --timeout 601
	[ "$status" -eq 2 ]
	[ "$stderr" = "aichat: models: invalid value '601' for '--timeout': must be <= 600" ]
	run --separate-stderr aichat models --frob
	[ "$status" -eq 2 ]
	[ "$(fake_count)" -eq 0 ]
	run --separate-stderr aichat models --timeout 600 mock
	[ "$status" -eq 0 ]
	[ "$output" = "$MOCK" ]
}

# ---- config providers and ollama ----

@test "config providers: one without api_key_env is asked without a key; one whose variable is unset is reported, not asked" {
	fake_start '{"models":["llama-3.1-8b"]}'
	config "{\"providers\":{\"local\":{\"kind\":\"openai\",\"base_url\":\"$FAKE_URL/v1\"},
	  \"groq\":{\"kind\":\"openai\",\"base_url\":\"$FAKE_URL/v1\",\"api_key_env\":\"GROQ_API_KEY\"}}}"
	run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "local:llama-3.1-8b
$(mock_at 18)" ]
	[ "$stderr" = "aichat: models: groq: no API key: set GROQ_API_KEY" ]
	[ "$(fake_count)" -eq 1 ]
	run fake_field 1 headers.authorization
	[ "$status" -ne 0 ]
	GROQ_API_KEY=gsk-test-0123456789 run --separate-stderr aichat models groq
	[ "$status" -eq 0 ]
	[ "$output" = groq:llama-3.1-8b ]
	[ "$(fake_field 2 headers.authorization)" = "Bearer gsk-test-0123456789" ]
}

@test "ollama: OLLAMA_HOST is asked at /v1/models; without it, a probe that finds nothing is silent" {
	closed_port
	fake_start '{"models":["llama3.2:latest"]}'
	OLLAMA_HOST=$FAKE_URL run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "ollama:llama3.2:latest
$(mock_at 22)" ]
	[ "$(fake_field 1 path)" = /v1/models ]
	run fake_field 1 headers.authorization
	[ "$status" -ne 0 ]
	# The probe: found, or refused and then no error at all.
	AICHAT_OLLAMA_PROBE=$FAKE_URL run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = ollama:llama3.2:latest ]
	AICHAT_OLLAMA_PROBE=http://127.0.0.1:$CLOSED run --separate-stderr aichat models
	[ "$status" -eq 0 ]
	[ "$output" = "$MOCK" ]
	[ "$stderr" = "" ]
	# Set or named, a refused connection is an error.
	OLLAMA_HOST=127.0.0.1:$CLOSED run --separate-stderr aichat models
	[ "$status" -eq 4 ]
	[[ $stderr == "aichat: models: ollama: cannot connect: "* ]]
	OLLAMA_HOST=127.0.0.1:$CLOSED run --separate-stderr aichat models ollama
	[ "$status" -eq 4 ]
	[[ $stderr == "aichat: models: ollama: cannot connect: "* ]]
	[ "$(fake_count)" -eq 2 ]
}

# ---- keys ----

@test "no key is printed anywhere, whatever the provider answers" {
	local body="{\"error\":{\"message\":\"bad keys: $KEY $AKEY\"}}"
	fake_start "{\"status\":403,\"body\":$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$body")}"
	point openai anthropic
	run --separate-stderr aichat models
	[ "$status" -eq 4 ]
	[[ $output$stderr != *"$KEY"* && $output$stderr != *"$AKEY"* ]]
	[[ $stderr == *"aichat: models: openai: authentication failed for provider openai (check OPENAI_API_KEY)"* ]]
	[[ $stderr == *"aichat: models: anthropic: authentication failed for provider anthropic (check ANTHROPIC_API_KEY)"* ]]
	run --separate-stderr aichat models --json
	[ "$status" -eq 4 ]
	[[ $output$stderr != *"$KEY"* && $output$stderr != *"$AKEY"* ]]
	[ "$(json_get errors.0.code <<<"$output")" = upstream_auth_failed ]
}

# ---- help and completion ----

@test "--help names PROVIDER and the options; bash completion offers the providers" {
	run --separate-stderr aichat models --help
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "usage: aichat models [options] [PROVIDER]" ]]
	run bash -c 'source "$1"; COMP_WORDS=(aichat models ""); COMP_CWORD=2
		_aichat; printf "%s\n" "${COMPREPLY[@]}"' _ "$AICHAT_ROOT/completions/aichat.bash"
	[ "$output" = "openai
anthropic
ollama
mock" ]
}
