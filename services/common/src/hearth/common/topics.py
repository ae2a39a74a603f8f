"""The topic grammar of Hearth: the one place topic names are built, parsed and matched.

Errors (the root is :class:`hearth.common.errors.HearthError`)::

    HearthError
    └── TopicError(HearthError, ValueError)   a topic or filter outside the grammar

Device topics (``hearth/...``)::

    hearth/{home}/{device}/telemetry/{metric}   device -> platform, QoS 1, retained
    hearth/{home}/{device}/state/{property}     device -> platform, QoS 1, retained
    hearth/{home}/{device}/command/{property}   platform -> device, QoS 1
    hearth/{home}/{device}/ack                  device -> platform, QoS 1
    hearth/{home}/{device}/status               device -> platform, retained; the will

System bus (``hearth-sys/...``, services only)::

    hearth-sys/auth/users/{user id}             retained revocation mark
    hearth-sys/registry/homes/{home}            registry change events
    hearth-sys/registry/devices/{home}/{device} retained capability snapshot (empty: deleted)
    hearth-sys/ingest/discovered/{home}/{device} ingest -> registry: an undeclared metric seen
    hearth-sys/ingest/barrier/{replica}         an ingest replica's own start-up barrier
    hearth-sys/services/{service}/{replica}     retained service birth / will

Slugs (home, device, metric, property, service, replica) match ``[a-z0-9][a-z0-9-]{0,62}``.
Builders of concrete topics return ``str`` (ready to publish); :class:`DeviceTopic` and
:class:`TopicFilter` are the validated value types behind them. Matching follows the MQTT
3.1.1 / 5.0 rules (section 4.7), see :func:`topic_matches`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from hearth.common.errors import HearthError

__all__ = [
    "DISCOVERED_FILTER",
    "INGEST_SHARED_SUBSCRIPTION",
    "REGISTRY_DEVICES_FILTER",
    "REGISTRY_HOMES_FILTER",
    "ROOT",
    "SERVICE_STATUS_FILTER",
    "SLUG_PATTERN",
    "SYS_ROOT",
    "USER_MARKS_FILTER",
    "DeviceTopic",
    "Kind",
    "ServiceReplica",
    "TopicError",
    "TopicFilter",
    "ack_topic",
    "can_match_device_topic",
    "check_slug",
    "check_topic_name",
    "command_topic",
    "device_filter",
    "discovered_topic",
    "filter_device",
    "filter_home",
    "filter_name",
    "ingest_barrier_topic",
    "is_slug",
    "is_user_id",
    "parse_discovered_topic",
    "parse_filter",
    "parse_registry_device_topic",
    "parse_registry_home_topic",
    "parse_service_status_topic",
    "parse_topic",
    "parse_user_mark_topic",
    "registry_device_topic",
    "registry_home_topic",
    "service_status_topic",
    "state_topic",
    "status_topic",
    "telemetry_topic",
    "topic_matches",
    "user_mark_topic",
]

ROOT = "hearth"
"""First level of every device topic."""
SYS_ROOT = "hearth-sys"
"""First level of every system-bus topic (services only; never readable by devices or users)."""

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,62}"
"""A home, device, metric, property, service or replica name."""
_SLUG = re.compile(SLUG_PATTERN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_TOPIC_BYTES = 65535
_SHARE = "$share"


class TopicError(HearthError, ValueError):
    """A topic name or filter is outside the MQTT rules or Hearth's grammar."""

    status = 400
    code = "invalid"
    title = "Invalid topic"


class Kind(StrEnum):
    """The fourth level of a device topic: what the message is."""

    TELEMETRY = "telemetry"
    STATE = "state"
    COMMAND = "command"
    ACK = "ack"
    STATUS = "status"

    @property
    def has_name(self) -> bool:
        """Whether topics of this kind end with a metric or property name."""
        return self in _NAMED_KINDS


_NAMED_KINDS = frozenset({Kind.TELEMETRY, Kind.STATE, Kind.COMMAND})


def is_slug(value: str) -> bool:
    """Whether ``value`` is a valid slug (``[a-z0-9][a-z0-9-]{0,62}``)."""
    return _SLUG.fullmatch(value) is not None


