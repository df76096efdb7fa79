"""One stored bank version, opened for matching: values memory-mapped, ids read lazily.

Opening a 10-million-entry bank must not cost a copy of it: ``values`` maps the ``.npy`` file read-only and
``entry_ids`` wraps the Parquet id column without turning it into Python strings; the matcher asks for the few ids
it reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import overload

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.banks.columns import LABEL_PREFIX
from cleanset.banks.layout import Layout
from cleanset.banks.versions import VersionManifest
from cleanset.errors import InputFormatError
from cleanset.signals import get_signal


class ArrowStrings(Sequence[str]):
    """A read-only sequence of str over an Arrow string column."""

    def __init__(self, column: pa.Array | pa.ChunkedArray) -> None:
        self._col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column

    def __len__(self) -> int:
        return len(self._col)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return self._col[i].to_pylist()
        if i < 0:
            i += len(self._col)
        if not 0 <= i < len(self._col):
            raise IndexError(i)
        return str(self._col[i].as_py())

    def __iter__(self) -> Iterator[str]:
        return iter(self._col.to_pylist())

    def take(self, idx: Sequence[int] | np.ndarray) -> list[str]:
        return self._col.take(pa.array(np.asarray(idx, dtype=np.int64))).to_pylist()

    @property
    def arrow(self) -> pa.Array:
        return self._col


class StoredBank:
    """Implements ``cleanset.banks.base.BankSnapshot`` for a version directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        path = Layout.manifest(directory)
        try:
            self.manifest = VersionManifest.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputFormatError(str(path), f"unreadable bank manifest ({e})") from None
        self._entries: dict[str, pa.Table] = {}

    def __repr__(self) -> str:
        return f"StoredBank({self.name!r}, version={self.version}, entries={self.entry_count})"

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def allow(self) -> bool:
        return self.manifest.allow

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def entry_count(self) -> int:
        return self.manifest.entry_count

    def signals(self) -> Sequence[str]:
        return sorted(self.manifest.counts)

    def _check(self, signal: str) -> None:
        if signal not in self.manifest.counts:
            raise KeyError(f"bank {self.name!r} version {self.version} holds no {signal!r} entries")

    def values(self, signal: str) -> np.ndarray:
        self._check(signal)
        arr = np.load(Layout.values(self.directory, signal), mmap_mode="r", allow_pickle=False)
        if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[0] != self.manifest.counts[signal]:
            raise InputFormatError(str(Layout.values(self.directory, signal)), "bank values do not match manifest")
        return arr

    def entries(self, signal: str) -> pa.Table:
        """Ids and labels (columns ``id`` and ``label.<name>``), row i = entry i of ``values(signal)``."""
        self._check(signal)
        if signal not in self._entries:
            self._entries[signal] = pq.read_table(Layout.entries(self.directory, signal), memory_map=True)
        return self._entries[signal]

    def entry_ids(self, signal: str) -> ArrowStrings:
        return ArrowStrings(self.entries(signal).column("id"))

    def labels(self, signal: str, index: int) -> dict[str, str]:
        t = self.entries(signal)
        out = {}
        for name in t.column_names:
            if name.startswith(LABEL_PREFIX):
                v = t.column(name)[index].as_py()
                if v is not None:
                    out[name[len(LABEL_PREFIX) :]] = v
        return out

    def threshold(self, signal: str) -> int:
        return self.manifest.thresholds.get(signal, get_signal(signal).default_threshold)

    def thresholds(self) -> dict[str, int]:
        """The effective threshold of every signal this version holds."""
        return {s: self.threshold(s) for s in self.signals()}

    @cached_property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*") if p.is_file())
