"""Run a program under a process record: ``python -m hearth.platform.pidexec``.

::

    python -m hearth.platform.pidexec RECORD NAME -- PROGRAM ARGS...
    python -m hearth.platform.pidexec --detach --log FILE RECORD NAME -- PROGRAM ARGS...

Without ``--detach`` it writes a :class:`~hearth.platform.pids.ProcessRecord` of its own
process to ``RECORD`` and then *replaces itself* with the program (``exec``): the record's
pid and start time are the program's. The Procfile runs every process this way, so the
stack knows the pid of mosquitto and of each service, not only honcho's.

With ``--detach`` it forks a child in a new session (no controlling terminal, stdin from
``/dev/null``, stdout and stderr appended to ``FILE``) that does the same, and exits once
the child's ``exec`` succeeded (status 0) or failed (status 127, the reason on stderr).
The program then runs on after the caller exits; ``hearth up`` starts honcho this way.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hearth.platform.pids import record_of, write_record

__all__ = ["exec_recorded", "main", "spawn_detached"]


def exec_recorded(record_file: Path, name: str, argv: Sequence[str]) -> None:
    """Write this process's record to ``record_file``, then exec ``argv`` (never returns)."""
    record = record_of(name, os.getpid())
    if record is None:  # pragma: no cover - /proc always knows the caller
        raise RuntimeError("cannot read this process's start time from /proc")
    write_record(record_file, record)
    os.execvp(argv[0], list(argv))  # noqa: S606 - an argument list, no shell


def spawn_detached(record_file: Path, name: str, argv: Sequence[str], log_file: Path) -> int:
    """Fork a detached child that records itself and execs ``argv``; return its pid.

    Raises ``OSError`` with the child's reason when the exec failed. Call it only from a
    single-threaded process (this module's ``main``): it uses ``os.fork``.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)  # closed by a successful exec: the parent sees EOF
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child, measured through its effects
        try:
            os.close(read_end)
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDONLY)
            log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(devnull, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            exec_recorded(record_file, name, argv)
        except BaseException as exc:
            os.write(write_end, f"{argv[0]}: {exc}".encode(errors="replace"))
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        failure = pipe.read().decode(errors="replace")
    if failure:
        os.waitpid(pid, 0)
        raise OSError(failure)
    return pid


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m hearth.platform.pidexec`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m hearth.platform.pidexec")
    parser.add_argument("--detach", action="store_true", help="run it in a new session")
    parser.add_argument("--log", type=Path, help="with --detach: append its output here")
    parser.add_argument("record", type=Path, help="the JSON process record to write")
    parser.add_argument("name", help="the process's name in the record")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("no program given after --")
    if not args.detach:
        exec_recorded(args.record, args.name, program)
    if args.log is None:
        parser.error("--detach needs --log FILE")
    try:
        spawn_detached(args.record, args.name, program, args.log)
    except OSError as exc:
        print(f"pidexec: cannot start {program[0]}: {exc}", file=sys.stderr)
        return 127
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
