#!/bin/sh
# The Eclipse image's entrypoint behaviour: started as root, give /mosquitto to the mosquitto
# user (a read-only config mount makes chown fail there: ignored), then run the command.
set -e
if [ "$(id -u)" = 0 ] && [ -d /mosquitto ]; then
    chown -R mosquitto:mosquitto /mosquitto 2>/dev/null || true
fi
exec "$@"
