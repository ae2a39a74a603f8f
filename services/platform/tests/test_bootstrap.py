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


def _without_fingerprints(clients: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v for k, v in json.loads(text).items() if k != "textdescription"}
        for name, text in clients.items()
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
    assert set(state["clients"]) == {"hearth-admin"} | {f"svc-{s}-0" for s in PLATFORM_SERVICES}
    for service in PLATFORM_SERVICES:
        client = json.loads(state["clients"][f"svc-{service}-0"])
        assert client["roles"] == [{"rolename": f"svc-{service}"}]
        assert client["clientid"] == f"{service}-0"  # replica 0's own login: bound
        login = fresh_broker.service_login(service)
        assert _can_log_in(fresh_broker, login)
        assert (
            fresh_broker.secrets[mqtt_password_key(service)] not in state["clients"][login.username]
        )
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
    shared = fresh_broker.secrets[mqtt_password_key("auth")]
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
                {"command": "disableClient", "username": "svc-auth-0"},
                {"command": "modifyClient", "username": "svc-ingest-0", "clientid": "ingest-1"},
                {"command": "modifyClient", "username": "svc-realtime-0", "clientid": ""},
                {
                    "command": "addClientRole",
                    "username": "svc-ingest-0",
                    "rolename": "svc-realtime",
                },
                {"command": "createGroup", "groupname": "extra"},
                {"command": "addGroupClient", "groupname": "extra", "username": "svc-realtime-0"},
                # the shared, unbound login of earlier versions
                {
                    "command": "createClient",
                    "username": "svc-auth",
                    "password": shared,
                    "roles": [{"rolename": "svc-auth"}],
                },
            ]
        )
    _set_secret(fresh_broker, mqtt_password_key("registry"), "a-new-registry-password-1234")

    result = fresh_broker.bootstrap()
    assert set(result.changes) == {
        "set default ACL access",
        "updated role svc-ingest (+1 -0 ACLs)",
        "updated role svc-realtime (+0 -1 ACLs)",
        "enabled login svc-auth-0",
        "bound login svc-ingest-0 to client id ingest-0",
        "bound login svc-realtime-0 to client id realtime-0",
        "removed role svc-realtime from svc-ingest-0",
        "removed svc-realtime-0 from group extra",
        "reset password of svc-registry-0",
        "deleted the shared login svc-auth (each replica has its own)",
    }
    after = snapshot(fresh_broker)
    for part in ("access", "roles"):
        assert after[part] == baseline[part], part
    # Every login is back as it was; only the registry's password fingerprint follows the file.
    changed = {
        name for name in baseline["clients"] if after["clients"][name] != baseline["clients"][name]
    }
    assert changed == {"svc-registry-0"}
    assert set(after["clients"]) == set(baseline["clients"])
    assert _without_fingerprints(after["clients"]) == _without_fingerprints(baseline["clients"])
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
    assert f"created login svc-{PLATFORM_SERVICES[0]}-0" in result.changes
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


def test_each_planned_replica_gets_its_own_bound_login(
    fresh_broker: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTH_INGEST_REPLICAS", "3")
    result = bootstrap(secrets_file=fresh_broker.secrets_file, port=fresh_broker.port)
    assert sorted(result.changes) == ["created login svc-ingest-1", "created login svc-ingest-2"]
    password = fresh_broker.secrets[mqtt_password_key("ingest")]
    for replica in ("0", "1", "2"):
        own = Login(f"svc-ingest-{replica}", password, client_id=f"ingest-{replica}")
        assert _can_log_in(fresh_broker, own)
    # Bound: the same login under a sibling's, another service's or a free id is refused.
    for client_id in ("ingest-2", "auth-1", "ingest-1x", "anything"):
        assert not _can_log_in(fresh_broker, Login("svc-ingest-1", password, client_id=client_id))
    assert bootstrap(secrets_file=fresh_broker.secrets_file, port=fresh_broker.port).changes == []
    monkeypatch.setenv("HEARTH_INGEST_REPLICAS", "1")  # scaled down: the logins stay
    assert bootstrap(secrets_file=fresh_broker.secrets_file, port=fresh_broker.port).changes == []
    assert _can_log_in(fresh_broker, Login("svc-ingest-2", password, client_id="ingest-2"))


def test_a_bad_replica_count_is_a_clear_error(
    fresh_broker: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTH_REALTIME_REPLICAS", "many")
    with pytest.raises(BootstrapError, match="HEARTH_REALTIME_REPLICAS must be a whole number"):
        bootstrap(secrets_file=fresh_broker.secrets_file, port=fresh_broker.port)


def test_bootstrap_leaves_running_replicas_connected(
    fresh_broker: RunningBroker, mqtt_client
) -> None:
    """Passwords are compared by fingerprint, never by logging in as a replica (which would
    take over its session); a run that changes nothing disconnects nobody."""
    replica = mqtt_client(fresh_broker, fresh_broker.service_login("realtime"))
    assert replica.subscribe_and_wait("hearth-sys/#")[0].value == 1
    assert fresh_broker.bootstrap().changes == []
    auth = mqtt_client(fresh_broker, "auth")
    auth.publish_and_wait("hearth-sys/auth/users/after-bootstrap", "still-here")
    replica.wait_for_messages(1, "hearth-sys/auth/users/after-bootstrap")
    assert replica.disconnects == 0
