"""The broker bootstrap: one idempotent command that gives the platform its broker logins.

Two phases (docs/broker.md, "Bootstrap"):

1. Offline, before the broker starts: make sure the secrets file has every value, and when
   the dynsec file is missing create it with ``mosquitto_ctrl dynsec init FILE hearth-admin
   PASSWORD``. A broker started without that file refuses every client, and it reads the
   file only at start, so this phase must run first.
2. Online, once the broker answers: as ``hearth-admin``, over ``$CONTROL/dynamic-security/v1``,
   bring the default ACL access and each service's role to exactly what
   :mod:`hearth.platform.dynsec` says, and give every replica of every service
   (:func:`hearth.platform.logins.replica_plan`) its own login, bound to its client id, with
   the secrets file's password.

:func:`bootstrap` runs phase 1 when given the dynsec file's path, then phase 2 unless
``offline`` is set. Both phases compare before they write: a second run changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.common.dynsec import RoleSpec
from hearth.common.logins import SERVICE_LOGIN_PREFIX, service_client_id, service_username
from hearth.common.topics import is_slug
from hearth.platform.dynsec import DEFAULT_ACL_ACCESS, acls_of, service_role
from hearth.platform.dynsec_control import DynsecControl
from hearth.platform.errors import BootstrapError, BrokerUnavailable, DynsecError, SecretsError
from hearth.platform.logins import (
    ADMIN_USERNAME,
    PLATFORM_SERVICES,
    check_service,
    replica_plan,
    service_rolename,
)
from hearth.platform.secrets import ADMIN_PASSWORD_KEY, ensure_secrets, mqtt_password_key

__all__ = [
    "BootstrapResult",
    "bootstrap",
    "ensure_replica_logins",
    "init_dynsec_file",
    "password_fingerprint",
    "reconcile",
    "wait_for_broker",
]

Replicas = Mapping[str, Iterable[str]]
"""Replica names by platform service (``{"ingest": ("0", "1")}``)."""


@dataclass(slots=True)
class BootstrapResult:
    """What a bootstrap did. ``changes`` describe online changes (never a secret value)."""

    secrets_file: Path
    secrets_created: tuple[str, ...] = ()
    dynsec_file_created: bool = False
    online: bool = False
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything at all was created or changed."""
        return bool(self.secrets_created or self.dynsec_file_created or self.changes)


