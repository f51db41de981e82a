#!/bin/sh
# bench-migrate.sh: upgrade a schema-1 store of ERRPD_BENCH_ROWS domains
# (default 1,000,000) to this errpd's schema with `errpd migrate`, then
# `errpd verify` it. Prints the upgrade's time, records/s, peak memory
# (/usr/bin/time's maximum RSS, which counts the resident pages of both
# files' maps too) and the store's size before and after, and the time of
# verify.
#
# The schema-1 store is written by an errpd of schema 1 (the release at
# 2a23107), given as ERRPD_BENCH_BIN, importing the generated calendar of
# scripts/bench-import.sh (expiries from 2031). To build one:
#
#   git worktree add /tmp/errpd-2a23107 2a23107
#   (cd /tmp/errpd-2a23107 && go build -o /tmp/errpd-schema1 ./cmd/errpd)
#   ERRPD_BENCH_BIN=/tmp/errpd-schema1 scripts/bench-migrate.sh
#
# ERRPD_BENCH_DIR=DIR works in DIR and keeps the schema-1 store there
# (schema1-ROWS.db), so that a second run skips the import; without it a
# temporary folder is used and deleted after.
set -eu
cd "$(dirname "$0")/.."
rows=${ERRPD_BENCH_ROWS:-1000000}
export ERRPD_BENCH_ROWS=$rows
old=${ERRPD_BENCH_BIN:?set ERRPD_BENCH_BIN to an errpd of schema 1 (see the comment at the top of $0)}
if [ -n "${ERRPD_BENCH_DIR:-}" ]; then
	dir=$ERRPD_BENCH_DIR
	mkdir -p "$dir"
	trap 'rm -f "$dir/errpd" "$dir/calendar.test" "$dir/calendar.csv" "$dir/errpd.db" "$dir/errpd.db.upgrading" "$dir"/errpd.db.schema1-backup*' EXIT
else
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
fi
go build -o "$dir/errpd" ./cmd/errpd
printf '[store]\npath = "errpd.db"\n[smtp]\noutbox_dir = "outbox"\n[brands.brand]\nfrom = "Brand <notices@brand.example>"\n' >"$dir/errpd.toml"

schema1="$dir/schema1-$rows.db"
if [ ! -f "$schema1" ]; then
	go test -c -o "$dir/calendar.test" ./calendar/
	ERRPD_BENCH_CSV="$dir/calendar.csv" "$dir/calendar.test" -test.run '^TestBenchWriteCalendar$' -test.count=1 >/dev/null
	echo "writing the schema-1 store: $rows domains imported by $old"
	rm -f "$dir/errpd.db"
	start=$(date +%s)
	"$old" import --config "$dir/errpd.toml" "$dir/calendar.csv" >/dev/null
	echo "schema-1 import: $(($(date +%s) - start)) s"
	mv "$dir/errpd.db" "$schema1"
fi
rm -f "$dir/errpd.db" "$dir/errpd.db.upgrading" "$dir"/errpd.db.schema1-backup*
cp "$schema1" "$dir/errpd.db"
before=$(stat -c %s "$dir/errpd.db")

status=0
/usr/bin/time -v "$dir/errpd" migrate --config "$dir/errpd.toml" >"$dir/migrate.out" 2>"$dir/migrate.err" || status=$?
grep -v '^	' "$dir/migrate.err" | grep -v 'Command exited' || true
cat "$dir/migrate.out"
[ "$status" -eq 0 ] || exit "$status"
after=$(stat -c %s "$dir/errpd.db")
grep -E 'Elapsed \(wall clock\)|Maximum resident set size' "$dir/migrate.err"
echo "store: $((before / 1048576)) MiB before ($((before / rows)) B a domain), $((after / 1048576)) MiB after ($((after / rows)) B a domain)"

start=$(date +%s.%N)
"$dir/errpd" verify --config "$dir/errpd.toml"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "verify: %.1f s\n", e - s }'
rm -f "$dir/migrate.out" "$dir/migrate.err"
