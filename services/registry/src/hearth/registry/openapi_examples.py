"""The registry's OpenAPI: its tags and one example per request and answer schema.

``create_app`` hands both to ``create_service_app`` (:mod:`hearth.common.openapi_conventions`
puts each example on every body and 2xx answer that uses the schema);
services/platform/tests/test_openapi_conventions.py checks each example against its schema.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CONFIG_DOWNLOAD", "EXAMPLES", "TAGS"]

TAGS: Final = [
    {"name": "homes", "description": "Homes: create, list, rename (the caller's role shown)."},
    {"name": "members", "description": "Who may use a home, and as what (owners decide)."},
    {
        "name": "devices",
        "description": "Devices, their broker logins, the config download and the catalogue.",
    },
    {"name": "authorisation", "description": "The one authorisation answer other services ask."},
    {
        "name": "commands",
        "description": "The one command path: send a command (wait for its ack), the log.",
    },
]

_AT: Final = "2026-11-29T08:30:00Z"
_METRICS: Final = [
    {"name": "temperature", "unit": "°C", "kind": "number", "min": -40, "max": 85},
    {"name": "humidity", "unit": "%", "kind": "number", "min": 0, "max": 100},
]
_DEVICE: Final[dict[str, Any]] = {
    "home": "maple-house",
    "slug": "kitchen-th",
    "name": "Kitchen climate",
    "type": "temperature-humidity",
    "area": "kitchen",
    "gateway": None,
    "interval": 60,
    "metrics": _METRICS,
    "properties": [],
    "refuse_undeclared": False,
    "disabled": False,
    "online": True,
    "status_reason": "connected",
    "last_seen": "2026-11-29T08:31:12.250Z",
    "created_at": _AT,
    "updated_at": _AT,
}
_HOME: Final = {
    "slug": "maple-house",
    "name": "Maple House",
    "timezone": "Europe/Berlin",
    "role": "owner",
    "created_at": _AT,
    "updated_at": _AT,
}
_MEMBER: Final = {
    "user_id": "0b7e4a1c-3f2d-4e6a-9c1b-5d8f2a7e9c31",
    "username": "sam",
    "role": "member",
    "created_at": _AT,
    "updated_at": _AT,
}

_POWER: Final = {
    "reported": True,
    "reported_at": "2026-11-29T08:30:00.480Z",
    "desired": True,
    "desired_at": "2026-11-29T08:30:00.120Z",
    "desired_outcome": "done",
    "mismatch": False,
}
_COMMAND: Final = {
    "id": "5f0c2a9e-7d41-4b8e-a3c6-1e9b0d2f4a77",
    "home": "maple-house",
    "device": "hall-lamp",
    "property": "power",
    "value": True,
    "issued_at": "2026-11-29T08:30:00.120Z",
    "expires_at": "2026-11-29T08:30:30.120Z",
    "by": "0b7e4a1c-3f2d-4e6a-9c1b-5d8f2a7e9c31",
    "outcome": "done",
    "reason": None,
    "result": True,
    "answered_at": "2026-11-29T08:30:00.510Z",
}

EXAMPLES: Final[dict[str, Any]] = {
    "HomeCreate": {"slug": "maple-house", "name": "Maple House", "timezone": "Europe/Berlin"},
    "HomeUpdate": {"name": "Maple House (upstairs)"},
    "HomePublic": _HOME,
    "MemberAdd": {"username": "sam", "role": "member"},
    "MemberUpdate": {"role": "viewer"},
    "MemberPublic": _MEMBER,
    "DeviceCreate": {
        "slug": "kitchen-th",
        "name": "Kitchen climate",
        "type": "temperature-humidity",
        "area": "kitchen",
        "interval": 60,
    },
    "DeviceUpdate": {"name": "Kitchen climate (window)", "interval": 30},
    "DevicePublic": _DEVICE,
    "DeviceWithCredentials": {
        **_DEVICE,
        "credentials": {
            "username": "dev.maple-house.kitchen-th",
            "password": "shown-once-9Qx2vL7pT4sKd8ZrW1mBc6Ny",
            "client_id": "dev.maple-house.kitchen-th",
        },
    },
    "DeviceDetail": {
        **_DEVICE,
        "slug": "hall-lamp",
        "type": "light",
        "properties": [{"name": "power", "kind": "boolean", "unit": ""}],
        "state": {"power": _POWER},
    },
    "PropertyState": _POWER,
    "CommandRequest": {"property": "power", "value": True, "ttl": 30, "wait": 5},
    "CommandRecord": _COMMAND,
    "DeviceType": {
        "type": "temperature-humidity",
        "description": "A climate sensor: temperature and relative humidity.",
        "interval": 60,
        "metrics": _METRICS,
        "properties": [],
    },
    "AuthorizeRequest": {"action": "write", "topic": "hearth/maple-house/lamp/command/power"},
    "AuthorizeAnswer": {"allowed": True, "role": "member", "reason": None, "ttl": 5},
    "ReconcileReport": {
        "created": ["dev.maple-house.kitchen-th"],
        "deleted": [],
        "repaired": [],
        "unchanged": 12,
    },
}
"""Schema name -> example (ids, passwords and times are made up)."""

_CONFIG: Final[dict[str, Any]] = {
    "home": "maple-house",
    "device": "kitchen-th",
    "name": "Kitchen climate",
    "broker_host": "hearth.lan",
    "broker_port": 8883,
    "broker_tls": True,
    "broker_ca": "-----BEGIN CERTIFICATE-----\nMIIBmjCCAT+g...\n-----END CERTIFICATE-----\n",
    "username": "dev.maple-house.kitchen-th",
    "password": "9Qx2vL7pT4sKd8ZrW1mBc6Ny",
    "client_id": "dev.maple-house.kitchen-th",
    "status_topic": "hearth/maple-house/kitchen-th/status",
    "ack_topic": "hearth/maple-house/kitchen-th/ack",
    "command_filter": "hearth/maple-house/kitchen-th/command/+",
    "telemetry_prefix": "hearth/maple-house/kitchen-th/telemetry/",
    "state_prefix": "hearth/maple-house/kitchen-th/state/",
    "telemetry_topics": {"temperature": "hearth/maple-house/kitchen-th/telemetry/temperature"},
    "state_topics": {},
    "interval": 60,
    "metrics": [{"name": "temperature", "unit": "°C", "kind": "number"}],
    "properties": [],
}

CONFIG_DOWNLOAD: Final[dict[str, dict[str, Any]]] = {
    "application/json": {"example": _CONFIG},
    "text/plain": {
        "example": "HEARTH_HOME=maple-house\nHEARTH_BROKER_HOST=hearth.lan\n"
        "HEARTH_BROKER_PORT=8883\nHEARTH_BROKER_TLS=1\n"
        "HEARTH_BROKER_CA='-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n'\n"
        "HEARTH_USERNAME=dev.maple-house.kitchen-th\n"
    },
    "text/x-python": {
        "example": "HOME = 'maple-house'\nBROKER_PORT = 8883\nBROKER_TLS = True\n"
        "BROKER_CA = '-----BEGIN CERTIFICATE-----\\n...\\n-----END CERTIFICATE-----\\n'\n"
    },
    "text/x-c": {
        "example": '#pragma once\n\n#define HEARTH_HOME "maple-house"\n'
        "#define HEARTH_BROKER_PORT 8883\n#define HEARTH_BROKER_TLS 1\n"
    },
}
"""The config download's media types, each with an example (docs/devices.md has them all)."""
