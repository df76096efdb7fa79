"""Exact lookup for cryptographic and URL hashes."""

from __future__ import annotations

import numpy as np
import pytest

from cleanset.matching.exact import ExactIndex


def test_every_listed_copy_is_returned() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 256, size=(1000, 16), dtype=np.uint8)
    values[500] = values[3]
    values[900] = values[3]
    index = ExactIndex.build(values)
    pr, er, dr = index.query(values[[3, 7]], 0)
    assert sorted(er[pr == 0].tolist()) == [3, 500, 900]
    assert er[pr == 1].tolist() == [7]
    assert (dr == 0).all()


def test_batch_matches_a_dictionary_lookup() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 4, size=(3000, 20), dtype=np.uint8)  # few symbols: many shared prefixes
    values[::7] = values[0]
    probes = np.concatenate([values[rng.integers(0, 3000, 400)], rng.integers(0, 4, size=(400, 20), dtype=np.uint8)])
    by_value: dict[bytes, list[int]] = {}
    for i, row in enumerate(values):
        by_value.setdefault(row.tobytes(), []).append(i)
    want = [(p, e) for p, row in enumerate(probes) for e in by_value.get(row.tobytes(), [])]
    pr, er, _ = ExactIndex.build(values).query(probes, 0)
    assert sorted(zip(pr.tolist(), er.tolist(), strict=True)) == sorted(want)
    assert len(want) > 400


def test_probe_width_must_match() -> None:
    index = ExactIndex.build(np.zeros((2, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match="16-byte"):
        index.query(np.zeros((1, 20), dtype=np.uint8), 0)
