"""Users: the admin's management (one or a classroom at once), myself, the lookup, sign-up."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from hearth.testing.services import AuthStack, bearer

PUBLIC_FIELDS = {"id", "username", "display_name", "roles", "disabled", "created_at", "updated_at"}


def _names(count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:6]
    return [f"class-{prefix}-{n:02d}" for n in range(count)]


def test_admin_creates_a_classroom_at_once(auth: AuthStack) -> None:
    names = _names(25)
    body = {"users": [{"username": n, "password": f"pw-{n}-secret"} for n in names]}
    response = auth.http.post("/auth/users/batch", json=body, headers=bearer(auth.admin_token))
    assert response.status_code == 201, response.text
    created = response.json()
    assert [user["username"] for user in created] == names
    assert all(set(user) == PUBLIC_FIELDS for user in created)
    assert all(user["roles"] == [] for user in created)
    assert "password" not in response.text
    assert "argon2" not in response.text
    student = auth.login(names[7], f"pw-{names[7]}-secret")
    assert auth.me(student["access_token"]).json()["username"] == names[7]

    listed = auth.http.get("/auth/users?limit=500", headers=bearer(auth.admin_token)).json()
    assert set(names) <= {user["username"] for user in listed}


def test_a_batch_with_a_taken_name_creates_nobody(auth: AuthStack) -> None:
    taken = auth.create_user()["username"]
    fresh = _names(3)
    users = [{"username": n, "password": "long-enough-1"} for n in [*fresh, taken]]
    response = auth.http.post(
        "/auth/users/batch", json={"users": users}, headers=bearer(auth.admin_token)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"
    assert taken in response.json()["detail"]
    lookup = auth.http.get(
        "/auth/users/lookup", params={"username": fresh[0]}, headers=bearer(auth.admin_token)
    )
    assert lookup.status_code == 404
    repeated = [{"username": fresh[0], "password": "long-enough-1"}] * 2
    response = auth.http.post(
        "/auth/users/batch", json={"users": repeated}, headers=bearer(auth.admin_token)
    )
    assert response.status_code == 409


def test_only_admins_manage_users(auth: AuthStack) -> None:
    user = auth.create_user()
    token = auth.login(user["username"], user["password"])["access_token"]
    new = {"username": _names(1)[0], "password": "long-enough-1"}
    assert auth.http.post("/auth/users", json=new, headers=bearer(token)).status_code == 403
    assert auth.http.get("/auth/users", headers=bearer(token)).status_code == 403
    other = auth.create_user()
    assert auth.http.get(f"/auth/users/{other['id']}", headers=bearer(token)).status_code == 403
    patch = auth.http.patch(
        f"/auth/users/{user['id']}", json={"roles": ["admin"]}, headers=bearer(token)
    )
    assert patch.status_code == 403
    assert auth.http.post("/auth/users", json=new).status_code == 401
    assert auth.http.get("/auth/users").status_code == 401


def test_admin_reads_and_promotes_a_user(auth: AuthStack) -> None:
    user = auth.create_user(display_name="Ada")
    read = auth.http.get(f"/auth/users/{user['id']}", headers=bearer(auth.admin_token))
    assert read.status_code == 200
    assert read.json()["display_name"] == "Ada"
    promoted = auth.http.patch(
        f"/auth/users/{user['id']}", json={"roles": ["admin"]}, headers=bearer(auth.admin_token)
    )
    assert promoted.json()["roles"] == ["admin"]
    token = auth.login(user["username"], user["password"])["access_token"]
    assert auth.http.get("/auth/users", headers=bearer(token)).status_code == 200
    missing = auth.http.get(f"/auth/users/{uuid.uuid4()}", headers=bearer(auth.admin_token))
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_an_admin_cannot_lock_themselves_out(auth: AuthStack) -> None:
    me = auth.me(auth.admin_token).json()
    for change in ({"disabled": True}, {"roles": []}):
        response = auth.http.patch(
            f"/auth/users/{me['id']}", json=change, headers=bearer(auth.admin_token)
        )
        assert response.status_code == 400
    assert auth.me(auth.admin_token).status_code == 200


def test_lookup_reveals_only_the_id(auth: AuthStack) -> None:
    target = auth.create_user(display_name="Grace")
    asker = auth.create_user()
    token = auth.login(asker["username"], asker["password"])["access_token"]
    response = auth.http.get(
        "/auth/users/lookup", params={"username": target["username"]}, headers=bearer(token)
    )
    assert response.status_code == 200
    assert response.json() == {"id": target["id"]}
    unknown = auth.http.get(
        "/auth/users/lookup", params={"username": "no-such-user"}, headers=bearer(token)
    )
    assert unknown.status_code == 404
    anonymous = auth.http.get("/auth/users/lookup", params={"username": target["username"]})
    assert anonymous.status_code == 401


def test_i_read_and_update_myself(auth: AuthStack) -> None:
    user = auth.create_user()
    token = auth.login(user["username"], user["password"])["access_token"]
    me = auth.me(token)
    assert me.status_code == 200
    assert set(me.json()) == PUBLIC_FIELDS
    assert me.json()["id"] == user["id"]
    updated = auth.http.patch(
        "/auth/users/me", json={"display_name": "Linus"}, headers=bearer(token)
    )
    assert updated.status_code == 200
    assert updated.json()["display_name"] == "Linus"
    # Unknown fields are refused: nobody makes themselves admin this way.
    sneaky = auth.http.patch("/auth/users/me", json={"roles": ["admin"]}, headers=bearer(token))
    assert sneaky.status_code == 422
    assert sneaky.json()["errors"][0]["type"] == "extra_forbidden"
    assert auth.me(token).json()["roles"] == []


def test_validation_problems_never_echo_the_password(auth: AuthStack) -> None:
    response = auth.http.post(
        "/auth/users",
        json={"username": "Bad Name!", "password": "short-secret-value-xyz", "x": 1},
        headers=bearer(auth.admin_token),
    )
    assert response.status_code == 422
    assert "short-secret-value-xyz" not in response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_sign_up_is_closed_by_default(auth: AuthStack) -> None:
    response = auth.http.post(
        "/auth/signup", json={"username": "walk-in", "password": "long-enough-1"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "signup_closed"


def test_open_sign_up_makes_the_first_user_admin(make_auth: Callable[..., AuthStack]) -> None:
    stack = make_auth(open_signup=True, admin_password="")
    first = stack.http.post("/auth/signup", json={"username": "first", "password": "first-pw-1"})
    assert first.status_code == 201, first.text
    assert first.json()["roles"] == ["admin"]
    second = stack.http.post("/auth/signup", json={"username": "second", "password": "second-pw-1"})
    assert second.json()["roles"] == []
    again = stack.http.post("/auth/signup", json={"username": "second", "password": "x-pw-12345"})
    assert again.status_code == 409
    token = stack.login("first", "first-pw-1")["access_token"]
    assert stack.http.get("/auth/users", headers=bearer(token)).status_code == 200
