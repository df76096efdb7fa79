"""The Index seam: exact lookup for cryptographic/URL hashes, Hamming range search for perceptual ones.

Every index is exact: it returns precisely what brute force returns at the threshold (tests compare), sorted by
(probe row, entry row). Saved indexes are a directory of plain arrays (one ``.npy`` each, read with
``allow_pickle=False``, memory-mapped where large) plus a small JSON header: lists come from outside, and pickle
runs code. Indexes register in ``INDEXES`` by name ("exact", "brute", "hamming").
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cleanset.errors import InputFormatError
from cleanset.registry import Registry


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


INDEXES: Registry[type[Index]] = Registry("index")

META_FILE = "index.json"


def check_values(values: np.ndarray) -> np.ndarray:
    """The (n, nbytes) uint8 contract every index builds from; anything else is a caller's bug, said plainly."""
    if not isinstance(values, np.ndarray) or values.dtype != np.uint8 or values.ndim != 2:
        raise ValueError("index values must be a (n, nbytes) uint8 array")
    if values.shape[1] == 0:
        raise ValueError("index values must have at least one byte per entry")
    return np.ascontiguousarray(values)


def check_probes(probes: np.ndarray, nbytes: int) -> np.ndarray:
    """Probes must have the bank's width: comparing a 64-bit hash with 256-bit entries is a caller's bug."""
    if not isinstance(probes, np.ndarray) or probes.dtype != np.uint8 or probes.ndim != 2:
        raise ValueError("probes must be a (k, nbytes) uint8 array")
    if probes.shape[1] != nbytes:
        raise ValueError(f"probes are {probes.shape[1]} bytes wide, the index holds {nbytes}-byte values")
    return np.ascontiguousarray(probes)


def to_words(values: np.ndarray) -> np.ndarray:
    """Rows of bytes as rows of native uint64 words, zero-padded: the layout the popcount kernels read."""
    n, nbytes = values.shape
    width = -(-nbytes // 8) * 8
    if width != nbytes:
        padded = np.zeros((n, width), dtype=np.uint8)
        padded[:, :nbytes] = values
        values = padded
    return np.ascontiguousarray(values).view(np.uint64).reshape(n, width // 8)


def empty_result() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z.copy(), z.copy()


def array_digest(arr: np.ndarray) -> str:
    """SHA-256 of an array's bytes (C order), read in slices so a memory-mapped array is not pulled in whole."""
    h = hashlib.sha256()
    flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    step = 1 << 24
    for i in range(0, len(flat), step):
        h.update(flat[i : i + step].data)
    return h.hexdigest()


def write_meta(directory: Path, meta: dict[str, object]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / META_FILE).write_text(json.dumps(meta, sort_keys=True))


def read_meta(directory: Path, kind: str, fmt: int = 1) -> dict[str, Any]:
    """The index's small JSON header, checked to be the kind and format the caller expects."""
    path = directory / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputFormatError(str(path), f"cannot read index header: {e}") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind or meta.get("format") != fmt:
        raise InputFormatError(str(path), f"not a format-{fmt} {kind!r} index")
    return meta


def meta_int(meta: dict[str, Any], key: str, directory: Path, *, low: int = 0) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InputFormatError(str(directory / META_FILE), f"field {key!r} must be an integer >= {low}")
    return value


def load_array(directory: Path, name: str, dtype: type, shape: tuple[int, ...], *, mmap: bool) -> np.ndarray:
    """One ``.npy`` member, never unpickled, rejected unless dtype and shape are exactly what the header says."""
    path = directory / f"{name}.npy"
    try:
        # an empty array cannot be mapped; it is read (a header and nothing else) instead
        use_mmap = mmap and int(np.prod(shape)) > 0
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if use_mmap else None)
    except (OSError, ValueError) as e:
        raise InputFormatError(str(path), f"cannot read index array: {e}") from None
    if arr.dtype != np.dtype(dtype) or arr.shape != shape:
        raise InputFormatError(str(path), f"expected {np.dtype(dtype)} {shape}, found {arr.dtype} {arr.shape}")
    return np.asarray(arr)
