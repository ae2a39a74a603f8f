"""RealtimeSettings: realtime's settings, from ``HEARTH_REALTIME_*`` and the secrets file."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from hearth.common.settings import HearthSettings, ServiceUrl

__all__ = ["RealtimeSettings"]


class RealtimeSettings(HearthSettings):
    """What realtime needs beyond :class:`HearthSettings` (it has no database).

    ``registry_url`` is where the registry answers ``POST /registry/authorize``;
    ``max_rooms_per_socket`` bounds the rooms one socket may be in (``limit`` beyond);
    ``last_values_per_room`` bounds the last-value cache of a filter room (one value per
    topic); ``max_backlog`` bounds the messages waiting for one slow socket (it is
    disconnected beyond); ``cors_allowed_origins`` are the browser origins allowed to open a socket
    (``*``: any; tokens travel in the connect payload, never in cookies). ``websocket`` is
    the uvicorn websocket implementation and ``websocket_deflate`` whether it offers
    permessage-deflate (:meth:`server_options`; the choice and its figures: decisions.md).
    """

    model_config = SettingsConfigDict(env_prefix="HEARTH_REALTIME_")

    service: str = "realtime"
    registry_url: ServiceUrl = Field(
        default="http://127.0.0.1:8102", description="Base URL of the registry service."
    )
    registry_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds per registry call."
    )
    max_rooms_per_socket: int = Field(
        default=50, ge=1, le=10_000, description="Rooms one socket may be in at once."
    )
    last_values_per_room: int = Field(
        default=500, ge=1, le=100_000, description="Topics remembered per room (last value each)."
    )
    max_backlog: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Messages one socket may have undelivered; beyond, it is disconnected.",
    )
    authorize_cache_size: int = Field(
        default=50_000, ge=0, description="Registry answers kept at most (0: no cache)."
    )
    websocket: Literal["websockets-sansio", "websockets", "wsproto"] = Field(
        default="websockets-sansio", description="uvicorn's websocket implementation."
    )
    websocket_deflate: bool = Field(
        default=False,
        description="Offer permessage-deflate (costs a compressor per socket; off: decisions.md).",
    )
    cors_allowed_origins: list[str] = Field(
        default=["*"], description="Origins allowed to connect from a browser; * for any."
    )

    def server_options(self) -> dict[str, Any]:
        """The uvicorn options these settings choose (the websocket implementation)."""
        return {"ws": self.websocket, "ws_per_message_deflate": self.websocket_deflate}
