"""Dataset scores by name: a column in any case or a JSON sidecar key; a value that is not a number is noted and
left out, never read as 0 (a row whose safety score cannot be read is not a row scored safe)."""

from __future__ import annotations

from cleanset.screening.scores import read_scores


def test_columns_any_case_and_json_sidecar() -> None:
    scores, notes = read_scores({"PUNSAFE": 0.7, "json": {"pwatermark": "0.25"}}, ["punsafe", "pwatermark"])
    assert scores == {"punsafe": 0.7, "pwatermark": 0.25} and notes == []


def test_unusable_values_are_noted_not_zero() -> None:
    meta = {"punsafe": "high", "pwatermark": float("nan"), "similarity": None}
    scores, notes = read_scores(meta, ["punsafe", "pwatermark", "similarity", "absent"])
    assert scores == {}
    assert notes == ["score punsafe ignored: not a number", "score pwatermark ignored: not a finite number"]
