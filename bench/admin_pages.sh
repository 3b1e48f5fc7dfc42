#!/usr/bin/env bash
# The admin pages' users list at scale: a SQLite account of N users (written straight into the
# database, 1 in 10 an agent), then the median time of 20 loads of each list page over HTTP with a
# signed-in session (curl, loopback). Usage: bench/admin_pages.sh [N] [debug|release]
set -euo pipefail
n=${1:-1000000}
profile=${2:-release}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$profile" = release ]; then cargo build --release --manifest-path "$root/Cargo.toml" -q; fi
bin=${CARGO_TARGET_DIR:-$root/target}/$profile/deskd
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
start() {
  DESKD_ADMIN_EMAIL=bench@example.org DESKD_ADMIN_TOKEN=bench-token-0123456789 DESKD_ADMIN_PASSWORD=bench-password-123 \
    DESKD_RATE_LIMITS=off DESKD_LOG=warn "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/b.db" >"$work/out" 2>&1 &
  pid=$!
  for _ in $(seq 200); do grep -q 'deskd listening on' "$work/out" && break; sleep 0.1; done
  url=$(sed -n 's/^deskd listening on //p' "$work/out" | tail -1)
}
start; kill $pid; wait $pid 2>/dev/null || true
t0=$(date +%s.%N)
sqlite3 "$work/b.db" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < $n)
INSERT INTO users (name, email, role, time_zone, locale, locale_id, created_at, updated_at)
SELECT 'Bench User ' || i, 'u' || i || '@bench.test', CASE WHEN i % 10 = 0 THEN 'agent' ELSE 'end-user' END,
       'UTC', 'en-US', 1, 1700000000 + i, 1700000000 + i FROM s;
INSERT INTO identities (user_id, type, value, value_norm, verified, is_primary, created_at, updated_at)
SELECT id, 'email', email, email, 1, 1, created_at, updated_at FROM users WHERE email LIKE '%@bench.test';
COMMIT;
SQL
echo "wrote $n users in $(echo "$(date +%s.%N) - $t0" | bc) s"
: >"$work/out"; start
jar=$work/jar
nonce=$(curl -s -c "$jar" -b "$jar" "$url/admin/login" | grep -o 'name="_csrf" value="[^"]*"' | sed 's/.*value="//;s/"//')
curl -s -o /dev/null -c "$jar" -b "$jar" --data-urlencode "_csrf=$nonce" --data-urlencode email=bench@example.org \
  --data-urlencode password=bench-password-123 "$url/admin/login"
last=$(sqlite3 "$work/b.db" "SELECT MAX(id) - 100 FROM users")
deep=$(printf '{"o":"id","v":%s}' "$last" | base64 -w0 | tr '+/' '-_' | tr -d '=')
median() { # PATH: the median of 20 loads, in ms
  for _ in $(seq 20); do curl -s -o /dev/null -b "$jar" -w '%{time_total}\n' "$url$1"; done |
    sort -n | sed -n 10p | awk '{printf "%.1f", $1 * 1000}'
}
echo "| page | median of 20 |"
echo "|---|---|"
for p in "/admin/users" "/admin/users?after=$deep" "/admin/users?role=agent" "/admin/users?role=agent&after=$deep" \
         "/admin/users?q=email:u77777@bench.test" "/admin/users?q=name:%22Bench%20User%20999%22" \
         "/admin/users?q=nobody-matches-this"; do
  echo "| \`${p//$deep/DEEP}\` | $(median "$p") ms |"
done
