#!/usr/bin/env bash
# The candidate pulse survey end to end, as a candidate meets it: the
# invitation e-mail through a real SMTP server, the survey page in a real
# browser, the answer in the API.
#
#   1. An SMTP sink (scripts/smtp_sink.py, aiosmtpd) on a free port, writing
#      each message it receives to a directory.
#   2. The service on a fresh SQLite database and a free port, sending mail
#      to the sink (SMTP_URL, SMTP_FROM) with links under its own address
#      (PUBLIC_URL); an organization and an admin key from the CLI.
#   3. scripts/survey_e2e.py setup: a touchpoint, four candidates, an
#      invitation in vi and one in en sent by e-mail, one of each revoked;
#      the two e-mails checked (language, the eleven ?score=N links, no
#      candidate name).
#   4. scripts/survey-browser.mjs in Debian's chromium: each survey answered
#      with the keyboard from the e-mail's link; axe-core on the survey,
#      422, thank-you, 409, 410 and 404 pages in both languages; screenshots
#      docs/survey-vi.png and docs/survey-en.png. Without /usr/bin/chromium
#      the answers are posted as a plain form instead, unless CI=true, where
#      a missing chromium fails.
#   5. scripts/survey_e2e.py verify: each answer is a candidate_survey
#      encounter in its candidate's journey with the score and comment
#      given, the invitations say answered, the survey-responses report
#      counts them, and the public POST answers 409, 410 and 404.
#
#   TT_BIN=target/debug/touchpoint-tracker scripts/survey-e2e.sh
#
# TT_BIN: the service binary (default target/debug/touchpoint-tracker; this
# script does not build it). The Python tools come from clients.sh's venv
# (target/clients-venv, CLIENTS_VENV to change it; created from
# clients/python/requirements.txt when missing), the npm ones from
# clients/typescript (npm ci when missing). About 15 s.
set -euo pipefail
CALLER=$PWD
cd "$(dirname "$0")/.."
ROOT=$PWD

# The default binary is the repository's debug build; a relative TT_BIN is
# taken from where the script was called.
if [ -z "${TT_BIN:-}" ]; then
    TT_BIN=$ROOT/target/debug/touchpoint-tracker
elif [ "${TT_BIN#/}" = "$TT_BIN" ]; then
    TT_BIN=$CALLER/$TT_BIN
fi
VENV=${CLIENTS_VENV:-target/clients-venv}
TS=clients/typescript
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export PYTHONDONTWRITEBYTECODE=1

START=$SECONDS
step() { echo "== [$((SECONDS - START)) s] $*"; }
die() {
    echo "survey-e2e.sh: $*" >&2
    exit 1
}

[ -x "$TT_BIN" ] || die "$TT_BIN is not an executable: build the service (cargo build) or point TT_BIN at one"

WORK=$(mktemp -d)
SERVICE=
SINK=
cleanup() {
    for pid in $SERVICE $SINK; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
# On failure, the service's and the sink's logs say what they saw.
show_logs() {
    for log in "$WORK/service.log" "$WORK/sink.log"; do
        [ -s "$log" ] && { echo "--- $log (last 40 lines)"; tail -n 40 "$log"; }
    done
    return 0
}

# --- tools -----------------------------------------------------------------
step "tools: venv $VENV, npm packages of $TS"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -c 'import aiosmtpd' 2>/dev/null ||
    "$PY" -m pip install --quiet --disable-pip-version-check -r clients/python/requirements.txt
BROWSER=1
if [ ! -x /usr/bin/chromium ]; then
    [ "${CI:-}" = true ] && die "/usr/bin/chromium is missing (apt-get install -y chromium); CI=true requires the browser check"
    echo "SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium): no browser, no axe, no screenshots;"
    echo "         the answers are posted as a plain form instead"
    BROWSER=0
fi
if [ "$BROWSER" = 1 ]; then
    command -v node >/dev/null || die "node is needed for the browser check (Node.js 20 or later)"
    [ -f "$TS/node_modules/playwright-core/package.json" ] && [ -f "$TS/node_modules/axe-core/axe.min.js" ] ||
        (cd "$TS" && npm ci --no-audit --no-fund --loglevel=error)
fi

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- 1. the SMTP sink --------------------------------------------------------
step "smtp sink (scripts/smtp_sink.py)"
SMTP_PORT=$(free_port)
MAIL=$WORK/mail
"$PY" scripts/smtp_sink.py --port "$SMTP_PORT" "$MAIL" >"$WORK/sink.log" 2>&1 &
SINK=$!
for _ in $(seq 100); do # at most 10 s
    grep -qs 'listening on' "$WORK/sink.log" && break
    kill -0 "$SINK" 2>/dev/null || { cat "$WORK/sink.log"; die "the SMTP sink exited"; }
    sleep 0.1
done
grep -q 'listening on' "$WORK/sink.log" || { cat "$WORK/sink.log"; die "the SMTP sink did not start"; }
echo "sink on 127.0.0.1:$SMTP_PORT, writing to $MAIL"

# --- 2. the service ----------------------------------------------------------
step "service: fresh SQLite database, mail to the sink"
PORT=$(free_port)
API=http://127.0.0.1:$PORT
export DATABASE_URL="sqlite://$WORK/tt.db?mode=rwc"
"$TT_BIN" org create acme "Acme Corp" >/dev/null 2>"$WORK/cli.log" || { cat "$WORK/cli.log"; die "org create failed"; }
ADMIN_TOKEN=$("$TT_BIN" key create --org acme --role admin --name "Survey check" 2>"$WORK/cli.log") ||
    { cat "$WORK/cli.log"; die "key create failed"; }
# A local relay without TLS; links in the e-mails point at this service.
# The survey pages' per-address rate limit (30 a minute by default) stays on,
# raised above the 70-odd requests the browser makes from one address.
SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" SMTP_FROM=surveys@example.test PUBLIC_URL=$API \
    SURVEY_RATE_PER_MINUTE=600 SURVEY_RATE_BURST=300 \
    RUST_LOG=${RUST_LOG:-warn} "$TT_BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/service.log" 2>&1 &
SERVICE=$!
"$PY" scripts/wait_ready.py "$API/healthz" "$SERVICE" || { cat "$WORK/service.log"; die "the service did not become ready"; }
echo "service on $API"
export TT_API=$API TT_TOKEN=$ADMIN_TOKEN

# --- 3. invitations and their e-mails -----------------------------------------
step "invitations (vi, en) sent by e-mail; the e-mails checked"
"$PY" scripts/survey_e2e.py setup --mail "$MAIL" --plan "$WORK/plan.json" || { show_logs; die "setup or e-mail check failed"; }

# --- 4. the candidate, in a browser --------------------------------------------
if [ "$BROWSER" = 1 ]; then
    step "browser: keyboard answers, axe-core, screenshots (scripts/survey-browser.mjs)"
    node scripts/survey-browser.mjs "$WORK/plan.json" "$WORK/result.json" || { show_logs; die "the browser check failed"; }
else
    step "no browser: the answers as a plain form POST"
    "$PY" scripts/survey_e2e.py answer --plan "$WORK/plan.json" --result "$WORK/result.json"
fi

# --- 5. the answers, through the API --------------------------------------------
step "the answers in the journey, the invitations and the survey report"
"$PY" scripts/survey_e2e.py verify --plan "$WORK/plan.json" --result "$WORK/result.json" || { show_logs; die "verify failed"; }

echo "survey-e2e.sh: all green in $((SECONDS - START)) s"
