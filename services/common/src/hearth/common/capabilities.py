"""What a device can do: the metrics it reports and the properties it can be commanded to set.

A :class:`Metric` names a telemetry topic (``hearth/{home}/{device}/telemetry/{name}``): its
unit, whether it is a number or a boolean, and the sane range of a number. A
:class:`Property` names a state and a command topic (``.../state/{name}``,
``.../command/{name}``): a number with a range (and an optional step), a boolean, or one
of a list of allowed text values. :meth:`Property.accepts` says whether a command value
fits, :meth:`Property.refusal` which rule or bound it breaks. Names are slugs and unique
within a device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hearth.common.inputs import FreeText, Slug, Text

__all__ = [
    "CapabilityName",
    "Metric",
    "MetricKind",
    "Property",
    "PropertyKind",
    "check_unique_names",
]

CapabilityName = Slug
"""A metric or property name: a slug (it is the last level of its topic)."""
Unit = Annotated[str, FreeText(16)]
"""A unit as people write it (``°C``, ``%``, ``ppm``); empty when there is none."""
Bound = Annotated[float, Field(allow_inf_nan=False)]

MetricKind = Literal["number", "boolean"]
PropertyKind = Literal["number", "boolean", "enum"]


class _Capability(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _check_range(self, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and maximum is not None and minimum > maximum:
            raise ValueError("min must not be greater than max")


class Metric(_Capability):
    """A value the device reports on ``telemetry/{name}``.

    ``min``/``max`` bound a number's sane range (both optional); booleans have neither.
    """

    name: CapabilityName
    unit: Unit = ""
    kind: MetricKind = "number"
    min: Bound | None = None
    max: Bound | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.kind == "boolean" and (self.min is not None or self.max is not None):
            raise ValueError("a boolean metric has no min or max")
        self._check_range(self.min, self.max)
        return self

    def range_violation(self, value: float) -> str | None:
        """Which declared bound ``value`` breaks (``"below min -40.0"``), or ``None``."""
        if self.min is not None and value < self.min:
            return f"{value!r} is below min {self.min!r}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above max {self.max!r}"
        return None


class Property(_Capability):
    """Something the device can be told to set, on ``command/{name}``; it reports ``state/{name}``.

    ``number`` needs ``min`` and ``max`` (``step`` optional), ``enum`` needs ``values`` (text,
    unique), ``boolean`` takes none of them.
    """

    name: CapabilityName
    kind: PropertyKind
    unit: Unit = ""
    min: Bound | None = None
    max: Bound | None = None
    step: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    values: (
        Annotated[
            list[Annotated[str, Text(63, min_length=1)]],
            Field(min_length=1, max_length=64),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        ranged = self.min is not None or self.max is not None or self.step is not None
        if self.kind == "number":
            if self.min is None or self.max is None:
                raise ValueError("a number property needs min and max")
            if self.values is not None:
                raise ValueError("a number property has no values")
            self._check_range(self.min, self.max)
        elif self.kind == "enum":
            if self.values is None:
                raise ValueError("an enum property needs values")
            if len(set(self.values)) != len(self.values):
                raise ValueError("values must be unique")
            if ranged:
                raise ValueError("an enum property has no min, max or step")
        elif ranged or self.values is not None:
            raise ValueError("a boolean property has no min, max, step or values")
        return self

    def accepts(self, value: object) -> bool:
        """Whether ``value`` (decoded JSON) is a valid command value for this property."""
        return self.refusal(value) is None

    def refusal(self, value: object) -> str | None:
        """Why ``value`` (decoded JSON) is not a valid command value, or ``None`` when it is.

        The reason names the rule or bound it breaks: ``"must be a number"``, ``"above the
        maximum 100"``, ``"below the minimum 0"``, ``"not a multiple of the step 0.5 from
        0"``, ``"not one of: eco, comfort"``.
        """
        if self.kind == "boolean":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "enum":
            allowed = self.values or []
            if isinstance(value, str) and value in allowed:
                return None
            return "not one of: " + ", ".join(allowed)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        number = float(value)
        if not math.isfinite(number):
            return "must be a finite number"
        if self.min is not None and number < self.min:
            return f"below the minimum {self.min:g}"
        if self.max is not None and number > self.max:
            return f"above the maximum {self.max:g}"
        if self.step is None:
            return None
        low = 0.0 if self.min is None else self.min
        steps = (number - low) / self.step
        if math.isclose(steps, round(steps), abs_tol=1e-9):
            return None
        return f"not a multiple of the step {self.step:g} from {low:g}"


def check_unique_names(items: Sequence[Metric] | Sequence[Property], what: str) -> None:
    """Raise ``ValueError`` when two ``items`` share a name."""
    names = [item.name for item in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{what} names must be unique: {', '.join(duplicates)}")
