"""Access tokens: auth's keys (JWKS), users' revocation marks, the verifier, the Caller.

```
verifier = TokenVerifier(JwksClient(settings.jwks_url), RevocationMarks(),
                         issuer=settings.token_issuer, audience=settings.token_audience)
caller = await verifier.verify(bearer_token)   # Caller, or a TokenError subclass
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from hearth.common.errors import (
    KeysUnavailable,
    TokenError,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenNotYetValid,
    TokenRevoked,
    UnknownKey,
    UserDisabled,
)
from hearth.common.tokens.caller import ADMIN_ROLE, Caller
from hearth.common.tokens.jwks import JwksClient, parse_jwks
from hearth.common.tokens.revocation import USER_MARKS_FILTER, RevocationMarks, UserMark
from hearth.common.tokens.verifier import ACCESS_TYPE, ALGORITHM, REQUIRED_CLAIMS, TokenVerifier

if TYPE_CHECKING:
    from hearth.common.settings import HearthSettings

__all__ = [
    "ACCESS_TYPE",
    "ADMIN_ROLE",
    "ALGORITHM",
    "REQUIRED_CLAIMS",
    "USER_MARKS_FILTER",
    "Caller",
    "JwksClient",
    "KeysUnavailable",
    "RevocationMarks",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenMissing",
    "TokenNotYetValid",
    "TokenRevoked",
    "TokenVerifier",
    "UnknownKey",
    "UserDisabled",
    "UserMark",
    "parse_jwks",
    "verifier_from_settings",
]


def verifier_from_settings(
    settings: HearthSettings,
    *,
    marks: RevocationMarks | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    accept_services: bool = False,
) -> TokenVerifier:
    """A verifier reading keys from ``settings.jwks_url`` with the settings' issuer and audience.

    ``accept_services`` lets service-identity tokens in (a service with rules for them).
    """
    return TokenVerifier(
        JwksClient(settings.jwks_url, transport=transport),
        marks,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway,
        accept_services=accept_services,
    )
