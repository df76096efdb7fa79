"""The Source seam: readers for the ways people store datasets, each able to write its own format back.

A source splits a dataset into shards (the unit of work, commit and resume) and yields one ``SourceItem`` per item.
Reading never raises for bad data: an unreadable item, a truncated tar or a vanished shard is yielded as an item
with ``error`` set, so the pipeline records it as failed with that reason (fail closed, nothing silently skipped).

Damage that hides an unknown number of items (a truncated tar, a shard that vanished, a Parquet file whose footer
cannot be read) is reported as one *marker item* whose key is ``"<shard id>#<what>"`` (see :func:`marker_key`):
the items it hides cannot be named, but the shard still shows up as failed and the cleaned output leaves it out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cleanset.errors import UserError
from cleanset.registry import Registry

# Extensions read as images. Anything else in a folder or a tar group is a sidecar (caption, json) or ignored.
IMAGE_EXTS: frozenset[str] = frozenset(
    {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "jxl", "avif", "heic", "heif"}
)

MARKER_SEP = "#"


def marker_key(shard_id: str, what: str) -> str:
    """Key of the one failed item that stands for damage hiding an unknown number of items."""
    return f"{shard_id}{MARKER_SEP}{what}"


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


class UnaccountedItem(UserError):
    """The source holds an item the run never recorded: cleaning it would pass an unchecked item through."""


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
    def write_clean(self, shard: Shard, keep: set[str], out_dir: Path, expect: Collection[str] | None = None) -> int:
        """Write ``shard`` into ``out_dir`` in this source's own format and layout with only the ``keep`` keys.

        Returns the number of items written. Writes to a temporary name and renames, so a crash never leaves a
        half-written shard under its final name. When ``expect`` is given (the keys a scan recorded for this
        shard), meeting an item whose key is not in it raises :class:`UnaccountedItem` before the shard's final
        file exists: the data changed since the scan, and passing an unchecked item through would fail open.
        """


def check_expected(shard: Shard, key: str, expect: Collection[str] | None) -> None:
    if expect is not None and key not in expect:
        raise UnaccountedItem(
            f"shard {shard.id} ({shard.path}) holds item {key!r} that the run never recorded; "
            "the dataset changed since the scan: scan it again before cleaning"
        )


SOURCES: Registry[type[Source]] = Registry("source format")
