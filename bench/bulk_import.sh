#!/usr/bin/env bash
# Bulk import benchmark: starts a release deskd on a fresh database (rate limits off) and runs
# bench/bulk_import.py against it, then prints the server's peak RSS.
#
#   bench/bulk_import.sh [sqlite|postgres] [users] [inflight]
set -euo pipefail
backend=${1:-sqlite}
users=${2:-1000000}
inflight=${3:-24}
port=${DESKD_BENCH_PORT:-18183}
. "$(dirname "$0")/common.sh"
echo "== $backend: $users users, $inflight requests in flight"
python3 "$here/bulk_import.py" --url "http://127.0.0.1:$port" --email bench@example.org --token "$token" --users "$users" --inflight "$inflight"
echo "server peak RSS: $(peak_rss)"
[ "$backend" = sqlite ] && echo "database: $(du -h "$work/bench.db" | cut -f1), WAL: $(du -h "$work/bench.db-wal" 2>/dev/null | cut -f1)"
