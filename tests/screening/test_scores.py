"""Dataset scores by name: a column in any case or a JSON sidecar key; a value present but not a finite number is
noted and recorded as NaN, never read as 0, so the policy sends the row to review (a row whose safety score cannot
be read is not a row scored safe)."""

from __future__ import annotations

import math

from cleanset.assess import Policy, judgement
from cleanset.records import Status
from cleanset.screening.scores import read_scores
from cleanset.screening.stage import combine_scores


def test_columns_any_case_and_json_sidecar() -> None:
    scores, notes = read_scores({"PUNSAFE": 0.7, "json": {"pwatermark": "0.25"}}, ["punsafe", "pwatermark"])
    assert scores == {"punsafe": 0.7, "pwatermark": 0.25} and notes == []


def test_unusable_values_are_noted_not_zero() -> None:
    meta = {"punsafe": "high", "pwatermark": float("nan"), "similarity": None}
    scores, notes = read_scores(meta, ["punsafe", "pwatermark", "similarity", "absent"])
    assert set(scores) == {"punsafe", "pwatermark"} and all(math.isnan(v) for v in scores.values())
    assert notes == ["score punsafe is not a number", "score pwatermark is not a finite number"]
    assert judgement(Status.OK, [], scores, Policy()).verdict == "review"


def test_a_non_finite_frame_is_never_hidden_by_a_finite_one() -> None:
    """The highest frame or part counts, but NaN in any of them, in any order, makes the item's score NaN."""
    for frames in ([math.nan, 0.1], [0.1, math.nan], [0.2, math.inf, 0.1]):
        best = None
        for v in frames:
            best = combine_scores(best, v)
        assert best is not None and not math.isfinite(best), frames
    best = None
    for v in (0.2, 0.7, 0.1):
        best = combine_scores(best, v)
    assert best == 0.7
