"""The path parameters of the registry's routes, validated the same way everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from hearth.common.inputs import Slug

__all__ = ["DeviceSlug", "HomeSlug"]

HomeSlug = Annotated[Slug, Path(description="The home's slug.")]
DeviceSlug = Annotated[Slug, Path(description="The device's slug.")]
