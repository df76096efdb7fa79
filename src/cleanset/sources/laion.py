"""LAION-style metadata Parquet: one row per image *URL* (``URL``, ``TEXT``, ...; optional ``md5``/``sha1``/
``sha256`` columns), screened without downloading anything.

Each row is an item keyed ``<shard>/<row>`` (row = position in the file as the scan read it). The position is used
rather than an id column because it is unique by construction and costs nothing to make for billions of rows; id
columns such as LAION's ``SAMPLE_ID`` travel along in ``meta``. ``clean`` records in the cleaned file's key-value
metadata which rows it kept (see :mod:`cleanset.sources._parquet`), and both readers take the row numbers from
there, so a cleaned copy reads back with the keys its rows were scanned under.

Columns are matched case-insensitively: the URL column is ``url_col`` (default ``url``), the caption
``caption_col`` (default ``caption``, else ``txt`` or ``text``), img2dataset's names for these options. A file
without the URL column (and without a given-hash column to screen by), or with a column that can hold bytes at
any depth (:func:`~cleanset.sources._parquet.holds_bytes`), is refused when the source is opened, naming the
columns it has: such rows could not be screened.

The scan reads only the URL and hash columns, so ``clean`` checks the text of every kept row (caption and any other
string, nested ones included) for an image spelled out as text (base64, hex...): such a row is not written and is
counted failed with the reason (see :func:`~cleanset.sources._parquet.text_findings`).

Given content hashes are lower-cased and validated (md5 32, sha1 40, sha256 64 hex digits); an empty value counts
as absent, a malformed one makes the row a failed item ("invalid md5 value in column 'MD5'") because a hash that
cannot be compared is a check that did not happen. A row with neither URL nor valid hash is failed ("no URL and
no content hash").

Rows hold no bytes of their own for ``clean`` to re-check, so the shard file is: each file is read into memory
once, its SHA-256 is :meth:`LaionSource.shard_digest` (recorded by the scan) and every row is parsed from those
bytes. ``write_clean`` reads the file the same way, has the gate compare the digest before writing anything, and
writes the kept rows from the very bytes it compared.

**Batch API for the pipeline** (the fast path; no Python object per row)::

    src = LaionSource(paths)            # or open_source(paths, "laion")
    for batch in src.read_batches(shard):   # pyarrow.RecordBatch of at most batch_size rows of one row group
        batch["key"]      # string, "<shard>/<row>"
        batch["row"]      # int64, row number in the file as the scan read it
        batch["url"]      # string or null
        batch["md5"], batch["sha1"], batch["sha256"]   # string, lower-case valid hex or null (always present)
        batch["error"]    # string or null: non-null rows are failed items with that reason

Row counts of all batches of a shard add up to the file's rows, an unreadable row group included (its rows come
with ``error`` set and null url/hashes). A file that vanished or whose footer cannot be read is one row keyed
``<shard>#missing`` / ``<shard>#unreadable`` with ``row`` -1 and ``error`` set.

``read()`` yields the same rows as ``SourceItem`` objects. When the source was opened with ``images=``
(img2dataset's output for this metadata), use ``read()``: rows whose URL was downloaded get the image bytes
there; ``batchable`` is False then. ``write_clean`` never joins them: it writes metadata rows only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.sources._files import atomic_output
from cleanset.sources._parquet import (
    CAPTION_NAMES,
    Chunk,
    ParquetShards,
    RangeBuilder,
    RowMap,
    compression_of,
    detect_parquet,
    find_column,
    image_columns,
    iter_chunks,
    require_column,
    scalar_columns,
    text_findings,
    writer_schema,
)
from cleanset.sources.base import SOURCES, CleanGate, Shard, Source, SourceItem, marker_key

GIVEN_HASHES: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64}
BATCH_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("url", pa.string()),
        *[pa.field(h, pa.string()) for h in GIVEN_HASHES],
        pa.field("error", pa.string()),
    ]
)
DEFAULT_BATCH = 1 << 16


@SOURCES.register("laion")
class LaionSource(Source):
    name = "laion"
    item_content = False  # rows of one file: clean checks the file (shard_digest), not each row

    def __init__(
        self,
        paths: Sequence[Path],
        images: Path | None = None,
        url_col: str | None = None,
        caption_col: str | None = None,
    ) -> None:
        self._files = ParquetShards.from_paths(paths, "laion (URL metadata)")
        self.url_col = url_col
        self.caption_col = caption_col
        self._digests: dict[str, str] = {}
        for path, schema in self._files.schemas():
            self._check_columns(path, schema)
        self.images = images
        self._index: Any = None
        if images is not None:
            from cleanset.sources.laion_join import ImageIndex

            self._index = ImageIndex.open(images)

    def _check_columns(self, path: Path, schema: pa.Schema) -> None:
        """Refuse, before anything is read, a file this source would not screen: rows without a URL column are
        all failed (or, read wrongly, not there at all), and bytes in any column (a struct field, a list, a map, a
        dictionary, a fixed-size binary) would be copied unchecked."""
        held = image_columns(schema)
        if held:
            names = ", ".join(repr(c.name) for c in held)
            raise UserError(
                f"{path} holds image bytes (column(s) {names}): scan it with --format parquet; the laion format "
                "screens URLs and given hashes only and would copy those bytes into the cleaned output unchecked"
            )
        if self.caption_col is not None:
            require_column(path, schema, "--caption-col", self.caption_col)
        if self.url_col is not None:
            require_column(path, schema, "--url-col", self.url_col)
        elif find_column(schema, "url") is None and not any(find_column(schema, h) for h in GIVEN_HASHES):
            raise UserError(
                f"{path}: no URL column (looked for 'url' in any case) and no md5/sha1/sha256 column; columns "
                f"found: {', '.join(schema.names) or '(none)'}; name the URL column with --url-col"
            )

    @property
    def batchable(self) -> bool:
        """True when ``read_batches`` carries everything about each row (no joined image bytes)."""
        return self.images is None

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return detect_parquet(paths, want_images=False)

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._files.files.items()]

    def item_counts(self) -> dict[str, int] | None:
        return self._files.item_counts()

    def shard_digest(self, shard: Shard) -> str | None:
        return self._digests.get(shard.id)

    def _open(self, shard: Shard) -> _Opened:
        """The shard's bytes, read once: their digest is what the scan records and what ``clean`` compares, and
        every row is parsed from these very bytes, so what was checked is what gets written."""
        path = Path(shard.path)
        self._digests.pop(shard.id, None)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError as err:
            return _Opened(None, None, RowMap(None), ("missing", f"shard vanished: {err}"))
        except OSError as err:
            return _Opened(None, None, RowMap(None), ("unreadable", f"unreadable Parquet: {err}"))
        digest = hashlib.sha256(data).hexdigest()
        self._digests[shard.id] = digest
        try:
            pf = pq.ParquetFile(pa.BufferReader(pa.py_buffer(data)))
            rows = RowMap.of(pf)
        except (OSError, pa.ArrowException, ValueError) as err:
            return _Opened(None, digest, RowMap(None), ("unreadable", f"unreadable Parquet: {err}"))
        return _Opened(pf, digest, rows, None)

    def read_batches(self, shard: Shard, batch_size: int = DEFAULT_BATCH) -> Iterator[pa.RecordBatch]:
        """The shard as :data:`BATCH_SCHEMA` record batches (see the module docstring)."""
        for batch, _chunk in self._batches(shard, batch_size, extra=False):
            yield batch

    def _batches(
        self, shard: Shard, batch_size: int, extra: bool, opened: _Opened | None = None
    ) -> Iterator[tuple[pa.RecordBatch, Chunk | None]]:
        """BATCH_SCHEMA batches with the chunk of the file they came from (all its columns when ``extra``)."""
        f = opened or self._open(shard)
        if f.pf is None:
            what, reason = f.marker or ("unreadable", "unreadable Parquet")
            yield _marker(shard, what, reason), None
            return
        schema = f.pf.schema_arrow
        url_col = find_column(schema, self.url_col or "url")
        hash_cols = {h: find_column(schema, h) for h in GIVEN_HASHES}
        wanted = [c for c in (url_col, *hash_cols.values()) if c is not None]
        prefix = f"{shard.id}/"
        name = Path(shard.path).name
        # all columns when the rows are wanted whole, or when none names a target (Arrow miscounts rows read
        # through no column at all; every row is then failed, by the footer's count)
        columns = None if extra or not wanted else wanted
        for chunk in iter_chunks(f.pf, name, columns=columns, batch_size=batch_size):
            rows = f.rows.rows(chunk.first, chunk.num_rows)
            if chunk.batch is None:
                yield _failed_rows(prefix, rows, chunk.error or "unreadable row group"), chunk
                continue
            yield _to_batch(chunk.batch, prefix, rows, url_col, hash_cols), chunk

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        f = self._open(shard)
        text_col: str | None = None
        meta_cols: list[str] = []
        if f.pf is not None:
            schema = f.pf.schema_arrow
            names = (self.caption_col,) if self.caption_col else CAPTION_NAMES
            text_col = find_column(schema, *names)
            meta_cols = scalar_columns(schema)
        for batch, chunk in self._batches(shard, DEFAULT_BATCH, extra=True, opened=f):
            cols = batch.to_pydict()
            part = chunk.batch if chunk is not None else None
            extra = {c: part.column(c).to_pylist() for c in meta_cols} if part is not None else {}
            captions = extra.get(text_col) if text_col is not None else None
            for j, key in enumerate(cols["key"]):
                meta: dict[str, Any] = {k: v[j] for k, v in extra.items() if v[j] is not None}
                if captions is not None and isinstance(captions[j], str):
                    meta["caption"] = captions[j]
                given = {h: cols[h][j] for h in GIVEN_HASHES if cols[h][j] is not None}
                item = SourceItem(key=key, url=cols["url"][j], meta=meta, given_hashes=given, error=cols["error"][j])
                if self._index is not None and item.error is None and item.url is not None:
                    self._index.attach(item)
                yield item

    def captions(self, shard: Shard, keys: Collection[str]) -> dict[str, str]:
        """Captions of a few rows by key (the flagged ones, for the report), reading the caption column of only the
        row groups that hold them: the column path screens without it, and most shards flag nothing."""
        f = self._open(shard)
        if f.pf is None or not keys:
            return {}
        names = (self.caption_col,) if self.caption_col else CAPTION_NAMES
        text_col = find_column(f.pf.schema_arrow, *names)
        prefix = f"{shard.id}/"
        wanted = [k for k in keys if k.startswith(prefix) and k[len(prefix) :].isdigit()]
        if text_col is None or not wanted:
            return {}
        md = f.pf.metadata
        pos = f.rows.positions(np.array([int(k[len(prefix) :]) for k in wanted], dtype=np.int64), md.num_rows)
        starts = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
        out: dict[str, str] = {}
        group = np.searchsorted(starts, pos, side="right") - 1
        for g in sorted({int(x) for x in group[pos >= 0]}):
            here = (group == g) & (pos >= 0)
            try:
                col = f.pf.read_row_group(g, columns=[text_col]).column(0)
            except (OSError, pa.ArrowException):
                continue  # its rows failed at the scan; no caption to show
            values = col.take(pa.array(pos[here] - starts[g])).to_pylist()
            for key, caption in zip(np.array(wanted, dtype=object)[here].tolist(), values, strict=True):
                if isinstance(caption, str):
                    out[key] = caption
        return out

    def write_clean(self, shard: Shard, gate: CleanGate, out_dir: Path) -> int:
        f = self._open(shard)
        if f.digest is not None:
            gate.check_shard(f.digest)
        if f.pf is None:
            what, reason = f.marker or ("unreadable", "unreadable Parquet")
            gate.admit(SourceItem(key=marker_key(shard.id, what), error=reason))
            return 0  # its marker item was failed: there is nothing readable to write
        path = Path(shard.path)
        final = out_dir / path.relative_to(self._files.root)
        kept_rows = RangeBuilder()
        written = 0
        pending: list[pa.RecordBatch] = []
        group = -1
        with (
            atomic_output(final) as tmp,
            pq.ParquetWriter(tmp, writer_schema(f.pf.schema_arrow), compression=compression_of(f.pf)) as w,
        ):
            for batch, chunk in self._batches(shard, DEFAULT_BATCH, extra=True, opened=f):
                failed = batch.column("error").is_valid().to_numpy(zero_copy_only=False)
                admitted = np.array(gate.admit_keys(batch.column("key").to_pylist(), failed.tolist()), dtype=np.bool_)
                if chunk is None:
                    continue
                if pending and chunk.row_group != group:
                    w.write_table(pa.Table.from_batches(pending))
                    pending = []
                group = chunk.row_group
                if chunk.batch is None or not admitted.any():
                    continue
                kept = chunk.batch.filter(pa.array(admitted))
                rows = batch.column("row").to_numpy()[admitted]
                spelled = text_findings(kept)  # columns the scan never read: checked here, vectorised
                if any(why is not None for why in spelled):
                    keys = batch.column("key").filter(pa.array(admitted)).to_pylist()
                    for key, why in zip(keys, spelled, strict=True):
                        if why is not None:
                            gate.drop(key, why)
                    clear = np.array([why is None for why in spelled], dtype=np.bool_)
                    kept, rows = kept.filter(pa.array(clear)), rows[clear]
                if not kept.num_rows:
                    continue
                pending.append(kept)
                kept_rows.add(rows)
                written += kept.num_rows
            if pending:
                w.write_table(pa.Table.from_batches(pending))
            w.add_key_value_metadata(kept_rows.metadata())
        return written


@dataclass
class _Opened:
    pf: pq.ParquetFile | None  # parsed from the bytes in memory; None when they are missing or unreadable
    digest: str | None  # SHA-256 of those bytes; None when there were none
    rows: RowMap
    marker: tuple[str, str] | None  # (what, reason) of the one failed marker row standing for the file


_POW10 = 10 ** np.arange(1, 19, dtype=np.int64)  # 10 .. 10**18: where the digit count of a row number grows


def _keys(prefix: str, rows: np.ndarray) -> pa.Array:
    """``<prefix><row>`` for ascending row numbers, written digit by digit into one byte matrix per digit count: no
    Python loop per row and no string kernel, because at 10 million rows the keys would otherwise cost more than
    the reading."""
    n = len(rows)
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    p = len(pre)
    cuts = [0, *np.searchsorted(rows, _POW10).tolist(), n]  # rows[cuts[d-1]:cuts[d]] have d digits
    dt = np.dtype(np.uint32 if n == 0 or int(rows[-1]) < 2**32 else np.uint64)  # 32-bit division: 5x faster
    ten = dt.type(10)
    parts: list[np.ndarray] = []
    widths = np.empty(n, dtype=np.int64)
    for d in range(1, len(cuts)):
        lo, hi = cuts[d - 1], cuts[d]
        if hi <= lo:
            continue
        mat = np.empty((hi - lo, p + d), dtype=np.uint8)
        mat[:, :p] = pre
        v: np.ndarray = rows[lo:hi].astype(dt)
        for k in range(d - 1, -1, -1):
            q = v // ten
            mat[:, p + k] = v - q * ten
            v = q
        mat[:, p:] += 48
        parts.append(mat.ravel())
        widths[lo:hi] = p + d
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(widths, out=offsets[1:])
    data = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint8)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def _failed_rows(prefix: str, rows: np.ndarray, reason: str) -> pa.RecordBatch:
    n = len(rows)
    nulls = pa.nulls(n, pa.string())
    err = pa.array(np.full(n, reason, dtype=object), pa.string())
    return pa.RecordBatch.from_arrays(
        [_keys(prefix, rows), pa.array(rows, pa.int64()), nulls, *[nulls] * len(GIVEN_HASHES), err],
        schema=BATCH_SCHEMA,
    )


def _marker(shard: Shard, what: str, reason: str) -> pa.RecordBatch:
    nulls = pa.nulls(1, pa.string())
    return pa.RecordBatch.from_arrays(
        [
            pa.array([marker_key(shard.id, what)], pa.string()),
            pa.array([-1], pa.int64()),
            nulls,
            *[nulls] * len(GIVEN_HASHES),
            pa.array([reason], pa.string()),
        ],
        schema=BATCH_SCHEMA,
    )


def _single_chunk(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.Array):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def _all_lower_hex(arr: pa.Array, length: int) -> bool:
    """True when every value is present and exactly ``length`` lower-case hex digits (one table lookup per byte)."""
    n = len(arr)
    if n == 0 or arr.null_count:
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    if int(offsets[-1] - offsets[0]) != n * length or not np.all(np.diff(offsets) == length):
        return False
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8, count=n * length, offset=int(offsets[0]))
    digit = np.subtract(data, 48, dtype=np.uint8) < 10  # wraps below '0', so one compare per range
    letter = np.subtract(data, 97, dtype=np.uint8) < 6
    return bool((digit | letter).all())


def _to_batch(
    part: pa.RecordBatch, prefix: str, rows: np.ndarray, url_col: str | None, hash_cols: dict[str, str | None]
) -> pa.RecordBatch:
    n = len(rows)
    keys = _keys(prefix, rows)
    nulls = pa.nulls(n, pa.string())
    if url_col is not None:
        url = _single_chunk(pc.cast(part[url_col], pa.string()))
        empty = pc.equal(url, "")
        if pc.any(empty).as_py():
            url = pc.if_else(empty, nulls, url)
    else:
        url = nulls
    errors: list[pa.Array] = []
    have_hash: pa.Array | None = None
    hashes: list[pa.Array] = []
    for h, length in GIVEN_HASHES.items():
        col = hash_cols[h]
        if col is None:
            hashes.append(nulls)
            continue
        raw = _single_chunk(pc.cast(part[col], pa.string()))
        if _all_lower_hex(raw, length):  # the usual case, checked on the raw bytes: no kernel, no copy
            have_hash = pc.is_valid(raw) if have_hash is None else pc.or_(have_hash, pc.is_valid(raw))
            hashes.append(raw)
            continue
        v = pc.ascii_trim_whitespace(pc.ascii_lower(raw))
        ok = pc.match_substring_regex(v, f"^[0-9a-f]{{{length}}}$")
        bad = pc.invert(pc.fill_null(ok, True))  # null stays absent, not bad
        empty = pc.equal(v, "")
        bad = pc.and_(bad, pc.invert(empty))
        if pc.any(empty).as_py() or pc.any(bad).as_py():
            v = pc.if_else(pc.or_(bad, empty), nulls, v)
        if pc.any(bad).as_py():
            errors.append(pc.if_else(bad, pa.scalar(f"invalid {h} value in column {col!r}"), nulls))
        have_hash = pc.is_valid(v) if have_hash is None else pc.or_(have_hash, pc.is_valid(v))
        hashes.append(v)
    no_target = pc.is_null(url) if have_hash is None else pc.and_(pc.is_null(url), pc.invert(have_hash))
    if pc.any(no_target).as_py():
        errors.append(pc.if_else(no_target, pa.scalar("no URL and no content hash"), nulls))
    error = errors[0] if errors else nulls
    for more in errors[1:]:
        error = pc.coalesce(error, more)
    return pa.RecordBatch.from_arrays([keys, pa.array(rows, pa.int64()), url, *hashes, error], schema=BATCH_SCHEMA)
