#!/usr/bin/env bash
# The HR dashboard (/app) end to end, in a real browser on the demo data.
#
#   1. The service on a fresh SQLite database and a free port; `demo seed`
#      (a year of data, 21 touchpoints, 3,000 candidates) and one key per
#      role from the CLI, plus a recruiter key the run revokes.
#   2. scripts/dashboard-browser.mjs in Debian's chromium (playwright-core,
#      axe-core, pinned in clients/typescript): signs in as admin, recruiter
#      and reporter through the form, visits every view each role may see,
#      in Vietnamese and English, times each view until it shows its data,
#      runs axe-core on each (serious or critical fails), logs an encounter
#      as the recruiter (double submit included) and finds it in the
#      journey and the overview, checks that the reporter sees no editing
#      control and is refused an admin operation, that revoking a key ends
#      its session and that signing out ends one; no console error, no CSP
#      violation, no request off the service. Screenshots go to docs/.
#   3. Through the API (bearer, not the browser): the recruiter's encounter
#      is recorded once, with the score, note and touchpoint given, in the
#      candidate's journey; the revoked key's sessions are gone.
#
#   TT_BIN=target/debug/touchpoint-tracker scripts/dashboard-e2e.sh
#
# TT_BIN: the service binary (default target/debug/touchpoint-tracker; this
# script does not build it). Without /usr/bin/chromium the check is skipped
# (a notice says so) unless CI=true, where it fails. About 1 minute.
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${TT_BIN:-}" ]; then
    TT_BIN=$ROOT/target/debug/touchpoint-tracker
elif [ "${TT_BIN#/}" = "$TT_BIN" ]; then
    TT_BIN=$CALLER/$TT_BIN
fi
TS=clients/typescript
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export PYTHONDONTWRITEBYTECODE=1

START=$SECONDS
step() { echo "== [$((SECONDS - START)) s] $*"; }
die() {
    echo "dashboard-e2e.sh: $*" >&2
    exit 1
}

[ -x "$TT_BIN" ] || die "$TT_BIN is not an executable: build the service (cargo build) or point TT_BIN at one"
if [ ! -x /usr/bin/chromium ]; then
    [ "${CI:-}" = true ] && die "/usr/bin/chromium is missing (apt-get install -y chromium); CI=true requires the browser check"
    echo "SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium): the dashboard was not checked in a browser"
    exit 0
fi
command -v node >/dev/null || die "node is needed for the browser check (Node.js 20 or later)"
[ -f "$TS/node_modules/playwright-core/package.json" ] && [ -f "$TS/node_modules/axe-core/axe.min.js" ] ||
    (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error)

WORK=$(mktemp -d)
SERVICE=
cleanup() {
    if [ -n "$SERVICE" ]; then
        kill "$SERVICE" 2>/dev/null || true
        wait "$SERVICE" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
show_log() {
    [ -s "$WORK/service.log" ] && { echo "--- service log (last 40 lines)"; tail -n 40 "$WORK/service.log"; }
    return 0
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- 1. the service on the demo data ------------------------------------------
step "service: fresh SQLite database, demo seed, a key per role"
PORT=$(free_port)
API=http://127.0.0.1:$PORT
export DATABASE_URL="sqlite://$WORK/tt.db?mode=rwc"
cli() { "$TT_BIN" "$@" 2>>"$WORK/cli.log" || { cat "$WORK/cli.log"; die "touchpoint-tracker $* failed"; }; }
cli demo seed --org demo
ADMIN=$(cli key create --org demo --role admin --name "Dashboard check: admin")
RECRUITER=$(cli key create --org demo --role recruiter --name "Dashboard check: recruiter")
REPORTER=$(cli key create --org demo --role reporter --name "Dashboard check: reporter")
REVOCABLE=$(cli key create --org demo --role recruiter --name "Dashboard check: to revoke")
RUST_LOG=${RUST_LOG:-warn} "$TT_BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/service.log" 2>&1 &
SERVICE=$!
python3 scripts/wait_ready.py "$API/healthz" "$SERVICE" || { cat "$WORK/service.log"; die "the service did not become ready"; }
echo "service on $API"

python3 - "$WORK/plan.json" "$API" "$ADMIN" "$RECRUITER" "$REPORTER" "$REVOCABLE" <<'EOF'
import json, sys
path, base, admin, recruiter, reporter, revocable = sys.argv[1:]
json.dump({
    "base": base,
    "tokens": {"admin": admin, "recruiter": recruiter, "reporter": reporter},
    "revocable_token": revocable,
    "screenshots": {
        "overview": "docs/dashboard-overview.png",
        "journey": "docs/dashboard-journey.png",
        "form": "docs/dashboard-log.png",
    },
}, open(path, "w"), indent=2)
EOF

# --- 2. the dashboard, in a browser ---------------------------------------------
step "browser: every view per role and language, axe-core, the form (scripts/dashboard-browser.mjs)"
node scripts/dashboard-browser.mjs "$WORK/plan.json" "$WORK/result.json" || { show_log; die "the browser check failed"; }

# --- 3. what the browser did, through the API ------------------------------------
step "the logged encounter and the revoked key's sessions, through the API"
python3 - "$WORK/result.json" "$API" "$ADMIN" "$DATABASE_URL" <<'EOF' || { show_log; die "verify failed"; }
import json, sqlite3, sys, urllib.parse, urllib.request

result_path, base, admin, database_url = sys.argv[1:]
result = json.load(open(result_path))
recorded = result["recorded"]

def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)

query = urllib.parse.urlencode({"external_ref": recorded["external_ref"]})
candidates = get(f"/api/v1/candidates?{query}")["items"]
assert len(candidates) == 1, f"one candidate {recorded['external_ref']!r}: {candidates}"
journey = get(f"/api/v1/candidates/{candidates[0]['id']}/journey")
encounters = journey["steps"]
matching = [
    e for e in encounters
    if e["touchpoint_id"] == recorded["touchpoint_id"]
    and e["score"] == recorded["score"]
    and e["note"] == recorded["note"]
]
assert len(matching) == 1, f"the form's encounter, once (a double submit records one): {encounters}"
assert len(encounters) == recorded.get("expected_encounters", 1), f"no other encounter: {encounters}"

# Sessions live in the database: the revoked key has none left.
path = database_url.removeprefix("sqlite://").split("?")[0]
with sqlite3.connect(path) as db:
    left = db.execute(
        "SELECT COUNT(*) FROM dashboard_sessions s JOIN api_keys k ON k.id = s.api_key_id "
        "WHERE k.revoked_at IS NOT NULL"
    ).fetchone()[0]
assert left == 0, f"{left} sessions of revoked keys remain"
print(f"verified: candidate {recorded['external_ref']}, one encounter (score {recorded['score']}), "
      "no session of a revoked key")
EOF

echo "dashboard-e2e.sh: all green in $((SECONDS - START)) s"
