"""The native stack: ``hearth up``, ``hearth down``, ``hearth status`` (``make up``...).

``up`` brings the platform up on this machine without Docker, in this order:

1. the secrets file (created or completed: :func:`hearth.platform.secrets.ensure_secrets`);
2. the broker config, rendered with the ``native`` preset into ``var/mosquitto.conf``
   (own port, default 1884: never the system's 1883), and the bootstrap's offline phase
   (the dynsec file with the admin login, which must exist before mosquitto starts);
3. PostgreSQL: the server that answers or a cluster of our own
   (:func:`hearth.platform.postgres.plan_postgres`), and the stack's database in it;
4. ``var/stack.env`` and every service's migrations (:data:`hearth.platform.services.SERVICES`);
5. honcho, detached, running ``var/Procfile``: mosquitto and every service;
6. the bootstrap's online phase (service roles, a bound login per replica), then it waits
   for every port.

What ``up`` started is recorded under ``var/run/`` (pid *and* start time of honcho, of each
of honcho's processes and of our own PostgreSQL: :mod:`hearth.platform.pids`). ``down``
stops exactly those, checked by identity, and never a PostgreSQL server it did not start;
``status`` reports each part. ``up`` on a running stack runs only the online bootstrap
(logins for replicas added with ``HEARTH_<SERVICE>_REPLICAS``) and reports it; every step
is idempotent, so ``up`` after a crash or a half-finished ``up`` repairs what is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from hearth.platform import broker_config
from hearth.platform.bootstrap import bootstrap
from hearth.platform.errors import PlatformError
from hearth.platform.pids import (
    ProcessRecord,
    descendants,
    is_running,
    read_record,
    terminate,
    wait_gone,
    write_record,
)
from hearth.platform.postgres import (
    OwnCluster,
    PostgresPlan,
    database_url,
    ensure_database,
    find_pg_bindir,
    host_port,
    plan_postgres,
    server_answers,
    shown_url,
)
from hearth.platform.procfile import (
    ProcfileEntry,
    render_env_file,
    render_procfile,
    write_private,
)
from hearth.platform.secrets import ensure_secrets
from hearth.platform.services import SERVICES, ServiceSpec, render_args, service_env
from hearth.platform.stack_config import StackConfig, StackError, port_env
from hearth.platform.stack_logs import append_log

__all__ = ["PartStatus", "Stack", "StackStatus"]

RUNNER = "honcho"
BROKER = "mosquitto"
POSTGRES_RECORD = "postgres"
STATE_FILE = "stack.json"
_STOPPED = re.compile(r"\| (\S+?)\.\d+ stopped \(rc=(-?\d+)\)")
HONCHO_GRACE = 15.0
"""Seconds ``down`` gives honcho to stop its processes (it SIGKILLs them after 5 s)."""


def _port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _find_program(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One part of the stack as ``hearth status`` reports it."""

    name: str
    kind: Literal["runner", "broker", "database", "service"]
    up: bool
    address: str | None = None
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StackStatus:
    """Every part of the stack; ``up`` when each one is."""

    var_dir: Path
    parts: tuple[PartStatus, ...]

    @property
    def up(self) -> bool:
        """Whether every part is up."""
        return all(part.up for part in self.parts)

    def part(self, name: str) -> PartStatus:
        """The part called ``name`` (``KeyError`` if there is none)."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (``hearth status --json``)."""
        return {
            "up": self.up,
            "var_dir": str(self.var_dir),
            "parts": [asdict(part) for part in self.parts],
        }

    def lines(self) -> list[str]:
        """A table for people: one line per part."""
        rows = []
        for part in self.parts:
            state = "up" if part.up else "down"
            pid = f"pid {part.pid}" if part.pid else ""
            rows.append((part.name, state, part.address or "", pid, part.detail))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return [
            "  "
            + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4]))
            + (f"  {row[4]}" if row[4] else "")
            for row in rows
        ]


@dataclass(slots=True)
class _State:
    """What ``up`` recorded in ``var/run/stack.json`` (mode 0600: the URL may hold a password)."""

    ports: dict[str, int]
    services: list[str]
    postgres_source: Literal["existing", "own"]
    database_url: str
    own_postgres_port: int | None = None
    started: float = field(default_factory=time.time)


