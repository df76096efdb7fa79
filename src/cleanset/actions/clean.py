"""`cleanset clean`: write the dataset back in its own format minus what the scan said must go.

Clean is closed-world: it writes only bytes the scan screened and decided to keep. Fail closed at every step:

- the run must be complete for every shard of the source (a shard without a ledger entry was never checked);
- every item the source yields goes through a :class:`~cleanset.sources.base.CleanGate` built from the run's own
  rows: an item the run never recorded, or whose content digest differs from the one the scan recorded (the file
  was swapped between scan and clean), stops the clean; the output is then never finished;
- failed and review items are left out unless asked for; sidecars travel only when they are text or JSON.

The output is written into a hidden temporary sibling of ``--out`` and renamed to it at the very end, after the
completion marker (``.cleanset-clean.json``: run fingerprint, revision, counts, choices) is in place, so a killed
clean leaves no folder that looks finished, and ``attest`` refuses a folder without the marker or one older than
the run's latest revision. ``removed.parquet`` names what was left out and why (key, shard, status, verdict,
reason, matched bank entries) and never holds image bytes or hash values: a removed item's own hash *is* a list
value.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset import storage
from cleanset.actions.dataset_digest import output_files_root
from cleanset.atomic import fsync_dir, fsync_tree, sweep_dead
from cleanset.errors import UserError
from cleanset.pipeline.scan import reopen_options
from cleanset.records import failure_code
from cleanset.runs.layout import RunDir, write_json_atomic
from cleanset.runs.schema import MATCH_TYPE
from cleanset.runs.store import RunStore
from cleanset.sources import open_source
from cleanset.sources._files import atomic_output
from cleanset.sources.base import CleanGate, Shard, Source, marker_key

REMOVED_FILE = "removed.parquet"
CLEAN_JSON = "clean.json"
CLEAN_MARKER = ".cleanset-clean.json"
MARKER_SPEC = "cleanset-clean-v1"
# What the marker repeats from the report: counts and choices, never local paths (the marker travels with the data).
MARKER_FIELDS = (
    "format",
    "revision",
    "items",
    "kept",
    "written",
    "removed",
    "review_dropped",
    "failed_dropped",
    "review_kept",
    "failed_kept",
    "failed_when_cleaning",
    "keep_review",
    "keep_failed",
    "created",
    "files_root",
)

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
_RUN_COLUMNS = ("key", "shard", "status", "verdict", "reason", "content_sha256", "matches")


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
    failed_when_cleaning: int = 0  # kept by the scan, but gone, unreadable or unscreenable when copied
    keep_review: bool = False
    keep_failed: bool = False
    run_shards_not_in_source: list[str] = field(default_factory=list)
    created: str = ""
    files_root: str = ""  # of every file written but the marker (cleanset-merkle-v2), for attest

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


def _check_remote_out(out: str, sources: Sequence[Path | str], run: RunDir) -> None:
    """The rules of :func:`_check_out_dir` for an ``--out`` on a store, where folders are key prefixes: refuse one
    at, inside or above a source or the run, and one that holds anything (naming an earlier clean that did not
    finish: its upload stopped before the completion marker, so what is there is no cleaned dataset)."""
    remote = [str(storage.location(p)) for p in sources if isinstance(storage.location(p), str)]
    for where in [*remote, *([run.remote] if run.remote else [])]:
        if storage.overlaps(out, where):
            raise UserError(f"--out {out} overlaps {where}: write the cleaned dataset somewhere else")
    if storage.is_empty(out):
        return
    if storage.exists(storage.join(out, CLEAN_MARKER)):
        raise UserError(f"--out {out} already holds a cleaned dataset; write this one to a new or empty folder")
    raise UserError(
        f"--out {out} holds an unfinished clean (files but no {CLEAN_MARKER}: an earlier clean stopped while "
        "uploading) or other files; delete it, or write the cleaned dataset to a new or empty folder"
    )


def _shard_rows(items_dir: Path, shard: Shard) -> pa.Table:
    """One shard's rows, read on their own so memory follows the largest shard, not the run (LAION has billions)."""
    path = items_dir / f"{shard.id}.parquet"
    if not path.is_file():  # nothing recorded: every item the source holds will be unaccounted for
        return pa.table({c: pa.array([], pa.string()) for c in _RUN_COLUMNS[:6]})
    present = set(pq.read_schema(path).names)
    if "content_sha256" not in present:
        raise UserError(f"{path}: results without content digests (an older cleanset); scan again before cleaning")
    return pq.read_table(path, columns=[c for c in _RUN_COLUMNS if c in present])