def check_slug(value: str, what: str = "slug") -> str:
    """Return ``value`` if it is a slug, else raise :class:`TopicError` naming ``what``."""
    if not isinstance(value, str) or not is_slug(value):
        raise TopicError(f"{what} {value!r} is not a slug ([a-z0-9][a-z0-9-]{{0,62}})")
    return value


def is_user_id(value: str) -> bool:
    """Whether ``value`` is a user id: a canonical lowercase UUID."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def _check_user_id(value: str) -> str:
    if not is_user_id(value):
        raise TopicError(f"user id {value!r} is not a canonical lowercase UUID")
    return value


def _check_common(text: str, what: str) -> None:
    if not isinstance(text, str):
        raise TopicError(f"{what} must be a string, not {type(text).__name__}")
    if not text:
        raise TopicError(f"{what} is empty")
    if "\x00" in text:
        raise TopicError(f"{what} {text!r} contains NUL")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates
        raise TopicError(f"{what} {text!r} is not valid UTF-8") from exc
    if size > _MAX_TOPIC_BYTES:
        raise TopicError(f"{what} is longer than {_MAX_TOPIC_BYTES} bytes")


def check_topic_name(topic: str) -> str:
    """Return ``topic`` if it is a valid MQTT topic name (what a message is published to).

    Non-empty, at most 65,535 UTF-8 bytes, no NUL, no wildcard characters ``+``/``#``.
    """
    _check_common(topic, "topic")
    if "+" in topic or "#" in topic:
        raise TopicError(f"topic {topic!r} contains a wildcard (+ or #)")
    return topic


# --------------------------------------------------------------------------- device topics


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A validated device topic: ``hearth/{home}/{device}/{kind}[/{name}]``.

    ``name`` is the metric (telemetry) or property (state, command) and is ``None`` for
    ``ack`` and ``status``. Construction validates; ``str()`` renders the topic.
    """

    home: str
    device: str
    kind: Kind
    name: str | None = None

    def __post_init__(self) -> None:
        check_slug(self.home, "home")
        check_slug(self.device, "device")
        try:
            kind = Kind(self.kind)
        except ValueError as exc:
            raise TopicError(f"unknown topic kind {self.kind!r}") from exc
        object.__setattr__(self, "kind", kind)
        if kind.has_name:
            if self.name is None:
                raise TopicError(f"{kind} topics need a name")
            check_slug(self.name, "metric" if kind is Kind.TELEMETRY else "property")
        elif self.name is not None:
            raise TopicError(f"{kind} topics take no name, got {self.name!r}")

    def render(self) -> str:
        """The topic as published."""
        base = f"{ROOT}/{self.home}/{self.device}/{self.kind.value}"
        return base if self.name is None else f"{base}/{self.name}"

    def __str__(self) -> str:
        return self.render()


def parse_topic(topic: str) -> DeviceTopic:
    """Parse a device topic, raising :class:`TopicError` with the reason when it is not one."""
    check_topic_name(topic)
    levels = topic.split("/")
    if levels[0] != ROOT:
        raise TopicError(f"topic {topic!r} does not start with {ROOT}/")
    if len(levels) < 4:
        raise TopicError(f"topic {topic!r} is too short for hearth/home/device/kind")
    try:
        kind = Kind(levels[3])
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown kind {levels[3]!r}") from None
    expected = 5 if kind.has_name else 4
    if len(levels) != expected:
        raise TopicError(f"topic {topic!r}: {kind} topics have {expected} levels")
    return DeviceTopic(levels[1], levels[2], kind, levels[4] if kind.has_name else None)


def telemetry_topic(home: str, device: str, metric: str) -> str:
    """``hearth/{home}/{device}/telemetry/{metric}``."""
    return DeviceTopic(home, device, Kind.TELEMETRY, metric).render()


def state_topic(home: str, device: str, prop: str) -> str:
    """``hearth/{home}/{device}/state/{property}``."""
    return DeviceTopic(home, device, Kind.STATE, prop).render()


