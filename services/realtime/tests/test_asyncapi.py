"""Realtime's AsyncAPI document is valid and names exactly the events the code handles/sends.

Validity is checked here without a network: the document is JSON, AsyncAPI 3.0's shape
(info, servers, channels, operations with actions, messages), every ``$ref`` resolves,
every payload is a JSON Schema, and every example passes its payload's schema. A control
shows each check fails on a broken document. Drift: the client events are the handlers
``bind_events`` registers, the server events are the names the package emits.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import jsonschema_rs
import socketio

from hearth.realtime.asyncapi import EVENTS, asyncapi_document
from hearth.realtime.sockets import bind_events
from hearth.testing.apps import RunningApp

_EMITS = re.compile(r"""(?:\bemit|\b_write)\(\s*["']([a-z_]+)["']""")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def problems(document: dict[str, Any]) -> list[str]:
    """What keeps ``document`` from being a valid AsyncAPI 3.0 document of ours."""
    found: list[str] = []
    document = json.loads(json.dumps(document))  # it is plain JSON
    if document.get("asyncapi") != "3.0.0":
        found.append("asyncapi is not 3.0.0")
    if not {"title", "version"} <= set(document.get("info", {})):
        found.append("info needs title and version")
    for ref in _refs(document):
        try:
            _resolve(document, ref)
        except (KeyError, AssertionError):
            found.append(f"dangling $ref {ref}")
    if found:
        return found
    channel_messages = {
        f"#/channels/{name}/messages/{key}"
        for name, channel in document["channels"].items()
        for key in channel.get("messages", {})
    }
    for name, operation in document["operations"].items():
        if operation.get("action") not in ("send", "receive"):
            found.append(f"operation {name}: action {operation.get('action')!r}")
        parts = [operation, operation.get("reply") or {}]
        for ref in (m["$ref"] for part in parts for m in part.get("messages", [])):
            if ref not in channel_messages:
                found.append(f"operation {name}: message {ref} is not its channel's")
    components = document.get("components", {})
    for key, message in components.get("messages", {}).items():
        schema = {**message["payload"], "components": components}
        try:
            validator = jsonschema_rs.validator_for(schema)
        except Exception as exc:  # jsonschema_rs raises ValidationError for a bad schema
            found.append(f"message {key}: payload is not a JSON Schema: {exc}")
            continue
        if not message.get("examples"):
            found.append(f"message {key}: no example")
        for example in message.get("examples", []):
            for error in validator.iter_errors(example["payload"]):
                found.append(f"message {key}: example refused: {error.message}")
    return found


def _documented(document: dict[str, Any], action: str) -> set[str]:
    return {
        _resolve(document, op["messages"][0]["$ref"])["$ref"].rsplit("/", 1)[-1]
        for op in document["operations"].values()
        if op["action"] == action
    }


def test_the_document_is_valid_and_a_broken_one_is_not() -> None:
    document = asyncapi_document()
    assert problems(document) == []  # positive control
    dangling = copy.deepcopy(document)
    dangling["operations"]["subscribe"]["messages"] = [{"$ref": "#/channels/root/messages/x"}]
    assert problems(dangling) == ["dangling $ref #/channels/root/messages/x"]
    wrong = copy.deepcopy(document)
    wrong["components"]["messages"]["subscribe"]["examples"][0]["payload"] = {"topic": 7}
    assert problems(wrong)[0].startswith("message subscribe: example refused")
    bad_action = copy.deepcopy(document)
    bad_action["operations"]["message"]["action"] = "publish"  # AsyncAPI 2's word
    assert problems(bad_action) == ["operation message: action 'publish'"]


def test_every_handled_and_emitted_event_is_documented() -> None:
    sio = socketio.AsyncServer(async_mode="asgi")
    bind_events(sio, service=None)  # type: ignore[arg-type]  # only registers handlers
    handled = set(sio.handlers["/"])
    package = resources.files("hearth.realtime")
    sources = [p.read_text() for p in package.iterdir() if p.name.endswith(".py")]
    emitted = {name for text in sources for name in _EMITS.findall(text)}
    document = asyncapi_document()
    assert handled == _documented(document, "receive")
    assert emitted == _documented(document, "send")
    assert {"connect", "subscribe", "unsubscribe", "publish", "message", "messages"} <= {
        event.name for event in EVENTS
    }
    # Every client event but connect/disconnect has its ack documented.
    acked = {name for name, op in document["operations"].items() if "reply" in op}
    assert acked == handled - {"connect", "disconnect"}


def test_realtime_serves_the_document(realtime: RunningApp) -> None:
    response = httpx.get(f"{realtime.url}/asyncapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(asyncapi_document()))
