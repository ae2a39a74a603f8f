"""The whole Hearth platform in Docker for tests: Hearth's own compose tests and downstream CI.

:class:`HearthPlatform` runs Hearth's own ``docker-compose.yml`` through testcontainers-python's
``DockerCompose``, so what a test talks to is exactly what operators run: every service built
from the checkout, PostgreSQL and Mosquitto, health-checked. Each platform is a compose
project of its own (``hearth-test-<random>``) with fresh secrets and ports on 127.0.0.1 that
the engine picks; :meth:`HearthPlatform.stop` runs ``down --volumes``, which removes its
containers, its network and its volumes. Tests send traffic only to loopback (the published
ports) and to that network.

A downstream project uses the pytest plugin (docs/testing-with-hearth.md)::

    # conftest.py
    pytest_plugins = ["hearth.testing.containers"]

    # test_my_app.py
    def test_my_app(hearth_platform):
        home = hearth_platform.create_home()
        device = hearth_platform.create_device(home["slug"], "sensor")
        ...

Fixtures: ``hearth_docker_engine`` (session: a reachable engine, dockerd started when needed
and possible, stopped afterwards if this session started it; the test is skipped, saying why,
when no engine can run) and ``hearth_platform`` (session: a started :class:`HearthPlatform`).

Environment: ``HEARTH_SOURCE`` names the Hearth checkout (``docker-compose.yml``, ``deploy/``,
``services/``; default: the nearest folder above the working directory that has them);
``HEARTH_IMAGES`` says where base images come from (:data:`ImagesMode`, default ``auto``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import httpx
import pytest
from testcontainers.compose import DockerCompose

from hearth.platform.deploy_env import POSTGRES_PASSWORD_KEY, ensure_deploy_env
from hearth.platform.secrets import read_secrets
from hearth.platform.services import SERVICES
from hearth.platform.stack_config import DEFAULT_PORTS, port_env

__all__ = [
    "DOCKERD_LOG",
    "AdminLogin",
    "Device",
    "DockerEngine",
    "EngineUnavailable",
    "HearthPlatform",
    "HearthUrls",
    "ImagesMode",
    "docker_volumes",
    "find_source",
    "hearth_docker_engine",
    "hearth_platform",
    "images_mode",
]

HOST = "127.0.0.1"
"""Where the platform's ports are published, and so where tests connect: loopback only."""

DOCKERD_LOG = Path("/var/log/hearth-dockerd.log")
"""Where the output of a dockerd that :meth:`DockerEngine.ensure` starts goes."""

ImagesMode = Literal["auto", "offline", "official"]
"""Where the base images come from: ``official`` lets compose pull python, postgres and
eclipse-mosquitto as operators do; ``auto`` runs ``deploy/images`` (the official images when
present or pullable, else offline stand-ins built from Debian); ``offline`` runs
``deploy/images --offline`` (the official images only when already present, never a pull)."""

PUBLISHED: Mapping[str, tuple[str, int]] = {
    "broker": ("mosquitto", 1883),
    **{spec.name: (spec.name, DEFAULT_PORTS[spec.name]) for spec in SERVICES},
    "web": ("web", DEFAULT_PORTS["web"]),
}
"""The parts docker-compose.yml publishes (each on ``HEARTH_<NAME>_PORT``): the compose
service of each and the port it listens on inside its container."""

