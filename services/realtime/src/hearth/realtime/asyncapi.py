"""Realtime's AsyncAPI 3.0 document: the Socket.IO events of namespace ``/``.

Served at ``GET /asyncapi.json`` (and by the front door at ``/docs/asyncapi/realtime.json``,
rendered by the docs portal's ``asyncapi.html``). The document is built from one table,
:data:`EVENTS`: each :class:`Event` is a Socket.IO event name, who sends it, its payload
schema and example, and (client events) its ack. A new event is one entry (issue 19 adds
the command details of ``publish`` here); the error codes come from
:data:`hearth.realtime.errors.ErrorCode`, so the document and the code cannot disagree.
services/realtime/tests/test_asyncapi.py checks the document and that every event the
server handles or emits is in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from hearth.realtime.errors import ErrorCode

__all__ = ["EVENTS", "Event", "asyncapi_document"]

Direction = Literal["client", "server"]
"""``client``: the browser emits it (the server handles it); ``server``: the server emits it."""

_TS: Final = "2026-11-29T08:30:00.123Z"
_ROOM: Final = "hearth/maple-house/+/telemetry/temperature"
_TOPIC: Final = "hearth/maple-house/kitchen-th/telemetry/temperature"
_JWT: Final = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIwYjdlNGExYyJ9.c2lnbmF0dXJl"


def _object(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_STRING: Final = {"type": "string"}
_TOPIC_FIELD: Final = {
    "type": "string",
    "description": "An MQTT topic, or (subscribe) a filter with + and # inside one home.",
}
_ANY: Final = {"description": "The decoded JSON value, else the text."}

SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "ErrorAck": {
        **_object(
            ["ok", "error"],
            ok={"const": False},
            error=_object(
                ["code", "message"],
                code={"type": "string", "enum": list(get_args(ErrorCode))},
                message=_STRING,
                reason={"type": "string", "description": "The token's refusal (reauth)."},
            ),
        ),
        "examples": [
            {"ok": False, "error": {"code": "forbidden", "message": "no read right here"}}
        ],
    },
    "Delivery": {
        **_object(
            ["room", "topic", "payload", "ts", "retained"],
            room={"type": "string", "description": "The subscribed topic or filter."},
            topic=_STRING,
            payload=_ANY,
            ts={"type": "string", "format": "date-time", "description": "When it arrived."},
            retained={"type": "boolean"},
        ),
        "examples": [
            {
                "room": _ROOM,
                "topic": _TOPIC,
                "payload": {"value": 21.5},
                "ts": _TS,
                "retained": False,
            }
        ],
    },
    "LastValue": _object(
        ["topic", "payload", "ts"],
        topic=_STRING,
        payload=_ANY,
        ts={"type": "string", "format": "date-time"},
    ),
}
"""Schemas the events share (``#/components/schemas/<name>``)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ack(ok: dict[str, Any]) -> dict[str, Any]:
    """An ack: ``ok`` on success, else the error ack."""
    return {"oneOf": [ok, _ref("ErrorAck")]}


@dataclass(frozen=True, slots=True)
class Event:
    """One Socket.IO event: its name, sender, payload and example; client events' ack."""

    name: str
    direction: Direction
    summary: str
    payload: dict[str, Any]
    example: Any
    description: str = ""
    ack: dict[str, Any] | None = None
    ack_example: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


EVENTS: Final[tuple[Event, ...]] = (
    Event(
        "connect",
        "client",
        "Connect with an access token",
        _object(["token"], token={"type": "string", "description": "An access token."}),
        {"token": _JWT},
        "Socket.IO's `auth` of the connection: `io(origin, {path: '/socket.io', auth: "
        "{token}})`. A refused token ends the attempt with `connect_error`, message "
        "`unauthorized` and `data.reason` (`expired`, `revoked`...); `unavailable` when the "
        "keys cannot be fetched.",
    ),
    Event(
        "disconnect",
        "client",
        "Leave (every room is left)",
        {"type": "null"},
        None,
        "The socket closes; a reconnecting client gets a new session and subscribes again.",
    ),
    Event(
        "subscribe",
        "client",
        "Join the room of a topic or filter",
        _object(["topic"], topic=_TOPIC_FIELD),
        {"topic": _ROOM},
        "Checked with the registry (the topic must exist and be readable); the ack carries "
        "the room's last values, so a page never starts empty.",
        ack=_ack(
            _object(
                ["ok", "topic", "last"],
                ok={"const": True},
                topic=_STRING,
                last={"type": "array", "items": _ref("LastValue")},
            )
        ),
        ack_example={
            "ok": True,
            "topic": _ROOM,
            "last": [{"topic": _TOPIC, "payload": {"value": 21.5}, "ts": _TS}],
        },
    ),
    Event(
        "unsubscribe",
        "client",
        "Leave a room",
        _object(["topic"], topic=_TOPIC_FIELD),
        {"topic": _ROOM},
        "Leaving a room one is not in is fine.",
        ack=_ack(_object(["ok"], ok={"const": True})),
        ack_example={"ok": True},
    ),
    Event(
        "publish",
        "client",
        "Send a command to a device (planned)",
        _object(
            ["topic", "payload"],
            topic={"type": "string", "description": "A command topic."},
            payload=_ANY,
            wait={"type": "boolean", "description": "Wait for the device's ack."},
            ttl={"type": "integer", "description": "Seconds the command stays valid."},
        ),
        {"topic": "hearth/maple-house/lamp/command/power", "payload": True, "wait": True},
        "Planned: commands come with the registry's command API (issue 19); until then the "
        "ack is the error `invalid`.",
        ack=_ack(
            _object(
                ["ok", "id"],
                ok={"const": True},
                id=_STRING,
                outcome={"type": "string", "description": "The device's ack (with wait)."},
            )
        ),
        ack_example={"ok": False, "error": {"code": "invalid", "message": "not available yet"}},
    ),
    Event(
        "reauth",
        "client",
        "Extend the session with a newer token",
        _object(["token"], token={"type": "string"}),
        {"token": _JWT},
        "The same user's newer token; else the socket is disconnected when its token expires. "
        "The rooms are checked again with the new token.",
        ack=_ack(_object(["ok", "expires_at"], ok={"const": True}, expires_at={"type": "number"})),
        ack_example={"ok": True, "expires_at": 1795941000.0},
    ),
    Event(
        "message",
        "server",
        "A value in one of the socket's rooms",
        _ref("Delivery"),
        SCHEMAS["Delivery"]["examples"][0],
        "Once per room the socket is in whose filter matches.",
    ),
    Event(
        "messages",
        "server",
        "Several values at once (a burst while the socket was backlogged)",
        {"type": "array", "items": _ref("Delivery")},
        [SCHEMAS["Delivery"]["examples"][0]],
        "Never more than 5 ms late; each item is a `message`.",
    ),
    Event(
        "revoked",
        "server",
        "Access to a room was withdrawn",
        _object(["topic", "reason"], topic=_STRING, reason=_STRING),
        {"topic": _ROOM, "reason": "role"},
        "The socket left the room: the registry's reason (`role`, `scope`...), or `revoked`, "
        "`disabled`, `expired` before a disconnect.",
    ),
)
"""Every event of namespace ``/``, in the order the document lists them."""


def _message(event: Event, name: str, payload: Any, example: Any, ack: bool) -> dict[str, Any]:
    title = f"{event.name} ack" if ack else event.name
    return {
        "name": event.name,
        "title": title,
        "summary": f"The answer to {event.name}" if ack else event.summary,
        "description": "" if ack else event.description,
        "payload": payload,
        "examples": [{"name": name, "payload": example}],
    }


def asyncapi_document(version: str = "0.1.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of :data:`EVENTS`."""
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event in EVENTS:
        key = event.name
        messages[key] = _message(event, key, event.payload, event.example, ack=False)
        operation: dict[str, Any] = {
            "action": "receive" if event.direction == "client" else "send",
            "channel": {"$ref": "#/channels/root"},
            "summary": event.summary,
            "messages": [{"$ref": f"#/channels/root/messages/{key}"}],
        }
        if event.ack is not None:
            ack_key = f"{key}Ack"
            messages[ack_key] = _message(event, ack_key, event.ack, event.ack_example, ack=True)
            operation["reply"] = {
                "channel": {"$ref": "#/channels/root"},
                "messages": [{"$ref": f"#/channels/root/messages/{ack_key}"}],
            }
        operations[key] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hearth realtime",
            "version": version,
            "description": "Live values over Socket.IO (namespace `/`): connect with a token, "
            "subscribe to topics or filters, receive `message`s. Each client event is "
            "answered by its ack: the `...Ack` message (design.md, 'Socket.IO events').",
        },
        "servers": {
            "frontDoor": {
                "host": "localhost:8100",
                "protocol": "ws",
                "pathname": "/socket.io/",
                "description": "The front door (Socket.IO path /socket.io; wss with HEARTH_TLS).",
                "security": [{"$ref": "#/components/securitySchemes/token"}],
            }
        },
        "defaultContentType": "application/json",
        "channels": {
            "root": {
                "address": "/",
                "title": "Namespace /",
                "description": "Every event travels on Socket.IO's default namespace.",
                "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {name: dict(schema) for name, schema in SCHEMAS.items()},
            "securitySchemes": {
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from auth, sent in Socket.IO's "
                    "`auth: {token}` at connect (not in the URL), renewed with `reauth`.",
                }
            },
        },
    }
