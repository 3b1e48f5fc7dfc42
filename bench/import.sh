#!/usr/bin/env bash
# `deskd import` of N users (CSV) into a local deskd: users/s, and the importer's peak RSS.
#
#   bench/import.sh [sqlite|postgres] [users] [concurrency]
set -euo pipefail
backend=${1:-sqlite}
users=${2:-1000000}
concurrency=${3:-24}
port=${DESKD_BENCH_PORT:-18185}
. "$(dirname "$0")/common.sh"
python3 - "$work/users.csv" "$users" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("name,email,external_id,role,organization,tags,user_fields.plan\n")
    for i in range(n):
        f.write(f"Import User {i},imp{i}@example.org,imp-{i},end-user,,bulk;import,gold\n")
PY
echo "== $backend: deskd import of $users users, $concurrency jobs in flight"
/usr/bin/time -f "importer peak RSS: %M KB, wall %e s" "$bin" import "$work/users.csv" \
  --url "http://127.0.0.1:$port" --email bench@example.org --token "$token" --concurrency "$concurrency" 2>&1 >"$work/import.out" | tail -1
cat "$work/import.out"
echo "server peak RSS: $(peak_rss)"