def command_topic(home: str, device: str, prop: str) -> str:
    """``hearth/{home}/{device}/command/{property}``."""
    return DeviceTopic(home, device, Kind.COMMAND, prop).render()


def ack_topic(home: str, device: str) -> str:
    """``hearth/{home}/{device}/ack``."""
    return DeviceTopic(home, device, Kind.ACK).render()


def status_topic(home: str, device: str) -> str:
    """``hearth/{home}/{device}/status``."""
    return DeviceTopic(home, device, Kind.STATUS).render()


def device_filter(kind: Kind, home: str | None = None, device: str | None = None) -> str:
    """A filter over one kind of device topic; ``None`` home/device become ``+``.

    ``device_filter(Kind.STATE)`` is ``hearth/+/+/state/+``; ``device_filter(Kind.ACK, "h")``
    is ``hearth/h/+/ack``.
    """
    kind = Kind(kind)
    parts = [
        ROOT,
        "+" if home is None else check_slug(home, "home"),
        "+" if device is None else check_slug(device, "device"),
        kind.value,
    ]
    if kind.has_name:
        parts.append("+")
    return "/".join(parts)


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A validated MQTT topic filter, optionally a shared subscription.

    ``filter`` is the filter proper (without ``$share/<group>/``); ``share_group`` is the
    group of a shared subscription or ``None``. ``str()`` renders the subscription string.
    """

    filter: str
    share_group: str | None = None

    def __post_init__(self) -> None:
        _check_filter(self.filter)
        if self.share_group is not None:
            group = self.share_group
            if not isinstance(group, str) or not group or any(c in group for c in "/+#\x00"):
                raise TopicError(f"share group {group!r} is empty or contains / + # or NUL")

    @property
    def levels(self) -> tuple[str, ...]:
        """The filter's levels (split on ``/``)."""
        return tuple(self.filter.split("/"))

    @property
    def has_wildcards(self) -> bool:
        """Whether the filter contains ``+`` or ``#``."""
        return "+" in self.filter or "#" in self.filter

    def render(self) -> str:
        """The string to subscribe with (``$share/<group>/<filter>`` when shared)."""
        if self.share_group is None:
            return self.filter
        return f"{_SHARE}/{self.share_group}/{self.filter}"

    def __str__(self) -> str:
        return self.render()

    def matches(self, topic: str) -> bool:
        """Whether a message published to ``topic`` is delivered to this filter.

        Raises :class:`TopicError` when ``topic`` is not a valid topic name.
        """
        check_topic_name(topic)
        return _match(self.filter.split("/"), topic.split("/"))


def _check_filter(text: str) -> None:
    _check_common(text, "filter")
    levels = text.split("/")
    last = len(levels) - 1
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != last):
            raise TopicError(f"filter {text!r}: '#' must be alone in the last level")
        if "+" in level and level != "+":
            raise TopicError(f"filter {text!r}: '+' must be alone in its level")


def parse_filter(text: str) -> TopicFilter:
    """Parse a topic filter or a shared subscription ``$share/<group>/<filter>``."""
    _check_common(text, "filter")
    if text == _SHARE or text.startswith(_SHARE + "/"):
        parts = text.split("/", 2)
        if len(parts) < 3:
            raise TopicError(f"shared subscription {text!r} needs $share/<group>/<filter>")
        return TopicFilter(parts[2], parts[1])
    return TopicFilter(text)


def _match(filter_levels: list[str], topic_levels: list[str]) -> bool:
    # MQTT 4.7.2: a filter starting with a wildcard does not match a topic starting with '$'.
    if topic_levels[0].startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    n_topic = len(topic_levels)
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True  # also matches the parent level: sport/# matches sport
        if i >= n_topic:
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == n_topic


def topic_matches(topic_filter: str | TopicFilter, topic: str) -> bool:
    """Whether a message on ``topic`` reaches a subscription with ``topic_filter``.

    Follows MQTT 4.7: ``+`` matches exactly one level (an empty one too), ``#`` the parent
    and any number of levels below it, filters starting with a wildcard never match topics
    starting with ``$``, and a shared subscription matches what its inner filter matches.
    Raises :class:`TopicError` when the filter or the topic is invalid.
    """
    parsed = topic_filter if isinstance(topic_filter, TopicFilter) else parse_filter(topic_filter)
    return parsed.matches(topic)


