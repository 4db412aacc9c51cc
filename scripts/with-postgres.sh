#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: initdb into a temporary
# directory, a loopback port, and the cluster stopped however the command
# ends. The command sees PG_URL (the server's `postgres` database), PG_BIN
# and PG_DATA.
#
#   scripts/with-postgres.sh <command> [args...]
#
# PG_PORT picks the port (default 55432). The cluster runs with fsync=off
# (a throwaway cluster needs no durability) unless PG_FSYNC=on.
set -euo pipefail

pg_bin=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ]; then pg_bin=$dir; break; fi
done
if [ -z "$pg_bin" ]; then
    echo "PostgreSQL server binaries not found; install them with:" >&2
    echo "  apt-get update && apt-get install -y postgresql" >&2
    exit 1
fi

port=${PG_PORT:-55432}
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
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=${PG_FSYNC:-off}" \
    start >/dev/null
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2

export PG_URL="postgres://postgres@127.0.0.1:$port/postgres" PG_BIN="$pg_bin" PG_DATA="$work/data"
"$@"
