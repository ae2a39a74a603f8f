"""Run a service's ASGI app with a real uvicorn on a free port, for tests that need a socket.

Websockets (Socket.IO), real HTTP clients and cross-service calls need a server,
not httpx's in-process transport. :func:`serve_app` starts uvicorn in a
background thread with its own event loop, lifespan on, on a socket bound to a
kernel-chosen port (no race for the port), waits until startup finished (and,
if asked, until a path answers), and returns a :class:`RunningApp`;
``RunningApp.stop()`` shuts the lifespan down and joins the thread.

The ``app_server`` fixture is the factory tests use; every app it starts is
stopped after the test::

    def test_health(app_server):
        running = app_server(create_app(settings), wait_path="/healthz")
        assert httpx.get(f"{running.url}/healthz").status_code == 200

An app whose lifespan fails to start makes the factory raise :class:`AppStartError`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

__all__ = ["AppStartError", "RunningApp", "app_server", "serve_app"]

_POLL = 0.01


class AppStartError(RuntimeError):
    """The app did not come up: its lifespan startup failed or it never answered."""


class RunningApp:
    """A uvicorn server running an ASGI app in a background thread.

    ``url`` is its base URL (``http://127.0.0.1:<port>``, no trailing slash).
    """

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int):
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is alive."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down: stop accepting, close connections, run the lifespan shutdown, join.

        Idempotent. Raises ``TimeoutError`` when the server has not stopped within
        ``timeout`` seconds even after a forced exit.
        """
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(2.0)
            if self._thread.is_alive():
                raise TimeoutError(f"app at {self.url} did not stop within {timeout:g} s")

    def __enter__(self) -> RunningApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    wait_path: str | None = None,
    startup_timeout: float = 60.0,
    **uvicorn_options: Any,
) -> RunningApp:
    """Start ``app`` (any ASGI app) under uvicorn in a background thread; return once it serves.

    ``port=0`` lets the kernel choose a free port. With ``wait_path`` it also waits
    until a GET of that path answers with a status below 500 (e.g. ``/readyz``). The
    default bound is generous (60 s): a restart on a machine under heavy I/O may need 30 s.
    ``uvicorn_options`` go to ``uvicorn.Config`` (defaults: lifespan ``on``, logs at
    warning, uvicorn's own logging config left alone).
    """
    options: dict[str, Any] = {
        "lifespan": "on",
        "log_level": "warning",
        "log_config": None,
        "timeout_graceful_shutdown": 5,
    }
    options.update(uvicorn_options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port: int = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=bound_port, **options))

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit:  # uvicorn exits this way when the lifespan startup fails
            pass
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"uvicorn-{bound_port}", daemon=True)
    running = RunningApp(server, thread, host, bound_port)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while not server.started:
            if not thread.is_alive():
                raise AppStartError(
                    f"app on port {bound_port} exited during startup (lifespan failed?)"
                )
            if time.monotonic() > deadline:
                raise AppStartError(
                    f"app on port {bound_port} not started within {startup_timeout:g} s"
                )
            time.sleep(_POLL)
        if wait_path is not None:
            _wait_answers(f"{running.url}{wait_path}", deadline)
    except BaseException:
        running.stop()
        raise
    return running


def _wait_answers(url: str, deadline: float) -> None:
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while True:
            try:
                status = client.get(url).status_code
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if status < 500:
                    return
                last = f"HTTP {status}"
            if time.monotonic() > deadline:
                raise AppStartError(f"{url} did not answer in time ({last})")
            time.sleep(_POLL * 5)


@pytest.fixture
def app_server() -> Iterator[Callable[..., RunningApp]]:
    """A factory: ``app_server(app, **serve_app_options) -> RunningApp``; all stopped after."""
    started: list[RunningApp] = []

    def start(app: Any, **options: Any) -> RunningApp:
        running = serve_app(app, **options)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()
