#!/usr/bin/env bash
# The statistics check of the generated-client suite
# (clients/python/tests/test_statistics.py) on PostgreSQL: scripts/clients.sh
# runs it on SQLite, this script on a throwaway cluster
# (scripts/with-postgres.sh). It creates a database on the cluster, starts
# the service binary on it, creates the `stats` organization and an admin key
# with the CLI, and runs that one test file against it.
#
#   TT_BIN=target/debug/touchpoint-tracker scripts/statistics-postgres.sh
#
# Run it after scripts/clients.sh (as .ci/run does): it uses that script's
# venv (target/clients-venv, or CLIENTS_VENV) with the pinned tools and the
# client generated from openapi/openapi.json, and does not build anything.
# PG_PORT picks the cluster's port, as for scripts/with-postgres.sh.
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${TT_BIN:-}" ]; then
    TT_BIN=$ROOT/target/debug/touchpoint-tracker
elif [ "${TT_BIN#/}" = "$TT_BIN" ]; then
    TT_BIN=$CALLER/$TT_BIN
fi
VENV=${CLIENTS_VENV:-target/clients-venv}
PY=$ROOT/$VENV/bin/python
die() {
    echo "statistics-postgres.sh: $*" >&2
    exit 1
}
[ -x "$TT_BIN" ] || die "$TT_BIN is not an executable: build the service (cargo build) or point TT_BIN at one"
"$PY" -c 'import scipy, statsmodels, touchpoint_tracker_client' 2>/dev/null ||
    die "$VENV lacks the generated client or scipy/statsmodels: run scripts/clients.sh first"

# Outside the cluster: start one and come back inside it.
if [ -z "${PG_URL:-}" ]; then
    export TT_BIN
    exec scripts/with-postgres.sh scripts/statistics-postgres.sh
fi

START=$SECONDS
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

"$PG_BIN/psql" "$PG_URL" -q -v ON_ERROR_STOP=1 -c 'CREATE DATABASE tt_statistics'
export DATABASE_URL="${PG_URL%/*}/tt_statistics"
"$TT_BIN" org create stats "Stats Corp" >/dev/null 2>&1 || die "could not create the stats organization on $DATABASE_URL"
STATS_TOKEN=$("$TT_BIN" key create --org stats --role admin --name "Statistics check" 2>/dev/null)

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=${RUST_LOG:-warn} "$TT_BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/service.log" 2>&1 &
SERVICE=$!
API=http://127.0.0.1:$PORT
"$PY" scripts/wait_ready.py "$API/healthz" "$SERVICE" || { cat "$WORK/service.log"; die "the service did not become ready"; }
echo "service on $API, PostgreSQL database tt_statistics"

status=0
TT_BASE_URL=$API TT_STATS_TOKEN=$STATS_TOKEN PYTHONDONTWRITEBYTECODE=1 \
    "$PY" -m pytest -p no:cacheprovider -q clients/python/tests/test_statistics.py || status=$?
if [ "$status" != 0 ]; then
    echo "--- service log (errors) ---"
    grep -E 'ERROR|WARN' "$WORK/service.log" | tail -20 || true
    die "the statistics check failed on PostgreSQL"
fi
echo "statistics-postgres.sh: the statistics check passed on PostgreSQL in $((SECONDS - START)) s"
