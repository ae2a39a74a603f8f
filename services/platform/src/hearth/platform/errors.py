"""The errors hearth.platform raises; their messages never contain a secret.

Exception tree::

    HearthError                         [hearth.common.errors]
    └── PlatformError                   root of everything hearth.platform raises
        ├── SecretsError                the secrets file is missing, unreadable or lacks a key
        ├── BrokerConfigError           a broker config value or the template is unusable
        ├── BrokerUnavailable           the broker did not answer, or refused our login
        ├── DynsecError                 the dynamic security API answered a command with an error
        └── BootstrapError              the bootstrap cannot proceed (it says what to do)
"""

from __future__ import annotations

from hearth.common.errors import HearthError

__all__ = [
    "BootstrapError",
    "BrokerConfigError",
    "BrokerUnavailable",
    "DynsecError",
    "PlatformError",
    "ReconcileError",
    "SecretsError",
]


class PlatformError(HearthError):
    """Root of every error hearth.platform raises."""

    code = "platform"
    title = "Platform command failed"


class SecretsError(PlatformError):
    """The secrets file is missing, unreadable, or lacks a key that is needed."""

    code = "secrets"
    title = "Secrets file problem"


class BrokerConfigError(PlatformError):
    """A broker config value or the config template is unusable."""

    code = "broker_config"
    title = "Broker configuration problem"


class BrokerUnavailable(PlatformError):
    """The broker did not answer in time, or refused the login we presented."""

    code = "broker_unavailable"
    title = "Broker unavailable"


class DynsecError(PlatformError):
    """The dynamic security API answered a command with an error.

    ``command`` is the dynsec command name, ``error`` the broker's error text.
    """

    code = "dynsec"
    title = "Dynamic security command failed"

    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"dynsec {command} failed: {error}")
        self.command = command
        self.error = error


class BootstrapError(PlatformError):
    """The bootstrap cannot proceed; the message says what to do about it."""

    code = "bootstrap"
    title = "Broker bootstrap failed"


class ReconcileError(PlatformError):
    """``hearth reconcile`` could not log in to auth or get the registry's answer."""

    code = "reconcile"
    title = "Reconcile failed"
