#!/usr/bin/env bash
# Read latency at 1M users: loads N users with bulk_import.py, then runs reads.py.
#
#   bench/reads.sh [sqlite|postgres] [users]
set -euo pipefail
backend=${1:-sqlite}
users=${2:-1000000}
port=${DESKD_BENCH_PORT:-18184}
. "$(dirname "$0")/common.sh"
tag=r$(date +%s)
python3 "$here/bulk_import.py" --url "http://127.0.0.1:$port" --email bench@example.org --token "$token" --users "$users" --tag "$tag"
python3 "$here/reads.py" --url "http://127.0.0.1:$port" --email bench@example.org --token "$token" --tag "$tag" --depth $((users * 9 / 10))
echo "server peak RSS: $(peak_rss)"
