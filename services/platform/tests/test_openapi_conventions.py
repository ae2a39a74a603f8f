"""Every service's OpenAPI follows one set of conventions (hearth.common.openapi_conventions).

:func:`violations` walks a document: an operation without summary or exactly one declared
tag, a request body or 2xx answer without an example, an example its schema refuses, a
security scheme other than the shared ones. The controls show it catches each of these;
then every service's document has none, and all share the same security schemes.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app as create_auth_app
from hearth.common.openapi_conventions import SECURITY, SECURITY_SCHEMES, document_conventions
from hearth.common.openapi_conventions import operations as each_operation
from hearth.ingest.config import IngestSettings
from hearth.ingest.main import create_app as create_ingest_app
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.main import create_app as create_realtime_app
from hearth.registry.config import RegistrySettings
from hearth.registry.main import create_app as create_registry_app

_DB = "postgresql+asyncpg://nobody:unused@127.0.0.1:9/none"  # never connected: docs only


def _examples(media: dict[str, Any], components: dict[str, Any]) -> list[Any]:
    """The examples a media type shows: its own, else its (referenced) schema's."""
    if "example" in media:
        return [media["example"]]
    if "examples" in media:
        return [entry.get("value") for entry in media["examples"].values()]
    schema = media.get("schema") or {}
    while "$ref" in schema:
        schema = components["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("type") == "array":
        item = _examples({"schema": schema.get("items") or {}}, components)
        return [[value] for value in item]
    return list(schema.get("examples") or [])


def violations(document: dict[str, Any]) -> list[str]:
    """What in ``document`` breaks the conventions (empty: nothing)."""
    found: list[str] = []
    components = document.get("components", {})
    declared = {tag["name"] for tag in document.get("tags", []) if tag.get("description")}
    schemes = components.get("securitySchemes")
    if schemes is not None and schemes != SECURITY_SCHEMES:
        found.append(f"security schemes {sorted(schemes)} are not the shared ones")
    for path, method, operation in each_operation(document):
        where = f"{method.upper()} {path}"
        if not operation.get("summary"):
            found.append(f"{where}: no summary")
        tags = operation.get("tags") or []
        if len(tags) != 1 or tags[0] not in declared:
            found.append(f"{where}: tags {tags} (want one tag the document describes)")
        if operation.get("security") and operation["security"] != SECURITY:
            found.append(f"{where}: security {operation['security']}")
        media: list[tuple[str, dict[str, Any]]] = [
            (f"request {kind}", value)
            for kind, value in operation.get("requestBody", {}).get("content", {}).items()
        ]
        for status, response in operation.get("responses", {}).items():
            if status.startswith("2"):
                media += [
                    (f"{status} {kind}", v) for kind, v in response.get("content", {}).items()
                ]
        for what, content in media:
            examples = _examples(content, components)
            if not examples:
                found.append(f"{where}: {what} has no example")
                continue
            schema = {**(content.get("schema") or {}), "components": components}
            validator = jsonschema_rs.validator_for(schema)
            for example in examples:
                for error in validator.iter_errors(example):
                    found.append(f"{where}: {what} example refused: {error.message}")
    return found


# --------------------------------------------------------------------------- the controls


class Thing(BaseModel):
    name: str
    size: int


def _toy_document() -> dict[str, Any]:
    """A tiny app's document following the conventions."""
    app = FastAPI()

    @app.post("/things", tags=["things"], summary="Make a thing", status_code=201)
    async def make(thing: Thing) -> Thing:
        return thing

    return document_conventions(
        app.openapi(),
        tags=[{"name": "things", "description": "Things."}],
        examples={"Thing": {"name": "lamp", "size": 3}},
    )


def test_a_following_document_has_no_violation_and_each_break_is_found() -> None:
    good = _toy_document()
    assert violations(good) == []  # positive control
    body = good["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == {"name": "lamp", "size": 3}  # shown on the body itself

    def broken(change: Any) -> list[str]:
        document = copy.deepcopy(good)
        change(document)
        return violations(document)

    post = ("paths", "/things", "post")

    def op(document: dict[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = document
        for key in post:
            item = item[key]
        return item

    def no_example(document: dict[str, Any]) -> None:
        del document["components"]["schemas"]["Thing"]["examples"]
        for media in (
            op(document)["requestBody"]["content"]["application/json"],
            op(document)["responses"]["201"]["content"]["application/json"],
        ):
            del media["example"]  # fmt: skip

    assert broken(no_example) == [
        "POST /things: request application/json has no example",
        "POST /things: 201 application/json has no example",
    ]
    assert broken(lambda d: op(d).pop("summary")) == ["POST /things: no summary"]
    assert broken(lambda d: op(d).update(tags=["things", "more"]))[0].startswith(
        "POST /things: tags"
    )
    assert broken(lambda d: d.update(tags=[])) == [
        "POST /things: tags ['things'] (want one tag the document describes)"
    ]

    def wrong_example(document: dict[str, Any]) -> None:
        op(document)["requestBody"]["content"]["application/json"]["example"] = {"name": "x"}

    assert broken(wrong_example)[0].startswith("POST /things: request application/json example")

    def own_scheme(document: dict[str, Any]) -> None:
        document["components"]["securitySchemes"] = {"token": {"type": "http", "scheme": "bearer"}}
        op(document)["security"] = [{"token": []}]

    assert broken(own_scheme) == [
        "security schemes ['token'] are not the shared ones",
        "POST /things: security [{'token': []}]",
    ]
    with pytest.raises(ValueError, match="Nothing"):
        document_conventions(good, examples={"Nothing": {}})


# --------------------------------------------------------------------------- the services


def _documents() -> dict[str, dict[str, Any]]:
    common: dict[str, Any] = {"env": "test", "secrets_file": "/nonexistent/secrets.env"}
    auth = create_auth_app(
        AuthSettings(
            database_url=_DB, key_encryption_key="k" * 44, admin_password="p" * 20, **common
        )
    )
    registry = create_registry_app(
        RegistrySettings(database_url=_DB, device_key="d" * 32, **common)
    )
    ingest = create_ingest_app(IngestSettings(database_url=_DB, **common))
    realtime = create_realtime_app(RealtimeSettings(**common))
    realtime_api = getattr(realtime, "other_asgi_app", realtime)
    apps: dict[str, Any] = {
        "auth": auth, "registry": registry, "ingest": ingest, "realtime": realtime_api,
    }  # fmt: skip
    return {name: app.openapi() for name, app in apps.items()}


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return _documents()


@pytest.mark.parametrize("service", ["auth", "registry", "ingest", "realtime"])
def test_every_service_follows_the_conventions(
    service: str, documents: dict[str, dict[str, Any]]
) -> None:
    document = documents[service]
    assert list(each_operation(document))  # it has operations to check
    assert violations(document) == []


def test_every_service_has_the_same_security_schemes(documents: dict[str, dict[str, Any]]) -> None:
    """One Authorize fills the same two schemes on every page (realtime's HTTP API has no
    secured operation: its sockets authenticate at connect, see its AsyncAPI document)."""
    secured = {
        name
        for name, doc in documents.items()
        if any(op.get("security") for _, _, op in each_operation(doc))
    }
    assert secured == {"auth", "registry", "ingest"}
    for name, document in documents.items():
        schemes = document["components"].get("securitySchemes")
        assert schemes == (SECURITY_SCHEMES if name in secured else None), name
