"""The platform's broker access rules, as Mosquitto dynamic security (dynsec) data.

Everything a login may do is written here, once: the default ACL access, the role of each
platform service (:func:`service_role_acls`) and the role the registry gives each device
(:func:`device_role_acls`). The bootstrap applies the service roles; the registry and the
test harness create device roles with :func:`create_device_commands`.

Access model (docs/broker.md, "Logins and roles"):

- Default access denies everything but unsubscribing: ``publishClientSend``,
  ``publishClientReceive`` and ``subscribe`` are denied unless a role allows them.
- "Read X" is two ACLs: ``subscribePattern X`` (checked once, at SUBSCRIBE) and
  ``publishClientReceive X`` (checked on every delivery, retained ones included), so a role
  that loses a right stops receiving at once, even on a subscription it already holds.
- dynsec 2.0.11 does not expand ``%c``/``%u``: device rules are literal topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from hearth.common.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    ROOT,
    SYS_ROOT,
    Kind,
    ack_topic,
    check_slug,
    status_topic,
)
from hearth.platform.logins import check_service, device_username, service_username

__all__ = [
    "CONTROL_FILTER",
    "CONTROL_TOPIC",
    "DEFAULT_ACL_ACCESS",
    "RESPONSE_TOPIC",
    "Acl",
    "AclType",
    "RoleSpec",
    "acls_of",
    "create_device_commands",
    "delete_device_commands",
    "device_role",
    "device_role_acls",
    "publish",
    "read",
    "service_role",
    "service_role_acls",
    "subscribe_literal",
]

CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
"""Where dynsec commands are published (as JSON ``{"commands": [...]}``)."""
RESPONSE_TOPIC: Final = f"{CONTROL_TOPIC}/response"
"""Where dynsec answers, to every client subscribed (match on ``correlationData``)."""
CONTROL_FILTER: Final = "$CONTROL/dynamic-security/#"


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


DEFAULT_ACL_ACCESS: Final[Mapping[str, bool]] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""What a login may do where no role says otherwise: nothing but unsubscribe."""


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


# --------------------------------------------------------------------------- topic patterns
# Wildcard patterns that no topic builder in hearth.common.topics produces live here only.


def _every_device(kind: Kind) -> str:
    """``hearth/+/+/<kind>`` plus ``/#`` for kinds with a name level."""
    base = f"{ROOT}/+/+/{kind.value}"
    return f"{base}/#" if kind.has_name else base


def _one_device(home: str, device: str, kind: Kind) -> str:
    """``hearth/<home>/<device>/<kind>/#`` (kinds with a name level only)."""
    return f"{ROOT}/{check_slug(home, 'home')}/{check_slug(device, 'device')}/{kind.value}/#"


ALL_DEVICE_TOPICS: Final = f"{ROOT}/#"
ALL_SYSTEM_TOPICS: Final = f"{SYS_ROOT}/#"
AUTH_BUS: Final = f"{SYS_ROOT}/auth/#"
REGISTRY_BUS: Final = f"{SYS_ROOT}/registry/#"


def _own_service_status(service: str) -> str:
    """``hearth-sys/services/<service>/+``: a service's replicas' birth and will."""
    return f"{SYS_ROOT}/services/{check_service(service)}/+"


def _service_rights(service: str) -> tuple[Acl, ...]:
    if service == "auth":
        return publish(AUTH_BUS)
    if service == "registry":
        return (
            *publish(CONTROL_FILTER),
            *read(RESPONSE_TOPIC),
            *publish(_every_device(Kind.COMMAND)),
            *publish(_every_device(Kind.STATUS)),
            *read(_every_device(Kind.STATE)),
            *read(_every_device(Kind.STATUS)),
            *read(_every_device(Kind.ACK)),
            *publish(REGISTRY_BUS),
            *read(AUTH_BUS),
        )
    if service == "ingest":
        return (
            *subscribe_literal(INGEST_SHARED_SUBSCRIPTION, _every_device(Kind.TELEMETRY)),
            *read(AUTH_BUS),
            *read(REGISTRY_BUS),
        )
    if service == "realtime":
        return (*read(ALL_DEVICE_TOPICS), *read(ALL_SYSTEM_TOPICS))
    raise ValueError(f"no broker rights are defined for service {service!r}")


def service_role_acls(service: str) -> frozenset[Acl]:
    """Everything the login ``svc-<service>`` may do, and nothing more.

    - auth: publish ``hearth-sys/auth/#``.
    - registry: manage dynsec (publish ``$CONTROL/dynamic-security/#``, read its response
      topic); publish commands and devices' ``status`` (for ``silent``); read ``state``,
      ``status`` and ``ack``; publish ``hearth-sys/registry/#``; read ``hearth-sys/auth/#``.
    - ingest: subscribe ``$share/ingest/hearth/+/+/telemetry/#`` literally (receiving its
      telemetry); read ``hearth-sys/auth/#`` and ``hearth-sys/registry/#``.
    - realtime: read ``hearth/#`` and ``hearth-sys/#``.
    - every service: publish ``hearth-sys/services/<service>/+`` (its replicas' birth/will).
    """
    return frozenset((*_service_rights(service), *publish(_own_service_status(service))))


def service_role(service: str) -> RoleSpec:
    """The dynsec role of a platform service, named like its login (``svc-<service>``)."""
    return RoleSpec(
        service_username(service),
        f"Hearth {service} service",
        service_role_acls(service),
    )


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


def device_role(home: str, device: str) -> RoleSpec:
    """A device's role, named like its login (``dev.<home>.<device>``)."""
    return RoleSpec(
        device_username(home, device),
        f"Hearth device {device} of home {home}",
        device_role_acls(home, device),
    )


def create_device_commands(home: str, device: str, password: str) -> list[dict[str, Any]]:
    """The dynsec commands that create a device's role and login (client id bound).

    The password is sent in plain text (dynsec 2.0.11 hashes it on the broker).
    """
    role = device_role(home, device)
    username = device_username(home, device)
    return [
        role.create_command(),
        {
            "command": "createClient",
            "username": username,
            "password": password,
            "clientid": username,
            "textname": role.textname,
            "roles": [{"rolename": role.rolename}],
        },
    ]


def delete_device_commands(home: str, device: str) -> list[dict[str, Any]]:
    """The dynsec commands that delete a device's login and role (kicking it if connected)."""
    username = device_username(home, device)
    return [
        {"command": "deleteClient", "username": username},
        {"command": "deleteRole", "rolename": username},
    ]


def acls_of(entries: Iterable[Mapping[str, Any]]) -> frozenset[Acl]:
    """The ACL set of a role as ``getRole``/``listRoles`` return its ``acls``."""
    return frozenset(Acl.from_json(entry) for entry in entries)
