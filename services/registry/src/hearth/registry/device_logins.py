"""DeviceLogins: the device logins at the broker, kept equal to the registry's records.

Each live device has one login, role and bound client id ``dev.<home>.<device>``
(:mod:`hearth.common.logins`) whose role holds :func:`hearth.common.dynsec.device_role`:
its own topics, and for a gateway those of the devices it relays for. The commands are
built by :mod:`hearth.common.dynsec` (and pass its guard); this module only decides which
to send, through :class:`~hearth.registry.dynsec_client.DynsecClient`.

:meth:`DeviceLogins.reconcile` compares the broker's device logins with the wanted ones
(the registry's table, passwords unsealed) and sends only the differences: a missing login
is created with its stored password, a login the registry does not know is deleted, a
role's ACLs, the disabled flag and the password generation (the login's description) are
put back. Logins outside ``dev.`` (the platform's, the admin) are never looked at twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hearth.common.dynsec import (
    Acl,
    create_device_commands,
    credentials_description,
    delete_device_commands,
    device_credentials_commands,
    device_role,
    device_role_sync_commands,
    disable_device_commands,
    enable_device_commands,
)
from hearth.common.logins import device_username, parse_device_username
from hearth.registry.dynsec_client import DynsecClient

__all__ = ["DeviceLogins", "ReconcileReport", "WantedLogin"]

log = logging.getLogger(__name__)

_GONE = frozenset({"Client not found", "Role not found"})
"""Errors that mean "already absent": fine when deleting."""


@dataclass(frozen=True, slots=True)
class WantedLogin:
    """A device login as the registry's records say it must be (the password in clear)."""

    home: str
    device: str
    password: str = field(repr=False)
    generation: int
    disabled: bool = False
    relays: tuple[str, ...] = ()

    @property
    def username(self) -> str:
        return device_username(self.home, self.device)


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What a reconcile changed at the broker (login names), and how many it left alone."""

    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    unchanged: int = 0


class DeviceLogins:
    """Creates, changes and deletes device logins at the broker; reconciles them."""

    def __init__(self, dynsec: DynsecClient) -> None:
        self._dynsec = dynsec

    async def create(self, login: WantedLogin) -> None:
        """Create the login and its role (anything left under the name is replaced)."""
        await self._dynsec.run(delete_device_commands(login.home, login.device), tolerate=_GONE)
        await self._dynsec.run(_create_commands(login))

    async def set_password(self, home: str, device: str, password: str, generation: int) -> None:
        """A new password (the broker kicks the connected client)."""
        await self._dynsec.run(device_credentials_commands(home, device, password, generation))

    async def set_disabled(self, home: str, device: str, disabled: bool) -> None:
        """Refuse (and kick) or accept the login again."""
        build = disable_device_commands if disabled else enable_device_commands
        await self._dynsec.run(build(home, device), tolerate=_GONE)  # no login: nothing to do

    async def delete(self, home: str, device: str) -> None:
        """Delete the login and its role (kicking the client); an absent one is fine."""
        await self._dynsec.run(delete_device_commands(home, device), tolerate=_GONE)

    async def sync_role(self, home: str, device: str, relays: Iterable[str]) -> None:
        """Give a device's role exactly its ACLs (a gateway's: with ``relays``')."""
        want = device_role(home, device, relays)
        (data,) = await self._dynsec.run(
            [{"command": "getRole", "rolename": want.rolename}], tolerate=_GONE
        )
        if "role" not in data:
            return  # a device without a login yet: reconcile or a rotation creates it whole
        have = _acls_of(data["role"])
        await self._dynsec.run(device_role_sync_commands(have, want))

    async def reconcile(self, wanted: Sequence[WantedLogin]) -> ReconcileReport:
        """Make the broker's device logins exactly ``wanted`` (see the module docstring)."""
        clients, roles = await self._dynsec.run(
            [
                {"command": "listClients", "verbose": True},
                {"command": "listRoles", "verbose": True},
            ]
        )
        on_broker = _device_entries(clients.get("clients"), "username")
        role_acls = {
            name: _acls_of(role)
            for name, role in _device_entries(roles.get("roles"), "rolename").items()
        }
        by_name = {login.username: login for login in wanted}
        created, deleted, repaired = [], [], []
        for name in sorted(set(on_broker) | set(role_acls)):
            if name not in by_name:
                await self.delete(*parse_device_username(name))
                deleted.append(name)
        for name, login in sorted(by_name.items()):
            client = on_broker.get(name)
            if client is None or name not in role_acls:
                await self.create(login)
                created.append(name)
            elif await self._repair(login, client, role_acls[name]):
                repaired.append(name)
        report = ReconcileReport(
            tuple(created),
            tuple(deleted),
            tuple(repaired),
            len(by_name) - len(created) - len(repaired),
        )
        log.info(
            "device logins reconciled",
            extra={  # not "created": a LogRecord attribute of that name exists
                "logins_created": len(created),
                "logins_deleted": len(deleted),
                "logins_repaired": len(repaired),
                "logins_unchanged": report.unchanged,
            },
        )
        return report

    async def _repair(
        self, login: WantedLogin, client: Mapping[str, Any], acls: frozenset[Acl]
    ) -> bool:
        """Put back the role's ACLs, the generation's password and the disabled flag.

        A login bound to another client id, or holding other roles or groups, is made
        again from scratch under its name.
        """
        roles = client.get("roles")
        names = [r.get("rolename") for r in roles if isinstance(r, Mapping)] if roles else []
        if (
            client.get("clientid") != login.username
            or names != [login.username]
            or client.get("groups")
        ):
            await self.create(login)
            return True
        commands = device_role_sync_commands(
            acls, device_role(login.home, login.device, login.relays)
        )
        if client.get("textdescription") != credentials_description(login.generation):
            commands += device_credentials_commands(
                login.home, login.device, login.password, login.generation
            )
        if bool(client.get("disabled", False)) != login.disabled:
            build = disable_device_commands if login.disabled else enable_device_commands
            commands += build(login.home, login.device)
        if commands:
            await self._dynsec.run(commands)
        return bool(commands)


def _create_commands(login: WantedLogin) -> list[dict[str, Any]]:
    commands = create_device_commands(
        login.home,
        login.device,
        login.password,
        relays=login.relays,
        generation=login.generation,
    )
    if login.disabled:
        commands += disable_device_commands(login.home, login.device)
    return commands


def _device_entries(items: Any, key: str) -> dict[str, Mapping[str, Any]]:
    """The entries of a verbose list whose ``key`` is a device name, by that name."""
    found: dict[str, Mapping[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or not isinstance(name := item.get(key), str):
            continue
        try:
            parse_device_username(name)
        except ValueError:
            continue  # a platform login or role: never the registry's business
        found[name] = item
    return found


def _acls_of(role: Mapping[str, Any]) -> frozenset[Acl]:
    acls = role.get("acls") if isinstance(role, Mapping) else None
    return (
        frozenset(Acl.from_json(a) for a in acls if isinstance(a, Mapping)) if acls else frozenset()
    )
