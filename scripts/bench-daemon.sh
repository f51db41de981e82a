#!/bin/sh
# bench-daemon.sh: the memory of `errpd serve` at 1,000,000 domains
# (ERRPD_BENCH_ROWS to change), idle and catching up, and its rate while
# catching up. The daemon's own memory is RssAnon (bbolt's map of the store
# is file-backed and not in it); VmHWM, the peak of the whole resident set,
# counts the map's resident pages too.
#
#   1. A store of ERRPD_BENCH_ROWS domains is built with `errpd import`
#      (no daemon running): the calendar benchmark's generator
#      (calendar/bench_test.go, expiries from 2031, so never due), plus
#      ERRPD_BENCH_DUE domains (default a tenth) expiring together, so
#      that all their first reminders open at one instant a little later.
#   2. Idle: `errpd serve` runs with nothing due for ERRPD_BENCH_IDLE
#      seconds (60), sampled every 0.2 s; then it stops.
#   3. Downtime: the backlog's windows open while no daemon runs.
#   4. Catching up: `errpd serve` starts again with the whole backlog due
#      at once (sweep, then send) and sends it to Postfix's smtp-sink over
#      smtp.max_connections (ERRPD_BENCH_CONNECTIONS, 4), sampled until
#      every notice is sent.
#
# It prints the peaks of each phase and the notices sent per second. Needs
# the postfix package (smtp-sink). Files go to a temporary folder under
# $TMPDIR, removed afterwards (a 1M store is about 5 GB on today's
# encoding). ERRPD_BENCH_BIN=PATH runs another build of errpd (an older
# one, to compare).
#
# Building the store is the slow part. ERRPD_BENCH_DIR=DIR works in DIR
# and keeps it; a later run with the same DIR and rows finds DIR/errpd.db
# and skips the never-due domains (a new backlog is added each run; the
# earlier ones are sent). ERRPD_BENCH_CATCHUP=SECONDS stops catching up
# after that long and gives the rate until then (default: until all sent).
set -eu
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
rows=${ERRPD_BENCH_ROWS:-1000000}
due=${ERRPD_BENCH_DUE:-$((rows / 10))}
idle=${ERRPD_BENCH_IDLE:-60}
conns=${ERRPD_BENCH_CONNECTIONS:-4}
sink=/usr/sbin/smtp-sink
[ -x "$sink" ] || { echo "bench-daemon.sh: install the postfix package (smtp-sink)" >&2; exit 1; }
[ "$due" -lt "$rows" ] || { echo "bench-daemon.sh: ERRPD_BENCH_DUE=$due must be below ERRPD_BENCH_ROWS=$rows" >&2; exit 1; }

catchup=${ERRPD_BENCH_CATCHUP:-0}
if [ -n "${ERRPD_BENCH_DIR:-}" ]; then
	dir=$ERRPD_BENCH_DIR keep=1
	mkdir -p "$dir"
else
	dir=$(mktemp -d) keep=
fi
chmod 755 "$dir" # smtp-sink runs as nobody
serve_pid= sink_pid=
cleanup() {
	for p in $serve_pid $sink_pid; do kill "$p" 2>/dev/null || true; done
	[ -n "$keep" ] || rm -rf "$dir"
}
trap cleanup EXIT
if [ -n "${ERRPD_BENCH_BIN:-}" ]; then
	cp "$ERRPD_BENCH_BIN" "$dir/errpd"
else
	go build -o "$dir/errpd" ./cmd/errpd
fi
errpd=$dir/errpd

# A free port for smtp-sink, from the kernel.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$sink" -u nobody 127.0.0.1:"$port" 256 &
sink_pid=$!

