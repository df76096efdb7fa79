"""Neighbours of hits: items whose embedding is close to a matched item's, found with faiss.

Why: a hash list knows the pictures found before, and the public audit of LAION-5B found more by looking at the
nearest neighbours of its hash hits in CLIP space (same series, same set, re-uploads a hash does not catch). So for
every matched item the ``k`` nearest items by cosine similarity are looked up, and those at or above a threshold get
a ``neighbour`` score (their best similarity to any hit); the policy sends them to review by default.

Embeddings come from what a dataset already has, aligned with the order of its items:

- LAION's ``img_emb/img_emb_<n>.npy`` (one file per metadata file, row ``i`` = row ``i`` of that file), read memory
  mapped, file ``n`` after file ``n - 1`` (``open_npy_parts``: the files stay mapped, never concatenated in memory);
- a Parquet column of float lists (``load_parquet_column``).

Search is exact and streamed: faiss's brute-force k-NN (``faiss.knn``, blocked BLAS inner products) runs the
hits' normalised vectors against one block of items at a time (a float16 file converted a block at a time), keeping
a running top ``k`` per hit, so memory is the hits' vectors and one block, never a float32 copy of every item (which
a faiss flat index would hold: 3 GB for a million CLIP vectors). Hits are left out of the search itself, so they
never take a neighbour's place. The cost is hits x items x dimensions, seconds for a thousand hits over a million
items.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from cleanset.errors import InputFormatError, UserError

__all__ = [
    "NEIGHBOUR_SCORE",
    "Embeddings",
    "Neighbours",
    "find_neighbours",
    "load_embeddings",
    "load_npy_dir",
    "load_parquet_column",
    "open_npy_parts",
]

NEIGHBOUR_SCORE = "neighbour"
DEFAULT_K = 32
DEFAULT_MIN_SIMILARITY = 0.9  # the policy's default threshold too: lower ones are not even recorded
BLOCK_ROWS = 1 << 16
BLOCK_CELLS = 1 << 22  # hits x rows of one block's similarity matrix: 16 MB of float32
# One array, or the mapped parts of one (a folder of .npy files), rows in item order.
Embeddings = np.ndarray | Sequence[np.ndarray]


def _natural(p: Path) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def load_npy_dir(path: Path) -> np.ndarray:
    """``open_npy_parts`` as one array: several files are concatenated into memory (one stays mapped). For tools
    that want one array; the neighbour pass streams the parts instead."""
    parts = open_npy_parts(path)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def open_npy_parts(path: Path) -> list[np.ndarray]:
    """LAION-style ``*.npy`` embeddings (a folder, or one file), each memory mapped, in natural file order
    (``img_emb_2`` before ``img_emb_10``), all with the same number of dimensions."""
    path = Path(path)
    files = sorted(path.glob("*.npy"), key=_natural) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise UserError(f"no .npy embeddings at {path}")
    arrays: list[np.ndarray] = []
    for f in files:
        try:
            a = np.load(f, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputFormatError(str(f), f"not a NumPy array file: {e}") from None
        if a.ndim != 2 or a.dtype.kind != "f":
            raise InputFormatError(str(f), f"expected a 2-D float array (items x dimensions), got {a.shape} {a.dtype}")
        if arrays and a.shape[1] != arrays[0].shape[1]:
            raise InputFormatError(str(f), f"{a.shape[1]} dimensions, the files before have {arrays[0].shape[1]}")
        arrays.append(a)
    return arrays


def load_parquet_column(paths: Sequence[Path], column: str) -> np.ndarray:
    """A list-of-floats column of Parquet files, in file order, as one (items x dimensions) array."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for p in paths:
        try:
            col = pq.read_table(p, columns=[column]).column(0).combine_chunks()
        except (OSError, pa.ArrowException, KeyError) as e:
            raise InputFormatError(str(p), f"cannot read embedding column {column!r}: {e}") from None
        if not (
            pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type)
        ):
            raise InputFormatError(str(p), f"column {column!r} is {col.type}, not a list of floats")
        if col.null_count:
            raise InputFormatError(str(p), f"column {column!r} has {col.null_count} empty rows: every item needs one")
        lengths = pa.compute.list_value_length(col).to_numpy()
        if len(lengths) and (lengths != lengths[0]).any():
            raise InputFormatError(str(p), f"column {column!r} holds vectors of different lengths")
        flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        parts.append(flat.reshape(len(col), -1))
    if not parts:
        raise UserError("no Parquet files to read embeddings from")
    return np.concatenate(parts)


