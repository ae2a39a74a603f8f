"""Topic names of one device, as docs/topics.md defines them.

MicroPython-safe mirror of ``hearth.common.topics`` (the platform's copy is the truth;
``devices/core/tests/test_mirror.py`` checks this one against it)::

    hearth/{home}/{device}/telemetry/{metric}   device -> platform, QoS 1, retained
    hearth/{home}/{device}/state/{property}     device -> platform, QoS 1, retained
    hearth/{home}/{device}/command/{property}   platform -> device, QoS 1
    hearth/{home}/{device}/ack                  device -> platform, QoS 1
    hearth/{home}/{device}/status               device -> platform, retained; the will

A slug is ``[a-z0-9][a-z0-9-]{0,62}`` (checked by hand: MicroPython's ``re`` has no
counted repetition).
"""

ROOT = "hearth"
TELEMETRY = "telemetry"
STATE = "state"
COMMAND = "command"
ACK = "ack"
STATUS = "status"
SLUG_MAX = 63

_FIRST = "abcdefghijklmnopqrstuvwxyz0123456789"
_REST = _FIRST + "-"


def is_slug(value: object) -> bool:
    """Whether ``value`` is a slug (``[a-z0-9][a-z0-9-]{0,62}``)."""
    if not isinstance(value, str) or not 0 < len(value) <= SLUG_MAX:
        return False
    if value[0] not in _FIRST:
        return False
    return all(char in _REST for char in value)


def check_slug(value: object, what: str) -> str:
    """``value`` if it is a slug, else ``ValueError`` naming ``what``."""
    if not is_slug(value):
        raise ValueError(what + " " + repr(value) + " is not a slug")
    return str(value)


class DeviceTopics:
    """The topics of one device (home and device are checked once, here)."""

    def __init__(self, home: str, device: str) -> None:
        self.home = check_slug(home, "home")
        self.device = check_slug(device, "device")
        self.base = ROOT + "/" + self.home + "/" + self.device + "/"
        self.status = self.base + STATUS
        self.ack = self.base + ACK
        self.command_filter = self.base + COMMAND + "/+"

    def telemetry(self, metric: str) -> str:
        """``hearth/{home}/{device}/telemetry/{metric}``."""
        return self.base + TELEMETRY + "/" + check_slug(metric, "metric")

    def state(self, prop: str) -> str:
        """``hearth/{home}/{device}/state/{property}``."""
        return self.base + STATE + "/" + check_slug(prop, "property")

    def command(self, prop: str) -> str:
        """``hearth/{home}/{device}/command/{property}``."""
        return self.base + COMMAND + "/" + check_slug(prop, "property")

    def command_property(self, topic: str) -> str | None:
        """The property a command topic of this device names, or ``None`` if it is not one."""
        prefix = self.base + COMMAND + "/"
        if not topic.startswith(prefix):
            return None
        name = topic[len(prefix) :]
        return name if is_slug(name) else None
