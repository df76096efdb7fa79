"""Verdicts from matches: strictest wins, review_above softens only perceptual matches, allow banks never count."""

from __future__ import annotations

import pytest

from cleanset.assess.policy import Policy, decide
from cleanset.errors import UserError
from cleanset.records import Match, Status, Verdict


def m(bank: str = "b", signal: str = "pdq", distance: int = 0) -> Match:
    return Match(bank=bank, version=1, entry_id="e", signal=signal, distance=distance, probe=f"{signal}/original")


def test_failed_has_no_verdict_even_with_matches() -> None:
    assert decide(Status.FAILED, [m()], None, Policy()) is None


def test_no_match_keeps_and_any_match_removes() -> None:
    assert decide(Status.OK, [], None, Policy()) is Verdict.KEEP
    assert decide(Status.OK, [m(distance=20)], None, Policy()) is Verdict.REMOVE


def test_review_above_only_softens_far_perceptual_matches() -> None:
    p = Policy(review_above=10)
    assert decide(Status.OK, [m(distance=10)], None, p) is Verdict.REMOVE
    assert decide(Status.OK, [m(distance=11)], None, p) is Verdict.REVIEW
    # an exact hash match has distance 0 anyway, but even a stray distance must not soften it
    assert decide(Status.OK, [m(signal="md5", distance=11)], None, p) is Verdict.REMOVE
    # strictest wins whatever the order
    assert decide(Status.OK, [m(distance=30), m(distance=2)], None, p) is Verdict.REMOVE


def test_bank_actions_and_allow_banks() -> None:
    p = Policy(bank_actions={"soft": "review"}, allow_banks=frozenset({"ok"}))
    assert decide(Status.OK, [m(bank="soft")], None, p) is Verdict.REVIEW
    assert decide(Status.OK, [m(bank="ok")], None, p) is Verdict.KEEP
    assert decide(Status.OK, [m(bank="soft"), m(bank="hard")], None, p) is Verdict.REMOVE


def test_scores_send_kept_items_to_review() -> None:
    p = Policy(score_review={"nsfw": 0.8})
    assert decide(Status.OK, [], {"nsfw": 0.79}, p) is Verdict.KEEP
    assert decide(Status.OK, [], {"nsfw": 0.8}, p) is Verdict.REVIEW


def test_round_trip_and_validation() -> None:
    p = Policy(review_above=5, bank_actions={"x": "review"}, allow_banks=frozenset({"a"}), score_review={"s": 0.5})
    assert Policy.from_dict(p.to_dict()) == p
    with pytest.raises(UserError, match="action"):
        Policy(bank_actions={"x": "delete"})
    with pytest.raises(UserError, match="review-above"):
        Policy(review_above=-1)
