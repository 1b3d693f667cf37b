#!/usr/bin/env bats
# tests/deploy.bats - the deployment of aichat-serve(1) ("DEPLOYMENT"),
# checked with the real thing: Debian's nginx, configured from
# contrib/nginx-aichat.conf, in front of three `aichat serve` replicas
# that share one redis-server and run with the options of
# contrib/aichat-serve@.service's ExecStart; and that unit as
# systemd-analyze sees it.
#
# Everything is started here and stopped by PID: redis-server on a unix
# socket in the test's temp dir (no TCP port), the replicas and the fake
# upstream on free loopback ports, nginx in the foreground (daemon off)
# with -p a prefix in the temp dir, its own pid file and logs, never the
# system's nginx service.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home/aichat"
	REPLICA_PIDS=()
	REPLICA_WRAP=()
	REDIS_PID=
	NG_PID=
	REDIS_SOCK="$BATS_TEST_TMPDIR/redis.sock"
	NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
}

teardown() {
	local p
	nginx_stop
	for p in "${REPLICA_PIDS[@]}"; do
		stop_pid "$p"
	done
	redis_stop
	fake_stop
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# unit_args: the options of contrib/aichat-serve@.service's ExecStart,
# its port (%i) 0 and without $AICHAT_SERVE_OPTS, one a line.
unit_args() {
	sed -n 's/^ExecStart=[^ ]* serve //p' "$AICHAT_ROOT/contrib/aichat-serve@.service" |
		tr ' ' '\n' | sed -e 's/^%i$/0/' -e '/^\$AICHAT_SERVE_OPTS$/d'
}

# replica_start N [ARG...]: replica N (1..3) with the unit's options (none
# with NO_UNIT_ARGS=1), on a free port, its port in PORTn, its stderr (the
# request log) in $BATS_TEST_TMPDIR/rN.log.
replica_start() {
	local n=$1 log="$BATS_TEST_TMPDIR/r$1.log" line i pid args=()
	shift
	if [ "${NO_UNIT_ARGS:-0}" = 1 ]; then
		args=(--port 0)
	else
		mapfile -t args < <(unit_args)
		[ "${#args[@]}" -ge 4 ]
	fi
	"${REPLICA_WRAP[@]}" "$AICHAT_BIN" serve "${args[@]}" --redis "unix://$REDIS_SOCK" \
		"$@" </dev/null >/dev/null 2>"$log" 3>&- &
	pid=$!
	REPLICA_PIDS+=("$pid")
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$log" 2>/dev/null) && break
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.05
	done
	[ -n "$line" ] || { echo "replica_start: not listening" >&2; return 1; }
	printf -v "PORT$n" '%s' "${line##*:}"
}

# nginx_start: nginx from contrib/nginx-aichat.conf, the replicas' ports
# and a free port of its own put in, inside an http block that keeps
# its pid file, logs and temporary files in the prefix.  Sets NG (its
# URL) and NG_PID.
nginx_start() {
	local p="$BATS_TEST_TMPDIR/nginx" port i
	mkdir -p "$p/tmp"
	port=$(free_port)
	sed -e "s|127\.0\.0\.1:8001;|127.0.0.1:$PORT1;|" \
		-e "s|127\.0\.0\.1:8002;|127.0.0.1:$PORT2;|" \
		-e "s|127\.0\.0\.1:8003;|127.0.0.1:$PORT3;|" \
		-e "s|^\tlisten 80 default_server;|\tlisten 127.0.0.1:$port;|" \
		"$AICHAT_ROOT/contrib/nginx-aichat.conf" >"$p/aichat.conf"
	# Every substitution took (a changed file fails here, loudly).
	[ "$(grep -c -e "127.0.0.1:$PORT1;" -e "127.0.0.1:$PORT2;" \
		-e "127.0.0.1:$PORT3;" -e "listen 127.0.0.1:$port;" "$p/aichat.conf")" -eq 4 ]
	cat >"$p/nginx.conf" <<-EOF
	daemon off;
	worker_processes 1;
	pid $p/nginx.pid;
	error_log $p/error.log warn;
	events { worker_connections 512; }
	http {
		access_log $p/access.log;
		client_body_temp_path $p/tmp/client_body;
		proxy_temp_path $p/tmp/proxy;
		fastcgi_temp_path $p/tmp/fastcgi;
		uwsgi_temp_path $p/tmp/uwsgi;
		scgi_temp_path $p/tmp/scgi;
		include $p/aichat.conf;
	}
	EOF
	"$NGINX_BIN" -p "$p" -e "$p/error.log" -c "$p/nginx.conf" </dev/null \
		>"$p/stdout.log" 2>&1 3>&- &
	NG_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$p/nginx.pid" ] && ss -ltnH "sport = :$port" | grep -q . && break
		kill -0 "$NG_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! [ -s "$p/nginx.pid" ] || ! kill -0 "$NG_PID" 2>/dev/null; then
		cat "$p/error.log" "$p/stdout.log" >&2
		return 1
	fi
	NG="http://127.0.0.1:$port"
}

# nginx_stop: TERM to the master we started (it takes its worker along).
nginx_stop() {
	[ -n "$NG_PID" ] || return 0
	stop_pid "$NG_PID"
	NG_PID=
}

# deploy_start [ARG...]: Redis, the fake upstream, three replicas with
# ARGs, nginx in front.
deploy_start() {
	local n
	redis_start
	fake_start "${FAKE_LINES[@]}"
	export OPENAI_API_KEY=sk-test OPENAI_BASE_URL="$FAKE_URL/v1"
	for n in 1 2 3; do
		replica_start "$n" "$@"
	done
	nginx_start
}

# served N ID: 1 when replica N logged the request with X-Request-ID ID.
served() {
	grep -c "\"request_id\":\"$2\"" "$BATS_TEST_TMPDIR/r$1.log" || true
}

@test "deploy: through nginx, a key limited to 10/minute gets exactly 10 of 15 over three replicas; another key its own" {
	FAKE_LINES=()
	deploy_start --api-key k-one --api-key k-two --rate-limit 10/minute
	codes=""
	for i in $(seq 15); do
		# One new connection each (one curl each).
		codes+="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Request-ID: lim$i" \
			-H 'Authorization: Bearer k-one' "$NG/v1/models") "
	done
	[ "$codes" = "200 200 200 200 200 200 200 200 200 200 429 429 429 429 429 " ]
	# nginx spread them: every replica answered some.
	for n in 1 2 3; do
		c=$(grep -c '"request_id":"lim' "$BATS_TEST_TMPDIR/r$n.log")
		[ "$c" -ge 3 ]
	done
	# The limit keys on the key, not on nginx's address.
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k-two' "$NG/v1/models"
	[ "$output" = 200 ]
	run bash -c "redis-cli -s '$REDIS_SOCK' --scan --pattern 'aichat:rl:*' | sort"
	[ "$output" = $'aichat:rl:key:1\naichat:rl:key:2' ]
	# What nginx itself says of /metrics: scrape the replicas instead.
	run curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer k-two' "$NG/metrics"
	[ "$output" = 404 ]
	run curl -s -H 'Authorization: Bearer k-two' "127.0.0.1:$PORT2/metrics"
	[[ $output == *$'\naichat_redis_up 1\n'* ]]
}

