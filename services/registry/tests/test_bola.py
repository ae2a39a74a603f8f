"""The BOLA matrix: every route of the live OpenAPI document that takes an id, tried by every
user of one home against the other home's resources; viewers and members cannot manage.

Two homes, each with an owner, a member and a viewer and one device. The routes come from
the running registry's ``/openapi.json``; the test fails when a route taking an id has no
request prepared here (so a new route cannot slip past), and when anything of the other
home is readable or writable.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from hearth.testing.services import ServiceStack, User

WRITE_METHODS = {"post", "put", "patch", "delete"}
OWNER_ONLY_READS = {("get", "/registry/homes/{home}/devices/{device}/config")}
"""Reads that hand out a secret (the device's password): owners only."""
MEMBER_WRITES = {("post", "/registry/homes/{home}/devices/{device}/commands")}
"""Writes a member may do (commands); viewers may not."""
PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass
class World:
    """One home: its slug, name, device and its three users."""

    slug: str
    name: str
    device: str
    owner: User
    member: User
    viewer: User

    @property
    def users(self) -> list[User]:
        return [self.owner, self.member, self.viewer]


@pytest.fixture(scope="module")
def worlds(stack: ServiceStack) -> tuple[World, World]:
    made = []
    for letter in ("a", "b"):
        owner, member, viewer = (stack.create_user(f"{letter}-{r}") for r in ("own", "mem", "view"))
        name = f"Secret home {letter.upper()} {uuid.uuid4().hex[:6]}"
        slug = stack.create_home(owner, name=name)["slug"]
        stack.add_member(owner, slug, member, "member")
        stack.add_member(owner, slug, viewer, "viewer")
        device = f"{letter}-dev"
        stack.create_device(owner, slug, device, type="thermostat", name=f"Secret device {letter}")
        made.append(World(slug, name, device, owner, member, viewer))
    return made[0], made[1]


def bodies(attacker: User) -> dict[tuple[str, str], dict[str, Any] | None]:
    """A valid request body for every route taking an id (None: no body)."""
    return {
        ("get", "/registry/homes/{home}"): None,
        ("patch", "/registry/homes/{home}"): {"name": "Pwned"},
        ("get", "/registry/homes/{home}/members"): None,
        ("post", "/registry/homes/{home}/members"): {
            "username": attacker.username,
            "role": "owner",
        },
        ("get", "/registry/homes/{home}/members/{user_id}"): None,
        ("patch", "/registry/homes/{home}/members/{user_id}"): {"role": "owner"},
        ("delete", "/registry/homes/{home}/members/{user_id}"): None,
        ("get", "/registry/homes/{home}/devices"): None,
        ("post", "/registry/homes/{home}/devices"): {"slug": "evil", "name": "Evil"},
        ("get", "/registry/homes/{home}/devices/{device}"): None,
        ("patch", "/registry/homes/{home}/devices/{device}"): {"name": "Pwned", "interval": 1},
        ("delete", "/registry/homes/{home}/devices/{device}"): None,
        ("post", "/registry/homes/{home}/devices/{device}/credentials"): None,
        ("get", "/registry/homes/{home}/devices/{device}/config"): None,
        ("get", "/registry/homes/{home}/devices/{device}/commands"): None,
        ("post", "/registry/homes/{home}/devices/{device}/commands"): {
            "property": "target",
            "value": 21,
        },
    }


def id_routes(stack: ServiceStack) -> set[tuple[str, str]]:
    """Every (method, path) of the live OpenAPI document whose path takes an id."""
    document = stack.http.get("/openapi.json").json()
    return {
        (method, path)
        for path, operations in document["paths"].items()
        if PARAM.search(path)
        for method in operations
        if method in {"get", *WRITE_METHODS}
    }


def fill(path: str, ids: dict[str, str]) -> str:
    return PARAM.sub(lambda m: ids[m.group(1)], path)


def snapshot(stack: ServiceStack, world: World) -> tuple[Any, ...]:
    headers = world.owner.headers
    base = f"/registry/homes/{world.slug}"
    return (
        stack.http.get(base, headers=headers).json(),
        stack.http.get(f"{base}/members", headers=headers).json(),
        stack.http.get(f"{base}/devices", headers=headers).json(),
    )


def test_nothing_of_the_other_home_is_readable_or_writable(
    stack: ServiceStack, worlds: tuple[World, World]
) -> None:
    routes = id_routes(stack)
    assert routes, "the OpenAPI document lists no route taking an id"
    prepared = set(bodies(worlds[0].owner))
    assert routes <= prepared, f"routes not covered by the BOLA matrix: {sorted(routes - prepared)}"
    before = {w.slug: snapshot(stack, w) for w in worlds}
    exercised: set[tuple[str, str]] = set()

    for mine, theirs in (worlds, worlds[::-1]):
        foreign_ids = {"home": theirs.slug, "device": theirs.device, "user_id": theirs.owner.id}
        # The same foreign objects addressed through my own home (cross-object references),
        # for routes that take more than the home.
        crossed_ids = {"home": mine.slug, "device": theirs.device, "user_id": theirs.owner.id}
        for user in mine.users:
            for (method, path), body in bodies(user).items():
                if (method, path) not in routes:
                    continue
                attempts = [(foreign_ids, {404})]
                if set(PARAM.findall(path)) - {"home"}:
                    attempts.append((crossed_ids, {403, 404}))
                for ids, expected in attempts:
                    url = fill(path, ids)
                    response = stack.http.request(method, url, json=body, headers=user.headers)
                    where = (user.username, method.upper(), url, response.status_code)
                    assert response.status_code in expected, where
                    assert theirs.name not in response.text, where
                    assert theirs.owner.username not in response.text, where
                    assert "Secret device" not in response.text, where
                    exercised.add((method, path))
            listed = stack.http.get("/registry/homes", headers=user.headers).json()
            assert [h["slug"] for h in listed] == [mine.slug]

    assert exercised == routes, f"routes never tried: {sorted(routes - exercised)}"
    assert {w.slug: snapshot(stack, w) for w in worlds} == before


def test_viewers_and_members_cannot_manage_their_own_home(
    stack: ServiceStack, worlds: tuple[World, World]
) -> None:
    routes = id_routes(stack)
    tried = 0
    for world in worlds:
        before = snapshot(stack, world)
        ids = {"home": world.slug, "device": world.device, "user_id": world.owner.id}
        for user in (world.member, world.viewer):
            for (method, path), body in bodies(user).items():
                managing = method in WRITE_METHODS or (method, path) in OWNER_ONLY_READS
                if not managing or (method, path) not in routes:
                    continue
                if user is world.member and (method, path) in MEMBER_WRITES:
                    continue
                response = stack.http.request(
                    method, fill(path, ids), json=body, headers=user.headers
                )
                assert response.status_code == 403, (user.username, method, path, response.text)
                assert response.json()["code"] == "role_forbidden"
                tried += 1
            # Reading is what they may do.
            for (method, path), _ in bodies(user).items():
                if method == "get" and (method, path) in routes - OWNER_ONLY_READS:
                    response = stack.http.get(fill(path, ids), headers=user.headers)
                    assert response.status_code == 200, (user.username, path)
        for _method, path in OWNER_ONLY_READS:  # positive control: the owner may
            response = stack.http.get(fill(path, ids), headers=world.owner.headers)
            assert response.status_code == 200, (path, response.text)
        for method, path in MEMBER_WRITES & routes:  # positive control: the member may
            body = bodies(world.member)[(method, path)]
            response = stack.http.request(
                method, fill(path, ids), json=body, headers=world.member.headers
            )
            assert response.status_code == 201, (path, response.text)
        assert snapshot(stack, world) == before
    managed = sum(1 for r in routes if r[0] in WRITE_METHODS or r in OWNER_ONLY_READS)
    assert tried == 2 * 2 * managed - 2 * len(MEMBER_WRITES & routes)
