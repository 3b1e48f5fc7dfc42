# Shared by the bench scripts: build deskd, make a fresh database for $backend, start the server
# on $port with rate limits off, and clean up on exit. Sets $pid, $work, $token.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cargo build --release --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/release/deskd
work=$(mktemp -d)
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
peak_rss() { awk '/VmHWM/ {print int($2/1024) " MB"}' "/proc/$pid/status"; }
