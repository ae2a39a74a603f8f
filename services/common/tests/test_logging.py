"""JSON logs, request ids and redaction (hearth.common.logging): a logged secret never appears."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import SecretStr

from hearth.common.logging import (
    REDACTED,
    configure_logging,
    current_request_id,
    log_context,
    redact,
    redact_text,
)
from hearth.common.settings import HearthSettings
from hearth.common.web import create_service_app
from hearth.testing.tokens import TokenMinter

SECRET = "hunter2-Vq7-unique-secret"
USER = "4f1c6a1e-2b7d-4c35-9d8e-0a1b2c3d4e5f"
log = logging.getLogger("hearth.test.logging")


@pytest.fixture(autouse=True)
def json_logs(restore_logging: None) -> None:
    """JSON logs for the test; the harness's ``restore_logging`` undoes them afterwards."""
    configure_logging("sample", "DEBUG", replica="r1")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr().out
    parsed = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


def test_one_json_object_per_line_with_the_standard_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.info("device %s joined", "lamp", extra={"home": "flat", "count": 3})
    (line,) = lines(capsys)
    assert line["message"] == "device lamp joined"
    assert line["level"] == "INFO"
    assert line["logger"] == "hearth.test.logging"
    assert line["service"] == "sample"
    assert line["replica"] == "r1"
    assert line["home"] == "flat"
    assert line["count"] == 3
    assert line["ts"].endswith("+00:00")
    assert "request_id" not in line


def test_secret_keys_are_redacted_wherever_they_are(
    capsys: pytest.CaptureFixture[str], mint_token: TokenMinter
) -> None:
    token = mint_token(USER)
    log.warning(
        "login attempt",
        extra={
            "password": SECRET,
            "api_key": SECRET,
            "Authorization": f"Bearer {token}",
            "headers": {"cookie": SECRET, "accept": "json", "nested": [{"client_secret": SECRET}]},
            "broker_password": SecretStr(SECRET),
            "user": "alice",
        },
    )
    (line,) = lines(capsys)
    text = json.dumps(line)
    assert SECRET not in text
    assert token not in text
    assert line["password"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["Authorization"] == REDACTED
    assert line["headers"]["cookie"] == REDACTED
    assert line["headers"]["accept"] == "json"
    assert line["headers"]["nested"] == [{"client_secret": REDACTED}]
    assert line["user"] == "alice"


def test_secret_looking_text_is_redacted_in_messages_and_tracebacks(
    capsys: pytest.CaptureFixture[str], mint_token: TokenMinter
) -> None:
    token = mint_token(USER)
    log.info("got %s from the client", token)
    log.info("header was Authorization: Bearer %s", "opaque-credential-123")
    log.info("connecting to postgresql+asyncpg://hearth:%s@db:5432/hearth", SECRET)
    log.info("config password=%s api_key: '%s' token=%s", SECRET, SECRET, SECRET)
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        log.exception("failed with %s", {"secret": SECRET})
    out = lines(capsys)
    text = json.dumps(out)
    assert token not in text
    assert SECRET not in text
    assert "opaque-credential-123" not in text
    assert out[0]["message"] == f"got {REDACTED} from the client"
    assert (
        out[2]["message"] == f"connecting to postgresql+asyncpg://hearth:{REDACTED}@db:5432/hearth"
    )
    assert "ValueError: bad token" in out[4]["exc"]


def test_redact_leaves_ordinary_values_alone() -> None:
    assert redact_text("temperature 21.5 in flat/lab") == "temperature 21.5 in flat/lab"
    assert redact({"n": 1, "ok": True, "items": ("a", None)}) == {
        "n": 1,
        "ok": True,
        "items": ["a", None],
    }
    assert redact(b"raw bytes") == REDACTED


def test_log_context_binds_fields_to_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    with log_context(request_id="abc", home="flat"):
        assert current_request_id() == "abc"
        log.info("inside")
    log.info("outside")
    inside, outside = lines(capsys)
    assert (inside["request_id"], inside["home"]) == ("abc", "flat")
    assert "request_id" not in outside
    assert current_request_id() is None


def make_app() -> FastAPI:
    settings = HearthSettings(env="test", service="sample", replica="r1", log_level="DEBUG")
    app = create_service_app(settings, title="sample")

    @app.get("/things/{thing}")
    async def thing(thing: str, request: Request) -> dict[str, str | None]:
        log.info("handling", extra={"thing": thing, "auth": request.headers.get("authorization")})
        return {"request_id": current_request_id()}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://sample") as http:
        yield http


async def test_a_sane_request_id_is_kept_echoed_and_logged(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = await client.get("/things/lamp", headers={"X-Request-ID": "req-7.a:b"})
    assert response.headers["x-request-id"] == "req-7.a:b"
    assert response.json() == {"request_id": "req-7.a:b"}
    handled, access = [line for line in lines(capsys) if line["logger"].startswith("hearth.")]
    assert handled["message"] == "handling"
    assert handled["request_id"] == "req-7.a:b"
    assert access["logger"] == "hearth.access"
    assert access["request_id"] == "req-7.a:b"
    assert (access["method"], access["route"], access["status"]) == ("GET", "/things/{thing}", 200)
    assert access["duration_ms"] >= 0


@pytest.mark.parametrize("given", ["", "has space", "x" * 200, "new\\nline", "<script>"])
async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/things/lamp", headers={"X-Request-ID": given})
    generated = response.headers["x-request-id"]
    assert generated != given
    assert len(generated) == 32
    assert response.json() == {"request_id": generated}


async def test_each_request_gets_its_own_id(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/things/lamp")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


async def test_a_bearer_token_and_a_query_token_never_reach_the_log(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str], mint_token: TokenMinter
) -> None:
    token = mint_token(USER)
    capsys.readouterr()
    response = await client.get(
        f"/things/lamp?token={token}&password={SECRET}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    out = capsys.readouterr().out
    assert out.count("\n") >= 2  # the handler's line and the access line were written
    assert token not in out
    assert SECRET not in out
