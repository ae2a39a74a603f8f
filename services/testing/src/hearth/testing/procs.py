"""Child processes for tests: start one with its output in a log file, stop or kill it.

A :class:`ManagedProcess` does not outlive the test run: processes still running at exit are
killed (``atexit``), and one started from the main thread also gets ``PR_SET_PDEATHSIG``, so
even a killed pytest leaves no broker behind. (Not from other threads: the kernel ties that
signal to the creating thread, and a worker thread of ``asyncio.to_thread`` exits early.)
:meth:`ManagedProcess.wait_listening` waits for the port and fails at once, with the log,
when the process exits instead.
"""

from __future__ import annotations

import atexit
import ctypes
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from hearth.testing.ports import port_is_open

__all__ = ["ManagedProcess", "ProcessExited"]

_PR_SET_PDEATHSIG = 1
_alive: set[ManagedProcess] = set()  # started and not yet stopped or killed by us


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_alive):
        process.kill()


class ProcessExited(RuntimeError):
    """The process exited while we waited for it to become ready."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """One child process; stdout and stderr are appended to ``log_file``."""

    def __init__(
        self,
        args: Sequence[str],
        log_file: Path,
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self.log_file = log_file
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The program's base name, for messages."""
        return Path(self.args[0]).name

    @property
    def pid(self) -> int | None:
        """The process id while it runs (or ran last)."""
        return None if self._popen is None else self._popen.pid

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status after it exited, else ``None``."""
        return None if self._popen is None else self._popen.poll()

    def start(self) -> None:
        """Start the process (it must not be running)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        in_main_thread = threading.current_thread() is threading.main_thread()
        with self.log_file.open("ab") as log:
            self._popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                # the child only calls prctl before exec
                preexec_fn=_die_with_parent if in_main_thread else None,
            )
        _alive.add(self)

    def wait_listening(self, host: str, port: int, timeout: float = 10.0) -> None:
        """Block until ``host:port`` accepts TCP connections.

        Raises :class:`ProcessExited` (with the log's tail) if the process exits first and
        ``TimeoutError`` if nothing listens within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if port_is_open(host, port):
                return
            if not self.running:
                raise ProcessExited(
                    f"{self.name} exited with status {self.returncode} before listening on "
                    f"{host}:{port}; log tail:\n{self.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.name} did not listen on {host}:{port} within {timeout:g} s; "
                    f"log tail:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the process to exit (SIGTERM) and wait; SIGKILL it after ``timeout`` seconds."""
        _alive.discard(self)
        if self._popen is None or self._popen.poll() is not None:
            return self.returncode
        self._popen.send_signal(signal.SIGTERM)
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            return self._popen.wait()

    def kill(self) -> int | None:
        """Kill the process at once (SIGKILL) and reap it."""
        _alive.discard(self)
        if self._popen is None or self._popen.poll() is not None:
            return self.returncode
        self._popen.kill()
        return self._popen.wait()

    def log_text(self) -> str:
        """Everything the process wrote so far (all runs appended)."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])