cat >"$dir/errpd.toml" <<TOML
[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:0"
[smtp]
host = "127.0.0.1"
port = $port
max_connections = $conns
spf_check = "off"
[brands.brand]
from = "Brand Domains <renewals@example.net>"
TOML

# metric NAME: a series' value on the daemon's /metrics (0 when absent).
metric() {
	curl -s "http://$listen/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { printf "%d\n", v + 0 }'
}
# serve LOG: start the daemon, wait until it serves, set serve_pid and listen.
serve() {
	"$errpd" serve --config "$dir/errpd.toml" 2>"$1" &
	serve_pid=$!
	until grep -qs 'errpd serving' "$1"; do
		kill -0 "$serve_pid" 2>/dev/null || { cat "$1"; exit 1; }
		sleep 0.1
	done
	listen=$(sed -n 's/.*errpd serving.* listen=\([^ ]*\).*/\1/p' "$1")
}
stop() {
	kill -TERM "$serve_pid"
	wait "$serve_pid" || true
	serve_pid=
}
# peaks: fold one sample of serve_pid into the phase's peaks a and h.
peaks() {
	if s=$(sample "$serve_pid") && [ -n "$s" ]; then
		set -- $s
		[ "$1" -gt "$a" ] && a=$1
		[ "$2" -gt "$h" ] && h=$2
	fi
	return 0
}

# 1. The store.
t0=$(date +%s)
if [ -e "$dir/errpd.db" ]; then
	echo "store: $dir/errpd.db kept from an earlier run, $(du -m "$dir/errpd.db" | cut -f1) MiB"
	[ -s "$dir/bulk.seconds" ] && t0=$((t0 - $(cat "$dir/bulk.seconds")))
else
	go test -c -o "$dir/calendar.test" ./calendar/
	ERRPD_BENCH_ROWS=$((rows - due)) ERRPD_BENCH_CSV="$dir/bulk.csv" \
		"$dir/calendar.test" -test.run '^TestBenchWriteCalendar$' -test.count=1 >/dev/null
	"$errpd" import --config "$dir/errpd.toml" "$dir/bulk.csv" >/dev/null
	rm "$dir/bulk.csv"
	echo $(($(date +%s) - t0)) >"$dir/bulk.seconds"
	echo "store: $((rows - due)) domains never due imported in $(cat "$dir/bulk.seconds") s"
fi
t1=$(date +%s)
# The backlog's reminders open once its import, the idle phase and a
# margin are over: its import is timed at twice the bulk import's rate.
est=$(((t1 - t0) * due * 2 / (rows - due) + 10))
q=q$(date +%s) # a new backlog each run, also in a kept store
opens=$(($(date +%s) + est + idle + 15))
expiry=$(date -u -d "@$((opens + 35 * 86400))" +%Y-%m-%dT%H:%M:%SZ)
awk -v n="$due" -v e="$expiry" -v q="$q" 'BEGIN {
	print "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand"
	for (i = 0; i < n; i++) printf "%s-%08d.example,%s,expire,Registrant %d,owner%d@mail.example,en,,brand\n", q, i, e, i, i
}' >"$dir/backlog.csv"
"$errpd" import --config "$dir/errpd.toml" "$dir/backlog.csv" >/dev/null
t2=$(date +%s)
echo "store: $due domains whose first reminders open at $(date -u -d "@$opens" +%H:%M:%S) imported in $((t2 - t1)) s; file $(du -m "$dir/errpd.db" | cut -f1) MiB"
[ "$t2" -lt "$((opens - 5))" ] || { echo "bench-daemon.sh: the backlog's import took too long; its reminders opened before the idle phase" >&2; exit 1; }

# 2. Idle.
serve "$dir/idle.log"
steps=$(curl -s "http://$listen/metrics" | awk '/^errpd_steps\{/ { n += $2 } END { printf "%d\n", n }')
a=0 h=0
start=$(date +%s)
until [ "$(date +%s)" -ge "$((start + idle))" ] || [ "$(date +%s)" -ge "$((opens - 3))" ]; do
	peaks
	sleep 0.2
done
ia=$a ih=$h isecs=$(($(date +%s) - start))
stop

# 3. Downtime, until the backlog is due.
while [ "$(date +%s)" -le "$opens" ]; do sleep 0.5; done

# 4. Catching up.
start=$(date +%s.%N)
serve "$dir/catchup.log"
a=0 h=0 sent=0
t=$(date +%s)
while [ "$sent" -lt "$due" ] && { [ "$catchup" -eq 0 ] || [ "$(date +%s)" -lt "$((t + catchup))" ]; }; do
	kill -0 "$serve_pid" 2>/dev/null || { tail -5 "$dir/catchup.log"; exit 1; }
	peaks
	sent=$(metric 'errpd_sends_total{result="ok"}')
	sleep 0.2
done
end=$(date +%s.%N)
stop
failed=$(grep -c "notice deferred" "$dir/catchup.log" || true)

echo "idle ($isecs s, $rows domains, $steps steps): peak RssAnon $((ia / 1024)) MiB, VmHWM $((ih / 1024)) MiB"
awk -v s="$start" -v e="$end" -v n="$due" -v k="$sent" -v c="$conns" -v a="$a" -v h="$h" 'BEGIN {
	printf "catching up (%d notices due at once, %d connections): %d sent in %.1f s, %.0f notices/s\n", n, c, k, e - s, k / (e - s)
	printf "catching up: peak RssAnon %d MiB, VmHWM %d MiB\n", a / 1024, h / 1024
}'
echo "deferred sends: $failed; store file $(du -m "$dir/errpd.db" | cut -f1) MiB; load average:$(uptime | sed 's/.*load average://')"
