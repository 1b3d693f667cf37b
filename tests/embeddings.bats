#!/usr/bin/env bats
# POST /v1/embeddings: an OpenAI-compatible upstream gets the client's body
# field by field (the model its own id) with the provider's key, and its
# answer comes back byte for byte; upstream failures are OpenAI errors
# with the chat route's statuses; mock:embed answers offline with unit
# vectors in OpenAI's shape; a bad shape, a missing model or a model
# without an embeddings API is a 400 naming its param with nothing sent;
# the route is bounded like the other upstream routes (--max-body,
# --max-upstream) and a client that leaves cancels its upstream call.

bats_require_minimum_version 1.5.0
load helpers

KEY=sk-test-0123456789abcdef

setup() {
	aichat_env
	export AICHAT_RETRY_BASE=0.05
}

teardown() {
	serve_stop
	fake_stop
}

# embed JSON: the body of POST /v1/embeddings; the status in http_status.
embed() {
	printf '%s' "$1" >"$BATS_TEST_TMPDIR/req"
	curl -sS -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -D "$BATS_TEST_TMPDIR/h" \
		-H 'Content-Type: application/json' --data-binary "@$BATS_TEST_TMPDIR/req" \
		"$SERVE_URL/v1/embeddings" >"$BATS_TEST_TMPDIR/status"
	cat "$BATS_TEST_TMPDIR/body"
}

http_status() {
	cat "$BATS_TEST_TMPDIR/status"
}

@test "embeddings: every field reaches the upstream as written, the model its id, with the provider's key" {
	with_openai_fake '{}' '{}'
	serve_start
	body='{"model":"openai:text-embedding-3-small","input":["the first","the second"],"encoding_format":"float","dimensions":3,"user":"u-7","a_field_added_later":{"nested":[1,null,"x"]}}'
	run embed "$body"
	[ "$(http_status)" = 200 ] || { echo "$output"; return 1; }
	[ "$(fake_field 1 method)" = POST ]
	[ "$(fake_field 1 path)" = /v1/embeddings ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer $KEY" ]
	# The same members, in the same order; only the model differs.
	[ "$(fake_field 1 body)" = "$(sed 's/"openai:text-embedding-3-small"/"text-embedding-3-small"/' <<<"$body")" ]
	# Token ids are passed on as they are.
	run embed '{"model":"openai:text-embedding-3-small","input":[[1,2,3],[40000]]}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 2 body.input)" = '[[1,2,3],[40000]]' ]
	[ "$(fake_count)" -eq 2 ]
}

@test "embeddings: the upstream's answer comes back byte for byte" {
	# Odd spacing, number forms and members a re-encoding would change.
	answer='{"object":"list",  "data":[{"object":"embedding","index":0,"embedding":[1.50e-3,-0.0,2]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2},"x_extra":"é\u00e9"}'
	with_openai_fake "$(python3 -c 'import json,sys; print(json.dumps({"body": sys.argv[1]}))' "$answer")" '{}'
	serve_start
	run embed '{"model":"openai:text-embedding-3-small","input":"hello"}'
	[ "$(http_status)" = 200 ]
	[ "$output" = "$answer" ]
	grep -qi '^content-type: application/json' "$BATS_TEST_TMPDIR/h"
	# A generated answer: the same bytes the fake gives a direct caller.
	run embed '{"model":"openai:text-embedding-3-small","input":["a b","c"],"dimensions":5}'
	[ "$(http_status)" = 200 ]
	direct=$(curl -sS --data-binary '{"model":"text-embedding-3-small","input":["a b","c"],"dimensions":5}' \
		-H 'Content-Type: application/json' "$FAKE_URL/v1/embeddings")
	[ "$output" = "$direct" ]
}

@test "embeddings: ollama and a config provider of kind openai are OpenAI-compatible too" {
	fake_start '{}' '{}'
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	printf '{"providers":{"local":{"kind":"openai","base_url":"%s/custom/v1","api_key_env":"LOCAL_KEY"}}}\n' \
		"$FAKE_URL" >"$XDG_CONFIG_HOME/aichat/config.json"
	export LOCAL_KEY=lk-1 OLLAMA_HOST="$FAKE_URL"
	serve_start
	run embed '{"model":"local:embedder","input":"x"}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 1 path)" = /custom/v1/embeddings ]
	[ "$(fake_field 1 headers.authorization)" = "Bearer lk-1" ]
	[ "$(fake_field 1 body.model)" = embedder ]
	run embed '{"model":"ollama:nomic-embed-text","input":"x"}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_field 2 path)" = /v1/embeddings ]
	[ "$(fake_field 2 body.model)" = nomic-embed-text ]
	run ! fake_field 2 headers.authorization
}

@test "embeddings: upstream failures are OpenAI errors with the chat route's statuses; keys never shown" {
	with_openai_fake '{"status":401,"body":"{\"error\":{\"message\":\"bad key sk-test-0123456789abcdef\"}}"}'
	serve_start --retries 0 --timeout 1
	body='{"model":"openai:text-embedding-3-small","input":"x"}'
	run embed "$body"
	[ "$(http_status)" = 502 ]
	[ "$(printf '%s' "$output" | json_get error.code)" = upstream_auth_failed ]
	[ "$(printf '%s' "$output" | json_get error.type)" = api_error ]
	[[ "$output" != *"$KEY"* ]]
	fake_script '{"status":400,"body":"{\"error\":{\"message\":\"input too long\"}}"}'
	run embed "$body"
	[ "$(http_status)" = 502 ]
	[ "$(printf '%s' "$output" | json_get error.code)" = upstream_error ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"HTTP 400: input too long" ]]
	fake_script '{"status":429,"body":"{\"error\":{\"message\":\"slow down\"}}"}'
	run embed "$body"
	[ "$(http_status)" = 429 ]
	[ "$(printf '%s' "$output" | json_get error.type)" = rate_limit_error ]
	fake_script '{"stall_ms":5000}'
	run embed "$body"
	[ "$(http_status)" = 504 ]
	[ "$(printf '%s' "$output" | json_get error.code)" = upstream_timeout ]
	[[ "$(cat "$SERVE_LOG")" != *"$KEY"* ]]
}

