"""The Hamming index returns exactly what brute force returns, at every distance around random and clustered
entries, for any threshold, and whichever chunking the layout chooses."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from match_planting import families, flip, plant, plant_at_boundary

from cleanset.matching import kernels
from cleanset.matching.brute import BruteForceIndex
from cleanset.matching.hamming import HammingIndex, _ball, allocate, choose_widths


def assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def bank(rng: np.random.Generator, nbytes: int, n_random: int, n_families: int) -> np.ndarray:
    """Random entries first, then families of 8 near-duplicates (members up to bits/12 from their centre)."""
    rows = [rng.integers(0, 256, size=(n_random, nbytes), dtype=np.uint8)]
    rows.append(families(rng, n_families, 8, nbytes, max_distance=nbytes * 8 // 12))
    return np.concatenate(rows)


def probes_around(rng: np.random.Generator, values: np.ndarray, threshold: int, k: int) -> np.ndarray:
    """k entries, half random ones and half family members (``bank`` puts families last), x every distance
    0..threshold+5 with random flips, half of them again with flips spread evenly over the bits, plus unrelated
    random probes."""
    n_family = min(len(values) // 4, 8 * 50)
    random_part = rng.choice(len(values) - n_family, size=k - k // 2, replace=False)
    family_part = len(values) - n_family + rng.choice(n_family, size=k // 2, replace=False)
    bases = values[np.concatenate([random_part, family_part])]
    hi = min(threshold + 5, values.shape[1] * 8)
    a, _ = plant(rng, bases, range(hi + 1))
    b, _ = plant(rng, bases[: k // 2], range(hi + 1), spread_chunks=8)
    c = rng.integers(0, 256, size=(20, values.shape[1]), dtype=np.uint8)
    return np.concatenate([a, b, c])


@pytest.mark.parametrize(
    ("nbytes", "threshold", "widths"),
    [
        (32, 31, (16,) * 16),  # faiss' multi-hash layout
        (32, 31, (22, 22, 22, 22, 21, 21, 21, 21, 21, 21, 21, 21)),  # chunks straddle 64-bit words
        (32, 31, (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23)),  # the 10M layout: radius 2 in most chunks
        (32, 10, (16,) * 16),
        (32, 0, (21,) * 12),  # one exact chunk lookup suffices
        (32, 45, (13,) * 19),
        (32, 20, (20, 9, 20)),  # partial coverage of the bits is still exact (pigeonhole over a subset)
        (8, 8, (16, 16, 16, 16)),  # phash
        (8, 8, (11, 11, 11, 11, 10, 10)),
        (8, 3, (21, 21, 22)),
    ],
)
def test_index_equals_brute_force(nbytes: int, threshold: int, widths: tuple[int, ...]) -> None:
    rng = np.random.default_rng(threshold * 1000 + len(widths))
    values = bank(rng, nbytes, 3000, 150)
    index = HammingIndex.build(values, widths=widths)
    assert index.widths == widths
    radii = index.radii(threshold)
    assert radii is not None
    edge = plant_at_boundary(rng, values[:6], widths, radii, range(max(0, threshold - 3), threshold + 3))
    probes = np.concatenate([probes_around(rng, values, threshold, 12), edge])
    got = index.query(probes, threshold, method="tables")
    assert index.last_scanned == 0  # the tables answered, not the fallback scan
    want = BruteForceIndex.build(values).query(probes, threshold)
    assert_same(got, want)
    assert_same(index.query(probes, threshold), want)  # and the cost model's choice agrees
    # every probe planted at distance <= threshold finds at least its base entry
    assert len(np.unique(got[0])) >= 12 * (min(threshold, 8 * nbytes) + 1)
    assert (got[2] <= threshold).all()


def test_other_thresholds_on_one_index_stay_exact() -> None:
    rng = np.random.default_rng(7)
    values = bank(rng, 32, 2000, 100)
    index = HammingIndex.build(values, widths=(16,) * 16)
    brute = BruteForceIndex.build(values)
    for threshold in (0, 1, 15, 16, 17, 31, 32, 40, 90):
        radii = index.radii(threshold)
        assert radii is not None
        edge = plant_at_boundary(rng, values[:4], index.widths, radii, range(threshold + 1))
        probes = np.concatenate([probes_around(rng, values, 40, 3), edge])
        assert_same(index.query(probes, threshold, method="tables"), brute.query(probes, threshold))


def test_auto_layout_uses_tables_and_is_exact() -> None:
    rng = np.random.default_rng(11)
    values = bank(rng, 32, 150_000, 2000)
    index = HammingIndex.build(values, threshold_hint=31)
    assert index.widths, "a bank of this size should get multi-index tables"
    assert index.nbytes <= 4 * values.nbytes
    probes = probes_around(rng, values, 31, 10)
    got = index.query(probes, 31)
    assert index.last_scanned == 0
    assert_same(got, BruteForceIndex.build(values).query(probes, 31))


def test_phash_auto_layout_is_exact() -> None:
    rng = np.random.default_rng(12)
    values = bank(rng, 8, 100_000, 1000)
    index = HammingIndex.build(values, threshold_hint=8)
    assert index.widths
    probes = probes_around(rng, values, 8, 20)
    assert_same(index.query(probes, 8), BruteForceIndex.build(values).query(probes, 8))


def test_wide_threshold_falls_back_to_scan_exactly() -> None:
    rng = np.random.default_rng(13)
    values = bank(rng, 32, 2000, 50)
    index = HammingIndex.build(values, widths=(16,) * 16)
    probes = probes_around(rng, values, 100, 2)
    got = index.query(probes, 100)
    assert index.last_scanned == len(probes)
    assert_same(got, BruteForceIndex.build(values).query(probes, 100))


def test_batch_equals_single_and_threads_agree() -> None:
    rng = np.random.default_rng(14)
    values = bank(rng, 32, 4000, 100)
    index = HammingIndex.build(values, widths=(16,) * 16)
    probes = probes_around(rng, values, 31, 30)
    batch = index.query(probes, 31, threads=1, method="tables")
    assert_same(index.query(probes, 31, threads=4, method="tables"), batch)
    pr, er, dr = batch
    for i in range(0, len(probes), 37):
        one = index.query(probes[i : i + 1], 31, method="tables")
        sel = pr == i
        np.testing.assert_array_equal(one[1], er[sel])
        np.testing.assert_array_equal(one[2], dr[sel])


def test_radii_cover_the_threshold() -> None:
    for widths in ((16,) * 16, (24,) * 3 + (23,) * 8, (8,) * 8):
        for threshold in range(0, 60):
            plan = allocate(widths, threshold, 10_000_000)
            if plan is None:
                continue
            assert sum(r + 1 for r in plan[0]) == threshold + 1


def test_layout_for_ten_million_pdq_fits_memory_budget() -> None:
    widths = choose_widths(256, 10_000_000, 31, 4)
    assert widths and sum(widths) == 256
    raw = 10_000_000 * 32
    assert raw + 4 * len(widths) * 10_000_000 + 4 * sum(2**w + 1 for w in widths) <= 4 * raw


def read_hashes(path: Path) -> np.ndarray:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    return np.array([np.frombuffer(bytes.fromhex(h), dtype=np.uint8) for h in lines])


def test_reference_needles_in_haystack(pdq_reference: Path) -> None:
    """Meta's regression data: every needle within 31 of a haystack hash is found, exactly as brute force."""
    data = pdq_reference / "data" / "reg-test-input"
    haystack = read_hashes(data / "haystack.txt")
    needles = read_hashes(data / "needles.txt")
    brute = BruteForceIndex.build(haystack).query(needles, 31)
    assert len(brute[0]) > 0
    for widths in ((16,) * 16, (6,) * 42):
        index = HammingIndex.build(haystack, widths=widths)
        assert_same(index.query(needles, 31, method="tables"), brute)


