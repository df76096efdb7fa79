"""The on-disk shape of a scan's per-item results (RUN/items/<shard>.parquet).

Everything later stages need (report, clean, rematch, attestation) is in these columns, so none of them reads an
image again. Probe values are the item's own hashes; bank values never appear here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.screening.classifier import classifier_columns, score_name
from cleanset.signals import column_probes, hash_columns

# Primary hash columns, one string (hex) column each; null when not computed or the item failed. Each signal
# declares its column (``Signal.column``) and place (``Signal.rank``): md5, sha1, sha256, pdq, pdq512, phash,
# url_md5, url_sha1, then any plugin's. Fixed at import, since the schema is.
HASH_COLUMNS: tuple[str, ...] = hash_columns()
# Probes that are exactly a hash column (name == signal == column, same value, no quality) are not written to the
# ``probes`` column again: on a URL metadata scan they were half of every results file. Readers put them back with
# ``with_full_probes`` (Arrow) or ``from_rows`` (Python), in this order, before the stored probes: md5, sha1,
# sha256, url_md5, url_sha1, phash (``cleanset.signals.column_probes``).
COLUMN_PROBES: tuple[str, ...] = column_probes()

# One float column per registered classifier (``open_nsfw``, any plugin's), holding its ``classifier.<name>``
# score: derived from the screener registry as the hash columns are from the signals. Every score (dataset columns,
# text categories, neighbours, a configured model's) is in ``scores`` too; these columns make the common ones
# directly queryable.
SCREEN_COLUMNS: tuple[str, ...] = classifier_columns()

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
        pa.field("caption", pa.string()),  # the item's caption as the source gave it, for the report's tables
        # sha256 of the content ``clean`` writes for the item (``cleanset.sources.base.content_digest``), always
        # computed whatever the signals: clean copies only bytes whose digest is this, attest checks it again.
        pa.field("content_sha256", pa.string()),
        pa.field("probes", pa.list_(PROBE_TYPE)),
        pa.field("matches", pa.list_(MATCH_TYPE)),
        pa.field("scores", pa.map_(pa.string(), pa.float32())),
        pa.field("notes", pa.list_(pa.string())),
        # screening: rules that fired (bank-match, a screening rule's name, strict) and term lists that matched the
        # caption (``category:list@version``, never the term); empty when the scan did not screen
        pa.field("rules", pa.list_(pa.string())),
        pa.field("text_lists", pa.list_(pa.string())),
        *[pa.field(c, pa.float32()) for c in SCREEN_COLUMNS],
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


def stored_probes(hashes: Mapping[str, str], probes: Sequence[Probe]) -> list[Probe]:
    """The probes a results row keeps in its ``probes`` column: all but those a hash column already holds."""
    return [
        p
        for p in probes
        if not (p.name in COLUMN_PROBES and p.signal == p.name and p.quality is None and hashes.get(p.name) == p.value)
    ]


def with_full_probes(table: pa.Table) -> pa.Table:
    """``table`` with every item's complete probe list: the hash-column probes put back in front of the stored ones."""
    cols = [c for c in COLUMN_PROBES if c in table.column_names]
    stored = table.column("probes").combine_chunks()
    values: list[pa.Array] = []
    parents: list[np.ndarray] = []
    order: list[np.ndarray] = []
    for k, c in enumerate(cols):
        col = table.column(c).combine_chunks()
        rows = np.flatnonzero(col.is_valid().to_numpy(zero_copy_only=False))
        if len(rows):
            name = pa.array(np.full(len(rows), c, dtype=object), pa.string())
            vals = col.take(pa.array(rows)).cast(pa.string())
            values.append(
                pa.StructArray.from_arrays([name, name, vals, pa.nulls(len(rows), pa.int16())], fields=list(PROBE_TYPE))
            )
            parents.append(rows)
            order.append(np.full(len(rows), k, dtype=np.int64))
    if not values:
        return table
    flat = stored.flatten()
    values.append(flat)
    parents.append(pc.list_parent_indices(stored).to_numpy(zero_copy_only=False).astype(np.int64))
    order.append(len(cols) + np.arange(len(flat), dtype=np.int64))  # stored probes keep their order, after
    parent = np.concatenate(parents)
    idx = np.lexsort((np.concatenate(order), parent))
    merged = pa.concat_arrays([v.cast(PROBE_TYPE) for v in values]).take(pa.array(idx))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=table.num_rows))]).astype(np.int32)
    probes = pa.ListArray.from_arrays(pa.array(offsets), merged, type=pa.list_(PROBE_TYPE))
    return table.set_column(table.schema.get_field_index("probes"), ITEM_SCHEMA.field("probes"), probes)


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
        cols["caption"].append(r.caption)
        cols["content_sha256"].append(r.content_sha256)
        cols["probes"].append(
            [
                {"name": p.name, "signal": p.signal, "value": p.value, "quality": p.quality}
                for p in stored_probes(r.hashes, r.probes)
            ]
        )
        cols["matches"].append([match_row(m) for m in r.matches])
        cols["scores"].append(list(r.scores.items()))
        cols["notes"].append(list(r.notes))
        cols["rules"].append(list(r.rules))
        cols["text_lists"].append(list(r.text_lists))
        for c in SCREEN_COLUMNS:
            cols[c].append(r.scores.get(score_name(c)))
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
                caption=row.get("caption"),
                content_sha256=row.get("content_sha256"),
                probes=[Probe(c, c, row[c]) for c in COLUMN_PROBES if row.get(c) is not None]
                + [Probe(**p) for p in row["probes"] or []],
                matches=[Match(**m) for m in row["matches"] or []],
                scores=dict(scores),
                notes=list(row["notes"] or []),
                rules=list(row.get("rules") or []),
                text_lists=list(row.get("text_lists") or []),
            )
        )
    return out


def read_items(path: Any, columns: Sequence[str] | None = None) -> pa.Table:
    """One results file as ``ITEM_SCHEMA`` (or its ``columns``), whatever columns it was written with.

    Why: a run written before a column existed (``rules``, ``text_lists``) or before a screener plugin was
    installed (its score column) must still be reported, rematched and neighbour-passed. The columns the file has
    are read; the others are added as nulls (an empty list for list columns), which is what a row without that
    screening means."""
    import pyarrow.parquet as pq

    want = list(ITEM_SCHEMA.names) if columns is None else list(columns)
    schema = pa.schema([ITEM_SCHEMA.field(c) for c in want])
    have = set(pq.read_schema(path).names)
    table = pq.read_table(path, columns=[c for c in want if c in have])
    arrays = []
    for f in schema:
        if f.name in have:
            arrays.append(table.column(f.name).cast(f.type))
        elif pa.types.is_list(f.type):
            arrays.append(pa.array([[] for _ in range(table.num_rows)], f.type))
        else:
            arrays.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)
