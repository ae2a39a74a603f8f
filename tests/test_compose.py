"""docker-compose.yml and deploy/, checked statically (tests/test_compose_e2e.py runs them).

What must hold for `docker compose up` to start safely: every long-running container has a
health check and starts only after the ones it needs are healthy (or, for the one-shot
bootstrap containers, completed); every secret comes from the generated ``.env`` with no
default; every published port is bound to loopback unless ``HEARTH_BIND_ADDRESS`` opens it;
the broker runs the platform's config, rendered from the one template; the offline
bootstrap runs before the broker and the online one after it is healthy; every service of
the native stack is in compose too, built from the one Dockerfile pattern on a base image
that is a variable defaulting to the official one; the build CA bundle reaches builds only as
a BuildKit secret, never an image.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hearth.platform import broker_config
from hearth.platform.deploy_env import DEPLOY_SECRET_SPECS
from hearth.platform.front_door_routes import routed_services
from hearth.platform.services import SERVICES
from hearth.platform.stack_config import DEFAULT_PORTS, port_env

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "service.Dockerfile"
RENDERED_BROKER_CONFIG = ROOT / "deploy" / "mosquitto" / "hearth.conf"
IMAGES_SCRIPT = ROOT / "deploy" / "images"
OFFLINE = ROOT / "deploy" / "offline"

BIND = "${HEARTH_BIND_ADDRESS:-127.0.0.1}"
"""Every published port's host address: loopback unless the operator opens it."""
PYTHON_IMAGE = "${HEARTH_PYTHON_IMAGE:-python:3.11-slim-bookworm}"
POSTGRES_IMAGE = "${HEARTH_POSTGRES_IMAGE:-postgres:15}"
MOSQUITTO_IMAGE = "${HEARTH_MOSQUITTO_IMAGE:-eclipse-mosquitto:2}"
SECRETS_MOUNT = "${HEARTH_COMPOSE_ENV_FILE:-./.env}"

ONE_SHOT_CONDITION = "service_completed_successfully"
CONDITIONS = {"service_healthy", ONE_SHOT_CONDITION}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY\b|_KEY_")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with a key twice (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: merged keys may be overridden on purpose
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_no_key_appears_twice() -> None:
    """A second ``auth:`` would silently replace the first: the loader refuses it."""
    with pytest.raises(yaml.constructor.ConstructorError, match="'auth' appears twice"):
        _load("services:\n  auth: {image: a}\n  auth: {image: b}\n")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def test_the_expected_containers_and_images(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "mosquitto", "broker-init", "bootstrap"} <= set(services)
    # the official images unless deploy/images chose offline stand-ins
    assert services["mosquitto"]["image"] == MOSQUITTO_IMAGE
    assert services["postgres"]["image"] == POSTGRES_IMAGE
    for name in ("broker-init", "bootstrap", "web"):
        build = services[name]["build"]
        assert build["dockerfile"] == "deploy/service.Dockerfile"
        assert build["args"]["SERVICE"] == "platform"
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["args"]["PYTHON_IMAGE"] == PYTHON_IMAGE, name
        else:
            assert REFERENCE.fullmatch(service["image"]), f"{name}: its image is not a variable"


