"""Auth's OpenAPI: its tags and one example per request and answer schema.

``create_app`` hands both to ``create_service_app`` (:mod:`hearth.common.openapi_conventions`
puts each example on every body and 2xx answer that uses the schema);
services/platform/tests/test_openapi_conventions.py checks each example against its schema.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["EXAMPLES", "TAGS"]

TAGS: Final = [
    {
        "name": "tokens",
        "description": "Log in (password, refresh token, API key or service client) and out.",
    },
    {"name": "users", "description": "Accounts: sign-up, one's own profile, admin management."},
    {"name": "keys", "description": "The signing keys: the public JWKS and rotation."},
    {"name": "api keys", "description": "Long-lived keys for scripts, limited by scope and home."},
]

_AT: Final = "2026-11-29T08:30:00Z"
_USER_ID: Final = "0b7e4a1c-3f2d-4e6a-9c1b-5d8f2a7e9c31"
_JWT: Final = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiIwYjdlNGExYyJ9.c2lnbmF0dXJl"
_API_KEY: Final[dict[str, Any]] = {
    "id": "5c2f7d9e-1a4b-4c3d-8e6f-2b9a7c1d3e5f",
    "name": "greenhouse script",
    "scopes": ["read"],
    "homes": ["maple-house"],
    "created_at": _AT,
    "last_used_at": None,
    "revoked": False,
}

EXAMPLES: Final[dict[str, Any]] = {
    "TokenForm": {"grant_type": "password", "username": "sam", "password": "correct horse"},
    "TokenResponse": {
        "access_token": _JWT,
        "token_type": "bearer",
        "expires_in": 900,
        "scope": "read control",
        "refresh_token": "rt_Jx8QeV3mZr5kT1wN9bLc7yHd",
    },
    "RefreshRequest": {"refresh_token": "rt_Jx8QeV3mZr5kT1wN9bLc7yHd"},
    "UserSignup": {"username": "sam", "password": "correct horse", "display_name": "Sam"},
    "UserCreate": {"username": "sam", "password": "correct horse", "display_name": "Sam"},
    "UserBatchCreate": {
        "users": [
            {"username": "pupil-01", "password": "first lesson 01"},
            {"username": "pupil-02", "password": "first lesson 02"},
        ]
    },
    "UserUpdate": {"display_name": "Sam Rivera"},
    "UserAdminUpdate": {"disabled": True},
    "PasswordChange": {"current_password": "correct horse", "new_password": "battery staple"},
    "UserPublic": {
        "id": _USER_ID,
        "username": "sam",
        "display_name": "Sam",
        "roles": [],
        "disabled": False,
        "created_at": _AT,
        "updated_at": _AT,
    },
    "UserId": {"id": _USER_ID},
    "JsonWebKeySet": {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
                "kid": "k1",
                "use": "sig",
                "alg": "EdDSA",
            }
        ]
    },
    "RotatedKey": {"kid": "k2", "activates_at": "2026-11-29T08:35:00Z"},
    "ApiKeyCreate": {"name": "greenhouse script", "scopes": ["read"], "homes": ["maple-house"]},
    "ApiKeyPublic": _API_KEY,
    "ApiKeyCreated": {**_API_KEY, "key": "hk_5c2f7d9e_Q3vN8xT1mZ6pR4sW"},
}
"""Schema name -> example (ids, tokens and times are made up)."""
