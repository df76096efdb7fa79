"""The column-wise path for URL metadata (LAION-style Parquet): billions of rows, no Python object per row.

The result is, row for row, what the per-item path gives (a test compares): the same hashes, probes, matches,
verdicts and failures. It gets there with column kernels (``urlhash``: the URL digests, written straight as hex)
and by matching exactly in two steps:

1. every probe value's first 64 bits are looked up, a whole batch at once, among the first 64 bits of all banks'
   values of its signal (exact signals only: a match needs equal values, so equal prefixes);
2. only rows with a prefix hit (real hits, allow-bank hits, and the rare prefix collision) go through
   ``cleanset.assess.assess_many`` like any item, so allow banks, entry ids, notes and the policy come from the one
   implementation. Every other row has no match and no score, so its verdict is the one ``assess.judge`` gives such
   a row, asked once per batch.

The path is chosen by capability, never by a source's name: a source whose ``batchable`` is true reads its shards
as Arrow record batches (``read_batches``) with the columns of ``BATCH_COLUMNS``; ``captions(shard, keys)`` is
optional.

URL normalisation is the signal's own (``cleanset.signals.url.normalize_url``); a URL already in normal form
(lower-case scheme and host, no port, no user info, a path, no fragment, plain printable ASCII) is recognised by a
byte scan over the column and used as is. Rows that do not fit it are normalised one by one, and fail as
``HashEngine.hash_url`` fails them (an empty URL, one that cannot be parsed).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanset.assess import assess_many, judge
from cleanset.pipeline import urlhash
from cleanset.pipeline.tasks import FLAGGED, GIVEN_SIGNALS
from cleanset.pipeline.urlhash import digest_column, hex_prefixes, interleave, normal_form_mask
from cleanset.records import Probe, Status
from cleanset.runs.schema import (
    COLUMN_PROBES,
    HASH_COLUMNS,
    ITEM_SCHEMA,
    MATCH_TYPE,
    PROBE_TYPE,
    SCREEN_COLUMNS,
    match_row,
)
from cleanset.signals import Input, default_signals, get_signal
from cleanset.sources.base import Shard, marker_key

if TYPE_CHECKING:
    from cleanset.pipeline.tasks import ProgressFn, ScanContext, Timings

# URL signals this column-wise path computes, with their hashlib digest algorithm: the default URL signals that
# are a plain digest of the normalised URL (url_md5, url_sha1; ``signals.url._UrlDigest.algorithm``).
URL_SIGNALS: dict[str, str] = {
    s: str(get_signal(s).algorithm)  # type: ignore[attr-defined]
    for s in default_signals(Input.URL)
    if hasattr(get_signal(s), "algorithm")
}

# A URL that normalize_url returns unchanged: lower-case scheme, "://", a lower-case host without user info or
# port, then a path of printable ASCII without "#" or space. (A trailing "?" is excluded separately: an empty query
# is dropped by normalisation.) ``urlhash.normal_form_mask`` applies it byte by byte; tests hold the two equal.
NORMAL_URL = r"^[a-z][a-z0-9+.\-]*://[a-z0-9.\-_~%!$&'()*+,;=]+/[!-\"$-~]*$"


# What a batchable source's record batches hold: the row's key and read error, its URL and any content hashes the
# metadata gives. A broken reader's marker row is built with these columns too.
BATCH_COLUMNS = pa.schema(
    [
        ("key", pa.string()),
        ("row", pa.int64()),
        ("error", pa.string()),
        ("url", pa.string()),
        *((sig, pa.string()) for sig in GIVEN_SIGNALS),
    ]
)


def applies(source: Any) -> bool:
    """A source that says every row's data is in its batch columns (URL metadata read without joined images), and
    can read them; which source it is does not matter."""
    return bool(getattr(source, "batchable", False)) and callable(getattr(source, "read_batches", None))


BITMAP_BITS = 24  # 2 MiB per signal: stays in cache; with a million entries ~6 % of rows reach the binary search


@dataclass
class Prefilter:
    """Sorted unique 64-bit prefixes of the blocking banks' values of one signal, and a bitmap over their top
    ``BITMAP_BITS`` bits: one cached lookup per row rules out most rows before the binary search."""

    prefixes: np.ndarray
    bitmap: np.ndarray

    @classmethod
    def build(cls, prefixes: np.ndarray) -> Prefilter:
        bitmap = np.zeros(1 << (BITMAP_BITS - 3), dtype=np.uint8)
        top = prefixes >> np.uint64(64 - BITMAP_BITS)
        np.bitwise_or.at(bitmap, (top >> np.uint64(3)).astype(np.int64), (1 << (top & np.uint64(7))).astype(np.uint8))
        return cls(prefixes, bitmap)

    def __len__(self) -> int:
        return len(self.prefixes)

    def hits(self, p: np.ndarray) -> np.ndarray:
        """Boolean mask of ``p`` (uint64 prefixes) present among the bank prefixes."""
        top = p >> np.uint64(64 - BITMAP_BITS)
        maybe = np.flatnonzero(
            self.bitmap[(top >> np.uint64(3)).astype(np.int64)] & (1 << (top & np.uint64(7))).astype(np.uint8)
        )
        out = np.zeros(len(p), dtype=bool)
        if len(maybe):
            q = p[maybe]
            pos = np.minimum(np.searchsorted(self.prefixes, q), len(self.prefixes) - 1)
            out[maybe[self.prefixes[pos] == q]] = True
        return out


@dataclass
class UrlPlan:
    """What the column path computes, and the prefilters of the blocking banks, built once per scan."""

    url_signals: tuple[str, ...]
    prefixes: dict[str, Prefilter]  # signal -> prefilter over all banks' values of that signal


def plan_for(ctx: ScanContext) -> UrlPlan:
    """Built once (in the parent, before workers fork, see ``scan.warm_up``) and kept on the context."""
    if ctx.url_plan is None:
        # what HashEngine.hash_url computes: the configured URL signals, or both when none is configured
        signals = tuple(s for s in ctx.engine.config.signals if s in URL_SIGNALS) or tuple(URL_SIGNALS)
        prefixes: dict[str, Prefilter] = {}
        for sig in (*signals, *GIVEN_SIGNALS):
            # allow banks too: a probe found only there still gets the matcher's "in allow bank" note
            parts = [_prefix64(np.asarray(s.values(sig))) for s in ctx.snapshots if sig in s.signals()]
            prefixes[sig] = Prefilter.build(_sorted_unique(parts))
        ctx.url_plan = UrlPlan(signals, prefixes)
        urlhash.warm_up()
    plan: UrlPlan = ctx.url_plan
    return plan


def _sorted_unique(parts: list[np.ndarray]) -> np.ndarray:
    """Sort + adjacent compare: several times faster than np.unique's hash path for millions of uint64."""
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    s = np.sort(np.concatenate(parts))
    keep = np.ones(len(s), dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


def _prefix64(rows: np.ndarray) -> np.ndarray:
    """First 8 bytes of each row as a big-endian integer (rows are at least 16 bytes for exact signals)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.uint64)
    return np.ascontiguousarray(rows[:, :8]).view(">u8").ravel().astype(np.uint64)


def scan_url_shard(shard: Shard, ctx: ScanContext, progress: ProgressFn | None, timings: Timings) -> pa.Table:
    plan = plan_for(ctx)
    tables: list[pa.Table] = []
    clock = time.process_time
    t = clock()
    for batch in _safe_batches(ctx.source, shard):
        t1 = clock()
        timings.read_s += t1 - t
        table = scan_batch(batch, shard, ctx, plan, timings)
        tables.append(table)
        if progress is not None:
            progress(table.num_rows, int(pc.sum(pc.equal(table["status"], "failed")).as_py() or 0))
        t = clock()
    timings.read_s += clock() - t
    if not tables:
        return ITEM_SCHEMA.empty_table()
    return _with_captions(pa.concat_tables(tables), shard, ctx.source)


def _with_captions(table: pa.Table, shard: Shard, source: Any) -> pa.Table:
    """Captions of the flagged rows, as the item path records them (``tasks.caption_of``): read afterwards, for
    those rows only, since the column path screens without the caption column."""
    flagged = pc.is_in(table["verdict"], value_set=pa.array(FLAGGED, pa.string()))
    keys = table.filter(pc.fill_null(flagged, False))["key"].to_pylist()
    captions = source.captions(shard, keys) if keys and hasattr(source, "captions") else {}
    if not captions:
        return table
    values = pa.array([captions.get(k) for k in table["key"].to_pylist()], pa.string())
    i = table.schema.get_field_index("caption")
    return table.set_column(i, table.schema.field(i), values)


def _safe_batches(source: Any, shard: Shard) -> Iterator[pa.RecordBatch]:
    """The source's batches; a reader that breaks mid-shard leaves one failed marker row, never a silent end."""
    it: Iterator[pa.RecordBatch] | None = None
    while True:
        try:
            if it is None:
                it = iter(source.read_batches(shard))
            batch = next(it)
        except StopIteration:
            return
        except Exception as e:
            row: dict[str, Any] = {f.name: None for f in BATCH_COLUMNS}
            row.update(key=marker_key(shard.id, "unread"), row=-1, error=f"read: reader stopped: {e}")
            yield pa.RecordBatch.from_pylist([row], schema=BATCH_COLUMNS)
            return
        yield batch


def normalized_urls(urls: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """``normalize_url`` over a string column, one Python call only for rows not already in normal form.

    Returns the normalised column and, by row, the failure reasons ``HashEngine.hash_url`` gives (an empty URL,
    one that cannot be parsed); failed rows keep their input in the column and must not be used.
    """
    from cleanset.signals.url import normalize_url

    fast = normal_form_mask(urls)
    if urls.null_count:
        fast &= urls.is_valid().to_numpy(zero_copy_only=False)
    slow = np.flatnonzero(~fast)
    failed: dict[int, str] = {}
    if len(slow) == 0:
        return urls, failed
    fixed: list[str] = []
    for row, u in zip(slow.tolist(), urls.take(pa.array(slow)).to_pylist(), strict=True):
        if not u or not u.strip():
            failed[row] = "url: empty URL"
            fixed.append(u or "")
            continue
        try:
            fixed.append(normalize_url(u))
        except ValueError as e:
            failed[row] = f"url: cannot parse: {e}"
            fixed.append(u)
    idx = np.arange(len(urls), dtype=np.int64)
    idx[slow] = len(urls) + np.arange(len(slow))
    return pa.concat_arrays([urls, pa.array(fixed, pa.string())]).take(pa.array(idx)), failed


def _scatter(values: pa.Array, rows: np.ndarray, n: int) -> pa.Array:
    """``values`` placed at ``rows`` of an n-long column, null elsewhere."""
    if len(rows) == n:  # every row (the common case): nothing to move
        return values
    idx = np.full(n, -1, dtype=np.int64)
    idx[rows] = np.arange(len(rows))
    return values.take(pa.array(idx, mask=idx < 0))


def _select(arr: pa.Array, rows: np.ndarray) -> pa.Array:
    return arr if len(rows) == len(arr) else arr.take(pa.array(rows))


def scan_batch(batch: pa.RecordBatch, shard: Shard, ctx: ScanContext, plan: UrlPlan, timings: Timings) -> pa.Table:
    t0 = time.process_time()
    n = batch.num_rows
    error = batch.column("error")
    read_ok = error.is_null().to_numpy(zero_copy_only=False)  # rows the source could read
    url = batch.column("url")
    url_rows = np.flatnonzero(read_ok & url.is_valid().to_numpy(zero_copy_only=False))
    # values per probe kind, in the per-item path's probe order: URL probes, then given content hashes
    kinds: list[str] = []
    columns: dict[str, pa.Array] = {}
    keys: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # kind -> (rows, 64-bit prefixes of their values)
    ok = read_ok.copy()  # rows whose status is ok: read, and their URL (if any) hashed
    if len(url_rows):
        norm_col, url_failed = normalized_urls(_select(url, url_rows))
        if url_failed:
            bad = np.fromiter(url_failed, dtype=np.int64, count=len(url_failed))
            reasons = pa.array(list(url_failed.values()), pa.string())
            ok[url_rows[bad]] = False
            error = pc.coalesce(error, _scatter(reasons, url_rows[bad], n))
            keep = np.ones(len(url_rows), dtype=bool)
            keep[bad] = False
            url_rows, norm_col = url_rows[keep], norm_col.filter(pa.array(keep))
        for sig in plan.url_signals:
            hexes, prefix = digest_column(norm_col, URL_SIGNALS[sig])
            kinds.append(sig)
            columns[sig] = _scatter(hexes, url_rows, n)
            keys[sig] = (url_rows, prefix)
    for sig in GIVEN_SIGNALS:
        col = batch.column(sig)
        rows = np.flatnonzero(read_ok & col.is_valid().to_numpy(zero_copy_only=False))
        if len(rows) == 0:
            continue
        kinds.append(sig)
        values = _select(col, rows)
        columns[sig] = _scatter(values, rows, n)
        if len(plan.prefixes.get(sig, ())):
            keys[sig] = (rows, hex_prefixes(values))
    t1 = time.process_time()
    timings.hash_s += t1 - t0

    # step 1: prefix prefilter
    cand = np.zeros(n, dtype=bool)
    for sig, (rows, prefix) in keys.items():
        pre = plan.prefixes.get(sig)
        if pre is None or len(pre) == 0 or len(rows) == 0:
            continue
        cand[rows[pre.hits(prefix)]] = True
    cand_rows = np.flatnonzero(cand)
    # step 2: candidates through assess, exactly as the per-item path; the rest get the verdict assess gives a row
    # that is read and matches nothing (asked here, so a policy that changes it changes this path too)
    unmatched, _ = judge(Status.OK, (), None, ctx.policy)
    verdict = pc.if_else(
        pa.array(ok), pa.scalar(None if unmatched is None else str(unmatched)), pa.scalar(None, pa.string())
    )
    match_counts = np.zeros(n, dtype=np.int32)
    note_counts = np.zeros(n, dtype=np.int32)
    match_rows: list[dict[str, Any]] = []
    note_rows: list[str] = []
    rule_counts = np.zeros(n, dtype=np.int32)
    rule_rows: list[str] = []
    if len(cand_rows):
        cols = {k: columns[k].take(pa.array(cand_rows)).to_pylist() for k in kinds}
        probe_lists = [
            [Probe(k, k, cols[k][j]) for k in kinds if cols[k][j] is not None] for j in range(len(cand_rows))
        ]
        statuses = [Status.OK if ok[row] else Status.FAILED for row in cand_rows]
        assessed = assess_many(probe_lists, ctx.matcher, ctx.policy, statuses=statuses)
        vs = verdict.to_pylist()
        for row, a in zip(cand_rows, assessed, strict=True):
            vs[row] = None if a.verdict is None else str(a.verdict)
            match_counts[row] = len(a.matches)
            note_counts[row] = len(a.notes)
            match_rows += [match_row(m) for m in a.matches]
            note_rows += a.notes
            rule_counts[row] = len(a.rules)
            rule_rows += a.rules
        verdict = pa.array(vs, pa.string())
    t2 = time.process_time()
    timings.match_s += t2 - t1
    table = _assemble(
        batch,
        shard,
        ok,
        error,
        kinds,
        columns,
        verdict,
        match_counts,
        match_rows,
        note_counts,
        note_rows,
        (rule_counts, rule_rows),
    )
    timings.decide_s += time.process_time() - t2
    return table


def _list_column(counts: np.ndarray, values: pa.Array, type_: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=type_)


def _assemble(
    batch: pa.RecordBatch,
    shard: Shard,
    ok: np.ndarray,
    error: pa.Array,
    kinds: list[str],
    columns: dict[str, pa.Array],
    verdict: pa.Array,
    match_counts: np.ndarray,
    match_rows: list[dict[str, Any]],
    note_counts: np.ndarray,
    note_rows: list[str],
    rules: tuple[np.ndarray, list[str]] | None = None,
) -> pa.Table:
    n = batch.num_rows
    nulls = pa.nulls(n, pa.string())
    # probes: row-major over (row, kind), only where the kind has a value for the row; a kind whose values are a
    # hash column is not stored again (runs.schema.COLUMN_PROBES; readers put those probes back)
    kinds = [k for k in kinds if k not in COLUMN_PROBES]
    if kinds:
        present = np.stack([columns[k].is_valid().to_numpy(zero_copy_only=False) for k in kinds], axis=1)
        _, ks = np.nonzero(present)
        flat = interleave([columns[k] for k in kinds], present)
        names = pa.array(kinds, pa.string()).take(pa.array(ks))
        values = pa.StructArray.from_arrays(
            [names, names, flat, pa.nulls(len(flat), pa.int16())], fields=list(PROBE_TYPE)
        )
        probes = _list_column(present.sum(axis=1).astype(np.int32), values, pa.list_(PROBE_TYPE))
    else:
        probes = _list_column(np.zeros(n, np.int32), pa.array([], PROBE_TYPE), pa.list_(PROBE_TYPE))
    matches = _list_column(match_counts, pa.array(match_rows, MATCH_TYPE), pa.list_(MATCH_TYPE))
    notes = _list_column(note_counts, pa.array(note_rows, pa.string()), pa.list_(pa.string()))
    rule_counts, rule_rows = rules if rules is not None else (np.zeros(n, np.int32), [])
    fired = _list_column(rule_counts, pa.array(rule_rows, pa.string()), pa.list_(pa.string()))
    no_lists = _list_column(np.zeros(n, np.int32), pa.array([], pa.string()), pa.list_(pa.string()))
    scores_type = ITEM_SCHEMA.field("scores").type
    scores = pa.MapArray.from_arrays(
        pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string()), pa.array([], pa.float32())
    ).cast(scores_type)
    cols: dict[str, pa.Array] = {
        "key": batch.column("key"),
        "shard": pa.repeat(pa.scalar(shard.id, pa.string()), n),
        "status": pc.if_else(pa.array(ok), pa.scalar("ok"), pa.scalar("failed")),
        "reason": error,
        "verdict": verdict,
        **{c: columns.get(c, nulls) for c in HASH_COLUMNS},
        "pdq_quality": pa.nulls(n, pa.int16()),
        "width": pa.nulls(n, pa.int32()),
        "height": pa.nulls(n, pa.int32()),
        "format": nulls,
        "url": batch.column("url"),
        "caption": nulls,  # flagged rows' captions are read afterwards (_with_captions)
        "content_sha256": nulls,  # rows have no bytes of their own: clean checks the shard file's digest
        "probes": probes,
        "matches": matches,
        "scores": scores,
        "notes": notes,
        "rules": fired,
        "text_lists": no_lists,  # the column path does not screen captions (a screened scan takes the item path)
        **{c: pa.nulls(n, pa.float32()) for c in SCREEN_COLUMNS},
    }
    return pa.Table.from_arrays([cols[f.name] for f in ITEM_SCHEMA], schema=ITEM_SCHEMA)
