"""Login throttling: the rates, the bucket keys, and the GCRA arithmetic (no SQL here).

Two kinds of bucket limit failed logins (docs/decisions.md, "Login throttling"):

- ``addr:<address>``: every failed try from one client address (an IPv4 address, or
  the /64 network of an IPv6 one, since one host holds a whole /64);
- ``acct:<username>``: failed tries at one account from addresses that never logged in
  to it successfully. An address that did (a *known address*) skips this bucket, so the
  owner still logs in while strangers exhaust it. Unknown usernames get a bucket too:
  their answers cannot differ from a real account's.

Each bucket is a GCRA (generic cell rate algorithm) cell: one number, the theoretical
arrival time ``tat`` (epoch seconds), stored in PostgreSQL so the state survives a
restart and is shared by every replica. A try is admitted when ``tat`` is at most
``burst - 1`` intervals ahead of now, and pushes ``tat`` one interval further; it is
refused otherwise, with ``Retry-After`` the time until it would be admitted. The process
holds no per-client state at all, so its memory does not grow with the number of
clients, addresses or usernames; the table's rows expire (are pruned) once their
``tat`` has passed, so it holds at most the buckets touched in the last window.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

__all__ = ["Rate", "account_key", "address_key", "retry_after"]

_IPV6_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` failed tries per ``window`` seconds (a burst of ``limit``)."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate needs a limit of at least 1 and a positive window")

    @property
    def interval(self) -> float:
        """Seconds one try adds to the bucket (``window / limit``)."""
        return self.window / self.limit

    @property
    def tolerance(self) -> float:
        """How far ahead of now ``tat`` may be for a try to be admitted."""
        return self.interval * (self.limit - 1)


def retry_after(tat: float, rate: Rate, now: float) -> int:
    """Whole seconds until a bucket at ``tat`` admits a try again (at least 1)."""
    return max(1, math.ceil(tat - rate.tolerance - now))


def address_key(host: str | None) -> str:
    """The address bucket of a client: ``addr:`` + the IPv4 address or the IPv6 /64."""
    if not host:
        return "addr:unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "addr:unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        network = ipaddress.ip_network(f"{address}/{_IPV6_PREFIX}", strict=False)
        return f"addr:{network}"
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else address
    return f"addr:{plain}"


def account_key(username: str) -> str:
    """The account bucket of a username as typed at login (normalised: stripped, lower)."""
    return f"acct:{username.strip().lower()}"