_ADMIN_USERNAME_KEY = "HEARTH_AUTH_ADMIN_USERNAME"
_ADMIN_PASSWORD_KEY = "HEARTH_AUTH_ADMIN_PASSWORD"  # noqa: S105 - a key name, not a value
_DEFAULT_ADMIN_USERNAME = "admin"  # docker-compose.yml's default


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none can be started here; the message says why."""


def _docker_answers(timeout: float = 15.0) -> bool:
    try:
        result = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@dataclass
class DockerEngine:
    """A Docker engine this process may use; ``process`` is the dockerd it started, if any."""

    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def ensure(cls, start_timeout: float = 90.0) -> DockerEngine:
        """The engine that answers, else a dockerd started now (as root), else
        :class:`EngineUnavailable` saying why."""
        if shutil.which("docker") is None:
            raise EngineUnavailable("the docker command is not installed")
        if _docker_answers():
            return cls()
        if os.environ.get("DOCKER_HOST"):
            raise EngineUnavailable(f"DOCKER_HOST={os.environ['DOCKER_HOST']} does not answer")
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise EngineUnavailable(
                "no Docker engine answers and dockerd is not installed "
                "(scripts/install-tools installs Debian's docker.io when run as root)"
            )
        if os.geteuid() != 0:
            raise EngineUnavailable("no Docker engine answers and starting dockerd needs root")
        DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with DOCKERD_LOG.open("ab") as log:
            process = subprocess.Popen(
                [dockerd],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        engine = cls(process)
        deadline = time.monotonic() + start_timeout
        while not _docker_answers():
            if process.poll() is not None or time.monotonic() > deadline:
                engine.stop()
                tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-15:]
                raise EngineUnavailable(
                    f"dockerd did not start (exit status {process.returncode}); "
                    f"the end of {DOCKERD_LOG}:\n" + "\n".join(tail)
                )
            time.sleep(0.5)
        return engine

    @property
    def started(self) -> bool:
        """Whether this process started the engine (and :meth:`stop` will stop it)."""
        return self.process is not None

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the dockerd this process started (SIGTERM, then SIGKILL), unless containers
        still run on it (another test session's or an operator's: left running, said on
        stderr); an engine this process did not start is never touched."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        running = subprocess.run(
            ["docker", "ps", "--quiet"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.split()
        if running:
            print(
                f"hearth.testing.containers: dockerd (pid {process.pid}) left running: "
                f"{len(running)} container(s) still run on it",
                file=sys.stderr,
            )
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def docker_volumes() -> set[str]:
    """Every volume the engine has, named or anonymous (to check that a test left none)."""
    listing = subprocess.run(
        ["docker", "volume", "ls", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(listing.stdout.split())


def find_source(start: Path | None = None) -> Path:
    """The Hearth checkout: ``$HEARTH_SOURCE``, else the nearest folder at or above ``start``
    (the working directory) with ``docker-compose.yml`` and ``deploy/service.Dockerfile``."""
    given = os.environ.get("HEARTH_SOURCE")
    candidates = [Path(given)] if given else [(start or Path.cwd()).resolve()]
    if not given:
        candidates += list(candidates[0].parents)
    for folder in candidates:
        if (folder / "docker-compose.yml").is_file() and (
            folder / "deploy" / "service.Dockerfile"
        ).is_file():
            return folder.resolve()
    where = f"HEARTH_SOURCE={given}" if given else f"{candidates[0]} or above"
    raise FileNotFoundError(f"no Hearth checkout (docker-compose.yml, deploy/) at {where}")


@dataclass(frozen=True, slots=True)
class AdminLogin:
    """The platform admin's username and password (auth's first admin)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class HearthUrls:
    """Where the platform answers, on loopback."""

    auth: str
    registry: str
    ingest: str
    realtime: str
    broker_host: str
    broker_port: int
    web: str = ""
    """The front door: every API, Socket.IO and the docs on one origin."""


@dataclass(frozen=True, slots=True)
class Device:
    """A device the registry created: its home, slug, the API's answer, and its broker login.

    ``credentials`` is the ``credentials`` object of the registry's 201 answer: the device's
    broker login (``username``, ``password``, ``client_id``; docs/devices.md).
    """

    home: str
    slug: str
    data: Mapping[str, Any]
    credentials: Mapping[str, Any] | None


