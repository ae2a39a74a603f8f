"""Socket.IO clients for tests: python-socketio's and the official JavaScript one, alike.

Both clients have the same surface, so a behaviour test runs against each:

- :class:`PyClient`: python-socketio's ``AsyncClient`` (websocket transport);
- :class:`JsClient`: the official ``socket.io-client`` 4 from npm, run by node 20 through
  ``js/driver.mjs`` beside this module (JSON lines on stdin/stdout). ``npm ci`` installs
  it from the committed lockfile when ``js/node_modules`` is missing or older than the lock.

Each records what the server sent as ``(event, data)`` pairs: ``connect``,
``connect_error`` (``{message, data}`` as the browser sees it), ``disconnect``,
``message``, ``messages`` (a burst, the list as received) and ``revoked``.

Fixtures: ``node`` (session; the node executable, ``socket.io-client`` installed) and
``clients`` (a factory ``clients(kind, url)``; every client is closed after the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import socketio

__all__ = [
    "ClientFactory",
    "JsClient",
    "PyClient",
    "Recorder",
    "SocketClient",
    "clients",
    "ensure_js_client",
    "node",
]

JS_DIR = Path(__file__).parent / "js"
DRIVER = JS_DIR / "driver.mjs"
_WAIT = 5.0


def ensure_js_client() -> str:
    """Install ``socket.io-client`` from the lockfile when missing; the node executable."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError("node 20 and npm are needed for the JavaScript client tests")
    installed = JS_DIR / "node_modules" / "socket.io-client" / "package.json"
    lock = JS_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            check=True,
            timeout=300,
            capture_output=True,
        )
        installed.touch()
    return node


class Recorder:
    """What a client received, with a way to wait for it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def record(self, event: str, data: Any) -> None:
        self.events.append((event, data))
        self._changed.set()

    def received(self, event: str) -> list[Any]:
        """The data of every ``event`` received so far, in order."""
        return [data for name, data in self.events if name == event]

    def messages(self, room: str | None = None) -> list[dict[str, Any]]:
        """The room messages (of one room) in order: ``message`` events and the items of
        ``messages`` bursts."""
        items: list[dict[str, Any]] = []
        for name, data in self.events:
            if name == "message":
                items.append(data)
            elif name == "messages":
                items.extend(data)
        return [m for m in items if room is None or m["room"] == room]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = _WAIT) -> Any:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout:g} s; got {self.events!r}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.05)):
                    await self._changed.wait()

    async def wait_message(
        self,
        room: str,
        match: Callable[[dict[str, Any]], bool],
        timeout: float = _WAIT,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Wait for a ``message`` of ``room`` that ``match``es."""
        found: dict[str, Any] = await self.wait_for(
            lambda: next((m for m in self.messages(room) if match(m)), None), timeout
        )
        return found


class PyClient(Recorder):
    """python-socketio's AsyncClient."""

    kind = "python"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.client = socketio.AsyncClient(reconnection=False)
        for name in ("connect", "message", "messages", "revoked"):
            self.client.on(name, self._handler(name))
        self.client.on("connect_error", self._handler("connect_error"))
        self.client.on("disconnect", self._on_disconnect)

    def _handler(self, name: str) -> Callable[..., Any]:
        async def handle(data: Any = None) -> None:
            self.record(name, data)

        return handle

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.record("disconnect", {"reason": str(reason)})

    async def start(self) -> None:
        """Nothing to start: the client lives in this process."""

    async def connect(self, token: str | None) -> dict[str, Any] | None:
        """Connect; ``None`` when accepted, else the ``connect_error`` data."""
        auth = {} if token is None else {"token": token}
        try:
            await self.client.connect(
                self.url, auth=auth, transports=["websocket"], wait_timeout=_WAIT
            )
        except socketio.exceptions.ConnectionError:
            errors = await self.wait_for(lambda: self.received("connect_error"))
            error: dict[str, Any] = errors[-1]
            return error
        return None

    async def call(self, event: str, data: Any) -> Any:
        """Emit ``event`` and return its ack."""
        return await self.client.call(event, data, timeout=_WAIT)

    @property
    def connected(self) -> bool:
        return bool(self.client.connected)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        with contextlib.suppress(Exception):
            await self.client.shutdown()


class JsClient(Recorder):
    """socket.io-client 4 under node, driven through ``js/driver.mjs``."""

    kind = "js"

    def __init__(self, url: str, node: str) -> None:
        super().__init__()
        self.url = url
        self.node = node
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._connected = False

    async def start(self) -> None:
        """Start node with the driver and wait until it reads commands (idempotent).

        Node takes about a second to start (longer on a busy machine): a test that mints
        a short-lived token starts the client first, so the token's life is not spent
        waiting for node.
        """
        if self._process is not None:
            return
        self._process = await asyncio.create_subprocess_exec(
            self.node,
            str(DRIVER),
            self.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=JS_DIR,
        )
        self._reader = asyncio.create_task(self._read())
        await self.wait_for(lambda: self.received("ready"), timeout=_WAIT * 6)

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            item = json.loads(line)
            if "ack" in item:
                future = self._acks.pop(item["ack"], None)
                if future is not None and not future.done():
                    future.set_result(item["data"])
                continue
            if item["event"] == "connect":
                self._connected = True
            elif item["event"] == "disconnect":
                self._connected = False
            self.record(item["event"], item["data"])

    async def _send(self, command: dict[str, Any]) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")
        await self._process.stdin.drain()

    async def connect(self, token: str | None) -> dict[str, Any] | None:
        """Connect; ``None`` when accepted, else the ``connect_error`` data."""
        await self.start()
        await self._send({"op": "connect", "token": token})
        await self.wait_for(lambda: self.received("connect") or self.received("connect_error"))
        errors = self.received("connect_error")
        return errors[-1] if errors else None

    async def call(self, event: str, data: Any) -> Any:
        """Emit ``event`` and return its ack."""
        ack_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self._send({"op": "emit", "id": ack_id, "event": event, "data": data})
        async with asyncio.timeout(_WAIT * 2):
            return await future

    @property
    def connected(self) -> bool:
        return self._connected

    async def close(self) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(Exception):
            await self._send({"op": "close"})
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


SocketClient = PyClient | JsClient
ClientFactory = Callable[[str, str], SocketClient]
"""The ``clients`` fixture: ``clients(kind, url)`` with kind ``python`` or ``js``."""


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with ``socket.io-client`` installed (``npm ci`` when missing)."""
    return ensure_js_client()


@pytest.fixture
async def clients(node: str) -> AsyncIterator[ClientFactory]:
    """Factory ``clients(kind, url)``: a new client of ``kind`` (``python`` or ``js``)."""
    made: list[SocketClient] = []

    def make(kind: str, url: str) -> SocketClient:
        client: SocketClient = JsClient(url, node) if kind == "js" else PyClient(url)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
