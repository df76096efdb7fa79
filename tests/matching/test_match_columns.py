"""The matcher's column form (``match_columns``, ``gated_mask``), which rematch uses on stored probes, applies the
same quality gate and allow-list suppression as ``match_many`` on items: the rules live once, in the matcher."""

from __future__ import annotations

import random

import numpy as np

from cleanset.banks.base import MemoryBank
from cleanset.matching.matcher import BankMatcher, gated_mask, keep_better, match_order
from cleanset.records import Match, Probe


def flip(rng: random.Random, value: str, d: int) -> str:
    x = int(value, 16)
    for b in rng.sample(range(256), d):
        x ^= 1 << b
    return f"{x:064x}"


def test_gated_mask_is_the_quality_rule() -> None:
    gated_signal = np.array([True, True, True, False, True])
    quality = np.array([49.0, 50.0, np.nan, 10.0, 0.0])
    assert gated_mask(gated_signal, quality, 50).tolist() == [True, False, False, False, True]
    assert gated_mask(gated_signal, quality, 0).tolist() == [False] * 5


def test_columns_agree_with_items() -> None:
    rng = random.Random(7)
    listed = [f"{rng.getrandbits(256):064x}" for _ in range(40)]
    block = MemoryBank.from_hex("block", [("pdq", v, f"b{i}") for i, v in enumerate(listed)])
    allow = MemoryBank.from_hex("fp", [("pdq", listed[3], "a3"), ("pdq", listed[8], "a8")], allow=True)
    matcher = BankMatcher.build([block, allow], quality_gate=50)
    items: list[list[Probe]] = []
    for i in range(60):
        base = listed[i % 40]
        probes = [
            Probe("pdq/original", "pdq", flip(rng, base, rng.choice([0, 3, 20, 40])), rng.choice([None, 20, 90])),
            Probe("pdq/rotate90", "pdq", f"{rng.getrandbits(256):064x}", 90),
        ]
        items.append(probes)
    by_item = matcher.match_many(items)
    assert any(m for m, _ in by_item) and any(any("allow bank" in n for n in notes) for _, notes in by_item)
    assert any(any("quality gate" in n for n in notes) for _, notes in by_item)

    flat = [(i, p) for i, probes in enumerate(items) for p in probes]
    values = np.array([bytes.fromhex(p.value) for _, p in flat])
    values = np.frombuffer(b"".join(values.tolist()), dtype=np.uint8).reshape(len(flat), 32)
    gated = gated_mask(
        np.ones(len(flat), dtype=bool), np.array([np.nan if p.quality is None else p.quality for _, p in flat]), 50
    )
    for distinct in (True, False):
        hits = matcher.match_columns("pdq", values, gated, distinct=distinct)
        best: list[dict[tuple[str, str], Match]] = [{} for _ in items]
        for row, b, entry, d in hits.rows():
            item, p = flat[row]
            keep_better(best[item], Match(b.bank, b.version, b.entry_ids[entry], b.signal, d, p.name))
        assert [sorted(x.values(), key=match_order) for x in best] == [m for m, _ in by_item]
        suppressed = {(flat[r][0], flat[r][1].name) for r in hits.suppressed}
        noted = {(i, n.split()[1]) for i, (_, notes) in enumerate(by_item) for n in notes if "allow bank" in n}
        assert suppressed == noted
