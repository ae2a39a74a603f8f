# Hearth: one entry point for people and CI.
#   make test     install what is needed, then lint, type-check and run every test
#   make test-fast  the same without the tests marked slow (for the edit-test loop; CI runs all)
#   make up       start the native stack (broker, database, services); docs/operations.md
#   make down     stop exactly what `make up` started
#   make status   show each part as up or down (exit status 3 when something is down)
#   make logs     follow the stack's log (Ctrl-C to stop following)
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv

.PHONY: help install lint typecheck pytest test test-fast up down status logs

help:
	@echo "make test      install everything, run ruff, mypy and pytest"
	@echo "make test-fast the same, without the tests marked slow"
	@echo "make up        start the native stack (Mosquitto, PostgreSQL, services)"
	@echo "make down      stop what make up started"
	@echo "make status    show each part of the stack as up or down"
	@echo "make logs      follow the stack's log"

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

# The native stack: thin wrappers around `hearth up|down|status|logs` (hearth.platform.stack).
up: install
	@$(UV) run --frozen hearth up

down:
	@$(UV) run --frozen hearth down

status:
	@$(UV) run --frozen hearth status || [ $$? -eq 3 ]

logs:
	@$(UV) run --frozen hearth logs
