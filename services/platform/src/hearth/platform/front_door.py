"""The front door: nginx on the web port, its config rendered from the route table.

:func:`render` turns :class:`FrontDoorSettings` and
:data:`~hearth.platform.front_door_routes.ROUTES` into one ``nginx.conf``; the native stack
writes it to ``var/web/nginx.conf`` and runs ``nginx -c`` on it under supervisord, compose
renders it inside the ``web`` container (``hearth front-door``). What it serves, on one origin:

- every route of the table, proxied without rewriting the path (Socket.IO with websocket
  upgrade, unbuffered);
- ``/docs/``: the docs portal (Swagger UI and ReDoc from local files, no CDN) and
  ``/docs/openapi/<service>.json``: that service's ``/openapi.json``;
  ``/docs/asyncapi/<service>.json``: its ``/asyncapi.json`` (realtime's Socket.IO events);
- ``/``: the site folder (:mod:`hearth.platform.front_door_site`): the dashboard's
  placeholder page until the dashboard lands, and ``/tls/ca.crt`` when the platform made a CA;
- CORS only for the origins the operator lists: a preflight from a listed origin gets 204
  with the ``Access-Control-*`` headers, one from any other origin 403 (problem details);
- a service that does not answer gives a 502 problem, not nginx's HTML page.

nginx runs in the foreground (``daemon off``), logs errors to stderr and one line per request
to stdout, and keeps its pid file and temporary folders in ``work_dir`` (no root needed).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from hearth.platform.errors import PlatformError
from hearth.platform.front_door_routes import (
    ASYNCAPI_SERVICES,
    OPENAPI_SERVICES,
    ROUTES,
    Route,
    routed_services,
)
from hearth.platform.tls import TlsFiles

__all__ = [
    "CORS_HEADERS",
    "FrontDoorError",
    "FrontDoorSettings",
    "render",
    "worker_user",
    "write_config",
]

_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_UPSTREAM = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}|\[[0-9a-fA-F:]+\]:[0-9]{1,5}")
_LISTEN = re.compile(r"([0-9.]+:|\[[0-9a-fA-F:]+\]:)?[0-9]{1,5}")

CORS_METHODS: Final = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_HEADERS: Final = "Authorization, Content-Type, Accept, X-Request-ID"
CORS_EXPOSED: Final = "Location, X-Request-ID, WWW-Authenticate"
CORS_MAX_AGE: Final = 600
MAX_BODY: Final = "64m"
"""nginx's own body limit; each service enforces its smaller one (413 problem)."""
WEBSOCKET_IDLE: Final = "1h"
_REFUSED_INTERNAL: Final = 418


class FrontDoorError(PlatformError):
    """The front door cannot be configured as asked; the message says what is wrong."""

    code = "front_door"
    title = "Front door problem"


@dataclass(frozen=True, slots=True)
class FrontDoorSettings:
    """What one front door listens on and where it sends each service.

    ``listen``: ``port`` or ``address:port``. ``upstreams``: service name to ``host:port``
    for every service of the route table. ``site_dir``: the static files (``/``, ``/docs``).
    ``work_dir``: pid file and nginx's temporary folders. ``user``: the workers' user when
    nginx starts as root (ignored otherwise).
    """

    listen: str
    upstreams: Mapping[str, str]
    site_dir: Path
    work_dir: Path
    cors_origins: tuple[str, ...] = ()
    tls: TlsFiles | None = None
    user: str | None = None
    access_log: str = "/dev/stdout"

    def __post_init__(self) -> None:
        if _LISTEN.fullmatch(self.listen) is None:
            raise FrontDoorError(f"listen {self.listen!r} is not PORT or ADDRESS:PORT")
        missing = [name for name in routed_services() if name not in self.upstreams]
        if missing:
            raise FrontDoorError(f"no upstream address for {', '.join(missing)}")
        for name, address in self.upstreams.items():
            if _UPSTREAM.fullmatch(address) is None:
                raise FrontDoorError(f"upstream {name}={address!r} is not HOST:PORT")
        for origin in self.cors_origins:
            if _ORIGIN.fullmatch(origin) is None:
                raise FrontDoorError(
                    f"CORS origin {origin!r} is not scheme://host[:port] (no path, no *)"
                )


