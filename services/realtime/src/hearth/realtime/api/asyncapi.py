"""``GET /asyncapi.json``: the Socket.IO events as an AsyncAPI 3.0 document."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter

from hearth.realtime.asyncapi import asyncapi_document

__all__ = ["TAGS", "router"]

TAGS: Final = [
    {"name": "events", "description": "The Socket.IO events, as an AsyncAPI document."},
]

router = APIRouter(tags=["events"])

_DOCUMENT: Final = asyncapi_document()
_EXAMPLE: Final = {
    "asyncapi": "3.0.0",
    "info": {"title": "Hearth realtime", "version": "0.1.0"},
    "channels": {"root": {"address": "/"}},
    "operations": {"subscribe": {"action": "receive", "channel": {"$ref": "#/channels/root"}}},
}


@router.get(
    "/asyncapi.json",
    summary="The Socket.IO events (AsyncAPI 3.0)",
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def asyncapi() -> dict[str, Any]:
    """Connect, subscribe, unsubscribe, publish, reauth and what the server sends; the docs
    portal renders it at ``/docs/asyncapi.html``."""
    return _DOCUMENT
