"""The on-disk shape of a scan's per-item results (RUN/items/<shard>.parquet).

Everything later stages need (report, clean, rematch, attestation) is in these columns, so none of them reads an
image again. Probe values are the item's own hashes; bank values never appear here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa

from cleanset.records import ItemResult, Match, Probe, Status, Verdict

# Primary hash columns, one string (hex) column each; null when not computed or the item failed.
HASH_COLUMNS: tuple[str, ...] = ("md5", "sha1", "sha256", "pdq", "pdq512", "phash", "url_md5", "url_sha1")

PROBE_TYPE = pa.struct(
    [
        pa.field("name", pa.string(), nullable=False),
        pa.field("signal", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("quality", pa.int16()),
    ]
)

MATCH_TYPE = pa.struct(
    [
        pa.field("bank", pa.string(), nullable=False),
        pa.field("version", pa.int32(), nullable=False),
        pa.field("entry_id", pa.string(), nullable=False),
        pa.field("signal", pa.string(), nullable=False),
        pa.field("distance", pa.int16(), nullable=False),
        pa.field("probe", pa.string(), nullable=False),
    ]
)

ITEM_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("verdict", pa.string()),
        *[pa.field(c, pa.string()) for c in HASH_COLUMNS],
        pa.field("pdq_quality", pa.int16()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("format", pa.string()),
        pa.field("url", pa.string()),
        pa.field("probes", pa.list_(PROBE_TYPE)),
        pa.field("matches", pa.list_(MATCH_TYPE)),
        pa.field("scores", pa.map_(pa.string(), pa.float32())),
        pa.field("notes", pa.list_(pa.string())),
    ]
)


def match_row(m: Match) -> dict[str, Any]:
    """One match as a MATCH_TYPE struct value."""
    return {
        "bank": m.bank,
        "version": m.version,
        "entry_id": m.entry_id,
        "signal": m.signal,
        "distance": m.distance,
        "probe": m.probe,
    }


def to_table(results: Sequence[ItemResult]) -> pa.Table:
    """Column-wise conversion; one shard's results become one table."""
    cols: dict[str, list[Any]] = {f.name: [] for f in ITEM_SCHEMA}
    for r in results:
        cols["key"].append(r.key)
        cols["shard"].append(r.shard)
        cols["status"].append(str(r.status))
        cols["reason"].append(r.reason)
        cols["verdict"].append(None if r.verdict is None else str(r.verdict))
        for c in HASH_COLUMNS:
            cols[c].append(r.hashes.get(c))
        cols["pdq_quality"].append(r.pdq_quality)
        cols["width"].append(r.width)
        cols["height"].append(r.height)
        cols["format"].append(r.format)
        cols["url"].append(r.url)
        cols["probes"].append(
            [{"name": p.name, "signal": p.signal, "value": p.value, "quality": p.quality} for p in r.probes]
        )
        cols["matches"].append([match_row(m) for m in r.matches])
        cols["scores"].append(list(r.scores.items()))
        cols["notes"].append(list(r.notes))
    return pa.Table.from_pydict(cols, schema=ITEM_SCHEMA)


def from_rows(rows: Iterable[dict[str, Any]]) -> list[ItemResult]:
    """Inverse of :func:`to_table` over ``table.to_pylist()`` rows."""
    out: list[ItemResult] = []
    for row in rows:
        scores = row.get("scores") or []
        out.append(
            ItemResult(
                key=row["key"],
                shard=row["shard"],
                status=Status(row["status"]),
                reason=row["reason"],
                verdict=None if row["verdict"] is None else Verdict(row["verdict"]),
                hashes={c: row[c] for c in HASH_COLUMNS if row.get(c) is not None},
                pdq_quality=row["pdq_quality"],
                width=row["width"],
                height=row["height"],
                format=row["format"],
                url=row["url"],
                probes=[Probe(**p) for p in row["probes"] or []],
                matches=[Match(**m) for m in row["matches"] or []],
                scores=dict(scores),
                notes=list(row["notes"] or []),
            )
        )
    return out
