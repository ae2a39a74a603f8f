#!/bin/bash
# The official postgres image's entrypoint behaviour, for what docker-compose.yml uses:
# - a first argument starting with "-" is an option to postgres;
# - `postgres` started as root: own PGDATA and the socket folder, then re-run as postgres;
# - an empty PGDATA is initialised: superuser POSTGRES_USER (default postgres) with
#   POSTGRES_PASSWORD (required), database POSTGRES_DB (default: the user's name), local
#   connections trusted, TCP connections with scram-sha-256; the server is only started for
#   clients afterwards (so pg_isready over TCP fails until the database exists);
# - then the command replaces this script (the server is PID 1 and gets the stop signal).
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "docker-entrypoint: POSTGRES_PASSWORD must be set to initialise the database" >&2
        exit 1
    fi
    user="${POSTGRES_USER:-postgres}"
    database="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}
    rm -f "$pwfile"
    printf '%s\n' "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$database" != postgres ]; then
        # a server for this step only: no TCP listener, so nothing reports ready too early
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
        psql -v ON_ERROR_STOP=1 --username "$user" --dbname postgres \
            --set db="$database" <<<'CREATE DATABASE :"db";'
        pg_ctl -D "$PGDATA" -m fast -w stop
    fi
    echo "docker-entrypoint: PostgreSQL init process complete; ready for start up."
fi

exec "$@"
