"""``hearth logs``: each kind of log line read as one event, merged, followed, coloured."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

from hearth.platform.stack_logs import (
    LogSource,
    append_log,
    follow,
    format_event,
    history,
    last_lines,
    read_event,
    use_colour,
)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_each_kind_of_line_is_one_event() -> None:
    service = json.dumps(
        {
            "ts": "2026-11-29T10:00:00.123+00:00",
            "level": "WARNING",
            "logger": "hearth.ingest.writer",
            "message": "batch slow",
            "service": "ingest",
            "replica": "vm",
            "rows": 500,
            "exc": "Traceback (most recent call last):\n  File x\nValueError: boom",
        }
    )
    event = read_event("ingest", service)
    assert (event.ts, event.level, event.text) == (_ts("2026-11-29T10:00:00.123+00:00"),
                                                   "WARNING", "batch slow")  # fmt: skip
    assert event.extra == {"rows": 500, "error": "ValueError: boom"}  # no logger/service noise

    broker = read_event("mosquitto", "2026-11-29T10:00:01: New client connected as ingest-vm")
    assert broker.ts == _ts("2026-11-29T10:00:01")
    assert broker.text == "New client connected as ingest-vm"

    supervisor = read_event("supervisord", "2026-11-29 10:00:02,500 INFO exited: ingest (SIGKILL)")
    assert supervisor.ts == _ts("2026-11-29T10:00:02") + 0.5
    assert (supervisor.level, supervisor.text) == ("INFO", "exited: ingest (SIGKILL)")

    plain = read_event("ingest", "hearth-ingest: HEARTH_INGEST_BATCH_MAX_ROWS: bad value")
    assert (plain.ts, plain.text) == (
        None,
        "hearth-ingest: HEARTH_INGEST_BATCH_MAX_ROWS: bad value",
    )


def test_a_traceback_is_folded_into_its_first_line(tmp_path: Path) -> None:
    log = tmp_path / "ingest.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    boom()\n"
        "ValueError: boom\n"
    )
    assert last_lines(log, 5) == [
        " " * 12
        + " ingest            Traceback (most recent call last):  (+2 lines in the log file)",
        " " * 12 + " ingest            ValueError: boom",
    ]
    assert last_lines(tmp_path / "missing.log", 5) == []


def test_history_merges_the_files_in_time_order(tmp_path: Path) -> None:
    (tmp_path / "mosquitto.log").write_text(
        "2026-11-29T10:00:01: second\n2026-11-29T10:00:03: fourth\n"
    )
    (tmp_path / "ingest.log").write_text(
        json.dumps({"ts": "2026-11-29T10:00:00", "level": "INFO", "message": "first"})
        + "\nno time: stays after its predecessor\n"
        + json.dumps({"ts": "2026-11-29T10:00:02", "level": "INFO", "message": "third"})
        + "\n"
    )
    sources = [LogSource("mosquitto", tmp_path / "mosquitto.log"),
               LogSource("ingest", tmp_path / "ingest.log")]  # fmt: skip
    texts = [event.text for event in history(sources, 10)]
    assert texts == ["first", "no time: stays after its predecessor", "second", "third", "fourth"]
    assert [event.text for event in history(sources, 2)] == ["third", "fourth"]


def test_one_line_per_event_and_colour_only_when_asked() -> None:
    event = read_event(
        "ingest",
        json.dumps({"ts": "2026-11-29T10:00:00", "level": "ERROR", "message": "x", "note": "a b"}),
    )
    plain = format_event(event, colour=False)
    assert "\x1b[" not in plain
    assert plain.endswith('ingest      ERROR x  note="a b"')
    assert "\n" not in plain
    painted = format_event(event, colour=True)
    assert "\x1b[31mERROR\x1b[0m" in painted
    assert not use_colour(io.StringIO())  # not a terminal: never colour


def test_follow_prints_history_then_new_events_and_survives_rotation(tmp_path: Path) -> None:
    log = tmp_path / "hearth.log"
    append_log(log, "hearth", "old")
    out = io.StringIO()
    polls = 0

    def keep_going() -> bool:
        nonlocal polls
        polls += 1
        if polls == 2:
            append_log(log, "hearth", "new")
            with log.open("a") as handle:
                handle.write("2026-11-29T10:00:00: half a li")  # completed below
        if polls == 4:
            with log.open("a") as handle:
                handle.write("ne\n")
        if polls == 6:  # supervisord rotates: renames the file and starts a new one
            log.rename(tmp_path / "hearth.log.1")
            append_log(log, "hearth", "after rotation")
        return polls < 12

    follow([LogSource("hearth", log)], 5, out.write, keep_going=keep_going)
    lines = out.getvalue().splitlines()
    assert [line.split(maxsplit=3)[-1] for line in lines] == [
        "old",
        "new",
        "half a line",
        "after rotation",
    ]
