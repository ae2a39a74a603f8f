"""The auth service's own errors (all :class:`~hearth.common.errors.ServiceError` subclasses).

```
ServiceError
├── BadRequest
│   └── InvalidGrant       400 invalid_grant: wrong username/password, bad refresh token
├── Forbidden
│   └── SignupClosed       403 signup_closed: open sign-up is off
└── Conflict
    └── UsernameTaken      409 username_taken (``usernames`` lists which)
```
"""

from __future__ import annotations

from collections.abc import Sequence

from hearth.common.errors import BadRequest, Conflict, Forbidden

__all__ = ["InvalidGrant", "SignupClosed", "UsernameTaken"]


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
