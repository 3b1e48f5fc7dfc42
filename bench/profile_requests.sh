#!/usr/bin/env bash
# Instruction profile of create_or_update: runs a deskd binary under callgrind (instructions, not
# seconds, so a loaded machine gives the same figures), sends a fixed number of requests with
# wrk (4 connections; distinct new users or one existing user), stops the server gracefully and
# prints instructions per request and the top inclusive costs. Compare builds by running it once
# per binary.
#
#   bench/profile_requests.sh BINARY [distinct|existing] [seconds] [out-dir]
set -euo pipefail
bin=$1
script=${2:-existing}
secs=${3:-20}
out=${4:-$(mktemp -d)}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
port=${DESKD_BENCH_PORT:-18188}
work=$(mktemp -d)
token="profile-token-$$"
trap 'rm -rf "$work"' EXIT
DESKD_RATE_LIMITS=off DESKD_LOG=warn DESKD_ADMIN_EMAIL=bench@example.org DESKD_ADMIN_TOKEN=$token \
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" --dump-instr=no \
  "$bin" serve --listen 127.0.0.1:$port --database "sqlite://$work/bench.db" >"$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
export DESKD_BENCH_AUTH="Basic $(printf 'bench@example.org/token:%s' "$token" | base64 -w0)"
# One request first so that startup and the first login are not in the per-request figure's
# noise; then the timed run, whose request count divides the total.
curl -sf -o /dev/null -H "Authorization: $DESKD_BENCH_AUTH" "http://127.0.0.1:$port/api/v2/users/me"
wrk -t1 -c4 -d"${secs}s" -s "$here/$script.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err" | tee "$out/wrk.txt" | grep -E "requests in"
kill -TERM "$pid"; wait "$pid" || true
requests=$(grep -oE '^ *[0-9]+ requests in' "$out/wrk.txt" | grep -oE '[0-9]+')
total=$(callgrind_annotate "$out/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "requests: $requests; instructions per request (startup included): $((total / requests))"
echo "profile: $out/callgrind.out"
callgrind_annotate --inclusive=yes "$out/callgrind.out" 2>/dev/null | head -80
