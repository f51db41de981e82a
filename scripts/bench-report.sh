#!/bin/sh
# bench-report.sh: export 1,000,000 report rows as CSV and print the time and
# the peak memory. A first process seeds a store (proved renew-mode notices,
# written straight into the buckets); a second one, measured on its own,
# exports it, reading the store in chunks of short read transactions.
# ERRPD_BENCH_ROWS changes the count; ERRPD_BENCH_KEEP=1 keeps the files.
set -eu
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
[ "${ERRPD_BENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$dir"' EXIT
export ERRPD_BENCH_DB="$dir/bench.db" ERRPD_BENCH_OUT="$dir/report.csv"
go test -c -o "$dir/report.test" ./report/
"$dir/report.test" -test.run '^TestBenchSeed$' -test.count=1 | grep -v '^PASS'
if [ -x /usr/bin/time ]; then
	/usr/bin/time -v "$dir/report.test" -test.run '^TestBenchExport$' -test.count=1 2>"$dir/time.txt" | grep -v '^PASS'
	grep -E 'Elapsed \(wall|Maximum resident' "$dir/time.txt" | sed 's/^[[:space:]]*/time -v: /'
else
	"$dir/report.test" -test.run '^TestBenchExport$' -test.count=1 | grep -v '^PASS'
fi
echo "CSV: $(wc -l <"$ERRPD_BENCH_OUT") lines, $(du -m "$ERRPD_BENCH_OUT" | cut -f1) MiB"
