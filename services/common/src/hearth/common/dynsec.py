"""Device logins as Mosquitto dynamic security (dynsec) commands, and the guard on them.

The registry manages device logins by publishing dynsec commands to
``$CONTROL/dynamic-security/v1``. Mosquitto 2.0.11 can only grant or deny that whole topic:
a login that may publish there may create, change and delete *any* client and role, the
platform's service logins and the admin's included (docs/broker.md, "The registry's
broker role"). Since the broker cannot hold the registry to device logins, the registry
holds itself to them: every command list it sends goes through
:func:`check_device_commands`, which refuses (:class:`DynsecRefused`) anything that is
not a device login's or role's own business:

- only client and role commands (create, modify, delete, get, passwords, ACLs, role
  membership) and the read-only lists; never default access, groups or anonymous access;
- every ``username`` and ``rolename`` is a device name ``dev.<home>.<device>``; a device
  gets only its own role (named like the login);
- a device login is always bound: ``clientid`` equals the username (never unbound);
- every ACL is one a device of the role's own home is given (:func:`device_role_acls` of
  ``hearth/<home>/<device>/``): its own device's, or, for a gateway, those of the devices
  of the same home it relays for; never a wildcard above the device level, never a right
  a device does not have (publishing commands, say);
- removing an ACL from a device's role is always allowed (it can only take a right away:
  reconcile removes rights somebody added by hand);
- no other member than these is passed through.

:func:`create_device_commands` and :func:`delete_device_commands` build what the registry
sends (they check their own output); the platform's test harness uses the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from hearth.common.errors import HearthError
from hearth.common.logins import device_username, parse_device_username
from hearth.common.topics import ROOT, Kind, ack_topic, check_slug, is_slug, status_topic

__all__ = [
    "CONTROL_FILTER",
    "CONTROL_TOPIC",
    "RESPONSE_TOPIC",
    "Acl",
    "AclType",
    "DynsecRefused",
    "RoleSpec",
    "check_device_commands",
    "create_device_commands",
    "delete_device_commands",
    "device_credentials_commands",
    "device_role",
    "device_role_acls",
    "device_role_sync_commands",
    "disable_device_commands",
    "enable_device_commands",
    "publish",
    "read",
    "subscribe_literal",
]

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
"""Where dynsec commands are published (as JSON ``{"commands": [...]}``)."""
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
"""Where dynsec answers, to every client subscribed (match on ``correlationData``)."""
CONTROL_FILTER: Final = "$CONTROL/dynamic-security/#"


class DynsecRefused(HearthError):
    """A dynsec command outside a device login's own business (a bug where it is built)."""

    code = "dynsec_refused"
    title = "Broker command refused"


class AclType(StrEnum):
    """The dynsec ACL types."""

    PUBLISH_CLIENT_SEND = "publishClientSend"
    PUBLISH_CLIENT_RECEIVE = "publishClientReceive"
    SUBSCRIBE_LITERAL = "subscribeLiteral"
    SUBSCRIBE_PATTERN = "subscribePattern"
    UNSUBSCRIBE_LITERAL = "unsubscribeLiteral"
    UNSUBSCRIBE_PATTERN = "unsubscribePattern"


