#!/usr/bin/env bash
# Instruction profile of the bulk path: runs a deskd binary under callgrind (which counts
# instructions, not seconds, so a loaded machine gives the same figures), imports N users with
# bench/bulk_import.py, stops the server gracefully and prints the top inclusive costs.
# Compare two builds by running it once per binary.
#
#   bench/profile_bulk.sh BINARY [users] [out-dir]
set -euo pipefail
bin=$1
users=${2:-20000}
out=${3:-$(mktemp -d)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
port=${DESKD_BENCH_PORT:-18187}
work=$(mktemp -d)
token="profile-token-$$"
trap 'rm -rf "$work"' EXIT
DESKD_RATE_LIMITS=off DESKD_LOG=warn DESKD_ADMIN_EMAIL=bench@example.org DESKD_ADMIN_TOKEN=$token \
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$bin" serve --listen 127.0.0.1:$port --database "sqlite://$work/bench.db" >"$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
python3 "$here/bulk_import.py" --url "http://127.0.0.1:$port" --email bench@example.org \
  --token "$token" --users "$users" --inflight 8 | tail -3
kill -TERM "$pid"; wait "$pid" || true
echo "profile: $out/callgrind.out"
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | head -60
