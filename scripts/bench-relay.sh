#!/bin/sh
# bench-relay.sh: the catch-up benchmark (bench-dispatch.sh) against a real
# Postfix instead of smtp-sink. smtp-sink answers before it keeps anything;
# Postfix writes each message into its queue on disk before it answers 250,
# as every relay that can be trusted with a notice does. errpd and
# smtp-source both send to it, at the same concurrency, in the same run.
#
# Needs root and the postfix package. It runs a private instance (its own
# configuration, queue and port, delivering to Postfix's discard transport)
# under a temporary directory, and stops and removes it afterwards; the
# machine's own Postfix, if any, is not touched. ERRPD_BENCH_NOTICES and
# ERRPD_BENCH_CONNECTIONS work as in bench-dispatch.sh; ERRPD_BENCH_RELAY_PORT
# moves the port (2526).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-relay.sh: run as root (Postfix's master must start as root)" >&2; exit 1; }
command -v postfix >/dev/null || { echo "bench-relay.sh: install the postfix package" >&2; exit 1; }
port=${ERRPD_BENCH_RELAY_PORT:-2526}

# Postfix wants its queue on a path no other user can write to, so not /tmp.
dir=$(mktemp -d /var/lib/errpd-bench-relay.XXXXXX)
chmod 755 "$dir"
mkdir -p "$dir/etc" "$dir/spool" "$dir/data"
chown postfix "$dir/data"
cat >"$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
myhostname = relay.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
default_transport = discard
relay_transport = discard
alias_maps =
alias_database =
EOF
# No chroot: the private queue has none of the files a chroot needs.
cat >"$dir/etc/master.cf" <<EOF
127.0.0.1:$port inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
proxymap  unix  - - n - - proxymap
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
showq     unix  n - n - - showq
pickup    unix  n - n 60 1 pickup
flush     unix  n - n 1000? 0 flush
error     unix  - - n - - error
retry     unix  - - n - - error
EOF
stop() {
	postfix -c "$dir/etc" stop >/dev/null 2>&1 || true
	sleep 1
	rm -rf "$dir"
}
trap stop EXIT
postfix -c "$dir/etc" start >/dev/null 2>&1 || { postfix -c "$dir/etc" check; exit 1; }
for _ in 1 2 3 4 5 6 7 8 9 10; do
	/usr/sbin/smtp-source -m 1 -f a@bench.test -t r@example.org "127.0.0.1:$port" 2>/dev/null && break
	sleep 1
done
echo "relay: Postfix $(postconf -d -h mail_version) queueing to $dir/spool, on $(df --output=source "$dir" | tail -1)"
ERRPD_BENCH_RELAY="127.0.0.1:$port" ./scripts/bench-dispatch.sh
echo "Postfix accepted $(grep -c 'status=sent' "$dir/maillog" || true) messages"
