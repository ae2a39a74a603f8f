"""Structured logs: one JSON object per line on stdout, request ids, secret redaction.

Every line carries ``ts`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``message``, ``service`` and, inside a request, ``request_id``,
then any ``extra={...}`` fields. Secrets are redacted before a line is
written: values under keys such as ``password``, ``secret``, ``token``,
``authorization``, ``cookie`` or ``api_key``, and anything that looks like a
JWT, a ``Bearer``/``Basic`` credential, a password in a URL or ``password=...``
text, wherever it appears (message, extras, traceback).

:class:`RequestContextMiddleware` gives each HTTP request an id (the caller's
``X-Request-ID`` when it is sane, else a new one), echoes it in the response,
binds it to every log line written while the request runs and writes one
access line per request (path without its query string, which may carry a
token).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

from pydantic import SecretBytes, SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "REDACTED",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RequestContextMiddleware",
    "configure_logging",
    "current_request_id",
    "is_sensitive_key",
    "log_context",
    "redact",
    "redact_text",
]

REDACTED = "[redacted]"
REQUEST_ID_HEADER = "X-Request-ID"

_SENSITIVE_KEY = re.compile(
    r"passw(or)?d|pwd|secret|token|authori[sz]ation|cookie|api[-_]?key|private[-_]?key"
    r"|credential|jwt|dsn|database[-_]?url",
    re.IGNORECASE,
)
_TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A JWT (three base64url parts; an unsigned one has an empty third part).
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # An Authorization header value.
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1 {REDACTED}"),
    # A password in a URL: scheme://user:password@host
    (re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@"), rf"\1{REDACTED}@"),
    # key=value or "key": "value" text for secret-looking keys.
    (
        re.compile(
            r"((?:passw(?:or)?d|secret|token|api[-_]?key|authorization|cookie)[A-Za-z0-9_-]*"
            r"[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
)
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_NO_CONTEXT: Mapping[str, Any] = MappingProxyType({})
_context: ContextVar[Mapping[str, Any]] = ContextVar("hearth_log_context", default=_NO_CONTEXT)


def is_sensitive_key(key: str) -> bool:
    """Whether a field named ``key`` holds a secret (its value is never logged)."""
    return bool(_SENSITIVE_KEY.search(key))


def redact_text(text: str) -> str:
    """``text`` with JWTs, credentials, URL passwords and ``password=...`` values redacted."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """``value`` with secrets redacted, recursively through mappings and sequences."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, SecretStr | SecretBytes | bytes | bytearray):
        return REDACTED
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_sensitive_key(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value))


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    request_id = _context.get().get("request_id")
    return request_id if isinstance(request_id, str) else None


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the ``with`` block (this task only)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON with secrets redacted."""

    def __init__(self, *, service: str | None = None, replica: str | None = None) -> None:
        super().__init__()
        self.static: dict[str, str] = {}
        if service is not None:
            self.static["service"] = service
        if replica is not None:
            self.static["replica"] = replica

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
            **self.static,
        }
        for key, value in _context.get().items():
            data.setdefault(key, REDACTED if is_sensitive_key(key) else redact(value))
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            data.setdefault(key, REDACTED if is_sensitive_key(key) else redact(value))
        if record.exc_info:
            data["exc"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            data["stack"] = redact_text(self.formatStack(record.stack_info))
        return json.dumps(data, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stdout`` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(
    service: str | None = None, level: str | int = "INFO", *, replica: str | None = None
) -> None:
    """Send every log record to stdout as JSON lines; idempotent.

    Replaces a handler installed by an earlier call (other handlers, such as
    pytest's, stay), and routes uvicorn's loggers through the root logger;
    uvicorn's own access log is silenced because
    :class:`RequestContextMiddleware` writes a richer one.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdoutHandler):
            root.removeHandler(handler)
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter(service=service, replica=replica))
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False


def _sane_request_id(value: str | None) -> str:
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives each request an id, binds it to log lines, echoes it, and logs the request."""

    def __init__(self, app: ASGIApp, *, service: str | None = None) -> None:
        self.app = app
        self.service = service
        self.logger = logging.getLogger("hearth.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _sane_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        fields: dict[str, Any] = {"request_id": request_id}
        if self.service is not None:
            fields["service"] = self.service
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(**fields):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                if scope["type"] == "http":
                    self._log(scope, status, time.perf_counter() - started)

    def _log(self, scope: Scope, status: int, elapsed: float) -> None:
        path = scope.get("path", "")
        route = scope.get("route")
        level = logging.DEBUG if path in _QUIET_PATHS and status < 400 else logging.INFO
        self.logger.log(
            level,
            "%s %s %d",
            scope.get("method"),
            path,
            status,
            extra={
                "method": scope.get("method"),
                "path": path,
                "route": getattr(route, "path", None),
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
