#!/bin/sh
# bench-dispatch.sh: errpd catching up on 20,000 due notices through
# Postfix's smtp-sink with the Ascio stand-in, next to smtp-source sending
# the same number of messages of the same size to the same smtp-sink at the
# same concurrency. Needs the postfix package (smtp-sink, smtp-source).
# ERRPD_BENCH_NOTICES changes the count, ERRPD_BENCH_CONNECTIONS the
# concurrency (4).
set -eu
cd "$(dirname "$0")/.."
ERRPD_BENCH=1 go test -count=1 -run '^TestCatchUpRate$' -v -timeout 30m ./e2e/ 2>&1 | grep -E 'relay:|errpd catch-up|errpd store|smtp-source|^(ok|FAIL|---)'