def init_dynsec_file(
    path: Path, admin_password: str, *, mosquitto_ctrl: str = "mosquitto_ctrl"
) -> bool:
    """Create the dynsec file with the admin login unless it exists; return whether it did.

    The file is made mode 0600 (it holds password hashes): the broker must run as the user
    that runs this (``user root`` in the test and native-as-root configs).
    """
    if path.exists():
        return False
    executable = shutil.which(mosquitto_ctrl)
    if executable is None:
        raise BootstrapError(f"{mosquitto_ctrl} not found: install mosquitto-clients")
    path.parent.mkdir(parents=True, exist_ok=True)
    # The password is an argument here (as mosquitto_ctrl requires), never logged or echoed.
    proc = subprocess.run(
        [executable, "dynsec", "init", str(path), ADMIN_USERNAME, admin_password],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not path.exists():
        detail = (proc.stderr or proc.stdout).strip().replace(admin_password, "***")
        raise BootstrapError(f"mosquitto_ctrl dynsec init {path} failed: {detail}")
    path.chmod(0o600)
    return True


def wait_for_broker(host: str, port: int, timeout: float) -> None:
    """Block until ``host:port`` accepts TCP connections; :class:`BrokerUnavailable` if not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"no broker answered on {host}:{port} within {timeout:g} s"
                ) from None
            time.sleep(0.02)


# --------------------------------------------------------------------------- online phase


def _role_changes(
    want: RoleSpec, have: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], str]:
    """Commands that turn role ``have`` (as listRoles returns it, or None) into ``want``."""
    if have is None:
        return [want.create_command()], f"created role {want.rolename}"
    commands: list[dict[str, Any]] = []
    current = acls_of(have.get("acls", []))
    extra = current - want.acls
    missing = want.acls - current
    # Removal is keyed by (acltype, topic): remove every drifted entry before adding.
    for acl in sorted(extra):
        commands.append(
            {
                "command": "removeRoleACL",
                "rolename": want.rolename,
                "acltype": acl.acltype.value,
                "topic": acl.topic,
            }
        )
    for acl in sorted(missing):
        commands.append({"command": "addRoleACL", "rolename": want.rolename, **acl.to_json()})
    if have.get("textname") != want.textname:
        commands.append(
            {"command": "modifyRole", "rolename": want.rolename, "textname": want.textname}
        )
    what = f"updated role {want.rolename} (+{len(missing)} -{len(extra)} ACLs)"
    return commands, what


_FINGERPRINT = "pbkdf2-sha256"
_FINGERPRINT_ROUNDS = 20_000


def password_fingerprint(username: str, password: str, *, salt: str | None = None) -> str:
    """A salted PBKDF2 fingerprint of a login's password, kept in its dynsec description.

    dynsec never tells a password back, and checking one by logging in would need the
    login's bound client id, which takes over the running replica's session. So the
    bootstrap writes this beside the password it sets and later compares it with the
    secrets file's value. The passwords are 32 random bytes: the fingerprint cannot be
    turned back into one (and the only logins that can read it may reset passwords anyway).
    """
    salt = salt if salt is not None else _random.token_hex(16)
    digest = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), f"{username}:{salt}".encode(), _FINGERPRINT_ROUNDS
    )
    return f"{_FINGERPRINT}${_FINGERPRINT_ROUNDS}${salt}${digest.hex()}"


def _fingerprint_matches(fingerprint: object, username: str, password: str) -> bool:
    if not isinstance(fingerprint, str):
        return False
    parts = fingerprint.split("$")
    if len(parts) != 4 or parts[0] != _FINGERPRINT or parts[1] != str(_FINGERPRINT_ROUNDS):
        return False
    expected = password_fingerprint(username, password, salt=parts[2])
    return hmac.compare_digest(expected, fingerprint)


def _replica_login_changes(
    service: str, replica: str, password: str, have: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Commands that make the login of one replica exist, enabled, bound to its client id,
    with only its service's role and the secrets file's password."""
    username = service_username(service, replica)
    clientid = service_client_id(service, replica)
    rolename = service_rolename(service)
    textname = f"Hearth {service} service, replica {replica}"
    if have is None:
        command = {
            "command": "createClient",
            "username": username,
            "password": password,
            "clientid": clientid,
            "textname": textname,
            "textdescription": password_fingerprint(username, password),
            "roles": [{"rolename": rolename}],
        }
        return [command], [f"created login {username}"]
    commands: list[dict[str, Any]] = []
    notes: list[str] = []
    if have.get("disabled"):
        commands.append({"command": "enableClient", "username": username})
        notes.append(f"enabled login {username}")
    if have.get("clientid") != clientid:
        commands.append({"command": "modifyClient", "username": username, "clientid": clientid})
        notes.append(f"bound login {username} to client id {clientid}")
    if have.get("textname") != textname:
        commands.append({"command": "modifyClient", "username": username, "textname": textname})
    roles = {entry["rolename"] for entry in have.get("roles", [])}
    for extra in sorted(roles - {rolename}):
        commands.append({"command": "removeClientRole", "username": username, "rolename": extra})
        notes.append(f"removed role {extra} from {username}")
    if rolename not in roles:
        commands.append({"command": "addClientRole", "username": username, "rolename": rolename})
        notes.append(f"gave role {rolename} to {username}")
    for group in sorted(entry["groupname"] for entry in have.get("groups", [])):
        commands.append({"command": "removeGroupClient", "groupname": group, "username": username})
        notes.append(f"removed {username} from group {group}")
    if not _fingerprint_matches(have.get("textdescription"), username, password):
        commands.append(
            {
                "command": "modifyClient",
                "username": username,
                "password": password,
                "textdescription": password_fingerprint(username, password),
            }
        )
        notes.append(f"reset password of {username}")
    return commands, notes


def _default_access_changes(have: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    current = {entry["acltype"]: bool(entry["allow"]) for entry in have}
    drift = [
        {"acltype": acltype, "allow": allow}
        for acltype, allow in DEFAULT_ACL_ACCESS.items()
        if current.get(acltype) != allow
    ]
    return [{"command": "setDefaultACLAccess", "acls": drift}] if drift else []


def _existing_replicas(service: str, usernames: Iterable[str]) -> set[str]:
    """Replicas of ``service`` that have a login on the broker already."""
    prefix = f"{SERVICE_LOGIN_PREFIX}{service}-"
    return {
        name[len(prefix) :]
        for name in usernames
        if name.startswith(prefix) and is_slug(name[len(prefix) :])
    }


def reconcile(
    dynsec: DynsecControl,
    secrets: Mapping[str, str],
    *,
    replicas: Replicas | None = None,
    services: Sequence[str] = PLATFORM_SERVICES,
) -> list[str]:
    """Make the broker's dynsec state match the platform's; return what was changed.

    Reads the whole state first and sends only the commands that close a difference:
    default access, each service's role, a bound login for each replica in ``replicas``
    (default: :func:`~hearth.platform.logins.replica_plan` from the environment) and the
    repair of every replica login already there (logins of replicas no longer planned are
    kept: a replica may come back). The shared, unbound ``svc-<service>`` login of earlier
    versions is deleted. A changed password (secrets file) is reset, which disconnects
    that login's client; nothing else here disconnects a client that is in order.
    """
    plan = {service: tuple(names) for service, names in (replicas or replica_plan()).items()}
    state = dynsec.run(
        [
            {"command": "getDefaultACLAccess"},
            {"command": "listRoles", "verbose": True},
            {"command": "listClients", "verbose": True},
        ]
    )
    roles = {role["rolename"]: role for role in state[1].get("roles", [])}
    clients = {client["username"]: client for client in state[2].get("clients", [])}

    commands = _default_access_changes(state[0].get("acls", []))
    changes = ["set default ACL access"] if commands else []
    for service in services:
        role = service_role(service)
        role_commands, what = _role_changes(role, roles.get(role.rolename))
        if role_commands:
            commands += role_commands
            changes.append(what)
        password = _secret(secrets, mqtt_password_key(service))
        wanted = set(plan.get(service, ())) | _existing_replicas(service, clients)
        for replica in sorted(wanted):
            username = service_username(service, replica)
            client_commands, notes = _replica_login_changes(
                service, replica, password, clients.get(username)
            )
            commands += client_commands
            changes += notes
        shared = service_rolename(service)  # the unbound login of earlier versions
        if shared in clients:
            commands.append({"command": "deleteClient", "username": shared})
            changes.append(f"deleted the shared login {shared} (each replica has its own)")
    dynsec.run(commands)
    return changes


def ensure_replica_logins(
    dynsec: DynsecControl, secrets: Mapping[str, str], replicas: Replicas
) -> list[str]:
    """Create or repair the logins of exactly these replicas; return what was changed.

    What ``hearth up`` and the test harness call when replicas are added: it reads only
    these logins (the roles must exist: run :func:`reconcile` once first).
    """
    wanted = [
        (check_service(service), replica)
        for service, names in replicas.items()
        for replica in names
    ]
    found = dynsec.execute(
        [
            {"command": "getClient", "username": service_username(service, replica)}
            for service, replica in wanted
        ]
    )
    commands: list[dict[str, Any]] = []
    changes: list[str] = []
    for (service, replica), response in zip(wanted, found, strict=True):
        have = response.get("data", {}).get("client") if "error" not in response else None
        password = _secret(secrets, mqtt_password_key(service))
        client_commands, notes = _replica_login_changes(service, replica, password, have)
        commands += client_commands
        changes += notes
    dynsec.run(commands)
    return changes


def _secret(secrets: Mapping[str, str], key: str) -> str:
    value = secrets.get(key)
    if not value:
        raise SecretsError(f"the secrets file has no {key}: run `hearth secrets`")
    return value


# --------------------------------------------------------------------------- both phases


def bootstrap(
    *,
    secrets_file: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 1884,
    dynsec_file: Path | None = None,
    offline: bool = False,
    wait: float = 10.0,
    timeout: float = 5.0,
    mosquitto_ctrl: str = "mosquitto_ctrl",
    replicas: Replicas | None = None,
    ca_file: Path | None = None,
) -> BootstrapResult:
    """Run the bootstrap; see the module docstring for the two phases.

    ``dynsec_file`` is the broker's dynsec file as this process sees it; without it the
    offline step is skipped (the broker's file is elsewhere, e.g. in a container volume).
    ``wait`` is how long to wait for the broker to listen before the online phase.
    ``replicas`` names the replicas that get logins (default: from the environment,
    :func:`~hearth.platform.logins.replica_plan`). ``ca_file``: the online phase speaks MQTT
    over TLS trusting that CA (``port`` is then the TLS port).
    """
    try:
        plan = replica_plan() if replicas is None else replicas
    except ValueError as exc:
        raise BootstrapError(str(exc)) from None
    ensured = ensure_secrets(secrets_file)
    result = BootstrapResult(ensured.path, ensured.created)
    admin_password = _secret(ensured.values, ADMIN_PASSWORD_KEY)
    if offline and dynsec_file is None:
        raise BootstrapError("the offline phase needs the dynsec file's path (--dynsec-file)")
    if dynsec_file is not None:
        result.dynsec_file_created = init_dynsec_file(
            dynsec_file, admin_password, mosquitto_ctrl=mosquitto_ctrl
        )
    if offline:
        return result

    wait_for_broker(host, port, wait)
    try:
        dynsec = DynsecControl(
            host, port, ADMIN_USERNAME, admin_password, timeout=timeout, ca_file=ca_file
        )
        dynsec.connect()
    except BrokerUnavailable as exc:
        hint = (
            "the broker was started before its dynsec file existed: restart it, then run "
            "`hearth bootstrap` again"
            if result.dynsec_file_created
            else "the broker's dynsec file has another admin password than the secrets file "
            "(or the broker runs without the dynsec plugin)"
        )
        raise BootstrapError(f"{exc}; {hint}") from None
    try:
        try:
            result.changes = reconcile(dynsec, ensured.values, replicas=plan)
        except DynsecError:
            # Another admin (a second bootstrap) may have raced us: read again, once.
            result.changes = reconcile(dynsec, ensured.values, replicas=plan)
    finally:
        dynsec.close()
    result.online = True
    return result
