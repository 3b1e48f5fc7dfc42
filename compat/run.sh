#!/usr/bin/env bash
# The compatibility suite: starts deskd and drives it with real, unmodified Zendesk clients
# installed from their registries (zenpy from PyPI, node-zendesk from npm), with schemathesis and
# deskd's own OpenAPI document, and with the seeds' curl commands. Installs are cached in $DESKD_COMPAT_CACHE (default /var/tmp/deskd-compat).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cache=${DESKD_COMPAT_CACHE:-/var/tmp/deskd-compat}
mkdir -p "$cache"

# Clients, pinned; reinstalled only when the pins change.
if [ ! -x "$cache/venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$cache/requirements.txt"; then
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$cache/requirements.txt"
fi
if [ ! -d "$cache/node/node_modules/node-zendesk" ] || ! cmp -s "$here/package.json" "$cache/node/package.json"; then
  mkdir -p "$cache/node"
  cp "$here/package.json" "$cache/node/package.json"
  (cd "$cache/node" && npm install --silent --no-audit --no-fund)
fi

cargo build --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/debug/deskd
work=$(mktemp -d)
token="compat-$(date +%s)-$$"
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
DESKD_ADMIN_EMAIL=compat@example.org DESKD_ADMIN_TOKEN=$token DESKD_LOG=warn \
  "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/compat.db" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q 'deskd listening on' "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^deskd listening on //p' "$work/out")
[ -n "$url" ] || { cat "$work/err"; echo "deskd did not start"; exit 1; }

export DESKD_URL=$url DESKD_EMAIL=compat@example.org DESKD_TOKEN=$token DESKD_TAG=$$
export ZENPY_FORCE_NETLOC=${url#http://} ZENPY_FORCE_SCHEME=http
status=0
"$cache/venv/bin/python" "$here/zenpy_suite.py" || status=1
# The README's pytest example (deskd as a test double), against its own test-mode server.
PYTHONDONTWRITEBYTECODE=1 DESKD_BIN="$bin" "$cache/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/examples/python" \
  && echo "pytest example: 1 passed, 0 failed" || { echo "pytest example: 0 passed, 1 failed"; status=1; }
NODE_PATH="$cache/node/node_modules" node "$here/node_suite.js" || status=1
bash "$here/schemathesis.sh" 20 || status=1
bash "$here/curl_suite.sh" || status=1
# The admin pages in headless chromium (installs chromium and chromedriver when missing).
bash "$here/browser/run.sh" || status=1
exit $status
