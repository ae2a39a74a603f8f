"""hearth.testing: the pytest plugin every Hearth test suite uses (real broker, real database)."""
