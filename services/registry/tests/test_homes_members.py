"""Homes and memberships through the running registry, with the real auth behind it."""

from __future__ import annotations

import time
import uuid

from hearth.testing.services import ServiceStack, bearer

PROBLEM = "application/problem+json"


def test_the_creator_owns_a_new_home(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    slug = f"home-{uuid.uuid4().hex[:8]}"
    response = stack.http.post(
        "/registry/homes",
        json={"slug": slug, "name": "Flat", "timezone": "Europe/Berlin"},
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/registry/homes/{slug}"
    body = response.json()
    assert (body["slug"], body["name"], body["timezone"], body["role"]) == (
        slug,
        "Flat",
        "Europe/Berlin",
        "owner",
    )
    members = stack.http.get(f"/registry/homes/{slug}/members", headers=owner.headers).json()
    assert [(m["user_id"], m["username"], m["role"]) for m in members] == [
        (owner.id, owner.username, "owner")
    ]
    mine = stack.http.get("/registry/homes", headers=owner.headers).json()
    assert [h["slug"] for h in mine] == [slug]


def test_home_input_is_checked(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    home = stack.create_home(owner)
    again = stack.http.post(
        "/registry/homes", json={"slug": home["slug"], "name": "Other"}, headers=owner.headers
    )
    assert again.status_code == 409
    assert again.headers["content-type"].startswith(PROBLEM)
    assert again.json()["code"] == "slug_taken"
    for bad in (
        {"slug": "Bad Slug", "name": "x"},
        {"slug": "ok-slug", "name": "x", "timezone": "Mars/Olympus"},
        {"slug": "ok-slug", "name": "x", "timezone": "../../etc/passwd"},
        {"slug": "ok-slug", "name": ""},
        {"slug": "ok-slug", "name": "x", "owner": "someone"},
    ):
        response = stack.http.post("/registry/homes", json=bad, headers=owner.headers)
        assert response.status_code == 422, bad
        assert response.headers["content-type"].startswith(PROBLEM)
    renamed = stack.http.patch(
        f"/registry/homes/{home['slug']}",
        json={"name": "Renamed", "timezone": "America/New_York"},
        headers=owner.headers,
    )
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["timezone"]) == ("Renamed", "America/New_York")
    immutable = stack.http.patch(
        f"/registry/homes/{home['slug']}", json={"slug": "new-slug"}, headers=owner.headers
    )
    assert immutable.status_code == 422
    assert stack.http.get("/registry/homes/new-slug", headers=owner.headers).status_code == 404
    assert stack.http.get("/registry/homes").status_code == 401


def test_owners_add_change_and_remove_members(stack: ServiceStack) -> None:
    owner, friend = stack.create_user("owner"), stack.create_user("friend")
    slug = stack.create_home(owner)["slug"]
    added = stack.http.post(
        f"/registry/homes/{slug}/members",
        json={"username": friend.username.upper(), "role": "viewer"},
        headers=owner.headers,
    )
    assert added.status_code == 201, added.text
    assert added.headers["location"] == f"/registry/homes/{slug}/members/{friend.id}"
    assert (added.json()["user_id"], added.json()["role"]) == (friend.id, "viewer")
    assert stack.http.get(f"/registry/homes/{slug}", headers=friend.headers).json()["role"] == (
        "viewer"
    )

    twice = stack.http.post(
        f"/registry/homes/{slug}/members",
        json={"username": friend.username, "role": "member"},
        headers=owner.headers,
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "already_member")
    nobody = stack.http.post(
        f"/registry/homes/{slug}/members",
        json={"username": "no-such-user-here", "role": "member"},
        headers=owner.headers,
    )
    assert (nobody.status_code, nobody.json()["code"]) == (404, "user_not_found")

    promoted = stack.http.patch(
        f"/registry/homes/{slug}/members/{friend.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert promoted.json()["role"] == "owner"
    # Now two owners: the first may step down, then the last one may not.
    assert (
        stack.http.delete(
            f"/registry/homes/{slug}/members/{owner.id}", headers=friend.headers
        ).status_code
        == 204
    )
    last = stack.http.patch(
        f"/registry/homes/{slug}/members/{friend.id}",
        json={"role": "member"},
        headers=friend.headers,
    )
    assert (last.status_code, last.json()["code"]) == (409, "last_owner")
    leave = stack.http.delete(f"/registry/homes/{slug}/members/{friend.id}", headers=friend.headers)
    assert (leave.status_code, leave.json()["code"]) == (409, "last_owner")
    # The removed owner sees nothing of the home any more.
    assert stack.http.get(f"/registry/homes/{slug}", headers=owner.headers).status_code == 404
    assert stack.http.get("/registry/homes", headers=owner.headers).json() == []
    gone = stack.http.get(f"/registry/homes/{slug}/members/{owner.id}", headers=friend.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "member_not_found")


def test_admins_see_and_manage_every_home(stack: ServiceStack) -> None:
    owner = stack.create_user("owner")
    slug = stack.create_home(owner)["slug"]
    listed = stack.http.get("/registry/homes", headers=stack.admin.headers).json()
    assert {"slug": slug, "role": None} in [{"slug": h["slug"], "role": h["role"]} for h in listed]
    read = stack.http.get(f"/registry/homes/{slug}", headers=stack.admin.headers)
    assert (read.status_code, read.json()["role"]) == (200, None)
    renamed = stack.http.patch(
        f"/registry/homes/{slug}", json={"name": "Checked"}, headers=stack.admin.headers
    )
    assert renamed.status_code == 200
    others = stack.http.get("/registry/homes", headers=stack.create_user().headers).json()
    assert slug not in [h["slug"] for h in others]


def test_a_revoked_token_is_refused_within_a_second(stack: ServiceStack) -> None:
    """The registry follows auth's revocation marks on the system bus (not its database)."""
    user = stack.create_user()
    assert stack.http.get("/registry/homes", headers=user.headers).status_code == 200
    out = stack.auth_http.post("/auth/logout-everywhere", headers=user.headers)
    assert out.status_code == 204
    deadline = time.monotonic() + 1.0
    while (response := stack.http.get("/registry/homes", headers=user.headers)).status_code == 200:
        assert time.monotonic() < deadline, "the registry still accepts a revoked token"
        time.sleep(0.02)
    assert (response.status_code, response.json()["reason"]) == (401, "revoked")
    fresh = stack.login(user.username)
    assert stack.http.get("/registry/homes", headers=bearer(fresh)).status_code == 200
