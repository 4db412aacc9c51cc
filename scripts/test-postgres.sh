#!/usr/bin/env bash
# Runs the test suite against PostgreSQL: a throwaway cluster
# (scripts/with-postgres.sh), with TEST_DATABASE_URL pointing at it so each
# test creates its own database. Extra arguments go to cargo test.
#
#   scripts/test-postgres.sh                # the whole suite
#   scripts/test-postgres.sh --test api journey
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/with-postgres.sh bash -c '
    export TEST_DATABASE_URL="$PG_URL" TEST_PG_BIN="$PG_BIN" TEST_PG_DATA="$PG_DATA"
    cargo test --workspace --locked "$@"' test-postgres "$@"