def worker_user() -> str | None:
    """The ``user`` of nginx's workers: root when started as root, as the broker runs natively.

    Otherwise workers would run as ``nobody`` and could not read a site under a 0700 folder
    (``var/``, a test's temporary folder). Not root: nginx keeps the starting user anyway.
    """
    return "root" if os.geteuid() == 0 else None


def _problem(status: int, title: str, code: str, detail: str) -> str:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code},
        separators=(",", ":"),
    )
    return "'" + body.replace("\\", "\\\\").replace("'", "\\'") + "'"


_PREFLIGHT_REFUSED = _problem(
    403, "Forbidden", "cors_origin_refused", "this origin is not among the allowed CORS origins"
)
_UPSTREAM_DOWN = _problem(
    502, "Bad Gateway", "upstream_unavailable", "the service behind this path is not answering"
)


def _cors_lines(indent: str) -> list[str]:
    """The CORS handling of one proxied location (add_header is not inherited once used)."""
    return [
        f"{indent}if ($cors_preflight = allowed) {{",
        f"{indent}    add_header Access-Control-Allow-Origin $cors_origin always;",
        f'{indent}    add_header Access-Control-Allow-Methods "{CORS_METHODS}" always;',
        f'{indent}    add_header Access-Control-Allow-Headers "{CORS_HEADERS}" always;',
        f"{indent}    add_header Access-Control-Max-Age {CORS_MAX_AGE} always;",
        f"{indent}    add_header Vary Origin always;",
        f"{indent}    return 204;",
        f"{indent}}}",
        f"{indent}add_header Access-Control-Allow-Origin $cors_origin always;",
        f'{indent}add_header Access-Control-Expose-Headers "{CORS_EXPOSED}" always;',
        f"{indent}add_header Vary Origin always;",
    ]


def _proxy_headers(indent: str, *, websocket: bool = False) -> list[str]:
    """Headers sent upstream (proxy_set_header is not inherited once a location sets one)."""
    connection = "$connection_upgrade" if websocket else '""'
    lines = [
        f"{indent}proxy_set_header Host $http_host;",
        f"{indent}proxy_set_header Connection {connection};",
        # The edge: the peer it saw, not what the client claimed (login throttling counts it).
        f"{indent}proxy_set_header X-Forwarded-For $remote_addr;",
        f"{indent}proxy_set_header X-Forwarded-Proto $scheme;",
    ]
    if websocket:
        lines.append(f"{indent}proxy_set_header Upgrade $http_upgrade;")
    return lines


def _location(route: Route) -> list[str]:
    pattern = f"= {route.path}" if route.exact else f"^~ {route.path}/"
    blocks = [pattern] if route.exact else [f"= {route.path}", pattern]
    lines: list[str] = []
    for block in blocks:
        lines.append(f"        location {block} {{")
        lines.extend(_cors_lines("            "))
        lines.extend(_proxy_headers("            ", websocket=route.websocket))
        if route.websocket:
            lines += [
                "            proxy_buffering off;",
                f"            proxy_read_timeout {WEBSOCKET_IDLE};",
                f"            proxy_send_timeout {WEBSOCKET_IDLE};",
            ]
        lines.append(f"            proxy_pass http://{route.service};")
        lines.append("        }")
    return lines


def _docs_locations() -> list[str]:
    lines = []
    for name in OPENAPI_SERVICES:
        lines += [
            f"        location = /docs/openapi/{name}.json {{",
            *_proxy_headers("            "),
            f"            proxy_pass http://{name}/openapi.json;",
            "        }",
        ]
    for name in ASYNCAPI_SERVICES:
        lines += [
            f"        location = /docs/asyncapi/{name}.json {{",
            *_proxy_headers("            "),
            f"            proxy_pass http://{name}/asyncapi.json;",
            "        }",
        ]
    return lines


def _origins_map(origins: Sequence[str]) -> list[str]:
    lines = ["    map $http_origin $cors_origin {", '        default "";']
    lines += [f'        "{origin}" "{origin}";' for origin in origins]
    lines.append("    }")
    return lines


