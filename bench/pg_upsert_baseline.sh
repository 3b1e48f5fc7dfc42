#!/usr/bin/env bash
# What PostgreSQL itself sustains here: single-row upserts of distinct new rows (a users-like
# table with a unique normalised email), one transaction each, from 64 pgbench clients: the
# ceiling create_or_update on PostgreSQL is compared with.
#
#   bench/pg_upsert_baseline.sh [clients] [seconds]
set -euo pipefail
clients=${1:-64}
secs=${2:-15}
db="deskd_pgbase_$$"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db" >/dev/null
trap 'psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
psql -h 127.0.0.1 -U postgres -d "$db" -qc "CREATE TABLE u (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, updated_at BIGINT NOT NULL); CREATE UNIQUE INDEX u_email ON u (lower(email));"
script=$(mktemp)
cat >"$script" <<'SQL'
\set n random(1, 1000000000)
INSERT INTO u (name, email, updated_at) VALUES ('Bench ' || :client_id || '-' || :n, 'b' || :client_id || '-' || :n || '@example.org', 1)
  ON CONFLICT (lower(email)) DO UPDATE SET name = EXCLUDED.name, updated_at = EXCLUDED.updated_at;
SQL
pgbench -h 127.0.0.1 -U postgres -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$script" "$db" | grep -E "tps|latency average"
rm -f "$script"
