"""Usernames: normalised (trimmed, lower-cased) before the pattern is checked."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from hearth.common.usernames import Username

USERNAME = TypeAdapter(Username)


@pytest.mark.parametrize(
    ("given", "stored"),
    [("ada", "ada"), (" ADA ", "ada"), ("Ada.Lovelace", "ada.lovelace"), ("k9_x-1", "k9_x-1")],
)
def test_a_username_is_trimmed_and_lower_cased(given: str, stored: str) -> None:
    assert USERNAME.validate_python(given) == stored


@pytest.mark.parametrize("given", ["", "  ", "-ada", ".ada", "ada lovelace", "ad@", "a" * 64, 7])
def test_a_bad_username_is_refused(given: object) -> None:
    with pytest.raises(ValidationError):
        USERNAME.validate_python(given)
