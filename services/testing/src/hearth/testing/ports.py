"""TCP port helpers for tests: pick a free port, wait until a server listens."""

from __future__ import annotations

import socket
import time

__all__ = ["free_port", "port_is_open", "wait_for_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that is free right now.

    The kernel picks it (bind to port 0); the socket is closed before
    returning, so a race with another process is possible but unlikely.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Return whether a TCP connection to ``host:port`` succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Polls with a short interval; raises ``TimeoutError`` naming the address
    when nothing listens there within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if port_is_open(host, port):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"nothing accepted TCP connections on {host}:{port} within {timeout:g} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
