"""The registry's own errors (all :class:`~hearth.common.errors.ServiceError` subclasses).

```
ServiceError
├── NotFound
│   ├── HomeNotFound        404 home_not_found: no such home, or not one of the caller's
│   ├── DeviceNotFound      404 device_not_found (deleted devices too)
│   ├── MemberNotFound      404 member_not_found
│   └── UserNotFound        404 user_not_found: auth knows no such username
├── Forbidden
│   └── RoleForbids         403 role_forbidden: the caller's role in the home does not allow it
├── Conflict
│   ├── SlugTaken           409 slug_taken: a home or device (even a deleted one) has the slug
│   ├── AlreadyMember       409 already_member
│   ├── LastOwner           409 last_owner: a home keeps at least one owner
│   ├── NoCredentials       409 no_credentials: the device has no broker login (rotate first)
│   └── GatewayInUse        409 gateway_in_use: other devices relay through this one
├── InvalidGateway          422 invalid_gateway: the gateway is not a live device of the home
├── UnknownProperty         422 unknown_property: the device has no such property
├── InvalidCommandValue     422 invalid_value: the value breaks the property's capability
├── DynsecFailed            502 broker_refused: the broker refused a device login change
└── Unavailable
    ├── AuthUnavailable     503 auth_unavailable: auth did not answer
    ├── BrokerUnavailable   503 broker_unavailable: the broker did not take a login change
    ├── DeviceKeyMismatch   503 device_key_mismatch: stored device passwords do not open
    └── TooManyWaiting      503 too_many_waiting: too many calls wait for acks already
```
"""

from __future__ import annotations

from hearth.common.errors import Conflict, Forbidden, NotFound, ServiceError, Unavailable

__all__ = [
    "AlreadyMember",
    "AuthUnavailable",
    "BrokerUnavailable",
    "DeviceKeyMismatch",
    "DeviceNotFound",
    "DynsecFailed",
    "GatewayInUse",
    "HomeNotFound",
    "InvalidCommandValue",
    "InvalidGateway",
    "LastOwner",
    "MemberNotFound",
    "NoCredentials",
    "RoleForbids",
    "SlugTaken",
    "TooManyWaiting",
    "UnknownProperty",
    "UserNotFound",
]


class HomeNotFound(NotFound):
    """No such home, or the caller may not know it exists (the same answer on purpose)."""

    code = "home_not_found"
    title = "Home not found"


class DeviceNotFound(NotFound):
    """No such live device in the home."""

    code = "device_not_found"
    title = "Device not found"


class MemberNotFound(NotFound):
    """The user is not a member of the home."""

    code = "member_not_found"
    title = "Member not found"


class UserNotFound(NotFound):
    """Auth knows no user by that username."""

    code = "user_not_found"
    title = "User not found"


class RoleForbids(Forbidden):
    """The caller's role in the home does not allow this."""

    code = "role_forbidden"
    title = "Role forbids"


class SlugTaken(Conflict):
    """A home or device already has (or once had) this slug."""

    code = "slug_taken"
    title = "Slug taken"


class AlreadyMember(Conflict):
    """The user is already a member of the home."""

    code = "already_member"
    title = "Already a member"


class LastOwner(Conflict):
    """The change would leave the home without an owner."""

    code = "last_owner"
    title = "Last owner"


class NoCredentials(Conflict):
    """The device has no broker login yet (added before device logins existed)."""

    code = "no_credentials"
    title = "No broker login"


class GatewayInUse(Conflict):
    """Other live devices name this device as their gateway."""

    code = "gateway_in_use"
    title = "Gateway in use"


class InvalidGateway(ServiceError):
    """The gateway named is not a live device of the same home (or is the device itself)."""

    status = 422
    code = "invalid_gateway"
    title = "Invalid gateway"


class AuthUnavailable(Unavailable):
    """The auth service did not answer the lookup."""

    code = "auth_unavailable"
    title = "Auth unavailable"


class BrokerUnavailable(Unavailable):
    """The broker did not answer a device login change in time; nothing was changed."""

    code = "broker_unavailable"
    title = "Broker unavailable"


class DynsecFailed(ServiceError):
    """The broker refused a device login change (its dynsec state differs from the registry's)."""

    status = 502
    code = "broker_refused"
    title = "Broker refused the change"


class DeviceKeyMismatch(Unavailable):
    """A stored device password does not open: ``HEARTH_REGISTRY_DEVICE_KEY`` is not the key
    it was sealed with (an operator's fix; the password is never shown)."""

    code = "device_key_mismatch"
    title = "Device passwords do not open"


class UnknownProperty(ServiceError):
    """A command names a property the device does not have."""

    status = 422
    code = "unknown_property"
    title = "Unknown property"


class InvalidCommandValue(ServiceError):
    """A command's value breaks its property's capability (the detail names the bound)."""

    status = 422
    code = "invalid_value"
    title = "Invalid command value"


class TooManyWaiting(Unavailable):
    """Too many calls already wait for an ack (the waiters are bounded)."""

    code = "too_many_waiting"
    title = "Too many calls waiting"
