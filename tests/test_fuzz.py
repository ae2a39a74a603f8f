"""Fuzzing every operation of every service with schemathesis: no input answers 500.

The four services run for real (uvicorn on free ports, their own databases, the session's
Mosquitto). The ``st`` command (schemathesis, run as a separate process like a person
would) reads each service's ``/openapi.json`` and sends, per operation and per caller:

- the **coverage** phase: every documented bound and its neighbours (lengths, minimums,
  maximums, missing and extra fields, wrong types), positive and negative;
- the **fuzzing** phase: Hypothesis-generated cases, NUL allowed in strings;
- the hooks of ``tests/fuzz_hooks.py`` on top: a NUL put into one string, one integer at or
  past what PostgreSQL holds, or the path parameters pointed at a real home, device and
  throwaway user so fuzzed bodies reach the database.

Callers: the admin and a plain user (owner of the home the hooks point at). The routes
that end the caller's own sessions (``POST /auth/logout-everywhere``, ``POST
/auth/users/me/password``) run in a pass of their own with throwaway users' tokens, and
``PATCH /auth/users/{user_id}`` is pointed at a throwaway user. The one check is
``not_a_server_error``; the test prints how many cases ran (quoted in the issue's note).

The schema test (``test_responses_conform_to_the_openapi``) runs the same cases with the
conformance checks instead: every response's content type (problem+json for errors), body
and status must be what the service's OpenAPI documents (:mod:`hearth.common.openapi_problems`).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hearth.auth.config import AuthSettings
from hearth.auth.main import create_app as create_auth_app
from hearth.ingest.config import IngestSettings
from hearth.ingest.main import create_app as create_ingest_app
from hearth.realtime.config import RealtimeSettings
from hearth.realtime.main import create_app as create_realtime_app
from hearth.registry.config import RegistrySettings
from hearth.registry.main import create_app as create_registry_app
from hearth.testing.apps import RunningApp, serve_app
from hearth.testing.broker import RunningBroker
from hearth.testing.database import PostgresServer

pytestmark = pytest.mark.slow

ADMIN = "fuzz-admin"
PASSWORD = "fuzz-password-123"
MAX_EXAMPLES = 12
"""Hypothesis cases per operation and caller in the fuzzing phase (the coverage phase adds
its own boundary cases on top)."""
SELF_ENDING = ("/auth/logout-everywhere", "/auth/users/me/password")


def _st() -> str:
    script = Path(sys.executable).with_name("st")
    assert script.exists(), "schemathesis is in the dev group: uv sync --all-packages"
    return str(script)


@dataclass
class Platform:
    """The four running services and the callers' tokens."""

    urls: dict[str, str]
    tokens: dict[str, str] = field(repr=False)
    home: str = ""
    device: str = ""
    throwaway_id: str = ""
    apps: list[RunningApp] = field(default_factory=list)


def _common(broker: RunningBroker, tmp: Path, service: str) -> dict[str, Any]:
    replica = f"fuzz-{secrets.token_hex(3)}"
    return {
        "env": "test",
        "secrets_file": tmp / "no-secrets.env",
        "replica": replica,
        "mqtt_host": broker.host,
        "mqtt_port": broker.port,
        "mqtt_password": broker.service_login(service, replica).password,
        "log_level": "ERROR",
    }


