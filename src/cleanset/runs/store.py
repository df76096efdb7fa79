"""Reading a run directory back: the one place that knows the layout, so report, rematch, clean and attest agree
on what "the results" are.

A run has the original scan (``RUN/items``, ``RUN/summary.json``, ``RUN/manifest.json``) and, after ``rematch``,
numbered revisions (``RUN/revisions/<n>/`` with their own items, summary and manifest). Unless asked for a given
revision, everything here answers for the latest one; revision 0 is the original scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from cleanset.errors import UserError
from cleanset.runs.layout import ITEMS_DIR, LEDGER_DIR, MANIFEST, REVISIONS_DIR, SUMMARY, read_json
from cleanset.runs.schema import ITEM_SCHEMA, read_items

__all__ = ["REVISIONS_DIR", "RunStore"]


class RunStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).is_file():
            raise UserError(f"{self.path} is not a scan run ({MANIFEST} missing)")

    def revisions(self) -> list[int]:
        """Revision numbers written by rematch, ascending (only those whose items folder exists)."""
        d = self.path / REVISIONS_DIR
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit() and (p / ITEMS_DIR).is_dir())

    def latest_revision(self) -> int:
        revs = self.revisions()
        return revs[-1] if revs else 0

    def revision_dir(self, revision: int | None = None) -> Path:
        rev = self.latest_revision() if revision is None else revision
        if rev == 0:
            return self.path
        d = self.path / REVISIONS_DIR / str(rev)
        if not (d / ITEMS_DIR).is_dir():
            raise UserError(f"{self.path} has no revision {rev} (revisions: {self.revisions() or 'none'})")
        return d

    def _json(self, name: str, revision: int | None) -> dict[str, Any]:
        """The revision's own file, falling back to the original's (a revision may not rewrite everything)."""
        for d in (self.revision_dir(revision), self.path):
            if (d / name).is_file():
                data: dict[str, Any] = read_json(d / name)
                return data
        raise UserError(f"{self.path}: {name} missing (the scan has not finished?)")

    @property
    def manifest(self) -> dict[str, Any]:
        return self._json(MANIFEST, None)

    @property
    def summary(self) -> dict[str, Any]:
        return self._json(SUMMARY, None)

    def manifest_of(self, revision: int | None = None) -> dict[str, Any]:
        return self._json(MANIFEST, revision)

    def summary_of(self, revision: int | None = None) -> dict[str, Any]:
        return self._json(SUMMARY, revision)

    def item_files(self, revision: int | None = None) -> list[Path]:
        return sorted((self.revision_dir(revision) / ITEMS_DIR).glob("*.parquet"))

    def items_table(self, revision: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """All shards' rows of the revision (latest by default), shard files in name order."""
        files = self.item_files(revision)
        schema = ITEM_SCHEMA if columns is None else pa.schema([ITEM_SCHEMA.field(c) for c in columns])
        if not files:
            return schema.empty_table()
        # a shard written before a column existed (screening's rules, a plugin's score) reads with it filled in
        return pa.concat_tables([read_items(f, columns) for f in files])

    def ledger(self) -> list[dict[str, Any]]:
        """The scan's ledger entries (one per committed shard), by shard id."""
        d = self.path / LEDGER_DIR
        entries = [read_json(p) for p in sorted(d.glob("*.json"))] if d.is_dir() else []
        return sorted(entries, key=lambda e: e["shard"])