@test "embeddings: a transient failure is retried, then the answer comes back" {
	with_openai_fake '{"status":503}' '{"status":500}' '{}'
	serve_start --retries 2
	run embed '{"model":"openai:text-embedding-3-small","input":"x"}'
	[ "$(http_status)" = 200 ]
	[ "$(fake_count)" -eq 3 ]
	[ "$(printf '%s' "$output" | json_get data.0.index)" = 0 ]
}

@test "embeddings: mock:embed answers offline: 64 unit numbers per input, indexed in order" {
	serve_start
	run embed '{"model":"mock:embed","input":["the cat sat","the cat sat","stock prices fell"]}'
	[ "$(http_status)" = 200 ]
	python3 - "$output" <<'EOF'
import json, math, sys
d = json.loads(sys.argv[1])
assert d["object"] == "list" and d["model"] == "mock:embed", d
assert [e["index"] for e in d["data"]] == [0, 1, 2], d["data"]
assert all(e["object"] == "embedding" for e in d["data"])
v = [e["embedding"] for e in d["data"]]
assert all(len(x) == 64 for x in v), [len(x) for x in v]
assert all(abs(math.sqrt(sum(a * a for a in x)) - 1) < 1e-6 for x in v)
assert v[0] == v[1] and v[0] != v[2]
assert d["usage"] == {"prompt_tokens": 9, "total_tokens": 9}, d["usage"]
EOF
	# One string is one embedding.
	run embed '{"model":"mock:embed","input":"the cat sat"}'
	[ "$(printf '%s' "$output" | json_get data.0.index)" = 0 ]
	[ "$(printf '%s' "$output" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')" = 1 ]
}

