"""The bank content digest: sha256 over the canonical (signal, value, id) content of a version.

It lets a run manifest or an attestation say exactly which list was checked, and two parties compare lists, without
revealing any value: the digest covers the whole list at once. Labels, notes and thresholds are not content.
The byte layout is fixed (version-tagged) so the digest is stable across cleanset releases.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

TAG = b"cleanset-bank-content-v1\n"


def _update_ids(h: hashlib._Hash, ids: pa.Array | pa.ChunkedArray) -> None:
    """Each id as (little-endian u64 length) ... then all id bytes; chunking does not change the result."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    for arr in chunks:
        if len(arr):
            h.update(np.diff(_offsets(arr)).astype("<u8").tobytes())
    for arr in chunks:
        if len(arr):
            off = _offsets(arr)
            h.update(memoryview(arr.buffers()[2])[int(off[0]) : int(off[-1])])


def _offsets(arr: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(arr.type):
        raise TypeError("ids must be plain strings")
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    dtype = np.int64 if wide else np.int32
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=arr.offset + len(arr) + 1)[arr.offset :]


def content_digest(signals: Mapping[str, tuple[np.ndarray, pa.Array]]) -> str:
    """``signals`` maps signal -> (values in canonical order, ids in the same order)."""
    h = hashlib.sha256(TAG)
    for sig in sorted(signals):
        values, ids = signals[sig]
        h.update(f"{sig}\n{values.shape[0]}\n{values.shape[1] if values.ndim == 2 else 0}\n".encode())
        h.update(np.ascontiguousarray(values, dtype=np.uint8).data.cast("B"))
        _update_ids(h, ids)
    return "sha256:" + h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def digest_of(signals: Mapping[str, tuple[np.ndarray, Sequence[str]]]) -> str:
    """The content digest of entries in any order (sorted canonically first): for banks built in memory, so a
    demo or stand-in bank is named by the same digest it would have once imported."""
    from cleanset.banks.columns import canonical_order

    canon: dict[str, tuple[np.ndarray, pa.Array]] = {}
    for sig, (values, ids) in signals.items():
        arr = pa.array(list(ids), type=pa.string())
        order = canonical_order(np.asarray(values, dtype=np.uint8), arr, np.arange(len(arr)))
        canon[sig] = (np.asarray(values, dtype=np.uint8)[order], arr.take(pa.array(order)))
    return content_digest(canon)