class HearthPlatform:
    """Hearth's docker-compose.yml as one compose project of a test's own.

    ``source`` is the Hearth checkout, ``workdir`` a private folder for the project's
    ``compose.env`` (its secrets, ports and image choices; mode 0600). :meth:`start` chooses
    the base images (``images``), builds the services' images (BuildKit's cache makes an
    unchanged build quick), brings everything up and waits until every container is healthy;
    :meth:`stop` removes the containers, the network and the volumes.
    """

    def __init__(
        self,
        source: Path,
        workdir: Path,
        *,
        images: ImagesMode = "auto",
        project: str | None = None,
    ) -> None:
        if images not in get_args(ImagesMode):
            raise ValueError(f"images={images!r}: use one of {', '.join(get_args(ImagesMode))}")
        self.source = source
        self.workdir = workdir
        self.images = images
        self.project = project or f"hearth-test-{secrets.token_hex(4)}"
        self.env_file = workdir / "compose.env"
        self.compose = DockerCompose(
            context=str(source), env_file=str(self.env_file), build=True, wait=True
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Write the env file, choose the base images, build, ``up --wait``.

        A failure raises :class:`RuntimeError` with compose's error and the containers' logs
        (the project is left for :meth:`stop` to remove).
        """
        self._write_env(self._base_images())
        try:
            self.compose.start()
        except subprocess.CalledProcessError as error:
            raise RuntimeError(self._failure("docker compose up", error)) from None

    def stop(self) -> None:
        """``down --volumes``: the containers, the network and the volumes go."""
        if self.env_file.exists():
            self.compose.stop(down=True)

    def __enter__(self) -> HearthPlatform:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def run(
        self, *args: str, timeout: float = 300.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker compose <args>`` on this project (``input`` on its standard input);
        raise with its output if it fails."""
        command = [*self.compose.docker_compose_command(), *args]
        result = subprocess.run(
            command,
            cwd=self.source,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"docker compose {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def _base_images(self) -> dict[str, str]:
        if self.images == "official":
            return {}
        command = [str(self.source / "deploy" / "images")]
        if self.images == "offline":
            command.append("--offline")
        result = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"deploy/images failed:\n{result.stderr[-4000:]}")
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def _write_env(self, images: Mapping[str, str]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ensure_deploy_env(self.env_file)  # every secret compose needs, fresh and random
        settings = {
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_BAKE": "false",  # compose's own BuildKit client: no buildx plugin needed
            "HEARTH_COMPOSE_ENV_FILE": str(self.env_file),
            "HEARTH_BIND_ADDRESS": HOST,
            # 0: the engine picks a free port as it publishes (no race with other programs);
            # a restarted container may get another one: read them from `urls`
            **{port_env(name): "0" for name in PUBLISHED},
            # what the registry's config download names (0 is no port a device could use);
            # the tests read the broker's real published port from `urls`
            "HEARTH_DEVICE_BROKER_PORT": "1884",
            **images,
        }
        with self.env_file.open("a", encoding="utf-8") as env:
            env.write("# test settings (hearth.testing.containers)\n")
            env.writelines(f"{key}={value}\n" for key, value in settings.items())

    def _failure(self, what: str, error: subprocess.CalledProcessError) -> str:
        stderr = error.stderr.decode(errors="replace") if error.stderr else ""
        try:
            logs, _ = self.compose.get_logs()
        except subprocess.CalledProcessError:
            logs = "(no logs)"
        return f"{what} failed:\n{stderr[-4000:]}\n--- container logs ---\n{logs[-8000:]}"

    # -- what tests use -------------------------------------------------------------------

    def secret(self, key: str) -> str:
        """A value of the project's generated secrets (``HEARTH_BROKER_ADMIN_PASSWORD``...)."""
        return read_secrets(self.env_file)[key]

    @property
    def postgres_password(self) -> str:
        """The password of the compose PostgreSQL's role ``hearth``."""
        return self.secret(POSTGRES_PASSWORD_KEY)

    def port(self, name: str) -> int:
        """The host port of published part ``name`` (``broker``, ``auth``...) as the engine
        publishes it now (a restarted container may have another one)."""
        service, inside = PUBLISHED[name]
        container = self.compose.get_container(service)
        published = container.get_publisher(by_port=inside, by_host=HOST).PublishedPort
        if published is None:
            raise RuntimeError(f"{name} publishes no port in {self.project}")
        return published

    @property
    def ports(self) -> dict[str, int]:
        """The host port of every published part, as the engine publishes them now."""
        found = {c.Service: c for c in self.compose.get_containers()}
        missing = {service for service, _ in PUBLISHED.values()} - set(found)
        if missing:
            raise RuntimeError(f"not running in {self.project}: {', '.join(sorted(missing))}")
        ports: dict[str, int] = {}
        for name, (service, inside) in PUBLISHED.items():
            published = found[service].get_publisher(by_port=inside, by_host=HOST).PublishedPort
            if published is None:
                raise RuntimeError(f"{name} publishes no port in {self.project}")
            ports[name] = published
        return ports

    @property
    def urls(self) -> HearthUrls:
        """Where each service and the broker answer now (loopback, this project's ports)."""
        ports = self.ports

        def http(name: str) -> str:
            return f"http://{HOST}:{ports[name]}"

        return HearthUrls(
            auth=http("auth"),
            registry=http("registry"),
            ingest=http("ingest"),
            realtime=http("realtime"),
            broker_host=HOST,
            broker_port=ports["broker"],
            web=http("web"),
        )

    @property
    def admin(self) -> AdminLogin:
        """The platform admin's login (generated for this project)."""
        values = read_secrets(self.env_file)
        username = values.get(_ADMIN_USERNAME_KEY) or _DEFAULT_ADMIN_USERNAME
        return AdminLogin(username, values[_ADMIN_PASSWORD_KEY])

    def token(self, login: AdminLogin | None = None) -> str:
        """A fresh access token (the password grant at auth); the admin's by default."""
        login = login or self.admin
        response = httpx.post(
            f"{self.urls.auth}/auth/token",
            data={"username": login.username, "password": login.password},
            timeout=30.0,
        )
        response.raise_for_status()
        return cast(str, response.json()["access_token"])

    def _registry(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        response = httpx.post(
            f"{self.urls.registry}/registry/{path}",
            json=dict(body),
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30.0,
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST /registry/{path}: {response.status_code} {response.text}")
        return cast(dict[str, Any], response.json())

    def create_home(self, slug: str | None = None, name: str = "Test home") -> dict[str, Any]:
        """The admin creates a home (and becomes its owner); the registry's answer."""
        return self._registry(
            "homes", {"slug": slug or f"home-{secrets.token_hex(4)}", "name": name}
        )

    def create_device(self, home: str, slug: str, **fields: Any) -> Device:
        """The admin adds device ``slug`` to ``home`` through the registry's API.

        ``fields`` are the rest of the request (``name``, ``type``, ``interval``,
        ``metrics``...; ``name`` defaults to the slug). The device's broker login is
        ``Device.credentials``; no other path creates one.
        """
        body = {"slug": slug, "name": fields.pop("name", slug), **fields}
        data = self._registry(f"homes/{home}/devices", body)
        return Device(home, slug, data, data.get("credentials"))


# --------------------------------------------------------------------------- pytest plugin


@pytest.fixture(scope="session")
def hearth_docker_engine() -> Iterator[DockerEngine]:
    """A reachable Docker engine (dockerd started if needed and possible; stopped after if
    this session started it). Skips, saying why, when no engine can run here."""
    try:
        engine = DockerEngine.ensure()
    except EngineUnavailable as unavailable:
        pytest.skip(f"no Docker engine: {unavailable}")
    try:
        yield engine
    finally:
        engine.stop()


def images_mode(default: ImagesMode = "auto") -> ImagesMode:
    """``$HEARTH_IMAGES`` (:data:`ImagesMode`), else ``default``."""
    mode = os.environ.get("HEARTH_IMAGES") or default
    if mode not in get_args(ImagesMode):
        raise pytest.UsageError(f"HEARTH_IMAGES={mode!r}: use auto, offline or official")
    return cast(ImagesMode, mode)


@pytest.fixture(scope="session")
def hearth_platform(
    hearth_docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HearthPlatform]:
    """The whole platform, started once for the session and removed after it."""
    platform = HearthPlatform(
        find_source(), tmp_path_factory.mktemp("hearth-platform"), images=images_mode()
    )
    with platform:
        yield platform
