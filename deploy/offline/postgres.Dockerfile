# Offline stand-in for postgres:15, built by deploy/images from the Debian base it imported:
# Debian's PostgreSQL 15 from the Debian mirror. The contract docker-compose.yml relies on, as in
# the official image: user postgres (uid/gid 999), PGDATA=/var/lib/postgresql/data (a volume),
# the server programs and pg_isready on PATH, the entrypoint that initialises an empty PGDATA
# from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (scram-sha-256 for TCP clients) and then
# runs the server as postgres listening on every interface, port 5432, and SIGINT as stop
# signal (a fast shutdown). Scripts in /docker-entrypoint-initdb.d are not supported.
ARG BASE=hearth-offline/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    groupadd --system --gid 999 postgres; \
    useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres; \
    mkdir -p /var/lib/postgresql /etc/postgresql-common; \
    chown -R postgres:postgres /var/lib/postgresql; \
    echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15; \
    sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" \
        /usr/share/postgresql/15/postgresql.conf.sample; \
    grep -F "listen_addresses = '*'" /usr/share/postgresql/15/postgresql.conf.sample; \
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    test "$(id -u postgres)" = 999
ENV LANG=C.UTF-8 \
    PG_MAJOR=15 \
    PATH=$PATH:/usr/lib/postgresql/15/bin \
    PGDATA=/var/lib/postgresql/data
RUN install -d -o postgres -g postgres -m 1777 "$PGDATA"
VOLUME /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
LABEL org.opencontainers.image.description="Hearth offline stand-in for postgres:15 (Debian's postgresql-15), built by deploy/images"
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
