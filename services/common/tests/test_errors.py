"""The error tree (hearth.common.errors) and RFC 9457 problem details (hearth.common.problems)."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from hearth.common import errors
from hearth.common.errors import (
    ConfigError,
    Conflict,
    HearthError,
    InsufficientScope,
    NotFound,
    TokenExpired,
    TokenMissing,
)
from hearth.common.logging import JsonFormatter, RequestContextMiddleware
from hearth.common.messages import MessageError
from hearth.common.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers, report_bug
from hearth.common.topics import TopicError

LEAKY = "db-password-hunter2 at /srv/internal/path.py"


def test_every_error_of_the_module_derives_from_the_root() -> None:
    classes = [
        obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name)) and issubclass(obj, BaseException)
    ]
    assert len(classes) >= 15
    assert all(issubclass(cls, HearthError) for cls in classes)
    # The module docstring draws the tree: every class must appear in it.
    assert all(cls.__name__ in (errors.__doc__ or "") for cls in classes)


def test_errors_of_other_modules_share_the_root() -> None:
    assert issubclass(MessageError, HearthError)
    assert issubclass(MessageError, ValueError)
    assert issubclass(TopicError, HearthError)


def test_token_errors_carry_a_reason_and_401() -> None:
    assert TokenExpired().reason == "expired"
    assert TokenExpired().status == 401
    assert TokenMissing("x").message == "x"
    assert InsufficientScope("control").scope == "control"
    assert InsufficientScope("control").status == 403


class Body(BaseModel):
    name: str
    count: int
    password: str


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/http/{code}")
    async def http_error(code: int) -> None:
        raise HTTPException(code, detail="custom detail", headers={"X-Extra": "1"})

    @app.get("/structured")
    async def structured() -> None:
        raise HTTPException(400, detail=[{"field": "a"}])

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("no device 'lamp' in home 'flat'")

    @app.get("/conflict")
    async def conflict() -> None:
        raise Conflict("slug taken")

    @app.get("/config")
    async def config() -> None:
        raise ConfigError(LEAKY)

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError(LEAKY)

    @app.post("/items")
    async def items(body: Body) -> dict[str, str]:
        return {"name": body.name}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_http_exception_is_a_problem_with_its_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/http/418")
    body = assert_problem(response, 418)
    assert body["title"] == "I'm a Teapot"
    assert body["detail"] == "custom detail"
    assert body["instance"] == "/http/418"
    assert response.headers["x-extra"] == "1"


async def test_structured_detail_becomes_errors(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/structured"), 400)
    assert body["errors"] == [{"field": "a"}]
    assert "detail" not in body


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/nope"), 404)
    assert body["title"] == "Not Found"
    response = await client.delete("/missing")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


async def test_validation_errors_list_fields_without_echoing_input(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/items", json={"name": "lamp", "count": "many", "password": {"secret": "hunter2"}}
    )
    body = assert_problem(response, 422)
    assert body["code"] == "validation"
    locations = {tuple(error["loc"]) for error in body["errors"]}  # type: ignore[attr-defined]
    assert locations == {("body", "count"), ("body", "password")}
    assert "hunter2" not in response.text
    assert "many" not in response.text


async def test_hearth_errors_map_to_their_status_and_code(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/missing"), 404)
    assert body == {
        "type": "about:blank",
        "title": "Not found",
        "status": 404,
        "detail": "no device 'lamp' in home 'flat'",
        "instance": "/missing",
        "code": "not_found",
        "request_id": body["request_id"],
    }
    assert assert_problem(await client.get("/conflict"), 409)["code"] == "conflict"


async def test_internal_errors_leak_nothing(client: httpx.AsyncClient) -> None:
    for path in ("/config", "/crash"):
        response = await client.get(path)
        body = assert_problem(response, 500)
        assert "hunter2" not in response.text
        assert "internal/path" not in response.text
        assert body["title"] == "Internal Server Error" or body["title"] == "Invalid configuration"


async def test_unexpected_error_is_logged_with_its_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Every 500 is one bug-report line: request id, route, type and code locations."""
    response = await client.get("/crash", headers={"X-Request-ID": "trace-42"})
    assert_problem(response, 500)
    assert response.json()["request_id"] == "trace-42"
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(records) == 1
    (record,) = records
    assert record.getMessage() == "bug: RuntimeError in GET /crash"
    assert record.exc_info is None  # a traceback's messages may quote the payload
    assert record.__dict__["error_chain"] == ["RuntimeError"]
    assert any(frame.endswith(" crash") for frame in record.__dict__["frames"])
    line = JsonFormatter().format(record)
    assert json.loads(line)["request_id"] == "trace-42"
    assert "hunter2" not in line


async def test_a_500_hearth_error_is_one_bug_line_without_its_message(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.get("/config", headers={"X-Request-ID": "trace-43"})
    assert_problem(response, 500)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.getMessage() == "bug: hearth.common.errors.ConfigError in GET /config"
    line = JsonFormatter().format(record)
    assert json.loads(line)["request_id"] == "trace-43"
    assert "hunter2" not in line


class FakeDatabaseError(Exception):
    """Like asyncpg's errors: a SQLSTATE, and a message quoting the row."""

    sqlstate = "22021"


def test_bug_line_names_the_sqlstate_and_the_chain_but_no_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        try:
            raise FakeDatabaseError(f"invalid byte sequence in row ('ada-lovelace-7', '{LEAKY}')")
        except FakeDatabaseError as inner:
            raise RuntimeError(f"wrapped: {LEAKY}") from inner
    except RuntimeError as exc:
        with caplog.at_level(logging.INFO):
            report_bug(exc, {"method": "PATCH", "path": "/users/me"})
    (record,) = caplog.records
    assert record.getMessage() == "bug: RuntimeError in PATCH <unmatched>"
    data = json.loads(JsonFormatter().format(record))
    assert data["sqlstate"] == "22021"
    assert len(data["error_chain"]) == 2
    assert data["error_chain"][0] == "RuntimeError"
    assert data["error_chain"][1].endswith(".FakeDatabaseError")
    assert "hunter2" not in json.dumps(data)
    assert "ada-lovelace-7" not in json.dumps(data)
