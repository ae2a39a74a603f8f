"""The plain contender of bench/realtime: python-socketio with one paho thread, nothing else.

    python bench/realtime_plain.py PORT MQTT_HOST MQTT_PORT MQTT_USER CLIENT_ID
    (the password in $MQTT_PASSWORD)

What the issue measured realtime against: a paho thread subscribed to ``hearth/#`` hands
each message to the event loop, which emits it once to the room named by its topic. A
socket joins a room with ``subscribe {topic}`` (no token, no registry, no bounds).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import socketio
import uvicorn

port, mqtt_host, mqtt_port, mqtt_user, client_id = sys.argv[1:6]
sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)
loop: asyncio.AbstractEventLoop | None = None


@sio.event
async def subscribe(sid: str, data: Any) -> dict[str, Any]:
    topic = data.get("topic") if isinstance(data, dict) else None
    if not isinstance(topic, str):
        return {"ok": False, "error": {"code": "invalid", "message": "subscribe needs {topic}"}}
    await sio.enter_room(sid, topic)
    return {"ok": True, "topic": topic, "last": []}


async def deliver(topic: str, payload: bytes, retained: bool) -> None:
    try:
        value: Any = json.loads(payload)
    except ValueError:
        value = payload.decode("utf-8", "replace")
    item = {
        "room": topic,
        "topic": topic,
        "payload": value,
        "ts": datetime.now(UTC).isoformat(),
        "retained": retained,
    }
    await sio.emit("message", item, room=topic)


def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
    if loop is not None:
        asyncio.run_coroutine_threadsafe(
            deliver(message.topic, message.payload, bool(message.retain)), loop
        )


def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
    client.subscribe("hearth/#", qos=1)


async def main() -> None:
    global loop
    loop = asyncio.get_running_loop()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.username_pw_set(mqtt_user, os.environ["MQTT_PASSWORD"])
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(mqtt_host, int(mqtt_port))
    client.loop_start()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=int(port), log_level="warning")
    )
    try:
        await server.serve()
    finally:
        client.loop_stop()


if __name__ == "__main__":
    asyncio.run(main())
