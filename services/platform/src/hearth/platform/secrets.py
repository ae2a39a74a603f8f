"""The generated secrets file: a git-ignored dotenv file of strong random values.

Where: ``var/secrets.env`` relative to the working directory unless ``HEARTH_SECRETS_FILE``
names another file (docs/decisions.md, "Secrets"). Mode 0600. Keys are the environment
names the services read (``HEARTH_<SERVICE>_MQTT_PASSWORD`` is ``mqtt_password`` of the
settings with prefix ``HEARTH_<SERVICE>_``).

:func:`ensure_secrets` creates missing values and never changes an existing one; keys it
does not know (added by hand or by a later issue) are kept as they are. What it creates is
listed in :data:`SECRET_SPECS`, the one list later issues extend.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets as _random
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hearth.common.service_identities import SERVICE_SCOPES, client_secret_key
from hearth.common.settings import DEFAULT_SECRETS_FILE
from hearth.platform.errors import SecretsError
from hearth.platform.logins import PLATFORM_SERVICES, check_service

__all__ = [
    "ADMIN_PASSWORD_KEY",
    "SECRETS_FILE_ENV",
    "SECRET_SPECS",
    "EnsuredSecrets",
    "SecretSpec",
    "ensure_secrets",
    "mqtt_password_key",
    "parse_dotenv",
    "read_secrets",
    "secrets_path",
    "set_secret",
]

SECRETS_FILE_ENV = "HEARTH_SECRETS_FILE"
"""The environment variable that points at another secrets file."""

ADMIN_PASSWORD_KEY = "HEARTH_BROKER_ADMIN_PASSWORD"  # noqa: S105 - a key name, not a value
"""The password of the broker's dynsec admin (``hearth-admin``)."""

_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")


def mqtt_password_key(service: str) -> str:
    """The key of a platform service's broker password: ``HEARTH_<SERVICE>_MQTT_PASSWORD``."""
    return f"HEARTH_{check_service(service).upper()}_MQTT_PASSWORD"


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One generated secret: its key and what it is for (written as a comment above it)."""

    key: str
    description: str
    nbytes: int = 32

    def __post_init__(self) -> None:
        if _KEY.fullmatch(self.key) is None:
            raise ValueError(f"secret key {self.key!r} is not an upper-case env name")
        if self.nbytes < 16:
            raise ValueError(f"secret {self.key} needs at least 16 random bytes")

    def generate(self) -> str:
        """A fresh random value: ``nbytes`` from :mod:`secrets`, URL-safe base64 (no quoting)."""
        return _random.token_urlsafe(self.nbytes)


SECRET_SPECS: tuple[SecretSpec, ...] = (
    SecretSpec(ADMIN_PASSWORD_KEY, "broker: password of the dynsec admin login hearth-admin"),
    *(
        SecretSpec(mqtt_password_key(service), f"broker: password of the login svc-{service}")
        for service in PLATFORM_SERVICES
    ),
    SecretSpec(
        "HEARTH_AUTH_KEY_ENCRYPTION_KEY", "auth: encrypts the token signing keys in the database"
    ),
    SecretSpec(
        "HEARTH_REGISTRY_DEVICE_KEY",
        "registry: seals the device passwords in the database (losing it loses every device login)",
    ),
    SecretSpec(
        "HEARTH_AUTH_ADMIN_PASSWORD",
        "auth: password of the first admin (HEARTH_AUTH_ADMIN_USERNAME)",
    ),
    *(
        SecretSpec(
            client_secret_key(service),
            f"auth: client secret of the {service} service identity (client-credentials grant)",
        )
        for service in SERVICE_SCOPES
    ),
)
"""Every secret the platform generates. Later issues append here (one list, one place)."""


@dataclass(frozen=True, slots=True)
class EnsuredSecrets:
    """What :func:`ensure_secrets` found: the file, the keys it created, every value in it."""

    path: Path
    created: tuple[str, ...]
    values: Mapping[str, str]


def secrets_path(environ: Mapping[str, str] | None = None) -> Path:
    """The secrets file to use: ``$HEARTH_SECRETS_FILE`` or ``var/secrets.env``."""
    env = os.environ if environ is None else environ
    return Path(env.get(SECRETS_FILE_ENV) or DEFAULT_SECRETS_FILE)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse dotenv text: ``KEY=value`` lines; blank lines and ``#`` comments are skipped.

    An optional ``export`` prefix and one pair of matching quotes around a value are removed.
    A later line wins over an earlier one with the same key.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise SecretsError(f"line {number} of the secrets file is not KEY=value")
        values[match.group(1)] = _unquote(match.group(2))
    return values


def read_secrets(path: Path | None = None) -> dict[str, str]:
    """Read a secrets file into a dict; :class:`SecretsError` when it does not exist."""
    target = secrets_path() if path is None else path
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(f"no secrets file at {target}: run `hearth secrets`") from None
    except OSError as exc:
        raise SecretsError(f"cannot read the secrets file {target}: {exc.strerror}") from None
    return parse_dotenv(text)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside ``path`` so two processes never both create values."""
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _text_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _appended(existing: str, new: Iterable[tuple[SecretSpec, str]]) -> str:
    lines = (
        [existing]
        if existing
        else ["# Hearth secrets: generated by `hearth secrets`. Never commit.\n"]
    )
    if lines[0] and not lines[0].endswith("\n"):
        lines.append("\n")
    for spec, value in new:
        lines.append(f"# {spec.description}\n{spec.key}={value}\n")
    return "".join(lines)


def ensure_secrets(
    path: Path | None = None, specs: Iterable[SecretSpec] = SECRET_SPECS
) -> EnsuredSecrets:
    """Create the secrets file or add the values it lacks; never change an existing value.

    The file (and its folder) are created as needed; the file ends up mode 0600 even when it
    existed with looser permissions. Existing lines, comments and unknown keys are kept.
    """
    target = secrets_path() if path is None else path
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        existing = _text_or_empty(target)
        values = parse_dotenv(existing)
        missing = [(spec, spec.generate()) for spec in specs if not values.get(spec.key)]
        if missing:
            _write_atomically(target, _appended(existing, missing))
            values.update({spec.key: value for spec, value in missing})
        elif target.stat().st_mode & 0o077:
            target.chmod(0o600)
    return EnsuredSecrets(target, tuple(spec.key for spec, _ in missing), values)


def set_secret(path: Path, key: str, value: str) -> None:
    """Replace the value of ``key`` in the secrets file (or add it); every other line stays.

    For the operator's commands that change a secret on purpose (``hearth admin reset``);
    :func:`ensure_secrets` never changes one.
    """
    if _KEY.fullmatch(key) is None or "\n" in value:
        raise SecretsError(f"cannot write {key!r}: not an upper-case env name and one-line value")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        existing = _text_or_empty(path)
        lines, found = [], False
        for line in existing.splitlines(keepends=True):
            match = _LINE.fullmatch(line.strip())
            if match is not None and match.group(1) == key:
                lines.append(f"{key}={value}\n")
                found = True
            else:
                lines.append(line)
        if not found:
            if lines and not lines[-1].endswith("\n"):
                lines.append("\n")
            lines.append(f"{key}={value}\n")
        _write_atomically(path, "".join(lines))
