"""The services the native stack runs: one list, :data:`SERVICES`, each service's issue extends.

A :class:`ServiceSpec` says how to migrate and start one service. ``hearth up`` runs every
``migrate`` command (in list order, before any service starts), then starts every
``command`` under supervisord; ``hearth status`` checks each one's port; ``hearth down`` stops
them. Commands are argument lists; ``{placeholders}`` in them (and in ``env`` values) are
filled by :meth:`ServiceSpec.render`:

- ``{python}``: this interpreter (``sys.executable``), so ``{python} -m uvicorn ...`` runs in
  the project's environment;
- ``{host}`` and ``{port}``: where this service listens;
- ``{<name>_port}`` for every entry of :data:`~hearth.platform.stack_config.DEFAULT_PORTS`
  (``{broker_port}``, ``{auth_port}``...);
- ``{service_mqtt_port}``, ``{service_mqtt_ca_file}``: the broker as services reach it (the
  TLS port and the CA when ``HEARTH_MQTT_PLAIN=off``); ``{device_mqtt_port}``,
  ``{device_mqtt_tls}``, ``{device_mqtt_ca_file}``: as devices reach it (TLS when on);
- ``{database_url}``: the stack's database (``postgresql+asyncpg://``);
- ``{var_dir}``, ``{secrets_file}``.

Every service also gets, with its own prefix, ``HEARTH_<NAME>_DATABASE_URL``,
``HEARTH_<NAME>_MQTT_HOST``, ``HEARTH_<NAME>_MQTT_PORT`` (and ``_MQTT_CA_FILE`` over TLS),
``HEARTH_<NAME>_JWKS_URL``
(auth's JWKS on the auth port) and ``HEARTH_<NAME>_REPLICA`` = ``0`` (the native stack
runs replica 0 of each service: its broker login ``svc-<name>-0`` is bound to client id
``<name>-0``), plus ``HEARTH_SECRETS_FILE`` (:func:`service_env`).

Adding a service (its issue does this)::

    ServiceSpec(
        name="auth",
        command=("{python}", "-m", "uvicorn", "--factory", "hearth.auth.main:create_app",
                 "--host", "{host}", "--port", "{port}"),
        migrate=("{python}", "-m", "hearth.auth.migrate"),
    )
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["NATIVE_REPLICA", "SERVICES", "ServiceSpec", "render_args", "service_env"]

NATIVE_REPLICA: Final = "0"
"""The replica name of every service the native stack runs (the bootstrap's first replica)."""

_NAME = re.compile(r"[a-z][a-z0-9]{0,30}")


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """How the native stack migrates and runs one service.

    ``name`` is a lower-case word: the process name in supervisord.conf and in ``hearth
    status``, and the key of its port (``HEARTH_<NAME>_PORT``, default from
    ``DEFAULT_PORTS``). ``migrate`` is None when the service has no database.
    """

    name: str
    command: tuple[str, ...]
    migrate: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise ValueError(f"service name {self.name!r} is not a lower-case word")
        if not self.command:
            raise ValueError(f"service {self.name} has an empty command")
        if self.migrate is not None and not self.migrate:
            raise ValueError(f"service {self.name} has an empty migrate command (use None)")

    @property
    def prefix(self) -> str:
        """The prefix of its settings: ``HEARTH_<NAME>_``."""
        return f"HEARTH_{self.name.upper()}_"


def render_args(args: tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """Fill the ``{placeholders}`` of each argument; ``KeyError`` names an unknown one."""
    return [arg.format_map(values) for arg in args]


def service_env(spec: ServiceSpec, values: Mapping[str, str]) -> dict[str, str]:
    """The environment variables the stack gives ``spec`` (standard ones, then its own)."""
    prefix = spec.prefix
    env = {
        f"{prefix}DATABASE_URL": values["database_url"],
        f"{prefix}MQTT_HOST": values["host"],
        f"{prefix}MQTT_PORT": values["service_mqtt_port"],
        f"{prefix}MQTT_CA_FILE": values["service_mqtt_ca_file"],
        f"{prefix}JWKS_URL": f"http://{values['host']}:{values['auth_port']}/.well-known/jwks.json",
        f"{prefix}REPLICA": NATIVE_REPLICA,
    }
    env.update({key: value.format_map(values) for key, value in spec.env.items()})
    # An empty value is not set at all (the service's default applies: no CA file = plain).
    return {key: value for key, value in env.items() if value}


SERVICES: Final[tuple[ServiceSpec, ...]] = (
    ServiceSpec(
        name="auth",
        command=("{python}", "-m", "hearth.auth", "serve", "--host", "{host}", "--port", "{port}"),
        migrate=("{python}", "-m", "hearth.auth", "migrate"),
    ),
    ServiceSpec(
        name="registry",
        command=(
            "{python}",
            "-m",
            "hearth.registry",
            "serve",
            "--host",
            "{host}",
            "--port",
            "{port}",
        ),
        migrate=("{python}", "-m", "hearth.registry", "migrate"),
        env={
            "HEARTH_REGISTRY_AUTH_URL": "http://{host}:{auth_port}",
            # The config download tells devices this port (and the host, 127.0.0.1 unless
            # HEARTH_REGISTRY_DEVICE_BROKER_HOST is set for make up); with HEARTH_TLS the
            # TLS port and the CA (its PEM is in the download).
            "HEARTH_REGISTRY_DEVICE_BROKER_PORT": "{device_mqtt_port}",
            "HEARTH_REGISTRY_DEVICE_BROKER_TLS": "{device_mqtt_tls}",
            "HEARTH_REGISTRY_DEVICE_BROKER_CA_FILE": "{device_mqtt_ca_file}",
        },
    ),
    ServiceSpec(
        name="ingest",
        command=(
            "{python}",
            "-m",
            "hearth.ingest",
            "serve",
            "--host",
            "{host}",
            "--port",
            "{port}",
        ),
        migrate=("{python}", "-m", "hearth.ingest", "migrate"),
        env={"HEARTH_INGEST_REGISTRY_URL": "http://{host}:{registry_port}"},
    ),
    ServiceSpec(
        name="realtime",
        command=(
            "{python}",
            "-m",
            "hearth.realtime",
            "serve",
            "--host",
            "{host}",
            "--port",
            "{port}",
        ),
        env={"HEARTH_REALTIME_REGISTRY_URL": "http://{host}:{registry_port}"},
    ),
)
"""Every service of the native stack, in start order."""