def test_every_long_running_container_has_a_health_check(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if _one_shot(service):
            assert "ports" not in service, f"one-shot {name} publishes ports"
            continue
        assert service.get("restart") == "unless-stopped", f"{name} is not restarted"
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no health check"
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: health check {test!r}"


def test_every_dependency_waits_for_health_or_completion(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must say which condition"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} cannot become healthy"
            else:
                assert _one_shot(services[target]), f"{target} never completes"


def test_one_shots_are_awaited_by_someone(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        target
        for service in services.values()
        for target, spec in service.get("depends_on", {}).items()
        if spec["condition"] == ONE_SHOT_CONDITION
    }
    assert {name for name, s in services.items() if _one_shot(s)} <= awaited


def test_bootstrap_phases_run_around_the_broker(services: dict[str, dict[str, Any]]) -> None:
    init, broker, online = services["broker-init"], services["mosquitto"], services["bootstrap"]
    # offline phase first: mosquitto reads its dynsec file only at start
    assert broker["depends_on"]["broker-init"]["condition"] == ONE_SHOT_CONDITION
    assert "mosquitto" not in init.get("depends_on", {})
    assert "--offline" in _command(init)
    assert "--dynsec-file /mosquitto/data/dynamic-security.json" in _command(init)
    # online phase once the broker is healthy
    assert online["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert "--offline" not in _command(online)
    assert "--host mosquitto" in _command(online)
    # both read the generated .env as their secrets file, read-only
    for phase in (init, online):
        env = _environment(phase)
        assert f"{SECRETS_MOUNT}:{env['HEARTH_SECRETS_FILE']}:ro" in phase["volumes"]
    # the dynsec file is on the volume the broker persists to
    data_mounts = [v for v in init["volumes"] if v.endswith(":/mosquitto/data")]
    assert data_mounts
    assert data_mounts[0] in broker["volumes"]


def test_the_broker_runs_the_platform_config(services: dict[str, dict[str, Any]]) -> None:
    broker = services["mosquitto"]
    mount = "./deploy/mosquitto/hearth.conf:/mosquitto/config/mosquitto.conf:ro"
    assert mount in broker["volumes"]
    assert any(v.startswith("mosquitto-data:") for v in broker["volumes"])
    assert broker["tmpfs"] == ["/mosquitto/log"]  # else each up leaves an anonymous volume
    expected = broker_config.render(broker_config.preset("docker"))
    assert RENDERED_BROKER_CONFIG.read_text(encoding="utf-8") == expected, (
        "deploy/mosquitto/hearth.conf is stale: uv run hearth broker-config --preset docker "
        "--out deploy/mosquitto/hearth.conf"
    )
    assert "allow_anonymous false" in expected
    assert "listener 1883 0.0.0.0" in expected
    # published on the documented native port by default, never the system broker's 1883
    assert broker["ports"] == [f"{BIND}:${{{port_env('broker')}:-{DEFAULT_PORTS['broker']}}}:1883"]
    healthcheck = " ".join(broker["healthcheck"]["test"])
    assert "test $$? -eq 5" in healthcheck  # healthy = refuses an anonymous client


def test_no_secret_has_a_default_or_a_literal_value(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    ensured = {spec.key for spec in DEPLOY_SECRET_SPECS}
    referenced: set[str] = set()
    for text in _strings(compose):
        for name, operator, _ in REFERENCE.findall(text):
            if SECRET_NAME.search(name):
                assert operator == ":?", f"${{{name}}} must be ${{{name}:?...}} (no default)"
                referenced.add(name)
    assert referenced, "no secret is referenced at all"
    assert referenced <= ensured, f"not created by deploy/make-env: {referenced - ensured}"
    for name, service in services.items():
        for key, value in _environment(service).items():
            secret_key = SECRET_NAME.search(key) and not key.endswith("_FILE")
            if secret_key or "@" in value:
                refs = REFERENCE.findall(value)
                assert refs, f"{name}: {key} has a literal value"
                assert all(op == ":?" for _, op, _ in refs), f"{name}: {key} has a default"


def test_every_native_service_is_in_compose(services: dict[str, dict[str, Any]]) -> None:
    for spec in SERVICES:
        assert spec.name in services, f"{spec.name} is in the native stack but not in compose"
        service = services[spec.name]
        assert service["build"]["dockerfile"] == "deploy/service.Dockerfile"
        assert service["build"]["args"]["SERVICE"] == spec.name
        depends = {k: v["condition"] for k, v in service["depends_on"].items()}
        assert depends == {
            "postgres": "service_healthy",
            "mosquitto": "service_healthy",
            "bootstrap": ONE_SHOT_CONDITION,
        }
        port = DEFAULT_PORTS[spec.name]
        assert service["ports"] == [f"{BIND}:${{{port_env(spec.name)}:-{port}}}:{port}"]


def test_every_service_replica_gets_its_bound_login(services: dict[str, dict[str, Any]]) -> None:
    """Logins are bound to ``<service>-<replica>``: each container names its replica, and the
    bootstrap is given the same name (and the count), so that replica's login exists."""
    bootstrap_env = _environment(services["bootstrap"])
    for spec in SERVICES:
        name = f"HEARTH_{spec.name.upper()}_REPLICA"
        replica = _environment(services[spec.name]).get(name)
        assert replica == f"${{{name}:-0}}", f"{spec.name} does not name its replica"
        assert bootstrap_env[name] == replica
        assert bootstrap_env[f"{name}S"] == f"${{{name}S:-1}}"


def test_the_service_dockerfile_pattern() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG SERVICE$", text, re.MULTILINE)
    syncs = re.findall(r"uv sync [^\n]*", text)
    assert len(syncs) == 2, "two layers: dependencies, then the project"
    assert "--no-install-workspace" in syncs[0]
    assert "--no-install-workspace" not in syncs[1]
    assert all("--frozen" in sync and '--package "hearth-${SERVICE}"' in sync for sync in syncs)
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1] not in ("root", "0")
    assert "COPY . " not in text  # only what is needed: never .env or var/


def test_the_build_context_and_git_never_hold_secrets() -> None:
    ignore = (ROOT / "deploy" / "service.Dockerfile.dockerignore").read_text(encoding="utf-8")
    rules = [line.strip() for line in ignore.splitlines() if line.strip() and line[0] != "#"]
    assert rules[0] == "*"  # everything is excluded, then the few needed paths
    assert not any(rule.startswith("!") and ".env" in rule for rule in rules)
    assert not any(rule in ("!var", "!.venv") for rule in rules)
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in gitignore
    assert "var/" in gitignore


def test_every_published_port_is_on_loopback_unless_opened(
    services: dict[str, dict[str, Any]],
) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"mosquitto", "web", *(spec.name for spec in SERVICES)}
    assert "ports" not in services["postgres"]  # the database is reached inside compose only
    for name in published:
        for port in services[name]["ports"]:
            assert isinstance(port, str), f"{name}: use the short syntax"
            # host address, host port, container port: nothing binds every interface
            shape = rf"{re.escape(BIND)}:\$\{{HEARTH_[A-Z]+_PORT:-\d+\}}:\d+"
            assert re.fullmatch(shape, port), f"{name}: {port} is not bound to loopback"


def _dockerfiles() -> list[Path]:
    return [DOCKERFILE, *sorted(OFFLINE.glob("*.Dockerfile"))]


def test_builds_get_the_ca_bundle_only_as_a_build_secret(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["secrets"] == ["build_ca"], name
        assert "secrets" not in service, f"{name} gets a secret at run time"
    (secret,) = compose["secrets"].values()
    assert list(compose["secrets"]) == ["build_ca"]
    assert secret == {"file": "${HEARTH_BUILD_CA_FILE:-./deploy/no-build-ca.pem}"}
    assert (ROOT / "deploy" / "no-build-ca.pem").read_bytes() == b""
    text = DOCKERFILE.read_text(encoding="utf-8")
    mounts = re.findall(r"--mount=type=secret[^\s\\]*", text)
    assert mounts, "the service image's downloads need the CA secret"
    assert set(mounts) == {"--mount=type=secret,id=build_ca"}  # default target, never env
    for dockerfile in _dockerfiles():
        text = dockerfile.read_text(encoding="utf-8")
        # never baked in: no file copied in, no variable pointing at it in an image
        assert not re.search(r"^(COPY|ADD)\b.*\.(pem|crt)\b", text, re.MULTILINE), dockerfile
        assert not re.search(
            r"^ENV\b.*(SSL_CERT_FILE|PIP_CERT|REQUESTS_CA_BUNDLE)", text, re.MULTILINE
        ), dockerfile
        # a `# syntax=` line would make BuildKit pull a frontend image
        assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE), dockerfile


def test_the_python_base_is_an_argument_defaulting_to_the_official_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, re.MULTILINE)
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.MULTILINE)
    names = {name for _, name in stages if name}
    assert stages
    assert all(base == "${PYTHON_IMAGE}" or base in names for base, _ in stages), stages


