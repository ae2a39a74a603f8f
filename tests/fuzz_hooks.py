"""Schemathesis hooks for tests/test_fuzz.py: NUL, boundary integers and real targets.

Loaded by the ``st`` command through ``SCHEMATHESIS_HOOKS=fuzz_hooks``. On top of the
schema-driven cases (the coverage phase already tries every documented bound: lengths at
and past each limit, integers at and past each minimum and maximum), each generated case
is drawn once more with any of (independent draws):

- **real target** (6 in 10): ``home``/``device``/``user_id`` path parameters pointed at the
  test's own home, device and throwaway user (``FUZZ_HOME``, ``FUZZ_DEVICE``,
  ``FUZZ_USER_ID``), so fuzzed bodies reach the database instead of a 404. A ``DELETE``
  never points at the device (it must stay for the rest of the run);
- **boundary** (3 in 10): one integer of its query or body, or one query parameter,
  replaced by a value at or past what PostgreSQL holds (2^31 - 1, 2^31, 2^63 - 1, 2^63,
  -2^63 - 1, 10^30, -1);
- **NUL** (5 in 10): a ``\\x00`` put into one string of its path, query or body (forms
  included) at a drawn position; the schema's own ``pattern`` would otherwise keep NUL out
  of most positive cases.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

BOUNDARY_INTEGERS = (2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -1)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every scalar in a JSON-like value with its path (dict keys, list indexes)."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [(path, value)]


def _set(container: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = value


def _targets(case: Any) -> list[tuple[str, tuple[Any, ...], Any]]:
    """(part, path in part, value) of every scalar of the case's path, query and body."""
    found: list[tuple[str, tuple[Any, ...], Any]] = []
    for part in ("path_parameters", "query", "body"):
        value = getattr(case, part, None)
        if isinstance(value, dict | list):
            found += [(part, path, leaf) for path, leaf in _leaves(value) if path]
    return found


def _point_at_real_targets(case: Any, method: str) -> None:
    params = case.path_parameters
    if not isinstance(params, dict):
        return
    real = {
        "home": os.environ.get("FUZZ_HOME"),
        "device": os.environ.get("FUZZ_DEVICE") if method != "DELETE" else None,
        "user_id": os.environ.get("FUZZ_USER_ID"),
    }
    for name, value in real.items():
        if value and name in params:
            params[name] = value


def _mutate(case: Any, method: str, dice: tuple[int, int, int], pick: int, where: int) -> Any:
    """``dice`` are three rolls of 0-9: NUL (< 5), boundary integer (< 3), real targets (< 6)."""
    nul, boundary, real = dice
    for part in ("path_parameters", "query", "body"):
        value = getattr(case, part, None)
        if isinstance(value, dict | list):
            setattr(case, part, copy.deepcopy(value))
    if real < 6:
        _point_at_real_targets(case, method)
    if boundary < 3:
        integers = [
            t
            for t in _targets(case)
            if (isinstance(t[2], int) and not isinstance(t[2], bool)) or t[0] == "query"
        ]
        if integers:
            part, path, _ = integers[pick % len(integers)]
            _set(getattr(case, part), path, BOUNDARY_INTEGERS[where % len(BOUNDARY_INTEGERS)])
    if nul < 5:
        strings = [t for t in _targets(case) if isinstance(t[2], str)]
        if strings:
            part, path, text = strings[pick % len(strings)]
            at = where % (len(text) + 1)
            _set(getattr(case, part), path, f"{text[:at]}\x00{text[at:]}")
        elif isinstance(case.body, str):
            case.body = f"{case.body}\x00"
    return case


@schemathesis.hook
def flatmap_case(context: Any, case: Any) -> Any:
    method = str(getattr(context.operation, "method", "")).upper()
    roll = st.integers(0, 9)
    return st.tuples(st.tuples(roll, roll, roll), st.integers(0, 10**6), st.integers(0, 10**6)).map(
        lambda drawn: _mutate(case, method, *drawn)
    )
