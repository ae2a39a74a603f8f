"""Password hashing: Argon2id through pwdlib."""

from __future__ import annotations

from pwdlib.hashers.argon2 import Argon2Hasher

from hearth.auth.passwords import PasswordHasher

FAST = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


async def test_hashes_are_argon2id_salted_and_verify() -> None:
    hasher = PasswordHasher(FAST)
    first = await hasher.hash("correct horse battery staple")
    second = await hasher.hash("correct horse battery staple")
    assert first.startswith("$argon2id$")
    assert first != second
    assert "correct horse" not in first
    assert await hasher.verify("correct horse battery staple", first)
    assert not await hasher.verify("Correct horse battery staple", first)


class CountingHasher(Argon2Hasher):
    """Argon2id that counts its verifications."""

    verified = 0

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        CountingHasher.verified += 1
        return super().verify(password, hash)


async def test_no_hash_never_matches_but_costs_a_verification() -> None:
    """An unknown user costs the same Argon2id work as a known one (no timing oracle)."""
    hasher = PasswordHasher(CountingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    CountingHasher.verified = 0
    assert not await hasher.verify("hearth-no-such-user", None)
    assert CountingHasher.verified == 1


async def test_hashes_made_with_other_costs_still_verify() -> None:
    strong = await PasswordHasher().hash("pw-made-with-the-defaults")
    assert "m=65536,t=3" in strong
    assert await PasswordHasher(FAST).verify("pw-made-with-the-defaults", strong)
