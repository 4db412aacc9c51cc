#!/usr/bin/env bash
# Runs the test suite against PostgreSQL: starts a throwaway cluster (initdb
# into a temporary directory, loopback port), runs `cargo test` with
# TEST_DATABASE_URL pointing at it (each test creates its own database), and
# stops the cluster however the tests end. Extra arguments go to cargo test.
#
#   scripts/test-postgres.sh                # the whole suite
#   scripts/test-postgres.sh --test api journey
set -euo pipefail
cd "$(dirname "$0")/.."

pg_bin=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then pg_bin=$dir; break; fi
done
if [ -z "$pg_bin" ]; then
    echo "PostgreSQL server binaries not found; install them with:" >&2
    echo "  apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi

port=${TEST_PG_PORT:-55432}
work=$(mktemp -d)
run_as=()
if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: run the cluster as an unprivileged user.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$work"
    run_as=(runuser -u postgres --)
fi

stop_cluster() {
    "${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop_cluster EXIT

"${run_as[@]}" "$pg_bin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 >/dev/null
# fsync off: a throwaway cluster does not need durability, and tests go faster.
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off" start >/dev/null
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
export TEST_PG_BIN="$pg_bin" TEST_PG_DATA="$work/data"
cargo test --workspace --locked "$@"