@test "deploy: --trust-proxy: the limit keys on the client address nginx sends, not on nginx, whatever X-Forwarded-For the client sends" {
	FAKE_LINES=()
	# (The unit's options: --trust-proxy 127.0.0.1.)
	grep -q '^ExecStart=.* --trust-proxy 127.0.0.1 ' "$AICHAT_ROOT/contrib/aichat-serve@.service"
	deploy_start --rate-limit 4/minute
	# Two clients, from two loopback addresses: 4 each.  The first
	# claims other addresses in X-Forwarded-For: nginx adds the real one
	# last, and only that one counts.
	codes=""
	for xff in 192.0.2.1 '198.51.100.7, 127.0.0.3' '' 203.0.113.9 '127.0.0.3, 127.0.0.3'; do
		codes+="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
			${xff:+-H "X-Forwarded-For: $xff"} \
			"$NG/chat" -d '{"prompt":"hi","model":"mock:echo"}') "
	done
	[ "$codes" = "200 200 200 200 429 " ]
	codes=""
	for i in 1 2 3 4 5; do
		codes+="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.3 \
			"$NG/chat" -d '{"prompt":"hi","model":"mock:echo"}') "
	done
	[ "$codes" = "200 200 200 200 429 " ]
	run bash -c "redis-cli -s '$REDIS_SOCK' --scan --pattern 'aichat:rl:*' | sort"
	[ "$output" = $'aichat:rl:127.0.0.2\naichat:rl:127.0.0.3' ]
	# The request log names them too.
	run bash -c "cat '$BATS_TEST_TMPDIR'/r[123].log | grep -o '\"client\":\"[^\"]*\"' | sort | uniq -c"
	[ "$(echo $output)" = '5 "client":"127.0.0.2" 5 "client":"127.0.0.3"' ]
	# A peer that is not the proxy says what it likes: its own address counts.
	run curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.4 \
		-H 'X-Forwarded-For: 127.0.0.3' "127.0.0.1:$PORT1/chat" -d '{"prompt":"hi","model":"mock:echo"}'
	[ "$output" = 200 ]
	[ "$(rcli --scan --pattern 'aichat:rl:127.0.0.4')" = aichat:rl:127.0.0.4 ]
}

