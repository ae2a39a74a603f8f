"""Process records: identity by pid and start time; the pidexec wrapper and its guard."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.platform.pidexec import CRASH_LOOP_STARTS, CRASH_LOOP_STATUS, CRASH_LOOP_WINDOW
from hearth.platform.pids import (
    ProcessRecord,
    descendants,
    read_record,
    record_of,
    rss_bytes,
    seconds_running,
    start_time_of,
    terminate,
    wait_gone,
    write_record,
)
from hearth.platform.stack_files import StartHistory, read_env_file, render_env_file

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(SLEEPER)
    yield proc
    proc.kill()
    proc.wait()


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def test_a_record_names_exactly_one_process(sleeper: subprocess.Popen[bytes]) -> None:
    record = record_of("sleeper", sleeper.pid)
    assert record is not None
    assert record.running()
    impostor = ProcessRecord("sleeper", sleeper.pid, record.start_time + 1)
    assert not impostor.running()  # same pid, another start time: a reused pid
    sleeper.kill()
    sleeper.wait()
    assert not record.running()
    assert record_of("gone", sleeper.pid) is None


def test_a_zombie_counts_as_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    record = record_of("quick", proc.pid)
    deadline = time.monotonic() + 10
    while start_time_of(proc.pid) is not None:  # exited but not reaped yet: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert record is None or not record.running()
    proc.wait()


def test_terminate_never_signals_a_process_whose_identity_changed(
    sleeper: subprocess.Popen[bytes],
) -> None:
    record = record_of("sleeper", sleeper.pid)
    assert record is not None
    impostor = ProcessRecord("other", sleeper.pid, record.start_time - 1)
    assert terminate([impostor], timeout=0.5) == []
    time.sleep(0.1)
    assert sleeper.poll() is None  # untouched
    assert terminate([record], timeout=5.0) == [record]
    assert sleeper.wait(5) != 0


def test_terminate_kills_what_ignores_sigterm() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"1\n"  # the SIGTERM handler is in place
        record = record_of("stubborn", proc.pid)
        assert record is not None
        started = time.monotonic()
        terminate([record], timeout=0.3)
        assert proc.wait(5) == -9
        assert time.monotonic() - started < 5


def test_records_round_trip_and_bad_files_read_as_none(tmp_path: Path) -> None:
    record = ProcessRecord("mosquitto", 1234, 5678)
    write_record(tmp_path / "run" / "m.json", record)
    assert read_record(tmp_path / "run" / "m.json") == record
    (tmp_path / "bad.json").write_text("{not json")
    assert read_record(tmp_path / "bad.json") is None
    assert read_record(tmp_path / "missing.json") is None


def test_pidexec_records_the_program_itself(tmp_path: Path) -> None:
    record_file = tmp_path / "sleeper.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hearth.platform.pidexec",
            str(record_file),
            "sleeper",
            "--",
            *SLEEPER,
        ]
    )
    try:
        _wait_for(record_file)
        record = read_record(record_file)
        assert record is not None
        assert record.pid == proc.pid  # exec kept the pid: the record is the program's
        assert record.name == "sleeper"
        assert record.running()
    finally:
        proc.kill()
        proc.wait()


def test_pidexec_detach_leaves_a_recorded_program_in_its_own_session(tmp_path: Path) -> None:
    record_file = tmp_path / "run" / "detached.json"
    log = tmp_path / "log" / "out.log"
    code = "import os, time; print('hello from', os.getpid(), flush=True); time.sleep(60)"
    result = subprocess.run(
        [
            sys.executable, "-m", "hearth.platform.pidexec", "--detach", "--log", str(log),
            str(record_file), "detached", "--", sys.executable, "-c", code,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = read_record(record_file)
    assert record is not None
    try:
        assert record.running()
        assert os.getsid(record.pid) == record.pid  # a session leader: no terminal of ours
        deadline = time.monotonic() + 10
        while f"hello from {record.pid}" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the program's output did not reach the log"
            time.sleep(0.01)
    finally:
        terminate([record], timeout=5)
    assert wait_gone([record], 5) == []


def test_pidexec_detach_reports_a_program_that_cannot_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "hearth.platform.pidexec", "--detach", "--log",
            str(tmp_path / "out.log"), str(tmp_path / "x.json"), "x", "--", "/no/such/program",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 127
    assert "/no/such/program" in result.stderr


def test_descendants_walks_the_whole_tree(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen({SLEEPER!r}); "
        f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        _wait_for(marker)
        deadline = time.monotonic() + 5
        while not marker.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        root = record_of("root", proc.pid)
        assert root is not None
        pids = {r.pid for r in descendants(root)}
        assert int(marker.read_text()) in pids
        assert proc.pid not in pids
        terminate([root, *descendants(root)], timeout=5)
        assert wait_gone([root], 1) == []
    finally:
        proc.kill()
        proc.wait()


def test_rss_and_running_time_of_a_process(sleeper: subprocess.Popen[bytes]) -> None:
    record = record_of("sleeper", sleeper.pid)
    assert record is not None
    # Right after the fork the child is still tiny: wait until the interpreter is resident.
    deadline = time.monotonic() + 30
    rss = rss_bytes(sleeper.pid)
    while rss is not None and rss <= 1_000_000 and time.monotonic() < deadline:
        time.sleep(0.02)
        rss = rss_bytes(sleeper.pid)
    assert rss is not None
    assert 1_000_000 < rss < 200_000_000  # a Python interpreter, resident
    running = seconds_running(record)
    assert running is not None
    assert 0 <= running < 120
    assert rss_bytes(2**22 + 7) is None  # no such pid


def _pidexec(tmp_path: Path, *program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "hearth.platform.pidexec",
            "--env-file", str(tmp_path / "stack.env"), "--starts", str(tmp_path / "x.starts"),
            str(tmp_path / "x.json"), "x", "--", *program,
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_pidexec_loads_the_env_file_and_counts_starts(tmp_path: Path) -> None:
    (tmp_path / "stack.env").write_text(render_env_file({"HEARTH_X_SETTING": "from-the-file"}))
    show = [sys.executable, "-c", "import os; print(os.environ['HEARTH_X_SETTING'])"]
    for expected in (1, 2):
        result = _pidexec(tmp_path, *show)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "from-the-file"
        assert StartHistory.read(tmp_path / "x.starts").count == expected


def test_pidexec_refuses_a_crash_loop_and_forgives_after_an_operator_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "stack.env").write_text(render_env_file({}))
    crash = [sys.executable, "-c", "import sys; sys.exit(1)"]
    for _ in range(CRASH_LOOP_STARTS):
        assert _pidexec(tmp_path, *crash).returncode == 1  # ran and crashed
    refused = _pidexec(tmp_path, *crash)
    assert refused.returncode == CRASH_LOOP_STATUS
    assert f"was started {CRASH_LOOP_STARTS} times in the last {CRASH_LOOP_WINDOW:g} s" in (
        refused.stderr
    )
    assert "crash loop" in refused.stderr
    history = StartHistory.read(tmp_path / "x.starts")
    assert history.count == CRASH_LOOP_STARTS  # a refused start is not a start
    history.forgive()  # what `hearth up`/`restart` do before starting it again
    history.write(tmp_path / "x.starts")
    assert _pidexec(tmp_path, *crash).returncode == 1  # the positive control: it runs again


def test_start_history_forgets_starts_outside_the_window() -> None:
    history = StartHistory()
    history.started(60, now=1000.0)
    history.started(60, now=1050.0)
    assert history.starts_within(60, now=1055.0) == 2
    history.started(60, now=1100.0)  # 1000 is now outside the window
    assert history.recent == [1050.0, 1100.0]
    assert history.count == 3


def test_env_file_reader_is_the_inverse_of_the_renderer(tmp_path: Path) -> None:
    values = {"HEARTH_A": "postgresql+asyncpg://u:p%40x@h:5432/db", "HEARTH_B": "a=b", "C": ""}
    path = tmp_path / "stack.env"
    path.write_text(render_env_file(values))
    assert read_env_file(path) == values
    path.write_text("not a line\n")
    with pytest.raises(ValueError, match="not a KEY=value line"):
        read_env_file(path)
