"""How an MQTT payload is shown to a Socket.IO client: its JSON value, else its text."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["decode_payload"]


def decode_payload(payload: bytes | bytearray | str | int | float | None) -> Any:
    """The decoded JSON value of ``payload`` if it parses, else its text.

    Bytes that are not UTF-8 are decoded with replacement characters; an empty payload
    (a cleared retained message) is the empty string. ``NaN``/``Infinity`` are not JSON
    values for a browser, so text carrying them stays text.
    """
    if payload is None:
        return ""
    if isinstance(payload, int | float):
        return payload
    text = payload if isinstance(payload, str) else bytes(payload).decode("utf-8", "replace")
    if not text:
        return ""
    try:
        return json.loads(text, parse_constant=_refuse)
    except ValueError:
        return text


def _refuse(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")
