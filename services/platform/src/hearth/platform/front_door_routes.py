"""The front door's route table: which path goes to which service. The one place to add a route.

The front door (nginx on the web port, :mod:`hearth.platform.front_door`) serves every
service on one origin and rewrites no path: each service keeps its own prefix
(design.md, "HTTP routes on one origin"). A new service or a new prefix is one line in
:data:`ROUTES`; a service whose OpenAPI the docs portal shows is one line in
:data:`OPENAPI_SERVICES` (its events' AsyncAPI: :data:`ASYNCAPI_SERVICES`). Service names
are the keys of :data:`~hearth.platform.stack_config.DEFAULT_PORTS` (the native ports)
and the compose service names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["ASYNCAPI_SERVICES", "OPENAPI_SERVICES", "ROUTES", "Route", "routed_services"]

_PATH = re.compile(r"/[A-Za-z0-9._/-]*")


@dataclass(frozen=True, slots=True)
class Route:
    """Requests whose path is ``path`` or starts with ``path + "/"`` go to ``service``.

    ``exact``: only the path itself (``/.well-known/jwks.json``). ``websocket``: the
    connection may be upgraded (Socket.IO), so it is not buffered and may stay open long.
    """

    path: str
    service: str
    exact: bool = False
    websocket: bool = False

    def __post_init__(self) -> None:
        if _PATH.fullmatch(self.path) is None or self.path.endswith("/") or "//" in self.path:
            raise ValueError(f"route path {self.path!r} is not /a/path without a trailing /")
        if re.fullmatch(r"[a-z][a-z0-9]{0,30}", self.service) is None:
            raise ValueError(f"route service {self.service!r} is not a lower-case word")


ROUTES: Final[tuple[Route, ...]] = (
    Route("/auth", "auth"),
    Route("/.well-known/jwks.json", "auth", exact=True),
    Route("/registry", "registry"),
    Route("/telemetry", "ingest"),
    Route("/socket.io", "realtime", websocket=True),
)
"""Every proxied path; ``/`` (the dashboard) and ``/docs`` (the portal) are the front door's."""

OPENAPI_SERVICES: Final[tuple[str, ...]] = ("auth", "registry", "ingest", "realtime")
"""Services whose ``/openapi.json`` the docs portal shows, in its menu order."""

ASYNCAPI_SERVICES: Final[tuple[str, ...]] = ("realtime",)
"""Services whose ``/asyncapi.json`` (their events) the portal renders at ``asyncapi.html``."""


def routed_services() -> tuple[str, ...]:
    """Every service the front door talks to (routes and docs), each once, in table order."""
    names = [route.service for route in ROUTES] + list(OPENAPI_SERVICES + ASYNCAPI_SERVICES)
    return tuple(dict.fromkeys(names))
