"""OpenAPI that tells the truth about errors: every error response is a problem.

Every Hearth service answers errors as ``application/problem+json``
(:mod:`hearth.common.problems`), but FastAPI documents them as ``application/json`` and
its 422 with its own ``HTTPValidationError`` model. :func:`install_problem_openapi` makes
the app's OpenAPI document say what is sent:

- every response with a status of 400 or more (and ``4XX``/``5XX``/``default``) is
  ``application/problem+json`` with the ``Problem`` schema;
- 422 is ``ValidationProblem``: a problem with ``errors`` of ``{loc, msg, type}``;
- an operation that takes a body also documents 400 (FastAPI's "There was an error
  parsing the body", e.g. a form that cannot be read) and 413 (over the body limit); one
  that needs a token documents 401 and 403; one that takes a form, 415 (a JSON body);
- FastAPI's ``HTTPValidationError``/``ValidationError`` schemas are dropped once unused.

The docs portal on the front door shows these documents (docs/operations.md, "Front door").
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI

from hearth.common.problems import PROBLEM_CONTENT_TYPE

__all__ = ["PROBLEM_SCHEMAS", "document_problems", "install_problem_openapi"]

_REF = "#/components/schemas/"
_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

PROBLEM_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "Problem": {
        "title": "Problem",
        "description": "RFC 9457 problem details, with a stable `code` and the `request_id`.",
        "type": "object",
        "required": ["title", "status"],
        "properties": {
            "type": {"type": "string", "default": "about:blank"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "code": {"type": "string", "description": "A stable machine word."},
            "request_id": {"type": "string"},
        },
        "additionalProperties": True,
        "example": {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": "no such home",
            "code": "not_found",
            "request_id": "3f0c9a8e2b7d4c1a",
        },
    },
    "ValidationProblem": {
        "title": "ValidationProblem",
        "description": (
            "A 422: `errors` lists what failed validation (never the rejected input); a "
            "refused value the rules check later (an unknown gateway...) has a `code` instead."
        ),
        "allOf": [
            {"$ref": f"{_REF}Problem"},
            {
                "type": "object",
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["loc", "msg"],
                            "properties": {
                                "loc": {
                                    "type": "array",
                                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                                },
                                "msg": {"type": "string"},
                                "type": {"type": ["string", "null"]},
                            },
                        },
                    }
                },
            },
        ],
        "example": {
            "type": "about:blank",
            "title": "Validation failed",
            "status": 422,
            "detail": "The request does not match what this endpoint accepts.",
            "code": "validation",
            "errors": [{"loc": ["body", "slug"], "msg": "Field required", "type": "missing"}],
        },
    },
}
"""The schemas every service's document carries for its errors."""

_BODY_ERRORS: Final = {
    "400": "The body could not be parsed (a form or JSON that cannot be read).",
    "413": "The body is larger than this service accepts.",
}
_TOKEN_ERRORS: Final = {
    "401": "No token, or a token that is invalid, expired or revoked (`reason` says which).",
    "403": "The token is valid but does not allow this.",
}


def _is_error(status: str) -> bool:
    return status in ("4XX", "5XX", "default") or (status.isdigit() and int(status) >= 400)


def _problem(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"{_REF}{schema}"}}},
    }


def _refers(part: Any, name: str) -> bool:
    """Whether ``part`` holds a ``$ref`` to schema ``name``."""
    return f'"{_REF}{name}"' in json.dumps(part)


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` whose error responses are problems (see the module docstring)."""
    result = copy.deepcopy(document)
    for item in result.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, description in _BODY_ERRORS.items():
                    responses.setdefault(status, {"description": description})
            form = "application/x-www-form-urlencoded"
            if form in operation.get("requestBody", {}).get("content", {}):
                responses.setdefault(
                    "415", {"description": f"A JSON body: this endpoint takes a form ({form})."}
                )
            if operation.get("security"):
                for status, description in _TOKEN_ERRORS.items():
                    responses.setdefault(status, {"description": description})
            for status, response in list(responses.items()):
                if not _is_error(status):
                    continue
                schema = "ValidationProblem" if status == "422" else "Problem"
                description = response.get("description") or "Error"
                if status == "422" and description == "Validation Error":
                    description = "Validation failed"
                responses[status] = _problem(schema, description)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, in this order
        others = {key: value for key, value in schemas.items() if key != unused}
        if unused in schemas and not _refers({"paths": result.get("paths"), **others}, unused):
            del schemas[unused]
    return result


def install_problem_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the problem-documented document (built once)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
