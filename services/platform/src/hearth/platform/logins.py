"""Who logs in to the broker: the platform's services, their login names and client ids.

One data structure (:data:`PLATFORM_SERVICES`) lists the services that get a broker login;
the secrets file, the bootstrap and the test harness all iterate it, so adding a service
here gives it a password, a dynsec client and a role everywhere.

Names (docs/decisions.md, "Broker logins")::

    hearth-admin              the dynamic security admin (created offline by the bootstrap)
    svc-<service>             a service's login, shared by its replicas (not bound to a client id)
    <service>-<replica>       the client id of one service replica
    dev.<home>.<device>       a device's login; its client id is bound to the same string
                              (dots: slugs contain ``-``, so ``dev-a-b-c`` would be ambiguous)
"""

from __future__ import annotations

from hearth.common.topics import check_slug

__all__ = [
    "ADMIN_USERNAME",
    "PLATFORM_SERVICES",
    "check_service",
    "device_username",
    "service_client_id",
    "service_username",
]

ADMIN_USERNAME = "hearth-admin"
"""The dynamic security plugin's admin login (its password is ``HEARTH_BROKER_ADMIN_PASSWORD``)."""

PLATFORM_SERVICES: tuple[str, ...] = ("auth", "registry", "ingest", "realtime")
"""Every service that gets its own broker login, role and password, in bootstrap order."""


def check_service(service: str) -> str:
    """Return ``service`` if it is one of :data:`PLATFORM_SERVICES`, else raise ``ValueError``."""
    if service not in PLATFORM_SERVICES:
        known = ", ".join(PLATFORM_SERVICES)
        raise ValueError(f"unknown platform service {service!r} (known: {known})")
    return service


def service_username(service: str) -> str:
    """The broker login of ``service``: ``svc-<service>``."""
    return f"svc-{check_service(service)}"


def service_client_id(service: str, replica: str) -> str:
    """The client id of one replica of ``service``: ``<service>-<replica>``."""
    return f"{check_service(service)}-{check_slug(replica, 'replica')}"


def device_username(home: str, device: str) -> str:
    """A device's broker login, role name and bound client id: ``dev.<home>.<device>``."""
    return f"dev.{check_slug(home, 'home')}.{check_slug(device, 'device')}"