class Stack:
    """The native stack of one ``var/`` folder (see the module docstring).

    ``services`` defaults to :data:`~hearth.platform.services.SERVICES`; ``out`` receives
    every line of progress (``print`` by default).
    """

    def __init__(
        self,
        config: StackConfig,
        services: Sequence[ServiceSpec] = SERVICES,
        out: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.services = tuple(services)
        self.out = out
        self._log_start = 0

    # ----------------------------------------------------------------------- records

    def _record(self, name: str) -> ProcessRecord | None:
        return read_record(self.config.record_file(name))

    def _child_names(self) -> list[str]:
        return [BROKER, *(spec.name for spec in self.services)]

    def _recorded_children(self) -> list[ProcessRecord]:
        """Records of honcho's processes, from the record files (any service ever recorded)."""
        skip = {RUNNER, POSTGRES_RECORD}
        found = []
        for path in sorted(self.config.run_dir.glob("*.json")):
            if path.stem in skip or path.name == STATE_FILE:
                continue
            record = read_record(path)
            if record is not None:
                found.append(record)
        return found

    def _state(self) -> _State | None:
        try:
            data = json.loads((self.config.run_dir / STATE_FILE).read_text(encoding="utf-8"))
            return _State(**data)
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def _write_state(self, state: _State) -> None:
        write_private(self.config.run_dir / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")

    def _own_cluster(self, port: int | None = None) -> OwnCluster:
        return OwnCluster(
            self.config.postgres_dir,
            port or self.config.own_postgres_port,
            self.config.log_dir / "postgres.log",
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per ``var/`` folder."""
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config.run_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _log(self, text: str) -> None:
        self.out(text)
        append_log(self.config.log_file, "hearth", text)

    # ----------------------------------------------------------------------- up

    def up(self) -> StackStatus:
        """Bring the stack up (or report that it is up); return its status."""
        with self._locked():
            runner = self._record(RUNNER)
            if runner is not None and runner.running():
                self.out(f"hearth: the stack is already up (honcho pid {runner.pid})")
                self._bootstrap_online()  # replicas added since (HEARTH_<SERVICE>_REPLICAS)
                status = self.status()
                self._print_summary(status)
                return status
            self._stop_leftovers()
            started_postgres = False
            try:
                self._check_tools()
                self._check_ports()
                self._prepare_folders()
                self._secrets()
                self._broker_files()
                plan, started_postgres = self._postgres()
                db_url = database_url(plan.server_url, self.config.database_name)
                if ensure_database(plan.server_url, self.config.database_name):
                    self._log(f"created database {self.config.database_name}")
                values = self._values(db_url)
                stack_env = self._write_stack_env(values)
                self._write_state(
                    _State(
                        ports=dict(self.config.ports),
                        services=[spec.name for spec in self.services],
                        postgres_source=plan.source,
                        database_url=db_url,
                        own_postgres_port=(
                            self.config.own_postgres_port if plan.source == "own" else None
                        ),
                    )
                )
                self._migrate(values, stack_env)
                self._write_procfile(values)
                self._start_runner()
                self._wait_broker()
                self._bootstrap_online()
                self._wait_services()
            except BaseException as exc:
                died = self._runner_died(exc)
                self._stop_processes()
                if started_postgres:
                    self._stop_own_postgres()
                if read_record(self.config.record_file(POSTGRES_RECORD)) is None:
                    (self.config.run_dir / STATE_FILE).unlink(missing_ok=True)
                if died is not None:
                    raise died from exc
                raise
            status = self.status()
            self._print_summary(status)
            return status

    def _check_tools(self) -> None:
        missing = []
        if _find_program("mosquitto") is None:
            missing.append("mosquitto (the broker)")
        if not self.config.dynsec_file.exists() and _find_program("mosquitto_ctrl") is None:
            missing.append("mosquitto_ctrl (Debian: in the mosquitto package)")
        try:
            broker_config.find_dynsec_plugin()
        except PlatformError:
            missing.append("mosquitto_dynamic_security.so (Debian: in the mosquitto package)")
        if missing:
            raise StackError(
                "missing: "
                + "; ".join(missing)
                + ". Run scripts/install-tools as root (or: apt-get install mosquitto)"
            )

    def _check_ports(self) -> None:
        wanted = [("broker", self.config.port("broker"))]
        wanted += [(spec.name, self.config.port(spec.name)) for spec in self.services]
        ports = [port for _, port in wanted]
        if len(set(ports)) != len(ports):
            raise StackError(f"two parts of the stack share a port: {wanted}")
        for name, port in wanted:
            if _port_open(self.config.host, port):
                raise StackError(
                    f"port {port} ({name}) is in use by another program: stop it, or choose "
                    f"another port with {port_env(name)}"
                )

    def _prepare_folders(self) -> None:
        for folder in (self.config.var_dir, self.config.run_dir, self.config.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.config.broker_data.mkdir(parents=True, exist_ok=True)
        try:
            self._log_start = self.config.log_file.stat().st_size
        except FileNotFoundError:
            self._log_start = 0
        append_log(self.config.log_file, "hearth", f"up in {self.config.var_dir}")

    def _secrets(self) -> None:
        ensured = ensure_secrets(self.config.secrets_file)
        if ensured.created:
            self._log(f"created {len(ensured.created)} secrets in {ensured.path}")

    def _broker_files(self) -> None:
        settings = broker_config.preset(
            "native",
            base=self.config.var_dir.parent,
            port=self.config.port("broker"),
            persistence_location=self.config.broker_data,
            dynsec_file=self.config.dynsec_file,
        )
        broker_config.write_config(settings, self.config.broker_config)
        result = bootstrap(
            secrets_file=self.config.secrets_file,
            dynsec_file=self.config.dynsec_file,
            offline=True,
        )
        if result.dynsec_file_created:
            self._log(f"created the broker's dynsec file {self.config.dynsec_file}")

    def _postgres(self) -> tuple[PostgresPlan, bool]:
        """Decide on PostgreSQL and start our own if that is the choice; True if started now."""
        cluster = self._own_cluster()
        plan = plan_postgres(
            self.config.postgres_mode,
            self.config.postgres_url,
            cluster.url,
            own_initialized=cluster.initialized,
            have_binaries=find_pg_bindir() is not None,
            answers=server_answers,
        )
        self._log(f"PostgreSQL: {plan.reason}")
        if plan.source == "existing":
            return plan, False
        if cluster.running:
            self._log(f"PostgreSQL: our cluster already runs on port {cluster.port}")
        elif _port_open(self.config.host, cluster.port):
            raise StackError(
                f"port {cluster.port} (our PostgreSQL) is in use by another program: set "
                f"{port_env('own_postgres')}"
            )
        started = not cluster.running
        if cluster.init():
            self._log(f"PostgreSQL: created a cluster in {cluster.data}")
        record = cluster.start(self.config.start_timeout)
        write_record(self.config.record_file(POSTGRES_RECORD), record)
        if started:
            self._log(f"PostgreSQL: started on port {cluster.port} (pid {record.pid})")
        return plan, started

    def _values(self, db_url: str) -> dict[str, str]:
        values = {
            "python": sys.executable,
            "host": self.config.host,
            "database_url": db_url,
            "var_dir": str(self.config.var_dir),
            "secrets_file": str(self.config.secrets_file),
        }
        values.update({f"{name}_port": str(port) for name, port in self.config.ports.items()})
        return values

    def _service_values(self, spec: ServiceSpec, values: Mapping[str, str]) -> dict[str, str]:
        return {**values, "port": str(self.config.port(spec.name))}

    def _write_stack_env(self, values: Mapping[str, str]) -> dict[str, str]:
        env = {
            "HEARTH_VAR_DIR": values["var_dir"],
            "HEARTH_SECRETS_FILE": values["secrets_file"],
            "HEARTH_DATABASE_URL": values["database_url"],
            "HEARTH_BROKER_HOST": values["host"],
        }
        env.update({port_env(name): str(port) for name, port in self.config.ports.items()})
        for spec in self.services:
            env.update(service_env(spec, self._service_values(spec, values)))
        write_private(self.config.stack_env, render_env_file(env))
        return env

    def _migrate(self, values: Mapping[str, str], stack_env: Mapping[str, str]) -> None:
        for spec in self.services:
            if spec.migrate is None:
                continue
            argv = render_args(spec.migrate, self._service_values(spec, values))
            self._log(f"migrating {spec.name}")
            proc = subprocess.run(
                argv,
                cwd=self.config.project_dir,
                env={**os.environ, **stack_env},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            output = (proc.stdout + proc.stderr).strip()
            if output:
                append_log(self.config.log_file, f"migrate-{spec.name}", output)
            if proc.returncode != 0:
                tail = "\n".join(output.splitlines()[-15:])
                raise StackError(
                    f"the migrations of {spec.name} failed (exit {proc.returncode}):\n{tail}"
                )

    def _write_procfile(self, values: Mapping[str, str]) -> None:
        mosquitto = _find_program("mosquitto")
        assert mosquitto is not None  # _check_tools made sure
        entries = [
            ProcfileEntry(
                BROKER,
                (mosquitto, "-c", str(self.config.broker_config)),
                self.config.record_file(BROKER),
            )
        ]
        entries += [
            ProcfileEntry(
                spec.name,
                tuple(render_args(spec.command, self._service_values(spec, values))),
                self.config.record_file(spec.name),
            )
            for spec in self.services
        ]
        self.config.procfile.write_text(render_procfile(entries), encoding="utf-8")

    def _start_runner(self) -> None:
        for name in self._child_names():
            self.config.record_file(name).unlink(missing_ok=True)
        record_file = self.config.record_file(RUNNER)
        record_file.unlink(missing_ok=True)
        honcho = [
            sys.executable, "-m", "honcho", "start", "--no-colour",
            "-f", str(self.config.procfile),
            "-d", str(self.config.project_dir),
            "-e", str(self.config.stack_env),
        ]  # fmt: skip
        launcher = [
            sys.executable, "-m", "hearth.platform.pidexec", "--detach",
            "--log", str(self.config.log_file), str(record_file), RUNNER, "--", *honcho,
        ]  # fmt: skip
        proc = subprocess.run(
            launcher,
            cwd=self.config.project_dir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        runner = self._record(RUNNER)
        if proc.returncode != 0 or runner is None:
            raise StackError(f"cannot start honcho: {proc.stderr.strip()}")
        self._log(f"started honcho (pid {runner.pid}); log {self.config.log_file}")

    def _log_since_up(self) -> str:
        """What the log got since this ``up`` began."""
        try:
            with self.config.log_file.open("rb") as log:
                log.seek(self._log_start)
                return log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self, lines: int = 25) -> str:
        return "\n".join(self._log_since_up().splitlines()[-lines:])

    def _first_exit(self) -> str | None:
        """The process whose exit made honcho stop them all (honcho's first "stopped" line)."""
        match = _STOPPED.search(self._log_since_up())
        return f"{match.group(1)} (exit status {match.group(2)})" if match else None

    def _runner_died(self, exc: BaseException) -> StackError | None:
        """When honcho stopped during ``up`` (a process exited), the error that says which."""
        if isinstance(exc, StackError) or not isinstance(exc, Exception):
            return None
        runner = self._record(RUNNER)
        if runner is None or runner.running():
            return None
        culprit = self._first_exit() or "a process"
        return StackError(
            f"{culprit} exited, so honcho stopped the stack ({type(exc).__name__} meanwhile: "
            f"{exc}); the log's end:\n{self._log_tail()}"
        )

    def _wait_port(self, name: str, port: int) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        delay = 0.01
        while not _port_open(self.config.host, port):
            if not is_running(self._record(RUNNER)):
                culprit = self._first_exit() or "a process"
                raise StackError(
                    f"{culprit} exited, so honcho stopped the stack before {name} listened on "
                    f"port {port}; the log's end:\n{self._log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise StackError(
                    f"{name} did not listen on port {port} within "
                    f"{self.config.start_timeout:g} s; the log's end:\n{self._log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _wait_broker(self) -> None:
        self._wait_port(BROKER, self.config.port("broker"))

    def _bootstrap_online(self) -> None:
        result = bootstrap(
            secrets_file=self.config.secrets_file,
            host=self.config.host,
            port=self.config.port("broker"),
            wait=min(self.config.start_timeout, 5.0),  # it listened a moment ago
        )
        for change in result.changes:
            self._log(f"broker: {change}")

    def _wait_services(self) -> None:
        for spec in self.services:
            self._wait_port(spec.name, self.config.port(spec.name))

    def _print_summary(self, status: StackStatus) -> None:
        word = "up" if status.up else "NOT fully up"
        self.out(f"\nThe Hearth stack is {word} (var: {self.config.var_dir}):")
        for line in status.lines():
            self.out(line)
        if not self.services:
            self.out(
                "  (no services yet: each service's issue adds it to hearth.platform.services)"
            )
        self.out(f"Secrets: {self.config.secrets_file} (mode 0600; never commit it)")
        self.out(f"Logs:    make logs  (or: uv run hearth logs; file {self.config.log_file})")
        self.out("Status:  make status")
        self.out("Stop:    make down   (stops only what make up started)")

    # ----------------------------------------------------------------------- down

    def down(self) -> list[str]:
        """Stop what ``up`` started; return the names of what was stopped ([] if nothing)."""
        with self._locked():
            stopped = [f"{r.name} (pid {r.pid})" for r in self._stop_processes()]
            own = self._stop_own_postgres()
            if own:
                stopped.append(own)
            (self.config.run_dir / STATE_FILE).unlink(missing_ok=True)
        if stopped:
            self._log("stopped " + ", ".join(stopped))
        else:
            self.out("hearth: nothing to stop (the stack is not up)")
        return stopped

    def _stop_processes(self) -> list[ProcessRecord]:
        """Stop honcho and its processes (and any recorded leftover); remove their records.

        Returns what was running. honcho gets SIGTERM and stops its processes itself
        (SIGTERM, SIGKILL after 5 s); whatever of its process tree or of the recorded
        processes still runs after that is stopped here, each checked by identity.
        """
        runner = self._record(RUNNER)
        children = self._recorded_children()
        running = [r for r in (runner, *children) if r is not None and r.running()]
        if runner is not None and runner.running():
            tree = descendants(runner)
            terminate([runner], timeout=HONCHO_GRACE)
            terminate([*tree, *children], timeout=5.0)
        terminate(children, timeout=10.0)
        for record_file in self.config.run_dir.glob("*.json"):
            if record_file.stem != POSTGRES_RECORD and record_file.name != STATE_FILE:
                record_file.unlink(missing_ok=True)
        return running

    def _stop_leftovers(self) -> None:
        """Before a new ``up``: stop processes a dead honcho left behind (a crash, a kill -9)."""
        left = [r for r in self._recorded_children() if r.running()]
        if left:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in left)
            self._log(f"stopping what a previous run left behind: {names}")
        self._stop_processes()

    def _stop_own_postgres(self) -> str | None:
        """Stop the PostgreSQL cluster ``up`` started, if any; never another server."""
        record_file = self.config.record_file(POSTGRES_RECORD)
        record = read_record(record_file)
        if record is None:
            return None
        state = self._state()
        port = state.own_postgres_port if state and state.own_postgres_port else None
        cluster = self._own_cluster(port)
        postmaster = cluster.postmaster()
        if record.running() and postmaster == record:
            try:
                cluster.stop(self.config.start_timeout)
            except StackError as exc:
                self.out(f"hearth: pg_ctl stop failed ({exc}); stopping the postmaster directly")
                terminate([record], timeout=30.0, signum=signal.SIGINT)
            wait_gone([record], 10.0)
        record_file.unlink(missing_ok=True)
        return f"postgres (pid {record.pid})" if not record.running() else None

    # ----------------------------------------------------------------------- status

    def status(self) -> StackStatus:
        """Each part: honcho, the broker, the database and every service, up or down."""
        state = self._state()
        ports = dict(self.config.ports)
        if state is not None:
            ports.update(state.ports)
        host = self.config.host
        parts = [self._process_part(RUNNER, "runner", None, host)]
        parts.append(self._process_part(BROKER, "broker", ports["broker"], host))
        parts.append(self._database_part(state))
        names = state.services if state is not None else [s.name for s in self.services]
        for name in names:
            parts.append(self._process_part(name, "service", ports.get(name), host))
        return StackStatus(self.config.var_dir, tuple(parts))

    def _process_part(
        self,
        name: str,
        kind: Literal["runner", "broker", "database", "service"],
        port: int | None,
        host: str,
    ) -> PartStatus:
        record = self._record(name)
        running = is_running(record)
        pid = record.pid if running and record is not None else None
        address = f"{host}:{port}" if port is not None else None
        listening = port is None or _port_open(host, port)
        detail = ""
        if running and not listening:
            detail = "running, not listening yet"
        elif not running and port is not None and listening:
            detail = "port in use by another program"
        return PartStatus(name, kind, running and listening, address, pid, detail)

    def _database_part(self, state: _State | None) -> PartStatus:
        if state is None:
            url, pid, detail = self.config.postgres_url, None, "not started by hearth"
        else:
            url = state.database_url
            own = read_record(self.config.record_file(POSTGRES_RECORD))
            pid = own.pid if is_running(own) and own is not None else None
            where = "our own cluster" if state.postgres_source == "own" else "existing server"
            detail = f"{shown_url(url)} ({where})"
        host, port = host_port(url)
        address = f"{host}:{port}"
        return PartStatus("database", "database", server_answers(url), address, pid, detail)
