#!/usr/bin/env bash
# Builds the dashboard (/app) into src/api/dashboard_assets/app.js and
# app.css, the two assets the service embeds, and prints their sizes.
#
#   scripts/dashboard-build.sh           rebuild the committed assets
#   scripts/dashboard-build.sh --check   rebuild into a temporary directory and
#                                        fail, naming the file, when the result
#                                        differs from src/api/dashboard_assets
#
# Needs Node (18 or later) and the npm registry the first time: `npm ci` runs
# in dashboard/ when node_modules is missing or older than package-lock.json
# (pinned versions; see dashboard/package.json). The service itself needs
# no Node: the built assets are committed. CI runs --check.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

CHECK=false
case "${1:-}" in
    "") ;;
    --check) CHECK=true ;;
    *)
        echo "usage: scripts/dashboard-build.sh [--check]" >&2
        exit 2
        ;;
esac

command -v node >/dev/null || {
    echo "dashboard-build.sh: node is not installed (apt-get install nodejs npm)" >&2
    exit 1
}

# node_modules is stale when it was installed from another package-lock.json:
# npm ci writes the lock's hash beside it.
LOCK_HASH=$(sha256sum dashboard/package-lock.json | cut -d' ' -f1)
STAMP=dashboard/node_modules/.tt-lock-sha256
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_HASH" ]; then
    echo "dashboard-build.sh: npm ci in dashboard/"
    (cd dashboard && npm ci --no-audit --no-fund --loglevel=error)
    echo "$LOCK_HASH" >"$STAMP"
fi

ASSETS=src/api/dashboard_assets
if ! $CHECK; then
    exec node dashboard/build.mjs --out "$ASSETS"
fi

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
node dashboard/build.mjs --out "$OUT"
status=0
for name in app.js app.css; do
    if [ ! -f "$ASSETS/$name" ]; then
        echo "dashboard-build.sh: $ASSETS/$name is missing: run scripts/dashboard-build.sh and commit it" >&2
        status=1
    elif ! cmp -s "$OUT/$name" "$ASSETS/$name"; then
        echo "dashboard-build.sh: $ASSETS/$name differs from a build of dashboard/: run scripts/dashboard-build.sh and commit it" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "dashboard-build.sh: $ASSETS/app.js and app.css match a fresh build"
exit $status
