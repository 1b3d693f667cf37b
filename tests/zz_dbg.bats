bats_require_minimum_version 1.5.0
load /work/wt-jobs/tests/helpers
setup() {
	aichat_env
	export AICHAT_HOME="$BATS_TEST_TMPDIR/home/aichat"
	DB="$AICHAT_HOME/aichat.db"
}
teardown() { serve_stop; }
@test dbg {
	serve_start
	python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[3]))
print("unlock", time.time(), flush=True)
c.execute("COMMIT")' "$DB" "$BATS_TEST_TMPDIR/locked" 4 >&3 &
	while [ ! -e "$BATS_TEST_TMPDIR/locked" ]; do sleep 0.05; done
	date +%s.%N >&3
	curl -sS -w '%{http_code} %{time_total}\n' "$SERVE_URL/jobs" -d '{"model":"mock:echo","items":[{"id":"a","prompt":"x"}]}' >&3
	date +%s.%N >&3
	ls -la $AICHAT_HOME >&3
	wait
}
