#!/usr/bin/env bash
# Runs the reports benchmark against a throwaway PostgreSQL cluster with
# fsync on, like a real server. Extra arguments go to the benchmark:
#
#   scripts/bench-postgres.sh                 # 100k and 1M encounters
#   scripts/bench-postgres.sh --sizes 20000
set -euo pipefail
cd "$(dirname "$0")/.."
export PG_FSYNC=on
exec scripts/with-postgres.sh bash -c '
    cargo bench --bench reports -- --database-url "$PG_URL" "$@"' bench-postgres "$@"