def _offered_images() -> list[tuple[str, str, str, str]]:
    """deploy/images' table: compose key, official image, stand-in image, stand-in service."""
    text = IMAGES_SCRIPT.read_text(encoding="utf-8")
    rows = re.findall(r'^\s+"(HEARTH_[A-Z_]+)\|([^|]+)\|([^|]+)\|([^|"]+)"$', text, re.MULTILINE)
    return [(key, official, stand_in, service) for key, official, stand_in, service in rows]


def test_deploy_images_offers_stand_ins_for_every_base_image_compose_uses(
    services: dict[str, dict[str, Any]],
) -> None:
    offered = _offered_images()
    defaults = {
        PYTHON_IMAGE,
        services["postgres"]["image"],
        services["mosquitto"]["image"],
    }
    assert {f"${{{key}:-{official}}}" for key, official, _, _ in offered} == defaults
    stand_ins = _load((OFFLINE / "compose.yml").read_text(encoding="utf-8"))["services"]
    assert set(stand_ins) == {service for *_, service in offered}
    for _, official, stand_in, service in offered:
        assert stand_ins[service]["image"] == stand_in
        assert stand_in == f"hearth-offline/{official}"  # the official name, our namespace
        assert (OFFLINE / stand_ins[service]["build"]["dockerfile"]).is_file()


