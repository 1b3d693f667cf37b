# bench/nginx_lib.sh - nginx for bench/serve.sh: installed from Debian's
# package when missing (never leaving or touching a system service),
# started from bench/nginx.conf in the foreground with its own pid file,
# logs and temporary files under build/bench/, stopped by the PID in its
# pid file.  Sourced after bench/serve_lib.sh (which owns PIDS and the
# EXIT trap, and calls nginx_cleanup from it).
# shellcheck shell=bash

NGINX_BIN=
NGINX_NOTE=
NGINX_PREFIXES=()
NG_PID=
NG_PORT=
# shellcheck disable=SC2034  # read by bench/serve.sh
NG_PIDS=

# nginx_setup: finds nginx, or installs Debian's package.  Sets NGINX_BIN
# (empty when there is none) and NGINX_NOTE (what happened, for the report).
nginx_setup() {
	local sudo='' policy=/usr/sbin/policy-rc.d ours=0 before after p
	NGINX_BIN=$(command -v nginx 2>/dev/null || true)
	[ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ] && NGINX_BIN=/usr/sbin/nginx
	if [ -n "$NGINX_BIN" ]; then
		NGINX_NOTE="$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), already installed"
		return 0
	fi
	if [ "${BENCH_NO_INSTALL:-0}" = 1 ]; then
		NGINX_NOTE="not installed (BENCH_NO_INSTALL=1): nginx rows skipped"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			sudo=sudo
		else
			NGINX_NOTE="not installed, and not root (apt-get install -y nginx): nginx rows skipped"
			return 0
		fi
	fi
	say "serve.sh: installing Debian's nginx (package 'nginx'); services may not start (policy-rc.d)"
	# invoke-rc.d asks policy-rc.d whether a service may start: 101 is
	# "no".  An existing policy is left as it is; ours is removed after.
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# written by aichat bench/serve.sh while installing nginx\nexit 101\n' |
			$sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		ours=1
	fi
	before=$(nginx_system_pids)
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx \
		>"$OUT/nginx-install.log" 2>&1 ||
		{ $sudo apt-get update -qq >>"$OUT/nginx-install.log" 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx \
			>>"$OUT/nginx-install.log" 2>&1; } || true
	[ "$ours" = 1 ] && $sudo rm -f "$policy"
	NGINX_BIN=$(command -v nginx 2>/dev/null || true)
	[ -z "$NGINX_BIN" ] && [ -x /usr/sbin/nginx ] && NGINX_BIN=/usr/sbin/nginx
	if [ -z "$NGINX_BIN" ]; then
		NGINX_NOTE="installing Debian's nginx failed (see $OUT/nginx-install.log): nginx rows skipped"
		return 0
	fi
	NGINX_NOTE="$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //'), installed by this run (Debian package nginx)"
	# A service the install started anyway is reported, never stopped:
	# it is not ours.
	after=$(nginx_system_pids)
	for p in $after; do
		case " $before " in *" $p "*) ;; *)
			NGINX_NOTE="$NGINX_NOTE; WARNING: the install started an nginx service anyway (pid $p), left running"
			say "serve.sh: WARNING: installing nginx started a service (pid $p); it is not stopped by this bench" ;;
		esac
	done
}

# PIDs of nginx processes on the machine (for the install check only).
nginx_system_pids() {
	ps -eo pid=,comm= | awk '$2 == "nginx" { printf "%s ", $1 }'
}

# Children of PID (nginx's workers), space-separated.
child_pids() {
	ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' '  ' | sed 's/^ //'
	return 0
}

# nginx_start NAME WORKERS: nginx in the foreground on a free port,
# proxying to the mock upstream (UP_PORT).  Sets NG_PID (the master),
# NG_PORT, NG_PIDS (master and workers, comma-separated).
nginx_start() {
	local name=$1 workers=$2 prefix i want=$2 w
	prefix="$ROOT/$OUT/nginx-$name"
	rm -rf "$prefix"
	mkdir -p "$prefix/tmp"
	NG_PORT=$(free_port)
	sed -e "s|@WORKERS@|$workers|g" -e "s|@PREFIX@|$prefix|g" \
		-e "s|@PORT@|$NG_PORT|g" -e "s|@UPSTREAM_PORT@|$UP_PORT|g" \
		bench/nginx.conf >"$prefix/nginx.conf"
	# The subshell becomes nginx (exec): $! is the master's PID.
	(
		ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
		exec "$NGINX_BIN" -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf"
	) >"$prefix/stdout.log" 2>&1 &
	NG_PID=$!
	PIDS+=("$NG_PID")
	NGINX_PREFIXES+=("$prefix")
	[ "$want" = auto ] && want=$NPROC
	for ((i = 0; i < 100; i++)); do
		w=$(child_pids "$NG_PID")
		# shellcheck disable=SC2086
		set -- $w
		if [ -s "$prefix/nginx.pid" ] && (($# >= want)) &&
			ss -ltnH "sport = :$NG_PORT" 2>/dev/null | grep -q .; then
			break
		fi
		kill -0 "$NG_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! kill -0 "$NG_PID" 2>/dev/null || ! [ -s "$prefix/nginx.pid" ]; then
		say "serve.sh: nginx ($name) did not start:"
		cat "$prefix/error.log" "$prefix/stdout.log" >&2 2>/dev/null || true
		NG_PID='' NG_PIDS=''
		return 1
	fi
	# The pid file names the master (the process we started).
	NG_PID=$(cat "$prefix/nginx.pid")
	# shellcheck disable=SC2034  # read by bench/serve.sh
	NG_PIDS=$(echo "$NG_PID $(child_pids "$NG_PID")" | tr -s ' ' ',' | sed 's/,$//')
}

# nginx_stop PREFIX: TERM to the PID in its pid file (a fast shutdown that
# takes its workers along), then KILL to it and its workers if it lingers.
nginx_stop() {
	local prefix=$1 pid kids i
	[ -s "$prefix/nginx.pid" ] || return 0
	pid=$(cat "$prefix/nginx.pid")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kids=$(child_pids "$pid")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		# shellcheck disable=SC2086
		kill -9 "$pid" $kids 2>/dev/null || true
	fi
	forget_pid "$pid"
}

nginx_cleanup() {
	local p
	for p in "${NGINX_PREFIXES[@]+"${NGINX_PREFIXES[@]}"}"; do
		nginx_stop "$p"
	done
}

# A free TCP port on 127.0.0.1 (asks the kernel; a race with others is
# possible but unlikely, and nginx then fails to start, loudly).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
