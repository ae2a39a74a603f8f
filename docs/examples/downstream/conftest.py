"""Your project's conftest.py: load Hearth's testcontainers fixtures."""

pytest_plugins = ["hearth.testing.containers"]
