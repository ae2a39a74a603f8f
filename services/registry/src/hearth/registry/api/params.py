"""The path parameters of the registry's routes, validated the same way everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from hearth.common.topics import SLUG_PATTERN

__all__ = ["DeviceSlug", "HomeSlug"]

HomeSlug = Annotated[str, Path(pattern=f"^{SLUG_PATTERN}$", description="The home's slug.")]
DeviceSlug = Annotated[str, Path(pattern=f"^{SLUG_PATTERN}$", description="The device's slug.")]
