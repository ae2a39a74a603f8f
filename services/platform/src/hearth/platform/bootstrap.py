"""The broker bootstrap: one idempotent command that gives the platform its broker logins.

Two phases (docs/broker.md, "Bootstrap"):

1. Offline, before the broker starts: make sure the secrets file has every value, and when
   the dynsec file is missing create it with ``mosquitto_ctrl dynsec init FILE hearth-admin
   PASSWORD``. A broker started without that file refuses every client, and it reads the
   file only at start, so this phase must run first.
2. Online, once the broker answers: as ``hearth-admin``, over ``$CONTROL/dynamic-security/v1``,
   bring the default ACL access, each service's role and each service's login to exactly
   what :mod:`hearth.platform.dynsec` says, and the login's password to the secrets file's.

:func:`bootstrap` runs phase 1 when given the dynsec file's path, then phase 2 unless
``offline`` is set. Both phases compare before they write: a second run changes nothing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.platform.dynsec import DEFAULT_ACL_ACCESS, RoleSpec, acls_of, service_role
from hearth.platform.dynsec_control import DynsecControl, check_login
from hearth.platform.errors import BootstrapError, BrokerUnavailable, DynsecError, SecretsError
from hearth.platform.logins import ADMIN_USERNAME, PLATFORM_SERVICES, service_username
from hearth.platform.secrets import ADMIN_PASSWORD_KEY, ensure_secrets, mqtt_password_key

__all__ = [
    "BootstrapResult",
    "bootstrap",
    "init_dynsec_file",
    "reconcile",
    "wait_for_broker",
]


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


def _client_changes(
    username: str, rolename: str, textname: str, password: str, have: Mapping[str, Any] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Commands that make login ``username`` exist, enabled, unbound, with only ``rolename``."""
    if have is None:
        command = {
            "command": "createClient",
            "username": username,
            "password": password,
            "textname": textname,
            "roles": [{"rolename": rolename}],
        }
        return [command], [f"created login {username}"]
    commands: list[dict[str, Any]] = []
    notes: list[str] = []
    if have.get("disabled"):
        commands.append({"command": "enableClient", "username": username})
        notes.append(f"enabled login {username}")
    if have.get("clientid"):
        commands.append({"command": "modifyClient", "username": username, "clientid": ""})
        notes.append(f"unbound login {username} from a client id")
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
    return commands, notes


def _default_access_changes(have: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    current = {entry["acltype"]: bool(entry["allow"]) for entry in have}
    drift = [
        {"acltype": acltype, "allow": allow}
        for acltype, allow in DEFAULT_ACL_ACCESS.items()
        if current.get(acltype) != allow
    ]
    return [{"command": "setDefaultACLAccess", "acls": drift}] if drift else []


def reconcile(
    dynsec: DynsecControl,
    secrets: Mapping[str, str],
    *,
    host: str,
    port: int,
    services: Sequence[str] = PLATFORM_SERVICES,
) -> list[str]:
    """Make the broker's dynsec state match the platform's; return what was changed.

    Reads the whole state first and sends only the commands that close a difference; then
    checks each existing service login's password by logging in with it and resets the
    ones the secrets file has changed (a reset kicks that login's connected clients).
    """
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
    passwords: dict[str, str] = {}
    for service in services:
        role = service_role(service)
        role_commands, what = _role_changes(role, roles.get(role.rolename))
        if role_commands:
            commands += role_commands
            changes.append(what)
        username = service_username(service)
        password = _secret(secrets, mqtt_password_key(service))
        client_commands, notes = _client_changes(
            username, role.rolename, role.textname, password, clients.get(username)
        )
        commands += client_commands
        changes += notes
        if username in clients:
            passwords[username] = password
    dynsec.run(commands)

    resets = [
        {"command": "setClientPassword", "username": username, "password": password}
        for username, password in passwords.items()
        if not check_login(host, port, username, password, timeout=dynsec.timeout)
    ]
    dynsec.run(resets)
    changes += [f"reset password of {command['username']}" for command in resets]
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
) -> BootstrapResult:
    """Run the bootstrap; see the module docstring for the two phases.

    ``dynsec_file`` is the broker's dynsec file as this process sees it; without it the
    offline step is skipped (the broker's file is elsewhere, e.g. in a container volume).
    ``wait`` is how long to wait for the broker to listen before the online phase.
    """
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
        dynsec = DynsecControl(host, port, ADMIN_USERNAME, admin_password, timeout=timeout)
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
            result.changes = reconcile(dynsec, ensured.values, host=host, port=port)
        except DynsecError:
            # Another admin (a second bootstrap) may have raced us: read again, once.
            result.changes = reconcile(dynsec, ensured.values, host=host, port=port)
    finally:
        dynsec.close()
    result.online = True
    return result
