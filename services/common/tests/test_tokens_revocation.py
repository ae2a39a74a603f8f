"""RevocationMarks fed from the system bus topic hearth-sys/auth/users/{user id}."""

from __future__ import annotations

import time

import pytest

from hearth.common.errors import TokenRevoked, UserDisabled
from hearth.common.messages import UserMark
from hearth.common.tokens import RevocationMarks, TokenVerifier
from hearth.common.topics import USER_MARKS_FILTER, topic_matches, user_mark_topic
from hearth.testing.tokens import TokenMinter

USER = "4f1c6a1e-2b7d-4c35-9d8e-0a1b2c3d4e5f"
TOPIC = user_mark_topic(USER)


def test_the_topic_is_under_the_filter_services_subscribe_to() -> None:
    assert topic_matches(USER_MARKS_FILTER, TOPIC)


def test_a_mark_message_is_applied_and_an_empty_one_clears_it() -> None:
    marks = RevocationMarks()
    assert marks.handle_message(TOPIC, b'{"not_before": 1700000000123, "disabled": false}')
    assert marks.get(USER) == UserMark(not_before=1_700_000_000_123, disabled=False)
    assert len(marks) == 1
    assert marks.handle_message(TOPIC, b'{"not_before": 1700000000999, "disabled": true}')
    assert marks.get(USER) == UserMark(not_before=1_700_000_000_999, disabled=True)
    assert marks.handle_message(TOPIC, b"")  # the retained mark was cleared
    assert marks.get(USER) is None
    assert len(marks) == 0


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("hearth-sys/auth/users/not-a-uuid", b'{"not_before": 1}'),
        ("hearth-sys/auth/users", b'{"not_before": 1}'),
        ("hearth/flat/lamp/state/on", b'{"not_before": 1}'),
        (TOPIC, b"not json"),
        (TOPIC, b'{"not_before": "yesterday"}'),
        (TOPIC, b'{"not_before": -5}'),
        (TOPIC, b'{"disabled": true}'),
    ],
)
def test_malformed_messages_are_ignored_and_logged(
    topic: str, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    marks = RevocationMarks()
    marks.apply(USER, UserMark(not_before=42))
    assert not marks.handle_message(topic, payload)
    assert marks.get(USER) == UserMark(not_before=42)
    assert any(r.getMessage() == "ignoring a malformed user mark" for r in caplog.records)


async def test_a_logout_everywhere_message_revokes_earlier_tokens(
    mint_token: TokenMinter, token_verifier: TokenVerifier
) -> None:
    token = mint_token(USER, iat=round(time.time() - 60, 3))
    assert await token_verifier.verify(token)
    now_ms = int(time.time() * 1000)
    token_verifier.marks.handle_message(TOPIC, UserMark(not_before=now_ms).to_bytes())
    with pytest.raises(TokenRevoked):
        await token_verifier.verify(token)
    assert await token_verifier.verify(mint_token(USER, iat=now_ms / 1000))
    token_verifier.marks.handle_message(
        TOPIC, UserMark(not_before=now_ms, disabled=True).to_bytes()
    )
    with pytest.raises(UserDisabled):
        await token_verifier.verify(mint_token(USER))
