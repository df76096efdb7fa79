"""The Index seam: exact lookup for cryptographic/URL hashes, Hamming range search for perceptual ones.

Every index is exact: it returns precisely what brute force returns at the threshold (tests compare). Saved
indexes use plain arrays (``.npy``/``.npz`` with ``allow_pickle=False``): lists come from outside, and pickle runs
code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np


class Index(ABC):
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, values: np.ndarray) -> Index:
        """``values``: (n, nbytes) uint8, row i is entry i."""

    @abstractmethod
    def query(self, probes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs within ``threshold`` (inclusive): arrays (probe_row, entry_row, distance), each int64."""

    @abstractmethod
    def save(self, directory: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Index: ...

    @abstractmethod
    def __len__(self) -> int: ...
