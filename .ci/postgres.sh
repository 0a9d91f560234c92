# Sourced by .ci/run: a throwaway PostgreSQL cluster for the PostgreSQL leg of the tests
# (the migrations, the append-only ledger, and the integration modules marked
# both_databases). Exports LINKWAY_TEST_POSTGRES_URL; stops the cluster when CI exits.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$pg_bin" ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -n "$pg_bin" ] && id postgres >/dev/null 2>&1; then
    pg_dir=$(mktemp -d)
    chown postgres "$pg_dir"
    # Throwaway data: durability only costs time (each test database is a fresh copy).
    pg_fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if su postgres -s /bin/sh -c "$pg_bin/initdb -D $pg_dir/data -A trust -U postgres >/dev/null \
        && $pg_bin/pg_ctl -D $pg_dir/data -l $pg_dir/log -w \
           -o '-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 $pg_fast' start >/dev/null"; then
        export LINKWAY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres"
        trap 'su postgres -s /bin/sh -c "$pg_bin/pg_ctl -D $pg_dir/data -m fast stop" >/dev/null 2>&1; rm -rf "$pg_dir"' EXIT
    else
        echo "ci: PostgreSQL did not start (see below); its checks will be skipped" >&2
        tail -n 5 "$pg_dir/log" >&2 || true
    fi
else
    echo "ci: no PostgreSQL available; the PostgreSQL checks will be skipped" >&2
fi