@test "embeddings: mock:embed takes dimensions and encoding_format base64 as OpenAI does" {
	serve_start
	run embed '{"model":"mock:embed","input":["the cat sat"]}'
	full=$output
	run embed '{"model":"mock:embed","input":["the cat sat"],"encoding_format":"base64"}'
	[ "$(http_status)" = 200 ]
	python3 - "$full" "$output" <<'EOF'
import base64, json, struct, sys
f = json.loads(sys.argv[1])["data"][0]["embedding"]
b = json.loads(sys.argv[2])["data"][0]["embedding"]
got = list(struct.unpack("<64f", base64.b64decode(b)))
assert all(abs(x - y) < 1e-8 for x, y in zip(f, got)), (f, got)
EOF
	run embed '{"model":"mock:embed","input":["the cat sat","a dog"],"dimensions":8}'
	[ "$(http_status)" = 200 ]
	python3 - "$output" <<'EOF'
import json, math, sys
for e in json.loads(sys.argv[1])["data"]:
    x = e["embedding"]
    assert len(x) == 8 and abs(math.sqrt(sum(a * a for a in x)) - 1) < 1e-6, x
EOF
	run embed '{"model":"mock:embed","input":"x","dimensions":65}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = dimensions ]
	run embed '{"model":"mock:embed","input":[1,2,3]}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = input ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"mock:embed embeds text only"* ]]
}

@test "embeddings: bad shapes are 400s naming the param, and nothing is sent upstream" {
	with_openai_fake '{}'
	serve_start
	check() {
		run embed "$1"
		[ "$(http_status)" = 400 ] || { echo "status $(http_status) for $1: $output"; return 1; }
		[ "$(printf '%s' "$output" | json_get error.type)" = invalid_request_error ]
		p=$(printf '%s' "$output" | json_get error.param)
		[ "$p" = "$2" ] || { echo "param '$p', want '$2' for $1"; return 1; }
	}
	m='"model":"openai:text-embedding-3-small"'
	check '{"input":"x"}' model
	check '{"model":5,"input":"x"}' model
	check "{$m}" input
	check "{$m,\"input\":5}" input
	check "{$m,\"input\":\"\"}" input
	check "{$m,\"input\":[]}" input
	check "{$m,\"input\":[\"a\",\"\"]}" 'input[1]'
	check "{$m,\"input\":[\"a\",7]}" 'input[1]'
	check "{$m,\"input\":[[1,2],\"a\"]}" 'input[1]'
	check "{$m,\"input\":[[1,2],[]]}" 'input[1]'
	check "{$m,\"input\":[[1,-2]]}" 'input[0]'
	check "{$m,\"input\":[1,2.5]}" input
	check "{$m,\"input\":[{\"text\":\"a\"}]}" 'input[0]'
	check "{$m,\"input\":\"x\",\"encoding_format\":\"hex\"}" encoding_format
	check "{$m,\"input\":\"x\",\"dimensions\":0}" dimensions
	check "{$m,\"input\":\"x\",\"dimensions\":1.5}" dimensions
	check "{$m,\"input\":\"x\",\"user\":5}" user
	many=$(python3 -c 'import json; print(json.dumps({"model":"openai:text-embedding-3-small","input":["w"]*2049}))')
	check "$many" input
	run embed '{"model":'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = null ]
	[ "$(fake_count)" -eq 0 ]
	# The longest input list passes.
	run embed "$(python3 -c 'import json; print(json.dumps({"model":"openai:text-embedding-3-small","input":["w"]*2048}))')"
	[ "$(http_status)" = 200 ]
	[ "$(fake_count)" -eq 1 ]
}

