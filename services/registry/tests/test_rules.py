"""The pure rules: who may do what (access), what a property accepts, the catalogue."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hearth.common.authorization import Action, AuthorizeRequest, Role
from hearth.common.capabilities import Metric, Property
from hearth.common.tokens import Caller
from hearth.registry.access import check_access
from hearth.registry.catalogue import CATALOGUE
from hearth.registry.models import HomeCreate, MemberAdd


def caller(
    *, admin: bool = False, scope: str = "read control", homes: list[str] | None = None
) -> Caller:
    return Caller(
        user_id="6f1c1d36-3f1f-4a4e-9a7e-1d2b3c4d5e6f",
        roles=frozenset({"admin"} if admin else set()),
        scopes=frozenset(scope.split()),
        homes=None if homes is None else frozenset(homes),
        token_id="t",
        issued_at=0.0,
        expires_at=0.0,
        token="secret-token",
    )


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [
        (Role.VIEWER, Action.READ, None),
        (Role.VIEWER, Action.WRITE, "role"),
        (Role.VIEWER, Action.MANAGE, "role"),
        (Role.MEMBER, Action.READ, None),
        (Role.MEMBER, Action.WRITE, None),
        (Role.MEMBER, Action.MANAGE, "role"),
        (Role.OWNER, Action.READ, None),
        (Role.OWNER, Action.WRITE, None),
        (Role.OWNER, Action.MANAGE, None),
        (None, Action.READ, "not_found"),
        (None, Action.WRITE, "not_found"),
        (None, Action.MANAGE, "not_found"),
    ],
)
def test_roles(role: Role | None, action: Action, expected: str | None) -> None:
    assert check_access(caller(), "home", role, action) == expected


def test_admins_read_and_manage_but_command_only_as_members() -> None:
    admin = caller(admin=True, scope="read control admin")
    assert check_access(admin, "h", None, Action.READ) is None
    assert check_access(admin, "h", None, Action.MANAGE) is None
    assert check_access(admin, "h", None, Action.WRITE) == "role"
    assert check_access(admin, "h", Role.MEMBER, Action.WRITE) is None


def test_tokens_narrow_but_never_widen() -> None:
    assert check_access(caller(scope="read"), "h", Role.OWNER, Action.WRITE) == "scope"
    assert check_access(caller(scope="control"), "h", Role.OWNER, Action.READ) == "scope"
    key = caller(scope="read control", homes=["h"])
    assert check_access(key, "h", Role.OWNER, Action.WRITE) is None
    assert check_access(key, "h", Role.OWNER, Action.MANAGE) == "scope"
    assert check_access(key, "other", Role.OWNER, Action.READ) == "token_homes"
    admin_key = caller(scope="read control admin", homes=["h"])
    assert check_access(admin_key, "h", Role.OWNER, Action.MANAGE) is None
    assert check_access(admin_key, "h", Role.VIEWER, Action.MANAGE) == "role"
    # A token's homes never reveal a home the user does not belong to.
    assert check_access(caller(homes=["h"]), "h", None, Action.READ) == "not_found"


@pytest.mark.parametrize(
    ("prop", "value", "ok"),
    [
        (Property(name="p", kind="boolean"), True, True),
        (Property(name="p", kind="boolean"), 1, False),
        (Property(name="p", kind="boolean"), "true", False),
        (Property(name="p", kind="enum", values=["off", "heat"]), "heat", True),
        (Property(name="p", kind="enum", values=["off", "heat"]), "cool", False),
        (Property(name="p", kind="number", min=5, max=30, step=0.5), 21.5, True),
        (Property(name="p", kind="number", min=5, max=30, step=0.5), 21.3, False),
        (Property(name="p", kind="number", min=5, max=30, step=0.5), 30.5, False),
        (Property(name="p", kind="number", min=5, max=30), 4.99, False),
        (Property(name="p", kind="number", min=0, max=100), 100, True),
        (Property(name="p", kind="number", min=0, max=100), True, False),
        (Property(name="p", kind="number", min=0, max=100), float("nan"), False),
    ],
)
def test_property_accepts(prop: Property, value: object, ok: bool) -> None:
    assert prop.accepts(value) is ok


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "number", "min": 0},
        {"kind": "number", "min": 2, "max": 1},
        {"kind": "number", "min": 0, "max": 1, "values": ["a"]},
        {"kind": "enum"},
        {"kind": "enum", "values": ["a", "a"]},
        {"kind": "enum", "values": ["a"], "max": 3},
        {"kind": "boolean", "values": ["a"]},
        {"kind": "boolean", "step": 1},
        {"kind": "number", "min": 0, "max": float("inf")},
        {"kind": "switch"},
    ],
)
def test_bad_properties_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Property.model_validate({"name": "p", **fields})


def test_bad_metrics_are_refused() -> None:
    for fields in ({"kind": "boolean", "max": 1}, {"min": 3, "max": 1}, {"name": "Temp"}):
        with pytest.raises(ValidationError):
            Metric.model_validate({"name": "t", **fields})


def test_the_catalogue_is_consistent() -> None:
    for name, entry in CATALOGUE.items():
        assert entry.type == name
        assert entry.interval >= 1
        names = [m.name for m in entry.metrics] + [p.name for p in entry.properties]
        assert len(set(m.name for m in entry.metrics)) == len(entry.metrics)
        assert len(set(p.name for p in entry.properties)) == len(entry.properties)
        assert all(n == n.lower() for n in names)
    assert CATALOGUE["generic"].metrics == []
    assert CATALOGUE["generic"].properties == []


def test_input_models() -> None:
    assert MemberAdd.model_validate({"username": "  Ada.L "}).username == "ada.l"
    assert HomeCreate.model_validate({"slug": "flat", "name": " Flat "}).timezone == "UTC"
    for bad in (
        {"slug": "flat", "name": "x", "timezone": "Nowhere/City"},
        {"slug": "-x", "name": "x"},
    ):
        with pytest.raises(ValidationError):
            HomeCreate.model_validate(bad)
    with pytest.raises(ValidationError):
        AuthorizeRequest.model_validate({"action": "read", "topic": "a", "filter": "b"})
    with pytest.raises(ValidationError):
        AuthorizeRequest.model_validate({"action": "read"})
