"""Arrays laid out for random access: data that starts on a cache-line boundary.

A Hamming index reads one 32-byte PDQ row per candidate, thousands per query, each a cache miss at 10 million
entries. NumPy's large buffers come from ``malloc`` 16 bytes past a page boundary, so half of such rows straddle two
cache lines: two misses where one would do, and a prefetch of the row's first word brings only half of it. Likewise
the 16 slots a table line holds are the values that differ only in their lowest four bits, which a query reads
together, only when the table starts on a line. ``bench/match_throughput.py`` prints what alignment is worth.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

CACHE_LINE = 64


def aligned_empty(shape: int | tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
    """``np.empty`` whose data starts on a cache-line boundary (NumPy still asks for huge pages on large ones); an
    empty array has no data to place."""
    dt = np.dtype(dtype)
    count = int(np.prod(shape))
    if count == 0:
        return np.empty(shape, dtype=dt)
    buf = np.empty(count * dt.itemsize + CACHE_LINE, dtype=np.uint8)
    skip = -buf.ctypes.data % CACHE_LINE
    return buf[skip : skip + count * dt.itemsize].view(dt).reshape(shape)


def cache_aligned(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array whose data starts on a cache-line boundary: ``a`` itself when it already is
    one (a memory-mapped ``.npy`` file is: its header is padded to 64 bytes), otherwise an aligned copy."""
    a = np.ascontiguousarray(a)
    if a.ctypes.data % CACHE_LINE == 0 or a.nbytes == 0:
        return a
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out
