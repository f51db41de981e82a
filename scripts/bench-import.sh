#!/bin/sh
# bench-import.sh: import a generated calendar of 1,000,000 domains
# (ERRPD_BENCH_ROWS to change). Three modes:
#
#   bench-import.sh            in the test binary, as `errpd import` does,
#                              into a real bbolt file; then imports the same
#                              file again (every row unchanged) and times
#                              finding 1,000 due steps among the ~3,900,000
#                              planned. Prints the import and re-import
#                              times (wall and CPU, with the load average),
#                              rows/s, store size (and per bucket: allocated,
#                              % in use, keys, bytes a domain), the time of
#                              tx.Due(at, 1000) and peak memory.
#                              ERRPD_BENCH_BATCH=N: N rows a transaction.
#   bench-import.sh daemon     through a running `errpd serve` (no relay:
#                              outbox; expiries from 2031, so nothing is
#                              sent meanwhile): `errpd import` streams the
#                              file to the daemon, twice (the second time
#                              every row is unchanged). Prints each time and, for
#                              client and daemon, the peak of their own
#                              memory (RssAnon, sampled every 0.2 s: bbolt's
#                              map is file-backed and not in it) and VmHWM
#                              (which counts the map's resident pages too),
#                              and the daemon's Go heap from GODEBUG=gctrace:
#                              the most it held live after a collection.
#   bench-import.sh longline   a calendar whose second line is one line of
#                              ERRPD_BENCH_LINE_MB MiB (default 2048), in
#                              a temporary folder deleted after: the import
#                              must reject that line and import the next,
#                              in bounded memory (/usr/bin/time -v).
#
# ERRPD_BENCH_BIN=PATH runs another build of errpd in the daemon and
# longline modes (an older one, to compare).
set -eu
cd "$(dirname "$0")/.."
. scripts/benchlib.sh
rows=${ERRPD_BENCH_ROWS:-1000000}
export ERRPD_BENCH_ROWS=$rows
mode=${1:-test}

# cpu PID: the CPU time (user and system) PID used so far, in clock ticks.
cpu() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# timed_import WHAT: errpd import of $dir/calendar.csv through the daemon
# ($serve_pid), timed; prints the peaks of the client's and the daemon's
# own memory while it ran.
timed_import() {
	what=$1
	start=$(date +%s.%N) cpu0=$(cpu "$serve_pid")
	"$dir/errpd" import --config "$dir/errpd.toml" "$dir/calendar.csv" >"$dir/import.out" 2>"$dir/import.err" &
	import_pid=$!
	ca=0 ch=0 da=0 dh=0
	while kill -0 "$import_pid" 2>/dev/null; do
		if s=$(sample "$import_pid") && [ -n "$s" ]; then
			set -- $s
			[ "$1" -gt "$ca" ] && ca=$1
			[ "$2" -gt "$ch" ] && ch=$2
		fi
		if s=$(sample "$serve_pid") && [ -n "$s" ]; then
			set -- $s
			[ "$1" -gt "$da" ] && da=$1
			[ "$2" -gt "$dh" ] && dh=$2
		fi
		sleep 0.2
	done
	st=0
	wait "$import_pid" || st=$?
	end=$(date +%s.%N) cpu1=$(cpu "$serve_pid")
	cat "$dir/import.out"
	head -5 "$dir/import.err"
	awk -v w="$what" -v s="$start" -v e="$end" -v n="$rows" 'BEGIN { printf "%s through the daemon: %.1f s, %.0f rows/s\n", w, e - s, n / (e - s) }'
	echo "client: peak RssAnon $((ca / 1024)) MiB, VmHWM $((ch / 1024)) MiB"
	echo "daemon: peak RssAnon $((da / 1024)) MiB, VmHWM $((dh / 1024)) MiB (store file $(du -m "$dir/errpd.db" | cut -f1) MiB)"
	awk -v t="$(getconf CLK_TCK)" -v c="$((cpu1 - cpu0))" -v l="$(cut -d" " -f1-3 /proc/loadavg)" 'BEGIN { printf "daemon: %.1f s of CPU (user and system; load %s)\n", c / t, l }'
	return $st
}

