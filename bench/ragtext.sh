#!/bin/sh
# bench/ragtext.sh BEFORE AFTER PATH... - time `aichat rag index` of the
# same files with two binaries (each into a fresh store, one after the
# other, in the same run) and report, for each, the files indexed and
# skipped, the megabytes read (on disk, and decompressed for .gz) of the
# files indexed, the seconds and the seconds per MB.
set -e
before=$1 after=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for which in before after; do
	eval bin=\$$which
	export AICHAT_HOME="$tmp/$which"
	start=$(date +%s.%N)
	"$bin" rag index -c bench "$@" 2>"$tmp/$which.err" || true
	end=$(date +%s.%N)
	python3 - "$AICHAT_HOME/aichat.db" "$which" "$start" "$end" "$tmp/$which.err" <<'PY'
import gzip, sqlite3, sys
db, which, start, end, err = sys.argv[1:]
paths = [r[0] for r in sqlite3.connect(db).execute("SELECT path FROM documents")]
disk = text = 0
for p in paths:
    raw = open(p, "rb").read()
    disk += len(raw)
    text += len(gzip.decompress(raw)) if raw[:2] == b"\x1f\x8b" else len(raw)
secs = float(end) - float(start)
lines = open(err).read().splitlines()
summary = [l for l in lines if "files added" in l or l.startswith("aichat: rag: skipped")]
summary.append("%d lines on stderr" % len(lines))
print("%-6s %5d files, %7.1f MB on disk, %7.1f MB of text, %6.1f s, %.3f s/MB of text"
      % (which, len(paths), disk / 1e6, text / 1e6, secs, secs / (text / 1e6)))
for l in summary:
    print("       " + l.strip())
PY
done