def read_clean_marker(out: Path) -> dict[str, Any] | None:
    """The completion marker of a finished ``cleanset clean`` output, or None when there is none."""
    path = out / CLEAN_MARKER
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("spec") != MARKER_SPEC or marker.get("complete") is not True:
        return None
    return marker


def _temporary_out(out: Path) -> Path:
    """A hidden sibling of ``out``, this process's own, to build the copy in. Leftovers of killed cleans of the
    same --out are removed; a clean running now keeps its own (the first to finish takes --out, the other then
    finds it not empty and stops)."""
    prefix = f".{out.name}.cleanset-partial-"
    sweep_dead(out.parent, prefix)
    tmp = out.parent / f"{prefix}{os.getpid()}"
    if tmp.is_symlink() or tmp.is_file():
        tmp.unlink()
    elif tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _finish(tmp: Path, out: Path) -> None:
    """Rename the finished copy into place: ``out`` is either absent/empty or the complete cleaned dataset."""
    fsync_tree(tmp)
    if out.exists():
        try:
            out.rmdir()  # checked empty before anything was written
        except OSError:
            raise UserError(f"--out {out} was filled by something else (another clean?) while cleaning") from None
    os.rename(tmp, out)
    fsync_dir(out.parent)


def clean(
    sources: Sequence[Path | str],
    run: Path | str,
    out: Path | str,
    keep_review: bool = False,
    keep_failed: bool = False,
    format: str | None = None,
    on_shard: Callable[[Shard, int, int], None] | None = None,
) -> CleanReport:
    """Write the cleaned dataset to ``out`` and ``run/clean.json``; ``on_shard(shard, written, dropped)`` reports
    progress. Raises :class:`~cleanset.sources.base.ContentChanged` (and leaves no ``out``) when the data changed
    since the scan.

    Any of the three may be a URL (``cleanset.storage``). A remote ``out`` is built and checked in a local
    temporary folder exactly as a local one is, then uploaded with the completion marker last: a copy on the store
    without ``.cleanset-clean.json`` is not finished."""
    run_dir = RunDir.at(run)
    remote_out = out if isinstance(storage.location(out), str) else None
    if remote_out is not None:
        remote_out = str(storage.location(remote_out))
        _check_remote_out(remote_out, sources, run_dir)
        staging = Path(tempfile.mkdtemp(prefix="clean-", dir=storage.staging_root()))
        try:
            with _named_by_url(sources):
                report = _clean_local(
                    sources, run_dir, staging / "out", keep_review, keep_failed, format, on_shard, remote_out
                )
            storage.upload_tree(staging / "out", remote_out, last=[CLEAN_MARKER])
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        with _named_by_url(sources):
            report = _clean_local(sources, run_dir, Path(out), keep_review, keep_failed, format, on_shard, None)
    write_json_atomic(run_dir.path / CLEAN_JSON, report.to_json())
    run_dir.push(CLEAN_JSON)
    return report


@contextlib.contextmanager
def _named_by_url(sources: Sequence[Path | str]) -> Iterator[None]:
    """A source on a store is read from its local mirror, so the sources' own messages (a changed item, a missing
    shard) name mirror paths the user never typed; they are shown with the URL instead."""
    remote = [str(storage.location(p)) for p in sources if isinstance(storage.location(p), str)]
    try:
        yield
    except UserError as e:
        text = str(e)
        mirrors = sorted(((str(storage.mirror_path(u)), u) for u in remote), key=lambda m: -len(m[0]))
        for mirror, url in mirrors:
            text = text.replace(mirror, url)
        if text == str(e):
            raise
        try:
            renamed = type(e)(text)
        except TypeError:  # an error type with fields of its own: kept as it is
            raise e from None
        raise renamed from e


