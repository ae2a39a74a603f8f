# The one image pattern for every Hearth service (and the platform's own `hearth` command):
#
#   docker compose build                  (what docker-compose.yml does for each service), or
#   DOCKER_BUILDKIT=1 docker build -f deploy/service.Dockerfile --build-arg SERVICE=auth \
#       -t hearth/auth .
#
# SERVICE is the workspace member without its `hearth-` prefix (services/<SERVICE>/).
# PYTHON_IMAGE is the base: the official python image unless deploy/images chose its offline
# stand-in (docs/operations.md, "Without an image registry").
#
# Layers: the user and settings every image shares, then the member's third-party dependencies
# resolved from uv.lock alone (rebuilt only when uv.lock or a pyproject.toml changes), then the
# workspace's own code. uv itself is built once in a stage of its own and only mounted where it
# runs; downloads go through BuildKit cache mounts (pip's and uv's caches are kept between
# builds, never in an image). HTTPS from inside the build trusts the image's own
# CA certificates, plus the bundle given as the BuildKit secret `build_ca` when it is not empty
# (docker-compose.yml passes HEARTH_BUILD_CA_FILE): a secret is mounted for one RUN and never
# stored in a layer, so no image carries it.
#
# The image runs as the unprivileged user `hearth`; its command is `python -m hearth.<SERVICE>`
# unless docker-compose.yml gives another. The build context is filtered by
# deploy/service.Dockerfile.dockerignore: .env, var/ and .venv/ never enter it.
# No `# syntax=` line: the engine's built-in frontend has cache and secret mounts, and a
# syntax line would make BuildKit pull a frontend image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Every member's pyproject.toml and nothing else: what uv needs to see the workspace.
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY services/ services/
RUN find services -mindepth 2 -maxdepth 2 ! -name pyproject.toml -exec rm -rf {} +

# uv, only to build: its binary is mounted into the steps that run it, never in an image.
FROM ${PYTHON_IMAGE} AS uv
ARG UV_VERSION=0.13.9
RUN --mount=type=secret,id=build_ca \
    --mount=type=cache,target=/root/.cache/pip \
    if [ -s /run/secrets/build_ca ]; then export PIP_CERT=/run/secrets/build_ca; fi; \
    pip install --disable-pip-version-check "uv==${UV_VERSION}" \
    && cp "$(command -v uv)" /uv

# What every service's image shares; no build argument is used here, so this stage is built
# once and reused by every image.
FROM ${PYTHON_IMAGE} AS base
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin hearth
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /app

FROM base
ARG SERVICE
ARG APT_PACKAGES=""
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<member>" >&2; exit 1; }
RUN if [ -n "${APT_PACKAGES}" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${APT_PACKAGES} \
        && rm -rf /var/lib/apt/lists/*; \
    fi
ENV HEARTH_SERVICE=${SERVICE}
LABEL org.opencontainers.image.title="hearth-${SERVICE}" \
      org.opencontainers.image.description="Hearth: the ${SERVICE} workspace member (deploy/service.Dockerfile)"

# Layer 1: dependencies only.
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/services/ services/
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=secret,id=build_ca \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/build_ca ]; then export SSL_CERT_FILE=/run/secrets/build_ca; fi; \
    uv sync --frozen --no-dev --no-install-workspace --package "hearth-${SERVICE}"

# Layer 2: the workspace's code (the member and the members it depends on; building them
# needs their build backend, hatchling, from PyPI).
COPY services/ services/
COPY mosquitto/ mosquitto/
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=secret,id=build_ca \
    --mount=type=cache,target=/root/.cache/uv \
    if [ -s /run/secrets/build_ca ]; then export SSL_CERT_FILE=/run/secrets/build_ca; fi; \
    uv sync --frozen --no-dev --package "hearth-${SERVICE}"

USER hearth
CMD ["sh", "-c", "exec python -m \"hearth.${HEARTH_SERVICE}\""]
