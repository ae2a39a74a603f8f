"""The input rule: what every Hearth service accepts as text and numbers, in one place.

Every string a service accepts (JSON bodies, forms, query strings, paths) follows one rule:

- **No NUL and no other C0 control character** (U+0000 to U+001F), and no lone surrogate
  (text that is not UTF-8), unless the field documents it (``multiline=True`` allows tab and
  line feed). PostgreSQL cannot store NUL in ``text`` or ``jsonb`` at all.
- **Free text** (names, areas, units: what people type) is NFC-normalised and trimmed
  before its length is checked, so ``"é"`` typed either way is the same name and the same
  number of characters.
- **Bounded**: every string has a maximum length and every integer query parameter an
  upper bound PostgreSQL can hold (:data:`Offset`, :func:`page_size`).

A violation is a 422 problem naming the field (``errors[].loc``), never a 500.

The field types, used by every service's models, forms and parameters:

- ``Annotated[str, FreeText(100)]``: human text (NFC, trimmed, no controls, bounded);
- ``Annotated[str, Text(256)]``: opaque text kept as given (tokens, passwords, keys);
- :data:`Slug`: ``[a-z0-9][a-z0-9-]{0,62}`` (homes, devices, metrics, properties);
- :data:`Offset`, ``page_size(500)``: bounded integer query parameters.

The safety net, :class:`InputGuardMiddleware` (every app from
:func:`hearth.common.web.create_service_app` has it): before any route runs, a NUL or a
lone surrogate anywhere in the path, the query string, a JSON body (keys too), an
urlencoded form or a multipart body answers the same 422, so a field someone forgot to type
can never carry one to PostgreSQL. It also bounds what it must buffer: a body over
``max_body_bytes`` answers 413 ``too_large``.

A route that reads a form declares ``dependencies=[Depends(require_form)]``: a JSON (or any
other) body there is a 415 ``form_expected`` that says to send a form, instead of a form
read as empty.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final
from urllib.parse import parse_qsl

import annotated_types
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, StringConstraints
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hearth.common.errors import FormExpected
from hearth.common.problems import problem_response, validation_problem
from hearth.common.topics import SLUG_PATTERN

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "PG_INTEGER_MAX",
    "FreeText",
    "InputGuardMiddleware",
    "Offset",
    "Slug",
    "Text",
    "page_size",
    "require_form",
]

FORM_MEDIA_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


async def require_form(request: Request) -> None:
    """Dependency of a form route: any other body type is a 415 naming the one to send."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in FORM_MEDIA_TYPES:
        raise FormExpected(
            f"this endpoint takes a form: send Content-Type: {FORM_MEDIA_TYPES[0]}"
            + (f", not {media}" if media else "")
        )


