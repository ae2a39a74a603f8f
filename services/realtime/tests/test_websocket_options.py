"""The websocket implementation realtime serves with: no permessage-deflate unless configured.

Each socket with permessage-deflate holds a compressor and a decompressor for its whole
life and every frame is compressed (decisions.md); realtime's frames are small JSON, so
it is off by default. A client offering it (as socket.io-client under node does) is
answered without it; the control is a realtime configured to offer it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from hearth.realtime.cli import main
from hearth.realtime.config import RealtimeSettings
from hearth.testing.apps import RunningApp
from hearth.testing.broker import RunningBroker
from hearth.testing.services import ServiceStack, realtime_settings, start_realtime


async def negotiated_extensions(app: RunningApp) -> str | None:
    url = f"ws://{app.host}:{app.port}/socket.io/?EIO=4&transport=websocket"
    async with connect(url, compression="deflate") as ws:
        await ws.recv()  # the engine.io open packet: the socket is served
        return ws.response.headers.get("Sec-WebSocket-Extensions")


async def test_a_client_offering_deflate_is_answered_without_it(realtime: RunningApp) -> None:
    assert await negotiated_extensions(realtime) is None


async def test_deflate_is_offered_when_configured(
    stack: ServiceStack, broker: RunningBroker, tmp_path: Path
) -> None:
    settings = realtime_settings(stack, broker, tmp_path, websocket_deflate=True)
    with start_realtime(settings) as deflating:
        extensions = await negotiated_extensions(deflating)
    assert extensions is not None
    assert "permessage-deflate" in extensions


@pytest.mark.parametrize("implementation", ["websockets-sansio", "websockets", "wsproto"])
def test_the_settings_choose_uvicorns_websocket_implementation(implementation: str) -> None:
    settings = RealtimeSettings(env="test", websocket=implementation)
    assert settings.server_options() == {"ws": implementation, "ws_per_message_deflate": False}


def test_an_unknown_websocket_implementation_ends_serve_with_status_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTH_ENV", "test")
    monkeypatch.setenv("HEARTH_REALTIME_WEBSOCKET", "carrier-pigeon")
    code = main(["serve"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("hearth-realtime: invalid settings: websocket: Input should be")
    assert "carrier-pigeon" not in err  # never the value (it could be a secret elsewhere)