def render(settings: FrontDoorSettings) -> str:
    """The whole ``nginx.conf`` of one front door."""
    work = settings.work_dir
    tls = settings.tls
    listen = f"{settings.listen} ssl" if tls else settings.listen
    upstreams: list[str] = []
    for name in routed_services():
        upstreams += [
            f"    upstream {name} {{",
            f"        server {settings.upstreams[name]};",
            "        keepalive 8;",
            "    }",
        ]
    tls_lines = (
        [
            f"        ssl_certificate {tls.cert};",
            f"        ssl_certificate_key {tls.key};",
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            "        ssl_session_cache shared:hearth_tls:1m;",
        ]
        if tls
        else []
    )
    routes: list[str] = []
    for route in ROUTES:
        routes += _location(route)
    lines = [
        "# Rendered by hearth (hearth.platform.front_door) from the route table",
        "# (hearth.platform.front_door_routes); do not edit: it is rewritten.",
        *([f"user {settings.user};"] if settings.user else []),
        "daemon off;",
        "worker_processes 1;",
        f"pid {work / 'nginx.pid'};",
        "error_log stderr warn;",
        "",
        "events {",
        "    worker_connections 1024;",
        "}",
        "",
        "http {",
        "    types {",
        "        text/html html;",
        "        text/css css;",
        "        application/javascript js mjs;",
        "        application/json json;",
        "        application/yaml yaml yml;",
        "        image/png png;",
        "        image/svg+xml svg;",
        "        application/x-x509-ca-cert crt;",
        "    }",
        "    default_type application/octet-stream;",
        "    server_tokens off;",
        "    absolute_redirect off;",
        "    sendfile on;",
        f"    client_max_body_size {MAX_BODY};",
        f"    client_body_temp_path {work / 'tmp' / 'body'};",
        f"    proxy_temp_path {work / 'tmp' / 'proxy'};",
        f"    fastcgi_temp_path {work / 'tmp' / 'fastcgi'};",
        f"    uwsgi_temp_path {work / 'tmp' / 'uwsgi'};",
        f"    scgi_temp_path {work / 'tmp' / 'scgi'};",
        "    log_format hearth '$remote_addr \"$request\" $status $body_bytes_sent '",
        "                      '${request_time}s upstream=$upstream_addr origin=\"$http_origin\"';",
        f"    access_log {settings.access_log} hearth;",
        "",
        "    map $http_upgrade $connection_upgrade {",
        "        default upgrade;",
        "        '' '';",
        "    }",
        *_origins_map(settings.cors_origins),
        "    map $request_method:$http_access_control_request_method $cors_is_preflight {",
        "        default 0;",
        '        "~^OPTIONS:.+" 1;',
        "    }",
        "    map $cors_is_preflight:$cors_origin $cors_preflight {",
        '        default "";',
        '        "1:" refused;',
        '        "~^1:.+" allowed;',
        "    }",
        "",
        *upstreams,
        "",
        "    server {",
        f"        listen {listen};",
        *tls_lines,
        "        proxy_http_version 1.1;",
        "        error_page 502 503 504 = @upstream_down;",
        # A refused preflight: 418 only carries it to @cors_refused, which answers 403 (a
        # problem needs default_type, which `if` cannot set).
        f"        error_page {_REFUSED_INTERNAL} = @cors_refused;",
        "        if ($cors_preflight = refused) {",
        f"            return {_REFUSED_INTERNAL};",
        "        }",
        "",
        *routes,
        "",
        "        location = /docs {",
        "            return 301 /docs/;",
        "        }",
        *_docs_locations(),
        "        location / {",
        f"            root {settings.site_dir};",
        "            try_files $uri $uri/index.html $uri/ =404;",
        "        }",
        "        location @cors_refused {",
        "            default_type application/problem+json;",
        f"            return 403 {_PREFLIGHT_REFUSED};",
        "        }",
        "        location @upstream_down {",
        "            default_type application/problem+json;",
        f"            return 502 {_UPSTREAM_DOWN};",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_config(settings: FrontDoorSettings, out: Path) -> str:
    """Render, create the work folders, write ``out``; returns the text written."""
    text = render(settings)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (settings.work_dir / "tmp" / name).mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text
