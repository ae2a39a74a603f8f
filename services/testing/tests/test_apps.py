"""The app harness: a real uvicorn on a free port, lifespan on both ways, clean stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Response

from hearth.testing.apps import AppStartError, RunningApp, serve_app
from hearth.testing.ports import port_is_open


def tiny_app(events: list[str], *, fail_startup: bool = False, not_ready_for: int = 0) -> FastAPI:
    """An app that records its lifespan and is not ready for its first few /readyz calls."""
    readyz_calls = 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        if fail_startup:
            raise RuntimeError("no database")
        app.state.greeting = "hello"
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"greeting": app.state.greeting}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, int]:
        nonlocal readyz_calls
        readyz_calls += 1
        if readyz_calls <= not_ready_for:
            response.status_code = 503
        return {"calls": readyz_calls}

    return app


def test_an_app_serves_with_its_lifespan_and_stops_cleanly(
    app_server: Callable[..., RunningApp],
) -> None:
    events: list[str] = []
    running = app_server(tiny_app(events))

    assert running.url == f"http://127.0.0.1:{running.port}"
    answer = httpx.get(f"{running.url}/healthz")
    assert answer.json() == {"greeting": "hello"}  # set by the lifespan startup
    assert events == ["startup"]

    running.stop()

    assert events == ["startup", "shutdown"]
    assert not running.running
    assert not port_is_open(running.host, running.port)
    running.stop()  # idempotent


def test_two_apps_get_two_ports(app_server: Callable[..., RunningApp]) -> None:
    first, second = app_server(tiny_app([])), app_server(tiny_app([]))
    assert first.port != second.port
    assert httpx.get(f"{second.url}/healthz").status_code == 200


def test_wait_path_waits_until_the_app_is_ready() -> None:
    with serve_app(tiny_app([], not_ready_for=3), wait_path="/readyz") as running:
        # the harness polled through three 503s; the next call is the fifth
        assert httpx.get(f"{running.url}/readyz").json() == {"calls": 5}


def test_a_failing_lifespan_is_reported() -> None:
    events: list[str] = []
    with pytest.raises(AppStartError, match="exited during startup"):
        serve_app(tiny_app(events, fail_startup=True))
    assert events == ["startup"]
