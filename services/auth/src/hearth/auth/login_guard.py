"""LoginGuard: admits or refuses a login try before its password is checked.

The rules (buckets and arithmetic: :mod:`hearth.auth.throttle`): a try takes one place
in its address's bucket and, unless the address logged in to that account before, one
in the account's bucket; a full bucket refuses the try with
:class:`~hearth.common.errors.TooManyRequests` (429, ``Retry-After``) before any
password hashing, whether the username exists or not. A try that then succeeds gives
its places back (only failures count) and makes its address known to the account.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from hearth.auth.repository import AuthRepository
from hearth.auth.throttle import Rate, account_key, retry_after
from hearth.common.db import Transactions
from hearth.common.errors import TooManyRequests

__all__ = ["Admission", "LoginGuard"]

_NO_USER = uuid.UUID(int=0)
"""Stands in for the user of an unknown username (no address is ever known for it)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """The places one admitted try holds (given back if it succeeds)."""

    address: str
    account: str | None


class LoginGuard:
    """Throttles failed logins per address and per account (see the module docstring)."""

    def __init__(
        self,
        transactions: Transactions[AuthRepository],
        *,
        per_address: Rate,
        per_account: Rate,
        known_addresses: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transactions = transactions
        self.per_address = per_address
        self.per_account = per_account
        self._known_addresses = known_addresses
        self._clock = clock

    async def admit(
        self, address: str, username: str | None, user_id: uuid.UUID | None
    ) -> Admission:
        """Take this try's places, or raise :class:`TooManyRequests` (no place is kept)."""
        now = self._clock()
        async with self._transactions() as repo:
            # the same query for an unknown username: its answer must not come sooner
            known = await repo.is_known_address(user_id or _NO_USER, address)
            account = None if known or username is None else account_key(username)
            buckets = [(address, self.per_address)]
            if account is not None:
                buckets.append((account, self.per_account))
            for key, rate in buckets:
                tat = await repo.reserve_try(
                    key, now=now, interval=rate.interval, tolerance=rate.tolerance
                )
                if tat is not None:  # leaving uncommitted gives back the places taken
                    raise TooManyRequests(
                        "too many failed logins: try again later",
                        retry_after=retry_after(tat, rate, now),
                    )
            await repo.commit()
        return Admission(address, account)

    async def succeeded(self, admission: Admission, user_id: uuid.UUID) -> None:
        """The try succeeded: give its places back and remember its address."""
        async with self._transactions() as repo:
            await repo.refund_try(admission.address, self.per_address.interval)
            if admission.account is not None:
                await repo.refund_try(admission.account, self.per_account.interval)
            await repo.remember_address(user_id, admission.address, self._known_addresses)
            await repo.commit()

    async def prune(self) -> int:
        """Delete drained buckets (every bucket whose time has passed); how many."""
        async with self._transactions() as repo:
            pruned = await repo.prune_throttle(self._clock())
            await repo.commit()
        return pruned
