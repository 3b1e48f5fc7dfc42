#!/usr/bin/env bash
# Load test of POST /api/v2/users/create_or_update with wrk, on loopback, bounded in time.
#
#   bench/create_or_update.sh [sqlite|postgres] [connections] [seconds]
#
# Starts a release deskd on a fresh database with rate limits off, runs wrk for distinct new
# users and then for one existing user, and prints requests/s, latency percentiles and the
# server's peak RSS. Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
backend=${1:-sqlite}
conns=${2:-64}
secs=${3:-20}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
port=${DESKD_BENCH_PORT:-18181}
. "$(dirname "$0")/common.sh"
export DESKD_BENCH_AUTH="Basic $(printf 'bench@example.org/token:%s' "$token" | base64 -w0)"


echo "== $backend, $conns connections, ${secs}s: distinct new users"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/distinct.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err"
echo "unexpected responses: $(wc -l <"$work/wrk.err")"; head -3 "$work/wrk.err"
echo "server peak RSS: $(peak_rss)"
if [ "$backend" = sqlite ]; then echo "WAL file: $(du -h "$work"/bench.db-wal 2>/dev/null | cut -f1)"; fi

echo "== $backend, $conns connections, ${secs}s: one existing user"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/existing.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err"
echo "unexpected responses: $(wc -l <"$work/wrk.err")"; head -3 "$work/wrk.err"
echo "server peak RSS: $(peak_rss)"
