#!/bin/sh
# bench-scale.sh: the run at ten million domains. It imports a generated
# calendar of ERRPD_BENCH_ROWS domains (default 10,000,000; expiries over
# 2031, so nothing falls due meanwhile) with `errpd import`, as an operator
# runs it (fsync on every commit, each row test-rendered), in chunks of
# ERRPD_BENCH_CHUNK rows (default 1,000,000), one process each. After each
# chunk it prints the rows so far, the chunk's wall and CPU time, rows/s,
# the store's size and bytes a domain, and appends the line to
# DIR/progress.txt. After the last chunk it prints the store by bucket and
# the time of tx.Due(at, 1000), then times a one-month report
# (--from 2031-05-01 --to 2031-06-01) and `errpd verify`; then it runs
# `errpd compact` and prints the same figures for the compacted store.
#
# With ERRPD_BENCH_BULK=1 each chunk is imported with `errpd import --bulk`
# (the store written again in key order with the chunk's new domains).
#
# DIR is ERRPD_BENCH_DIR (default: a temporary folder, deleted after). With
# a DIR kept, a run stopped between chunks (kill it; a chunk killed halfway
# is cut short by bbolt's transactions, and imported again as a whole,
# unchanged rows cost little) goes on with the next chunk, and
# `bench-scale.sh figures [compact]` prints the end figures for the chunks
# done (and compacts).
set -eu
cd "$(dirname "$0")/.."
rows=${ERRPD_BENCH_ROWS:-10000000}
chunk=${ERRPD_BENCH_CHUNK:-1000000}
bulk=${ERRPD_BENCH_BULK:+--bulk}
. scripts/benchlib.sh
bench_dir
go build -o "$dir/errpd" ./cmd/errpd
go test -c -o "$dir/calendar.test" ./calendar/
bench_config "$dir/errpd.toml"

# figures N: the store's figures with N domains imported.
figures() {
	ERRPD_BENCH_DB="$dir/errpd.db" ERRPD_BENCH_ROWS=$1 ERRPD_BENCH_DUE_AT=2031-03-01T00:00:00Z \
		"$dir/calendar.test" -test.run '^TestBenchStoreFigures$' -test.count=1 -test.timeout 0 | grep -v '^PASS$\|^ok'
	/usr/bin/time -f "month report (2031-05): %e s wall, %U s user, %S s sys, peak RSS %M KiB" \
		"$dir/errpd" report --config "$dir/errpd.toml" --from 2031-05-01 --to 2031-06-01 --output "$dir/month.csv" 2>"$dir/month.time" || { cat "$dir/month.time"; return 1; }
	echo "$(tail -1 "$dir/month.time"), $(($(wc -l <"$dir/month.csv") - 1)) rows"
	/usr/bin/time -f "verify: %e s wall, %U s user, %S s sys, peak RSS %M KiB" \
		"$dir/errpd" verify --config "$dir/errpd.toml" >"$dir/verify.out" 2>"$dir/verify.time" || { cat "$dir/verify.out" "$dir/verify.time"; return 1; }
	tail -1 "$dir/verify.time"
	tail -3 "$dir/verify.out"
}

# compacted N: `errpd compact`, timed, then the figures again.
compacted() {
	/usr/bin/time -f "compact: %e s wall, %U s user, %S s sys, peak RSS %M KiB" \
		"$dir/errpd" compact --config "$dir/errpd.toml" >"$dir/compact.out" 2>"$dir/compact.time" || { cat "$dir/compact.out" "$dir/compact.time"; return 1; }
	tail -1 "$dir/compact.time"
	tail -2 "$dir/compact.out"
	figures "$1"
}

if [ "${1:-}" = figures ]; then
	done_rows=$(awk 'END { print $3 + 0 }' "$dir/progress.txt")
	figures "$done_rows"
	[ "${2:-}" != compact ] || compacted "$done_rows"
	exit
fi

if [ ! -f "$dir/calendar.csv" ]; then
	ERRPD_BENCH_CSV="$dir/calendar.csv" ERRPD_BENCH_ROWS=$rows "$dir/calendar.test" -test.run '^TestBenchWriteCalendar$' -test.count=1 >/dev/null
fi
echo "calendar: $rows rows, $(du -m "$dir/calendar.csv" | cut -f1) MiB, chunks of $chunk; $(nproc) cores"
touch "$dir/progress.txt"
i=0
while [ $((i * chunk)) -lt "$rows" ]; do
	i=$((i + 1))
	if grep -q "^chunk $i " "$dir/progress.txt"; then
		continue
	fi
	{
		head -1 "$dir/calendar.csv"
		tail -n +2 "$dir/calendar.csv" | tail -n +$(((i - 1) * chunk + 1)) | head -n "$chunk"
	} >"$dir/chunk.csv"
	/usr/bin/time -f "%e %U %S %M" -o "$dir/chunk.time" \
		"$dir/errpd" import $bulk --config "$dir/errpd.toml" "$dir/chunk.csv" >"$dir/chunk.out" 2>"$dir/chunk.err" || {
		tail -5 "$dir/chunk.err"
		exit 1
	}
	total=$((i * chunk < rows ? i * chunk : rows))
	size=$(stat -c %s "$dir/errpd.db")
	read -r wall user sys rss <"$dir/chunk.time"
	awk -v i="$i" -v n="$total" -v c="$chunk" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v z="$size" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" \
		'BEGIN { printf "chunk %d %d domains: %.0f s wall, %.0f s CPU, %.0f rows/s, peak RSS %d MiB; store %.0f MiB, %.0f B a domain; load %s\n", i, n, w, u + s, c / w, r / 1024, z / 1048576, z / n, l }' |
		tee -a "$dir/progress.txt"
done
rm -f "$dir/chunk.csv"
figures "$rows"
compacted "$rows"
