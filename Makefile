# Hearth: one entry point for people and CI.
#   make test   install what is needed, then lint, type-check and run every test
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV ?= uv

.PHONY: help install lint typecheck pytest test

help:
	@echo "make test      install everything, run ruff, mypy and pytest"

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
