"""Indexes round-trip through plain .npy files (no pickle), including the empty and single-entry banks that
python-threatexchange's faiss wrapper loses, and a damaged or foreign file is refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cleanset.errors import InputFormatError
from cleanset.matching.base import INDEXES, Index, array_digest
from cleanset.matching.brute import BruteForceIndex
from cleanset.matching.exact import ExactIndex
from cleanset.matching.hamming import HammingIndex

KINDS = ["brute", "exact", "hamming"]


def build(kind: str, values: np.ndarray) -> Index:
    if kind == "hamming":
        return HammingIndex.build(values, widths=(16,) * 16 if values.shape[1] == 32 else (16,) * 4)
    return INDEXES.get(kind).build(values)


def same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, 1, 2, 500])
def test_round_trip(kind: str, n: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(n)
    values = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    index = build(kind, values)
    index.save(tmp_path / "ix")
    loaded = INDEXES.get(kind).load(tmp_path / "ix")
    assert len(loaded) == n
    probes = np.concatenate([values[:3], rng.integers(0, 256, size=(3, 32), dtype=np.uint8)])
    before = index.query(probes, 31)
    after = loaded.query(probes, 31)
    assert same(before, after)
    if isinstance(loaded, HammingIndex):  # the loaded tables themselves, not the scan small banks get
        assert loaded.widths == (16,) * 16
        assert same(loaded.query(probes, 31, method="tables"), before)
    # every stored entry is still found, including the only one of a single-entry bank
    assert len(after[0]) >= min(n, 3)
    if n:
        _, er, dr = loaded.query(values[-1:], 0)
        assert (n - 1) in er.tolist() and dr.min() == 0


def test_files_are_plain_npy_without_objects(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 256, size=(50, 32), dtype=np.uint8)
    build("hamming", values).save(tmp_path)
    for f in tmp_path.glob("*.npy"):
        arr = np.load(f, allow_pickle=False)
        assert arr.dtype != object
    assert json.loads((tmp_path / "index.json").read_text())["kind"] == "hamming"


def test_hamming_load_is_memory_mapped(tmp_path: Path) -> None:
    values = np.random.default_rng(2).integers(0, 256, size=(300, 32), dtype=np.uint8)
    build("hamming", values).save(tmp_path)
    loaded = HammingIndex.load(tmp_path)
    assert isinstance(loaded.slots.base, np.memmap) or isinstance(loaded.slots, np.memmap)


def test_wrong_kind_is_refused(tmp_path: Path) -> None:
    values = np.zeros((3, 16), dtype=np.uint8)
    ExactIndex.build(values).save(tmp_path)
    with pytest.raises(InputFormatError, match="not a format-2 'hamming' index"):
        HammingIndex.load(tmp_path)


def test_pickled_array_is_refused(tmp_path: Path) -> None:
    values = np.random.default_rng(3).integers(0, 256, size=(10, 32), dtype=np.uint8)
    BruteForceIndex.build(values).save(tmp_path)
    np.save(tmp_path / "values.npy", np.array([object()] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(InputFormatError, match=r"values\.npy"):
        BruteForceIndex.load(tmp_path)


def test_shape_mismatch_is_refused(tmp_path: Path) -> None:
    values = np.random.default_rng(4).integers(0, 256, size=(10, 32), dtype=np.uint8)
    build("hamming", values).save(tmp_path)
    np.save(tmp_path / "words.npy", np.zeros((9, 4), dtype=np.uint64))  # shape is checked before the digest
    with pytest.raises(InputFormatError, match=r"expected uint64 \(10, 4\)"):
        HammingIndex.load(tmp_path)


def save_damaged(tmp_path: Path, name: str, edit: object, *, fix_digest: bool) -> None:
    """Save an index, change one of its arrays, and (optionally) record the damaged array's digest as if the
    header had been rewritten too, so the structural checks are what stands between the file and the kernels."""
    values = np.random.default_rng(5).integers(0, 256, size=(200, 32), dtype=np.uint8)
    build("hamming", values).save(tmp_path)
    arr = np.load(tmp_path / f"{name}.npy")
    edit(arr)  # type: ignore[operator]
    np.save(tmp_path / f"{name}.npy", arr)
    if fix_digest:
        meta = json.loads((tmp_path / "index.json").read_text())
        meta["sha256"][name] = array_digest(arr)
        (tmp_path / "index.json").write_text(json.dumps(meta))


def _held(a: np.ndarray, chunk: int = 2) -> np.ndarray:
    """Positions of the slots of chunk ``chunk`` (16-bit chunks) holding one entry's id."""
    part = a[chunk << 16 : (chunk + 1) << 16]
    return (chunk << 16) + np.flatnonzero(part < 0x80000000)


