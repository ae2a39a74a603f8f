"""The root of every error hearth.common raises, and the errors services share.

Exception tree (modules other than this one are named in brackets):

```
HearthError                      root of everything hearth.common raises
├── ConfigError                  settings refused (placeholder secret, bad value)
├── TokenError                   an access token was refused (``reason`` says why)
│   ├── TokenMissing             no bearer token was sent            reason "missing"
│   ├── TokenInvalid             malformed, bad signature, wrong claims "invalid"
│   │   └── UnknownKey           signed by a key the JWKS does not hold "unknown_key"
│   ├── TokenExpired             past ``exp`` (beyond the leeway)     reason "expired"
│   ├── TokenNotYetValid         ``nbf``/``iat`` in the future        reason "not_yet_valid"
│   ├── TokenRevoked             issued before its user's not_before  reason "revoked"
│   └── UserDisabled             its user is disabled                 reason "disabled"
├── KeysUnavailable              the JWKS could not be fetched (a 503, not the caller's fault)
├── ServiceError                 a domain error a service maps to an HTTP status
│   ├── BadRequest       400
│   ├── Unauthorized     401
│   ├── Forbidden        403
│   │   └── InsufficientScope  the token lacks a scope (``WWW-Authenticate`` says which)
│   ├── NotFound         404
│   ├── Conflict         409
│   ├── TooManyRequests  429 (``retry_after`` seconds become ``Retry-After``)
│   └── Unavailable      503
│       └── RegistryUnavailable  the registry did not answer [hearth.common.registry_client]
├── MessageError(ValueError)     a payload that does not parse        [hearth.common.messages]
│   ├── PayloadError             a message that is not what its topic carries [messages]
│   └── TelemetryRejected        telemetry ingest refuses (``reason``) [hearth.common.telemetry]
├── TopicError(ValueError)       a topic or filter outside the grammar [hearth.common.topics]
├── DatabaseUnavailable          PostgreSQL did not answer in time (503) [hearth.common.db]
├── MqttUnavailable              no broker connection to publish on (503) [hearth.common.mqtt]
└── MqttRefused                  the broker refused a subscription    [hearth.common.mqtt]
```

Every class carries the HTTP ``status`` and a short machine ``code`` the problem
details handlers (:mod:`hearth.common.problems`) answer with, so business code
raises domain errors without knowing FastAPI. Messages of these errors are shown
to callers: never put a secret in one.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BadRequest",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "HearthError",
    "InsufficientScope",
    "KeysUnavailable",
    "NotFound",
    "ServiceError",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenMissing",
    "TokenNotYetValid",
    "TokenRevoked",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnknownKey",
    "UserDisabled",
]


class HearthError(Exception):
    """Root of every error hearth.common raises.

    ``status`` is the HTTP status a request failing with it answers, ``code`` a
    stable machine-readable word (it becomes the problem's ``code`` member), and
    ``title`` the short human summary of the kind of problem.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.title)

    @property
    def message(self) -> str:
        """The human-readable detail of this occurrence."""
        return str(self)


class ConfigError(HearthError):
    """Settings were refused: a placeholder secret outside development, or a bad value."""

    code = "config"
    title = "Invalid configuration"


class TokenError(HearthError):
    """An access token was refused; ``reason`` is one stable word saying why.

    Answered as 401 with ``WWW-Authenticate: Bearer``.
    """

    status = 401
    code = "unauthorized"
    title = "Unauthorized"
    reason: ClassVar[str] = "invalid"


class TokenMissing(TokenError):
    """No bearer token came with the request."""

    reason = "missing"


class TokenInvalid(TokenError):
    """The token is malformed, badly signed, or its claims are wrong."""

    reason = "invalid"


class UnknownKey(TokenInvalid):
    """The token names a key id the JWKS does not hold, even after a refresh."""

    reason = "unknown_key"


class TokenExpired(TokenError):
    """The token's ``exp`` has passed (beyond the leeway)."""

    reason = "expired"


class TokenNotYetValid(TokenError):
    """The token's ``nbf`` or ``iat`` is in the future (beyond the leeway)."""

    reason = "not_yet_valid"


class TokenRevoked(TokenError):
    """The token was issued before its user's ``not_before`` mark."""

    reason = "revoked"


class UserDisabled(TokenError):
    """The token's user is disabled."""

    reason = "disabled"


class KeysUnavailable(HearthError):
    """The signing keys (JWKS) could not be fetched, so no token can be checked now."""

    status = 503
    code = "keys_unavailable"
    title = "Signing keys unavailable"


class ServiceError(HearthError):
    """A domain error a service raises from its business code; maps to an HTTP status."""


class BadRequest(ServiceError):
    """The request is well-formed but asks for something that cannot be done."""

    status = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(ServiceError):
    """The caller is not authenticated (other than a refused token)."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(ServiceError):
    """The caller is authenticated but may not do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class InsufficientScope(Forbidden):
    """The caller's token does not grant the scope this needs."""

    code = "insufficient_scope"

    def __init__(self, scope: str, message: str = "") -> None:
        super().__init__(message or f"this needs the {scope!r} scope")
        self.scope = scope


class FormExpected(ServiceError):
    """A route that reads a form (auth's token endpoint) was sent another body (JSON)."""

    status = 415
    code = "form_expected"
    title = "Unsupported Media Type"


class NotFound(ServiceError):
    """The thing asked for does not exist (or the caller may not know it does)."""

    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(ServiceError):
    """The request conflicts with the current state (a duplicate, a stale version)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(ServiceError):
    """The caller tried too often; ``retry_after`` (whole seconds) says when to try again.

    Answered as 429 with a ``Retry-After`` header (RFC 9110 section 10.2.3).
    """

    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, message: str = "", *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Unavailable(ServiceError):
    """A dependency is down; the caller may retry later."""

    status = 503
    code = "unavailable"
    title = "Service unavailable"
