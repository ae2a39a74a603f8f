"""create_service_app: the FastAPI app every Hearth service starts from.

It wires the standard pieces so a service's ``create_app()`` only adds its
routes and its own lifespan:

- problem details for every error (:mod:`hearth.common.problems`), every 500 logged
  as one bug-report line, and documented as such in OpenAPI
  (:mod:`hearth.common.openapi_problems`);
- the input rule's safety net (:class:`hearth.common.inputs.InputGuardMiddleware`): NUL
  or invalid UTF-8 anywhere in a path, query or body is a 422, a body over
  ``max_body_bytes`` a 413;
- JSON logs and request ids (:mod:`hearth.common.logging`);
- ``GET /healthz``: the process is alive (always 200 while it serves);
- ``GET /readyz``: runs every readiness check (database, broker...) with a
  timeout; 200 with each check's status, or 503 naming the failing ones;
- ``GET /metrics``: Prometheus text from a registry of this app's own (never
  the process-global one, so several apps in one test process don't
  collide), with request counts and latencies by route template and status;
- one typed record of all that, :class:`AppParts`, stored once on the app: its settings,
  metrics registry, readiness checks, token verifier (built from the settings' JWKS URL
  unless one is passed; :mod:`hearth.common.auth` reads it) and the service's own state.

The service's state is a dataclass of its own (``hearth.<service>.state``) holding every
object ``create_app`` built; routes read it through a typed dependency::

    StateDep = Annotated[RegistryState, Depends(state_dependency(RegistryState))]

and nothing reads or writes ``app.state.<name>`` by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.common.inputs import DEFAULT_MAX_BODY_BYTES, InputGuardMiddleware
from hearth.common.logging import RequestContextMiddleware, configure_logging
from hearth.common.memory import HeapTrimmer
from hearth.common.openapi_conventions import install_openapi_conventions
from hearth.common.openapi_problems import install_problem_openapi
from hearth.common.problems import install_problem_handlers
from hearth.common.settings import HearthSettings
from hearth.common.tokens import TokenVerifier, verifier_from_settings

__all__ = [
    "AppParts",
    "HttpMetrics",
    "Lifespan",
    "MetricsMiddleware",
    "ReadinessCheck",
    "add_readiness_check",
    "app_parts",
    "create_service_app",
    "metrics_registry",
    "service_state",
    "state_dependency",
]

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
"""An async callable that returns when a dependency is usable and raises when it is not."""
Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]
"""A FastAPI lifespan: an async context manager factory taking the app."""

_UNMATCHED = "<unmatched>"
_PARTS = "hearth"  # the one attribute of app.state this module owns

S = TypeVar("S")


@dataclass(eq=False)
class AppParts:
    """What :func:`create_service_app` keeps for an app, stored once on it (:func:`app_parts`).

    ``state`` is the service's own state object (its ``state.py`` dataclass), read through
    :func:`service_state` / :func:`state_dependency`.
    """

    settings: HearthSettings
    metrics_registry: CollectorRegistry
    token_verifier: TokenVerifier
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    state: object = None


def app_parts(app: Starlette) -> AppParts:
    """The :class:`AppParts` of an app made by :func:`create_service_app`."""
    parts = getattr(app.state, _PARTS, None)
    if not isinstance(parts, AppParts):
        raise RuntimeError("this app was not made by create_service_app")
    return parts


def service_state(app: Starlette, kind: type[S]) -> S:
    """The service state of ``app``, which must be a ``kind`` (its ``state.py`` dataclass)."""
    state = app_parts(app).state
    if not isinstance(state, kind):
        raise RuntimeError(f"this app's state is not a {kind.__name__}")
    return state


def state_dependency(kind: type[S]) -> Callable[[Request], S]:
    """A FastAPI dependency giving a route the service state (``Depends(...)`` it)."""

    def dependency(request: Request) -> S:
        return service_state(request.app, kind)

    dependency.__name__ = f"{kind.__name__}_dependency"
    return dependency


class HttpMetrics:
    """The HTTP request metrics of one app, registered in that app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "hearth_http_requests",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "hearth_http_request_duration_seconds",
            "Time to serve an HTTP request, by method and route template.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or _UNMATCHED
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def metrics_registry(app: FastAPI) -> CollectorRegistry:
    """The Prometheus registry of ``app``: register a service's own metrics here."""
    return app_parts(app).metrics_registry


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    """Make ``/readyz`` also depend on ``check`` (may be called from the lifespan)."""
    app_parts(app).readiness_checks[name] = check


