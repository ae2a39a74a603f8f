"""The topic grammar: builders, parsers, filters and MQTT matching (hearth.common.topics)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from hearth.common.errors import HearthError
from hearth.common.topics import (
    INGEST_SHARED_SUBSCRIPTION,
    REGISTRY_HOMES_FILTER,
    SERVICE_STATUS_FILTER,
    SLUG_PATTERN,
    SYS_ROOT,
    USER_MARKS_FILTER,
    DeviceTopic,
    Kind,
    ServiceReplica,
    TopicError,
    TopicFilter,
    ack_topic,
    can_match_device_topic,
    check_topic_name,
    command_topic,
    device_filter,
    filter_device,
    filter_home,
    filter_name,
    parse_filter,
    parse_registry_home_topic,
    parse_service_status_topic,
    parse_topic,
    parse_user_mark_topic,
    registry_home_topic,
    service_status_topic,
    state_topic,
    status_topic,
    telemetry_topic,
    topic_matches,
    user_mark_topic,
)

PROPERTY = settings(max_examples=1000, derandomize=True, database=None, deadline=None)

_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# Cheaper than st.from_regex(SLUG_PATTERN) (about twice as fast per example); the 63-character
# bound is covered by test_slug_length_bounds.
slugs = st.text(_ALNUM + "-", min_size=1, max_size=63).filter(lambda s: not s.startswith("-"))


@st.composite
def device_topics(draw: st.DrawFn) -> DeviceTopic:
    kind = draw(st.sampled_from(list(Kind)))
    name = draw(slugs) if kind.has_name else None
    return DeviceTopic(draw(slugs), draw(slugs), kind, name)


# A small alphabet of levels makes matches common and covers '$' topics and empty levels.
LEVELS = ["", "a", "b", "ab", "hearth", "kitchen", "$SYS", "$share", "$", "$a", "x$", "ä", " "]
levels = st.sampled_from(LEVELS)
topics = st.lists(levels, min_size=1, max_size=5).map("/".join).filter(bool)


def _plain(flt: str) -> bool:
    """Valid as a plain filter: non-empty and not read as a shared subscription."""
    return flt != "" and flt != "$share" and not flt.startswith("$share/")


@st.composite
def filters(draw: st.DrawFn) -> str:
    """Valid plain filters: literal levels and '+', optionally ending with '#'."""
    parts = draw(st.lists(st.sampled_from([*LEVELS, "+", "+"]), min_size=0, max_size=5))
    if draw(st.booleans()) or not parts:
        parts.append("#")
    return "/".join(parts)


plain_filters = filters().filter(_plain)


@st.composite
def matching_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """A topic and a filter derived from it that the MQTT rules say must match."""
    topic_levels = draw(st.lists(levels, min_size=1, max_size=5).filter(lambda ls: "/".join(ls)))
    dollar = topic_levels[0].startswith("$")
    out: list[str] = []
    for i, level in enumerate(topic_levels):
        if draw(st.booleans()) and draw(st.booleans()) and not (i == 0 and dollar):
            out.append("+")
        else:
            out.append(level)
    cut = draw(st.integers(0, len(out)))
    if cut < len(out) and not (cut == 0 and dollar):
        out = [*out[:cut], "#"]
    elif draw(st.booleans()) and not (cut == 0 and dollar):
        out.append("#")  # '#' also matches the parent level: sport/# matches sport
    flt = "/".join(out)
    assume(_plain(flt))
    return flt, "/".join(topic_levels)


# ---------------------------------------------------------------- device topics


def test_builders_render_design_grammar() -> None:
    assert telemetry_topic("home-1", "esp32", "temp") == "hearth/home-1/esp32/telemetry/temp"
    assert state_topic("h", "d", "relay") == "hearth/h/d/state/relay"
    assert command_topic("h", "d", "relay") == "hearth/h/d/command/relay"
    assert ack_topic("h", "d") == "hearth/h/d/ack"
    assert status_topic("h", "d") == "hearth/h/d/status"
    assert str(DeviceTopic("h", "d", Kind.ACK)) == "hearth/h/d/ack"


def test_parse_topic_gives_fields() -> None:
    parsed = parse_topic("hearth/kitchen/esp-7/telemetry/temp")
    assert parsed == DeviceTopic("kitchen", "esp-7", Kind.TELEMETRY, "temp")
    assert parsed.kind is Kind.TELEMETRY
    assert parse_topic("hearth/kitchen/esp-7/status").name is None


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("", "empty"),
        ("hearth/h/d/telemetry", "5 levels"),
        ("hearth/h/d/telemetry/t/x", "5 levels"),
        ("hearth/h/d/ack/x", "4 levels"),
        ("hearth/h/d", "too short"),
        ("hearth/h/d/bogus/x", "unknown kind"),
        ("hearth-sys/auth/users/x", "does not start with hearth/"),
        ("hearth/H/d/ack", "home 'H' is not a slug"),
        ("hearth/h/-d/ack", "device '-d' is not a slug"),
        ("hearth/h/d/state/" + "a" * 64, "property"),
        ("hearth/h//ack", "device '' is not a slug"),
        ("hearth/+/d/ack", "wildcard"),
        ("hearth/h/d/ack\x00", "NUL"),
    ],
)
def test_parse_topic_refuses_with_reason(topic: str, message: str) -> None:
    with pytest.raises(TopicError, match=re.escape(message)):
        parse_topic(topic)


def test_topic_error_is_a_value_error_and_hearth_error() -> None:
    with pytest.raises(ValueError, match="not a slug") as info:
        telemetry_topic("Kitchen", "d", "m")
    assert isinstance(info.value, HearthError)
    assert info.value.status == 400


def test_device_topic_validates_name_rules() -> None:
    with pytest.raises(TopicError, match="need a name"):
        DeviceTopic("h", "d", Kind.STATE)
    with pytest.raises(TopicError, match="take no name"):
        DeviceTopic("h", "d", Kind.STATUS, "x")
    with pytest.raises(TopicError, match="unknown topic kind"):
        DeviceTopic("h", "d", "bogus", "x")  # type: ignore[arg-type]


def test_slug_length_bounds() -> None:
    assert parse_topic(telemetry_topic("a" * 63, "0", "m")).home == "a" * 63
    with pytest.raises(TopicError):
        telemetry_topic("a" * 64, "d", "m")


@PROPERTY
@given(device_topics())
def test_device_topic_round_trips(topic: DeviceTopic) -> None:
    assert re.fullmatch(SLUG_PATTERN, topic.home)
    rendered = topic.render()
    assert parse_topic(rendered) == topic
    assert parse_topic(rendered).render() == rendered


@PROPERTY
@given(slugs, slugs, slugs)
def test_builders_agree_with_parser(home: str, device: str, name: str) -> None:
    assert parse_topic(telemetry_topic(home, device, name)) == DeviceTopic(
        home, device, Kind.TELEMETRY, name
    )
    assert parse_topic(state_topic(home, device, name)).kind is Kind.STATE
    assert parse_topic(command_topic(home, device, name)).name == name
    assert parse_topic(ack_topic(home, device)).kind is Kind.ACK
    assert parse_topic(status_topic(home, device)).device == device


@PROPERTY
@given(st.one_of(topics, st.text(max_size=40), device_topics().map(str).map(lambda s: s + "x")))
def test_parse_topic_accepts_exactly_its_rendering(text: str) -> None:
    try:
        parsed = parse_topic(text)
    except TopicError:
        return
    assert parsed.render() == text


def test_device_filter() -> None:
    assert device_filter(Kind.STATE) == "hearth/+/+/state/+"
    assert device_filter(Kind.ACK, "h") == "hearth/h/+/ack"
    assert device_filter(Kind.STATUS, device="d") == "hearth/+/d/status"
    assert topic_matches(device_filter(Kind.TELEMETRY, "h", "d"), telemetry_topic("h", "d", "t"))
    with pytest.raises(TopicError):
        device_filter(Kind.ACK, "H")


# ---------------------------------------------------------------- filters and matching


@pytest.mark.parametrize(
    ("flt", "topic", "expected"),
    [
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "sport/tennis", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/broker", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/monitor/Clients", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
        ("+", "$SYS", False),
        ("a//b", "a//b", True),
        ("a/+/b", "a//b", True),
        ("a/b", "a/b/", False),
        ("$share/ingest/hearth/+/+/telemetry/#", "hearth/h/d/telemetry/t", True),
        ("$share/ingest/hearth/+/+/telemetry/#", "hearth/h/d/state/t", False),
    ],
)
def test_topic_matches_spec_examples(flt: str, topic: str, expected: bool) -> None:
    assert topic_matches(flt, topic) is expected


@pytest.mark.parametrize(
    "flt", ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "+a/b", "a/#/", "", "a\x00", "##"]
)
def test_invalid_filters_refused(flt: str) -> None:
    with pytest.raises(TopicError):
        parse_filter(flt)


@pytest.mark.parametrize("flt", ["$share/g", "$share//a", "$share/g+/a", "$share/g/a/#/b"])
def test_invalid_shared_subscriptions_refused(flt: str) -> None:
    with pytest.raises(TopicError):
        parse_filter(flt)


def test_shared_subscription_parsed() -> None:
    shared = parse_filter(INGEST_SHARED_SUBSCRIPTION)
    assert shared == TopicFilter("hearth/+/+/telemetry/#", "ingest")
    assert str(shared) == INGEST_SHARED_SUBSCRIPTION
    assert shared.has_wildcards
    assert parse_filter("hearth/h/#").share_group is None


def test_matching_refuses_invalid_topic_names() -> None:
    for bad in ["", "a/+", "a/#", "a\x00"]:
        with pytest.raises(TopicError):
            topic_matches("#", bad)
    with pytest.raises(TopicError):
        check_topic_name("\ud800")


@PROPERTY
@given(st.text("ab+#/", max_size=8))
def test_filter_validity_follows_spec(text: str) -> None:
    # Independent statement of MQTT 4.7.1: '+' alone in a level, '#' alone in the last level.
    spec_ok = text != "" and re.fullmatch(r"(?:(?:[^/+#]*|\+)/)*(?:[^/+#]*|\+|#)", text)
    try:
        parse_filter(text)
    except TopicError:
        assert not spec_ok
    else:
        assert spec_ok


# paho's topic_matches_sub is the independent reference. Checked edges where it agrees with
# the spec: '$' topics are not matched by a leading '+'/'#' (its iter_match has `normal or
# i > 0`), '#' matches the parent level, '+' matches an empty level. Where it deviates:
# paho does not validate and treats "$share/<group>/..." as a literal filter, so the
# comparison uses plain filters only (generated levels include "$share" to reach that edge;
# `_plain` drops filters that would read as shared subscriptions; shared subscriptions are
# tested above and below), and only valid topic names and filters (paho answers for invalid
# ones too, such as "a/#/b", and its answers there mean nothing).


@PROPERTY
@given(plain_filters, topics)
def test_matching_agrees_with_paho(flt: str, topic: str) -> None:
    expected = topic_matches_sub(flt, topic)
    assert topic_matches(flt, topic) is expected
    assert parse_filter(flt).matches(topic) is expected
    # A shared subscription matches what its inner filter matches.
    assert topic_matches(f"$share/g/{flt}", topic) is expected


@PROPERTY
@given(matching_pairs())
def test_derived_filters_match(pair: tuple[str, str]) -> None:
    flt, topic = pair
    assert topic_matches(flt, topic)
    assert topic_matches_sub(flt, topic)


# ---------------------------------------------------------------- one home per filter


@pytest.mark.parametrize(
    ("flt", "home"),
    [
        ("hearth/kitchen/#", "kitchen"),
        ("hearth/kitchen/+/telemetry/+", "kitchen"),
        ("hearth/kitchen", "kitchen"),
        ("$share/g/hearth/kitchen/#", "kitchen"),
        ("hearth/+/lamp/state/+", None),
        ("hearth/#", None),
        ("hearth", None),
        ("#", None),
        ("+/kitchen/#", None),
        ("hearth/Kitchen/#", None),
        ("hearth-sys/registry/homes/kitchen", None),
    ],
)
def test_filter_home(flt: str, home: str | None) -> None:
    assert filter_home(flt) == home


@PROPERTY
@given(
    st.lists(st.sampled_from(["hearth", "h1", "h2", "+", "d", ""]), min_size=1, max_size=4),
    st.booleans(),
    st.lists(st.sampled_from(["hearth", "h1", "h2", "d", "", "$x"]), min_size=1, max_size=5),
)
def test_filter_home_bounds_every_match(
    parts: list[str], hashed: bool, topic_parts: list[str]
) -> None:
    flt = "/".join([*parts, "#"] if hashed else parts)
    topic = "/".join(topic_parts)
    assume(flt and topic)
    home = filter_home(flt)
    if home is not None and topic_matches(flt, topic):
        assert topic.split("/")[:2] == ["hearth", home]


# ---------------------------------------------------------------- system bus


def test_system_bus_topics() -> None:
    user = "6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d"
    assert user_mark_topic(user) == f"{SYS_ROOT}/auth/users/{user}"
    assert parse_user_mark_topic(user_mark_topic(user)) == user
    assert topic_matches(USER_MARKS_FILTER, user_mark_topic(user))
    assert registry_home_topic("kitchen") == "hearth-sys/registry/homes/kitchen"
    assert topic_matches(REGISTRY_HOMES_FILTER, registry_home_topic("kitchen"))
    assert service_status_topic("ingest", "1") == "hearth-sys/services/ingest/1"
    assert parse_service_status_topic("hearth-sys/services/ingest/1") == ServiceReplica(
        "ingest", "1"
    )
    assert topic_matches(SERVICE_STATUS_FILTER, service_status_topic("ingest", "1"))
    # Devices' and users' wildcards never reach the system bus.
    assert not topic_matches("hearth/#", user_mark_topic(user))


@pytest.mark.parametrize(
    "bad",
    [
        "6F1C1C9E-8F0E-4A43-9D61-6C5A0C1C2B3D",
        "6f1c1c9e8f0e4a439d616c5a0c1c2b3d",
        "{6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d}",
        "",
    ],
)
def test_user_ids_must_be_canonical(bad: str) -> None:
    with pytest.raises(TopicError, match="canonical lowercase UUID"):
        user_mark_topic(bad)
    with pytest.raises(TopicError):
        parse_user_mark_topic(f"hearth-sys/auth/users/{bad}")


@pytest.mark.parametrize(
    ("parser", "topic"),
    [
        (parse_user_mark_topic, "hearth-sys/auth/users"),
        (parse_user_mark_topic, "hearth-sys/auth/users/a/6f1c1c9e-8f0e-4a43-9d61-6c5a0c1c2b3d"),
        (parse_registry_home_topic, "hearth-sys/registry/homes/Kitchen"),
        (parse_registry_home_topic, "hearth-sys/registry/kitchen"),
        (parse_service_status_topic, "hearth-sys/services/ingest"),
        (parse_service_status_topic, "hearth-sys/services/ingest/1/x"),
        (parse_service_status_topic, "hearth/services/ingest/1"),
    ],
)
def test_system_bus_parsers_refuse(parser: Callable[[str], object], topic: str) -> None:
    with pytest.raises(TopicError):
        parser(topic)


@PROPERTY
@given(st.uuids(), slugs, slugs, slugs)
def test_system_bus_round_trips(user: uuid.UUID, home: str, service: str, replica: str) -> None:
    assert parse_user_mark_topic(user_mark_topic(str(user))) == str(user)
    assert parse_registry_home_topic(registry_home_topic(home)) == home
    assert parse_service_status_topic(service_status_topic(service, replica)) == (service, replica)
    for topic in (user_mark_topic(str(user)), registry_home_topic(home)):
        with pytest.raises(TopicError):
            parse_topic(topic)


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("hearth/h/#", True),
        ("hearth/h/d/telemetry/t", True),
        ("hearth/h/+/status", True),
        ("hearth/h/d/+", True),
        ("hearth/h/d/+/relay", True),
        ("hearth/h/d/ack/x", False),
        ("hearth/h/d/colour", False),
        ("hearth/h/D/status", False),
        ("hearth/h/d/telemetry", False),
        ("hearth/h", False),
        ("hearth-sys/registry/homes/h", False),
    ],
)
def test_can_match_device_topic(flt: str, expected: bool) -> None:
    assert can_match_device_topic(parse_filter(flt)) is expected


def test_filter_device_and_name() -> None:
    assert filter_device(parse_filter("hearth/h/lamp/#")) == "lamp"
    assert filter_device(parse_filter("hearth/h/+/status")) is None
    assert filter_device(parse_filter("hearth/h/#")) is None
    assert filter_name(parse_filter("hearth/h/d/telemetry/temp")) == (
        frozenset({Kind.TELEMETRY}),
        "temp",
    )
    assert filter_name(parse_filter("hearth/h/d/+/relay")) == (
        frozenset({Kind.TELEMETRY, Kind.STATE, Kind.COMMAND}),
        "relay",
    )
    assert filter_name(parse_filter("hearth/h/d/telemetry/+")) is None
    assert filter_name(parse_filter("hearth/h/d/status")) is None
