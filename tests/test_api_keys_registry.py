"""Real API keys, exchanged at auth, used at the registry: scope and homes hold everywhere.

The registry's rules are tested with minted tokens in its own tests; here the tokens come
from auth's ``client_credentials`` exchange of keys a user created, so the contract in
``hearth.common`` (the ``key``, ``homes`` and ``scope`` claims) is checked end to end.
"""

from __future__ import annotations

from typing import Any

from hearth.testing.services import ServiceStack, User, bearer


def _key_token(stack: ServiceStack, owner: User, **body: Any) -> str:
    created = stack.auth_http.post("/auth/api-keys", json=body, headers=owner.headers)
    assert created.status_code == 201, created.text
    answer = stack.auth_http.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_secret": created.json()["key"]},
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def _slugs(stack: ServiceStack, token: str) -> list[str]:
    answer = stack.http.get("/registry/homes", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return sorted(home["slug"] for home in answer.json())


def test_api_key_tokens_keep_to_their_scope_and_homes(stack: ServiceStack) -> None:
    owner = stack.create_user("keys")
    first = stack.create_home(owner)["slug"]
    second = stack.create_home(owner)["slug"]

    reader = _key_token(stack, owner, name="reader", scopes=["read"], homes=[first])
    assert _slugs(stack, reader) == [first]
    assert stack.http.get(f"/registry/homes/{first}", headers=bearer(reader)).status_code == 200
    assert stack.http.get(f"/registry/homes/{second}", headers=bearer(reader)).status_code == 404
    rename = {"name": "Renamed"}
    refused = stack.http.patch(f"/registry/homes/{first}", json=rename, headers=bearer(reader))
    assert refused.status_code == 403

    manager = _key_token(
        stack, owner, name="manager", scopes=["read", "control", "admin"], homes=[first]
    )
    done = stack.http.patch(f"/registry/homes/{first}", json=rename, headers=bearer(manager))
    assert done.status_code == 200, done.text
    elsewhere = stack.http.patch(f"/registry/homes/{second}", json=rename, headers=bearer(manager))
    assert elsewhere.status_code == 404

    # a key limited to no homes sees every home of its user, but without the admin scope
    # it still manages none (it is an API key, not a login)
    anywhere = _key_token(stack, owner, name="anywhere", scopes=["read", "control"])
    assert _slugs(stack, anywhere) == sorted([first, second])
    refused = stack.http.patch(f"/registry/homes/{second}", json=rename, headers=bearer(anywhere))
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    # the owner's own login manages (positive control)
    done = stack.http.patch(f"/registry/homes/{second}", json=rename, headers=owner.headers)
    assert done.status_code == 200


def test_service_tokens_are_refused_where_no_rules_exist_for_them(stack: ServiceStack) -> None:
    token = stack.minter()("automation", scope="read control")
    answer = stack.http.get("/registry/homes", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["code"] != "internal"
