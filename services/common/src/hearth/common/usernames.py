"""Usernames: the one grammar auth stores and the registry adds members by.

A username is entered in any case with surrounding spaces and kept trimmed and
lower-cased, so ``" Ada "`` and ``"ada"`` name the same user. The pattern is
checked after normalising (pydantic's ``StringConstraints`` would check it
before ``to_lower``, refusing ``"ADA"``).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["USERNAME_PATTERN", "Username", "check_username", "normalise_username"]

USERNAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,62}"
"""What a stored username looks like."""

_USERNAME = re.compile(USERNAME_PATTERN)


def normalise_username(value: object) -> object:
    """``value`` trimmed and lower-cased when it is a string, else unchanged."""
    return value.strip().lower() if isinstance(value, str) else value


def check_username(value: str) -> str:
    """``value`` when it matches :data:`USERNAME_PATTERN`, else ``ValueError``."""
    if _USERNAME.fullmatch(value) is None:
        raise ValueError(
            "a username is 1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )
    return value


Username = Annotated[str, BeforeValidator(normalise_username), AfterValidator(check_username)]
"""A username field: normalised, then checked against :data:`USERNAME_PATTERN`."""
