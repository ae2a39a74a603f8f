"""Rendering the platform's Mosquitto config from ``mosquitto/hearth.conf.template``.

One template serves the native stack, docker compose and the tests; only what differs
between them is a placeholder (``{{ name }}``), filled from a :class:`BrokerSettings`.
:func:`preset` builds the settings each of the three uses; :func:`render` fills the
template and refuses a template whose placeholders and the settings disagree.
docs/broker.md explains every setting.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal

from hearth.platform.errors import BrokerConfigError

__all__ = [
    "DOCKER_DYNSEC_PLUGIN",
    "DYNSEC_PLUGIN_CANDIDATES",
    "TEMPLATE_NAME",
    "BrokerSettings",
    "Preset",
    "find_dynsec_plugin",
    "find_template",
    "placeholders",
    "preset",
    "render",
    "write_config",
]

TEMPLATE_NAME: Final = "hearth.conf.template"
"""The template's file name inside the repository's ``mosquitto/`` folder."""

TEMPLATE_ENV: Final = "HEARTH_BROKER_TEMPLATE"
"""Environment variable naming another template file (e.g. inside a container image)."""

DEBIAN_DYNSEC_PLUGIN: Final = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
DOCKER_DYNSEC_PLUGIN: Final = Path("/usr/lib/mosquitto_dynamic_security.so")
"""Where the Eclipse Mosquitto image keeps the dynamic security plugin."""

DYNSEC_PLUGIN_CANDIDATES: Final[tuple[Path, ...]] = (
    DEBIAN_DYNSEC_PLUGIN,
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    DOCKER_DYNSEC_PLUGIN,
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
)
"""Where :func:`find_dynsec_plugin` looks, first hit wins."""

DYNSEC_FILE_NAME: Final = "dynamic-security.json"

Preset = Literal["native", "docker", "test"]

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
_LOG_DEST = re.compile(r"(stderr|stdout|syslog|topic|none|file /\S+)")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """The values that differ between deployments; every field is one template placeholder.

    Paths are made absolute when rendered (mosquitto resolves relative paths against its
    own working directory). ``persistence_location`` is a folder; ``dynsec_file`` the dynsec
    plugin's JSON file, which the broker rewrites on every change (keep it on a volume).
    """

    port: int
    persistence_location: Path
    dynsec_file: Path
    dynsec_plugin: Path
    user: str
    bind_address: str = "127.0.0.1"
    sys_interval: int = 10
    autosave_interval: int = 30
    log_dest: str = "stderr"
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    plain: bool = True
    """False: no plain listener (``HEARTH_MQTT_PLAIN=off``); the TLS listener is the only one."""

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise BrokerConfigError(f"port {self.port} is outside 1..65535")
        if self.sys_interval < 0 or self.autosave_interval < 1:
            raise BrokerConfigError("sys_interval must be >= 0 and autosave_interval >= 1")
        if _LOG_DEST.fullmatch(self.log_dest) is None:
            raise BrokerConfigError(f"log_dest {self.log_dest!r} is not one mosquitto accepts")
        tls = (self.tls_port, self.tls_cert, self.tls_key)
        if any(part is not None for part in tls) and any(part is None for part in tls):
            raise BrokerConfigError("TLS needs tls_port, tls_cert and tls_key together")
        if self.tls_port is not None and not 1 <= self.tls_port <= 65535:
            raise BrokerConfigError(f"tls_port {self.tls_port} is outside 1..65535")
        if self.tls_port == self.port:
            raise BrokerConfigError(f"tls_port and port are both {self.port}")
        if not self.plain and self.tls_port is None:
            raise BrokerConfigError("plain MQTT can be off only with the TLS listener on")
        for name in (
            "user",
            "bind_address",
            "persistence_location",
            "dynsec_file",
            "dynsec_plugin",
        ):
            value = str(getattr(self, name))
            if not value or any(ch.isspace() for ch in value):
                raise BrokerConfigError(f"{name} {value!r} is empty or contains whitespace")

    def tls_listener(self) -> str:
        """The TLS listener's lines (server certificate only: devices log in with passwords)."""
        if self.tls_port is None or self.tls_cert is None or self.tls_key is None:
            return "# off"
        return "\n".join(
            [
                f"listener {self.tls_port} {self.bind_address}",
                f"certfile {_absolute(self.tls_cert)}",
                f"keyfile {_absolute(self.tls_key)}",
                "tls_version tlsv1.2",
            ]
        )

    def plain_listener(self) -> str:
        """The plain MQTT listener's line, or a comment when plain MQTT is off."""
        if not self.plain:
            return "# off (HEARTH_MQTT_PLAIN=off): the TLS listener below is the only one"
        return f"listener {self.port} {self.bind_address}"

    def values(self) -> dict[str, str]:
        """The placeholder values, as written into the config."""
        raw: dict[str, Any] = asdict(self)
        for name in ("tls_port", "tls_cert", "tls_key", "plain", "port", "bind_address"):
            del raw[name]
        raw["plain_listener"] = self.plain_listener()
        raw["tls_listener"] = self.tls_listener()
        raw["persistence_location"] = _absolute(self.persistence_location)
        raw["dynsec_file"] = _absolute(self.dynsec_file)
        raw["dynsec_plugin"] = _absolute(self.dynsec_plugin)
        return {name: str(value) for name, value in raw.items()}


