"""The platform's broker access rules, as Mosquitto dynamic security (dynsec) data.

Everything a platform login may do is written here, once: the default ACL access and the
role of each platform service (:func:`service_role_acls`), which the bootstrap applies.
The role the registry gives each device, and the guard on the commands that manage device
logins, are in :mod:`hearth.common.dynsec` (the registry uses them; it imports only
``hearth.common``).

Access model (docs/broker.md, "Logins and roles"):

- Default access denies everything but unsubscribing: ``publishClientSend``,
  ``publishClientReceive`` and ``subscribe`` are denied unless a role allows them.
- "Read X" is two ACLs: ``subscribePattern X`` (checked once, at SUBSCRIBE) and
  ``publishClientReceive X`` (checked on every delivery, retained ones included), so a role
  that loses a right stops receiving at once, even on a subscription it already holds.
- dynsec 2.0.11 does not expand ``%c``/``%u``: device rules are literal topics.
- Every replica of a service has its own login, bound to its client id, and all of them
  hold the service's one role ``svc-<service>`` (:mod:`hearth.platform.logins`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from hearth.common.dynsec import (
    CONTROL_FILTER,
    RESPONSE_TOPIC,
    Acl,
    RoleSpec,
    publish,
    read,
    subscribe_literal,
)
from hearth.common.topics import INGEST_SHARED_SUBSCRIPTION, ROOT, SYS_ROOT, Kind
from hearth.platform.logins import check_service, service_rolename

__all__ = [
    "DEFAULT_ACL_ACCESS",
    "acls_of",
    "service_role",
    "service_role_acls",
]

DEFAULT_ACL_ACCESS: Final[Mapping[str, bool]] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
"""What a login may do where no role says otherwise: nothing but unsubscribe."""


# --------------------------------------------------------------------------- topic patterns
# Wildcard patterns that no topic builder in hearth.common.topics produces live here only.


def _every_device(kind: Kind) -> str:
    """``hearth/+/+/<kind>`` plus ``/#`` for kinds with a name level."""
    base = f"{ROOT}/+/+/{kind.value}"
    return f"{base}/#" if kind.has_name else base


ALL_DEVICE_TOPICS: Final = f"{ROOT}/#"
ALL_SYSTEM_TOPICS: Final = f"{SYS_ROOT}/#"
AUTH_BUS: Final = f"{SYS_ROOT}/auth/#"
REGISTRY_BUS: Final = f"{SYS_ROOT}/registry/#"
INGEST_BUS: Final = f"{SYS_ROOT}/ingest/#"
DISCOVERED_BUS: Final = f"{SYS_ROOT}/ingest/discovered/#"
INGEST_BARRIERS: Final = f"{SYS_ROOT}/ingest/barrier/#"


def _own_service_status(service: str) -> str:
    """``hearth-sys/services/<service>/+``: a service's replicas' birth and will."""
    return f"{SYS_ROOT}/services/{check_service(service)}/+"


def _service_rights(service: str) -> tuple[Acl, ...]:
    if service == "auth":
        return (*publish(AUTH_BUS), *read(AUTH_BUS))
    if service == "registry":
        return (
            *publish(CONTROL_FILTER),
            *read(RESPONSE_TOPIC),
            *publish(_every_device(Kind.COMMAND)),
            *publish(_every_device(Kind.STATUS)),
            *read(_every_device(Kind.STATE)),
            *read(_every_device(Kind.TELEMETRY)),  # last seen, for presence (silent)
            *read(_every_device(Kind.STATUS)),
            *read(_every_device(Kind.ACK)),
            *publish(REGISTRY_BUS),
            *read(AUTH_BUS),
            *read(DISCOVERED_BUS),
        )
    if service == "ingest":
        return (
            *subscribe_literal(INGEST_SHARED_SUBSCRIPTION, _every_device(Kind.TELEMETRY)),
            *read(AUTH_BUS),
            *read(REGISTRY_BUS),
            *publish(INGEST_BUS),
            *read(INGEST_BARRIERS),
        )
    if service == "realtime":
        return (*read(ALL_DEVICE_TOPICS), *read(ALL_SYSTEM_TOPICS))
    raise ValueError(f"no broker rights are defined for service {service!r}")


def service_role_acls(service: str) -> frozenset[Acl]:
    """Everything a replica login ``svc-<service>-<replica>`` may do, and nothing more.

    - auth: publish and read ``hearth-sys/auth/#`` (its replicas follow each other's marks).
    - registry: manage dynsec (publish ``$CONTROL/dynamic-security/#``, read its response
      topic); publish commands and devices' ``status`` (for ``silent``); read ``state``,
      ``telemetry`` (when a device was last heard), ``status`` and ``ack``; publish
      ``hearth-sys/registry/#``; read ``hearth-sys/auth/#`` and
      ``hearth-sys/ingest/discovered/#`` (metrics ingest discovered).
    - ingest: subscribe ``$share/ingest/hearth/+/+/telemetry/#`` literally (receiving its
      telemetry); read ``hearth-sys/auth/#`` and ``hearth-sys/registry/#``; publish
      ``hearth-sys/ingest/#`` and read ``hearth-sys/ingest/barrier/#`` (its start-up barrier).
    - realtime: read ``hearth/#`` and ``hearth-sys/#``.
    - every service: publish ``hearth-sys/services/<service>/+`` (its replicas' birth/will).
    """
    return frozenset((*_service_rights(service), *publish(_own_service_status(service))))


def service_role(service: str) -> RoleSpec:
    """The dynsec role of a platform service, ``svc-<service>``, held by its replicas' logins."""
    return RoleSpec(
        service_rolename(service),
        f"Hearth {service} service",
        service_role_acls(service),
    )


def acls_of(entries: Iterable[Mapping[str, Any]]) -> frozenset[Acl]:
    """The ACL set of a role as ``getRole``/``listRoles`` return its ``acls``."""
    return frozenset(Acl.from_json(entry) for entry in entries)
