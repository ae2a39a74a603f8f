"""Reconnect delays: exponential with full jitter, so a home's devices do not reconnect in step
after the broker restarts. MicroPython-safe (the caller passes its random function)."""

try:  # noqa: SIM105 (CPython only: MicroPython never evaluates annotations, has no typing)
    from collections.abc import Callable
except ImportError:  # pragma: no cover (MicroPython)
    pass


class Backoff:
    """Delays in seconds: ``random() * min(maximum, base * 2**attempt)``, at least ``floor``."""

    def __init__(
        self,
        random: Callable[[], float],
        base: float = 1.0,
        maximum: float = 60.0,
        floor: float = 0.1,
    ) -> None:
        self.random = random
        self.base = base
        self.maximum = maximum
        self.floor = floor
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next attempt (grows until :meth:`reset`)."""
        ceiling = min(self.maximum, self.base * float(1 << min(self.attempt, 30)))
        self.attempt += 1
        return max(self.floor, self.random() * ceiling)

    def reset(self) -> None:
        """After a successful connect: start again from ``base``."""
        self.attempt = 0
