"""`cleanset clean`: write the dataset back in its own format minus what the scan said must go.

Fail closed at every step: the run must be complete for every shard of the source (a shard without a ledger entry
was never checked), every item the source holds must have a row in the run (an item added after the scan raises
before that shard's output exists), and failed and review items are left out unless asked for. ``removed.parquet``
names what was left out and why (key, shard, status, verdict, reason, matched bank entries) and never holds image
bytes or hash values: a removed item's own hash *is* a list value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.pipeline.runs import write_json_atomic
from cleanset.results.schema import MATCH_TYPE
from cleanset.results.store import RunStore
from cleanset.sources import open_source
from cleanset.sources._files import atomic_output
from cleanset.sources.base import Shard, Source, marker_key

REMOVED_FILE = "removed.parquet"
CLEAN_JSON = "clean.json"

REMOVED_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("dropped_as", pa.string(), nullable=False),  # removed | review | failed
        pa.field("status", pa.string(), nullable=False),
        pa.field("verdict", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("banks", pa.list_(pa.string())),
        pa.field("matches", pa.list_(MATCH_TYPE)),
    ]
)
_RUN_COLUMNS = ("key", "shard", "status", "verdict", "reason", "matches")


@dataclass
class CleanReport:
    out: str
    format: str
    sources: list[str]
    run: str
    revision: int
    shards: int
    items: int = 0
    kept: int = 0  # items the decision keeps (keep, plus review/failed when asked)
    written: int = 0  # items the source wrote (a kept failed item with no readable bytes is not written)
    removed: int = 0
    review_dropped: int = 0
    failed_dropped: int = 0
    review_kept: int = 0
    failed_kept: int = 0
    keep_review: bool = False
    keep_failed: bool = False
    run_shards_not_in_source: list[str] = field(default_factory=list)
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _check_out_dir(out: Path, source_paths: Sequence[Path], run: Path) -> None:
    """The output must not overwrite the source or the run, and must not mix with unrelated files."""
    o = out.resolve()
    for p in [*source_paths, run]:
        r = p.resolve()
        base = r if r.is_dir() else r.parent
        if o == base or o.is_relative_to(base) or base.is_relative_to(o):
            raise UserError(f"--out {out} overlaps {p}: write the cleaned dataset somewhere else")
    if o.exists():
        if not o.is_dir():
            raise UserError(f"--out {out} exists and is not a directory")
        if any(o.iterdir()):  # even an earlier cleaned copy: files it kept that are now dropped would linger
            raise UserError(f"--out {out} is not empty; write the cleaned dataset to a new or empty folder")


def _shard_rows(items_dir: Path, shard: Shard) -> pa.Table:
    """One shard's rows, read on their own so memory follows the largest shard, not the run (LAION has billions)."""
    path = items_dir / f"{shard.id}.parquet"
    if not path.is_file():  # nothing recorded: every item the source holds will be unaccounted for
        return pa.table({c: pa.array([], pa.string()) for c in _RUN_COLUMNS[:5]})
    present = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in _RUN_COLUMNS if c in present])


