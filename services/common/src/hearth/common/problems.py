"""RFC 9457 problem details: the one error shape every Hearth HTTP API answers with.

:func:`install_problem_handlers` makes a FastAPI app answer every error as
``application/problem+json``:

- ``HTTPException`` (and Starlette's 404/405) with its status and detail;
- request validation errors as 422 with an ``errors`` list (location, message,
  type; never the rejected input, which may be a password);
- :class:`~hearth.common.errors.HearthError` with the status, ``code`` and
  message its class declares; token errors also carry ``reason`` and a
  ``WWW-Authenticate: Bearer`` challenge;
- anything unexpected as a bare 500 that leaks nothing but the request id.

Every 500 is a bug report: :func:`report_bug` writes exactly one log line (level
ERROR, message ``bug: ...``) with the request id, the method and route template, the
exception's type chain and the code locations of its traceback (file, line, function).
It never writes an exception's message, arguments or local values: a database error
quotes the row it failed on, which may hold a password hash or a user's text. (The
SQLSTATE of a database error is written: a code, not data.)
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.common.errors import (
    HearthError,
    InsufficientScope,
    TokenError,
    TokenMissing,
    TooManyRequests,
)
from hearth.common.logging import current_request_id

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "Problem",
    "ProblemResponse",
    "UnhandledErrorMiddleware",
    "bearer_challenge",
    "install_problem_handlers",
    "problem_response",
    "report_bug",
    "validation_problem",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"

logger = logging.getLogger(__name__)


class Problem(BaseModel):
    """A problem details object (RFC 9457); extension members are allowed.

    Hearth adds ``code`` (a stable machine word), ``request_id`` and, where
    they apply, ``reason`` (token errors) and ``errors`` (validation).
    """

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ProblemResponse(JSONResponse):
    """A JSON response with the ``application/problem+json`` media type."""

    media_type = PROBLEM_CONTENT_TYPE


def problem_response(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """A problem details response; ``title`` defaults to the status's reason phrase."""
    request_id = current_request_id()
    if request_id is not None:
        extensions.setdefault("request_id", request_id)
    problem = Problem(
        title=title or _phrase(status),
        status=status,
        detail=detail,
        instance=instance,
        **extensions,
    )
    return ProblemResponse(
        problem.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


def bearer_challenge(exc: TokenError | InsufficientScope) -> str:
    """The ``WWW-Authenticate`` value for a refused token (RFC 6750 section 3)."""
    if isinstance(exc, InsufficientScope):
        return f'Bearer realm="hearth", error="insufficient_scope", scope="{exc.scope}"'
    if isinstance(exc, TokenMissing):
        return 'Bearer realm="hearth"'
    return f'Bearer realm="hearth", error="invalid_token", error_description="{exc.reason}"'


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    raw: Any = exc.detail
    detail: str | None = raw if isinstance(raw, str) and raw != _phrase(exc.status_code) else None
    extensions: dict[str, Any] = {}
    if raw is not None and not isinstance(raw, str):
        extensions["errors"] = raw
    return problem_response(
        exc.status_code, detail=detail, headers=exc.headers, instance=request.url.path, **extensions
    )


def validation_problem(
    errors: Sequence[Mapping[str, Any]], *, instance: str | None = None
) -> ProblemResponse:
    """The 422 every refused input answers: ``errors`` of ``{loc, msg, type}``, never the input."""
    return problem_response(
        422,
        title="Validation failed",
        detail="The request does not match what this endpoint accepts.",
        instance=instance,
        code="validation",
        errors=[dict(error) for error in errors],
    )


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    return validation_problem(errors, instance=request.url.path)


_MAX_FRAMES = 15
_MAX_CHAIN = 5


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _short_path(filename: str) -> str:
    """A source file relative to its package root (``hearth/auth/service.py``)."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "src"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker) :])
    return "/".join(parts[-3:])


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < _MAX_CHAIN and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def report_bug(exc: BaseException, scope: Mapping[str, Any]) -> None:
    """Log one line for a 500: where it happened, never what the request carried.

    The request id is the one being served (:func:`~hearth.common.logging.current_request_id`);
    ``scope`` gives the method and the route template.
    """
    route = getattr(scope.get("route"), "path", None)
    frames = traceback.extract_tb(exc.__traceback__)[-_MAX_FRAMES:]
    chain = _chain(exc)
    extra: dict[str, Any] = {
        "request_id": current_request_id(),
        "method": scope.get("method"),
        "route": route,
        "error": _type_name(exc),
        "error_chain": [_type_name(item) for item in chain],
        "frames": [f"{_short_path(f.filename)}:{f.lineno} {f.name}" for f in frames],
    }
    sqlstates = [getattr(item, "sqlstate", None) for item in chain]
    sqlstate = next((code for code in sqlstates if isinstance(code, str)), None)
    if sqlstate is not None:
        extra["sqlstate"] = sqlstate
    logger.error(
        "bug: %s in %s %s",
        _type_name(exc),
        scope.get("method"),
        route or "<unmatched>",
        extra=extra,
    )


async def _hearth_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HearthError)
    headers: dict[str, str] = {}
    extensions: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, TokenError):
        extensions["reason"] = exc.reason
    if isinstance(exc, TokenError | InsufficientScope):
        headers["WWW-Authenticate"] = bearer_challenge(exc)
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
        extensions["retry_after"] = exc.retry_after
    if exc.status == 500:
        report_bug(exc, request.scope)
    elif exc.status > 500:
        logger.error("request failed: %s", type(exc).__name__)
    # A plain 500 HearthError is a bug or a misconfiguration: its message stays in the log.
    detail = None if exc.status == 500 else exc.message
    return problem_response(
        exc.status,
        title=exc.title,
        detail=detail,
        instance=request.url.path,
        headers=headers,
        **extensions,
    )


class UnhandledErrorMiddleware:
    """Answers an exception nothing else handled with a bare 500 problem, and logs it.

    Sits inside the request-id middleware (so the log line and the response
    carry the request id) and outside FastAPI's own exception handlers. Unlike
    Starlette's catch-all it does not re-raise, so the server does not log the
    traceback a second time.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            report_bug(exc, scope)
            if started:
                raise
            response = problem_response(
                500,
                detail="An unexpected error occurred. Quote the request id when reporting it.",
                code="internal",
            )
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error as problem details (see the module docstring).

    Also adds :class:`UnhandledErrorMiddleware`; add it before the request-id
    middleware (middleware added later wraps what was added earlier).
    """
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HearthError, _hearth_error)
    app.add_middleware(UnhandledErrorMiddleware)
