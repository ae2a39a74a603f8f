"""The operator's front door settings, read from the environment (docs/operations.md).

- ``HEARTH_WEB_CORS_ORIGINS``: comma-separated origins (``https://app.example:8443``) whose
  browser apps may call the APIs from another origin; none by default (the dashboard and
  the docs share the front door's origin and need no CORS).
- ``HEARTH_TLS``: ``off`` (default: plain HTTP on the web port), ``generated`` (HTTPS
  with a certificate from the platform's own CA, made under ``var/tls``; the CA is served at
  ``/tls/ca.crt``) or ``files`` (HTTPS with the operator's ``HEARTH_TLS_CERT_FILE`` (full
  chain, PEM) and ``HEARTH_TLS_KEY_FILE``).
- ``HEARTH_TLS_CA_FILE`` (with ``files``, optional): the CA that issued the operator's
  certificate; served at ``/tls/ca.crt``, handed to devices in the config download and
  trusted by the services when plain MQTT is off.
- ``HEARTH_TLS_NAMES``: comma-separated extra host names or addresses for the generated
  certificate (``hearth.lan,192.168.1.20``); localhost, 127.0.0.1 and ::1 are always in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast

from hearth.platform.front_door import FrontDoorError
from hearth.platform.tls import TlsFiles, ensure_generated

__all__ = ["FrontDoorOptions", "TlsMode"]

TlsMode = Literal["off", "generated", "files"]
_TLS_MODES: Final = ("off", "generated", "files")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class FrontDoorOptions:
    """CORS origins and TLS choice of one front door (see the module docstring)."""

    cors_origins: tuple[str, ...] = ()
    tls: TlsMode = "off"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_names: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str], base: Path) -> FrontDoorOptions:
        """The options ``env`` asks for; relative certificate paths are taken from ``base``."""
        mode = env.get("HEARTH_TLS", "").strip().lower() or "off"
        if mode not in _TLS_MODES:
            raise FrontDoorError(f"HEARTH_TLS={mode!r} is not one of {', '.join(_TLS_MODES)}")
        cert = env.get("HEARTH_TLS_CERT_FILE", "").strip()
        key = env.get("HEARTH_TLS_KEY_FILE", "").strip()
        ca = env.get("HEARTH_TLS_CA_FILE", "").strip() if mode == "files" else ""
        if mode == "files" and not (cert and key):
            raise FrontDoorError(
                "HEARTH_TLS=files needs HEARTH_TLS_CERT_FILE and HEARTH_TLS_KEY_FILE"
            )
        return cls(
            cors_origins=_list(env.get("HEARTH_WEB_CORS_ORIGINS", "")),
            tls=cast(TlsMode, mode),
            tls_cert=base / cert if cert else None,
            tls_key=base / key if key else None,
            tls_ca=base / ca if ca else None,
            tls_names=_list(env.get("HEARTH_TLS_NAMES", "")),
        )

    @property
    def scheme(self) -> str:
        """``https`` when TLS is on, else ``http``."""
        return "http" if self.tls == "off" else "https"

    def tls_files(self, generated_dir: Path) -> TlsFiles | None:
        """The certificate and key to serve (generated into ``generated_dir`` when asked)."""
        if self.tls == "off":
            return None
        if self.tls == "generated":
            return ensure_generated(generated_dir, self.tls_names)
        assert self.tls_cert is not None
        assert self.tls_key is not None
        for path in (self.tls_cert, self.tls_key, self.tls_ca):
            if path is not None and not path.is_file():
                raise FrontDoorError(f"TLS file {path} does not exist")
        return TlsFiles(cert=self.tls_cert, key=self.tls_key, ca=self.tls_ca)