def clean(
    sources: Sequence[Path],
    run: Path,
    out: Path,
    keep_review: bool = False,
    keep_failed: bool = False,
    format: str | None = None,
    on_shard: Callable[[Shard, int, int], None] | None = None,
) -> CleanReport:
    """Write the cleaned dataset to ``out`` and ``run/clean.json``; ``on_shard(shard, written, dropped)`` reports
    progress."""
    store = RunStore(run)
    manifest = store.manifest
    scanned_format = manifest.get("format")
    if format is not None and scanned_format and format != scanned_format:
        raise UserError(f"{run} was scanned as {scanned_format!r}, not {format!r}")
    source: Source = open_source(sources, format or scanned_format)
    _check_out_dir(out, [Path(p) for p in sources], run)

    shards = source.shards()
    committed = {str(e["shard"]) for e in store.ledger()}
    missing = [s.id for s in shards if s.id not in committed]
    if missing:
        raise UserError(
            f"{run} is incomplete: {len(missing)} of {len(shards)} shards of the source have no committed results "
            f"(first: {missing[0]}); run the same scan again to finish it before cleaning"
        )
    revision = store.latest_revision()
    items_dir = store.revision_dir(revision) / "items"
    source_ids = {s.id for s in shards}
    run_ids = {p.stem for p in items_dir.glob("*.parquet")}
    report = CleanReport(
        out=str(out.resolve()),
        format=source.name,
        sources=[str(Path(p).resolve()) for p in sources],
        run=str(run.resolve()),
        revision=revision,
        shards=len(shards),
        keep_review=keep_review,
        keep_failed=keep_failed,
        run_shards_not_in_source=sorted(run_ids - source_ids),
    )
    out.mkdir(parents=True, exist_ok=True)
    removed_parts: list[pa.Table] = []
    for shard in shards:
        rows = _shard_rows(items_dir, shard)
        expect = set(rows["key"].to_pylist())
        unread = marker_key(shard.id, "unread") in expect
        # A shard whose items the scan could not even list is left out whole: none of it is known to be clean.
        keep, dropped = _decide(rows, keep_review, keep_failed and not unread, report)
        written = 0 if unread else source.write_clean(shard, keep, out, expect=expect)
        report.written += written
        if dropped.num_rows:
            removed_parts.append(dropped)
        if on_shard is not None:
            on_shard(shard, written, dropped.num_rows)
    removed = pa.concat_tables(removed_parts) if removed_parts else REMOVED_SCHEMA.empty_table()
    with atomic_output(out / REMOVED_FILE) as tmp:
        pq.write_table(removed, tmp)
    report.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_json_atomic(run / CLEAN_JSON, report.to_json())
    return report


def _decide(rows: pa.Table, keep_review: bool, keep_failed: bool, report: CleanReport) -> tuple[set[str], pa.Table]:
    """Keys to keep and the rows of dropped items (as ``REMOVED_SCHEMA``), counting into ``report``."""
    n = rows.num_rows
    report.items += n
    if n == 0:
        return set(), REMOVED_SCHEMA.empty_table()
    status = pc.fill_null(rows["status"], "")
    verdict = pc.fill_null(rows["verdict"], "")
    failed = pc.equal(status, "failed")
    ok = pc.invert(failed)
    is_keep = pc.and_(ok, pc.equal(verdict, "keep"))
    is_review = pc.and_(ok, pc.equal(verdict, "review"))
    is_removed = pc.and_(ok, pc.invert(pc.or_(is_keep, is_review)))  # remove, or anything unexpected: fail closed
    keep_mask = is_keep
    if keep_review:
        keep_mask = pc.or_(keep_mask, is_review)
    if keep_failed:
        # a failed item whose file digest is listed is dropped all the same: it is known, not merely unreadable
        lengths = pc.fill_null(pc.list_value_length(rows["matches"]), 0) if "matches" in rows.column_names else None
        unmatched = pc.equal(lengths, 0) if lengths is not None else pa.array([True] * n)
        keep_mask = pc.or_(keep_mask, pc.and_(failed, unmatched))

    def count(mask: pa.ChunkedArray | pa.Array) -> int:
        return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)

    n_review, n_failed = count(is_review), count(failed)
    report.kept += count(keep_mask)
    report.removed += count(is_removed)
    report.review_kept += n_review if keep_review else 0
    report.review_dropped += 0 if keep_review else n_review
    n_failed_kept = count(pc.and_(failed, keep_mask))
    report.failed_kept += n_failed_kept
    report.failed_dropped += n_failed - n_failed_kept
    keep = set(rows.filter(keep_mask)["key"].to_pylist())
    drop = rows.filter(pc.invert(keep_mask))
    dropped_as = pc.if_else(
        pc.equal(pc.fill_null(drop["status"], ""), "failed"),
        pa.scalar("failed"),
        pc.if_else(pc.equal(pc.fill_null(drop["verdict"], ""), "review"), pa.scalar("review"), pa.scalar("removed")),
    )
    matches = drop["matches"] if "matches" in drop.column_names else pa.nulls(drop.num_rows, pa.list_(MATCH_TYPE))
    banks = [sorted({m["bank"] for m in ms or []}) for ms in _pylist(matches)]
    table = pa.table(
        {
            "key": drop["key"],
            "shard": drop["shard"],
            "dropped_as": dropped_as,
            "status": drop["status"],
            "verdict": drop["verdict"],
            "reason": drop["reason"],
            "banks": pa.array(banks, pa.list_(pa.string())),
            "matches": matches,
        }
    )
    return keep, table.cast(REMOVED_SCHEMA)


def _pylist(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    return list(col.to_pylist())