@test "deploy: --trust-proxy takes the last X-Forwarded-For item when it is an address, written as the server writes one" {
	FAKE_LINES=()
	NO_UNIT_ARGS=1 deploy_start --trust-proxy 127.0.0.1 --trust-proxy ::1
	# Straight to replica 1, from 127.0.0.1 (a proxy it trusts).
	for xff in '192.0.2.1, 192.0.2.2, 198.51.100.7' ' 192.0.2.1 ,  203.0.113.5 ' '2001:DB8:0::1' \
		'192.0.2.1, unknown' '192.0.2.1,' '198.51.100.7 203.0.113.5' '[2001:db8::1]' \
		'192.0.2.300' ''; do
		curl -s -o /dev/null -H "X-Forwarded-For: $xff" "127.0.0.1:$PORT1/health"
	done
	run grep -o '"client":"[^"]*"' "$BATS_TEST_TMPDIR/r1.log"
	[ "$(echo $output)" = '"client":"198.51.100.7" "client":"203.0.113.5" "client":"2001:db8::1" "client":"127.0.0.1" "client":"127.0.0.1" "client":"127.0.0.1" "client":"127.0.0.1" "client":"127.0.0.1" "client":"127.0.0.1"' ]
}

@test "deploy: without --trust-proxy every client behind nginx is nginx's address: one bucket, whatever X-Forwarded-For says" {
	FAKE_LINES=()
	NO_UNIT_ARGS=1 deploy_start --rate-limit 4/minute
	codes=""
	for xff in 192.0.2.1 192.0.2.2 198.51.100.7 192.0.2.1 203.0.113.9 198.51.100.8; do
		codes+="$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
			-H "X-Forwarded-For: $xff" "$NG/chat" -d '{"prompt":"hi","model":"mock:echo"}') "
	done
	[ "$codes" = "200 200 200 200 429 429 " ]
	[ "$(rcli --scan --pattern 'aichat:rl:*')" = "aichat:rl:127.0.0.1" ]
}

@test "deploy: --trust-proxy wants an address" {
	for bad in 10.0.0.0/8 localhost '' 127.0.0.1:8080 '[::1]'; do
		run -2 aichat serve --port 0 --trust-proxy "$bad"
		[ "$output" = "aichat: serve: invalid value '$bad' for '--trust-proxy': must be an IPv4 or IPv6 address" ]
	done
}