def load_embeddings(spec: str | Path, parquet_paths: Sequence[Path] = ()) -> Embeddings:
    """``spec``: a ``.npy`` file or folder of them (mapped parts), or ``column:NAME`` (a column of the dataset's
    Parquet files, one array)."""
    text = str(spec)
    if text.startswith("column:"):
        return load_parquet_column(list(parquet_paths), text[len("column:") :])
    return open_npy_parts(Path(text))


def rows_of(embeddings: Embeddings) -> int:
    """How many items ``embeddings`` holds (one array or its parts)."""
    if isinstance(embeddings, np.ndarray):
        return int(embeddings.shape[0])
    return sum(int(p.shape[0]) for p in embeddings)


def _normalised(block: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(block, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


@dataclass(frozen=True)
class Neighbours:
    """Items close to a hit: ``rows`` (sorted, no hit among them), their best ``similarity`` to any hit, and that
    ``hit`` row."""

    rows: np.ndarray
    similarity: np.ndarray
    hit: np.ndarray

    def as_dict(self) -> dict[int, tuple[float, int]]:
        return {int(r): (float(s), int(h)) for r, s, h in zip(self.rows, self.similarity, self.hit, strict=True)}


def find_neighbours(
    embeddings: Embeddings,
    hits: Sequence[int] | np.ndarray,
    k: int = DEFAULT_K,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> Neighbours:
    """The ``k`` nearest items of every hit by cosine similarity, those at or above ``min_similarity``.

    Exact inner products of the normalised hits with one normalised block of items at a time, a running top ``k``
    per hit. Hits are not each other's neighbours, and are left out of the search itself (a matched item is
    already decided, and must not take an unmatched neighbour's place)."""
    parts = [embeddings] if isinstance(embeddings, np.ndarray) else list(embeddings)
    hits = np.unique(np.asarray(hits, dtype=np.int64))
    n = sum(int(p.shape[0]) for p in parts)
    empty = Neighbours(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
    if len(hits) == 0 or n == 0 or k <= 0:
        return empty
    if hits[-1] >= n or hits[0] < 0:
        raise UserError(f"a hit's row {int(hits[-1])} is past the {n} embeddings: they do not align with the items")
    starts = np.cumsum([0, *(int(p.shape[0]) for p in parts)])
    owner = np.searchsorted(starts, hits, side="right") - 1
    queries = _normalised(np.stack([parts[o][h - starts[o]] for o, h in zip(owner, hits, strict=True)]))
    q = len(hits)
    best_s = np.full((q, k), -np.inf, dtype=np.float32)
    best_i = np.full((q, k), -1, dtype=np.int64)
    rows = max(256, min(BLOCK_ROWS, BLOCK_CELLS // q))
    for part, first in zip(parts, starts[:-1].tolist(), strict=True):
        for start in range(0, int(part.shape[0]), rows):
            block = _normalised(part[start : start + rows])
            lo_row = first + start
            lo, hi = np.searchsorted(hits, [lo_row, lo_row + len(block)])
            # faiss's blocked exact inner-product k-NN; hits in this block are asked for on top of k and dropped
            want = min(len(block), k + int(hi - lo))
            sims, idx = faiss.knn(queries, block, want, metric=faiss.METRIC_INNER_PRODUCT)
            missing = idx < 0  # faiss's "no result" (never expected: want <= rows in the block)
            idx = idx.astype(np.int64) + lo_row
            idx[missing], sims[missing] = -1, -np.inf
            if hi > lo:
                sims[np.isin(idx, hits[lo:hi])] = -np.inf
            cand_s = np.concatenate([best_s, sims], axis=1)
            cand_i = np.concatenate([best_i, idx], axis=1)
            top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k] if cand_s.shape[1] > k else None
            if top is not None:
                best_s = np.take_along_axis(cand_s, top, axis=1)
                best_i = np.take_along_axis(cand_i, top, axis=1)
            else:
                best_s, best_i = cand_s, cand_i
    best: dict[int, tuple[float, int]] = {}
    for qi in range(q):
        h = int(hits[qi])
        for s, i in zip(best_s[qi].tolist(), best_i[qi].tolist(), strict=True):
            if i < 0 or s < min_similarity:
                continue
            if i not in best or s > best[i][0]:
                best[i] = (s, h)
    if not best:
        return empty
    found = np.array(sorted(best), dtype=np.int64)
    return Neighbours(
        found,
        np.array([best[int(r)][0] for r in found], dtype=np.float32),
        np.array([best[int(r)][1] for r in found], dtype=np.int64),
    )
