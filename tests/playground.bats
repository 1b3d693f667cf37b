#!/usr/bin/env bats
# The playground at GET /: the page, its script and stylesheet with their
# Content-Security-Policy, then the page in Debian's chromium driven by
# puppeteer-core (tests/browser/playground.mjs): an answer streamed token
# by token, Stop, a reload, RAG with sources, markup from a model shown
# as text, the API key prompt, a 360 px screen in dark mode.
#
# puppeteer-core is installed from the npm registry by setup_file into
# build/browser (once; reused by later runs); it never downloads a
# browser: it drives /usr/bin/chromium (tools/deps.sh installs it).  A
# missing node, npm or chromium fails the tests, naming what is missing.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	local missing=""
	command -v node >/dev/null || missing="$missing node"
	command -v npm >/dev/null || missing="$missing npm"
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing="$missing chromium (${CHROMIUM:-/usr/bin/chromium})"
	if [ -n "$missing" ]; then
		echo "playground: missing:$missing; install them with tools/deps.sh" >&2
		return 1
	fi
	BROWSER_DIR="$AICHAT_ROOT/build/browser"
	if [ ! -f "$BROWSER_DIR/node_modules/puppeteer-core/package.json" ]; then
		mkdir -p "$BROWSER_DIR"
		(cd "$BROWSER_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit \
			--no-fund --silent --prefix "$BROWSER_DIR" puppeteer-core@24 >/dev/null 2>&1) ||
			{ echo "playground: npm install puppeteer-core failed" >&2; return 1; }
	fi
	cp "$BATS_TEST_DIRNAME/browser/playground.mjs" "$BROWSER_DIR/"
	export BROWSER_DIR
}

setup() {
	aichat_env
	# mock:echo sends one word every 100 ms: slow enough to watch, and
	# to stop part way.
	export AICHAT_MOCK_DELAY_MS=100
	OUT_DIR="$BATS_TEST_TMPDIR"
}

teardown() {
	serve_stop
}

# browse SCENARIO [ARGS...]: runs the scenario against $SERVE_URL.
browse() {
	node "$BROWSER_DIR/playground.mjs" "$1" "$SERVE_URL" "$OUT_DIR" "${@:2}"
}

@test "playground: GET / is one page with its script and stylesheet, a strict CSP, nothing from outside" {
	serve_start
	local csp total=0 f
	run curl -sS -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/index.html" "$SERVE_URL/"
	[ "$status" -eq 0 ]
	grep -qi '^content-type: text/html' "$BATS_TEST_TMPDIR/h"
	csp=$(grep -i '^content-security-policy:' "$BATS_TEST_TMPDIR/h" | tr -d '\r')
	[[ "$csp" == *"default-src 'none'"* ]]
	[[ "$csp" == *"script-src 'self';"* ]]
	[[ "$csp" == *"style-src 'self';"* ]]
	[[ "$csp" == *"connect-src 'self';"* ]]
	[[ "$csp" != *unsafe-inline* ]]
	[[ "$csp" != *unsafe-eval* ]]
	grep -qi '^x-content-type-options: nosniff' "$BATS_TEST_TMPDIR/h"
	grep -q '<script src="/playground.js"' "$BATS_TEST_TMPDIR/index.html"
	grep -q '<link rel="stylesheet" href="/playground.css"' "$BATS_TEST_TMPDIR/index.html"
	# No inline script or style for the CSP to block.
	run grep -cE '<script>|<style|style=|onclick=|onload=' "$BATS_TEST_TMPDIR/index.html"
	[ "$output" -eq 0 ]
	for f in playground.js:text/javascript playground.css:text/css; do
		curl -sS -D "$BATS_TEST_TMPDIR/h" -o "$BATS_TEST_TMPDIR/${f%%:*}" "$SERVE_URL/${f%%:*}"
		grep -qi "^content-type: ${f#*:}" "$BATS_TEST_TMPDIR/h"
		grep -qi '^x-content-type-options: nosniff' "$BATS_TEST_TMPDIR/h"
	done
	# Nothing loaded from another origin: no URL but this server's.
	run grep -nE '(src|href)="(https?:)?//|@import|url\(|fetch\(.(https?:)?//' \
		"$BATS_TEST_TMPDIR/index.html" "$BATS_TEST_TMPDIR/playground.js" \
		"$BATS_TEST_TMPDIR/playground.css"
	[ "$status" -eq 1 ]
	for f in index.html playground.js playground.css; do
		total=$((total + $(wc -c <"$BATS_TEST_TMPDIR/$f")))
	done
	echo "playground: $total bytes"
	[ "$total" -le 102400 ]
	# The page is open without a key (it asks for one); the API is not.
	serve_stop
	serve_start --api-key k1
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/playground.js")" = 200 ]
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$SERVE_URL/rag/collections")" = 401 ]
}

