"""The payloads a device sends and the command it reads, as docs/topics.md defines them.

MicroPython-safe mirror of ``hearth.common.messages`` (the platform's copy is the truth;
``devices/core/tests/test_mirror.py`` checks this one against it). Timestamps are integer
epoch **milliseconds** here (MicroPython floats may be single precision, and some ports
count from 2000): :func:`format_timestamp` writes RFC 3339 UTC with three fraction digits,
:func:`parse_timestamp` reads RFC 3339 with an offset or epoch seconds.

Errors are plain ``ValueError``.
"""

import json
import math

ONLINE = "online"
OFFLINE = "offline"
CONNECTED = "connected"
WILL = "will"
DISCONNECT = "disconnect"

DONE = "done"
REJECTED = "rejected"
EXPIRED = "expired"

REASON_MAX = 200
BOOT_MAX = 32
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_DIGITS = "0123456789"
_HEX = "0123456789abcdef"
_COMMAND_KEYS = ("id", "value", "issued_at", "by")  # expires_at: missing is null


def dumps(value: object) -> bytes:
    """Compact JSON in UTF-8 (MicroPython builds without ``separators`` get the spaced form)."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except TypeError:
        text = json.dumps(value)
    return text.encode("utf-8")


# --------------------------------------------------------------------------- timestamps


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= 1 if month <= 2 else 0
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = (days if days >= 0 else days - 146096) // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def _pad(number: int, width: int) -> str:
    text = str(number)
    return "0" * (width - len(text)) + text


def format_timestamp(epoch_ms: int) -> str:
    """``2026-11-21T10:00:00.250Z`` for epoch milliseconds."""
    days, rest = divmod(int(epoch_ms), 86_400_000)
    year, month, day = _civil_from_days(days)
    seconds, millis = divmod(rest, 1000)
    hour, seconds = divmod(seconds, 3600)
    minute, second = divmod(seconds, 60)
    return (
        _pad(year, 4) + "-" + _pad(month, 2) + "-" + _pad(day, 2) + "T" + _pad(hour, 2) + ":"
        + _pad(minute, 2) + ":" + _pad(second, 2) + "." + _pad(millis, 3) + "Z"
    )  # fmt: skip


def _number(text: str, start: int, width: int) -> int:
    part = text[start : start + width]
    if len(part) != width or not all(char in _DIGITS for char in part):
        raise ValueError("not a timestamp: " + repr(text))
    return int(part)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _parse_rfc3339(text: str) -> int:
    year, month, day = _number(text, 0, 4), _number(text, 5, 2), _number(text, 8, 2)
    hour, minute, second = _number(text, 11, 2), _number(text, 14, 2), _number(text, 17, 2)
    if text[4:5] != "-" or text[7:8] != "-" or text[10:11] not in ("T", "t", " "):
        raise ValueError("not a timestamp: " + repr(text))
    if text[13:14] != ":" or text[16:17] != ":":
        raise ValueError("not a timestamp: " + repr(text))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        raise ValueError("not a date: " + repr(text))
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError("not a time: " + repr(text))
    pos = 19
    micros = 0
    if text[pos : pos + 1] == ".":
        end = pos + 1
        while end < len(text) and text[end] in _DIGITS:
            end += 1
        digits = text[pos + 1 : end]
        if not 1 <= len(digits) <= 9:
            raise ValueError("bad fraction: " + repr(text))
        micros = int((digits + "000000")[:6])
        pos = end
    zone = text[pos:]
    if zone in ("Z", "z"):
        offset_min = 0
    elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":":
        off_h, off_m = _number(zone, 1, 2), _number(zone, 4, 2)
        if off_h > 23 or off_m > 59:
            raise ValueError("bad offset: " + repr(text))
        offset_min = (off_h * 60 + off_m) * (1 if zone[0] == "+" else -1)
    else:
        raise ValueError("no UTC offset: " + repr(text))
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    millis = micros // 1000 + (1 if micros % 1000 >= 500 else 0)
    return (seconds - offset_min * 60) * 1000 + millis


def parse_timestamp(value: object) -> int:
    """Epoch milliseconds of RFC 3339 text with an offset or of epoch seconds (a number)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite timestamp")
        return round(value * 1000)
    if isinstance(value, str):
        return _parse_rfc3339(value)
    raise ValueError("not a timestamp: " + repr(value))


# --------------------------------------------------------------------------- message ids


def is_boot_id(value: object) -> bool:
    """Whether ``value`` can be the ``<boot>`` of a message id (``[A-Za-z0-9]{1,32}``)."""
    if not isinstance(value, str) or not 0 < len(value) <= BOOT_MAX:
        return False
    return all(char in _ALNUM for char in value)


def boot_id(random_bytes: bytes) -> str:
    """A boot id from random bytes (``os.urandom(6)``): lowercase hex, new on every boot."""
    text = "".join(_HEX[byte >> 4] + _HEX[byte & 15] for byte in random_bytes)[:BOOT_MAX]
    if not is_boot_id(text):
        raise ValueError("need 1 to 16 random bytes")
    return text


