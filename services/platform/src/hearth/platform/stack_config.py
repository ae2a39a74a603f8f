"""Where the native stack keeps its state and which ports it uses, read from the environment.

Everything the stack writes lives under one folder, ``var/`` in the working directory unless
``HEARTH_VAR_DIR`` says otherwise (so a test can run a whole stack in a temporary folder)::

    var/secrets.env            generated secrets (HEARTH_SECRETS_FILE overrides), mode 0600
    var/stack.env              what the services are told: database URL, broker port... (0600)
    var/supervisord.conf       what supervisord runs (rendered by every `hearth up`)
    var/database.json          the database choice, remembered (0600)
    var/mosquitto.conf         the broker config (native preset of mosquitto/hearth.conf.template)
    var/mosquitto/             broker persistence and its dynamic-security.json
    var/postgres/              the PostgreSQL cluster of our own, when the stack started one
    var/run/*.json             process records (pid + start time) of what `hearth up` started
    var/run/*.starts           how often each process was started (restarts, crash loops)
    var/log/<name>.log         each process's output (rotated by supervisord: .1 ... .5)
    var/log/supervisord.log    supervisord's own events (spawned, exited, gave up)
    var/log/hearth.log         what `hearth up`/`down` did, and the migrations' output
    var/web/nginx.conf         the front door's config (hearth.platform.front_door)
    var/web/site/              what the front door serves at / and /docs
    var/tls/                   the platform's CA and the front door's certificate (HEARTH_TLS)

Environment variables (docs/operations.md has the table): ``HEARTH_VAR_DIR``,
``HEARTH_SECRETS_FILE``, ``HEARTH_BROKER_PORT`` and ``HEARTH_<NAME>_PORT`` for each entry
of :data:`DEFAULT_PORTS`, ``HEARTH_POSTGRES`` (``auto``, ``existing``, ``own``),
``HEARTH_POSTGRES_URL``, ``HEARTH_POSTGRES_SWITCH`` (``yes``: switch to the database asked
for), ``HEARTH_DATABASE_NAME``, ``HEARTH_OWN_POSTGRES_PORT``, ``HEARTH_START_TIMEOUT`` and
``HEARTH_TLS*`` and ``HEARTH_WEB_CORS_ORIGINS`` (:mod:`hearth.platform.front_door_config`),
``HEARTH_MQTT_PLAIN`` (``on``; ``off``: no plain MQTT listener, needs ``HEARTH_TLS``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, cast

from hearth.platform.errors import PlatformError
from hearth.platform.front_door_config import FrontDoorOptions

__all__ = [
    "DEFAULT_PORTS",
    "HOST",
    "PostgresMode",
    "StackConfig",
    "StackError",
    "port_env",
]

HOST: Final = "127.0.0.1"
"""Every part of the native stack listens on the loopback address only."""

DEFAULT_PORTS: Final[Mapping[str, int]] = {
    "broker": 1884,
    "web": 8100,
    "auth": 8101,
    "registry": 8102,
    "ingest": 8103,
    "realtime": 8104,
    "mqtts": 8883,
}
"""The native default ports (design.md); ``HEARTH_<NAME>_PORT`` overrides each one.

