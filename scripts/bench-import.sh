#!/bin/sh
# bench-import.sh: import and plan a generated calendar of 1,000,000 domains
# (ERRPD_BENCH_ROWS to change) into a real bbolt file, as `errpd import` does,
# then time finding 1,000 due steps among the ~3,900,000 planned. Prints the
# import time, rows/s, store size, the time of tx.Due(at, 1000) and peak
# memory (getrusage in the process, and /usr/bin/time -v when installed).
set -eu
cd "$(dirname "$0")/.."
rows=${ERRPD_BENCH_ROWS:-1000000}
export ERRPD_BENCH_ROWS=$rows
go test -c -o "${TMPDIR:-/tmp}/errpd-calendar.test" ./calendar/
bin="${TMPDIR:-/tmp}/errpd-calendar.test"
set -- "$bin" -test.run '^$' -test.bench '^BenchmarkImport1M$' -test.benchtime 1x -test.timeout 0 -test.v
if [ -x /usr/bin/time ]; then
	status=0
	/usr/bin/time -v "$@" 2>"$bin.time" || status=$?
	grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$bin.time"
else
	status=0
	"$@" || status=$?
fi
rm -f "$bin" "$bin.time"
exit $status
