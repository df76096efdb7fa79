"""Scores a dataset already carries (LAION's ``punsafe`` and ``pwatermark``, any named numeric column), read by name.

Why take them: LAION shipped a safety score with every row, and the public audit of LAION-5B found unknown material
among the rows it scored unsafe. A score column is a signal like a classifier's, at no cost, so the scan records it
under its own name and the policy decides by name (``punsafe`` >= its threshold -> review, by default).

A missing value (no column, or null) is no score. A value present but not a finite number is never taken as 0: it is
recorded as NaN and noted, and the policy's non-finite rule sends the item to review, because a row whose safety
score cannot be read is not a row scored safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["DEFAULT_SCORE_COLUMNS", "read_scores"]

# Read when present and no columns are named: LAION's two detector outputs.
DEFAULT_SCORE_COLUMNS: tuple[str, ...] = ("punsafe", "pwatermark")


def _lookup(meta: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """The value of column ``name`` in an item's metadata: the column itself (any case), else a key of its JSON
    sidecar (webdataset's ``KEY.json``)."""
    if name in meta:
        return True, meta[name]
    low = name.lower()
    for k, v in meta.items():
        if isinstance(k, str) and k.lower() == low:
            return True, v
    side = meta.get("json")
    if isinstance(side, Mapping):
        for k, v in side.items():
            if isinstance(k, str) and k.lower() == low:
                return True, v
    return False, None


def read_scores(meta: Mapping[str, Any], columns: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """The named scores of one item and notes on the ones present but unusable."""
    scores: dict[str, float] = {}
    notes: list[str] = []
    for name in columns:
        found, raw = _lookup(meta, name)
        if not found or raw is None:
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            notes.append(f"score {name} is not a number")
            scores[name] = math.nan
            continue
        if math.isnan(value) or math.isinf(value):
            notes.append(f"score {name} is not a finite number")
            scores[name] = math.nan
            continue
        scores[name] = value
    return scores, notes
