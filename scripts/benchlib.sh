# benchlib.sh: what the bench-*.sh scripts share. Sourced (`. scripts/benchlib.sh`
# from the repository's root), not run.

# bench_dir: sets dir to ERRPD_BENCH_DIR (made if missing, kept after, so
# that a store built there is reused), or to a temporary folder deleted at
# exit.
bench_dir() {
	if [ -n "${ERRPD_BENCH_DIR:-}" ]; then
		dir=$ERRPD_BENCH_DIR
		mkdir -p "$dir"
	else
		dir=$(mktemp -d)
		trap 'rm -rf "$dir"' EXIT
	fi
}

# sample PID: the RssAnon and VmHWM of PID now, in KiB.
sample() {
	awk '/^RssAnon:/ { a = $2 } /^VmHWM:/ { h = $2 } END { if (a != "") print a, h }' "/proc/$1/status" 2>/dev/null
}