def _absolute(path: Path) -> str:
    return os.path.abspath(path).rstrip("/") or "/"


def _current_user() -> str:
    """The effective user's name (``root`` when run as root, whatever ``$USER`` says)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def find_template() -> Path:
    """Locate ``mosquitto/hearth.conf.template``.

    ``$HEARTH_BROKER_TEMPLATE`` first, then a ``mosquitto/`` folder in the working directory
    or any parent of it, then any parent of this module (the repository checkout).
    """
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        return Path(override)
    here = Path(__file__).resolve()
    for base in (Path.cwd().resolve(), *Path.cwd().resolve().parents, *here.parents):
        candidate = base / "mosquitto" / TEMPLATE_NAME
        if candidate.is_file():
            return candidate
    raise BrokerConfigError(
        f"cannot find mosquitto/{TEMPLATE_NAME}: run from the repository or set {TEMPLATE_ENV}"
    )


def find_dynsec_plugin(candidates: tuple[Path, ...] = DYNSEC_PLUGIN_CANDIDATES) -> Path:
    """The first installed dynamic security plugin among ``candidates``."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise BrokerConfigError(f"mosquitto_dynamic_security.so not found (looked in {looked})")


def placeholders(template_text: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(_PLACEHOLDER.findall(template_text))


def render(settings: BrokerSettings, template_text: str | None = None) -> str:
    """Fill the template (the repository's unless ``template_text`` is given) with ``settings``.

    Raises :class:`BrokerConfigError` when the template uses a placeholder the settings do
    not define, or the settings define one the template does not use.
    """
    text = find_template().read_text(encoding="utf-8") if template_text is None else template_text
    values = settings.values()
    used = placeholders(text)
    unknown = used - values.keys()
    unused = values.keys() - used
    if unknown or unused:
        raise BrokerConfigError(
            f"template and settings disagree: unknown placeholders {sorted(unknown)}, "
            f"unused settings {sorted(unused)}"
        )
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def write_config(settings: BrokerSettings, out: Path, template_text: str | None = None) -> str:
    """Render and write the config to ``out`` (folders created); returns the text written."""
    text = render(settings, template_text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


def preset(name: Preset, *, base: Path | None = None, **overrides: Any) -> BrokerSettings:
    """The settings of one deployment, with ``overrides`` applied.

    - ``native``: 127.0.0.1:1884, state under ``<base>/var/mosquitto`` (``base`` defaults to
      the working directory), runs as the current user, the installed plugin.
    - ``docker``: 0.0.0.0:1883 inside the Eclipse image, state under ``/mosquitto/data``, user
      ``mosquitto``, the image's plugin path, logs to stdout.
    - ``test``: like native, but ``base`` is the test's own folder and the port is required.
    """
    if name == "docker":
        data = Path("/mosquitto/data")
        settings = BrokerSettings(
            port=1883,
            bind_address="0.0.0.0",  # noqa: S104 - inside a container, published by compose
            persistence_location=data,
            dynsec_file=data / DYNSEC_FILE_NAME,
            dynsec_plugin=DOCKER_DYNSEC_PLUGIN,
            user="mosquitto",
            log_dest="stdout",
        )
        return replace(settings, **overrides)
    if name not in ("native", "test"):
        raise BrokerConfigError(f"unknown preset {name!r} (native, docker, test)")
    root = Path.cwd() if base is None else base
    data = root / "var" / "mosquitto" if name == "native" else root / "data"
    if name == "test" and "port" not in overrides:
        raise BrokerConfigError("the test preset needs an explicit port")
    fields: dict[str, Any] = {
        "port": 1884,
        "persistence_location": data,
        "dynsec_file": data / DYNSEC_FILE_NAME,
        "user": _current_user(),
    }
    fields.update(overrides)
    if "dynsec_plugin" not in fields:
        fields["dynsec_plugin"] = find_dynsec_plugin()
    return BrokerSettings(**fields)
