"""Dataset readers/writers, one registered class per on-disk format, and ``open_source`` to pick one.

Detection looks at what the paths hold, in this order: tar shards -> ``webdataset``; Parquet files with an image
column -> ``parquet``; Parquet files with a URL column and no image column -> ``laion``; a directory tree with
image files -> ``folder``. Sources registered by plugins are tried after these. ``format=`` skips detection.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cleanset.errors import UserError
from cleanset.sources import folder, laion, parquet, webdataset
from cleanset.sources._files import expand_braces, expand_paths
from cleanset.sources.base import MARKER_SEP, SOURCES, Shard, Source, SourceItem, UnaccountedItem, marker_key
from cleanset.sources.folder import FolderSource
from cleanset.sources.laion import BATCH_SCHEMA, LaionSource
from cleanset.sources.parquet import ParquetImageSource
from cleanset.sources.webdataset import WebDatasetSource
from cleanset.storage import local_paths

DETECTION_ORDER: tuple[str, ...] = ("webdataset", "parquet", "laion", "folder")

__all__ = [
    "BATCH_SCHEMA",
    "DETECTION_ORDER",
    "MARKER_SEP",
    "SOURCES",
    "FolderSource",
    "LaionSource",
    "ParquetImageSource",
    "Shard",
    "Source",
    "SourceItem",
    "UnaccountedItem",
    "WebDatasetSource",
    "detect_format",
    "expand_braces",
    "folder",
    "laion",
    "marker_key",
    "open_source",
    "parquet",
    "webdataset",
]


def detect_format(paths: Sequence[Path | str]) -> str:
    """The source format these paths hold; UserError naming the paths when none (or a path is missing)."""
    expanded = expand_paths(local_paths(paths))
    order = [*DETECTION_ORDER, *(n for n in SOURCES.names() if n not in DETECTION_ORDER)]
    for name in order:
        if SOURCES.get(name).detect(expanded):
            return name
    shown = ", ".join(map(str, expanded))
    raise UserError(
        f"cannot tell what kind of dataset {shown} is: expected a folder of images, .tar shards, or .parquet "
        f"files (all with image bytes, or all with a URL column); pass --format ({', '.join(SOURCES.names())})"
    )


def open_source(paths: Sequence[Path | str], format: str | None = None, **options: Any) -> Source:
    """Open a dataset; ``options`` go to the source's constructor (e.g. ``images=`` for ``laion``).

    A path may be a URL (``s3://``, ``gs://``, ``hf://``, ``file://``): it is staged into the node's mirror first
    (``cleanset.storage``), so every source reads remote data as it reads a local copy of the same layout."""
    paths = local_paths(paths)
    if "images" in options and options["images"] is not None:
        options["images"] = local_paths([options["images"]])[0]
    name = format or detect_format(paths)
    cls = SOURCES.get(name)
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        raise UserError(f"source format {name!r} does not take option(s) {', '.join(unknown)}")
    return cls([Path(p) for p in paths], **options)  # type: ignore[call-arg]
