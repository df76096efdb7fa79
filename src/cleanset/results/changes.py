"""What a rematch changed for one item, as rows of RUN/revisions/<n>/changes.parquet.

Both rematch paths (every probe against whole lists, and only the entries a list gained) describe their outcome
through ``change_rows``, so the two can be compared row for row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from cleanset.records import Match

CHANGES_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("change", pa.string(), nullable=False),  # newly_matched | no_longer_matched | verdict_changed
        pa.field("bank", pa.string()),
        pa.field("entry_id", pa.string()),
        pa.field("old_verdict", pa.string()),
        pa.field("new_verdict", pa.string()),
    ]
)
CHANGE_KINDS = ("newly_matched", "no_longer_matched", "verdict_changed")


def change_rows(
    key: str,
    shard: str,
    old_matches: Iterable[dict[str, Any]] | None,
    new_matches: Sequence[Match],
    old_verdict: str | None,
    new_verdict: str | None,
) -> list[dict[str, Any]]:
    """Matches gained and lost (by bank and entry id), and the verdict change, of one item."""
    before = {(m["bank"], m["entry_id"]) for m in old_matches or []}
    after = {(m.bank, m.entry_id) for m in new_matches}
    base = {"key": key, "shard": shard, "old_verdict": old_verdict, "new_verdict": new_verdict}
    rows = [{**base, "change": "newly_matched", "bank": b, "entry_id": e} for b, e in sorted(after - before)]
    rows += [{**base, "change": "no_longer_matched", "bank": b, "entry_id": e} for b, e in sorted(before - after)]
    if old_verdict != new_verdict:
        rows.append({**base, "change": "verdict_changed", "bank": None, "entry_id": None})
    return rows
