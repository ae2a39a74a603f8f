"""Run a program under a process record: ``python -m hearth.platform.pidexec``.

::

    python -m hearth.platform.pidexec [--env-file F] [--starts F] RECORD NAME -- PROGRAM ARGS...
    python -m hearth.platform.pidexec --detach --log FILE RECORD NAME -- PROGRAM ARGS...

Without ``--detach`` it writes a :class:`~hearth.platform.pids.ProcessRecord` of its own
process to ``RECORD`` and then *replaces itself* with the program (``exec``): the record's
pid and start time are the program's. supervisord runs every process this way, so the
stack knows the pid of mosquitto and of each service, and ``down`` can stop them by
identity even when supervisord itself was killed.

``--env-file`` loads ``var/stack.env`` into the environment first (what the last ``hearth
up`` wrote, so a restarted process gets the current settings). ``--starts`` counts the start
in a :class:`~hearth.platform.stack_files.StartHistory` (``hearth status`` shows restarts)
and guards against a crash loop that supervisord's own limit misses: supervisord gives up
(FATAL) only on processes that die within ``startsecs``, and restarts one that ran longer at
once, forever. When the program was started :data:`CRASH_LOOP_STARTS` times within
:data:`CRASH_LOOP_WINDOW` seconds, this start is refused (exit status
:data:`CRASH_LOOP_STATUS` at once, the reason on stderr, so in the program's log):
supervisord then counts quick failures and marks it FATAL after its retries.

With ``--detach`` it forks a child in a new session (no controlling terminal, stdin from
``/dev/null``, stdout and stderr appended to ``FILE``) that does the same, and exits once
the child's ``exec`` succeeded (status 0) or failed (status 127, the reason on stderr).
The program then runs on after the caller exits; ``hearth up`` starts supervisord this way.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hearth.platform.pids import record_of, write_record
from hearth.platform.stack_files import StartHistory, read_env_file

__all__ = [
    "CRASH_LOOP_STARTS",
    "CRASH_LOOP_STATUS",
    "CRASH_LOOP_WINDOW",
    "crash_loop_guard",
    "exec_recorded",
    "main",
    "spawn_detached",
]

CRASH_LOOP_STARTS = 5
"""Starts within :data:`CRASH_LOOP_WINDOW` after which a further start is refused."""
CRASH_LOOP_WINDOW = 120.0
"""Seconds over which starts are counted for the crash-loop guard."""
CRASH_LOOP_STATUS = 78
"""Exit status of a refused start (``EX_CONFIG``): the program was not run."""


def crash_loop_guard(starts_file: Path, name: str) -> str | None:
    """Count this start; the reason to refuse it when the program is in a crash loop."""
    history = StartHistory.read(starts_file)
    recent = history.starts_within(CRASH_LOOP_WINDOW)
    if recent >= CRASH_LOOP_STARTS:
        return (
            f"hearth: {name} was started {recent} times in the last {CRASH_LOOP_WINDOW:g} s and "
            f"exited each time: not starting it again (crash loop). Fix the cause (its log "
            f"above), then `make up` or `uv run hearth restart {name}`"
        )
    history.started(CRASH_LOOP_WINDOW)
    history.write(starts_file)
    return None


def exec_recorded(
    record_file: Path,
    name: str,
    argv: Sequence[str],
    env_file: Path | None = None,
    starts_file: Path | None = None,
) -> None:
    """Write this process's record to ``record_file``, then exec ``argv`` (never returns).

    With ``env_file`` its values are set first; with ``starts_file`` the start is counted
    and a start in a crash loop exits with :data:`CRASH_LOOP_STATUS` instead.
    """
    if starts_file is not None and (refusal := crash_loop_guard(starts_file, name)):
        print(refusal, file=sys.stderr, flush=True)
        raise SystemExit(CRASH_LOOP_STATUS)
    if env_file is not None:
        os.environ.update(read_env_file(env_file))
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
    parser.add_argument("--env-file", type=Path, help="load these KEY=value settings first")
    parser.add_argument("--starts", type=Path, help="count the start here; refuse a crash loop")
    parser.add_argument("record", type=Path, help="the JSON process record to write")
    parser.add_argument("name", help="the process's name in the record")
    parser.add_argument("program", nargs=argparse.REMAINDER, help="-- PROGRAM ARGS...")
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("no program given after --")
    if not args.detach:
        exec_recorded(args.record, args.name, program, args.env_file, args.starts)
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
