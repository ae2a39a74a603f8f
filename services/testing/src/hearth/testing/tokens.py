"""Access tokens for tests: a signing key, a JWKS served over real HTTP, a minter, a verifier.

Fixtures (loaded for every suite by the root ``conftest.py``):

- ``token_signing_key`` (session): an Ed25519 :class:`SigningKey` with a kid;
- ``jwks_server`` (session): a :class:`JwksServer` publishing that key at
  ``<url>/.well-known/jwks.json`` on a kernel-chosen port;
- ``mint_token`` (session): a :class:`TokenMinter` signing valid access
  tokens by default, with overrides for every negative case
  (``omit=("scope",)``, ``alg="none"``, ``alg="HS256"`` signed with the public
  key, another ``key``/``kid``, ``typ``, ``iat``/``exp``/``nbf``...);
- ``revocation_marks`` and ``token_verifier`` (per test): a
  :class:`~hearth.common.tokens.TokenVerifier` reading that JWKS over HTTP,
  with its own fresh marks (``token_verifier.marks.apply(...)``).

::

    async def test_me(mint_token, token_verifier):
        caller = await token_verifier.verify(mint_token(USER, roles=["admin"]))
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hearth.common.tokens import JwksClient, RevocationMarks, TokenVerifier

__all__ = [
    "JWKS_PATH",
    "TEST_AUDIENCE",
    "TEST_ISSUER",
    "JwksServer",
    "SigningKey",
    "TokenMinter",
    "jwks_server",
    "mint_token",
    "new_user_id",
    "revocation_marks",
    "token_signing_key",
    "token_verifier",
]

TEST_ISSUER = "hearth-auth"
"""The issuer test tokens carry (HearthSettings' default ``token_issuer``)."""
TEST_AUDIENCE = "hearth"
JWKS_PATH = "/.well-known/jwks.json"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_user_id() -> str:
    """A fresh user id (a canonical lowercase UUID)."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 key pair with its key id, as auth would hold it."""

    kid: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """A new random key; ``kid`` defaults to a random one."""
        return cls(kid or f"test-{uuid.uuid4().hex[:12]}", Ed25519PrivateKey.generate())

    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK (what a JWKS lists)."""
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(raw),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        }

    def public_pem(self) -> bytes:
        """The public key in PEM (what an HS256 key-confusion attack uses as the secret)."""
        return self.private_key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )


class JwksServer:
    """A tiny HTTP server in a thread publishing a JWKS; keys can be swapped (rotation).

    ``requests`` counts the JWKS requests served; ``fail`` makes it answer 503.
    """

    def __init__(self, keys: Iterable[SigningKey] = (), host: str = "127.0.0.1") -> None:
        self._keys: list[SigningKey] = list(keys)
        self._lock = threading.Lock()
        self.requests = 0
        self.fail = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self._answer(404, b'{"title": "Not Found"}')
                    return
                with server._lock:
                    server.requests += 1
                    body = json.dumps({"keys": [k.public_jwk() for k in server._keys]}).encode()
                    failing = server.fail
                if failing:
                    self._answer(503, b'{"title": "Service Unavailable"}')
                else:
                    self._answer(200, body)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, 0), Handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self.url = f"{self.base_url}{JWKS_PATH}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def set_keys(self, keys: Iterable[SigningKey]) -> None:
        """Publish exactly ``keys`` from now on."""
        with self._lock:
            self._keys = list(keys)

    @property
    def key_ids(self) -> list[str]:
        """The key ids published now."""
        with self._lock:
            return [key.kid for key in self._keys]

    def start(self) -> JwksServer:
        """Start serving in a background thread (the socket already listens)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TokenMinter:
    """Signs access tokens like auth does; every claim can be overridden for negative tests."""

    def __init__(
        self, key: SigningKey, *, issuer: str = TEST_ISSUER, audience: str = TEST_AUDIENCE
    ) -> None:
        self.key = key
        self.issuer = issuer
        self.audience = audience

    def claims(
        self,
        user_id: str | None = None,
        *,
        roles: Sequence[str] = (),
        scope: str = "read control",
        homes: Sequence[str] | None = None,
        typ: str = "access",
        iat: float | None = None,
        exp: float | None = None,
        ttl: float = 900.0,
        nbf: float | None = None,
        jti: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        extra: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
    ) -> dict[str, Any]:
        """The claims :meth:`__call__` signs (same arguments, without the signing ones)."""
        issued = round(time.time(), 3) if iat is None else iat
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": self.audience if audience is None else audience,
            "sub": new_user_id() if user_id is None else user_id,
            "iat": issued,
            "exp": issued + ttl if exp is None else exp,
            "jti": uuid.uuid4().hex if jti is None else jti,
            "typ": typ,
            "roles": list(roles),
            "scope": scope,
        }
        if homes is not None:
            claims["homes"] = list(homes)
        if nbf is not None:
            claims["nbf"] = nbf
        claims.update(extra or {})
        for name in omit:
            claims.pop(name, None)
        return claims

    def __call__(
        self,
        user_id: str | None = None,
        *,
        kid: str | None = None,
        alg: str = "EdDSA",
        key: SigningKey | None = None,
        headers: Mapping[str, Any] | None = None,
        **claim_options: Any,
    ) -> str:
        """A signed access token for ``user_id`` (a new random user when omitted).

        ``key`` signs with another key (its own kid unless ``kid`` is given);
        ``alg="none"`` makes an unsigned token; ``alg="HS256"`` HMAC-signs with
        the public key's PEM as the secret (the key-confusion attack).
        """
        signer = key or self.key
        payload = self.claims(user_id, **claim_options)
        header: dict[str, Any] = {
            "alg": alg,
            "typ": "JWT",
            "kid": signer.kid if kid is None else kid,
        }
        header.update(headers or {})
        if alg == "EdDSA":
            return jwt.encode(payload, signer.private_key, algorithm="EdDSA", headers=dict(header))
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        )
        if alg == "none":
            return f"{signing_input}."
        if alg == "HS256":
            digest = hmac.new(signer.public_pem(), signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{_b64url(digest)}"
        raise ValueError(f"the minter cannot sign with {alg!r}")


@pytest.fixture(scope="session")
def token_signing_key() -> SigningKey:
    """The Ed25519 key test tokens are signed with (kid ``test-key-1``)."""
    return SigningKey.generate("test-key-1")


@pytest.fixture(scope="session")
def jwks_server(token_signing_key: SigningKey) -> Iterator[JwksServer]:
    """A JWKS with the test key, served over real HTTP for the whole session.

    Shared by every test: never swap its keys; a rotation test starts its own
    :class:`JwksServer`.
    """
    with JwksServer([token_signing_key]) as server:
        yield server


@pytest.fixture(scope="session")
def mint_token(token_signing_key: SigningKey) -> TokenMinter:
    """Mints access tokens signed with the test key: ``mint_token(user_id, roles=[...])``."""
    return TokenMinter(token_signing_key)


@pytest.fixture
def revocation_marks() -> RevocationMarks:
    """Fresh, empty revocation marks for one test."""
    return RevocationMarks()


@pytest.fixture
def token_verifier(jwks_server: JwksServer, revocation_marks: RevocationMarks) -> TokenVerifier:
    """A verifier reading the test JWKS over HTTP, with this test's revocation marks."""
    return TokenVerifier(
        JwksClient(jwks_server.url),
        revocation_marks,
        issuer=TEST_ISSUER,
        audience=TEST_AUDIENCE,
    )
