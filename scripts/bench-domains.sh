#!/bin/sh
# bench-domains.sh: `errpd domains --json` of ERRPD_BENCH_ROWS domains
# (default 1,000,000), through a running `errpd serve` and then opening the
# store directly. The store is the one scripts/bench-report.sh builds (a
# generated calendar imported locally), reused from ERRPD_BENCH_DIR when
# it is there. Prints, for each, the wall time, the lines written, and the
# peak of the client's and the daemon's own memory (RssAnon, sampled every
# 0.2 s: bbolt's map is file-backed and not in it; the daemon's before the
# listing too) and their VmHWM (which counts the map's resident pages),
# and the CPU time each spent (on a shared machine the wall time says more
# about the others' load).
# ERRPD_BENCH_BIN=PATH runs another build (daemon and client), for a
# before figure.
set -eu
cd "$(dirname "$0")/.."
rows=${ERRPD_BENCH_ROWS:-1000000}
export ERRPD_BENCH_ROWS=$rows
. scripts/benchlib.sh
bench_dir
if [ ! -f "$dir/errpd.db" ]; then
	ERRPD_BENCH_DIR=$dir scripts/bench-report.sh >/dev/null # builds the store, runs its reports
fi
bin=$dir/errpd-domains
if [ -n "${ERRPD_BENCH_BIN:-}" ]; then
	cp "$ERRPD_BENCH_BIN" "$bin"
else
	go build -o "$bin" ./cmd/errpd
fi
cat >"$dir/serve.toml" <<-TOML
[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:0"
[smtp]
outbox_dir = "outbox"
TOML

# ticks PID: the CPU time of PID so far (user + system), in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# list LABEL [DAEMON_PID]: run errpd domains --json, sampling its memory
# (and the daemon's) until it ends; print the figures.
list() {
	label=$1 daemon=${2:-}
	start=$(date +%s.%N) dt0=0
	[ -z "$daemon" ] || dt0=$(ticks "$daemon")
	/usr/bin/time -f '%U %S' -o "$dir/client.cpu" "$bin" domains --config "$dir/serve.toml" --json >"$dir/domains.jsonl" 2>"$dir/domains.err" &
	timer=$!
	pid=
	while [ -z "$pid" ] && kill -0 "$timer" 2>/dev/null; do
		pid=$(awk '{ print $1 }' "/proc/$timer/task/$timer/children" 2>/dev/null || true)
	done
	ca=0 ch=0 da=0 dh=0
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; do
		for p in "$pid" $daemon; do
			s=$(sample "$p") && [ -n "$s" ] || continue
			set -- $s
			if [ "$p" = "$pid" ]; then
				[ "$1" -gt "$ca" ] && ca=$1
				[ "$2" -gt "$ch" ] && ch=$2
			else
				[ "$1" -gt "$da" ] && da=$1
				[ "$2" -gt "$dh" ] && dh=$2
			fi
		done
		sleep 0.2
	done
	status=0
	wait "$timer" || status=$?
	end=$(date +%s.%N)
	cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$dir/client.cpu")
	head -3 "$dir/domains.err"
	awk -v l="$label" -v s="$start" -v e="$end" -v n="$(wc -l <"$dir/domains.jsonl")" \
		'BEGIN { printf "%s: %d lines in %.1f s (%.0f lines/s)\n", l, n, e - s, n / (e - s) }'
	echo "  client: CPU $cpu s, peak RssAnon $((ca / 1024)) MiB, VmHWM $((ch / 1024)) MiB"
	[ -z "$daemon" ] || echo "  daemon: CPU $(echo "$(ticks "$daemon") $dt0 $(getconf CLK_TCK)" | awk '{ printf "%.2f", ($1 - $2) / $3 }') s, peak RssAnon $((da / 1024)) MiB, VmHWM $((dh / 1024)) MiB"
	return $status
}

uptime
"$bin" serve --config "$dir/serve.toml" 2>"$dir/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; [ -n "${ERRPD_BENCH_DIR:-}" ] || rm -rf "$dir"' EXIT
while [ ! -S "$dir/errpd.db.sock" ]; do
	kill -0 "$serve_pid" || { cat "$dir/serve.log"; exit 1; }
	sleep 0.1
done
idle=$(sample "$serve_pid")
echo "daemon serving $rows domains: RssAnon $((${idle% *} / 1024)) MiB before the listing"
list "through the daemon" "$serve_pid"
kill "$serve_pid"
wait "$serve_pid" || true
list "opening the store directly"