@test "GET /rag/collections lists the collections with their counts, off the loop" {
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Kettles\nThe kettle boils water.\n' >"$BATS_TEST_TMPDIR/docs/k.md"
	printf '# Bikes\nOil the chain.\n' >"$BATS_TEST_TMPDIR/docs/b.md"
	aichat rag index -c home "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	aichat rag index -c alpha "$BATS_TEST_TMPDIR/docs/k.md" >/dev/null 2>&1
	serve_start
	run curl -sS "$SERVE_URL/rag/collections"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | json_get collections.0.name)" = alpha ]
	[ "$(echo "$output" | json_get collections.0.documents)" = 1 ]
	[ "$(echo "$output" | json_get collections.1.name)" = home ]
	[ "$(echo "$output" | json_get collections.1.documents)" = 2 ]
	[ "$(echo "$output" | json_get collections.1.chunks)" = 2 ]
	[ "$(echo "$output" | json_get collections.1.embed_model)" = null ]
	# It is in the OpenAPI document, with its schema.
	run curl -sS "$SERVE_URL/openapi.json"
	[ "$(echo "$output" | json_get 'paths./rag/collections.get.responses.200.content.application/json.schema.$ref')" = \
		'#/components/schemas/RAGCollections' ]
	# The listing waits for the searcher's thread, not the loop: a slow
	# search does not stop /health from answering meanwhile.
	serve_stop
	AICHAT_SEARCH_DELAY_MS=1500 serve_start
	curl -sS -o "$BATS_TEST_TMPDIR/list" "$SERVE_URL/rag/collections" &
	local pid=$! t0 t1
	sleep 0.3
	t0=$(date +%s%N)
	[ "$(curl -s "$SERVE_URL/health")" = '{"status":"ok"}' ]
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -lt 1000 ]
	wait "$pid"
	[ "$(json_get collections.1.name <"$BATS_TEST_TMPDIR/list")" = home ]
}

@test "playground: an answer streams token by token, Stop cancels it, the conversation survives a reload" {
	# A price for mock:echo, so that the answer shows what it cost:
	# $1000 per million prompt tokens, $2000 per million completion tokens.
	mkdir -p "$XDG_CONFIG_HOME/aichat"
	echo '{"prices": {"mock:echo": {"input": 1000, "output": 2000}}}' \
		>"$XDG_CONFIG_HOME/aichat/config.json"
	serve_start
	run browse stream
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok: no dialog, page error or console error"* ]]
	[ -s "$OUT_DIR/playground.png" ]
	mkdir -p "$AICHAT_ROOT/build"
	cp "$OUT_DIR/playground.png" "$AICHAT_ROOT/build/playground.png"
	# The server saw the client leave and cancelled the upstream call.
	grep '"path":"/v1/chat/completions"' "$SERVE_LOG" | grep '"error":"cancelled"' |
		grep -q '"client_disconnected":true'
}

@test "playground: RAG mode lists the collections and shows numbered sources" {
	mkdir -p "$BATS_TEST_TMPDIR/docs"
	printf '# Kettles\nThe kettle boils water for tea in three minutes.\n' >"$BATS_TEST_TMPDIR/docs/kettle.md"
	printf '# Bicycles\nA bicycle chain needs oil every month.\n' >"$BATS_TEST_TMPDIR/docs/bike.md"
	aichat rag index -c home "$BATS_TEST_TMPDIR/docs" >/dev/null 2>&1
	serve_start
	run browse rag home "how long does the kettle take" kettle.md
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok: source 1 is "*kettle.md* ]]
	[[ "$output" == *"ok: no dialog, page error or console error"* ]]
}

@test "playground: model output with HTML shows as text and runs nothing" {
	serve_start
	run browse xss
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok: the script tag shows as text"* ]]
	[[ "$output" == *"ok: no dialog, page error or console error"* ]]
}

@test "playground: a server with keys gets one asked for once, kept for the tab" {
	serve_start --api-key k1-secret
	run browse key k1-secret
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok: the answer comes with the key"* ]]
	[[ "$output" == *"ok: and not in localStorage"* ]]
}

@test "playground: usable 360 px wide, and dark in dark mode" {
	serve_start
	run browse layout
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"ok: nothing is wider than 360 px"* ]]
	[[ "$output" == *"ok: dark mode is darker"* ]]
}
