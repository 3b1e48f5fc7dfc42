#!/usr/bin/env bash
# The admin pages in headless chromium (compat/browser/admin_test.js): installs chromium and
# chromedriver when missing, starts a deskd with an admin password, runs the test. Screenshots go
# to $DESKD_SCREENSHOTS (default /var/tmp/deskd-admin-screenshots), printed by the test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bash "$here/install.sh"
cargo build --manifest-path "$root/Cargo.toml" -q
bin=${CARGO_TARGET_DIR:-$root/target}/debug/deskd
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
token="browser-$(date +%s)-$$"
password="browser-admin-$$-password"
DESKD_ADMIN_EMAIL=browser@example.org DESKD_ADMIN_TOKEN=$token DESKD_ADMIN_PASSWORD=$password DESKD_LOG=warn \
  "$bin" serve --listen 127.0.0.1:0 --database "sqlite://$work/browser.db" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q 'deskd listening on' "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^deskd listening on //p' "$work/out")
[ -n "$url" ] || { cat "$work/err"; echo "deskd did not start"; exit 1; }
DESKD_URL=$url DESKD_EMAIL=browser@example.org DESKD_PASSWORD=$password DESKD_TOKEN=$token \
  DESKD_SCREENSHOTS=${DESKD_SCREENSHOTS:-/var/tmp/deskd-admin-screenshots} node "$here/admin_test.js"
