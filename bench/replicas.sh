#!/usr/bin/env bash
# N deskd replicas on one PostgreSQL behind HAProxy (deploy/haproxy.cfg's settings, health checks
# on /readyz), all on 127.0.0.1: create_or_update of distinct new users with wrk, then a bulk
# import, both through the balancer; then the same create_or_update straight at one replica when
# N=1, to show what the balancer costs.
#
#   bench/replicas.sh [replicas] [connections] [seconds] [bulk users]
#
# Installs haproxy and wrk with apt-get when they are missing (as root). Uses the PostgreSQL at
# 127.0.0.1:5432 (a fresh database, dropped at the end). With DRAIN=1, replica 1 gets SIGTERM in
# the middle of the create_or_update run: the balancer's checks see /readyz turn 503 during the
# replica's drain delay, and wrk's count of unexpected responses says what clients saw.
set -euo pipefail
n=${1:-2}
conns=${2:-64}
secs=${3:-15}
bulk=${4:-20000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
for tool in haproxy wrk; do
  if ! command -v "$tool" >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "$tool is needed: apt-get install $tool" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
cargo build --release --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/release/deskd
work=$(mktemp -d)
token="bench-token-$(date +%s)"
pgdb="deskd_replicas_$$"
lb_port=${DESKD_BENCH_PORT:-18200}
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $pgdb" >/dev/null
db="postgres://postgres@127.0.0.1:5432/$pgdb"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

servers=""
for i in $(seq "$n"); do
  port=$((lb_port + i))
  DESKD_RATE_LIMITS=off DESKD_LOG=warn DESKD_ADMIN_EMAIL=bench@example.org DESKD_ADMIN_TOKEN=$token \
    DESKD_DRAIN_DELAY_SECS=3 DESKD_METRICS=open \
    "$bin" serve --listen 127.0.0.1:$port --database "$db" --db-connections 16 >"$work/replica$i.log" 2>&1 &
  pids+=($!)
  servers+="    server replica$i 127.0.0.1:$port check"$'\n'
  # One at a time: the first migrates, the others find the schema done.
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
done
# deploy/haproxy.cfg with this run's ports and replicas.
sed -e "s/bind 127.0.0.1:8080/bind 127.0.0.1:$lb_port/" -e '/^    server replica/d' "$root/deploy/haproxy.cfg" >"$work/haproxy.cfg"
printf '%s' "$servers" >>"$work/haproxy.cfg"
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$lb_port/readyz" >/dev/null && break; sleep 0.1; done
sleep 2 # the health checks' rise count

export DESKD_BENCH_AUTH="Basic $(printf 'bench@example.org/token:%s' "$token" | base64 -w0)"
echo "== $n replicas behind haproxy, $conns connections, ${secs}s: create_or_update, distinct new users"
if [ "${DRAIN:-0}" = 1 ]; then
  (sleep $((secs / 2)); kill -TERM "${pids[0]}") &
fi
wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/distinct.lua" "http://127.0.0.1:$lb_port" 2>"$work/wrk.err"
echo "unexpected responses: $(wc -l <"$work/wrk.err")"; head -3 "$work/wrk.err"
for i in $(seq "$n"); do
  if m=$(curl -sf "http://127.0.0.1:$((lb_port + i))/metrics" 2>/dev/null); then
    c=$(printf '%s\n' "$m" | awk '/^deskd_http_requests_total\{.*create_or_update".*status="201"/ {s+=$2} END {print s+0}')
  else
    c=gone
  fi
  echo "replica$i answered: $c created"
done

echo "== $n replicas behind haproxy: bulk import of $bulk users"
python3 "$here/bulk_import.py" --url "http://127.0.0.1:$lb_port" --email bench@example.org --token "$token" --users "$bulk" --inflight 24

if [ "$n" = 1 ]; then
  echo "== the same replica without the balancer, $conns connections, ${secs}s"
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/distinct.lua" "http://127.0.0.1:$((lb_port + 1))" 2>"$work/wrk.err"
  echo "unexpected responses: $(wc -l <"$work/wrk.err")"
fi
