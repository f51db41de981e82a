#!/bin/sh
# fuzz.sh: run every fuzz target of errpd (each `func FuzzXxx` in a
# _test.go file) for a set time, one after the other: `go test -fuzz`
# takes one target of one package at a time. Prints, per target, the
# executions and the result, and at a failure the failing input, which
# go test has written to the package's testdata/fuzz/FuzzXxx/ (commit it
# with the fix: plain `go test` then runs it for ever after). Exits 1 if
# any target failed.
#
#   ERRPD_FUZZTIME      time per target (default 30s; go test's -fuzztime,
#                       so "1000x" runs 1000 inputs)
#   ERRPD_FUZZPARALLEL  fuzzing workers per target (default 1: the
#                       machines are shared; go test's default is GOMAXPROCS)
#   ERRPD_FUZZMINIMIZE  time spent minimising each new input (default 0:
#                       with net/http or sockets in a target, coverage
#                       varies between runs and minimising took nearly all
#                       the time; a failing input is written unminimised)
#   ERRPD_FUZZ          only the targets matching this grep pattern,
#                       against "package FuzzXxx" (e.g. "^calendar ")
set -u
cd "$(dirname "$0")/.."
fuzztime=${ERRPD_FUZZTIME:-30s}
parallel=${ERRPD_FUZZPARALLEL:-1}
minimize=${ERRPD_FUZZMINIMIZE:-0}
only=${ERRPD_FUZZ:-}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# "package FuzzXxx" for every target, in a stable order.
targets=$(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort)
if [ -n "$only" ]; then
	targets=$(printf '%s\n' "$targets" | grep -E -- "$only" || true)
fi
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target matches ${only:-anything}" >&2
	exit 2
fi

failed=0
count=0
printf '%-22s %-20s %12s  %s\n' package target executions result
while read -r pkg target; do
	count=$((count + 1))
	status=0
	go test "./$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" \
		-fuzzminimizetime "$minimize" -parallel "$parallel" >"$log" 2>&1 || status=$?
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' "$log" | tail -n 1)
	if [ "$status" -eq 0 ]; then
		result=ok
	else
		result=FAIL
		failed=$((failed + 1))
	fi
	printf '%-22s %-20s %12s  %s\n' "$pkg" "$target" "${execs:-0}" "$result"
	if [ "$status" -ne 0 ]; then
		# The failure and the file holding its input.
		grep -vE '^fuzz: elapsed' "$log" | sed 's/^/    /'
	fi
done <<EOF
$targets
EOF

echo "$count targets for $fuzztime each, $failed failed"
[ "$failed" -eq 0 ]
