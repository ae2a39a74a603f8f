"""Login throttling: per account from unknown addresses, per address, 429 + Retry-After.

Client addresses come from ``X-Forwarded-For`` (uvicorn trusts it from 127.0.0.1, as
behind the front door). The state lives in PostgreSQL, so it survives a restart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from hearth.auth.throttle import Rate, account_key, address_key, retry_after
from hearth.testing.services import AuthStack, stop_auth

OWNER_HOME = "192.0.2.10"
"""Where the owner logged in before the attack."""


def _try(auth: AuthStack, username: str, password: str, address: str) -> httpx.Response:
    return auth.http.post(
        "/auth/token",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


def _assert_refused(response: httpx.Response, window: float) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "too_many_requests"
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= window
    assert response.json()["retry_after"] == seconds
    return seconds


def test_an_attack_from_50_addresses_leaves_the_owner_in(
    make_auth: Callable[..., AuthStack],
) -> None:
    auth = make_auth()
    owner = auth.create_user()
    assert _try(auth, owner["username"], owner["password"], OWNER_HOME).status_code == 200

    attackers = [f"198.51.100.{n}" for n in range(1, 51)]
    tries = [(address, f"guess-{n}-{address}") for n in range(3) for address in attackers]

    def attack(item: tuple[str, str]) -> httpx.Response:
        address, guess = item
        return _try(auth, owner["username"], guess, address)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(attack, tries))
        # the owner logs in from home while the attack goes on
        during = pool.submit(_try, auth, owner["username"], owner["password"], OWNER_HOME)
        assert during.result().status_code == 200

    counts = Counter(response.status_code for response in answers)
    assert counts == {400: 100, 429: 50}  # 100 tries an hour at one account, then 429
    for response in answers:
        if response.status_code == 429:
            _assert_refused(response, auth.settings.login_account_window)

    # the right password from an address that never logged in is refused too ...
    stranger = _try(auth, owner["username"], owner["password"], "203.0.113.7")
    _assert_refused(stranger, auth.settings.login_account_window)
    # ... while the owner's known address still gets in (and so does another account)
    assert _try(auth, owner["username"], owner["password"], OWNER_HOME).status_code == 200
    other = auth.create_user()
    assert _try(auth, other["username"], other["password"], "203.0.113.7").status_code == 200


def test_unknown_usernames_are_throttled_like_accounts(
    make_auth: Callable[..., AuthStack],
) -> None:
    auth = make_auth(login_account_limit=5)
    real = auth.create_user()
    ghost = "nobody-here"
    for n in range(5):
        assert _try(auth, ghost, f"guess-{n}", f"198.51.100.{n + 1}").status_code == 400
        assert _try(auth, real["username"], f"guess-{n}", f"198.51.100.{n + 1}").status_code == 400
    ghost_refused = _try(auth, ghost, "guess-5", "198.51.100.99")
    real_refused = _try(auth, real["username"], "guess-5", "198.51.100.99")
    assert ghost_refused.status_code == real_refused.status_code == 429
    assert ghost_refused.json()["detail"] == real_refused.json()["detail"]


def test_one_address_is_throttled_across_accounts(make_auth: Callable[..., AuthStack]) -> None:
    auth = make_auth(login_address_limit=10, login_address_window=600)
    address = "198.51.100.200"
    for n in range(10):
        assert _try(auth, f"user-{n}", "wrong-password", address).status_code == 400
    refused = _try(auth, "user-99", "wrong-password", address)
    seconds = _assert_refused(refused, 600)
    assert seconds == pytest.approx(60, abs=2)  # one try frees up every 600 / 10 s
    # another address is not affected (positive control)
    assert _try(auth, "user-99", "wrong-password", "198.51.100.201").status_code == 400


def test_the_throttle_survives_a_restart(make_auth: Callable[..., AuthStack]) -> None:
    auth = make_auth(login_account_limit=3)
    user = auth.create_user()
    for n in range(3):
        assert _try(auth, user["username"], f"guess-{n}", f"198.51.100.{n + 1}").status_code == 400
    assert _try(auth, user["username"], "guess", "198.51.100.9").status_code == 429
    url = auth.settings.require_database_url()
    kek = auth.settings.key_encryption_key.get_secret_value()
    stop_auth(auth)

    again = make_auth(database_url=url, key_encryption_key=kek, login_account_limit=3)
    _assert_refused(
        _try(again, user["username"], user["password"], "198.51.100.9"),
        again.settings.login_account_window,
    )


def test_ipv6_clients_are_counted_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "addr:192.0.2.1"
    assert address_key("192.0.2.1") != address_key("192.0.2.2")
    assert address_key(None) == address_key("not an address") == "addr:unknown"
    assert account_key("  Alice ") == account_key("alice")


def test_retry_after_is_when_the_next_try_is_admitted() -> None:
    rate = Rate(100, 3600.0)  # one try every 36 s, a burst of 100
    now = 1_000_000.0
    full = now + 100 * rate.interval  # 100 tries just made
    assert retry_after(full, rate, now) == 36
    assert retry_after(full, rate, now + 35.5) == 1
    with pytest.raises(ValueError, match="limit"):
        Rate(0, 60)