def test_the_mosquitto_stand_in_keeps_what_the_broker_config_needs() -> None:
    config = broker_config.render(broker_config.preset("docker"))
    plugin = re.search(r"^plugin (\S+)$", config, re.MULTILINE)
    assert plugin is not None
    dockerfile = (OFFLINE / "mosquitto.Dockerfile").read_text(encoding="utf-8")
    assert f'ln -s "$plugin" {plugin.group(1)}' in dockerfile
    assert "--uid 1883 --gid 1883" in dockerfile  # broker-init hands the volume to 1883
    assert 'CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]' in dockerfile


def _compose_v2() -> bool:
    try:
        found = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


def test_one_variable_opens_every_published_port(tmp_path: Path) -> None:
    """Rendered by compose itself (no engine needed): unset, every port is on 127.0.0.1;
    ``HEARTH_BIND_ADDRESS=0.0.0.0`` opens them all."""
    if not _compose_v2():
        pytest.skip("docker compose v2 is not installed (scripts/install-tools adds it)")
    env_file = tmp_path / "config.env"
    env_file.write_text("".join(f"{s.key}=x\n" for s in DEPLOY_SECRET_SPECS), encoding="utf-8")

    def host_ips(bind: str | None) -> set[str]:
        env = {k: v for k, v in os.environ.items() if k != "HEARTH_BIND_ADDRESS"}
        if bind is not None:
            env["HEARTH_BIND_ADDRESS"] = bind
        rendered = subprocess.run(
            ["docker", "compose", "--env-file", str(env_file), "config", "--format", "json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        config = json.loads(rendered.stdout)
        return {
            port["host_ip"]
            for service in config["services"].values()
            for port in service.get("ports", [])
        }

    assert host_ips(None) == {"127.0.0.1"}
    assert host_ips("0.0.0.0") == {"0.0.0.0"}  # noqa: S104 - the operator's explicit choice


def test_the_front_door_is_in_compose(services: dict[str, dict[str, Any]]) -> None:
    """``web`` renders the route table for the compose network and runs nginx after every
    service it routes to is healthy, on the web port."""
    web = services["web"]
    command = _command(web)
    assert command.startswith("hearth front-door --compose")
    assert command.endswith("--run")
    routed = set(routed_services())
    assert {k for k, v in web["depends_on"].items() if v["condition"] == "service_healthy"} == (
        routed
    )
    assert routed <= set(services)
    port = DEFAULT_PORTS["web"]
    assert web["ports"] == [f"{BIND}:${{{port_env('web')}:-{port}}}:{port}"]
    assert "nginx-light" in web["build"]["args"]["APT_PACKAGES"].split()
    env = _environment(web)
    assert {"HEARTH_TLS", "HEARTH_WEB_CORS_ORIGINS"} <= set(env)
