"""Every service's OpenAPI documents its errors as what it sends: problem+json."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from hearth.common.openapi_problems import PROBLEM_SCHEMAS, document_problems
from hearth.common.problems import PROBLEM_CONTENT_TYPE
from hearth.testing.apps import RunningApp
from hearth.testing.services import ServiceStack

METHODS = ("get", "put", "post", "delete", "patch")


class Body(BaseModel):
    name: str


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, item[method])
        for path, item in document["paths"].items()
        for method in METHODS
        if method in item
    ]


def _check(document: dict[str, Any]) -> int:
    """Asserts the problem rules on ``document``; returns how many error responses it has."""
    errors = 0
    assert set(PROBLEM_SCHEMAS) <= set(document["components"]["schemas"])
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not (status.isdigit() and int(status) >= 400):
                assert PROBLEM_CONTENT_TYPE not in response.get("content", {}), (path, status)
                continue
            errors += 1
            content = response["content"]
            assert list(content) == [PROBLEM_CONTENT_TYPE], (method, path, status)
            ref = content[PROBLEM_CONTENT_TYPE]["schema"]["$ref"]
            expected = "ValidationProblem" if status == "422" else "Problem"
            assert ref == f"#/components/schemas/{expected}", (method, path, status)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(operation["responses"]), (method, path)
        if operation.get("security"):
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]  # Prometheus text, as sent
    return errors


def test_the_rewrite_on_a_plain_fastapi_document() -> None:
    app = FastAPI()

    @app.post("/things", responses={404: {"description": "no such thing"}})
    async def create(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return ""

    raw = app.openapi()
    assert "HTTPValidationError" in raw["components"]["schemas"]  # FastAPI's own, before
    documented = document_problems(raw)
    assert _check(documented) == 4  # 404, 422, and the body's 400 and 413
    responses = documented["paths"]["/things"]["post"]["responses"]
    assert responses["404"]["description"] == "no such thing"
    assert "application/json" in responses["200"]["content"]  # success untouched
    assert raw["paths"]["/things"]["post"]["responses"]["422"]["content"].keys() == {
        "application/json"
    }  # the input is not changed


@pytest.mark.parametrize("service", ["auth", "registry", "realtime"])
def test_every_service_documents_problems(
    service: str, stack: ServiceStack, realtime: RunningApp
) -> None:
    url = {"auth": stack.auth.url, "registry": stack.registry.url, "realtime": realtime.url}
    document = httpx.get(f"{url[service]}/openapi.json").json()
    assert _check(document) > 0
    if service == "auth":  # the token endpoint says it takes a form, and documents the 415
        token = document["paths"]["/auth/token"]["post"]
        assert list(token["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]
        assert "415" in token["responses"]
    # what is documented is what is sent: a refused input is a ValidationProblem
    if service == "registry":
        refused = stack.http.post("/registry/homes", json={}, headers=stack.admin.headers)
        assert refused.status_code == 422
        assert refused.headers["content-type"] == PROBLEM_CONTENT_TYPE
        assert refused.json()["errors"]
