"""Whether a command value fits a property, as the registry declares properties.

MicroPython-safe mirror of ``hearth.common.capabilities.Property.accepts``; a property is
the plain dict of the config download (``{"name", "kind", "min", "max", "step",
"values"}``). :func:`refusal` returns the reason a value does not fit, or ``None``.
"""

import math

try:  # noqa: SIM105 (CPython only: MicroPython never evaluates annotations, has no typing)
    from typing import Any
except ImportError:  # pragma: no cover (MicroPython)
    pass

_INF = float("inf")


def _close(a: float, b: float) -> bool:
    # math.isclose(a, b, abs_tol=1e-9) with its default rel_tol (MicroPython may lack isclose)
    return abs(a - b) <= max(1e-9 * max(abs(a), abs(b)), 1e-9)


def refusal(prop: dict[str, Any], value: object) -> str | None:
    """Why ``value`` is not a valid command value for ``prop``, or ``None`` if it is."""
    kind = prop.get("kind")
    if kind == "boolean":
        return None if isinstance(value, bool) else "value must be true or false"
    if kind == "enum":
        values = prop.get("values") or ()
        if isinstance(value, str) and value in values:
            return None
        return "value must be one of " + ", ".join(values)
    if kind != "number":
        return "unknown property kind " + repr(kind)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "value must be a number"
    number = float(value)
    low = -_INF if prop.get("min") is None else float(prop["min"])
    high = _INF if prop.get("max") is None else float(prop["max"])
    if not math.isfinite(number) or not low <= number <= high:
        return "value out of range"
    step = prop.get("step")
    if step is None:
        return None
    steps = (number - low) / float(step)
    return None if _close(steps, round(steps)) else "value not a multiple of the step"


def find(properties: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The property called ``name``, or ``None``."""
    for prop in properties:
        if prop.get("name") == name:
            return prop
    return None
