"""Which PostgreSQL the native stack uses: asked for, remembered, never changed silently.

The rules (:func:`decide`, a pure function tested on its own):

- What the operator asks for: ``HEARTH_POSTGRES=own`` (a cluster of the stack's own under
  ``var/postgres``), ``HEARTH_POSTGRES=existing`` or a set ``HEARTH_POSTGRES_URL`` (that
  server), or nothing (``HEARTH_POSTGRES`` unset or ``auto``, no URL).
- The first ``up`` decides and the choice is remembered in ``var/database.json``: what was
  asked for; with nothing asked, the server on the default URL if it answers, else a cluster
  of our own (only then: nothing configured and nothing answers on the default).
- Every later ``up`` uses the remembered choice. Asking for another one is refused, saying
  what is in use and how to switch: the explicit word is ``HEARTH_POSTGRES_SWITCH=yes`` (or
  ``hearth up --switch-database``), for that one ``up``; the old database is left as it is.
- A server that is asked for or remembered must let us in: "does not answer" (nothing
  listens, the host is unknown, a timeout), "refused the login" (role, password or
  ``pg_hba.conf``) and "has no database ..." are separate errors, never a fallback to our
  own cluster.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import asyncpg

from hearth.platform.postgres import asyncpg_dsn, host_port, run_sync, shown_url
from hearth.platform.stack_config import PostgresMode, StackError
from hearth.platform.stack_files import write_private

__all__ = [
    "SWITCH_ENV",
    "DatabaseChoice",
    "DatabaseRequest",
    "Decision",
    "Probe",
    "conflicts",
    "decide",
    "probe_server",
    "read_choice",
    "refusal",
    "write_choice",
]

SWITCH_ENV = "HEARTH_POSTGRES_SWITCH"
"""Set to ``yes`` for one ``hearth up`` to switch to the database asked for."""

Source = Literal["existing", "own"]
Answer = Literal["answers", "no_answer", "login_refused", "no_database", "error"]


@dataclass(frozen=True, slots=True)
class Probe:
    """What a server said when we tried to log in: ``answer`` and a detail for people."""

    answer: Answer
    detail: str = ""


async def _probe(url: str, timeout: float) -> Probe:  # noqa: ASYNC109
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout)
    except (OSError, TimeoutError) as exc:  # refused, unreachable, unknown host, no answer
        return Probe("no_answer", str(exc) or type(exc).__name__)
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # SQLSTATE class 28
        return Probe("login_refused", str(exc))
    except asyncpg.InvalidCatalogNameError as exc:
        return Probe("no_database", str(exc))
    except asyncpg.PostgresError as exc:
        return Probe("error", f"{type(exc).__name__}: {exc}")
    except asyncpg.InterfaceError as exc:  # e.g. the server wants a password, none was given
        kind: Answer = "login_refused" if "password" in str(exc).lower() else "error"
        return Probe(kind, str(exc))
    try:
        ok = await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    return Probe("answers") if ok else Probe("error", "SELECT 1 did not answer 1")


def probe_server(url: str, timeout: float = 3.0) -> Probe:
    """Try to log in to the server at ``url`` (its maintenance database) and say what happened."""
    try:
        host_port(url)  # refuses what is not a PostgreSQL URL, naming it
        return run_sync(_probe(url, timeout))
    except socket.gaierror as exc:  # pragma: no cover - asyncpg raises it as OSError already
        return Probe("no_answer", str(exc))


@dataclass(frozen=True, slots=True)
class DatabaseChoice:
    """The database the stack uses, as remembered in ``var/database.json`` (mode 0600).

    ``server_url`` names the server's maintenance database (``existing``) or is empty
    (``own``: the cluster under ``var/postgres``); ``since`` is when it was chosen.
    """

    source: Source
    server_url: str
    since: str
    reason: str

    def describe(self) -> str:
        """``existing server postgresql://...`` or ``own cluster in var/postgres``."""
        if self.source == "own":
            return "the stack's own cluster in var/postgres"
        return f"the existing server at {shown_url(self.server_url)}"


def read_choice(path: Path) -> DatabaseChoice | None:
    """The remembered choice, or None when nothing is remembered."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DatabaseChoice(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise StackError(
            f"{path} is damaged ({exc}): delete it and run `make up` with HEARTH_POSTGRES and "
            "HEARTH_POSTGRES_URL saying which database to use"
        ) from None


def write_choice(path: Path, choice: DatabaseChoice) -> None:
    """Remember ``choice`` (mode 0600: the URL may hold a password)."""
    write_private(path, json.dumps(asdict(choice), indent=2) + "\n")


@dataclass(frozen=True, slots=True)
class DatabaseRequest:
    """What the operator's settings ask for (from :class:`StackConfig`)."""

    mode: PostgresMode
    url: str
    url_configured: bool
    switch: bool = False

    @property
    def asked(self) -> Source | None:
        """``own``, ``existing``, or None when nothing is asked for."""
        if self.mode == "own":
            return "own"
        if self.mode == "existing" or self.url_configured:
            return "existing"
        return None

    def asked_words(self) -> str:
        """What was asked for, in the operator's own settings."""
        if self.mode == "own":
            return "HEARTH_POSTGRES=own"
        if self.url_configured:
            return f"HEARTH_POSTGRES_URL={shown_url(self.url)}"
        return f"HEARTH_POSTGRES=existing (the default URL {shown_url(self.url)})"


