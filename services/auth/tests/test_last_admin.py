"""The last enabled admin cannot be disabled or demoted, not even by a race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hearth.auth.errors import LastAdmin
from hearth.auth.models import User, UserAdminUpdate
from hearth.auth.service import AuthService
from hearth.testing.services import AuthStack, bearer


class _Admins:
    """The one query the rule asks: how many enabled admins there are."""

    def __init__(self, count: int) -> None:
        self.count = count

    async def count_enabled_admins(self) -> int:
        return self.count


def _admin(**fields: Any) -> User:
    return User(username="ops", password_hash="x", is_admin=True, **fields)


@pytest.mark.parametrize(
    "change",
    [UserAdminUpdate(disabled=True), UserAdminUpdate(roles=[])],
    ids=["disable", "demote"],
)
async def test_the_last_enabled_admin_stays(change: UserAdminUpdate) -> None:
    with pytest.raises(LastAdmin):
        await AuthService._keep_an_admin(_Admins(1), _admin(), change)  # type: ignore[arg-type]
    # with another enabled admin the same change is fine (positive control)
    await AuthService._keep_an_admin(_Admins(2), _admin(), change)  # type: ignore[arg-type]
    # changes that keep the admin, or touch a disabled admin, are never refused
    await AuthService._keep_an_admin(_Admins(1), _admin(), UserAdminUpdate(display_name="x"))  # type: ignore[arg-type]
    await AuthService._keep_an_admin(_Admins(1), _admin(disabled=True), change)  # type: ignore[arg-type]


@pytest.mark.parametrize("round_", range(3))
def test_two_admins_demoting_each_other_at_once_leave_one(
    make_auth: Callable[..., AuthStack], round_: int
) -> None:
    auth = make_auth()
    first = auth.create_user(roles=["admin"])
    second = auth.create_user(roles=["admin"])
    tokens = {
        user["id"]: auth.login(user["username"], user["password"])["access_token"]
        for user in (first, second)
    }
    # the seeded admin steps out of the way: now these two are the only admins
    seed_id = auth.me(auth.admin_token).json()["id"]
    demote_seed = auth.http.patch(
        f"/auth/users/{seed_id}", json={"roles": []}, headers=bearer(tokens[first["id"]])
    )
    assert demote_seed.status_code == 200, demote_seed.text
    barrier = threading.Barrier(2)
    answers: dict[str, httpx.Response] = {}

    def demote(actor: dict[str, Any], target: dict[str, Any]) -> None:
        with httpx.Client(base_url=auth.url, timeout=10.0) as client:
            barrier.wait()
            answers[actor["id"]] = client.patch(
                f"/auth/users/{target['id']}",
                json={"roles": []},
                headers=bearer(tokens[actor["id"]]),
            )

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    codes = sorted(answer.status_code for answer in answers.values())
    # one wins; the other is refused: by the rule (409) or, if it came second, as no
    # longer an admin (its token revoked: 401)
    assert codes[0] == 200, codes
    assert codes[1] in (401, 403, 409), codes
    winner = next(token for token in tokens.values() if auth.me(token).status_code == 200)
    users = auth.http.get("/auth/users?limit=500", headers=bearer(winner)).json()
    admins = [user for user in users if "admin" in user["roles"] and not user["disabled"]]
    assert len(admins) == 1
