"""Broker login names and client ids: who may connect as what (docs/broker.md, "Logins").

::

    svc-<service>-<replica>   one replica of a service; bound to client id <service>-<replica>
    <service>-<replica>       the client id of that replica (its MQTT session)
    dev.<home>.<device>       a device's login, role and bound client id (one string)

Every login except the broker admin is bound to exactly one client id, so no login can
take over another's session: a service replica cannot connect as a device or as a replica
of another service, and a device cannot connect as anything but itself. The names cannot
collide: a service client id has no dot, a device's has two; a service name has no dash,
so ``<service>-`` never starts another service's ids.
"""

from __future__ import annotations

import re
from typing import Final

from hearth.common.topics import SLUG_PATTERN, check_slug

__all__ = [
    "DEVICE_LOGIN_PREFIX",
    "SERVICE_LOGIN_PREFIX",
    "SERVICE_NAME_PATTERN",
    "check_service_name",
    "device_username",
    "parse_device_username",
    "service_client_id",
    "service_username",
]

SERVICE_LOGIN_PREFIX: Final = "svc-"
"""Every service replica's login starts with this (``svc-auth-0``)."""
DEVICE_LOGIN_PREFIX: Final = "dev."
"""Every device's login, role and client id starts with this (``dev.flat.lamp``)."""
SERVICE_NAME_PATTERN: Final = r"[a-z][a-z0-9]{0,30}"
"""A service's name: a lower-case word without dashes (``auth``, ``registry``)."""

_SERVICE = re.compile(SERVICE_NAME_PATTERN)
_DEVICE_LOGIN = re.compile(rf"dev\.({SLUG_PATTERN})\.({SLUG_PATTERN})")


def check_service_name(service: str) -> str:
    """``service`` if it is a lower-case word without dashes, else ``ValueError``."""
    if not isinstance(service, str) or _SERVICE.fullmatch(service) is None:
        raise ValueError(f"service name {service!r} is not a lower-case word without dashes")
    return service


def service_username(service: str, replica: str) -> str:
    """The broker login of one replica of ``service``: ``svc-<service>-<replica>``."""
    return f"{SERVICE_LOGIN_PREFIX}{service_client_id(service, replica)}"


def service_client_id(service: str, replica: str) -> str:
    """The client id a replica's login is bound to: ``<service>-<replica>``."""
    return f"{check_service_name(service)}-{check_slug(replica, 'replica')}"


def device_username(home: str, device: str) -> str:
    """A device's broker login, role name and bound client id: ``dev.<home>.<device>``."""
    return f"{DEVICE_LOGIN_PREFIX}{check_slug(home, 'home')}.{check_slug(device, 'device')}"


def parse_device_username(name: str) -> tuple[str, str]:
    """The ``(home, device)`` of a device login name; ``ValueError`` for any other name."""
    match = _DEVICE_LOGIN.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"{name!r} is not a device login (dev.<home>.<device>)")
    return match.group(1), match.group(2)
