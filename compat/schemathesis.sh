#!/usr/bin/env bash
# schemathesis (PyPI) against a live deskd with its own OpenAPI document: every check but
# positive_data_acceptance, a fixed seed, a bounded number of examples. compat/run.sh runs it
# with 20 examples; for the full, slower version run it with more, e.g.
#
#   bash compat/schemathesis.sh 500
#
# positive_data_acceptance is left out because OpenAPI cannot say what deskd requires across
# parameters (one of `ids`/`external_ids`; `start_time` or `cursor`; a name when creating), that
# cursors must come from earlier pages, or that emails are unique: schema-valid requests of that
# kind are rightly refused. Every other check holds: no 5xx, responses as documented, and
# requests that break the schema refused.
#
# The admin logs in with an API token (the account owner, whom nobody can demote); operations
# that would take the run's own access away (password changes, token revocation) are left out,
# and so are test mode's /__deskd/ controls (this server is not in test mode: they are 404).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${DESKD_COMPAT_CACHE:-/var/tmp/deskd-compat}
examples=${1:-5}
[ -x "$cache/venv/bin/st" ] || { python3 -m venv "$cache/venv"; "$cache/venv/bin/pip" install -q -r "$here/requirements.txt"; }
cargo build --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/debug/deskd
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
DESKD_ADMIN_EMAIL=st@example.org DESKD_ADMIN_TOKEN=schemathesis-token DESKD_RATE_LIMITS=off DESKD_LOG=warn \
  "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/st.db" >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'deskd listening on' "$work/out" && break; sleep 0.1; done
url=$(sed -n 's/^deskd listening on //p' "$work/out")
auth="Basic $(printf 'st@example.org/token:schemathesis-token' | base64 -w0)"
# Run from the scratch folder: schemathesis keeps a cache in its working directory.
cd "$work"
"$cache/venv/bin/st" run "$url/api/v2/openapi.json" --checks all --exclude-checks positive_data_acceptance --seed 1 --max-examples "$examples" --workers 1 \
  -H "Authorization: $auth" --exclude-path-regex 'password|api_tokens/\{|oauth/tokens/\{|__deskd' \
  && echo "schemathesis: 1 passed, 0 failed" || { echo "schemathesis: 0 passed, 1 failed"; exit 1; }
