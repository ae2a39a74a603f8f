# Offline stand-in for eclipse-mosquitto:2, built by deploy/images from the Debian base it
# imported: Debian's Mosquitto 2 from the Debian mirror. The contract docker-compose.yml relies on,
# as in the Eclipse image: user and group mosquitto with uid/gid 1883, config at
# /mosquitto/config/mosquitto.conf, state in /mosquitto/data, logs in /mosquitto/log (volumes),
# the dynamic security plugin at /usr/lib/mosquitto_dynamic_security.so, mosquitto_sub,
# mosquitto_pub and mosquitto_ctrl on PATH, an entrypoint that (as root) hands /mosquitto to the
# mosquitto user then runs the command, and the command mosquitto -c that config.
ARG BASE=hearth-offline/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    groupadd --system --gid 1883 mosquitto; \
    useradd --system --uid 1883 --gid 1883 --no-create-home --home-dir /var/empty \
        --shell /usr/sbin/nologin mosquitto; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        mosquitto mosquitto-clients; \
    plugin="$(dpkg -L mosquitto | grep '/mosquitto_dynamic_security\.so$')"; \
    ln -s "$plugin" /usr/lib/mosquitto_dynamic_security.so; \
    mkdir -p /mosquitto/config /mosquitto/data /mosquitto/log; \
    printf '%s\n' 'listener 1883' 'allow_anonymous false' 'persistence true' \
        'persistence_location /mosquitto/data/' 'log_dest stdout' \
        > /mosquitto/config/mosquitto.conf; \
    chown -R mosquitto:mosquitto /mosquitto; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    test "$(id -u mosquitto)" = 1883
COPY mosquitto-entrypoint.sh /docker-entrypoint.sh
VOLUME ["/mosquitto/data", "/mosquitto/log"]
EXPOSE 1883
LABEL org.opencontainers.image.description="Hearth offline stand-in for eclipse-mosquitto:2 (Debian's mosquitto), built by deploy/images"
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
