"""The broker bootstrap against a real Mosquitto: idempotent, self-repairing, restoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hearth.platform.bootstrap import bootstrap, init_dynsec_file
from hearth.platform.errors import BootstrapError, BrokerUnavailable
from hearth.platform.logins import PLATFORM_SERVICES
from hearth.platform.secrets import ADMIN_PASSWORD_KEY, mqtt_password_key
from hearth.testing.broker import ConnectRefused, Login, RunningBroker, connect_client
from hearth.testing.ports import free_port


def snapshot(broker: RunningBroker) -> dict[str, Any]:
    """The broker's whole dynsec state, normalised for comparison."""
    with broker.control() as dynsec:
        access, roles, clients, groups = dynsec.run(
            [
                {"command": "getDefaultACLAccess"},
                {"command": "listRoles", "verbose": True},
                {"command": "listClients", "verbose": True},
                {"command": "listGroups", "verbose": True},
            ]
        )
    return {
        "access": sorted(json.dumps(a, sort_keys=True) for a in access["acls"]),
        "roles": {
            r["rolename"]: (
                r.get("textname"),
                sorted(json.dumps(a, sort_keys=True) for a in r["acls"]),
            )
            for r in roles["roles"]
        },
        "clients": {c["username"]: json.dumps(c, sort_keys=True) for c in clients["clients"]},
        "groups": json.dumps(groups, sort_keys=True),
    }


def _can_log_in(broker: RunningBroker, login: Login) -> bool:
    try:
        connect_client(broker.host, broker.port, login).close()
    except ConnectRefused:
        return False
    return True


def _set_secret(broker: RunningBroker, key: str, value: str) -> None:
    text = broker.secrets_file.read_text()
    old = broker.secrets[key]
    broker.secrets_file.write_text(text.replace(f"{key}={old}", f"{key}={value}"))


def test_bootstrap_made_every_service_login_and_role(fresh_broker: RunningBroker) -> None:
    state = snapshot(fresh_broker)
    assert set(state["roles"]) == {"admin"} | {f"svc-{s}" for s in PLATFORM_SERVICES}
    assert set(state["clients"]) == {"hearth-admin"} | {f"svc-{s}" for s in PLATFORM_SERVICES}
    for service in PLATFORM_SERVICES:
        client = json.loads(state["clients"][f"svc-{service}"])
        assert client["roles"] == [{"rolename": f"svc-{service}"}]
        assert "clientid" not in client  # shared by every replica: not bound
        assert _can_log_in(fresh_broker, fresh_broker.service_login(service))
    assert '"acltype": "publishClientReceive", "allow": false' in " ".join(state["access"])


def test_second_bootstrap_changes_nothing(fresh_broker: RunningBroker) -> None:
    before = snapshot(fresh_broker)
    file_before = fresh_broker.dynsec_file.read_bytes()
    result = fresh_broker.bootstrap()
    assert result.online
    assert result.changes == []
    assert not result.changed
    assert snapshot(fresh_broker) == before
    assert fresh_broker.dynsec_file.read_bytes() == file_before  # not even a new hash


def test_bootstrap_repairs_drift_and_follows_the_secrets_file(
    fresh_broker: RunningBroker,
) -> None:
    baseline = snapshot(fresh_broker)
    old_registry = fresh_broker.service_login("registry")
    with fresh_broker.control() as dynsec:
        dynsec.run(
            [
                {
                    "command": "setDefaultACLAccess",
                    "acls": [{"acltype": "subscribe", "allow": True}],
                },
                {
                    "command": "removeRoleACL",
                    "rolename": "svc-ingest",
                    "acltype": "subscribeLiteral",
                    "topic": "$share/ingest/hearth/+/+/telemetry/#",
                },
                {
                    "command": "addRoleACL",
                    "rolename": "svc-realtime",
                    "acltype": "publishClientSend",
                    "topic": "hearth/#",
                    "allow": True,
                },
                {"command": "disableClient", "username": "svc-auth"},
                {"command": "modifyClient", "username": "svc-ingest", "clientid": "ingest-1"},
                {"command": "addClientRole", "username": "svc-ingest", "rolename": "svc-realtime"},
                {"command": "createGroup", "groupname": "extra"},
                {"command": "addGroupClient", "groupname": "extra", "username": "svc-realtime"},
            ]
        )
    _set_secret(fresh_broker, mqtt_password_key("registry"), "a-new-registry-password-1234")

    result = fresh_broker.bootstrap()
    assert set(result.changes) == {
        "set default ACL access",
        "updated role svc-ingest (+1 -0 ACLs)",
        "updated role svc-realtime (+0 -1 ACLs)",
        "enabled login svc-auth",
        "unbound login svc-ingest from a client id",
        "removed role svc-realtime from svc-ingest",
        "removed svc-realtime from group extra",
        "reset password of svc-registry",
    }
    after = snapshot(fresh_broker)
    for part in ("access", "roles", "clients"):
        assert after[part] == baseline[part], part
    new_registry = fresh_broker.service_login("registry")
    assert new_registry.password == "a-new-registry-password-1234"
    assert _can_log_in(fresh_broker, new_registry)
    assert not _can_log_in(fresh_broker, old_registry)
    assert _can_log_in(fresh_broker, fresh_broker.service_login("auth"))
    assert fresh_broker.bootstrap().changes == []


