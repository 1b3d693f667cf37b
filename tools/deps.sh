#!/bin/sh
# tools/deps.sh - installs the Debian packages that building and testing
# aichat need, when they are missing (clang with its libFuzzer runtime for
# `make fuzz`; nginx and systemd-analyze for tests/deploy.bats).  Uses sudo
# when not root.  Installing a package never starts its service here: the
# tests start their own nginx and redis-server, and stop them.
set -e
pkgs="build-essential pkg-config libcurl4-openssl-dev libcjson-dev
libmicrohttpd-dev libsqlite3-dev libreadline-dev zlib1g-dev sqlite3 bats tmux python3 curl iproute2 time
util-linux
zsh fish clang libclang-rt-dev
libhiredis-dev redis-server redis-tools nginx systemd"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# The SDK tests run the official npm packages, and the playground's test
# drives chromium with puppeteer-core: node and npm from Debian unless some
# node is already there.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
# invoke-rc.d asks policy-rc.d whether a package's service may start: 101
# is "no".  A policy already there is left as it is; ours goes after.
policy=/usr/sbin/policy-rc.d ours=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# written by aichat tools/deps.sh while installing packages\nexit 101\n' |
		$sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	ours=1
fi
rc=0
# shellcheck disable=SC2086
{ $sudo apt-get update -qq &&
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null; } || rc=$?
[ -z "$ours" ] || $sudo rm -f "$policy"
exit $rc
