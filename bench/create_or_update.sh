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
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/release/deskd

work=$(mktemp -d)
port=${DESKD_BENCH_PORT:-18181}
token="bench-token-$(date +%s)"
case "$backend" in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres)
    pgdb="deskd_bench_$$"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pgdb" >/dev/null
    db="postgres://postgres@127.0.0.1:5432/$pgdb" ;;
  *) echo "backend: sqlite or postgres" >&2; exit 2 ;;
esac
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [ "$backend" = postgres ] && psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

DESKD_RATE_LIMITS=off DESKD_LOG=warn DESKD_ADMIN_EMAIL=bench@example.org DESKD_ADMIN_TOKEN=$token \
  "$bin" serve --listen 127.0.0.1:$port --database "$db" --db-connections 16 >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export DESKD_BENCH_AUTH="Basic $(printf 'bench@example.org/token:%s' "$token" | base64 -w0)"

peak_rss() { awk '/VmHWM/ {print int($2/1024) " MB"}' "/proc/$pid/status"; }

echo "== $backend, $conns connections, ${secs}s: distinct new users"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/distinct.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err"
echo "unexpected responses: $(wc -l <"$work/wrk.err")"; head -3 "$work/wrk.err"
echo "server peak RSS: $(peak_rss)"
if [ "$backend" = sqlite ]; then echo "WAL file: $(du -h "$work"/bench.db-wal 2>/dev/null | cut -f1)"; fi

echo "== $backend, $conns connections, ${secs}s: one existing user"
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/existing.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err"
echo "unexpected responses: $(wc -l <"$work/wrk.err")"; head -3 "$work/wrk.err"
echo "server peak RSS: $(peak_rss)"