def _token(auth_url: str, username: str, password: str = PASSWORD) -> str:
    response = httpx.post(
        f"{auth_url}/auth/token", data={"username": username, "password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _user(auth_url: str, admin_token: str, prefix: str) -> tuple[str, str]:
    """A new plain user: (id, access token)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{auth_url}/auth/users",
        json={"username": name, "password": PASSWORD},
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], _token(auth_url, name)


@pytest.fixture(scope="module")
def platform(
    postgres_server: PostgresServer, broker: RunningBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    tmp = tmp_path_factory.mktemp("fuzz")
    databases = [postgres_server.create_database() for _ in range(3)]
    apps: list[RunningApp] = []
    try:
        auth = serve_app(
            create_auth_app(
                AuthSettings(
                    **_common(broker, tmp, "auth"),
                    database_url=databases[0],
                    key_encryption_key=secrets.token_urlsafe(32),
                    admin_username=ADMIN,
                    admin_password=PASSWORD,
                    password_time_cost=1,
                    password_memory_kib=1024,
                )
            ),
            wait_path="/readyz",
        )
        apps.append(auth)
        jwks = f"{auth.url}/.well-known/jwks.json"
        registry = serve_app(
            create_registry_app(
                RegistrySettings(
                    **_common(broker, tmp, "registry"),
                    database_url=databases[1],
                    device_key=secrets.token_urlsafe(32),
                    reconcile_at_start=False,  # the session broker holds others' device logins
                    jwks_url=jwks,
                    auth_url=auth.url,
                )
            ),
            wait_path="/readyz",
        )
        apps.append(registry)
        ingest = serve_app(
            create_ingest_app(
                IngestSettings(
                    **_common(broker, tmp, "ingest"),
                    database_url=databases[2],
                    jwks_url=jwks,
                    registry_url=registry.url,
                )
            ),
            wait_path="/readyz",
        )
        apps.append(ingest)
        realtime = serve_app(
            create_realtime_app(
                RealtimeSettings(
                    **_common(broker, tmp, "realtime"), jwks_url=jwks, registry_url=registry.url
                )
            ),
            wait_path="/readyz",
        )
        apps.append(realtime)

        admin = _token(auth.url, ADMIN)
        _, user = _user(auth.url, admin, "fuzz-user")
        throwaway_id, _ = _user(auth.url, admin, "fuzz-throwaway")
        owner = {"Authorization": f"Bearer {user}"}
        home = f"fuzz-{uuid.uuid4().hex[:8]}"
        made = httpx.post(
            f"{registry.url}/registry/homes", json={"slug": home, "name": "Fuzz"}, headers=owner
        )
        assert made.status_code == 201, made.text
        made = httpx.post(
            f"{registry.url}/registry/homes/{home}/devices",
            json={"slug": "lamp", "name": "Lamp", "type": "light"},
            headers=owner,
        )
        assert made.status_code == 201, made.text
        yield Platform(
            urls={
                "auth": auth.url,
                "registry": registry.url,
                "ingest": ingest.url,
                "realtime": realtime.url,
            },
            tokens={"admin": admin, "user": user},
            home=home,
            device="lamp",
            throwaway_id=throwaway_id,
            apps=apps,
        )
    finally:
        for app in reversed(apps):
            app.stop()
        for url in databases:
            postgres_server.drop_database(url)


@dataclass
class FuzzRun:
    """What one ``st run`` did, from its JSON run report."""

    cases: int
    operations: int
    failures: list[Any]
    errors: list[Any]
    exit_code: int
    output: str

    def assert_no_server_error(self) -> None:
        assert self.operations > 0, self.output
        assert self.cases >= self.operations, self.output
        assert self.failures == [], self.output
        assert self.errors == [], self.output
        assert self.exit_code == 0, self.output


def _fuzz(
    platform: Platform,
    service: str,
    token: str,
    tmp: Path,
    *filters: str,
    checks: str = "not_a_server_error",
) -> FuzzRun:
    report = tmp / f"{service}-{uuid.uuid4().hex[:6]}.json"
    seed = random.randrange(2**31)
    command = [
        _st(),
        "run",
        f"{platform.urls[service]}/openapi.json",
        "--phases=examples,coverage,fuzzing",
        f"--checks={checks}",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={seed}",
        "--generation-database=none",
        "--generation-allow-x00=true",
        "--suppress-health-check=all",
        "--request-timeout=20",
        "--workers=1",
        "--no-color",
        "--report=json",
        f"--report-json-path={report}",
        f"--header=Authorization: Bearer {token}",
        *filters,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "PYTHONPATH": str(Path(__file__).parent),
        "FUZZ_HOME": platform.home,
        "FUZZ_DEVICE": platform.device,
        "FUZZ_USER_ID": platform.throwaway_id,
    }
    proc = subprocess.run(
        command, cwd=tmp, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    output = f"st run (seed {seed}):\n{proc.stdout}\n{proc.stderr}".replace(token, "<token>")
    assert report.exists(), output
    data = json.loads(report.read_text())
    return FuzzRun(
        cases=int(data["test_cases"]["generated"]),
        operations=int(data["operations"]["tested"]),
        failures=list(data["failures"]),
        errors=list(data["errors"]),
        exit_code=proc.returncode,
        output=output,
    )


CALLERS = ("admin", "user")
SERVICES = ("auth", "registry", "ingest", "realtime")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("service", SERVICES)
def test_no_operation_answers_500(
    platform: Platform, tmp_path: Path, service: str, caller: str
) -> None:
    exclude = [f"--exclude-path={path}" for path in SELF_ENDING] if service == "auth" else []
    run = _fuzz(platform, service, platform.tokens[caller], tmp_path, *exclude)
    print(f"\nfuzz {service} as {caller}: {run.cases} cases over {run.operations} operations")
    run.assert_no_server_error()


@pytest.mark.parametrize("caller", CALLERS)
def test_self_ending_routes_with_throwaway_callers(
    platform: Platform, tmp_path: Path, caller: str
) -> None:
    """``logout-everywhere`` and a password change end the caller's own sessions: they run
    with a throwaway user's token (a throwaway admin's for the admin), never the others'."""
    admin = platform.tokens["admin"]
    user_id, token = _user(platform.urls["auth"], admin, f"fuzz-{caller}-end")
    if caller == "admin":
        made = httpx.patch(
            f"{platform.urls['auth']}/auth/users/{user_id}",
            json={"roles": ["admin"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 200, made.text
    includes = [f"--include-path={path}" for path in SELF_ENDING]
    run = _fuzz(platform, "auth", token, tmp_path, *includes)
    print(f"\nfuzz auth self-ending as throwaway {caller}: {run.cases} cases")
    assert run.operations == len(SELF_ENDING), run.output
    run.assert_no_server_error()


CONFORMANCE = "content_type_conformance,response_schema_conformance,status_code_conformance"
"""What the schema test checks on every response: its content type, its body against the
documented schema, and its status among the documented ones."""


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("service", SERVICES)
def test_responses_conform_to_the_openapi(
    platform: Platform, tmp_path: Path, service: str, caller: str
) -> None:
    exclude = [f"--exclude-path={path}" for path in SELF_ENDING] if service == "auth" else []
    run = _fuzz(platform, service, platform.tokens[caller], tmp_path, *exclude, checks=CONFORMANCE)
    print(f"\nconformance {service} as {caller}: {run.cases} cases, {len(run.failures)} failures")
    run.assert_no_server_error()