``mqtts`` (MQTT over TLS) is used only when ``HEARTH_TLS`` is not ``off``."""

DEFAULT_POSTGRES_URL: Final = f"postgresql://postgres@{HOST}:5432/postgres"
DEFAULT_DATABASE_NAME: Final = "hearth"
DEFAULT_OWN_POSTGRES_PORT: Final = 5433
DEFAULT_START_TIMEOUT: Final = 90.0

PostgresMode = Literal["auto", "existing", "own"]
_MODES: Final = ("auto", "existing", "own")
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class StackError(PlatformError):
    """The native stack cannot do what was asked; the message says what is missing or wrong."""

    code = "stack"
    title = "Native stack problem"


def port_env(name: str) -> str:
    """The environment variable that overrides port ``name``: ``HEARTH_<NAME>_PORT``."""
    return f"HEARTH_{name.upper()}_PORT"


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    key = port_env(name)
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise StackError(f"{key}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise StackError(f"{key}={port} is outside 1..65535")
    return port


@dataclass(frozen=True, slots=True)
class StackConfig:
    """The native stack's folders, ports and PostgreSQL choice.

    Build it with :meth:`from_env`; every path is absolute.
    """

    var_dir: Path
    project_dir: Path
    secrets_file: Path
    ports: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    postgres_mode: PostgresMode = "auto"
    postgres_url: str = DEFAULT_POSTGRES_URL
    postgres_url_configured: bool = False
    switch_database: bool = False
    database_name: str = DEFAULT_DATABASE_NAME
    own_postgres_port: int = DEFAULT_OWN_POSTGRES_PORT
    start_timeout: float = DEFAULT_START_TIMEOUT
    host: str = HOST
    front_door: FrontDoorOptions = field(default_factory=FrontDoorOptions)
    mqtt_plain: bool = True
    """``HEARTH_MQTT_PLAIN=off``: no plain MQTT listener; devices and services use TLS."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> StackConfig:
        """The configuration the environment asks for (``os.environ`` by default)."""
        env = os.environ if env is None else env
        project = (cwd or Path.cwd()).resolve()
        var_dir = Path(env.get("HEARTH_VAR_DIR") or project / "var")
        var_dir = (project / var_dir).resolve() if not var_dir.is_absolute() else var_dir
        secrets = Path(env.get("HEARTH_SECRETS_FILE") or var_dir / "secrets.env")
        secrets = (project / secrets).resolve() if not secrets.is_absolute() else secrets
        ports = {name: _port(env, name, default) for name, default in DEFAULT_PORTS.items()}
        mode = env.get("HEARTH_POSTGRES", "").strip() or "auto"
        if mode not in _MODES:
            raise StackError(f"HEARTH_POSTGRES={mode!r} is not one of {', '.join(_MODES)}")
        database = env.get("HEARTH_DATABASE_NAME", "").strip() or DEFAULT_DATABASE_NAME
        if _DATABASE_NAME.fullmatch(database) is None:
            raise StackError(
                f"HEARTH_DATABASE_NAME={database!r}: use lower-case letters, digits and _"
            )
        switch = env.get("HEARTH_POSTGRES_SWITCH", "").strip().lower()
        if switch not in ("", "yes", "no"):
            raise StackError(f"HEARTH_POSTGRES_SWITCH={switch!r}: say yes (or leave it unset)")
        url = env.get("HEARTH_POSTGRES_URL", "").strip()
        raw_timeout = env.get("HEARTH_START_TIMEOUT", "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_START_TIMEOUT
        except ValueError:
            raise StackError(f"HEARTH_START_TIMEOUT={raw_timeout!r} is not seconds") from None
        front_door = FrontDoorOptions.from_env(env, project)
        plain = env.get("HEARTH_MQTT_PLAIN", "").strip().lower() or "on"
        if plain not in ("on", "off"):
            raise StackError(f"HEARTH_MQTT_PLAIN={plain!r}: say on or off")
        if plain == "off" and front_door.tls == "off":
            raise StackError("HEARTH_MQTT_PLAIN=off needs MQTT over TLS: set HEARTH_TLS too")
        if plain == "off" and front_door.tls == "files" and front_door.tls_ca is None:
            raise StackError(
                "HEARTH_MQTT_PLAIN=off with HEARTH_TLS=files needs HEARTH_TLS_CA_FILE (the CA "
                "the services trust for the broker)"
            )
        return cls(
            var_dir=var_dir,
            project_dir=project,
            secrets_file=secrets,
            ports=ports,
            postgres_mode=cast(PostgresMode, mode),
            postgres_url=url or DEFAULT_POSTGRES_URL,
            postgres_url_configured=bool(url),
            switch_database=switch == "yes",
            database_name=database,
            own_postgres_port=_port(env, "own_postgres", DEFAULT_OWN_POSTGRES_PORT),
            start_timeout=timeout,
            front_door=front_door,
            mqtt_plain=plain == "on",
        )

    def port(self, name: str) -> int:
        """The port of ``name`` (``broker``, ``auth``...): the override or the default."""
        try:
            return self.ports[name]
        except KeyError:
            raise StackError(f"no port is defined for {name!r} (add it to DEFAULT_PORTS)") from None

    @property
    def run_dir(self) -> Path:
        """Process records of what ``hearth up`` started."""
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        """Log files."""
        return self.var_dir / "log"

    @property
    def log_file(self) -> Path:
        """The stack's own log: what ``up``/``down`` did, and the migrations' output."""
        return self.log_dir / "hearth.log"

    def process_log(self, name: str) -> Path:
        """The log file of supervised process ``name`` (``supervisord`` is supervisord's own)."""
        return self.log_dir / f"{name}.log"

    @property
    def supervisor_config(self) -> Path:
        """The rendered supervisord config."""
        return self.var_dir / "supervisord.conf"

    @property
    def database_choice(self) -> Path:
        """The remembered database choice."""
        return self.var_dir / "database.json"

    @property
    def stack_env(self) -> Path:
        """The dotenv file of non-secret settings handed to every process."""
        return self.var_dir / "stack.env"

    @property
    def broker_config(self) -> Path:
        """The rendered Mosquitto config."""
        return self.var_dir / "mosquitto.conf"

    @property
    def broker_data(self) -> Path:
        """Mosquitto's persistence folder (also holds the dynsec file)."""
        return self.var_dir / "mosquitto"

    @property
    def dynsec_file(self) -> Path:
        """The dynamic security plugin's file."""
        return self.broker_data / "dynamic-security.json"

    @property
    def postgres_dir(self) -> Path:
        """The folder of the PostgreSQL cluster the stack may start (owned by ``postgres``)."""
        return self.var_dir / "postgres"

    @property
    def web_dir(self) -> Path:
        """The front door's config, pid file and temporary folders."""
        return self.var_dir / "web"

    @property
    def tls_dir(self) -> Path:
        """The platform's CA and the front door's generated certificate."""
        return self.var_dir / "tls"

    def record_file(self, name: str) -> Path:
        """The process record of ``name`` (``supervisord``, ``mosquitto``, a service...)."""
        return self.run_dir / f"{name}.json"

    def starts_file(self, name: str) -> Path:
        """The start history of supervised process ``name``."""
        return self.run_dir / f"{name}.starts"
