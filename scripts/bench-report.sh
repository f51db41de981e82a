#!/bin/sh
# bench-report.sh: `errpd report` among ERRPD_BENCH_ROWS domains (default
# 1,000,000), as an operator runs it (no daemon: the command opens the
# store read-only). It imports a generated calendar (expiries over 2031,
# TLDs com 60%, net 20%, org 10%, info 9%, xyz 1%; report's
# TestBenchReportCalendar, which imports as errpd import does, without
# fsync), then times, each in a process of its own:
#
#   month    --from 2031-05-01 --to 2031-06-01 (a month of deadlines)
#   tld      --tld xyz (1% of the domains)
#   domain   --domain da12b4869.info
#   full     every notice
#
# and prints for each the rows, the wall time, the CPU time (user +
# system: on a shared machine the wall time says more about the others'
# load), rows per CPU second and the peak resident memory (/usr/bin/time
# -v; the pages of bbolt's map it touched are in it), and the bytes
# the read indexes take in the store (bbolt stats). ERRPD_BENCH_BIN=PATH
# runs the same reports with another build (the store is the same file;
# an older errpd reads it as long as the schema is the one it knows), for
# a before figure. ERRPD_BENCH_COLD=1 (root) drops the page cache before
# each report, as after a reboot or on a server that has not read the
# store for a while. ERRPD_BENCH_DIR=DIR keeps the store and calendar there
# (an existing store is reused); otherwise they go in a temporary folder,
# deleted after.
set -eu
cd "$(dirname "$0")/.."
rows=${ERRPD_BENCH_ROWS:-1000000}
export ERRPD_BENCH_ROWS=$rows
. scripts/benchlib.sh
bench_dir
go build -o "$dir/errpd" ./cmd/errpd
printf '[store]\npath = "errpd.db"\n' >"$dir/errpd.toml"
if [ ! -f "$dir/errpd.db" ]; then
	go test -c -o "$dir/report.test" ./report/
	ERRPD_BENCH_CSV="$dir/calendar.csv" ERRPD_BENCH_DB="$dir/errpd.db" "$dir/report.test" \
		-test.run '^TestBenchReportCalendar$' -test.count=1 -test.timeout 0 | grep -v '^PASS'
fi
echo "store: $(du -m "$dir/errpd.db" | cut -f1) MiB, $rows domains"
if command -v bbolt >/dev/null 2>&1 || [ -x "$HOME/go/bin/bbolt" ]; then
	bb=$(command -v bbolt || echo "$HOME/go/bin/bbolt")
	for b in deadline tld; do
		"$bb" stats "$dir/errpd.db" "$b" 2>/dev/null | awk -v b="$b" -v n="$rows" '
			/Number of keys/ { k = $NF }
			/Bytes allocated for physical (branch|leaf) pages/ { a += $NF }
			/Bytes actually used for (branch|leaf) data/ { u += $(NF - 1) }
			END { if (k != "") printf "index %s: %d keys, %.1f MiB allocated (%.0f B a domain; %.0f B a domain used, %.0f B a key)\n", b, k, a / 1048576, a / n, u / n, u / k }'
	done
fi

# run LABEL BIN ARGS...: one report to a file, timed.
run() {
	label=$1 bin=$2
	shift 2
	if [ -n "${ERRPD_BENCH_COLD:-}" ]; then
		sync
		echo 3 >/proc/sys/vm/drop_caches
	fi
	/usr/bin/time -v "$bin" report --config "$dir/errpd.toml" --output "$dir/$label.csv" "$@" >"$dir/$label.out" 2>"$dir/$label.time"
	lines=$(($(wc -l <"$dir/$label.csv") - 1))
	awk -v l="$label" -v n="$lines" '
		/Elapsed \(wall clock\)/ { split($NF, t, ":"); s = t[1] * 60 + t[2]; if (length(t) == 3) s = t[1] * 3600 + t[2] * 60 + t[3] }
		/User time/ { c += $NF }
		/System time/ { c += $NF }
		/Maximum resident/ { m = $NF }
		END { printf "%-14s %8d rows in %7.2f s, CPU %6.2f s (%8.0f rows per CPU s), peak RSS %d MiB\n", l, n, s, c, (c > 0 ? n / c : 0), m / 1024 }' "$dir/$label.time"
}
cases() {
	run "$1-month" "$2" --from 2031-05-01 --to 2031-06-01
	run "$1-tld" "$2" --tld xyz
	run "$1-domain" "$2" --domain da12b4869.info
	run "$1-full" "$2"
}
uptime
cases this "$dir/errpd"
if [ -n "${ERRPD_BENCH_BIN:-}" ]; then
	cases before "$ERRPD_BENCH_BIN"
	for c in month tld domain full; do
		cmp -s "$dir/this-$c.csv" "$dir/before-$c.csv" || echo "$c: the reports differ"
	done
fi
