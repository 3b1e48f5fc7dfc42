#!/usr/bin/env bash
# Bulk import benchmark: starts a release deskd on a fresh database (rate limits off) and runs
# bench/bulk_import.py against it, then prints the server's peak RSS.
#
#   bench/bulk_import.sh [sqlite|postgres] [users] [inflight]
set -euo pipefail
backend=${1:-sqlite}
users=${2:-1000000}
inflight=${3:-24}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cargo build --release --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/release/deskd
work=$(mktemp -d)
port=${DESKD_BENCH_PORT:-18183}
token="bench-token-$(date +%s)"
case "$backend" in
  sqlite) db="sqlite://$work/bench.db" ;;
  postgres)
    pgdb="deskd_bulk_$$"
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
  "$bin" serve --listen 127.0.0.1:$port --database "$db" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "== $backend: $users users, $inflight requests in flight"
python3 "$here/bulk_import.py" --url "http://127.0.0.1:$port" --email bench@example.org --token "$token" --users "$users" --inflight "$inflight"
echo "server peak RSS: $(awk '/VmHWM/ {print int($2/1024) " MB"}' "/proc/$pid/status")"
[ "$backend" = sqlite ] && echo "database: $(du -h "$work/bench.db" | cut -f1), WAL: $(du -h "$work/bench.db-wal" 2>/dev/null | cut -f1)"
