"""The front door's static site: the dashboard's placeholder, the docs portal and its assets.

:func:`write_site` fills one folder (``var/web/site`` natively) that nginx serves at ``/``::

    index.html               the dashboard's placeholder (until the dashboard lands)
    docs/index.html          the portal: Swagger UI over every service's OpenAPI
    docs/portal.js           its service menu (reads specs.json)
    docs/menu.js             the service menu both pages share
    docs/redoc.html          ReDoc
    docs/specs.json          [{name, url}] from hearth.platform.front_door_routes
    docs/asyncapi.html       the events (AsyncAPI) of ASYNCAPI_SERVICES, rendered by
    docs/asyncapi.js         this script from the document (no CDN, no npm renderer)
    docs/events.json         [{name, url}] of those documents
    docs/assets/             swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js,
                             favicon.png: copied from the fastapi-offline wheel, so the docs
                             work without internet
    tls/ca.crt               the platform's CA certificate, when it made one

The pages live beside this module (``site/``); the folder is rewritten by every ``up``.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Final

from hearth.platform.front_door_routes import ASYNCAPI_SERVICES, OPENAPI_SERVICES

__all__ = ["ASSETS", "specs", "write_site"]

ASSETS: Final = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
"""The files of the fastapi-offline wheel the portal serves."""


def specs() -> list[dict[str, str]]:
    """The portal's menu: each service of the docs and the front door path of its OpenAPI."""
    return [{"name": name, "url": f"/docs/openapi/{name}.json"} for name in OPENAPI_SERVICES]


def event_specs() -> list[dict[str, str]]:
    """The events page's menu: each service with an AsyncAPI document and its path."""
    return [{"name": name, "url": f"/docs/asyncapi/{name}.json"} for name in ASYNCAPI_SERVICES]


def _copy_tree(source: resources.abc.Traversable, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            _copy_tree(entry, target / entry.name)
        elif entry.name.endswith((".html", ".js", ".css")):
            (target / entry.name).write_bytes(entry.read_bytes())


def write_site(site_dir: Path, ca_cert: Path | None = None) -> Path:
    """Write the site into ``site_dir`` (replaced whole); returns ``site_dir``."""
    staging = site_dir.with_name(site_dir.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    _copy_tree(resources.files("hearth.platform") / "site", staging)
    assets = staging / "docs" / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    static = resources.files("fastapi_offline") / "static"
    for name in ASSETS:
        (assets / name).write_bytes((static / name).read_bytes())
    (staging / "docs" / "specs.json").write_text(json.dumps(specs(), indent=2) + "\n")
    (staging / "docs" / "events.json").write_text(json.dumps(event_specs(), indent=2) + "\n")
    if ca_cert is not None:
        (staging / "tls").mkdir()
        shutil.copyfile(ca_cert, staging / "tls" / "ca.crt")
    for path in (staging, *staging.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(site_dir, ignore_errors=True)
    staging.rename(site_dir)
    return site_dir
