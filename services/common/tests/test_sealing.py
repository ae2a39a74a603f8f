"""SecretBox: sealed values open only with their key, purpose and row."""

from __future__ import annotations

import pytest

from hearth.common.errors import ConfigError
from hearth.common.sealing import SecretBox, Unsealable

KEY = "k" * 32


def box(key: str = KEY, info: bytes = b"purpose v1") -> SecretBox:
    return SecretBox(key, info=info, setting="HEARTH_X_KEY")


def test_a_sealed_value_opens_with_its_key_purpose_and_row() -> None:
    sealed = box().seal("dev.flat.lamp", b"the password")
    assert b"the password" not in sealed
    assert box().open("dev.flat.lamp", sealed) == b"the password"  # the positive control
    assert box().seal("dev.flat.lamp", b"the password") != sealed  # a fresh nonce each time
    for other, row in (
        (box(key="o" * 32), "dev.flat.lamp"),  # another key
        (box(info=b"purpose v2"), "dev.flat.lamp"),  # another purpose
        (box(), "dev.flat.heater"),  # copied to another row
    ):
        with pytest.raises(Unsealable):
            other.open(row, sealed)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(Unsealable):
        box().open("dev.flat.lamp", tampered)


def test_a_missing_or_short_key_names_the_setting_not_the_value() -> None:
    for key in ("", "short"):
        with pytest.raises(ConfigError, match="HEARTH_X_KEY") as refused:
            box(key=key)
        assert key == "" or key not in str(refused.value)
    assert "k" * 32 not in repr(box())
