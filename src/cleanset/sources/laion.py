"""LAION-style metadata Parquet: one row per image *URL* (``URL``, ``TEXT``, ...; optional ``md5``/``sha1``/
``sha256`` columns), screened without downloading anything.

Each row is an item keyed ``<shard>/<row>`` (row = position in the file). The position is used rather than an id
column because it is unique by construction and costs nothing to make for billions of rows; id columns such as
LAION's ``SAMPLE_ID`` travel along in ``meta``. Column names are matched case-insensitively.

Given content hashes are lower-cased and validated (md5 32, sha1 40, sha256 64 hex digits); an empty value counts
as absent, a malformed one makes the row a failed item ("invalid md5 value in column 'MD5'") because a hash that
cannot be compared is a check that did not happen. A row with neither URL nor valid hash is failed ("no URL and
no content hash").

**Batch API for the pipeline** (the fast path; no Python object per row)::

    src = LaionSource(paths)            # or open_source(paths, "laion")
    for batch in src.read_batches(shard):   # pyarrow.RecordBatch per row group (or per batch_size rows)
        batch["key"]      # string, "<shard>/<row>"
        batch["row"]      # int64, row position in the file
        batch["url"]      # string or null
        batch["md5"], batch["sha1"], batch["sha256"]   # string, lower-case valid hex or null (always present)
        batch["error"]    # string or null: non-null rows are failed items with that reason

Row counts of all batches of a shard add up to the file's rows, an unreadable row group included (its rows come
with ``error`` set and null url/hashes). A file that vanished or whose footer cannot be read is one row keyed
``<shard>#missing`` / ``<shard>#unreadable`` with ``row`` -1 and ``error`` set.

``read()`` yields the same rows as ``SourceItem`` objects. When the source was opened with ``images=``
(img2dataset's output for this metadata), use ``read()``: rows whose URL was downloaded get the image bytes
there; ``batchable`` is False then.

``write_clean`` writes the same file names with the same schema and only the kept rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.sources._files import atomic_output
from cleanset.sources._parquet import ParquetShards, compression_of, detect_parquet, find_column
from cleanset.sources.base import SOURCES, Shard, Source, SourceItem, UnaccountedItem, marker_key

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

    def __init__(self, paths: Sequence[Path], images: Path | None = None) -> None:
        self._files = ParquetShards.from_paths(paths, "laion (URL metadata)")
        self.images = images
        self._index: Any = None
        if images is not None:
            from cleanset.sources.laion_join import ImageIndex

            self._index = ImageIndex.open(images)

    @property
    def batchable(self) -> bool:
        """True when ``read_batches`` carries everything about each row (no joined image bytes)."""
        return self.images is None

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return detect_parquet(paths, want_images=False)

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._files.files.items()]

    def row_count(self, shard: Shard) -> int | None:
        """Rows in the shard from its footer, or None when the footer cannot be read."""
        try:
            return int(pq.ParquetFile(shard.path).metadata.num_rows)
        except (OSError, pa.ArrowException):
            return None

    def read_batches(self, shard: Shard, batch_size: int = DEFAULT_BATCH) -> Iterator[pa.RecordBatch]:
        """The shard as :data:`BATCH_SCHEMA` record batches (see the module docstring)."""
        for batch, _extra in self._batches(shard, batch_size, extra=False):
            yield batch

    def _batches(self, shard: Shard, batch_size: int, extra: bool) -> Iterator[tuple[pa.RecordBatch, pa.Table | None]]:
        path = Path(shard.path)
        try:
            pf = pq.ParquetFile(path)
        except FileNotFoundError as err:
            yield _marker(shard, "missing", f"shard vanished: {err}"), None
            return
        except (OSError, pa.ArrowException) as err:
            yield _marker(shard, "unreadable", f"unreadable Parquet: {err}"), None
            return
        schema = pf.schema_arrow
        url_col = find_column(schema, "url")
        hash_cols = {h: find_column(schema, h) for h in GIVEN_HASHES}
        wanted = [c for c in (url_col, *hash_cols.values()) if c is not None]
        prefix = pa.scalar(f"{shard.id}/")
        first = 0
        for i in range(pf.metadata.num_row_groups):
            n_rows = pf.metadata.row_group(i).num_rows
            try:
                table = pf.read_row_group(i, columns=None if extra else wanted)
                if table.num_rows != n_rows:
                    raise pa.ArrowInvalid(f"row group holds {table.num_rows} rows, footer says {n_rows}")
            except (OSError, pa.ArrowException) as err:
                for start in range(0, n_rows, batch_size):
                    n = min(batch_size, n_rows - start)
                    reason = f"unreadable row group {i} of {path.name}: {err}"
                    yield _failed_rows(prefix, first + start, n, reason), None
                first += n_rows
                continue
            for start in range(0, n_rows, batch_size):
                part = table.slice(start, batch_size)
                yield _to_batch(part, prefix, first + start, url_col, hash_cols), part if extra else None
            first += n_rows

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        text_col: str | None = None
        with contextlib.suppress(OSError, pa.ArrowException):
            text_col = find_column(pq.read_schema(shard.path), "text", "caption", "txt")
        for batch, table in self._batches(shard, DEFAULT_BATCH, extra=True):
            cols = batch.to_pydict()
            extra = table.to_pydict() if table is not None else {}
            captions = extra.get(text_col) if text_col is not None else None
            for j, key in enumerate(cols["key"]):
                meta: dict[str, Any] = {k: v[j] for k, v in extra.items() if isinstance(v[j], str | int | float | bool)}
                if captions is not None and isinstance(captions[j], str):
                    meta["caption"] = captions[j]
                given = {h: cols[h][j] for h in GIVEN_HASHES if cols[h][j] is not None}
                item = SourceItem(key=key, url=cols["url"][j], meta=meta, given_hashes=given, error=cols["error"][j])
                if self._index is not None and item.error is None and item.url is not None:
                    self._index.attach(item)
                yield item

    def write_clean(self, shard: Shard, keep: set[str], out_dir: Path, expect: Collection[str] | None = None) -> int:
        path = Path(shard.path)
        try:
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as err:
            markers = {marker_key(shard.id, "missing"), marker_key(shard.id, "unreadable")}
            if expect is None or markers & set(expect):
                return 0  # its marker item was failed; there is nothing readable to write
            raise UnaccountedItem(
                f"shard {shard.id} ({path}) cannot be read ({err}) and the run never recorded that"
            ) from err
        n_rows = pf.metadata.num_rows
        keep_rows = _rows_of(keep, shard.id, n_rows)
        if expect is not None:
            have = _rows_of(expect, shard.id, n_rows)
            if not have.all():
                missing = int(np.flatnonzero(~have)[0])
                raise UnaccountedItem(
                    f"shard {shard.id} ({path}) holds item '{shard.id}/{missing}' that the run never recorded; "
                    "the dataset changed since the scan: scan it again before cleaning"
                )
        final = out_dir / path.relative_to(self._files.root)
        written = 0
        first = 0
        with (
            atomic_output(final) as tmp,
            pq.ParquetWriter(tmp, pf.schema_arrow, compression=compression_of(pf)) as w,
        ):
            for i in range(pf.metadata.num_row_groups):
                n = pf.metadata.row_group(i).num_rows
                mask = keep_rows[first : first + n]
                first += n
                if not mask.any():
                    continue
                try:
                    table = pf.read_row_group(i)
                except (OSError, pa.ArrowException):
                    continue  # its rows were failed; there is nothing readable to keep
                kept = table.filter(pa.array(mask))
                w.write_table(kept)
                written += kept.num_rows
        return written


def _rows_of(keys: Collection[str], shard_id: str, n_rows: int) -> np.ndarray:
    """Boolean row mask of the keys ``<shard_id>/<row>`` among ``keys`` (other keys are ignored)."""
    prefix = f"{shard_id}/"
    rows = [int(k[len(prefix) :]) for k in keys if k.startswith(prefix) and k[len(prefix) :].isdigit()]
    mask = np.zeros(n_rows, dtype=bool)
    idx = np.asarray(rows, dtype=np.int64)
    mask[idx[(idx >= 0) & (idx < n_rows)]] = True
    return mask


def _keys(prefix: pa.Scalar, first: int, n: int) -> tuple[pa.Array, pa.Array]:
    """``<prefix><row>`` strings written digit by digit into one byte matrix per digit count: no Python loop per
    row and no string kernel, because at 10 million rows the keys would otherwise cost more than the reading."""
    rows_np = np.arange(first, first + n, dtype=np.int64)
    pre = np.frombuffer(prefix.as_py().encode(), dtype=np.uint8)
    p = len(pre)
    parts: list[np.ndarray] = []
    widths = np.empty(n, dtype=np.int64)
    pos = 0
    while pos < n:
        d = len(str(int(rows_np[pos])))
        end = min(n, max(pos + 1, 10**d - first))  # rows with d digits
        block = rows_np[pos:end]
        mat = np.empty((end - pos, p + d), dtype=np.uint8)
        mat[:, :p] = pre
        dt = np.dtype(np.uint32 if first + n < 2**32 else np.uint64)  # 32-bit division by a constant: 5x faster
        v: np.ndarray = block.astype(dt)
        ten = dt.type(10)
        for k in range(d - 1, -1, -1):
            q = v // ten
            mat[:, p + k] = v - q * ten
            v = q
        mat[:, p:] += 48
        parts.append(mat.ravel())
        widths[pos:end] = p + d
        pos = end
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(widths, out=offsets[1:])
    data = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint8)
    keys = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return keys, pa.array(rows_np)


def _failed_rows(prefix: pa.Scalar, first: int, n: int, reason: str) -> pa.RecordBatch:
    keys, rows = _keys(prefix, first, n)
    nulls = pa.nulls(n, pa.string())
    err = pa.array(np.full(n, reason, dtype=object), pa.string())
    return pa.RecordBatch.from_arrays([keys, rows, nulls, *[nulls] * len(GIVEN_HASHES), err], schema=BATCH_SCHEMA)


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


def _single_chunk(col: pa.ChunkedArray) -> pa.Array:
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
    part: pa.Table, prefix: pa.Scalar, first: int, url_col: str | None, hash_cols: dict[str, str | None]
) -> pa.RecordBatch:
    n = part.num_rows
    keys, rows = _keys(prefix, first, n)
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
    return pa.RecordBatch.from_arrays([keys, rows, url, *hashes, error], schema=BATCH_SCHEMA)
