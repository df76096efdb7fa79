"""``assess``: the one verdict rule, with its reasons, on the shared fixture."""

from __future__ import annotations

import pytest
from assess_fixtures import BANKS, CASES, M1, POLICY, Case

from cleanset.assess import Assessment, Policy, assess, assess_many, judge
from cleanset.matching.matcher import BankMatcher
from cleanset.records import UNSCREENED_FRAMES, Match, Probe, Status, Verdict


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.key)
def test_fixture_verdicts(case: Case) -> None:
    a = assess(case.probes, BANKS, POLICY, scores=case.scores)
    assert str(a.verdict) == case.expected
    assert a.reasons, "every verdict says why"


def test_batch_equals_one_by_one_and_a_built_matcher_equals_banks() -> None:
    matcher = BankMatcher.build(BANKS)
    many = assess_many([c.probes for c in CASES], matcher, POLICY, scores=[c.scores for c in CASES])
    assert many == [assess(c.probes, BANKS, POLICY, scores=c.scores) for c in CASES]


def m(bank: str = "b", signal: str = "pdq", distance: int = 0) -> Match:
    return Match(bank, 2, "e7", signal, distance, f"{signal}/original")


def test_remove_beats_review_beats_keep_whatever_the_order() -> None:
    p = Policy(review_above=10)
    for ms in ([m(distance=30), m(distance=2)], [m(distance=2), m(distance=30)]):
        assert judge(Status.OK, ms, None, p)[0] is Verdict.REMOVE
    assert judge(Status.OK, [m(distance=30)], None, p)[0] is Verdict.REVIEW
    assert judge(Status.OK, [], None, p)[0] is Verdict.KEEP


def test_reasons_name_bank_entry_and_distance_never_a_value() -> None:
    _, reasons = judge(Status.OK, [m(signal="md5")], None, Policy())
    assert reasons == ["md5 exact match in bank b v2 entry e7"]
    _, reasons = judge(Status.OK, [m(distance=12)], None, Policy(review_above=10))
    assert reasons == ["pdq 12 bits from bank b v2 entry e7 (probe pdq/original) (review above 10)"]
    _, reasons = judge(Status.OK, [m(bank="soft", signal="md5")], None, Policy(bank_actions={"soft": "review"}))
    assert reasons == ["md5 exact match in bank soft v2 entry e7 (bank soft is review-only)"]
    a = assess([Probe("md5", "md5", M1)], BANKS, POLICY)
    assert not any(M1 in r for r in a.reasons)


def test_allow_banks_never_count_and_say_so() -> None:
    v, reasons = judge(Status.OK, [m(bank="fp")], None, Policy(allow_banks=frozenset({"fp"})))
    assert v is Verdict.KEEP and reasons == ["pdq match in allow bank fp ignored"]
    allowed = next(c for c in CASES if c.key == "allowed")
    a = assess(allowed.probes, BANKS, POLICY)
    assert a.matches == () and any("allow bank fp" in n for n in a.notes)


def test_unscreened_frames_and_scores_turn_keep_into_review_only() -> None:
    v, reasons = judge(Status.OK, [], {UNSCREENED_FRAMES: 3.0}, Policy())
    assert v is Verdict.REVIEW and reasons == ["more frames than screened (3 not hashed)"]
    assert judge(Status.OK, [m()], {UNSCREENED_FRAMES: 3.0}, Policy())[0] is Verdict.REMOVE
    p = Policy(score_review={"nsfw": 0.9})
    v, reasons = judge(Status.OK, [], {"nsfw": 0.95}, p)
    assert v is Verdict.REVIEW and reasons == ["score nsfw 0.95 at or above 0.9"]
    assert judge(Status.OK, [], {"nsfw": 0.5}, p) == (Verdict.KEEP, ["no match in any bank"])


def test_failed_items_get_no_verdict_but_their_digests_are_matched() -> None:
    a = assess([Probe("md5", "md5", M1)], BANKS, POLICY, status=Status.FAILED)
    assert a.verdict is None and [x.entry_id for x in a.matches] == ["m1"]


def test_assessment_is_a_value() -> None:
    a = Assessment((), Verdict.KEEP, ("no match in any bank",))
    with pytest.raises(AttributeError):
        a.verdict = Verdict.REMOVE  # type: ignore[misc]