def test_changed_array_is_refused_by_digest(tmp_path: Path) -> None:
    save_damaged(tmp_path, "slots", lambda a: a.__setitem__(_held(a)[0], a[_held(a)[1]]), fix_digest=False)
    with pytest.raises(InputFormatError, match=r"slots\.npy: content does not match"):
        HammingIndex.load(tmp_path)


def test_out_of_range_id_is_refused_even_with_matching_digest(tmp_path: Path) -> None:
    save_damaged(tmp_path, "slots", lambda a: a.__setitem__(_held(a)[3], 10_000), fix_digest=True)
    with pytest.raises(InputFormatError, match="out of range"):
        HammingIndex.load(tmp_path)


def test_a_list_out_of_place_is_refused_even_with_matching_digest(tmp_path: Path) -> None:
    save_damaged(tmp_path, "slots", lambda a: a.__setitem__(_held(a)[3], 0x80000000 | 5), fix_digest=True)
    with pytest.raises(InputFormatError, match="out of place"):
        HammingIndex.load(tmp_path)


def test_deep_check_finds_an_id_in_the_wrong_bucket(tmp_path: Path) -> None:
    def swap(a: np.ndarray) -> None:
        i, j = _held(a)[0], _held(a)[-1]
        a[i], a[j] = a[j], a[i]

    save_damaged(tmp_path, "slots", swap, fix_digest=True)
    HammingIndex.load(tmp_path)  # in range and each id once: the shallow check lets it through
    with pytest.raises(InputFormatError, match="wrong chunk value"):
        HammingIndex.load(tmp_path, deep=True)


def test_deep_check_accepts_a_sound_index(tmp_path: Path) -> None:
    values = np.random.default_rng(8).integers(0, 256, size=(300, 32), dtype=np.uint8)
    build("hamming", values).save(tmp_path)
    assert len(HammingIndex.load(tmp_path, deep=True)) == 300


def test_unsorted_exact_index_is_refused(tmp_path: Path) -> None:
    values = np.random.default_rng(7).integers(0, 256, size=(20, 16), dtype=np.uint8)
    ExactIndex.build(values).save(tmp_path)
    sv = np.load(tmp_path / "sorted_values.npy")
    np.save(tmp_path / "sorted_values.npy", sv[::-1].copy())
    with pytest.raises(InputFormatError, match="not sorted"):
        ExactIndex.load(tmp_path)


def test_bad_header_field_is_named(tmp_path: Path) -> None:
    values = np.zeros((2, 8), dtype=np.uint8)
    BruteForceIndex.build(values).save(tmp_path)
    meta = json.loads((tmp_path / "index.json").read_text())
    meta["n"] = "two"
    (tmp_path / "index.json").write_text(json.dumps(meta))
    with pytest.raises(InputFormatError, match="field 'n'"):
        BruteForceIndex.load(tmp_path)


def test_indexes_are_registered_by_name() -> None:
    from cleanset.errors import UserError
    from cleanset.matching import get_index

    assert [get_index(k) for k in KINDS] == [BruteForceIndex, ExactIndex, HammingIndex]
    with pytest.raises(UserError, match="unknown index 'faiss'"):
        get_index("faiss")
