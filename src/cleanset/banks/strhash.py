"""64-bit hashes of an Arrow string column, for finding repeated ids among millions without sorting strings.

Equal strings have equal hashes, so distinct hashes prove distinct ids; the rare equal hash is then checked on the
strings themselves.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(cache=True, nogil=True)
def _fnv1a(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    for i in range(offsets.shape[0] - 1):
        h = _FNV_OFFSET
        for k in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[k])) * _FNV_PRIME
        out[i] = h


def hash_strings(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    out = np.empty(len(col), dtype=np.uint64)
    pos = 0
    for arr in chunks:
        if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            arr = arr.cast(pa.string())
        m = len(arr)
        if m:
            bufs = arr.buffers()
            dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
            offsets = np.frombuffer(bufs[1], dtype=dtype, count=arr.offset + m + 1)[arr.offset :]
            data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
            _fnv1a(data, offsets, out[pos : pos + m])
        pos += m
    return out


def first_repeat(ids: pa.Array | pa.ChunkedArray) -> tuple[int, int] | None:
    """Positions of two equal strings (the pair whose first member comes first in sort order), or None."""
    if len(ids) < 2:
        return None
    h = hash_strings(ids)
    hs = np.sort(h)
    if not (hs[1:] == hs[:-1]).any():
        return None
    order = np.argsort(h)
    hs = h[order]
    cand = np.flatnonzero(hs[1:] == hs[:-1])
    if not len(cand):
        return None
    pos = np.unique(np.concatenate([order[cand], order[cand + 1]]))
    sub = ids.take(pa.array(pos))
    by_id = pc.sort_indices(sub).to_numpy()
    sorted_sub = sub.take(pa.array(by_id))
    same = pc.equal(sorted_sub.slice(1), sorted_sub.slice(0, len(sub) - 1)).to_numpy(zero_copy_only=False)
    if not same.any():
        return None
    j = int(np.flatnonzero(same)[0])
    a, b = int(pos[by_id[j]]), int(pos[by_id[j + 1]])
    return (a, b) if a < b else (b, a)