def filter_home(topic_filter: str | TopicFilter) -> str | None:
    """The home a filter stays inside, or ``None`` when it can reach beyond one home.

    A filter stays inside one home when its first level is ``hearth`` and its second level is
    a literal slug: ``hearth/kitchen/#`` gives ``kitchen``; ``hearth/+/lamp/state/+``, ``#``
    and system-bus filters give ``None``. A shared subscription is judged by its inner filter.
    """
    parsed = topic_filter if isinstance(topic_filter, TopicFilter) else parse_filter(topic_filter)
    levels = parsed.levels
    if len(levels) >= 2 and levels[0] == ROOT and is_slug(levels[1]):
        return levels[1]
    return None


def filter_device(topic_filter: TopicFilter) -> str | None:
    """The device a ``hearth/`` filter names literally (its third level), else ``None``.

    ``hearth/kitchen/lamp/#`` gives ``lamp``; ``hearth/kitchen/+/status`` and
    ``hearth/kitchen/#`` give ``None``.
    """
    levels = topic_filter.levels
    if len(levels) >= 3 and levels[0] == ROOT and is_slug(levels[2]):
        return levels[2]
    return None


def filter_name(topic_filter: TopicFilter) -> tuple[frozenset[Kind], str] | None:
    """The metric or property a ``hearth/`` filter names literally, with the kinds it can be.

    ``hearth/h/d/telemetry/temp`` gives ``({telemetry}, "temp")``; ``hearth/h/d/+/relay``
    gives ``({telemetry, state, command}, "relay")``; a wildcard or missing fifth level
    gives ``None``.
    """
    levels = topic_filter.levels
    if len(levels) < 5 or levels[0] != ROOT or levels[4] in ("+", "#"):
        return None
    if levels[3] == "+":
        return _NAMED_KINDS, levels[4]
    try:
        kind = Kind(levels[3])
    except ValueError:
        return None
    return (frozenset({kind}) if kind.has_name else frozenset()), levels[4]


def can_match_device_topic(topic_filter: TopicFilter) -> bool:
    """Whether any device topic of the grammar could match ``topic_filter``.

    Device topics are ``hearth/{home}/{device}/{kind}/{name}`` (telemetry, state, command)
    or ``hearth/{home}/{device}/{kind}`` (ack, status): a filter whose literal levels fit
    neither shape (``hearth/h/d/colour``, ``hearth/h/d/status/x``, ``hearth/H/#``) can
    never receive a message. The share group, if any, is not looked at.
    """
    for kind in Kind:
        shape = [ROOT, "home", "device", kind.value]
        if kind.has_name:
            shape.append("name")
        if _fits(topic_filter.levels, shape):
            return True
    return False


def _fits(levels: tuple[str, ...], shape: list[str]) -> bool:
    for index, level in enumerate(levels):
        if level == "#":
            return True
        if index >= len(shape):
            return False
        if level == "+":
            continue
        expected = shape[index]
        if expected in ("home", "device", "name"):
            if not is_slug(level):
                return False
        elif level != expected:
            return False
    return len(levels) == len(shape)


INGEST_SHARED_SUBSCRIPTION = f"{_SHARE}/ingest/{ROOT}/+/+/{Kind.TELEMETRY.value}/#"
"""The shared subscription all ingest replicas use (MQTT spreads messages across them)."""

# --------------------------------------------------------------------------- system bus

_USERS = f"{SYS_ROOT}/auth/users"
_HOMES = f"{SYS_ROOT}/registry/homes"
_SERVICES = f"{SYS_ROOT}/services"