@test "deploy: an answer cached through nginx by one replica is a hit through nginx from another, the model called once" {
	FAKE_LINES=('{"deltas":["Paris"]}')
	deploy_start
	body='{"prompt":"capital of France?","model":"openai:gpt-4o-mini","temperature":0}'
	run curl -s -D "$BATS_TEST_TMPDIR/h" -H 'X-Request-ID: first' "$NG/chat" -d "$body"
	[ "$(json_get content <<<"$output")" = Paris ]
	first=$output
	[ "$(hdr X-Cache)" = "" ]
	for n in 1 2 3; do
		[ "$(served "$n" first)" = 1 ] && a=$n
	done
	[ -n "$a" ]
	# Ask again until another replica answers (least_conn goes round).
	other=
	for i in 1 2 3 4 5 6; do
		run curl -s -D "$BATS_TEST_TMPDIR/h" -H "X-Request-ID: again$i" "$NG/chat" -d "$body"
		[ "$output" = "$first" ]
		[ "$(hdr X-Cache)" = HIT ]
		for n in 1 2 3; do
			[ "$n" != "$a" ] && [ "$(served "$n" "again$i")" = 1 ] && other=$n
		done
		[ -n "$other" ] && break
	done
	[ -n "$other" ]
	[ "$(fake_count)" -eq 1 ]
}

@test "deploy: a stream through nginx arrives as it is made, not buffered to its end" {
	FAKE_LINES=('{"deltas":["one"," two"," three"," four"," five"],"delay_ms":300}')
	deploy_start
	# Seconds from the request to the first word's event, and to the end.
	run python3 - "$NG" <<-'EOF'
	import sys, time, urllib.request
	req = urllib.request.Request(sys.argv[1] + "/v1/chat/completions",
	    data=b'{"model":"openai:gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}',
	    headers={"Content-Type": "application/json"})
	t0 = time.monotonic()
	first = None
	text = ""
	with urllib.request.urlopen(req, timeout=10) as r:
	    for line in r:
	        if b'"content":"one"' in line and first is None:
	            first = time.monotonic() - t0
	        text += line.decode()
	end = time.monotonic() - t0
	print("%.2f %.2f %d" % (first, end, text.count("data: [DONE]")))
	EOF
	[ "$status" -eq 0 ]
	read -r first end ndone <<<"$output"
	echo "first word $first s, end $end s" >&3
	# Five deltas 0.3 s apart: the end comes after 1.2 s at least; the
	# first word more than 0.8 s before it.
	[ "$ndone" = 1 ]
	python3 -c "import sys; f, e = map(float, sys.argv[1:]); sys.exit(not (e >= 1.2 and e - f >= 0.8))" \
		"$first" "$end"
}

@test "deploy: a replica stopped (a restart under systemd): nginx sends every request to the other two" {
	FAKE_LINES=()
	deploy_start
	stop_pid "${REPLICA_PIDS[1]}"
	[ "$STOPPED_STATUS" -eq 0 ]
	codes=""
	for i in 1 2 3 4 5 6; do
		codes+="$(curl -s -o /dev/null -w '%{http_code}' -H "X-Request-ID: left$i" \
			"$NG/chat" -d '{"prompt":"hi","model":"mock:echo"}') "
	done
	[ "$codes" = "200 200 200 200 200 200 " ]
	[ "$(grep -c '"request_id":"left' "$BATS_TEST_TMPDIR/r2.log")" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR"/r1.log "$BATS_TEST_TMPDIR"/r3.log | grep -c '"request_id":"left')" -eq 6 ]
}

@test "deploy: a job posted through nginx runs on the replicas and completes, seen through nginx" {
	FAKE_LINES=('{"deltas":["ok"]}')
	AICHAT_JOB_POLL_MS=50 deploy_start
	items=$(python3 -c 'import json; print(json.dumps([{"id": "i%d" % i, "prompt": "p%d" % i} for i in range(30)]))')
	run curl -s -w '\n%{http_code}' "$NG/jobs" \
		-d "{\"model\":\"openai:gpt-4o-mini\",\"items\":$items}"
	[ "${lines[1]}" = 202 ]
	id=$(json_get id <<<"${lines[0]}")
	[[ $id =~ ^job_[0-9a-f]{16}$ ]]
	for ((i = 0; i < 200; i++)); do
		[ "$(curl -s "$NG/jobs/$id" | json_get status)" = "done" ] && break
		sleep 0.05
	done
	run curl -s "$NG/jobs/$id"
	[ "$(json_get status <<<"$output")" = "done" ]
	[ "$(json_get counts.succeeded <<<"$output")" = 30 ]
	run curl -s "$NG/jobs/$id/results"
	[ "${#lines[@]}" -eq 30 ]
	[ "$(json_get content <<<"${lines[29]}")" = ok ]
	[ "$(fake_count)" -eq 30 ]
}

