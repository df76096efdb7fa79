"""The Source seam: readers for the ways people store datasets, each able to write its own format back.

A source splits a dataset into shards (the unit of work, commit and resume) and yields one ``SourceItem`` per item.
Reading never raises for bad data: an unreadable item, a truncated tar or a vanished shard is yielded as an item
with ``error`` set, so the pipeline records it as failed with that reason (fail closed, nothing silently skipped).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Shard:
    """One unit of work. ``id`` is stable across runs and unique within a scan (used for file names)."""

    id: str
    path: str


@dataclass
class SourceItem:
    key: str
    data: bytes | None = None  # the stored image bytes, when the source holds images
    url: str | None = None  # the item's URL, when the source holds URLs (LAION-style metadata)
    meta: dict[str, Any] = field(default_factory=dict)  # caption, original columns, sidecar json
    given_hashes: dict[str, str] = field(default_factory=dict)  # e.g. md5/sha256 columns of metadata parquet
    error: str | None = None  # set when the item could not be read; the reason recorded as failed


class Source(ABC):
    """A dataset on disk. Constructed from the user's paths; validates them before the first item is read."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        """True when these paths look like this kind of source (used when --format is not given)."""

    @abstractmethod
    def shards(self) -> list[Shard]: ...

    @abstractmethod
    def read(self, shard: Shard) -> Iterator[SourceItem]: ...

    @abstractmethod
    def write_clean(self, shard: Shard, keep: set[str], out_dir: Path) -> int:
        """Write ``shard`` into ``out_dir`` in this source's own format and layout with only the ``keep`` keys.

        Returns the number of items written. Writes to a temporary name and renames, so a crash never leaves a
        half-written shard under its final name.
        """
