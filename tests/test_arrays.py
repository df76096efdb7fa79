"""Arrays for random access start on a cache line, hold the same values, and are not copied when they already do."""

from __future__ import annotations

import numpy as np

from cleanset.arrays import CACHE_LINE, aligned_empty, cache_aligned
from cleanset.banks.base import MemoryBank
from cleanset.matching.hamming import HammingIndex


def off_a_line(n: int, nbytes: int) -> np.ndarray:
    """(n, nbytes) uint8 rows starting 16 bytes past a cache line, as NumPy's large buffers usually do."""
    base = aligned_empty(n * nbytes + 16, np.uint8)[16:].reshape(n, nbytes)
    assert base.ctypes.data % CACHE_LINE == 16
    return base


def test_aligned_empty_starts_on_a_line() -> None:
    for shape, dtype in (((1000, 4), np.uint64), (12345, np.uint32), ((3, 5, 7), np.uint8), ((0, 4), np.uint64)):
        a = aligned_empty(shape, dtype)
        assert a.ctypes.data % CACHE_LINE == 0 or a.size == 0  # an empty array has no data to place
        assert a.shape == (shape if isinstance(shape, tuple) else (shape,)) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable


def test_cache_aligned_copies_only_what_is_off_a_line() -> None:
    rng = np.random.default_rng(0)
    off = off_a_line(500, 32)
    off[...] = rng.integers(0, 256, off.shape, dtype=np.uint8)
    fixed = cache_aligned(off)
    assert fixed.ctypes.data % CACHE_LINE == 0 and not np.shares_memory(fixed, off)
    np.testing.assert_array_equal(fixed, off)
    assert cache_aligned(fixed) is fixed  # already on a line: no copy
    assert cache_aligned(off[:0]).shape == (0, 32)  # nothing to read: returned as it is
    strided = np.arange(200, dtype=np.uint8).reshape(20, 10)[:, ::2]  # not contiguous: made contiguous and aligned
    out = cache_aligned(strided)
    assert out.flags.c_contiguous and out.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(out, strided)


def test_hamming_index_rows_and_slots_start_on_a_line() -> None:
    rng = np.random.default_rng(1)
    values = off_a_line(3000, 32)
    values[...] = rng.integers(0, 256, values.shape, dtype=np.uint8)
    index = HammingIndex.build(values, widths=(16,) * 16)
    assert index.words.ctypes.data % CACHE_LINE == 0 and index.slots.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(index.words.view(np.uint8).reshape(values.shape), values)
    got = index.query(values[:50], 31, method="tables")
    assert set(zip(got[0].tolist(), got[1].tolist(), strict=True)) >= {(i, i) for i in range(50)}


def test_memory_bank_rows_are_aligned_once_and_indexed_without_a_copy() -> None:
    rng = np.random.default_rng(2)
    values = off_a_line(2000, 32)
    values[...] = rng.integers(0, 256, values.shape, dtype=np.uint8)
    bank = MemoryBank("b", 1, {"pdq": (values, [f"e{i}" for i in range(len(values))])})
    held = bank.values("pdq")
    assert held.ctypes.data % CACHE_LINE == 0
    np.testing.assert_array_equal(held, values)
    index = HammingIndex.build(held, widths=(16,) * 16)
    assert np.shares_memory(index.words, held)  # the index reads the bank's own rows: a large bank is held once
