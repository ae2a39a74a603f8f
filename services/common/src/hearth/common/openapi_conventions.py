"""OpenAPI that looks the same in every service: security schemes, tags and examples.

:func:`install_openapi_conventions` (called by ``create_service_app`` after the problem
rewrite of :mod:`hearth.common.openapi_problems`) makes each service's document follow one
set of rules, so the docs portal behaves the same on every page:

- **Security**: :data:`SECURITY_SCHEMES`, the same two schemes in every service: ``bearer``
  (paste an access token) and ``password`` (the OAuth2 password flow against
  ``/auth/token``, which works for every service behind the front door: one origin). Every
  secured operation accepts either (:data:`SECURITY`), so Authorize once, on any page, fills
  both and every service's calls carry the token.
- **Tags**: the document lists each tag once, with a description (:data:`OPERATIONS_TAG`
  plus the service's ``tags``); an operation's duplicate tags are dropped.
- **Examples**: ``examples`` maps a component schema's name to one example; it becomes the
  schema's ``examples`` and the media-type ``example`` of every request body and 2xx
  response that uses the schema (a list of it: a list of the example). Media types with an
  example of their own (text bodies, file downloads: declared on the route) keep it.

``hearth.testing.openapi_lint`` checks the result (a body or main response without an
example, an operation without summary or tag, another security scheme) and that each
example is valid against its schema.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from fastapi import FastAPI

__all__ = [
    "OPERATIONS_TAG",
    "SECURITY",
    "SECURITY_SCHEMES",
    "document_conventions",
    "install_openapi_conventions",
    "operations",
]

TOKEN_URL: Final = "/auth/token"  # noqa: S105 (a path, not a password)
"""auth's token endpoint, relative: the front door serves it on every service's origin."""

SECURITY_SCHEMES: Final[dict[str, dict[str, Any]]] = {
    "bearer": {
        "type": "http",
        "description": "An access token from auth (EdDSA-signed JWT).",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    },
    "password": {
        "type": "oauth2",
        "description": "Log in with a username and password (the OAuth2 password flow).",
        "flows": {"password": {"scopes": {}, "tokenUrl": TOKEN_URL}},
    },
}
"""The security schemes of every service, by name (the only ones a document may have)."""

SECURITY: Final[list[dict[str, list[str]]]] = [{"bearer": []}, {"password": []}]
"""What every secured operation requires: a token, pasted or from the password flow."""

OPERATIONS_TAG: Final = {
    "name": "operations",
    "description": "Liveness, readiness and Prometheus metrics (every service has them).",
}

_METHODS: Final = ("get", "put", "post", "delete", "patch")


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Each ``(path, method, operation)`` of ``document``."""
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _example_of(schema: Mapping[str, Any] | None, schemas: Mapping[str, Any]) -> Any:
    """The example of ``schema`` (a ``$ref``, a list of one, or a union), or None."""
    if not schema:
        return None
    if "$ref" in schema:
        named = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return (named.get("examples") or [None])[0]
    if schema.get("type") == "array":
        item = _example_of(schema.get("items"), schemas)
        return None if item is None else [item]
    for option in schema.get("anyOf", []):
        found = _example_of(option, schemas)
        if found is not None:
            return found
    return (schema.get("examples") or [None])[0]


def _media(operation: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The media types of the operation's request body and 2xx responses."""
    yield from operation.get("requestBody", {}).get("content", {}).values()
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            yield from response.get("content", {}).values()


def document_conventions(
    document: Mapping[str, Any],
    *,
    tags: Sequence[Mapping[str, str]] = (),
    examples: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` following the conventions (see the module docstring).

    ``examples`` naming a schema the document does not have is a ``ValueError`` (a renamed
    model must not silently lose its example).
    """
    result = copy.deepcopy(dict(document))
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, example in (examples or {}).items():
        if name not in schemas:
            raise ValueError(f"an example for {name!r}, which is not a schema of this document")
        schemas[name]["examples"] = [copy.deepcopy(example)]
    secured = False
    for _path, _method, operation in operations(result):
        if operation.get("tags"):
            operation["tags"] = list(dict.fromkeys(operation["tags"]))
        if operation.get("security"):
            operation["security"] = copy.deepcopy(SECURITY)
            secured = True
        for media in _media(operation):
            if "example" in media or "examples" in media:
                continue
            example = _example_of(media.get("schema"), schemas)
            if example is not None:
                media["example"] = example
    if secured:
        components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    result["tags"] = [dict(OPERATIONS_TAG), *(dict(tag) for tag in tags)]
    return result


def install_openapi_conventions(
    app: FastAPI,
    *,
    tags: Sequence[Mapping[str, str]] = (),
    examples: Mapping[str, Any] | None = None,
) -> None:
    """Make ``app.openapi()`` follow the conventions (on top of what it returned before)."""
    build: Callable[[], dict[str, Any]] = app.openapi
    built: list[dict[str, Any]] = []  # the document, once made

    def openapi() -> dict[str, Any]:
        if not built:
            built.append(document_conventions(build(), tags=tags, examples=examples))
        return built[0]

    app.openapi = openapi  # type: ignore[method-assign]
