#!/usr/bin/env bash
# schemathesis (PyPI) against a live deskd with its own OpenAPI document, all checks, a fixed seed.
# Not yet part of .ci/run: it still reports failures (see the issue note); run it locally:
#
#   bash compat/schemathesis.sh [max-examples]
#
# The admin logs in with an API token; operations that would revoke the run's own credentials
# (password changes, token revocation) are left out so the run keeps its access.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${DESKD_COMPAT_CACHE:-/var/tmp/deskd-compat}
examples=${1:-5}
[ -x "$cache/venv/bin/st" ] || { python3 -m venv "$cache/venv"; "$cache/venv/bin/pip" install -q schemathesis==4.32.5; }
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
"$cache/venv/bin/st" run "$url/api/v2/openapi.json" --checks all --seed 1 --max-examples "$examples" --workers 1 \
  -H "Authorization: $auth" --exclude-path-regex 'password|api_tokens/\{|oauth/tokens/\{'