class MessageIds:
    """``<boot>-<seq>`` telemetry ids: a boot id and a sequence counting from 1."""

    def __init__(self, boot: str, seq: int = 0) -> None:
        if not is_boot_id(boot):
            raise ValueError("boot id " + repr(boot) + " is not [A-Za-z0-9]{1,32}")
        self.boot = boot
        self.seq = seq

    def next(self) -> str:
        """The next id."""
        self.seq += 1
        return self.boot + "-" + str(self.seq)


# --------------------------------------------------------------------------- device -> platform


def _check_finite(value: object) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and infinities are not JSON")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def telemetry(value: object, msg_id: str | None = None, ts_ms: int | None = None) -> bytes:
    """``{"value", "ts", "id"}``; ``ts`` only when the clock is synchronised (else ``None``)."""
    if not isinstance(value, (bool, int, float)):
        raise ValueError("telemetry is a number or a boolean")
    _check_finite(value)
    body: dict[str, object] = {"value": value}
    if ts_ms is not None:
        body["ts"] = format_timestamp(ts_ms)
    if msg_id is not None:
        body["id"] = msg_id
    return dumps(body)


def birth(ts_ms: int | None = None) -> bytes:
    """The retained birth: ``{"state":"online","reason":"connected"}`` (+ ``ts``)."""
    body: dict[str, object] = {"state": ONLINE, "reason": CONNECTED}
    if ts_ms is not None:
        body["ts"] = format_timestamp(ts_ms)
    return dumps(body)


def will() -> bytes:
    """The will set at connect: ``{"state":"offline","reason":"will"}`` (no ``ts``)."""
    return dumps({"state": OFFLINE, "reason": WILL})


def goodbye(ts_ms: int | None = None) -> bytes:
    """The retained status before a clean disconnect."""
    body: dict[str, object] = {"state": OFFLINE, "reason": DISCONNECT}
    if ts_ms is not None:
        body["ts"] = format_timestamp(ts_ms)
    return dumps(body)


def state(value: object, ts_ms: int | None = None) -> bytes:
    """The retained state of a property: ``{"value", "ts"}`` (``ts`` when the clock is set)."""
    _check_finite(value)
    body: dict[str, object] = {"value": value}
    if ts_ms is not None:
        body["ts"] = format_timestamp(ts_ms)
    return dumps(body)


def ack(command_id: str, outcome: str, reason: str | None = None, value: object = None) -> bytes:
    """``{"id", "outcome", "reason"?, "value"?}``; ``reason`` is cut to 200 characters."""
    if outcome not in (DONE, REJECTED, EXPIRED):
        raise ValueError("a device acks done, rejected or expired")
    body: dict[str, object] = {"id": command_id, "outcome": outcome}
    if reason is not None:
        body["reason"] = reason[:REASON_MAX]
    if value is not None:
        _check_finite(value)
        body["value"] = value
    return dumps(body)


# --------------------------------------------------------------------------- platform -> device


def is_uuid(value: object) -> bool:
    """Whether ``value`` is a UUID in canonical lowercase text."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    for index, char in enumerate(value):
        if index in (8, 13, 18, 23):
            if char != "-":
                return False
        elif char not in _HEX:
            return False
    return True


class Command:
    """A command read from ``hearth/{home}/{device}/command/{property}``.

    ``issued_at`` and ``expires_at`` are epoch ms (``expires_at`` ``None``: never expires).
    Keys other than the five of docs/topics.md are ignored, so a platform that adds one
    does not silence devices in the field.
    """

    def __init__(
        self, command_id: str, value: object, issued_at: int, expires_at: int | None, by: str
    ) -> None:
        self.id = command_id
        self.value = value
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.by = by

    def is_expired(self, now_ms: int) -> bool:
        """Whether ``expires_at`` has passed at ``now_ms``."""
        return self.expires_at is not None and now_ms >= self.expires_at


def command_id_of(payload: bytes) -> str | None:
    """The ``id`` of a payload that may not be a valid command (to reject it by id)."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if isinstance(body, dict) and is_uuid(body.get("id")):
        return str(body["id"])
    return None


def parse_command(payload: bytes) -> Command:
    """Read a command; ``ValueError`` saying what is wrong when it is not one."""
    try:
        body = json.loads(payload)
    except ValueError:
        raise ValueError("command is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("command is not a JSON object")
    for key in _COMMAND_KEYS:
        if key not in body:
            raise ValueError("command has no " + key)
    if not is_uuid(body["id"]):
        raise ValueError("command id is not a lowercase UUID")
    if not is_uuid(body["by"]):
        raise ValueError("command by is not a user id")
    _check_finite(body["value"])
    issued_at = parse_timestamp(body["issued_at"])
    expires = body.get("expires_at")
    expires_at = None if expires is None else parse_timestamp(expires)
    return Command(body["id"], body["value"], issued_at, expires_at, body["by"])