@test "deploy: RAG collections built once and shipped read-only: every replica searches them; the ledger is not written, and says so" {
	command -v unshare >/dev/null
	# Built once, by `aichat rag index`, then shipped as it is.
	printf 'The deployment runs three replicas behind nginx.\n' >"$BATS_TEST_TMPDIR/guide.txt"
	AICHAT_HOME="$BATS_TEST_TMPDIR/ship" aichat rag index -c guide "$BATS_TEST_TMPDIR/guide.txt" 2>/dev/null
	export AICHAT_HOME="$BATS_TEST_TMPDIR/ship"
	sum=$(sha256sum "$AICHAT_HOME/aichat.db")
	# Read-only the way ProtectSystem=strict makes it: a read-only bind
	# mount (the replica gets EROFS), in a mount namespace of its own.
	REPLICA_WRAP=(unshare -m sh -c 'mount --bind "$AICHAT_HOME" "$AICHAT_HOME" &&
		mount -o remount,bind,ro "$AICHAT_HOME" && exec "$@"' _)
	FAKE_LINES=()
	deploy_start
	for i in 1 2 3 4 5 6; do
		run curl -s -H "X-Request-ID: rag$i" "$NG/rag/search" \
			-d '{"collection":"guide","query":"replicas behind nginx"}'
		[ "$(json_get results.0.snippet <<<"$output")" = "The deployment runs three replicas behind nginx." ]
	done
	for n in 1 2 3; do
		[ "$(grep -c '"request_id":"rag' "$BATS_TEST_TMPDIR/r$n.log")" -ge 1 ]
	done
	# A model call is answered; its usage is not recorded, and the
	# replica says so on stderr.
	r=$(curl -s "$NG/chat" -d '{"prompt":"hi","model":"mock:echo"}')
	[ "$(json_get content <<<"$r")" = hi ]
	run grep -h 'could not record the usage' "$BATS_TEST_TMPDIR/r1.log" \
		"$BATS_TEST_TMPDIR/r2.log" "$BATS_TEST_TMPDIR/r3.log"
	[ "${#lines[@]}" -eq 1 ]
	[[ ${lines[0]} == *"usage ledger: attempt to write a readonly database" ]]
	# Jobs are in Redis: they run all the same.
	run curl -s -w '\n%{http_code}' "$NG/jobs" \
		-d '{"model":"mock:echo","items":[{"id":"a","prompt":"x"}]}'
	[ "${lines[1]}" = 202 ]
	# The shipped file is as it was.
	[ "$(sha256sum "$AICHAT_HOME/aichat.db")" = "$sum" ]
	[ ! -e "$AICHAT_HOME/aichat.db-wal" ]
}

@test "deploy: without --redis, a database shipped read-only turns background jobs off: 503 saying why, nothing written, and the start says so" {
	command -v unshare >/dev/null
	AICHAT_HOME="$BATS_TEST_TMPDIR/ship" aichat chat --no-log -m mock:echo hi >/dev/null
	AICHAT_HOME="$BATS_TEST_TMPDIR/ship" aichat rag index -c g "$AICHAT_ROOT/README.md" 2>/dev/null
	export AICHAT_HOME="$BATS_TEST_TMPDIR/ship"
	sum=$(sha256sum "$AICHAT_HOME/aichat.db")
	log="$BATS_TEST_TMPDIR/ro.log"
	unshare -m sh -c 'mount --bind "$AICHAT_HOME" "$AICHAT_HOME" &&
		mount -o remount,bind,ro "$AICHAT_HOME" && exec "$@"' _ \
		"$AICHAT_BIN" serve --port 0 </dev/null >/dev/null 2>"$log" 3>&- &
	REPLICA_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		line=$(grep -m1 -o 'listening on http://[^ ]*' "$log") && break
		sleep 0.05
	done
	url=${line#listening on }
	grep -q 'background jobs off: the database is read-only' "$log"
	run curl -s -D "$BATS_TEST_TMPDIR/h" -w '\n%{http_code}' "$url/jobs" \
		-d '{"model":"mock:echo","items":[{"id":"a","prompt":"x"}]}'
	[ "${lines[1]}" = 503 ]
	[[ $(json_get error.message <<<"${lines[0]}") == "background jobs are unavailable: the database could not be opened for writing"* ]]
	run curl -s -w '\n%{http_code}' "$url/jobs"
	[ "${lines[1]}" = 503 ]
	# Searches still answer from it; the file is as it was.
	run curl -s "$url/rag/search" -d '{"collection":"g","query":"replicas"}'
	[ -n "$(json_get results.0.snippet <<<"$output")" ]
	[ "$(sha256sum "$AICHAT_HOME/aichat.db")" = "$sum" ]
}

@test "deploy: contrib/nginx-aichat.conf in a copy of Debian's /etc/nginx, installed as its comment says, passes nginx -t" {
	[ -f /etc/nginx/nginx.conf ]
	e="$BATS_TEST_TMPDIR/etc-nginx"
	cp -r /etc/nginx "$e"
	# The copy's paths: its own files, logs and pid file.
	sed -i -e "s|/etc/nginx/|$e/|g" -e "s|/var/log/nginx/|$BATS_TEST_TMPDIR/|g" \
		-e "s|/run/nginx.pid|$BATS_TEST_TMPDIR/nginx.pid|" "$e/nginx.conf"
	run grep -e /etc/nginx -e /var/log -e /run/ "$e/nginx.conf"
	[ "$output" = "" ]
	install -m 644 "$AICHAT_ROOT/contrib/nginx-aichat.conf" "$e/conf.d/aichat.conf"
	rm -f "$e/sites-enabled/default"
	run "$NGINX_BIN" -t -p "$e" -e "$BATS_TEST_TMPDIR/error.log" -c "$e/nginx.conf"
	[ "$status" -eq 0 ]
	[[ $output == *"test is successful"* ]]
}

@test "deploy: contrib/aichat-serve@.service passes systemd-analyze verify (ExecStart pointed at the built binary)" {
	d="$BATS_TEST_TMPDIR/units"
	mkdir -p "$d"
	unit="$AICHAT_ROOT/contrib/aichat-serve@.service"
	# The unit names the installed binary; verify checks that it exists.
	grep -q '^ExecStart=/usr/local/bin/aichat serve ' "$unit"
	sed "s|^ExecStart=/usr/local/bin/aichat |ExecStart=$AICHAT_BIN |" "$unit" >"$d/aichat-serve@.service"
	grep -q "^ExecStart=$AICHAT_BIN serve " "$d/aichat-serve@.service"
	# No warning either (an unknown key is only a warning, exit 0).
	run systemd-analyze verify --man=no "$d/aichat-serve@8001.service"
	[ "$status" -eq 0 ]
	[ "$output" = "" ]
	# And it says so when it is wrong.
	sed 's/^Restart=on-failure$/Restart=on-failur/' "$d/aichat-serve@.service" >"$d/bad@.service"
	run systemd-analyze verify --man=no "$d/bad@8001.service"
	[[ $output == *"Failed to parse service restart specifier"* ]]
	# The secrets come from the environment file, never the unit.
	run grep -E '^(Environment=.*(KEY|PASSWORD)|ExecStart=.*(--api-key|redis://))' "$unit"
	[ "$output" = "" ]
	grep -q '^EnvironmentFile=/etc/aichat/serve.env$' "$unit"
	# systemd waits longer than serve drains.
	drain=$(sed -n 's/^ExecStart=.* --drain-timeout \([0-9]*\) .*/\1/p' "$unit")
	stop=$(sed -n 's/^TimeoutStopSec=//p' "$unit")
	[ "$stop" -gt "$drain" ]
}