async def _run_check(name: str, check: ReadinessCheck, limit: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            await check()
    except TimeoutError:
        logger.warning("readiness check timed out", extra={"check": name, "timeout_s": limit})
        result: dict[str, Any] = {"ok": False, "error": f"timed out after {limit:g} s"}
    except Exception as exc:
        logger.warning("readiness check failed", extra={"check": name}, exc_info=True)
        result = {"ok": False, "error": type(exc).__name__}
    else:
        result = {"ok": True}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return result


_HEALTHZ_EXAMPLE: Final = {"status": "ok", "service": "registry", "replica": "0"}
_READYZ_EXAMPLE: Final = {
    "status": "ready",
    "checks": {"database": {"ok": True, "duration_ms": 1.2}},
    "failing": [],
}
_METRICS_EXAMPLE: Final = (
    "# HELP hearth_http_requests_total HTTP requests served, by method, route template "
    "and status.\n"
    "# TYPE hearth_http_requests_total counter\n"
    'hearth_http_requests_total{method="GET",route="/healthz",status="200"} 3.0\n'
)


def create_service_app(
    settings: HearthSettings,
    *,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    lifespan: Lifespan | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    readiness_timeout: float = 2.0,
    token_verifier: TokenVerifier | None = None,
    state: object = None,
    metrics_registry: CollectorRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    openapi_tags: Sequence[Mapping[str, str]] = (),
    openapi_examples: Mapping[str, Any] | None = None,
    **fastapi_options: Any,
) -> FastAPI:
    """A FastAPI app with Hearth's standard pieces (see the module docstring).

    ``lifespan`` runs inside the standard one; what it yields becomes the
    lifespan state. ``token_verifier`` replaces the one built from
    ``settings`` (tests pass the harness's); nothing is fetched until the
    first token is verified. ``state`` is the service's own state (read back with
    :func:`service_state`); ``metrics_registry`` the Prometheus registry its objects
    were built with (a fresh one unless given). ``max_body_bytes`` bounds a request body
    (413 beyond). ``openapi_tags`` (name and description of each tag the service's
    routes use) and ``openapi_examples`` (schema name -> example) feed
    :mod:`hearth.common.openapi_conventions`.
    """
    configure_logging(settings.service, settings.log_level, replica=settings.replica)

    @contextlib.asynccontextmanager
    async def standard_lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        logger.info(
            "starting",
            extra={"env": settings.env, "replica": settings.replica, "version": version},
        )
        trimmer = HeapTrimmer(settings.heap_trim_interval)
        try:
            if lifespan is None:
                trimmer.start()
                yield {}
            else:
                async with lifespan(app) as state:
                    trimmer.start()  # started: what startup allocated and freed goes back
                    yield dict(state or {})
        finally:
            await trimmer.stop()
            logger.info("stopped")

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=standard_lifespan,
        **fastapi_options,
    )
    registry = (
        CollectorRegistry(auto_describe=True) if metrics_registry is None else metrics_registry
    )
    parts = AppParts(
        settings=settings,
        metrics_registry=registry,
        token_verifier=(
            verifier_from_settings(settings) if token_verifier is None else token_verifier
        ),
        readiness_checks=dict(readiness_checks or {}),
        state=state,
    )
    setattr(app.state, _PARTS, parts)

    # Middleware added later wraps what was added earlier: the request id is
    # outermost, then metrics (which must see the 500s), then the catch-all, then the
    # input guard (inside the catch-all, so even its own failure is a logged 500).
    app.add_middleware(InputGuardMiddleware, max_body_bytes=max_body_bytes)
    install_problem_handlers(app)
    install_problem_openapi(app)
    install_openapi_conventions(app, tags=openapi_tags, examples=openapi_examples)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_middleware(RequestContextMiddleware, service=settings.service)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="The process is alive",
        responses={200: {"content": {"application/json": {"example": _HEALTHZ_EXAMPLE}}}},
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service, "replica": settings.replica}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Every dependency is usable",
        responses={
            200: {
                "description": "Every check passed",
                "content": {"application/json": {"example": _READYZ_EXAMPLE}},
            },
            503: {"description": "At least one readiness check failed"},
        },
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = dict(app_parts(request.app).readiness_checks)
        results = await asyncio.gather(
            *(_run_check(name, check, readiness_timeout) for name, check in checks.items())
        )
        by_name = dict(zip(checks, results, strict=True))
        ready = all(result["ok"] for result in results)
        body = {
            "status": "ready" if ready else "not_ready",
            "checks": by_name,
            "failing": sorted(name for name, result in by_name.items() if not result["ok"]),
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"example": _METRICS_EXAMPLE}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
