"""create_service_app: health, readiness, per-app metrics, lifespan, problem details."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from prometheus_client import REGISTRY, CollectorRegistry

from hearth.common.errors import Conflict
from hearth.common.settings import HearthSettings
from hearth.common.tokens import TokenVerifier
from hearth.common.web import (
    ReadinessCheck,
    add_readiness_check,
    app_parts,
    create_service_app,
    metrics_registry,
    service_state,
    state_dependency,
)


def settings(service: str = "sample") -> HearthSettings:
    return HearthSettings(env="test", service=service, replica="r1")


def make_app(
    checks: Mapping[str, ReadinessCheck] | None = None, service: str = "sample", **options: Any
) -> FastAPI:
    app = create_service_app(
        settings(service), title=service, readiness_checks=checks, readiness_timeout=0.2, **options
    )

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise Conflict("item 0 is reserved")
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def ok() -> None:
    return None


async def broken() -> None:
    raise ConnectionRefusedError("postgresql://u:pw@db refused")


async def hangs() -> None:
    await asyncio.Event().wait()  # never set: only the timeout ends it


async def test_healthz_says_alive() -> None:
    async with client_for(make_app({"db": broken})) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200  # liveness ignores dependencies
    assert response.json() == {"status": "ok", "service": "sample", "replica": "r1"}


async def test_readyz_is_200_when_every_check_passes() -> None:
    async with client_for(make_app({"db": ok, "broker": ok})) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["failing"] == []
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "db": True,
        "broker": True,
    }


async def test_readyz_is_503_naming_failing_and_slow_checks() -> None:
    async with client_for(make_app({"db": broken, "broker": hangs, "cache": ok})) as http:
        started = asyncio.get_running_loop().time()
        response = await http.get("/readyz")
        elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failing"] == ["broker", "db"]
    assert body["checks"]["db"]["error"] == "ConnectionRefusedError"
    assert "timed out" in body["checks"]["broker"]["error"]
    assert body["checks"]["cache"]["ok"] is True
    assert "pw@db" not in response.text  # an error's text may hold secrets: only its type
    assert elapsed < 2  # checks run concurrently, each bounded by the timeout


async def test_readiness_checks_can_be_added_later() -> None:
    app = make_app()
    async with client_for(app) as http:
        assert (await http.get("/readyz")).status_code == 200
        add_readiness_check(app, "db", broken)
        assert (await http.get("/readyz")).json()["failing"] == ["db"]


def sample_value(text: str, name: str, labels: Mapping[str, str]) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(part in line for part in wanted.split(",")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_route_template_and_status() -> None:
    app = make_app()
    async with client_for(app) as http:
        for item_id in (1, 2, 3, 0):
            await http.get(f"/items/{item_id}")
        await http.get("/no/such/path")
        await http.get("/boom")
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    total = "hearth_http_requests_total"
    assert sample_value(text, total, {"route": "/items/{item_id}", "status": "200"}) == 3
    assert sample_value(text, total, {"route": "/items/{item_id}", "status": "409"}) == 1
    assert sample_value(text, total, {"route": "<unmatched>", "status": "404"}) == 1
    assert sample_value(text, total, {"route": "/boom", "status": "500"}) == 1
    assert "/items/1" not in text  # raw paths would explode the label space
    count = "hearth_http_request_duration_seconds_count"
    assert sample_value(text, count, {"method": "GET", "route": "/items/{item_id}"}) == 4


async def test_each_app_has_its_own_registry() -> None:
    first, second = make_app(service="one"), make_app(service="two")
    assert metrics_registry(first) is not metrics_registry(second)
    assert isinstance(metrics_registry(first), CollectorRegistry)
    assert metrics_registry(first) is not REGISTRY
    async with client_for(first) as http:
        await http.get("/items/5")
        await http.get("/items/5")
    async with client_for(second) as http:
        await http.get("/items/5")
        text = (await http.get("/metrics")).text
    route = {"route": "/items/{item_id}", "status": "200"}
    assert sample_value(text, "hearth_http_requests_total", route) == 1
    assert REGISTRY.get_sample_value("hearth_http_requests_total", route) is None


async def test_errors_are_problem_details_with_request_ids() -> None:
    async with client_for(make_app()) as http:
        conflict = await http.get("/items/0")
        crash = await http.get("/boom")
        invalid = await http.get("/items/abc")
    assert conflict.status_code == 409
    assert conflict.json()["detail"] == "item 0 is reserved"
    assert crash.status_code == 500
    assert "kaboom" not in crash.text
    assert crash.json()["request_id"] == crash.headers["x-request-id"]
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"] == ["path", "item_id"]
    for response in (conflict, crash, invalid):
        assert response.headers["content-type"] == "application/problem+json"


async def test_the_services_lifespan_runs_inside_and_its_state_reaches_requests() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append("start")
        add_readiness_check(app, "started", ok)
        yield {"greeting": "hello"}
        events.append("stop")

    app = make_app(lifespan=lifespan)

    @app.get("/greet")
    async def greet(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
            assert (await http.get("/greet")).json() == {"greeting": "hello"}
            assert "started" in (await http.get("/readyz")).json()["checks"]
        assert events == ["start"]
    assert events == ["start", "stop"]


def test_settings_and_a_verifier_from_them_are_on_the_state() -> None:
    app = make_app()
    assert app_parts(app).settings.service == "sample"
    verifier = app_parts(app).token_verifier
    assert isinstance(verifier, TokenVerifier)
    assert verifier.jwks.url == app_parts(app).settings.jwks_url
    assert verifier.issuer == "hearth-auth"
    assert verifier.audience == "hearth"


def test_an_injected_verifier_is_used(token_verifier: TokenVerifier) -> None:
    assert app_parts(make_app(token_verifier=token_verifier)).token_verifier is token_verifier


@dataclass(frozen=True)
class SampleState:
    greeting: str


SampleStateDep = Annotated[SampleState, Depends(state_dependency(SampleState))]


async def test_the_service_state_reaches_routes_through_a_typed_dependency() -> None:
    app = make_app(state=SampleState("hello"))

    @app.get("/greet")
    async def greet(state: SampleStateDep) -> dict[str, str]:
        return {"greeting": state.greeting}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        assert (await http.get("/greet")).json() == {"greeting": "hello"}
    assert service_state(app, SampleState).greeting == "hello"
    with pytest.raises(RuntimeError, match="not a TokenVerifier"):
        service_state(app, TokenVerifier)
    with pytest.raises(RuntimeError, match="create_service_app"):
        app_parts(FastAPI())


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_operations_endpoints_are_in_the_openapi(path: str) -> None:
    assert path in make_app().openapi()["paths"]
