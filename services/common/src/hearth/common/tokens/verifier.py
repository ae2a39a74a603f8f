"""TokenVerifier: turns a bearer token into a :class:`Caller`, or refuses it.

An access token is accepted only when all of these hold:

- its header says ``alg: EdDSA`` and names a ``kid`` found in auth's JWKS
  (after at most one rate-limited refresh); ``none``, HMAC and every other
  algorithm are refused before any key is looked at;
- the Ed25519 signature verifies;
- it carries ``iss aud sub iat exp jti typ roles scope``, with ``iss`` and
  ``aud`` equal to the expected ones, ``typ`` = ``access``, ``exp`` in the
  future and ``iat``/``nbf`` not in the future (both within ``leeway``);
- ``sub`` is a user id (a canonical lowercase UUID), ``roles`` a list of
  strings, ``scope`` a space-separated string, ``homes`` (API-key tokens only)
  a list of home slugs, ``key`` (API-key tokens only) the key's id;
- or ``sub`` names a service identity (:mod:`hearth.common.service_identities`),
  only where the verifier was built with ``accept_services=True``; such a token
  carries no roles, no homes and no scope beyond the service's own;
- its user is not disabled and ``floor(iat * 1000)`` is not before the user's
  ``not_before`` mark (milliseconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature

from hearth.common.errors import (
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenNotYetValid,
    TokenRevoked,
    UserDisabled,
)
from hearth.common.service_identities import SERVICE_SCOPES, is_service_identity
from hearth.common.tokens.caller import Caller
from hearth.common.tokens.jwks import JwksClient
from hearth.common.tokens.jws import decode_segment, parse_compact
from hearth.common.tokens.revocation import RevocationMarks
from hearth.common.topics import is_slug, is_user_id

__all__ = ["ACCESS_TYPE", "ALGORITHM", "REQUIRED_CLAIMS", "TokenVerifier"]

ALGORITHM = "EdDSA"
"""The only signature algorithm Hearth accepts (Ed25519 keys)."""
ACCESS_TYPE = "access"
"""The ``typ`` claim of an access token."""
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "typ", "roles", "scope")
"""Claims every access token must carry."""

_MAX_TOKEN_LENGTH = 8192
_MAX_HEADERS = 64
"""Distinct valid headers remembered (one per signing key; cleared when full)."""


class TokenVerifier:
    """Verifies access tokens against auth's JWKS and the users' revocation marks."""

    def __init__(
        self,
        jwks: JwksClient,
        marks: RevocationMarks | None = None,
        *,
        issuer: str,
        audience: str = "hearth",
        leeway: float = 5.0,
        accept_services: bool = False,
    ) -> None:
        self.jwks = jwks
        self.accept_services = accept_services
        self.marks = marks if marks is not None else RevocationMarks()
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._kids: dict[str, str] = {}  # a valid header segment -> its kid (bounded)

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self.issuer!r}, audience={self.audience!r}, {self.jwks!r})"

    async def verify(self, token: str) -> Caller:
        """The caller ``token`` proves, else a :class:`~hearth.common.errors.TokenError`."""
        if not token:
            raise TokenMissing("no access token")
        if len(token) > _MAX_TOKEN_LENGTH:
            raise TokenInvalid("the token is too long")
        parsed = parse_compact(token)
        kid = self._kids.get(parsed.header)
        if kid is None:
            kid = self._check_header(decode_segment(parsed.header))
            if len(self._kids) >= _MAX_HEADERS:
                self._kids.clear()
            self._kids[parsed.header] = kid
        key = await self.jwks.get_key(kid)
        try:
            key.verify(parsed.signature, parsed.signing_input)
        except InvalidSignature:
            raise TokenInvalid("the token's signature does not verify") from None
        claims = decode_segment(parsed.payload)
        self._check_claims(claims)
        caller = self._caller(token, claims)
        self._check_marks(caller)
        return caller

    @staticmethod
    def _check_header(header: dict[str, Any]) -> str:
        if header.get("alg") != ALGORITHM:
            raise TokenInvalid("the token is not signed with EdDSA")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenInvalid("the token names no key id")
        return kid

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """The registered claims, as PyJWT's ``decode`` checks them with every option on."""
        for claim in REQUIRED_CLAIMS:
            if claim not in claims:
                raise TokenInvalid(f"the token lacks the {claim!r} claim")
        now = time.time()
        iat, exp, nbf = claims["iat"], claims["exp"], claims.get("nbf")
        if not _is_number(iat) or not _is_number(exp) or (nbf is not None and not _is_number(nbf)):
            raise TokenInvalid("the token is malformed")
        if iat > now + self.leeway or (nbf is not None and nbf > now + self.leeway):
            raise TokenNotYetValid("the token is not valid yet")
        if exp <= now - self.leeway:
            raise TokenExpired("the token has expired")
        if claims["iss"] != self.issuer:
            raise TokenInvalid("the token is from another issuer")
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise TokenInvalid("the token is for another audience")

    def _caller(self, token: str, claims: dict[str, Any]) -> Caller:
        if claims["typ"] != ACCESS_TYPE:
            raise TokenInvalid("the token is not an access token")
        sub, jti, iat, exp = claims["sub"], claims["jti"], claims["iat"], claims["exp"]
        service = self._service(sub)
        if service is None and (not isinstance(sub, str) or not is_user_id(sub)):
            raise TokenInvalid("the token's subject is not a user id")
        if not isinstance(jti, str) or not jti:
            raise TokenInvalid("the token has no id")
        roles = _strings(claims["roles"], "roles")
        scope = claims["scope"]
        if not isinstance(scope, str):
            raise TokenInvalid("the token's scope is not a string")
        homes = claims.get("homes")
        if homes is not None:
            homes = _strings(homes, "homes")
            if not all(is_slug(home) for home in homes):
                raise TokenInvalid("the token's homes are not home slugs")
        api_key = claims.get("key")
        if api_key is not None and (not isinstance(api_key, str) or not api_key):
            raise TokenInvalid("the token's key claim is not a key id")
        scopes = frozenset(scope.split())
        if service is not None and (
            roles
            or homes is not None
            or api_key is not None
            or not scopes <= SERVICE_SCOPES[service]
        ):
            raise TokenInvalid("the service token claims more than its service may")
        return Caller(
            user_id=sub,
            roles=frozenset(roles),
            scopes=scopes,
            homes=None if homes is None else frozenset(homes),
            token_id=jti,
            issued_at=float(iat),
            expires_at=float(exp),
            token=token,
            api_key=api_key,
            service=service,
        )

    def _service(self, sub: object) -> str | None:
        """The service identity ``sub`` names, if any; refused here unless accepted."""
        if not is_service_identity(sub):
            return None
        if not self.accept_services:
            raise TokenInvalid("service tokens are not accepted here")
        assert isinstance(sub, str)
        return sub

    def _check_marks(self, caller: Caller) -> None:
        if caller.is_service:
            return
        mark = self.marks.get(caller.user_id)
        if mark is None:
            return
        if mark.disabled:
            raise UserDisabled("the user is disabled")
        if math.floor(caller.issued_at * 1000) < mark.not_before:
            raise TokenRevoked("the token has been revoked")


def _is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)  # type: ignore[arg-type]


def _strings(value: object, claim: str) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TokenInvalid(f"the token's {claim} claim is not a list of strings")
    return value