def _clean_local(
    sources: Sequence[Path | str],
    run_dir: RunDir,
    out: Path,
    keep_review: bool,
    keep_failed: bool,
    format: str | None,
    on_shard: Callable[[Shard, int, int], None] | None,
    shown_out: str | None,
) -> CleanReport:
    run = run_dir.path
    store, manifest, source, shards, ledger = _open_run(sources, run, format, run_dir.shown)
    _check_out_dir(out, [Path(p) for p in sources if not storage.is_url(p)], run)
    report, items_dir = _new_report(store, source, shards, sources, run, keep_review, keep_failed)
    report.out = shown_out or str(out.resolve())
    report.run = run_dir.remote or report.run
    source_ids = {s.id for s in shards}
    run_ids = {p.stem for p in items_dir.iterdir() if p.suffix == ".parquet"} if items_dir.is_dir() else set()
    report.run_shards_not_in_source = sorted(run_ids - source_ids)
    tmp = _temporary_out(out)
    try:
        removed_parts: list[pa.Table] = []
        for shard in shards:
            rows, unread, keep, dropped = _decide_shard(
                items_dir, shard, keep_review, keep_failed, report, source.item_content
            )
            keys = rows["key"].to_pylist()
            written = 0
            if unread:  # the scan could not list it: none of it is known to be clean, so it is left out whole
                unwritten = {k: "its shard could not be read in full by the scan" for k in keep}
            else:
                gate = CleanGate(
                    shard,
                    recorded=dict(zip(keys, rows["content_sha256"].to_pylist(), strict=True)),
                    keep=keep,
                    shard_digest=ledger[shard.id].get("source_sha256"),
                )
                written = source.write_clean(shard, gate, tmp)
                unwritten = gate.unwritten()
            report.written += written
            if unwritten:  # kept, but not written as screened: failed, counted and listed, never silent
                dropped = pa.concat_tables([dropped, _unwritten_rows(rows, unwritten)])
                failed_before = _failed_keys(rows, unwritten)  # kept with --keep-failed: counted there already
                report.kept -= len(unwritten)
                report.failed_kept -= len(failed_before)
                report.failed_dropped += len(unwritten)
                report.failed_when_cleaning += len(unwritten) - len(failed_before)
            if dropped.num_rows:
                removed_parts.append(dropped)
            if on_shard is not None:
                on_shard(shard, written, dropped.num_rows)
        removed = pa.concat_tables(removed_parts) if removed_parts else REMOVED_SCHEMA.empty_table()
        with atomic_output(tmp / REMOVED_FILE) as part:
            pq.write_table(removed, part)
        report.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # every byte written, so attest can refuse a copy that changed after the clean (also kept in RUN/clean.json)
        report.files_root = output_files_root(tmp, exclude=[CLEAN_MARKER])
        marker = {
            "spec": MARKER_SPEC,
            "complete": True,
            "run_fingerprint": manifest.get("fingerprint"),
            **{k: v for k, v in report.to_json().items() if k in MARKER_FIELDS},
            "source_options": reopen_options(manifest),  # how attest and verify must read the copy
        }
        write_json_atomic(tmp / CLEAN_MARKER, marker)
        _finish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def preview(
    sources: Sequence[Path | str],
    run: Path | str,
    keep_review: bool = False,
    keep_failed: bool = False,
    format: str | None = None,
) -> tuple[CleanReport, pa.Table]:
    """What :func:`clean` would leave out, by the same decisions and checks, writing nothing (``clean --dry-run``).

    Returns the report ``clean`` would write (``written`` stays 0: only writing tells which kept items have bytes)
    and the rows ``removed.parquet`` would hold. Reads the run's results and lists the source's shards, but no
    image: a preview of a large dataset costs seconds, and a clean that follows still checks every byte."""
    run_dir = RunDir.at(run)
    store, _manifest, source, shards, _ledger = _open_run(sources, run_dir.path, format, run_dir.shown)
    report, items_dir = _new_report(store, source, shards, sources, run_dir.path, keep_review, keep_failed)
    report.run = run_dir.remote or report.run
    parts = [
        _decide_shard(items_dir, shard, keep_review, keep_failed, report, source.item_content)[3] for shard in shards
    ]
    return report, pa.concat_tables(parts) if parts else REMOVED_SCHEMA.empty_table()


def _open_run(
    sources: Sequence[Path | str], run: Path, format: str | None, shown: str
) -> tuple[RunStore, dict[str, Any], Source, list[Shard], dict[str, dict[str, Any]]]:
    """The run, its manifest, the source read as the scan read it, its shards and the complete ledger. ``shown``
    names the run in messages: its URL for a run on a store, never the working copy the user did not name."""
    store = RunStore(run)
    manifest = store.manifest
    scanned_format = manifest.get("format")
    if format is not None and scanned_format and format != scanned_format:
        raise UserError(f"{shown} was scanned as {scanned_format!r}, not {format!r}")
    # The run's reading options (column names), not a joined image folder: clean writes the metadata rows.
    source: Source = open_source(sources, format or scanned_format, **reopen_options(manifest))
    shards = source.shards()
    return store, manifest, source, shards, _complete_ledger(store, shown, shards)


