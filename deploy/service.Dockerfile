# syntax=docker/dockerfile:1.7
# The one image pattern for every Hearth service (and the platform's own `hearth` command):
#
#   docker build -f deploy/service.Dockerfile --build-arg SERVICE=auth -t hearth/auth .
#
# SERVICE is the workspace member without its `hearth-` prefix (services/<SERVICE>/). Two
# layers: first the member's third-party dependencies, resolved from uv.lock alone (rebuilt
# only when uv.lock or a pyproject.toml changes), then the workspace's own code. The image
# runs as the unprivileged user `hearth`; its command is `python -m hearth.<SERVICE>` unless
# docker-compose.yml gives another. The build context is filtered by
# deploy/service.Dockerfile.dockerignore: .env, var/ and .venv/ never enter it.

ARG PYTHON_VERSION=3.11

# Every member's pyproject.toml and nothing else: what uv needs to see the workspace.
FROM python:${PYTHON_VERSION}-slim-bookworm AS manifests
WORKDIR /src
COPY services/ services/
RUN find services -mindepth 2 -maxdepth 2 ! -name pyproject.toml -exec rm -rf {} +

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG SERVICE
ARG APT_PACKAGES=""
ARG UV_VERSION=0.13.9
RUN test -n "${SERVICE}" || { echo "build with --build-arg SERVICE=<member>" >&2; exit 1; }
RUN if [ -n "${APT_PACKAGES}" ]; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${APT_PACKAGES} \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HEARTH_SERVICE=${SERVICE}
WORKDIR /app

# Layer 1: dependencies only.
COPY pyproject.toml uv.lock ./
COPY --from=manifests /src/services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "hearth-${SERVICE}"

# Layer 2: the workspace's code (the member and the members it depends on).
COPY services/ services/
COPY mosquitto/ mosquitto/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "hearth-${SERVICE}"

RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin hearth
USER hearth
CMD ["sh", "-c", "exec python -m \"hearth.${HEARTH_SERVICE}\""]
