"""Root conftest: loads Hearth's test harness for every test suite in the repo."""

pytest_plugins = [
    "hearth.testing.broker",
    "hearth.testing.database",
    "hearth.testing.tokens",
    "hearth.testing.apps",
    "hearth.testing.logs",
    "hearth.testing.services",
    "hearth.testing.sockets",
    "hearth.testing.containers",
]
