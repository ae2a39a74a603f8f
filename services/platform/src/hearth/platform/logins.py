"""Who logs in to the broker: the platform's services, their replicas, their roles.

One data structure (:data:`PLATFORM_SERVICES`) lists the services that get broker logins;
the secrets file, the bootstrap and the test harness all iterate it, so adding a service
here gives it a password, a role and its replicas' logins everywhere.

Names (docs/decisions.md, "Broker logins"; the name functions are
:mod:`hearth.common.logins`, which the services use too)::

    hearth-admin              the dynamic security admin (created offline by the bootstrap)
    svc-<service>             a service's role, held by every replica login of the service
    svc-<service>-<replica>   one replica's login, bound to client id <service>-<replica>
    dev.<home>.<device>       a device's login, role and bound client id

Which replicas get a login: :func:`replica_plan`, from ``HEARTH_<SERVICE>_REPLICAS`` (a
count, default 1: replicas ``0`` to ``count - 1``), plus ``HEARTH_<SERVICE>_REPLICA`` (the
name a deployment gives its one replica, as compose does) and any named ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from hearth.common.logins import SERVICE_LOGIN_PREFIX, check_service_name
from hearth.common.topics import check_slug

__all__ = [
    "ADMIN_USERNAME",
    "MAX_REPLICAS",
    "PLATFORM_SERVICES",
    "check_service",
    "replica_env",
    "replica_names",
    "replica_plan",
    "replicas_env",
    "service_rolename",
]

ADMIN_USERNAME = "hearth-admin"
"""The dynamic security plugin's admin login (its password is ``HEARTH_BROKER_ADMIN_PASSWORD``)."""

PLATFORM_SERVICES: tuple[str, ...] = ("auth", "registry", "ingest", "realtime")
"""Every service that gets a broker role, a password and replica logins, in bootstrap order."""

MAX_REPLICAS = 64
"""The largest replica count :func:`replica_plan` accepts for one service."""


def check_service(service: str) -> str:
    """Return ``service`` if it is one of :data:`PLATFORM_SERVICES`, else raise ``ValueError``."""
    if service not in PLATFORM_SERVICES:
        known = ", ".join(PLATFORM_SERVICES)
        raise ValueError(f"unknown platform service {service!r} (known: {known})")
    return check_service_name(service)


def service_rolename(service: str) -> str:
    """The dynsec role every replica of ``service`` holds: ``svc-<service>``."""
    return f"{SERVICE_LOGIN_PREFIX}{check_service(service)}"


def replicas_env(service: str) -> str:
    """The variable holding the replica count of ``service``: ``HEARTH_<SERVICE>_REPLICAS``."""
    return f"HEARTH_{check_service(service).upper()}_REPLICAS"


def replica_env(service: str) -> str:
    """The variable naming a service's replica: ``HEARTH_<SERVICE>_REPLICA`` (its settings')."""
    return f"HEARTH_{check_service(service).upper()}_REPLICA"


def replica_names(count: int) -> tuple[str, ...]:
    """The names of ``count`` replicas: ``"0"`` to ``str(count - 1)``."""
    if not 1 <= count <= MAX_REPLICAS:
        raise ValueError(f"a replica count must be 1 to {MAX_REPLICAS}, not {count}")
    return tuple(str(index) for index in range(count))


def replica_plan(
    environ: Mapping[str, str] | None = None,
    *,
    counts: Mapping[str, int] | None = None,
    named: Iterable[tuple[str, str]] = (),
) -> dict[str, tuple[str, ...]]:
    """Which replicas of each platform service get a login.

    Per service: ``counts[service]``, else ``HEARTH_<SERVICE>_REPLICAS`` from ``environ``
    (``os.environ`` by default), else 1, gives replicas ``0`` to ``count - 1``;
    ``HEARTH_<SERVICE>_REPLICA`` in ``environ`` and ``named`` ``(service, replica)`` pairs add
    replicas by name. ``ValueError`` names a bad value.
    """
    env = os.environ if environ is None else environ
    plan: dict[str, tuple[str, ...]] = {}
    for service in PLATFORM_SERVICES:
        if counts is not None and service in counts:
            count = counts[service]
        else:
            raw = env.get(replicas_env(service), "").strip() or "1"
            if not raw.isdigit():
                raise ValueError(f"{replicas_env(service)} must be a whole number, not {raw!r}")
            count = int(raw)
        plan[service] = replica_names(count)
    deployed = [
        (service, env[replica_env(service)].strip())
        for service in PLATFORM_SERVICES
        if env.get(replica_env(service), "").strip()
    ]
    for service, replica in [*deployed, *named]:
        check_service(service)
        replica = check_slug(replica, "replica")
        if replica not in plan[service]:
            plan[service] = (*plan[service], replica)
    return plan