def test_lost_dynsec_file_is_recreated_with_every_platform_login(
    fresh_broker: RunningBroker, device_login
) -> None:
    baseline = snapshot(fresh_broker)
    device = device_login("h1", "d1", broker=fresh_broker)
    fresh_broker.stop()
    fresh_broker.dynsec_file.unlink()

    result = fresh_broker.bootstrap()  # offline init, start, online phase
    assert result.dynsec_file_created
    assert f"created login svc-{PLATFORM_SERVICES[0]}" in result.changes
    assert fresh_broker.running
    restored = snapshot(fresh_broker)
    assert restored["roles"] == baseline["roles"]
    assert restored["access"] == baseline["access"]
    assert set(restored["clients"]) == set(baseline["clients"])
    for service in PLATFORM_SERVICES:
        assert _can_log_in(fresh_broker, fresh_broker.service_login(service))
    assert not _can_log_in(fresh_broker, device)  # devices are the registry's to re-create


def test_broker_started_without_its_dynsec_file_must_be_restarted(
    fresh_broker: RunningBroker,
) -> None:
    fresh_broker.stop()
    fresh_broker.dynsec_file.unlink()
    fresh_broker.start()  # runs, but refuses every client
    admin = Login(fresh_broker.admin.username, fresh_broker.admin.password)
    assert not _can_log_in(fresh_broker, admin)
    with pytest.raises(BootstrapError, match="restart it") as failed:
        bootstrap(
            secrets_file=fresh_broker.secrets_file,
            port=fresh_broker.port,
            dynsec_file=fresh_broker.dynsec_file,
        )
    assert fresh_broker.admin.password not in str(failed.value)
    fresh_broker.restart()
    assert fresh_broker.bootstrap().changes  # now the logins are created
    assert _can_log_in(fresh_broker, fresh_broker.service_login("ingest"))


def test_wrong_admin_password_is_a_clear_error(fresh_broker: RunningBroker) -> None:
    _set_secret(fresh_broker, ADMIN_PASSWORD_KEY, "not-the-admin-password-123")
    with pytest.raises(BootstrapError, match="another admin password") as failed:
        bootstrap(secrets_file=fresh_broker.secrets_file, port=fresh_broker.port)
    assert "not-the-admin-password-123" not in str(failed.value)


def test_no_broker_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailable, match=f"no broker answered on 127.0.0.1:{port}"):
        bootstrap(secrets_file=tmp_path / "s.env", port=port, wait=0.2)


def test_offline_phase_creates_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "dynamic-security.json"
    assert init_dynsec_file(path, "admin-pass-123456")
    assert path.stat().st_mode & 0o777 == 0o600
    content = json.loads(path.read_text())
    assert [c["username"] for c in content["clients"]] == ["hearth-admin"]
    assert "admin-pass-123456" not in path.read_text()
    before = path.read_bytes()
    assert not init_dynsec_file(path, "another-password-123")
    assert path.read_bytes() == before
    with pytest.raises(BootstrapError, match="needs the dynsec file"):
        bootstrap(secrets_file=tmp_path / "s.env", offline=True)
    with pytest.raises(BootstrapError, match="not found"):
        init_dynsec_file(tmp_path / "other.json", "x" * 20, mosquitto_ctrl="no-such-ctrl")
