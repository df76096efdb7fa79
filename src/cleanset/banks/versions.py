"""What one bank version records about itself, and how it differs from the one before.

A manifest is safe to show anyone: counts, digests, times and notes, never a value. Added / removed counts compare
(signal, value, id) entries of consecutive versions, so a hotline's weekly refresh shows what it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class SourceInfo:
    file: str  # the name the list had (not its directory)
    sha256: str | None
    bytes: int | None


@dataclass(frozen=True)
class VersionManifest:
    name: str
    version: int
    created: str  # UTC ISO 8601
    allow: bool
    format: str
    note: str
    source: SourceInfo
    counts: dict[str, int]  # entries per signal
    entry_count: int
    added: int
    removed: int
    skipped: int
    duplicates: int
    digest: str
    thresholds: dict[str, int] = field(default_factory=dict)  # explicit overrides only
    cleanset_version: str = ""
    manifest_format: int = MANIFEST_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> VersionManifest:
        data = dict(obj)
        data["source"] = SourceInfo(**data["source"])
        return cls(**data)


def _pairs(values: np.ndarray, ids: pa.Array) -> pa.Table:
    n, width = values.shape
    vals = pa.Array.from_buffers(pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(values))])
    ids_arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    return pa.table({"v": vals, "id": ids_arr.cast(pa.string())})


def diff_counts(
    new: Mapping[str, tuple[np.ndarray, pa.Array]], old: Mapping[str, tuple[np.ndarray, pa.Array]]
) -> tuple[int, int]:
    """(added, removed) entries between two versions; entries are unique (signal, value, id) triples."""
    added = sum(v.shape[0] for s, (v, _) in new.items() if s not in old)
    removed = sum(v.shape[0] for s, (v, _) in old.items() if s not in new)
    shared = [s for s in new if s in old]
    if not shared:
        return added, removed
    for sig in shared:
        con = duckdb.connect()
        try:
            con.register("new_t", _pairs(*new[sig]))
            con.register("old_t", _pairs(*old[sig]))
            a, r = con.execute(
                "SELECT (SELECT count(*) FROM new_t ANTI JOIN old_t USING (v, id)),"
                " (SELECT count(*) FROM old_t ANTI JOIN new_t USING (v, id))"
            ).fetchall()[0]
        finally:
            con.close()
        added += int(a)
        removed += int(r)
    return added, removed
