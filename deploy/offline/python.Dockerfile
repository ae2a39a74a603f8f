# Offline stand-in for python:3.11-slim-bookworm, built by deploy/images from the Debian base
# it imported (debootstrap): Debian's own Python 3.11 from the Debian mirror, no HTTPS needed.
# The contract deploy/service.Dockerfile relies on: `python` and `pip` on PATH, pip installs
# into the system interpreter as root (as in the official image), a C.UTF-8 locale, `useradd`.
# No CA bundle in here: builds get the host's as a BuildKit secret (docs/operations.md).
ARG BASE=hearth-offline/debian:bookworm
FROM ${BASE}
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3.11 python3-pip; \
    ln -s python3 /usr/bin/python; \
    test -x /usr/bin/pip; \
    rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    python --version
ENV LANG=C.UTF-8 \
    PYTHON_VERSION=3.11
LABEL org.opencontainers.image.description="Hearth offline stand-in for python:3.11-slim-bookworm (Debian's python3.11), built by deploy/images"
CMD ["python3"]