def _new_report(
    store: RunStore,
    source: Source,
    shards: Sequence[Shard],
    sources: Sequence[Path | str],
    run: Path,
    keep_review: bool,
    keep_failed: bool,
) -> tuple[CleanReport, Path]:
    """An empty report of a clean at the run's latest revision, and that revision's items folder."""
    revision = store.latest_revision()
    report = CleanReport(
        out="",
        format=source.name,
        sources=[storage.resolved(p) for p in sources],
        run=str(run.resolve()),
        revision=revision,
        shards=len(shards),
        keep_review=keep_review,
        keep_failed=keep_failed,
    )
    return report, store.revision_dir(revision) / "items"


def _complete_ledger(store: RunStore, run: str, shards: Sequence[Shard]) -> dict[str, dict[str, Any]]:
    """The run's ledger by shard; a shard of the source without an entry was never checked, so nothing is cleaned."""
    ledger = {str(e["shard"]): e for e in store.ledger()}
    missing = [s.id for s in shards if s.id not in ledger]
    if missing:
        raise UserError(
            f"{run} is incomplete: {len(missing)} of {len(shards)} shards of the source have no committed results "
            f"(first: {missing[0]}); run the same scan again to finish it before cleaning"
        )
    return ledger


def _decide_shard(
    items_dir: Path, shard: Shard, keep_review: bool, keep_failed: bool, report: CleanReport, item_content: bool
) -> tuple[pa.Table, bool, set[str], pa.Table]:
    """One shard's rows, whether the scan could not list it, the keys to keep and the dropped rows."""
    rows = _shard_rows(items_dir, shard)
    unread = marker_key(shard.id, "unread") in set(rows["key"].to_pylist())
    # A shard whose items the scan could not even list is left out whole: none of it is known to be clean.
    keep, dropped = _decide(rows, keep_review, keep_failed and not unread, report, item_content)
    return rows, unread, keep, dropped


def _decide(
    rows: pa.Table, keep_review: bool, keep_failed: bool, report: CleanReport, item_content: bool = True
) -> tuple[set[str], pa.Table]:
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
        # and one whose bytes the scan never read has no digest to check its copy against: it cannot be kept
        # (rows of a file checked as a whole carry none of their own)
        keepable = pc.and_(unmatched, pc.is_valid(rows["content_sha256"])) if item_content else unmatched
        # and a picture screening was asked for but never scored was read, yet not screened: never kept
        keep_mask = pc.or_(keep_mask, pc.and_(failed, pc.and_(keepable, _screened(rows["reason"]))))

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


def _failed_keys(rows: pa.Table, keys: dict[str, str]) -> set[str]:
    """Which of ``keys`` the scan itself recorded as failed."""
    picked = rows.filter(pc.is_in(rows["key"], value_set=pa.array(list(keys), pa.string())))
    return {k for k, st in zip(picked["key"].to_pylist(), picked["status"].to_pylist(), strict=True) if st == "failed"}


def _unwritten_rows(rows: pa.Table, unwritten: dict[str, str]) -> pa.Table:
    """``REMOVED_SCHEMA`` rows for kept items that clean could not write as screened."""
    picked = rows.filter(pc.is_in(rows["key"], value_set=pa.array(list(unwritten), pa.string())))
    keys = picked["key"].to_pylist()
    n = len(keys)
    matches = picked["matches"] if "matches" in picked.column_names else pa.nulls(n, pa.list_(MATCH_TYPE))
    table = pa.table(
        {
            "key": picked["key"],
            "shard": picked["shard"],
            "dropped_as": pa.array(["failed"] * n, pa.string()),
            "status": pa.array(["failed"] * n, pa.string()),
            "verdict": picked["verdict"],
            "reason": pa.array([f"clean: {unwritten[k]}" for k in keys], pa.string()),
            "banks": pa.array([[] for _ in keys], pa.list_(pa.string())),
            "matches": matches,
        }
    )
    return table.cast(REMOVED_SCHEMA)


def _pylist(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    return list(col.to_pylist())


def _screened(reasons: pa.ChunkedArray | pa.Array) -> pa.Array:
    """False where the failure is ``not-screened`` (the record's own code for it, whatever prefix the reason has)."""
    distinct = pc.unique(pc.fill_null(reasons, ""))
    ok = pa.array([failure_code(r) != "not-screened" for r in distinct.to_pylist()], pa.bool_())
    return ok.take(pc.index_in(pc.fill_null(reasons, ""), value_set=distinct))
