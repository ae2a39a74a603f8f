"""The one place realtime reads python-engineio's internals: a socket's send queue.

:class:`SendQueues` writes Socket.IO events straight onto a socket's engine.io send queue,
encoded once for every socket they go to, and tells how many packets still wait there
(the socket's backlog, which :mod:`hearth.realtime.outbox` coalesces and conflates by).

python-socketio's ``emit(to=sid)`` returns as soon as the packet is on the engine.io
socket's send queue (an unbounded ``asyncio.Queue``, so it never waits for the network);
the socket's writer task takes packets off that queue and awaits the websocket send. A
slow client keeps the writer waiting, so packets stay on the queue: that queue's size is
the backlog. Neither library offers a public way to see it (python-engineio issue #133
asks for back-pressure and is open; socket.io's own answer is client acks, a protocol
change), so :func:`send_queue` reads these internals, and only it:

- ``sio.manager.eio_sid_from_sid(sid, "/")``: the engine.io session of a Socket.IO sid;
- ``sio.eio.sockets[eio_sid]``: its ``engineio.async_socket.AsyncSocket``;
- ``AsyncSocket.queue``: the send queue, an ``asyncio.Queue`` its writer task takes
  packets from (``AsyncSocket.poll``); ``qsize()`` is what it has not taken yet;
- ``AsyncSocket.closed``: the socket is gone (nothing will ever drain it).

Writing skips ``sio.emit(to=sid)``'s per-socket work (it encodes the packet, makes a task,
and waits for it with ``asyncio.wait``, for every socket, and logs): the Socket.IO
``EVENT`` packet is encoded with python-socketio's own packet class and the engine.io
``MESSAGE`` packet put on the queue (``put_nowait``: the queue is unbounded, as
``AsyncSocket.send`` uses it). The last event's packets are kept, so one room message
written to every member of its room is encoded once.

It also lightens what engine.io keeps of a socket's opening request
(:func:`release_request`): python-engineio keeps that request's WSGI-style ``environ``
for the socket's whole life (its request handler's frame holds it, and python-socketio's
``environ`` map), with every request header and a body reader whose class
(``translate_request``'s ``AwaitablePayload``) is made anew for each request: about 4 KB
per idle socket, of which realtime reads nothing after ``connect``.

python-socketio and python-engineio are pinned to their majors (5 and 4) in realtime's
``pyproject.toml``; ``tests/test_engineio_contract.py`` fails loudly when any of the above
stops being true, so an upgrade cannot silently turn the backlog check into a no-op.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

__all__ = ["NAMESPACE", "SendQueues", "release_request", "send_queue"]

NAMESPACE = "/"


def release_request(environ: dict[str, Any]) -> None:
    """Drop the opening request's headers and body reader from ``environ`` (after connect)."""
    for key in [key for key in environ if key.startswith("HTTP_")]:
        del environ[key]
    environ.pop("wsgi.input", None)


def send_queue(sio: socketio.AsyncServer, sid: str) -> asyncio.Queue[object] | None:
    """The engine.io send queue of Socket.IO socket ``sid``; ``None`` if it is gone or closed."""
    eio_sid = sio.manager.eio_sid_from_sid(sid, NAMESPACE)
    socket = sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
    if socket is None or getattr(socket, "closed", True):
        return None
    queue = getattr(socket, "queue", None)
    return queue if isinstance(queue, asyncio.Queue) else None


class SendQueues:
    """Sockets' send queues: write events onto them (encoded once), and their depth."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._last: tuple[str, Any, list[eio_packet.Packet]] | None = None

    def packets(self, event: str, data: Any) -> list[eio_packet.Packet]:
        """The engine.io packets of ``event`` with ``data`` (reused for the same object)."""
        last = self._last
        if last is not None and last[1] is data and last[0] == event:
            return last[2]
        pkt = self._sio.packet_class(sio_packet.EVENT, namespace=NAMESPACE, data=[event, data])
        encoded = pkt.encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        packets = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in parts]
        self._last = (event, data, packets)
        return packets

    def write(self, sid: str, event: str, data: Any) -> bool:
        """Queue ``event`` for socket ``sid``; False when the socket is gone or closed.

        ``data`` must not change afterwards (its packets may be reused for other sockets).
        """
        queue = send_queue(self._sio, sid)
        if queue is None:
            return False
        for packet in self.packets(event, data):
            queue.put_nowait(packet)
        return True

    def depth(self, sid: str) -> int:
        """Packets on socket ``sid``'s queue its writer has not taken (0 when it is gone)."""
        queue = send_queue(self._sio, sid)
        return 0 if queue is None else queue.qsize()
