"""What a device does with a command (docs/topics.md, "What your firmware must do", step 6).

MicroPython-safe. :class:`CommandHandler` decides; the caller publishes. For each command:

1. a payload that is not a command: rejected if it has an id, else dropped;
2. a duplicate id (QoS 1 may deliver twice): the same ack again, nothing else;
3. ``expires_at`` passed: ``expired``, never acted on. When the clock is not synchronised
   (``now_ms`` is ``None``) a command that can expire is rejected: it cannot be checked;
4. a property the device does not have, or a value outside it: ``rejected`` with a reason;
5. otherwise ``act(property, value)`` switches the hardware and returns the resulting value
   (an exception rejects with its message); the caller publishes that state, retained,
   *then* the ``done`` ack.
"""

from hearth_device.protocol import capabilities, messages

try:  # CPython only: MicroPython never evaluates annotations, has no typing
    from collections.abc import Callable
    from typing import Any
except ImportError:  # pragma: no cover (MicroPython)
    pass

REMEMBER = 16


class Outcome:
    """The decision about one command: the ack to send and, after ``done``, the new state."""

    def __init__(
        self, ack: bytes | None, outcome: str | None, prop: str, value: object, reason: str | None
    ) -> None:
        self.ack = ack
        self.outcome = outcome
        self.prop = prop
        self.value = value
        self.reason = reason
        self.changed = outcome == messages.DONE

    def __repr__(self) -> str:
        return "Outcome(" + repr(self.outcome) + ", " + repr(self.prop) + ")"


class CommandHandler:
    """Checks commands against the device's properties and remembers the last acks."""

    def __init__(
        self,
        properties: list[dict[str, Any]],
        act: Callable[[str, Any], Any],
        remember: int = REMEMBER,
    ) -> None:
        self.properties = properties
        self.act = act
        self.remember = remember
        self._recent: list[tuple[str, Outcome]] = []  # [(id, Outcome)], oldest first

    def _seen(self, command_id: str) -> Outcome | None:
        for known, outcome in self._recent:
            if known == command_id:
                return outcome
        return None

    def _keep(self, command_id: str, outcome: Outcome) -> Outcome:
        self._recent.append((command_id, outcome))
        if len(self._recent) > self.remember:
            self._recent.pop(0)
        return outcome

    def handle(self, prop: str, payload: bytes, now_ms: int | None) -> Outcome:
        """Decide about a command for ``prop``; ``now_ms`` is ``None`` when the clock is unset."""
        try:
            command = messages.parse_command(payload)
        except ValueError as exc:
            command_id = messages.command_id_of(payload)
            reason = "invalid command: " + str(exc)
            if command_id is None:
                return Outcome(None, None, prop, None, reason)
            ack = messages.ack(command_id, messages.REJECTED, reason)
            return Outcome(ack, messages.REJECTED, prop, None, reason)
        earlier = self._seen(command.id)
        if earlier is not None:
            again = Outcome(earlier.ack, earlier.outcome, prop, earlier.value, "duplicate")
            again.changed = False  # acked again, not carried out again
            return again
        return self._keep(command.id, self._decide(prop, command, now_ms))

    def _reject(self, command: messages.Command, prop: str, reason: str) -> Outcome:
        ack = messages.ack(command.id, messages.REJECTED, reason)
        return Outcome(ack, messages.REJECTED, prop, None, reason)

    def _decide(self, prop: str, command: messages.Command, now_ms: int | None) -> Outcome:
        if command.expires_at is not None:
            if now_ms is None:
                return self._reject(command, prop, "clock not synchronised")
            if command.is_expired(now_ms):
                ack = messages.ack(command.id, messages.EXPIRED)
                return Outcome(ack, messages.EXPIRED, prop, None, "expired")
        declared = capabilities.find(self.properties, prop)
        if declared is None:
            return self._reject(command, prop, "unknown property " + prop)
        reason = capabilities.refusal(declared, command.value)
        if reason is not None:
            return self._reject(command, prop, reason)
        try:
            value = self.act(prop, command.value)
        except Exception as exc:  # the hardware said no: reject, never crash
            return self._reject(command, prop, "failed: " + str(exc))
        ack = messages.ack(command.id, messages.DONE, None, value)
        return Outcome(ack, messages.DONE, prop, value, None)
