"""TopicRouter: messages go to every route whose filter matches, else to ``otherwise``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from hearth.common.routing import TopicRouter, payload_bytes
from hearth.common.topics import REGISTRY_HOMES_FILTER, USER_MARKS_FILTER, TopicError


def message(topic: str, payload: Any = b"") -> Any:
    return SimpleNamespace(topic=topic, payload=payload)


async def test_each_message_goes_to_every_matching_route_else_otherwise() -> None:
    seen: list[tuple[str, str]] = []
    router = TopicRouter()
    router.route(USER_MARKS_FILTER, lambda m: seen.append(("marks", str(m.topic))))

    async def homes(m: Any) -> None:
        seen.append(("homes", str(m.topic)))

    router.route(REGISTRY_HOMES_FILTER, homes)
    router.route("hearth-sys/#", lambda m: seen.append(("all", str(m.topic))), qos=0)
    router.otherwise(lambda m: seen.append(("rest", str(m.topic))))
    assert router.subscriptions == [
        (USER_MARKS_FILTER, 1),
        (REGISTRY_HOMES_FILTER, 1),
        ("hearth-sys/#", 0),
    ]

    await router.dispatch(message("hearth-sys/registry/homes/kitchen"))
    await router.dispatch(message("hearth/kitchen/lamp/status"))
    await router.dispatch(message("hearth-sys/auth/users/u"))
    assert seen == [
        ("homes", "hearth-sys/registry/homes/kitchen"),
        ("all", "hearth-sys/registry/homes/kitchen"),
        ("rest", "hearth/kitchen/lamp/status"),
        ("marks", "hearth-sys/auth/users/u"),
        ("all", "hearth-sys/auth/users/u"),
    ]


async def test_without_otherwise_an_unrouted_message_is_dropped() -> None:
    seen: list[str] = []
    router = TopicRouter()
    router.route(USER_MARKS_FILTER, lambda m: seen.append(str(m.topic)))
    await router.dispatch(message("hearth/kitchen/lamp/status"))
    assert seen == []
    await router.dispatch(message("hearth-sys/auth/users/u"))  # positive control
    assert seen == ["hearth-sys/auth/users/u"]


def test_bad_filters_fail_when_routed_and_otherwise_is_given_once() -> None:
    router = TopicRouter()
    with pytest.raises(TopicError):
        router.route("hearth/#/x", lambda m: None)
    router.otherwise(lambda m: None)
    with pytest.raises(ValueError, match="otherwise"):
        router.otherwise(lambda m: None)


def test_payload_bytes() -> None:
    assert payload_bytes(message("t", b"21.5")) == b"21.5"
    assert payload_bytes(message("t", bytearray(b"x"))) == b"x"
    assert payload_bytes(message("t", None)) == b""