case $mode in
test)
	bin="${TMPDIR:-/tmp}/errpd-calendar.test"
	go test -c -o "$bin" ./calendar/
	set -- "$bin" -test.run '^$' -test.bench '^BenchmarkImport1M$' -test.benchtime 1x -test.timeout 0 -test.v
	status=0
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -v "$@" 2>"$bin.time" || status=$?
		grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$bin.time"
	else
		"$@" || status=$?
	fi
	rm -f "$bin" "$bin.time"
	exit $status
	;;
daemon)
	dir=$(mktemp -d)
	serve_pid=
	trap '[ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null; rm -rf "$dir"' EXIT
	if [ -n "${ERRPD_BENCH_BIN:-}" ]; then
		cp "$ERRPD_BENCH_BIN" "$dir/errpd"
	else
		go build -o "$dir/errpd" ./cmd/errpd
	fi
	go test -c -o "$dir/calendar.test" ./calendar/
	ERRPD_BENCH_CSV="$dir/calendar.csv" "$dir/calendar.test" -test.run '^TestBenchWriteCalendar$' -test.count=1 >/dev/null
	echo "calendar: $rows rows, $(du -m "$dir/calendar.csv" | cut -f1) MiB"
	bench_config "$dir/errpd.toml" '[http]' 'listen = "127.0.0.1:0"'
	# gctrace: the Go heap after each collection, to tell live data that
	# grows with the rows from garbage the collector has not yet returned.
	GODEBUG=gctrace=1 "$dir/errpd" serve --config "$dir/errpd.toml" 2>"$dir/serve.log" &
	serve_pid=$!
	while [ ! -S "$dir/errpd.db.sock" ]; do
		kill -0 "$serve_pid" || { cat "$dir/serve.log"; exit 1; }
		sleep 0.1
	done
	status=0
	timed_import "import" || status=$?
	# The same file again, as a partner re-importing its whole calendar
	# every day: every row unchanged.
	[ "$status" -ne 0 ] || timed_import "re-import" || status=$?
	# "gc N @T ...: A->B->C MB, G MB goal": C is the heap live after it.
	awk '/^gc [0-9]+ @/ { for (i = 1; i <= NF; i++) if ($i ~ /->.*->/) { split($i, h, "->"); if (h[3] + 0 > live) live = h[3] + 0; if ($(i + 2) + 0 > goal) goal = $(i + 2) + 0 } n++ }
		END { if (n) printf "daemon: Go heap live after GC at most %d MB, heap goal at most %d MB (%d collections)\n", live, goal, n }' "$dir/serve.log"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit $status
	;;
longline)
	mb=${ERRPD_BENCH_LINE_MB:-2048}
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
	if [ -n "${ERRPD_BENCH_BIN:-}" ]; then
		cp "$ERRPD_BENCH_BIN" "$dir/errpd"
	else
		go build -o "$dir/errpd" ./cmd/errpd
	fi
	{
		echo "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand"
		head -c "$((mb * 1024 * 1024))" /dev/zero | tr '\0' x
		echo
		echo "after.example,2031-01-01,renew,Ann,ann@mail.example,en,,"
	} >"$dir/long.csv"
	printf '[store]\npath = "errpd.db"\n' >"$dir/errpd.toml"
	echo "calendar: $(du -m "$dir/long.csv" | cut -f1) MiB, line 2 is $mb MiB"
	status=0
	/usr/bin/time -v "$dir/errpd" import --config "$dir/errpd.toml" "$dir/long.csv" 2>"$dir/time.txt" || status=$?
	grep -v '^	' "$dir/time.txt" | grep -v 'Command exited' || true
	grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$dir/time.txt"
	echo "exit status $status (1: rows rejected)"
	[ "$status" -le 1 ]
	;;
*)
	echo "usage: $0 [test|daemon|longline]" >&2
	exit 2
	;;
esac
