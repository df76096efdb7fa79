"""Brute force: every probe against every entry. The reference every other index is tested against, and the
fallback the Hamming index uses where a threshold is too wide for its tables to help."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    to_words,
    write_meta,
)


@INDEXES.register("brute")
class BruteForceIndex(Index):
    name = "brute"

    def __init__(self, values: np.ndarray) -> None:
        self.values = check_values(values)
        self.words = to_words(self.values)

    @classmethod
    def build(cls, values: np.ndarray) -> BruteForceIndex:
        return cls(values)

    def query(self, probes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probes = check_probes(probes, self.values.shape[1])
        if len(self) == 0 or len(probes) == 0 or threshold < 0:
            return empty_result()
        return kernels.brute_query(self.words, to_words(probes), int(threshold))

    @property
    def nbytes(self) -> int:
        return int(self.words.nbytes)

    def save(self, directory: Path) -> None:
        write_meta(directory, {"kind": self.name, "format": 1, "n": len(self), "nbytes": self.values.shape[1]})
        np.save(directory / "values.npy", self.values, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> BruteForceIndex:
        meta = read_meta(directory, cls.name)
        n, nbytes = meta_int(meta, "n", directory), meta_int(meta, "nbytes", directory, low=1)
        return cls(load_array(directory, "values", np.uint8, (n, nbytes), mmap=False))

    def __len__(self) -> int:
        return int(self.values.shape[0])
