"""Exact lookup for cryptographic and URL hashes: the bank's values sorted as fixed-width byte strings, probes
found by binary search. A batch is one vectorised ``searchsorted``; a value listed twice returns every entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cleanset.errors import InputFormatError
from cleanset.matching import kernels
from cleanset.matching.base import (
    INDEXES,
    Index,
    check_probes,
    check_values,
    empty_result,
    load_array,
    meta_int,
    read_meta,
    write_meta,
)


def _keys(rows: np.ndarray) -> np.ndarray:
    """Rows as opaque fixed-width byte strings: numpy sorts and searches these in memcmp order."""
    return np.ascontiguousarray(rows).view(f"V{rows.shape[1]}").ravel()


@INDEXES.register("exact")
class ExactIndex(Index):
    name = "exact"

    def __init__(self, sorted_values: np.ndarray, order: np.ndarray) -> None:
        self.sorted_values = sorted_values  # (n, nbytes) uint8 in memcmp order
        self.order = order  # int64: sorted position -> entry row
        self._keys = _keys(sorted_values)

    @classmethod
    def build(cls, values: np.ndarray) -> ExactIndex:
        values = check_values(values)
        order = np.argsort(_keys(values), kind="stable").astype(np.int64)
        return cls(np.ascontiguousarray(values[order]), order)

    def query(self, probes: np.ndarray, threshold: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equal values only; ``threshold`` is accepted for the common contract and ignored."""
        probes = check_probes(probes, self.sorted_values.shape[1])
        if len(self) == 0 or len(probes) == 0:
            return empty_result()
        keys = _keys(probes)
        lo = np.searchsorted(self._keys, keys, side="left")
        hi = np.searchsorted(self._keys, keys, side="right")
        counts = hi - lo
        probe_rows = np.repeat(np.arange(len(probes), dtype=np.int64), counts)
        # positions lo[i], lo[i]+1, ..., hi[i]-1 for every probe, without a Python loop
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        positions = starts + np.arange(counts.sum(), dtype=np.int64)
        entries = self.order[positions]
        return probe_rows, entries, np.zeros(len(entries), dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return int(self.sorted_values.nbytes + self.order.nbytes)

    def save(self, directory: Path) -> None:
        write_meta(directory, {"kind": self.name, "format": 1, "n": len(self), "nbytes": self.sorted_values.shape[1]})
        np.save(directory / "sorted_values.npy", self.sorted_values, allow_pickle=False)
        np.save(directory / "order.npy", self.order, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> ExactIndex:
        """Memory-mapped; the order is checked to be sorted and a permutation, since a binary search over a
        tampered file would silently miss values."""
        meta = read_meta(directory, cls.name)
        n, nbytes = meta_int(meta, "n", directory), meta_int(meta, "nbytes", directory, low=1)
        values = load_array(directory, "sorted_values", np.uint8, (n, nbytes), mmap=True)
        order = load_array(directory, "order", np.int64, (n,), mmap=True)
        if not kernels.rows_sorted(values):
            raise InputFormatError(str(directory / "sorted_values.npy"), "values are not sorted")
        if n and (order.min() < 0 or order.max() >= n or np.bincount(order, minlength=n).max() != 1):
            raise InputFormatError(str(directory / "order.npy"), "order is not a permutation of the entries")
        return cls(values, order)

    def __len__(self) -> int:
        return int(self.sorted_values.shape[0])
