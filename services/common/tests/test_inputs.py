"""The input rule (hearth.common.inputs): field types and the safety net, through a real app."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Form, Path, Query
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from hearth.common.inputs import (
    PG_INTEGER_MAX,
    FreeText,
    Offset,
    Slug,
    Text,
    page_size,
)
from hearth.common.schemas import InputModel
from hearth.common.settings import HearthSettings
from hearth.common.web import create_service_app


class Profile(InputModel):
    name: Annotated[str, FreeText(20, min_length=1)]
    note: Annotated[str, FreeText(50, multiline=True)] = ""
    token: Annotated[str, Text(10)] = ""


class Loose(InputModel):
    """A model someone forgot to type: plain ``str`` and ``dict`` fields."""

    anything: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)


def make_app(max_body_bytes: int = 4096) -> FastAPI:
    app = create_service_app(
        HearthSettings(env="test", service="sample", replica="r1"),
        title="sample",
        max_body_bytes=max_body_bytes,
    )

    @app.post("/profiles")
    async def create(body: Profile) -> dict[str, str]:
        return body.model_dump()

    @app.post("/loose")
    async def loose(body: Loose) -> dict[str, Any]:
        return body.model_dump()

    @app.post("/form")
    async def form(username: Annotated[str, Form()] = "") -> dict[str, str]:
        return {"username": username}

    @app.get("/homes/{home}")
    async def home(
        home: Annotated[Slug, Path()],
        q: Annotated[str, Query()] = "",
        offset: Annotated[Offset, Query()] = 0,
        size: Annotated[int, page_size(50), Query()] = 10,
    ) -> dict[str, Any]:
        return {"home": home, "q": q, "offset": offset, "size": size}

    @app.get("/raw/{name}")
    async def raw(name: str) -> dict[str, str]:
        return {"name": name}

    return app


@pytest.fixture
async def http() -> Any:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


def only_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation"
    assert body["request_id"] == response.headers["x-request-id"]
    (error,) = body["errors"]
    assert isinstance(error, dict)
    return error


# --------------------------------------------------------------------------- field types


def test_free_text_is_nfc_trimmed_and_counted_after_normalising() -> None:
    decomposed = "  Cafe\u0301 " + "x" * 15  # 5 characters once composed, 6 as sent
    profile = Profile(name=decomposed)
    assert profile.name == unicodedata.normalize("NFC", decomposed).strip()
    assert len(profile.name) == 20
    with pytest.raises(ValidationError, match="at most 20"):
        Profile(name="x" * 21)
    with pytest.raises(ValidationError, match="at least 1"):
        Profile(name="   ")  # empty once trimmed


@pytest.mark.parametrize("bad", ["a\x00b", "a\x01", "tab\there", "line\nbreak", "\x1f", "\ud800"])
def test_free_text_refuses_controls_and_lone_surrogates(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Profile(name=bad)
    (error,) = refused.value.errors()
    assert error["type"] == "control_character"
    assert error["loc"] == ("name",)
    assert Profile(name="fine").name == "fine"  # positive control


def test_multiline_is_documented_and_allows_only_tab_and_line_feed() -> None:
    assert Profile(name="n", note="one\r\ntwo\tthree\rfour").note == "one\ntwo\tthree\nfour"
    for bad in ("a\x00", "a\x0b", "a\x1b[31m"):
        with pytest.raises(ValidationError, match="control"):
            Profile(name="n", note=bad)


def test_text_is_kept_as_given_but_checked() -> None:
    assert Profile(name="n", token=" Ab\u0301 ").token == " Ab\u0301 "  # no NFC, no trim
    with pytest.raises(ValidationError, match="control"):
        Profile(name="n", token="a\x00")
    with pytest.raises(ValidationError, match="at most 10"):
        Profile(name="n", token="x" * 11)


def test_json_schema_documents_the_bounds_and_the_pattern() -> None:
    schema = Profile.model_json_schema()["properties"]
    assert schema["name"]["maxLength"] == 20
    assert schema["name"]["minLength"] == 1
    assert schema["name"]["pattern"] == "^[^\\u0000-\\u001F]*$"
    assert schema["note"]["pattern"] == "^[^\\u0000-\\u0008\\u000B-\\u001F]*$"


@given(st.text(max_size=30))
def test_whatever_free_text_accepts_is_clean(text: str) -> None:
    class One(BaseModel):
        value: Annotated[str, FreeText(30)]

    try:
        value = One(value=text).value
    except ValidationError:
        return
    assert not any(ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    assert value == unicodedata.normalize("NFC", value).strip()
    assert len(value) <= 30
    value.encode("utf-8")  # PostgreSQL can store it


def test_page_size_refuses_an_unrepresentable_maximum() -> None:
    with pytest.raises(ValueError, match="maximum"):
        page_size(2**31)


# --------------------------------------------------------------------------- through HTTP


async def test_query_integers_are_bounded_to_what_postgresql_holds(http: httpx.AsyncClient) -> None:
    ok = await http.get("/homes/flat", params={"offset": PG_INTEGER_MAX, "size": 50})
    assert ok.status_code == 200
    assert ok.json()["offset"] == PG_INTEGER_MAX
    for name, value in (
        ("offset", "9223372036854775808"),
        ("offset", str(PG_INTEGER_MAX + 1)),
        ("offset", "-1"),
        ("size", "51"),
        ("size", "0"),
    ):
        error = only_error(await http.get("/homes/flat", params={name: value}))
        assert error["loc"] == ["query", name]


async def test_a_slug_path_names_the_field(http: httpx.AsyncClient) -> None:
    assert (await http.get("/homes/flat")).status_code == 200
    error = only_error(await http.get("/homes/Flat"))
    assert error["loc"] == ["path", "home"]


async def test_net_refuses_nul_in_an_untyped_path_and_query(http: httpx.AsyncClient) -> None:
    assert (await http.get("/raw/abc", params={"q": "x"})).json() == {"name": "abc"}
    assert only_error(await http.get("/raw/a%00b"))["loc"] == ["path"]
    error = only_error(await http.get("/homes/flat?q=a%00b"))
    assert error["loc"] == ["query", "q"]
    assert error["type"] == "control_character"


async def test_net_refuses_nul_in_a_form_field(http: httpx.AsyncClient) -> None:
    ok = await http.post("/form", content=b"username=ada", headers=_FORM)
    assert ok.json() == {"username": "ada"}
    error = only_error(await http.post("/form", content=b"username=a%00b", headers=_FORM))
    assert error["loc"] == ["body", "username"]
    multipart = await http.post("/form", files={"username": (None, b"a\x00b")})
    assert only_error(multipart)["loc"] == ["body"]


_FORM = {"content-type": "application/x-www-form-urlencoded"}


async def test_net_refuses_nul_and_lone_surrogates_anywhere_in_json(
    http: httpx.AsyncClient,
) -> None:
    ok = await http.post("/loose", json={"anything": "fine", "extra": {"a": ["b", {"c": "d"}]}})
    assert ok.status_code == 200
    cases = [
        (b'{"anything": "a\\u0000b"}', ["body", "anything"]),
        (b'{"extra": {"a": ["ok", {"c": "\\u0000"}]}}', ["body", "extra", "a", 1, "c"]),
        (b'{"extra": {"k\\u0000": 1}}', ["body", "extra", "k\x00"]),
        (b'{"anything": "\\ud800"}', ["body", "anything"]),
    ]
    for raw, loc in cases:
        error = only_error(await http.post("/loose", content=raw, headers=_JSON))
        assert error["loc"] == loc


_JSON = {"content-type": "application/json"}


async def test_deeply_nested_json_is_a_422_not_a_crash(http: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    big = make_app(max_body_bytes=1024 * 1024)
    transport = httpx.ASGITransport(app=big)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.post("/loose", content=deep, headers=_JSON)
    assert only_error(response)["loc"] == ["body"]


async def test_bodies_are_bounded(http: httpx.AsyncClient) -> None:
    fits = await http.post("/loose", json={"anything": "x" * 4000})
    assert fits.status_code == 200
    response = await http.post("/loose", json={"anything": "x" * 5000})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


async def test_body_is_handed_on_unchanged(http: httpx.AsyncClient) -> None:
    response = await http.post("/profiles", json={"name": " Zoë ", "token": "t"})
    assert response.status_code == 200
    assert response.json() == {"name": "Zoë", "note": "", "token": "t"}
