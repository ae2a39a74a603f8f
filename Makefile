# Hearth: one entry point for people and CI.
#   make test     install what is needed, then lint, type-check and run every test
#   make test-fast  the same without the tests marked slow (for the edit-test loop; CI runs all)
#   make up       start the native stack (broker, database, services); docs/operations.md
#   make down     stop exactly what `make up` started
#   make status   each part's state, uptime, restarts, address, pid and RSS
#   make logs     follow the stack's logs, one line per event (SERVICE=ingest: only ingest)
#   make restart  restart processes of the running stack (SERVICE=ingest: only ingest)
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv

.PHONY: help install runtime-env lint typecheck pytest test test-fast up down status logs restart footprint

help:
	@echo "make test      install everything, run ruff, mypy and pytest"
	@echo "make test-fast the same, without the tests marked slow"
	@echo "make up        start the native stack (Mosquitto, PostgreSQL, services)"
	@echo "make down      stop what make up started"
	@echo "make status    each part's state, uptime, restarts, address, pid and RSS"
	@echo "make logs      follow the stack's logs (SERVICE=ingest: one process)"
	@echo "make restart   restart the stack's processes (SERVICE=ingest: one process)"
	@echo "make footprint measure each process's RSS, idle and after a load (bench/footprint)"

install:
	@scripts/install-tools
	$(UV) sync --all-packages --locked

lint: install
	$(UV) run ruff format --check .
	$(UV) run ruff check .

typecheck: install
	$(UV) run mypy

pytest: install
	$(UV) run pytest

test: install
	$(UV) run ruff format --check .
	$(UV) run ruff check .
	$(UV) run mypy
	$(UV) run pytest

test-fast: install
	$(UV) run ruff format --check .
	$(UV) run ruff check .
	$(UV) run mypy
	$(UV) run pytest -m "not slow"

# The native stack: thin wrappers around `hearth up|down|status|logs|restart`
# (hearth.platform.stack). SERVICE names one process for logs and restart.
SERVICE ?=
# The stack runs from an environment of its own with only the platform and the services (no dev
# group, no hearth-testing: no pytest, schemathesis, testcontainers, Socket.IO client), so each
# process stays small (docs/operations.md, "Memory"; bench/footprint --compare measures it).
# The tests and `make down/status/logs` use the dev environment (.venv).
RUNTIME_ENV ?= .venv-runtime
RUNTIME_PACKAGES := hearth-platform hearth-auth hearth-registry hearth-ingest hearth-realtime
runtime-env: install
	@UV_PROJECT_ENVIRONMENT=$(RUNTIME_ENV) $(UV) sync --locked --no-dev --quiet \
		$(addprefix --package ,$(RUNTIME_PACKAGES))

up: runtime-env
	@$(RUNTIME_ENV)/bin/hearth up

down:
	@$(UV) run --frozen hearth down

status:
	@$(UV) run --frozen hearth status || [ $$? -eq 3 ]

logs:
	@$(UV) run --frozen hearth logs $(SERVICE)

restart:
	@$(UV) run --frozen hearth restart $(SERVICE) || [ $$? -eq 3 ]

footprint:
	@$(UV) run --frozen python bench/footprint