@dataclass(frozen=True, slots=True)
class Decision:
    """The database to use now: ``choice``, and what to tell the operator in ``notes``."""

    choice: DatabaseChoice
    new: bool
    notes: tuple[str, ...] = ()


def _same_server(a: str, b: str) -> bool:
    return asyncpg_dsn(a) == asyncpg_dsn(b)


def conflicts(request: DatabaseRequest, remembered: DatabaseChoice) -> bool:
    """Whether ``request`` asks for another database than the remembered one."""
    asked = request.asked
    if asked is None:
        return False
    if asked != remembered.source:
        return True
    return asked == "existing" and not _same_server(request.url, remembered.server_url)


def refusal(request: DatabaseRequest, remembered: DatabaseChoice) -> StackError:
    """The error for a request of another database without the explicit word."""
    return StackError(
        f"this stack uses {remembered.describe()} (remembered in var/database.json since "
        f"{remembered.since}), but {request.asked_words()} asks for another database. "
        f"Nothing was switched. To switch, run `make up {SWITCH_ENV}=yes` with the same "
        "settings (the old database keeps its data); to keep the current one, unset the setting"
    )


def _must_answer(url: str, probe: Callable[[str], Probe], why: str) -> None:
    result = probe(url)
    shown = shown_url(url)
    if result.answer == "answers":
        return
    if result.answer == "no_answer":
        raise StackError(
            f"no PostgreSQL answers at {shown} ({why}): {result.detail}. Start that server or "
            "correct the URL; the stack never falls back to a database of its own"
        )
    if result.answer == "login_refused":
        raise StackError(
            f"the PostgreSQL server at {shown} answered but refused the login ({why}): "
            f"{result.detail}. Correct the user or password in HEARTH_POSTGRES_URL, or let "
            "that user in (pg_hba.conf)"
        )
    if result.answer == "no_database":
        raise StackError(
            f"the PostgreSQL server at {shown} answered but has no such database ({why}): "
            f"{result.detail}. The URL must name a database the user may connect to "
            "(usually /postgres)"
        )
    raise StackError(f"the PostgreSQL server at {shown} answered with an error ({why}): "
                     f"{result.detail}")  # fmt: skip


def decide(
    request: DatabaseRequest,
    remembered: DatabaseChoice | None,
    *,
    own_initialized: bool,
    have_binaries: bool,
    probe: Callable[[str], Probe],
    now: Callable[[], str] = lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"),
) -> Decision:
    """Which database to use (the rules are in the module docstring).

    ``probe`` is called at most once, only for a server that would be used.
    Raises :class:`StackError` saying what happened and what to do.
    """
    install = "install PostgreSQL's server programs (Debian: apt-get install postgresql)"
    if remembered is not None and conflicts(request, remembered):
        if not request.switch:
            raise refusal(request, remembered)
        notes: tuple[str, ...] = (f"switching away from {remembered.describe()} (its data stays)",)
        remembered = None
    else:
        notes = ()
    if remembered is not None:
        if remembered.source == "existing":
            _must_answer(remembered.server_url, probe, "the database this stack uses")
        elif not have_binaries:
            raise StackError(f"this stack uses its own cluster in var/postgres: {install}")
        return Decision(remembered, new=False, notes=notes)

    asked = request.asked
    if asked == "own":
        if not have_binaries:
            raise StackError(f"HEARTH_POSTGRES=own needs initdb and pg_ctl: {install}")
        return Decision(DatabaseChoice("own", "", now(), "asked for: HEARTH_POSTGRES=own"), True,
                        notes)  # fmt: skip
    if asked == "existing":
        _must_answer(request.url, probe, f"asked for: {request.asked_words()}")
        reason = f"asked for: {request.asked_words()}"
        return Decision(DatabaseChoice("existing", request.url, now(), reason), True, notes)
    if own_initialized:  # a var/ from before choices were remembered: keep what it used
        reason = "the cluster under var/postgres from an earlier up"
        return Decision(DatabaseChoice("own", "", now(), reason), True, notes)
    result = probe(request.url)
    shown = shown_url(request.url)
    if result.answer == "answers":
        reason = f"nothing configured; the server on the default URL {shown} answers"
        return Decision(DatabaseChoice("existing", request.url, now(), reason), True, notes)
    if result.answer != "no_answer":
        what = {"login_refused": "refused the login", "no_database": "has no such database"}
        raise StackError(
            f"a PostgreSQL server answers on the default URL {shown} but "
            f"{what.get(result.answer, 'answered with an error')}: {result.detail}. The stack "
            "does not start a cluster of its own while a server answers there: set "
            "HEARTH_POSTGRES_URL to a login it accepts, or HEARTH_POSTGRES=own"
        )
    if not have_binaries:
        raise StackError(
            f"no PostgreSQL answers on the default URL {shown} and none can be started here: "
            f"{install}, or set HEARTH_POSTGRES_URL to a server"
        )
    reason = f"nothing configured and nothing answers on the default URL {shown}"
    return Decision(DatabaseChoice("own", "", now(), reason), True, notes)
