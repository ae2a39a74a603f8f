"""The python-engineio internals :mod:`hearth.realtime.backlog` reads, checked for real.

The send queues adapter reads private parts of python-engineio (a socket's send queue,
which its writer task takes packets from). These tests fail loudly when an upgrade changes
them, instead of realtime silently never seeing a backlog again:

- the pinned majors are the installed ones (python-socketio 5, python-engineio 4);
- on a real server, a connected socket's send queue is found the way the adapter finds
  it, and is gone once the socket is;
- a client that stops reading makes the queue's depth grow; once it reads again, the
  depth returns to 0;
- an event written onto the queue by ``SendQueues`` arrives as the very frame
  ``sio.emit`` sends, encoded once for all the sockets it goes to;
- the opening request's ``environ`` is the one python-socketio keeps for the socket, and
  once ``release_request`` dropped its headers and body reader the socket still works.

The server runs in the test's own event loop (uvicorn's ``serve``), so the test awaits
the queue directly; the slow client is a raw websocket that reads nothing until told.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from typing import Any

import engineio.async_socket
import pytest
import socketio
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from hearth.realtime.backlog import NAMESPACE, SendQueues, release_request, send_queue

BIG = "x" * 65_536
FIRST_BURST = 200  # 12.5 MiB: far more than the socket buffers on both sides hold


def test_the_pinned_majors_are_installed() -> None:
    assert version("python-socketio").split(".")[0] == "5"
    assert version("python-engineio").split(".")[0] == "4"


@contextlib.asynccontextmanager
async def server_in_this_loop(
    on_connect: Callable[[dict[str, Any]], None] | None = None,
) -> AsyncIterator[tuple[socketio.AsyncServer, int, list[str]]]:
    """A bare python-socketio server on a free port, in this loop; its connected sids."""
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
    sids: list[str] = []

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: object = None) -> None:
        if on_connect is not None:
            on_connect(environ)
        sids.append(sid)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        socketio.ASGIApp(sio), lifespan="off", log_level="warning", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started)
        yield sio, port, sids
    finally:
        server.should_exit = True
        await task
        sock.close()


async def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
    return value


async def socketio_connect(port: int) -> ClientConnection:
    """A raw Engine.IO 4 websocket, connected to namespace ``/``, reading nothing more.

    Its receive buffer is fixed small (no autotuning up to tens of MiB), so a client that
    stops reading stops the server's writer soon.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    ws = await connect(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,  # stop reading from the socket as soon as one message waits
        max_size=None,
        compression=None,  # no permessage-deflate: 64 KiB of "x" stays 64 KiB on the wire
    )
    opened = await ws.recv()
    assert isinstance(opened, str)
    assert opened.startswith("0")  # engine.io open
    await ws.send("40")  # socket.io connect to namespace /
    joined = await ws.recv()
    assert isinstance(joined, str)
    assert joined.startswith("40")
    return ws


async def test_a_sockets_send_queue_is_found_as_the_adapter_finds_it() -> None:
    async with server_in_this_loop() as (sio, port, sids):
        ws = await socketio_connect(port)
        sid = await until(lambda: sids and sids[0])
        # The private parts, one by one: a failure here names what changed.
        eio_sid = sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        assert isinstance(eio_sid, str)
        eio_socket = sio.eio.sockets[eio_sid]
        assert isinstance(eio_socket, engineio.async_socket.AsyncSocket)
        assert eio_socket.closed is False
        assert isinstance(eio_socket.queue, asyncio.Queue)
        assert send_queue(sio, sid) is eio_socket.queue
        await ws.close()
        await until(lambda: send_queue(sio, sid) is None)  # gone with its socket
        assert send_queue(sio, "no-such-sid") is None


async def test_the_depth_grows_while_the_client_does_not_read_and_clears_when_it_does() -> None:
    async with server_in_this_loop() as (sio, port, sids):
        ws = await socketio_connect(port)
        sid = await until(lambda: sids and sids[0])
        queues = SendQueues(sio)
        assert queues.depth(sid) == 0  # nothing sent yet
        queue = send_queue(sio, sid)
        assert queue is not None
        for _ in range(FIRST_BURST):
            assert queues.write(sid, "big", BIG)
            await asyncio.sleep(0)  # the writer takes what is queued whenever it runs
        # The writer gets stuck sending to a client that reads nothing, long before the
        # burst is through; the rest stays on the queue (the backlog). What the writer
        # took in its last batch is off the queue: depth does not count it.
        with pytest.raises(AssertionError):
            await until(lambda: queues.depth(sid) == 0, timeout=0.5)
        assert queues.depth(sid) >= 1

        received = 0
        while received < FIRST_BURST:  # the client reads again
            frame = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(frame, str) and frame.startswith("42"):
                assert json.loads(frame[2:]) == ["big", BIG]
                received += 1
        await until(lambda: queues.depth(sid) == 0)
        await ws.close()


async def test_the_queue_writer_delivers_an_event_encoded_once_for_every_socket() -> None:
    async with server_in_this_loop() as (sio, port, sids):
        clients = [await socketio_connect(port) for _ in range(2)]
        await until(lambda: len(sids) == 2)
        writer = SendQueues(sio)
        item = {"room": "r", "payload": {"n": 1}}
        assert all(writer.write(sid, "message", item) for sid in sids)
        assert writer.packets("message", item) is writer.packets("message", item)  # reused
        assert writer.packets("message", dict(item)) is not writer.packets("message", item)
        for ws in clients:  # exactly what sio.emit("message", item, to=sid) sends
            frame = await asyncio.wait_for(ws.recv(), 10)
            assert isinstance(frame, str)
            assert frame.startswith("42")
            assert json.loads(frame[2:]) == ["message", item]
        await sio.emit("message", item, to=sids[0])  # control: the library's own frame
        assert await asyncio.wait_for(clients[0].recv(), 10) == frame
        await clients[0].close()
        await until(lambda: send_queue(sio, sids[0]) is None)
        assert writer.write(sids[0], "message", item) is False  # gone: nothing written
        assert writer.write("no-such-sid", "message", item) is False
        await clients[1].close()


async def test_the_opening_request_is_released_and_the_socket_still_works() -> None:
    seen: list[dict[str, Any]] = []

    def release(environ: dict[str, Any]) -> None:
        seen.append(dict(environ))  # what engine.io kept, before the release
        release_request(environ)

    async with server_in_this_loop(release) as (sio, port, sids):
        ws = await socketio_connect(port)
        sid = await until(lambda: sids and sids[0])
        before = seen[0]
        assert "HTTP_HOST" in before  # positive control: the headers were there
        assert "wsgi.input" in before
        kept = sio.get_environ(sid)  # the very dict python-socketio keeps for the socket
        assert kept is not None
        assert not [key for key in kept if key.startswith("HTTP_")]
        assert "wsgi.input" not in kept
        assert kept["PATH_INFO"] == before["PATH_INFO"]  # the rest stays
        assert SendQueues(sio).write(sid, "message", {"n": 1})
        frame = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(frame, str)
        assert json.loads(frame[2:]) == ["message", {"n": 1}]
        await ws.close()
