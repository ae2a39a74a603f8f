"""The auth service's own errors (all :class:`~hearth.common.errors.ServiceError` subclasses).

```
ServiceError
├── BadRequest
│   ├── InvalidGrant       400 invalid_grant: wrong username/password, bad refresh token
│   └── InvalidClient      400 invalid_client: unknown or revoked API key, wrong client secret
├── Forbidden
│   └── SignupClosed       403 signup_closed: open sign-up is off
├── NotFound
│   └── ApiKeyNotFound     404 api_key_not_found
└── Conflict
    ├── UsernameTaken      409 username_taken (``usernames`` lists which)
    ├── LastAdmin          409 last_admin: the last enabled admin stays
    └── TooManyApiKeys     409 too_many_api_keys
```
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.errors import BadRequest, Conflict, Forbidden, NotFound

__all__ = [
    "ApiKeyNotFound",
    "InvalidClient",
    "InvalidGrant",
    "LastAdmin",
    "SignupClosed",
    "TooManyApiKeys",
    "UsernameTaken",
]


class InvalidGrant(BadRequest):
    """The credentials or the refresh token were refused (RFC 6749 ``invalid_grant``)."""

    code = "invalid_grant"
    title = "Invalid grant"


class SignupClosed(Forbidden):
    """Open sign-up is off: an admin creates accounts."""

    code = "signup_closed"
    title = "Sign-up is closed"


class UsernameTaken(Conflict):
    """One or more usernames already exist (or repeat within a batch)."""

    code = "username_taken"
    title = "Username taken"

    def __init__(self, usernames: Sequence[str]) -> None:
        self.usernames = sorted(set(usernames))
        super().__init__(f"usernames already taken: {', '.join(self.usernames)}")


class InvalidClient(BadRequest):
    """Client credentials were refused: unknown or revoked API key, wrong service secret."""

    code = "invalid_client"
    title = "Invalid client"


class LastAdmin(Conflict):
    """The change would leave no enabled admin."""

    code = "last_admin"
    title = "The last admin stays"


class ApiKeyNotFound(NotFound):
    """No API key of the caller's has this id."""

    code = "api_key_not_found"
    title = "No such API key"


class TooManyApiKeys(Conflict):
    """The user has as many live API keys as allowed: revoke one first."""

    code = "too_many_api_keys"
    title = "Too many API keys"
