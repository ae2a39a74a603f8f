"""The ``.env`` file docker compose reads: every platform secret plus the database password.

``hearth deploy-env`` (or ``deploy/make-env``) creates ``.env`` beside docker-compose.yml, or
adds the values it lacks; it never changes an existing value. The file is the secrets file
format (:mod:`hearth.platform.secrets`, mode 0600, git-ignored): compose substitutes its
values into docker-compose.yml, whose ``${VAR:?...}`` references refuse to start without
them, and the bootstrap containers read it as their secrets file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from hearth.platform.secrets import SECRET_SPECS, EnsuredSecrets, SecretSpec, ensure_secrets

__all__ = ["DEPLOY_SECRET_SPECS", "POSTGRES_PASSWORD_KEY", "ensure_deploy_env"]

POSTGRES_PASSWORD_KEY: Final = "HEARTH_POSTGRES_PASSWORD"  # noqa: S105 - a key name, not a value
"""The password of the ``hearth`` role of the compose PostgreSQL."""

DEPLOY_SECRET_SPECS: Final[tuple[SecretSpec, ...]] = (
    *SECRET_SPECS,
    SecretSpec(POSTGRES_PASSWORD_KEY, "compose: password of the PostgreSQL role hearth"),
)
"""What the compose ``.env`` holds: the platform's secrets and the compose-only ones."""


def ensure_deploy_env(path: Path = Path(".env")) -> EnsuredSecrets:
    """Create ``path`` or add the values it lacks (see the module docstring)."""
    return ensure_secrets(path, DEPLOY_SECRET_SPECS)
