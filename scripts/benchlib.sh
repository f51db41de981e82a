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

# bench_config FILE [LINE...]: the benchmarks' config at FILE: the store
# errpd.db beside it, an outbox folder for the messages, the generated
# calendar's brand, then LINEs (more TOML sections).
bench_config() {
	file=$1
	shift
	{
		printf '[store]\npath = "errpd.db"\n[smtp]\noutbox_dir = "outbox"\n'
		printf '[brands.brand]\nfrom = "Brand <renew@brand.example>"\n'
		printf 'renewal_url = "https://brand.example/renew"\nfees_url = "https://brand.example/fees"\n'
		for line in "$@"; do
			printf '%s\n' "$line"
		done
	} >"$file"
}