PG_INTEGER_MAX: Final = 2**31 - 1
"""The largest PostgreSQL ``integer``; every integer query parameter stays at or below it."""

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""The largest request body a service reads (1 MiB) unless its app says otherwise."""

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
"""What the safety net refuses anywhere: NUL and lone surrogates."""
_CONTROLS = re.compile("[\x00-\x1f\ud800-\udfff]")
_CONTROLS_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\ud800-\udfff]")
_NO_CONTROLS_PATTERN = "^[^\\u0000-\\u001F]*$"
_NO_CONTROLS_MULTILINE_PATTERN = "^[^\\u0000-\\u0008\\u000B-\\u001F]*$"


def _control_error() -> PydanticCustomError:
    return PydanticCustomError(
        "control_character",
        "Text must not contain NUL, other control characters or invalid UTF-8",
    )


@dataclass(frozen=True, slots=True)
class Text:
    """A string field kept as given: no control characters, at most ``max_length`` characters.

    For opaque values (passwords, tokens, client ids). ``multiline=True`` documents that tab
    and line feed are allowed. Use as ``Annotated[str, Text(256)]``.
    """

    max_length: int
    min_length: int = 0
    multiline: bool = False

    normalises: ClassVar[bool] = False

    def _clean(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the str schema refuses it with its own message
        if self.normalises:
            if self.multiline:
                value = value.replace("\r\n", "\n").replace("\r", "\n")
            # Controls are checked first: a lone surrogate cannot be normalised.
            self._check(value)
            return unicodedata.normalize("NFC", value).strip()
        self._check(value)
        return value

    def _check(self, value: str) -> None:
        pattern = _CONTROLS_MULTILINE if self.multiline else _CONTROLS
        if pattern.search(value):
            raise _control_error()

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(
            self._clean,
            core_schema.str_schema(min_length=self.min_length, max_length=self.max_length),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = (
            _NO_CONTROLS_MULTILINE_PATTERN if self.multiline else _NO_CONTROLS_PATTERN
        )
        return json_schema


@dataclass(frozen=True, slots=True)
class FreeText(Text):
    """Human text: NFC-normalised and trimmed, then checked like :class:`Text`.

    The length is counted after normalising. Use as ``Annotated[str, FreeText(100)]``.
    """

    normalises: ClassVar[bool] = True


Slug = Annotated[str, StringConstraints(pattern=f"^{SLUG_PATTERN}$")]
"""A slug (``[a-z0-9][a-z0-9-]{0,62}``): homes, devices, metrics, properties; in paths too
(``Annotated[Slug, Path(description=...)]``)."""

Offset = Annotated[int, annotated_types.Interval(ge=0, le=PG_INTEGER_MAX)]
"""How many items a page skips: 0 to 2^31 - 1 (``Annotated[Offset, Query()] = 0``)."""


def page_size(maximum: int) -> Any:
    """A page size query parameter: 1 to ``maximum`` (``Annotated[int, page_size(500)]``)."""
    if not 1 <= maximum <= PG_INTEGER_MAX:
        raise ValueError(f"a page size's maximum must be 1 to {PG_INTEGER_MAX}")
    return annotated_types.Interval(ge=1, le=maximum)


# --------------------------------------------------------------------------- the safety net


def _strings(
    value: Any, where: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in decoded JSON (keys too), with its location; iterative, any depth."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [(where, value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            yield loc, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield (*loc, key), key
                stack.append(((*loc, key), child))
        elif isinstance(item, list):
            stack.extend(((*loc, index), child) for index, child in enumerate(item))


def _find_forbidden(
    pairs: Iterable[tuple[tuple[str | int, ...], str]],
) -> tuple[str | int, ...] | None:
    """The location of the first string holding NUL or a lone surrogate, else ``None``."""
    for loc, text in pairs:
        if _FORBIDDEN.search(text):
            return loc
    return None


def _query_strings(raw: bytes) -> Iterator[tuple[tuple[str | int, ...], str]]:
    # Starlette decodes the query string the same way: latin-1, then percent-decoding.
    for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        yield ("query", key), key
        yield ("query", key), value


def _content_type(scope: Scope) -> str:
    value = Headers(scope=scope).get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


class _TooDeep(Exception):
    pass


def _body_location(content_type: str, body: bytes) -> tuple[str | int, ...] | None:
    """Where a body carries NUL or a lone surrogate (``None`` when nowhere or unparsable)."""
    if not body:
        return None
    if content_type in ("", "application/json") or content_type.endswith("+json"):
        try:
            decoded = json.loads(body)
        except RecursionError:
            raise _TooDeep from None
        except ValueError:
            return None  # not JSON: the route's own parsing answers it
        return _find_forbidden(_strings(decoded, ("body",)))
    if content_type == "application/x-www-form-urlencoded":
        pairs = (
            (("body", key), text)
            for key, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            for text in (key, value)
        )
        return _find_forbidden(pairs)
    if content_type.startswith("multipart/"):
        # No service accepts files: a NUL byte anywhere in a multipart body is refused.
        return ("body",) if b"\x00" in body else None
    return None


def _invalid(loc: tuple[str | int, ...], path: str | None) -> Any:
    error = {
        "loc": list(loc),
        "msg": "Text must not contain NUL or invalid UTF-8",
        "type": "control_character",
    }
    return validation_problem([error], instance=path)


class _Disconnected(Exception):
    pass


class InputGuardMiddleware:
    """The safety net of the input rule (see the module docstring).

    Reads the whole body (at most ``max_body_bytes``; more answers 413) before the app
    sees it, checks path, query and body, and hands the same body on unchanged.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if _FORBIDDEN.search(path):
            await _invalid(("path",), None)(scope, receive, send)
            return
        loc = _find_forbidden(_query_strings(scope.get("query_string", b"")))
        if loc is not None:
            await _invalid(loc, path)(scope, receive, send)
            return
        try:
            body = await self._read_body(scope, receive)
        except _Disconnected:
            return  # nobody to answer
        if body is None:
            response = problem_response(
                413,
                title="Request body too large",
                detail=f"The body is larger than {self.max_body_bytes} bytes.",
                instance=path,
                code="too_large",
            )
            await response(scope, receive, send)
            return
        try:
            loc = _body_location(_content_type(scope), body)
        except _TooDeep:
            await _invalid(("body",), path)(scope, receive, send)
            return
        if loc is not None:
            await _invalid(loc, path)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` when it is larger than ``max_body_bytes``."""
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