def test_probe_in_a_crowded_region_is_scanned_and_still_exact() -> None:
    """A value listed thousands of times (a degenerate hash, e.g. of blank images) makes every bucket around it
    huge; a probe there is answered by a scan, the others by the tables, and all of them exactly."""
    rng = np.random.default_rng(15)
    crowd = rng.integers(0, 256, size=(1, 32), dtype=np.uint8)
    values = np.concatenate([rng.integers(0, 256, size=(150_000, 32), dtype=np.uint8), np.repeat(crowd, 20_000, 0)])
    index = HammingIndex.build(values, threshold_hint=31)
    probes = np.concatenate([plant(rng, crowd, range(0, 40, 3))[0], probes_around(rng, values[:150_000], 31, 4)])
    got = index.query(probes, 31)
    assert 0 < index.last_scanned < len(probes)
    assert_same(got, BruteForceIndex.build(values).query(probes, 31))


def chunk_flips(rng: np.random.Generator, index: HammingIndex, flips: dict[int, int]) -> np.ndarray:
    """Bit positions: ``flips[c]`` distinct bits inside chunk ``c`` of ``index``."""
    out = [int(index.starts[c]) + rng.choice(index.widths[c], size=k, replace=False) for c, k in flips.items() if k > 0]
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def test_candidates_taken_from_the_probe_before_are_complete() -> None:
    """A probe whose chunk value equals the previous probe's takes that chunk's candidates from the previous
    probe's list instead of looking them up again. Here the only way probe B can find entry E is through chunk 1,
    which B shares with probe A before it (every other chunk of B is one bit past its radius from E): B must still
    find E, as brute force does, and alone or after A alike."""
    rng = np.random.default_rng(16)
    values = bank(rng, 32, 3000, 100)
    index = HammingIndex.build(values, widths=(24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23))
    radii = index.radii(31)
    assert radii is not None and radii[1] >= 0
    brute = BruteForceIndex.build(values)
    probes = []
    entries = rng.choice(len(values), size=20, replace=False)
    for e in entries:
        b = flip(values[e], chunk_flips(rng, index, {c: r + 1 for c, r in enumerate(radii) if c != 1}))
        a = flip(b, chunk_flips(rng, index, {c: 3 for c in range(len(radii)) if c != 1}))  # far from E, chunk 1 kept
        probes += [a, b]
    probes_arr = np.array(probes, dtype=np.uint8)
    got = index.query(probes_arr, 31, method="tables", threads=1)
    assert index.last_shared >= len(entries)  # every B took at least chunk 1 from its A
    assert_same(got, brute.query(probes_arr, 31))
    found = set(zip(got[0].tolist(), got[1].tolist(), strict=True))
    assert all((2 * i + 1, int(e)) in found for i, e in enumerate(entries))
    alone = index.query(probes_arr[1::2], 31, method="tables")  # no probe before any B shares its chunks
    assert index.last_shared == 0
    assert {(2 * p + 1, e) for p, e in zip(alone[0].tolist(), alone[1].tolist(), strict=True)} == {
        (p, e) for p, e in found if p % 2 == 1
    }