USER_MARKS_FILTER = f"{_USERS}/+"
"""Every user's revocation mark."""
REGISTRY_HOMES_FILTER = f"{_HOMES}/+"
"""Every home's registry change events."""
SERVICE_STATUS_FILTER = f"{_SERVICES}/+/+"
"""Every service replica's birth / will."""
_DEVICES = f"{SYS_ROOT}/registry/devices"
_DISCOVERED = f"{SYS_ROOT}/ingest/discovered"
_BARRIER = f"{SYS_ROOT}/ingest/barrier"
REGISTRY_DEVICES_FILTER = f"{_DEVICES}/+/+"
"""Every device's retained capability snapshot."""
DISCOVERED_FILTER = f"{_DISCOVERED}/+/+"
"""Every undeclared metric ingest reports."""


def registry_device_topic(home: str, device: str) -> str:
    """``hearth-sys/registry/devices/{home}/{device}``: the device's retained snapshot."""
    return f"{_DEVICES}/{check_slug(home, 'home')}/{check_slug(device, 'device')}"


def discovered_topic(home: str, device: str) -> str:
    """``hearth-sys/ingest/discovered/{home}/{device}``: ingest reports an undeclared metric."""
    return f"{_DISCOVERED}/{check_slug(home, 'home')}/{check_slug(device, 'device')}"


def ingest_barrier_topic(replica: str) -> str:
    """``hearth-sys/ingest/barrier/{replica}``: what one ingest replica sends itself."""
    return f"{_BARRIER}/{check_slug(replica, 'replica')}"


def _home_device(topic: str, prefix: str) -> tuple[str, str]:
    levels = topic.split("/") if isinstance(topic, str) else []
    if len(levels) != 5 or "/".join(levels[:3]) != prefix:
        raise TopicError(f"topic {topic!r} is not a {prefix}/<home>/<device> topic")
    return check_slug(levels[3], "home"), check_slug(levels[4], "device")


def parse_registry_device_topic(topic: str) -> tuple[str, str]:
    """The home and device of a ``hearth-sys/registry/devices/{home}/{device}`` topic."""
    return _home_device(topic, _DEVICES)


def parse_discovered_topic(topic: str) -> tuple[str, str]:
    """The home and device of a ``hearth-sys/ingest/discovered/{home}/{device}`` topic."""
    return _home_device(topic, _DISCOVERED)


def user_mark_topic(user_id: str) -> str:
    """``hearth-sys/auth/users/{user id}``; ``user_id`` is a canonical lowercase UUID."""
    return f"{_USERS}/{_check_user_id(user_id)}"


def parse_user_mark_topic(topic: str) -> str:
    """The user id of a ``hearth-sys/auth/users/{user id}`` topic."""
    prefix, _, user_id = topic.rpartition("/") if isinstance(topic, str) else ("", "", "")
    if prefix != _USERS:
        raise TopicError(f"topic {topic!r} is not a {_USERS}/<user id> topic")
    return _check_user_id(user_id)


def registry_home_topic(home: str) -> str:
    """``hearth-sys/registry/homes/{home}``."""
    return f"{_HOMES}/{check_slug(home, 'home')}"


def parse_registry_home_topic(topic: str) -> str:
    """The home of a ``hearth-sys/registry/homes/{home}`` topic."""
    prefix, _, home = topic.rpartition("/") if isinstance(topic, str) else ("", "", "")
    if prefix != _HOMES:
        raise TopicError(f"topic {topic!r} is not a {_HOMES}/<home> topic")
    return check_slug(home, "home")


class ServiceReplica(NamedTuple):
    """A service replica as named by its status topic (its client id is ``service-replica``)."""

    service: str
    replica: str


def service_status_topic(service: str, replica: str) -> str:
    """``hearth-sys/services/{service}/{replica}``."""
    return f"{_SERVICES}/{check_slug(service, 'service')}/{check_slug(replica, 'replica')}"


def parse_service_status_topic(topic: str) -> ServiceReplica:
    """The service and replica of a ``hearth-sys/services/{service}/{replica}`` topic."""
    levels = topic.split("/") if isinstance(topic, str) else []
    if len(levels) != 4 or "/".join(levels[:2]) != _SERVICES:
        raise TopicError(f"topic {topic!r} is not a {_SERVICES}/<service>/<replica> topic")
    return ServiceReplica(check_slug(levels[2], "service"), check_slug(levels[3], "replica"))
