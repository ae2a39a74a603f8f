"""The errors a Socket.IO client sees in an ack: ``{ok: false, error: {code, message}}``.

Codes (design.md, "Socket.IO events"): ``unauthorized`` (the token is no longer valid),
``forbidden`` (the registry says no), ``not_found`` (no such topic, or a home the caller
may not see), ``invalid`` (not a topic or filter of the grammar, or an event realtime does
not offer yet), ``limit`` (too many rooms on one socket); and ``unavailable`` when the
registry cannot answer (try again).
"""

from __future__ import annotations

from typing import Any, Final, Literal

__all__ = ["REGISTRY_REASON_CODES", "ErrorCode", "SocketError", "error_ack"]

ErrorCode = Literal["unauthorized", "forbidden", "not_found", "invalid", "limit", "unavailable"]

REGISTRY_REASON_CODES: Final[dict[str, ErrorCode]] = {
    "unauthorized": "unauthorized",
    "not_found": "not_found",
    "invalid": "invalid",
    "filter_outside_home": "invalid",
    "role": "forbidden",
    "scope": "forbidden",
    "token_homes": "forbidden",
    "filter_read_only": "forbidden",
    "not_command": "forbidden",
}
"""The ack code for each denial reason of ``POST /registry/authorize``."""


class SocketError(Exception):
    """An event refused with ``code`` and a human ``message`` (sent as the ack)."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.extra = extra

    def ack(self) -> dict[str, Any]:
        """The ack: ``{ok: false, error: {code, message, ...}}``."""
        return error_ack(self.code, self.message, **self.extra)


def error_ack(code: ErrorCode, message: str, **extra: Any) -> dict[str, Any]:
    """``{ok: false, error: {code, message, ...extra}}``."""
    return {"ok": False, "error": {"code": code, "message": message, **extra}}