@dataclass(frozen=True, slots=True, order=True)
class Acl:
    """One dynsec ACL entry of a role."""

    acltype: AclType
    topic: str
    allow: bool = True
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        """The entry as the dynsec API and file write it."""
        return {
            "acltype": self.acltype.value,
            "topic": self.topic,
            "allow": self.allow,
            "priority": self.priority,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Acl:
        """An entry as ``getRole``/``listRoles`` return it (priority may be absent: 0)."""
        return cls(
            AclType(data["acltype"]),
            str(data["topic"]),
            bool(data.get("allow", False)),
            int(data.get("priority", 0)),
        )


def publish(topic: str) -> tuple[Acl, ...]:
    """The right to publish to ``topic`` (a filter pattern)."""
    return (Acl(AclType.PUBLISH_CLIENT_SEND, topic),)


def read(topic_filter: str) -> tuple[Acl, ...]:
    """The right to subscribe to ``topic_filter`` (or any narrower filter) and receive it."""
    return (
        Acl(AclType.SUBSCRIBE_PATTERN, topic_filter),
        Acl(AclType.PUBLISH_CLIENT_RECEIVE, topic_filter),
    )


def subscribe_literal(subscription: str, receives: str) -> tuple[Acl, ...]:
    """The right to make exactly ``subscription`` and receive what matches ``receives``.

    For shared subscriptions: the subscribe ACL sees the whole ``$share/<group>/...``
    string, the receive ACL the topic of each delivered message.
    """
    return (
        Acl(AclType.SUBSCRIBE_LITERAL, subscription),
        Acl(AclType.PUBLISH_CLIENT_RECEIVE, receives),
    )


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A dynsec role as the platform wants it: name, description and exact ACL set."""

    rolename: str
    textname: str
    acls: frozenset[Acl]

    def create_command(self) -> dict[str, Any]:
        """The ``createRole`` command for this role."""
        return {
            "command": "createRole",
            "rolename": self.rolename,
            "textname": self.textname,
            "acls": [acl.to_json() for acl in sorted(self.acls)],
        }


# --------------------------------------------------------------------------- device roles


def _device_space(home: str, device: str) -> str:
    """``hearth/<home>/<device>/``: every topic of one device starts with it."""
    return f"{ROOT}/{check_slug(home, 'home')}/{check_slug(device, 'device')}/"


def _one_device(home: str, device: str, kind: Kind) -> str:
    """``hearth/<home>/<device>/<kind>/#`` (kinds with a name level only)."""
    return f"{_device_space(home, device)}{kind.value}/#"


def device_role_acls(home: str, device: str) -> frozenset[Acl]:
    """Everything a device login may do: its own topics, nothing else.

    Publish its ``telemetry/#``, ``state/#``, ``ack`` and ``status``; subscribe to and
    receive its ``command/#``. The registry creates exactly these for every device.
    """
    return frozenset(
        (
            *publish(_one_device(home, device, Kind.TELEMETRY)),
            *publish(_one_device(home, device, Kind.STATE)),
            *publish(ack_topic(home, device)),
            *publish(status_topic(home, device)),
            *read(_one_device(home, device, Kind.COMMAND)),
        )
    )


def device_role(home: str, device: str, relays: Iterable[str] = ()) -> RoleSpec:
    """A device's role, named like its login (``dev.<home>.<device>``).

    A gateway's role also holds :func:`device_role_acls` of every device of the same home
    it relays for (``relays``: their slugs).
    """
    acls = set(device_role_acls(home, device))
    for relayed in relays:
        acls |= device_role_acls(home, relayed)
    return RoleSpec(
        device_username(home, device),
        f"Hearth device {device} of home {home}",
        frozenset(acls),
    )


def credentials_description(generation: int) -> str:
    """The login's dynsec description: which generation of its password the broker holds.

    The registry counts rotations; reconcile resets a login whose description names
    another generation than the registry's record (a rotation the database never saw
    committed). Not a secret: it says nothing about the password.
    """
    return f"credentials generation {generation}"


def create_device_commands(
    home: str,
    device: str,
    password: str,
    *,
    relays: Iterable[str] = (),
    generation: int = 1,
) -> list[dict[str, Any]]:
    """The dynsec commands that create a device's role and login (client id bound).

    The password is sent in plain text (dynsec 2.0.11 hashes it on the broker).
    """
    role = device_role(home, device, relays)
    username = device_username(home, device)
    return check_device_commands(
        [
            role.create_command(),
            {
                "command": "createClient",
                "username": username,
                "password": password,
                "clientid": username,
                "textname": role.textname,
                "textdescription": credentials_description(generation),
                "roles": [{"rolename": role.rolename}],
            },
        ]
    )


def device_credentials_commands(
    home: str, device: str, password: str, generation: int
) -> list[dict[str, Any]]:
    """Set a device login's password (and its generation); the broker kicks its client."""
    return check_device_commands(
        [
            {
                "command": "modifyClient",
                "username": device_username(home, device),
                "password": password,
                "textdescription": credentials_description(generation),
            }
        ]
    )


def disable_device_commands(home: str, device: str) -> list[dict[str, Any]]:
    """Refuse a device's login from now on; the broker kicks its connected client."""
    return check_device_commands(
        [{"command": "disableClient", "username": device_username(home, device)}]
    )


def enable_device_commands(home: str, device: str) -> list[dict[str, Any]]:
    """Accept a device's login again."""
    return check_device_commands(
        [{"command": "enableClient", "username": device_username(home, device)}]
    )


def device_role_sync_commands(have: Iterable[Acl], want: RoleSpec) -> list[dict[str, Any]]:
    """The ACL changes that turn a device role holding ``have`` into ``want`` (none if equal)."""
    current = frozenset(have)
    commands: list[dict[str, Any]] = [
        {
            "command": "removeRoleACL",
            "rolename": want.rolename,
            "acltype": acl.acltype.value,
            "topic": acl.topic,
        }
        for acl in sorted(current - want.acls)
    ]
    commands += [
        {"command": "addRoleACL", "rolename": want.rolename, **acl.to_json()}
        for acl in sorted(want.acls - current)
    ]
    return check_device_commands(commands)


def delete_device_commands(home: str, device: str) -> list[dict[str, Any]]:
    """The dynsec commands that delete a device's login and role (kicking it if connected)."""
    username = device_username(home, device)
    return check_device_commands(
        [
            {"command": "deleteClient", "username": username},
            {"command": "deleteRole", "rolename": username},
        ]
    )


# --------------------------------------------------------------------------- the guard

_COMMON = frozenset({"command", "correlationData"})
_CLIENT_TEXT = frozenset({"textname", "textdescription"})
_ALLOWED: Final[Mapping[str, frozenset[str]]] = {
    "createClient": frozenset({"username", "password", "clientid", "roles"}) | _CLIENT_TEXT,
    "modifyClient": frozenset({"username", "password", "clientid", "roles"}) | _CLIENT_TEXT,
    "deleteClient": frozenset({"username"}),
    "getClient": frozenset({"username"}),
    "setClientPassword": frozenset({"username", "password"}),
    "enableClient": frozenset({"username"}),
    "disableClient": frozenset({"username"}),
    "addClientRole": frozenset({"username", "rolename", "priority"}),
    "removeClientRole": frozenset({"username", "rolename"}),
    "createRole": frozenset({"rolename", "acls"}) | _CLIENT_TEXT,
    "modifyRole": frozenset({"rolename", "acls"}) | _CLIENT_TEXT,
    "deleteRole": frozenset({"rolename"}),
    "getRole": frozenset({"rolename"}),
    "addRoleACL": frozenset({"rolename", "acltype", "topic", "allow", "priority"}),
    "removeRoleACL": frozenset({"rolename", "acltype", "topic"}),
    "listClients": frozenset({"verbose", "count", "offset"}),
    "listRoles": frozenset({"verbose", "count", "offset"}),
}
"""Every command a device manager may send, with the members it may carry."""


def _refuse(index: int, command: Mapping[str, Any], why: str) -> DynsecRefused:
    return DynsecRefused(f"dynsec command {index} ({command.get('command')!r}) refused: {why}")


def _device_of(index: int, command: Mapping[str, Any], member: str) -> tuple[str, str]:
    value = command.get(member)
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return parse_device_username(value)
    except ValueError:
        raise _refuse(index, command, f"{member} {value!r} is not a device login") from None


def _check_acl(index: int, command: Mapping[str, Any], acl: Any, home: str) -> None:
    """An ACL must be one a device of ``home`` is given (its own, or relayed by a gateway)."""
    if not isinstance(acl, Mapping):
        raise _refuse(index, command, "an ACL is not an object")
    if acl.get("acltype") not in set(AclType):
        raise _refuse(index, command, f"unknown ACL type {acl.get('acltype')!r}")
    topic = acl.get("topic")
    prefix = f"{ROOT}/{home}/"
    levels = topic[len(prefix) :].split("/") if isinstance(topic, str) else []
    allowed = (
        isinstance(topic, str)
        and topic.startswith(prefix)
        and is_slug(levels[0])
        and acl.get("allow", True) is True
        and _within(AclType(acl["acltype"]), topic, device_role_acls(home, levels[0]))
    )
    if not allowed:
        raise _refuse(index, command, f"ACL topic {topic!r} is outside what a device may have")


def _within(acltype: AclType, topic: str, grants: Iterable[Acl]) -> bool:
    """Whether ``topic`` equals, or lies under a ``/#`` of, a grant of the same type."""
    for grant in grants:
        if grant.acltype is not acltype:
            continue
        if topic == grant.topic:
            return True
        if grant.topic.endswith("/#") and topic.startswith(grant.topic[:-1]):
            return True
    return False


def _check_one(index: int, command: Mapping[str, Any]) -> None:
    name = command.get("command")
    if not isinstance(name, str) or name not in _ALLOWED:
        raise _refuse(index, command, "not a device login's business")
    unknown = set(command) - _ALLOWED[name] - _COMMON
    if unknown:
        raise _refuse(index, command, f"unexpected members {sorted(unknown)}")
    if name in ("listClients", "listRoles"):
        return
    owner = _device_of(index, command, "username" if "username" in _ALLOWED[name] else "rolename")
    username = device_username(*owner)
    both = {"rolename", "username"} <= _ALLOWED[name]
    if both and command.get("rolename") != username:
        raise _refuse(index, command, "a device gets only its own role")
    if name == "createClient" and command.get("clientid") != username:
        raise _refuse(index, command, "a device login must be bound to its own client id")
    if "clientid" in command and command["clientid"] != username:
        raise _refuse(index, command, "a device login must be bound to its own client id")
    roles = command.get("roles", [])
    if not isinstance(roles, list) or any(
        not isinstance(role, Mapping) or role.get("rolename") != username for role in roles
    ):
        raise _refuse(index, command, "a device gets only its own role")
    acls = command.get("acls", [])
    if not isinstance(acls, list):
        raise _refuse(index, command, "acls is not a list")
    for acl in acls:
        _check_acl(index, command, acl, owner[0])
    if name == "addRoleACL":
        _check_acl(index, command, command, owner[0])
    if name == "removeRoleACL" and not isinstance(command.get("topic"), str):
        raise _refuse(index, command, "removeRoleACL needs a topic")  # removing any is safe


def check_device_commands(commands: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``commands`` as a list if every one is a device login's own business (see the module
    docstring), else :class:`DynsecRefused` naming the first that is not."""
    checked = [dict(command) for command in commands]
    for index, command in enumerate(checked):
        _check_one(index, command)
    return checked
