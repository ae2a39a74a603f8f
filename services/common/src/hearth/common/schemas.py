"""Request bodies: the base every service's input models share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["InputModel"]


class InputModel(BaseModel):
    """Base of every request body and form: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")