@test "embeddings: a model with no embeddings API is a 400 on model; -m is not used; nothing sent" {
	with_openai_fake '{}'
	export ANTHROPIC_API_KEY=sk-ant-test ANTHROPIC_BASE_URL="$FAKE_URL"
	serve_start -m openai:gpt-4o-mini
	for model in anthropic:claude-haiku-4-5 mock:echo; do
		run embed "{\"model\":\"$model\",\"input\":\"x\"}"
		[ "$(http_status)" = 400 ]
		[ "$(printf '%s' "$output" | json_get error.param)" = model ]
	done
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"unknown mock embedding model 'mock:echo'"* ]]
	run embed '{"model":"anthropic:claude-haiku-4-5","input":"x"}'
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"'anthropic:claude-haiku-4-5' has no embeddings API"* ]]
	# Without its key, it is still the API that is missing.
	unset ANTHROPIC_API_KEY
	serve_start
	run embed '{"model":"anthropic:claude-haiku-4-5","input":"x"}'
	[ "$(http_status)" = 400 ]
	[[ "$(printf '%s' "$output" | json_get error.message)" == *"has no embeddings API"* ]]
	run embed '{"model":"nope:x","input":"x"}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = model ]
	# The server's -m names a chat model: a request without one is refused.
	serve_start -m openai:gpt-4o-mini
	run embed '{"input":"x"}'
	[ "$(http_status)" = 400 ]
	[ "$(printf '%s' "$output" | json_get error.param)" = model ]
	[ "$(fake_count)" -eq 0 ]
}

@test "embeddings: --max-body bounds the body; --max-upstream gates the call" {
	with_openai_fake '{"stall_ms":1500}'
	serve_start --max-body 100 --max-upstream 1 --max-queue 0
	run embed "{\"model\":\"openai:text-embedding-3-small\",\"input\":\"$(head -c 100 /dev/zero | tr '\0' w)\"}"
	[ "$(http_status)" = 413 ]
	[ "$(printf '%s' "$output" | json_get error.code)" = payload_too_large ]
	curl -s "$SERVE_URL/v1/embeddings" -d '{"model":"openai:text-embedding-3-small","input":"x"}' >/dev/null &
	first=$!
	fake_wait_count 1
	run embed '{"model":"mock:embed","input":"y"}'
	[ "$(http_status)" = 503 ]
	grep -qi '^retry-after: 1' "$BATS_TEST_TMPDIR/h"
	wait "$first"
	[ "$(fake_count)" -eq 1 ]
}

@test "embeddings: a client that leaves cancels the upstream call (499, connection closed)" {
	with_openai_fake '{"stall_ms":3000}'
	serve_start
	curl -s --max-time 0.5 "$SERVE_URL/v1/embeddings" \
		-d '{"model":"openai:text-embedding-3-small","input":"x"}' >/dev/null || true
	for i in $(seq 40); do
		grep -q '"status":499' "$SERVE_LOG" && break
		sleep 0.05
	done
	grep -q '"path":"/v1/embeddings","status":499,.*"model":"openai:text-embedding-3-small".*"error":"cancelled","client_disconnected":true' "$SERVE_LOG"
	[ "$(ss -Htn state established "( dport = :$FAKE_PORT )" | wc -l)" -eq 0 ]
	[ "$(fake_count)" -eq 1 ]
}

@test "embeddings: /openapi.json documents the route, its body and its answer" {
	serve_start
	run curl -sS "$SERVE_URL/openapi.json"
	python3 - "$output" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
op = d["paths"]["/v1/embeddings"]["post"]
ref = lambda r: r["$ref"].rsplit("/", 1)[1]
assert ref(op["requestBody"]["content"]["application/json"]["schema"]) == "EmbeddingsRequest"
assert ref(op["responses"]["200"]["content"]["application/json"]["schema"]) == "EmbeddingList"
assert ref(op["responses"]["400"]["content"]["application/json"]["schema"]) == "OpenAIErrorResponse"
s = d["components"]["schemas"]
assert s["EmbeddingsRequest"]["required"] == ["model", "input"]
assert s["EmbeddingsRequest"]["properties"]["encoding_format"]["enum"] == ["float", "base64"]
assert s["EmbeddingsRequest"]["properties"]["input"]["type"] == ["string", "array"]
assert ref(s["EmbeddingList"]["properties"]["data"]["items"]) == "Embedding"
EOF
}
