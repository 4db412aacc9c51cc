#!/usr/bin/env bash
# Contract fuzzing: schemathesis (pinned) generates requests from the
# committed OpenAPI document and sends them to the live service, with an
# admin key, checking every response: no server error, status code,
# content type, headers and body conform to the document, invalid input is
# refused, valid input is accepted. Any failure fails the script.
#
#   scripts/fuzz-contract.sh                        # SQLite, a temporary file
#   DATABASE_URL=postgres://... scripts/fuzz-contract.sh
#
# FUZZ_EXAMPLES (default 60) sets the examples per operation and phase;
# FUZZ_SEED makes a run reproducible (CI uses the default).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=${FUZZ_VENV:-${CARGO_TARGET_DIR:-target}/fuzz-venv}
PORT=${FUZZ_PORT:-18731}
EXAMPLES=${FUZZ_EXAMPLES:-60}
SEED=${FUZZ_SEED:-20261123}
API=http://127.0.0.1:$PORT

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --locked --quiet
BIN=${CARGO_TARGET_DIR:-target}/debug/touchpoint-tracker

WORK=$(mktemp -d)
export DATABASE_URL=${DATABASE_URL:-sqlite://$WORK/fuzz.db}
"$BIN" org create fuzz "Fuzz Corp" 2>/dev/null
TOKEN=$("$BIN" key create --org fuzz --role admin --name fuzzer 2>/dev/null)

RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/service.log" 2>&1 &
SERVICE=$!
cleanup() {
    kill "$SERVICE" 2>/dev/null || true
    wait "$SERVICE" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    curl -sf "$API/healthz" >/dev/null && break
    sleep 0.1
done

# A few real resources, so operations on ids also reach existing rows.
post() {
    curl -sf -X POST "$API$1" -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "$2" >/dev/null
}
post /api/v1/touchpoints '{"name": "Careers site", "kind": "employer_created", "channel": "careers_site", "stage": "awareness"}'
post /api/v1/touchpoints '{"name": "Glassdoor", "kind": "true", "channel": "review_site", "stage": "consideration"}'
post /api/v1/candidates '{"external_ref": "ATS-1", "display_name": "Ada"}'
post /api/v1/encounters '{"candidate_id": 1, "touchpoint_id": 1, "occurred_at": "2026-03-02T10:00:00Z", "score": 7}'

# All four phases run, named so a default cannot drop one: the document's
# examples, coverage (boundary values of every documented bound: maxLength,
# minimum/maximum, minItems/maxItems, pattern, and just past each),
# fuzzing, and stateful: chains of calls on the links schemathesis infers
# from path parameters, response schemas and Location headers (the run
# prints how many links it covered).
#
# Every check runs but two: positive_data_acceptance counts any 4xx to a
# request that fits the schema as a failure, and this API refuses some
# schema-valid requests by rules a JSON schema cannot state: a candidate or
# touchpoint id that does not exist in the organization (422
# unknown_reference), a cursor it did not issue, `from` not before `to`, one
# of two alternative fields, control characters in text, a date-time in the
# future. Those refusals are tested in tests/api/errors.rs and ingest.rs.
# Re-examined for issue 15: the bounds the document now states (maxLength
# on every string parameter, cursors included; the batch's minItems and
# maxItems; the e-mail pattern; additionalProperties: false; integer
# ranges) are enforced by the server (tests/api/contract.rs), which
# negative_data_rejection checks, but the rules above still cannot be
# written in a schema, so the exclusion stays. The required checks (no
# server error; status code, content type, headers and body conform to the
# document) and negative_data_rejection all run.
#
# use_after_free is off too: it expects whatever a DELETE answered to be
# gone (404) afterwards, and two DELETEs of this API are documented to keep
# the resource readable: DELETE /api/v1/touchpoints/{id} archives (the
# touchpoint stays in the catalog and the reports, with `archived_at`) and
# DELETE /api/v1/candidates/{id} erases personal data (the candidate stays,
# de-identified, with `erased_at`). A per-operation setting does not reach
# the stateful phase where the check runs (tried with schemathesis 4.32.5).
# DELETE /api/v1/encounters/{id}, which does remove, is checked by
# tests/api/encounters.rs (a GET afterwards answers 404).
#
# One worker: with two, CPython 3.11 (Debian's and this machine's) once
# failed inside hypothesis with "AST constructor recursion depth mismatch",
# the interpreter's ast module not being safe across threads (a run error,
# not a finding); one worker draws the same cases with the same seed.
SCHEMATHESIS_HOOKS=scripts/fuzz_hooks.py "$VENV/bin/schemathesis" run openapi/openapi.json \
    --url "$API" \
    --header "Authorization: Bearer $TOKEN" \
    --generation-with-security-parameters false \
    --phases examples,coverage,fuzzing,stateful \
    --checks all \
    --exclude-checks positive_data_acceptance,use_after_free \
    --max-examples "$EXAMPLES" \
    --seed "$SEED" \
    ${FUZZ_ARGS:-} \
    --workers 1 \
    --request-timeout 30 \
    --generation-database none \
    --no-color \
    --report junit --report-dir "$WORK/report"
echo "contract fuzzing: no failures"