def test_a_scanned_probe_lends_no_candidates() -> None:
    """A probe answered by the scan (a crowded chunk value) has no complete candidate list, so the probe after it
    looks every chunk up itself, even the ones they share. Probe B finds E only through chunk 1, which it shares
    with the scanned probe A before it."""
    rng = np.random.default_rng(17)
    randoms = rng.integers(0, 256, size=(150_000, 32), dtype=np.uint8)
    index0 = HammingIndex.build(randoms, threshold_hint=31)
    assert index0.widths
    crowd_value = rng.integers(0, 256, size=32, dtype=np.uint8)
    crowd = rng.integers(0, 256, size=(20_000, 32), dtype=np.uint8)
    lo, w = int(index0.starts[0]), index0.widths[0]
    bits = np.unpackbits(crowd, axis=1, bitorder="little")
    bits[:, lo : lo + w] = np.unpackbits(crowd_value, bitorder="little")[lo : lo + w]
    crowd = np.packbits(bits, axis=1, bitorder="little")  # 20,000 entries sharing chunk 0's value
    values = np.concatenate([randoms, crowd])
    index = HammingIndex.build(values, widths=index0.widths)
    radii = index.radii(31)
    assert radii is not None and radii[1] >= 0
    probes = []
    for e in rng.choice(len(randoms), size=6, replace=False):
        b = flip(values[e], chunk_flips(rng, index, {c: r + 1 for c, r in enumerate(radii) if c != 1}))
        a_bits = np.unpackbits(b, bitorder="little")
        a_bits[lo : lo + w] = np.unpackbits(crowd_value, bitorder="little")[lo : lo + w]
        probes += [np.packbits(a_bits, bitorder="little"), b]  # A: B with the crowded chunk-0 value
    probes_arr = np.array(probes, dtype=np.uint8)
    got = index.query(probes_arr, 31)
    assert index.last_scanned == len(probes) // 2  # every A, and no B
    assert_same(got, BruteForceIndex.build(values).query(probes_arr, 31))


def test_flip_masks_list_every_value_within_each_radius_once() -> None:
    widths = np.array([5, 7, 4, 6, 3], dtype=np.int64)
    radii = np.array([2, 0, 4, -1, 9], dtype=np.int64)  # 4 = the whole chunk; -1 = not searched; 9 > its width
    masks, start = kernels.flip_masks(widths, radii)
    assert start.tolist() == [0, *np.cumsum([_ball(w, min(r, w)) for w, r in zip(widths, radii, strict=True)])]
    for c, (w, r) in enumerate(zip(widths.tolist(), radii.tolist(), strict=True)):
        got = masks[start[c] : start[c + 1]].tolist()
        want = [sum(1 << b for b in bits) for k in range(min(r, w) + 1) for bits in itertools.combinations(range(w), k)]
        assert got == want  # fewest bits first, then in order: each value of the ball once
