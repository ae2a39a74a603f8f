"""The auth service's business rules: users, logins, refresh token families, revocation.

Nothing here knows FastAPI or SQL: routes call :class:`AuthService`, which runs each
operation in one transaction through :class:`~hearth.auth.repository.AuthRepository`.

Rules worth knowing:

- The first user: at start, when no user exists and an admin password is configured,
  the admin ``admin_username`` is created; with open sign-up on, the first person to
  sign up becomes admin. Both happen under an advisory lock, so replicas agree.
- A refresh token is used once: using it returns a new one of the same family;
  using a used one again (a stolen copy, or a replay) revokes the whole family.
- Disabling a user, logging out everywhere, changing a password and losing the admin
  role set the user's ``not_before`` to the next millisecond, revoke every refresh
  token of theirs and publish their mark; access tokens issued before are refused by
  every service within a second.
- Failed logins are throttled per address and per account (:mod:`hearth.auth.login_guard`);
  a refused try costs no password hashing, known user or not.
- The last enabled admin cannot be disabled or demoted (409 ``last_admin``); on the host,
  ``hearth admin reset`` (:meth:`AuthService.reset_admin`) re-enables the seeded admin
  with a new password.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from hearth.auth.errors import InvalidGrant, LastAdmin, SignupClosed, UsernameTaken
from hearth.auth.issuer import TokenIssuer, hash_refresh_token, new_refresh_token, now_ms
from hearth.auth.login_guard import LoginGuard
from hearth.auth.marks import MarkPublisher
from hearth.auth.models import (
    ADMIN_ROLE,
    PasswordChange,
    RefreshToken,
    TokenResponse,
    User,
    UserAdminUpdate,
    UserCreate,
    UserSignup,
    UserUpdate,
)
from hearth.auth.passwords import PasswordHasher
from hearth.auth.repository import ADMINS_LOCK, SEED_LOCK, AuthRepository
from hearth.common.clock import utc_now
from hearth.common.db import Transactions
from hearth.common.errors import BadRequest, Forbidden, NotFound, TokenRevoked, UserDisabled
from hearth.common.messages import UserMark
from hearth.common.tokens import Caller

__all__ = ["AuthService", "Seed"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seed:
    """The admin to create at first start (when no user exists)."""

    username: str
    password: str


def _mark(user: User) -> UserMark:
    return UserMark(not_before=user.not_before_ms, disabled=user.disabled)


class AuthService:
    """Users, logins and tokens (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[AuthRepository],
        *,
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        marks: MarkPublisher,
        guard: LoginGuard,
        refresh_ttl: float,
        open_signup: bool = False,
    ) -> None:
        self._transactions = transactions
        self._guard = guard
        self._hasher = hasher
        self._issuer = issuer
        self._marks = marks
        self._refresh_ttl = timedelta(seconds=refresh_ttl)
        self.open_signup = open_signup

    # ------------------------------------------------------------------ first user

    async def seed_admin(self, seed: Seed | None) -> User | None:
        """Create the admin if no user exists yet and a seed is given; the user created."""
        if seed is None:
            return None
        password_hash = await self._hasher.hash(seed.password)
        async with self._transactions() as repo:
            await repo.lock(SEED_LOCK)
            if await repo.count_users() > 0:
                return None
            admin = User(username=seed.username, password_hash=password_hash, is_admin=True)
            repo.add(admin)
            await repo.commit()
        log.info("created the first admin", extra={"username": seed.username})
        return admin

    async def signup(self, data: UserSignup) -> User:
        """Open sign-up: create an account; the very first one is an admin."""
        if not self.open_signup:
            raise SignupClosed("sign-up is closed: ask an admin for an account")
        password_hash = await self._hasher.hash(data.password)
        async with self._transactions() as repo:
            await repo.lock(SEED_LOCK)
            if await repo.existing_usernames([data.username]):
                raise UsernameTaken([data.username])
            first = await repo.count_users() == 0
            user = User(
                username=data.username,
                display_name=data.display_name,
                password_hash=password_hash,
                is_admin=first,
            )
            repo.add(user)
            await repo.commit()
        return user

    # ------------------------------------------------------------------ users

    async def create_users(self, items: Sequence[UserCreate]) -> list[User]:
        """Create users (one or a whole classroom): all of them, or none."""
        names = [item.username for item in items]
        repeated = {name for name in names if names.count(name) > 1}
        if repeated:
            raise UsernameTaken(sorted(repeated))
        async with self._transactions() as repo:
            taken = await repo.existing_usernames(names)
        if taken:
            raise UsernameTaken(taken)
        hashes = await asyncio.gather(*(self._hasher.hash(item.password) for item in items))
        users = [
            User(
                username=item.username,
                display_name=item.display_name,
                password_hash=password_hash,
                is_admin=ADMIN_ROLE in item.roles,
            )
            for item, password_hash in zip(items, hashes, strict=True)
        ]
        async with self._transactions() as repo:
            taken = await repo.existing_usernames(names)  # created meanwhile?
            if taken:
                raise UsernameTaken(taken)
            repo.add(*users)
            await repo.commit()
        return users

    async def list_users(self, *, offset: int = 0, limit: int = 100) -> list[User]:
        """Users by username, a page at a time."""
        async with self._transactions() as repo:
            return await repo.list_users(offset=offset, limit=limit)

    async def get_user(self, user_id: uuid.UUID) -> User:
        """The user with ``user_id`` (404 when there is none)."""
        async with self._transactions() as repo:
            user = await repo.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def lookup(self, username: str) -> uuid.UUID:
        """The id of the user with exactly this username (404 when there is none)."""
        async with self._transactions() as repo:
            user = await repo.user_by_username(username)
        if user is None:
            raise NotFound("no such user")
        return user.id

    async def authenticate(self, caller: Caller) -> User:
        """The user behind a verified token, checked against the database.

        The database is the source of truth for this service: a disabled user, or a
        token issued before the user's ``not_before``, is refused here even before
        the mark reaches this replica over the bus.
        """
        async with self._transactions() as repo:
            user = await repo.get_user(uuid.UUID(caller.user_id))
        if user is None:
            raise TokenRevoked("the token's user no longer exists")
        if user.disabled:
            raise UserDisabled("the user is disabled")
        if math.floor(caller.issued_at * 1000) < user.not_before_ms:
            raise TokenRevoked("the token has been revoked")
        return user

    async def update_self(self, user_id: uuid.UUID, data: UserUpdate) -> User:
        """A user changes their own profile."""
        async with self._transactions() as repo:
            user = await repo.get_user(user_id, for_update=True)
            if user is None:
                raise NotFound("no such user")
            if data.display_name is not None:
                user.display_name = data.display_name
            user.updated_at = utc_now()
            repo.add(user)
            await repo.commit()
        return user

    async def admin_update(
        self, actor_id: uuid.UUID, user_id: uuid.UUID, data: UserAdminUpdate
    ) -> User:
        """An admin sets a user's roles, disables or enables them, or renames them.

        Disabling or removing the admin role revokes the user's tokens. An admin cannot
        disable themselves or drop their own admin role (so one admin always remains).
        """
        if actor_id == user_id and (
            data.disabled is True or (data.roles is not None and ADMIN_ROLE not in data.roles)
        ):
            raise BadRequest("you cannot disable yourself or remove your own admin role")
        async with self._transactions() as repo:
            await repo.lock(ADMINS_LOCK)
            user = await repo.get_user(user_id, for_update=True)
            if user is None:
                raise NotFound("no such user")
            await self._keep_an_admin(repo, user, data)
            revoke = False
            changed_mark = False
            if data.display_name is not None:
                user.display_name = data.display_name
            if data.roles is not None:
                make_admin = ADMIN_ROLE in data.roles
                revoke = revoke or (user.is_admin and not make_admin)
                user.is_admin = make_admin
            if data.disabled is not None and data.disabled != user.disabled:
                user.disabled = data.disabled
                changed_mark = True
                revoke = revoke or data.disabled
            now = utc_now()
            if revoke:
                user.not_before_ms = now_ms() + 1
                await repo.revoke_user_tokens(user.id, now)
                changed_mark = True
            user.updated_at = now
            repo.add(user)
            await repo.commit()
        if changed_mark:
            await self._marks.publish(str(user.id), _mark(user))
        return user

    @staticmethod
    async def _keep_an_admin(repo: AuthRepository, user: User, data: UserAdminUpdate) -> None:
        """Refuse to disable or demote the last enabled admin (under ``ADMINS_LOCK``)."""
        if not user.is_admin or user.disabled:
            return
        demoted = data.roles is not None and ADMIN_ROLE not in data.roles
        if (data.disabled is True or demoted) and await repo.count_enabled_admins() <= 1:
            raise LastAdmin("the last enabled admin cannot be disabled or demoted")

    async def reset_admin(self, username: str, password: str) -> User:
        """Recovery on the host: the seeded admin exists, is enabled, an admin, with ``password``.

        Every earlier token of theirs is revoked and the new mark is published.
        """
        password_hash = await self._hasher.hash(password)
        async with self._transactions() as repo:
            await repo.lock(ADMINS_LOCK)
            user = await repo.user_by_username(username)
            if user is None:
                user = User(username=username, password_hash=password_hash, is_admin=True)
            now = utc_now()
            user.password_hash = password_hash
            user.is_admin = True
            user.disabled = False
            user.not_before_ms = now_ms() + 1
            user.updated_at = now
            repo.add(user)
            await repo.flush()
            await repo.revoke_user_tokens(user.id, now)
            await repo.commit()
        log.warning("the seeded admin was reset on the host", extra={"username": username})
        await self._marks.publish(str(user.id), _mark(user))
        return user

    async def change_password(self, user_id: uuid.UUID, data: PasswordChange) -> None:
        """A user changes their password; every token of theirs is revoked."""
        async with self._transactions() as repo:
            user = await repo.get_user(user_id)
        if user is None:
            raise NotFound("no such user")
        if not await self._hasher.verify(data.current_password, user.password_hash):
            raise BadRequest("the current password is wrong")
        new_hash = await self._hasher.hash(data.new_password)
        await self._revoke_everything(user_id, password_hash=new_hash)

    async def logout_everywhere(self, user_id: uuid.UUID) -> None:
        """End every session of the user: all refresh tokens, all access tokens issued so far."""
        await self._revoke_everything(user_id)

    async def _revoke_everything(
        self, user_id: uuid.UUID, *, password_hash: str | None = None
    ) -> None:
        async with self._transactions() as repo:
            user = await repo.get_user(user_id, for_update=True)
            if user is None:
                raise NotFound("no such user")
            now = utc_now()
            if password_hash is not None:
                user.password_hash = password_hash
            user.not_before_ms = now_ms() + 1
            user.updated_at = now
            await repo.revoke_user_tokens(user.id, now)
            repo.add(user)
            await repo.commit()
        await self._marks.publish(str(user.id), _mark(user))

    async def marks(self) -> list[tuple[str, UserMark]]:
        """Every user's current mark (for republishing after a broker reconnect)."""
        async with self._transactions() as repo:
            users = await repo.marked_users()
        return [(str(user.id), _mark(user)) for user in users]

    # ------------------------------------------------------------------ tokens

    async def login(self, username: str, password: str, address: str) -> TokenResponse:
        """The password grant: a new token family for the user.

        ``address`` is the client's throttle bucket (:func:`hearth.auth.throttle.address_key`);
        a throttled try is refused (429) before the password is checked.
        """
        name = username.strip().lower()
        async with self._transactions() as repo:
            user = await repo.user_by_username(name)
        admission = await self._guard.admit(address, name, None if user is None else user.id)
        matched = await self._hasher.verify(password, None if user is None else user.password_hash)
        if user is None or not matched:
            raise InvalidGrant("wrong username or password")
        await self._guard.succeeded(admission, user.id)
        if user.disabled:
            raise InvalidGrant("this account is disabled")
        async with self._transactions() as repo:
            response = self._issue(repo, user, family_id=uuid.uuid4())
            await repo.commit()
        return response

    async def refresh(self, token: str) -> TokenResponse:
        """The refresh grant: rotate ``token``; a reused token revokes its family."""
        async with self._transactions() as repo:
            record = await repo.refresh_token_by_hash(hash_refresh_token(token))
            if record is None or record.revoked_at is not None:
                raise InvalidGrant("the refresh token is not valid")
            now = utc_now()
            if record.used_at is not None:
                await repo.revoke_family(record.family_id, now)
                await repo.commit()
                log.warning(
                    "refresh token reused: family revoked",
                    extra={"user_id": str(record.user_id), "family_id": str(record.family_id)},
                )
                raise InvalidGrant("the refresh token was already used; its session is ended")
            if record.expires_at <= now:
                raise InvalidGrant("the refresh token has expired")
            user = await repo.get_user(record.user_id)
            if user is None or user.disabled:
                raise InvalidGrant("the refresh token is not valid")
            record.used_at = now
            repo.add(record)
            response = self._issue(repo, user, family_id=record.family_id)
            await repo.commit()
        return response

    async def logout(self, token: str, user_id: uuid.UUID | None = None) -> bool:
        """End the family of ``token`` (of ``user_id``, when given); whether one was ended."""
        async with self._transactions() as repo:
            record = await repo.refresh_token_by_hash(hash_refresh_token(token))
            if record is None or (user_id is not None and record.user_id != user_id):
                return False
            revoked = await repo.revoke_family(record.family_id, utc_now())
            await repo.commit()
        return revoked > 0

    def _issue(self, repo: AuthRepository, user: User, *, family_id: uuid.UUID) -> TokenResponse:
        access = self._issuer.access_token(user.id, user.roles)
        refresh = new_refresh_token()
        now = utc_now()
        repo.add(
            RefreshToken(
                family_id=family_id,
                user_id=user.id,
                token_hash=hash_refresh_token(refresh),
                created_at=now,
                expires_at=now + self._refresh_ttl,
            )
        )
        return TokenResponse(
            access_token=access.token,
            expires_in=access.expires_in,
            refresh_token=refresh,
            scope=access.scope,
        )


def require_admin_user(user: User) -> User:
    """``user`` if the database says they are an admin, else 403."""
    if not user.is_admin:
        raise Forbidden("this needs the admin role")
    return user
