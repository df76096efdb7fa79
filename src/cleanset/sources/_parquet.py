"""Parquet plumbing shared by the image-bytes and LAION metadata sources.

A shard is one file. It is read in bounded batches (``iter_batches`` within one row group at a time) so that
neither a huge row group nor a huge cell decides how much memory a worker needs, and so that a damaged row group
costs only its own rows, which are still named (failed, with the reason) because every group's row count is in
the footer.

Rows keep their identity through ``clean``: a cleaned file records, in its key-value metadata under
:data:`SOURCE_ROWS_KEY`, the row numbers its rows had in the file the scan read (``[[start, stop], ...]``, stop
exclusive). Reading a file that carries it gives every row the key it had when it was scanned.

Everything ``clean`` copies is screened or cannot hold an image: every column that can hold bytes
(:func:`holds_bytes`) is screened cell by cell, text is checked for an image written out as text
(:func:`text_findings`), and schema and field metadata pass only as text that cannot spell one
(:func:`safe_metadata`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.sources._files import common_root, expand_paths, listed_files, shard_id_for
from cleanset.sources.base import EMBEDDED_IMAGE_PATTERNS, SHORTEST_EMBEDDED_RUN, text_may_embed_image

BINARY_IMAGE_NAMES = ("jpg", "jpeg", "png", "webp", "image", "img", "image_bytes", "bytes")
CAPTION_NAMES = ("caption", "txt", "text")  # the caption column when none is named, first found wins
SOURCE_ROWS_KEY = b"cleanset.source_rows"
SOURCE_KEYS_KEY = b"cleanset.source_keys"  # {position: key} of rows whose scan key the file's values do not give
CELL_LIMIT = 256 << 20  # a larger cell is a failed item: it is never copied into Python to be screened
BATCH_BYTES = 64 << 20  # uncompressed bytes a batch of image rows aims at (from the footer's sizes)
MAX_BATCH_ROWS = 64  # footer sizes can understate decoded ones (dictionary pages): rows bound a batch too
MIN_IMAGE_BYTES = 64  # a shorter bytes value cannot hold a picture: not a part to screen


def find_column(schema: pa.Schema, *names: str) -> str | None:
    """The schema's column matching one of ``names`` case-insensitively (first name wins): LAION writes ``URL``."""
    lower = {n.lower(): n for n in schema.names}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _is_bytes(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t))


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _holds(t: pa.DataType, leaf: Callable[[pa.DataType], bool]) -> bool:
    """Whether a value of type ``t`` can hold, at any depth, a value for which ``leaf`` is true."""
    if leaf(t):
        return True
    if isinstance(t, pa.ExtensionType):
        return _holds(t.storage_type, leaf)
    if pa.types.is_dictionary(t):
        return _holds(t.value_type, leaf)
    if pa.types.is_run_end_encoded(t):
        return _holds(t.value_type, leaf)
    if pa.types.is_struct(t) or pa.types.is_union(t):
        return any(_holds(t.field(i).type, leaf) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _holds(t.key_type, leaf) or _holds(t.item_type, leaf)
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return _holds(t.value_type, leaf)
    return False


def holds_bytes(t: pa.DataType) -> bool:
    """Whether a column of type ``t`` can carry raw bytes anywhere inside it (struct fields, list elements, map keys
    and items, union members, dictionary values, fixed-size binary): bytes that are copied are bytes that must be
    screened, whatever the column is called and however deep they sit."""
    return _holds(t, lambda x: _is_bytes(x) or pa.types.is_fixed_size_binary(x))


def holds_text(t: pa.DataType) -> bool:
    """Whether a column of type ``t`` can carry text anywhere inside it: text can spell an image out (base64...)."""
    return _holds(t, _is_text)


def _bytes_field(t: pa.DataType) -> int | None:
    """Index of the binary ``bytes`` field of a Hugging Face image struct (``{bytes, path}``), else None."""
    if not pa.types.is_struct(t):
        return None
    i = t.get_field_index("bytes")
    return i if i >= 0 and _is_bytes(t.field(i).type) else None


def byte_values(name: str, value: Any, out: list[tuple[str, bytes]]) -> None:
    """Every bytes value inside a cell's Python value, named by where it sits (``col[1][0]``, ``col.field``; a
    Hugging Face struct's ``bytes`` field keeps the struct's own name). Map entries are (key, item) pairs."""
    if isinstance(value, bytes):
        out.append((name, value))
    elif isinstance(value, dict):
        for k, v in value.items():
            byte_values(name if k == "bytes" else f"{name}.{k}", v, out)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            byte_values(f"{name}[{i}]", v, out)


@dataclass(frozen=True)
class ImageColumn:
    """A column that can hold bytes (see :func:`holds_bytes`): every bytes value in its cells is screened."""

    name: str

    def cells(self, arr: pa.Array, keep_small: bool = False) -> list[list[tuple[str, bytes]]]:
        """Per row, the bytes values of its cell as (part name, bytes). Values shorter than
        :data:`MIN_IMAGE_BYTES` are left out unless ``keep_small``: no picture fits in them (a 16-byte
        ``fixed_size_binary`` md5 column is a hash, not an image), so screening them would only fail the row."""
        out: list[list[tuple[str, bytes]]] = []
        for v in arr.to_pylist():
            found: list[tuple[str, bytes]] = []
            byte_values(self.name, v, found)
            out.append([(n, b) for n, b in found if len(b) >= (1 if keep_small else MIN_IMAGE_BYTES)])
        return out


def image_columns(schema: pa.Schema) -> list[ImageColumn]:
    """Every column that can hold bytes, in schema order."""
    return [ImageColumn(f.name) for f in schema if holds_bytes(f.type)]


def image_column(schema: pa.Schema) -> tuple[str, bool] | None:
    """(column, is_struct) of the primary image bytes: a Hugging Face ``{bytes, path}`` struct, else a binary
    column with an image-like name (``jpg``, ``image``...)."""
    for f in schema:
        if _bytes_field(f.type) is not None:
            return f.name, True
    for want in BINARY_IMAGE_NAMES:
        for f in schema:
            if f.name.lower() == want and _is_bytes(f.type):
                return f.name, False
    return None


def read_schema(path: Path) -> pa.Schema | None:
    try:
        return pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return None


@dataclass(frozen=True)
class ParquetShards:
    root: Path
    files: dict[str, Path]  # shard id -> file

    def item_counts(self) -> dict[str, int] | None:
        """Rows per shard from the footers (one row, one item), for an ETA before anything is read."""
        try:
            return {sid: pq.read_metadata(f).num_rows for sid, f in self.files.items()}
        except (OSError, pa.ArrowException):
            return None

    @classmethod
    def from_paths(cls, paths: Sequence[Path], what: str) -> ParquetShards:
        expanded = expand_paths(paths)
        files = listed_files(expanded, ".parquet")
        others = [p for p in expanded if p.is_file() and not p.name.lower().endswith(".parquet")]
        if others:
            raise UserError(f"not a Parquet file: {others[0]}")
        if not files:
            raise UserError(f"no .parquet files for a {what} source in {', '.join(map(str, expanded))}")
        root = common_root(files)
        out: dict[str, Path] = {}
        for f in files:
            sid = shard_id_for(f, root)
            if sid in out:
                raise UserError(f"Parquet file {f} is listed twice")
            out[sid] = f.resolve()
        return cls(root, out)

    def schemas(self) -> Iterator[tuple[Path, pa.Schema]]:
        """Each readable file's schema; damaged files are reported per shard when read, not here."""
        for f in self.files.values():
            schema = read_schema(f)
            if schema is not None:
                yield f, schema


def require_column(path: Path, schema: pa.Schema, option: str, name: str) -> str:
    """The column a user named (case-insensitively); a UserError naming the columns there are when it is absent."""
    found = find_column(schema, name)
    if found is None:
        raise UserError(
            f"{path}: no column {name!r} (given as {option}); columns found: {', '.join(schema.names) or '(none)'}"
        )
    return found


def detect_parquet(paths: Sequence[Path], want_images: bool) -> bool:
    """All listed Parquet files (and no tar shards) have, or all lack, an image column; laion also needs a URL."""
    if listed_files(paths, ".tar"):
        return False
    files = listed_files(paths, ".parquet")
    if not files:
        return False
    readable = 0
    for f in files:
        schema = read_schema(f)
        if schema is None:
            continue  # damaged files are reported per shard, not guessed from
        readable += 1
        has_image = bool(image_columns(schema))
        if want_images != has_image:
            return False
        if not want_images and find_column(schema, "url") is None:
            return False
    return readable > 0


# --- rows: where each row of a file came from -----------------------------------------------------------------


class RowMap:
    """Row number (as the scan knew it) of each position in a file: the position itself, or what the file's
    :data:`SOURCE_ROWS_KEY` metadata records. Kept as ranges, so a billion-row file costs its ranges only."""

    def __init__(self, ranges: np.ndarray | None) -> None:
        self._ranges = ranges  # (R, 2) int64 [start, stop), ascending and disjoint; None: identity
        if ranges is not None:
            lengths = ranges[:, 1] - ranges[:, 0]
            self._ends = np.cumsum(lengths)
            self._firsts = self._ends - lengths

    def positions(self, rows: np.ndarray, num_rows: int) -> np.ndarray:
        """Position in the file of each row number (int64), -1 for a row the file does not hold."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._ranges is None:
            return np.where((rows >= 0) & (rows < num_rows), rows, -1)
        k = np.searchsorted(self._ranges[:, 0], rows, side="right") - 1
        ok = (k >= 0) & (rows < self._ranges[np.maximum(k, 0), 1])
        return np.where(ok, self._firsts[np.maximum(k, 0)] + rows - self._ranges[np.maximum(k, 0), 0], -1)

    @classmethod
    def of(cls, pf: pq.ParquetFile) -> RowMap:
        """From the file's metadata; ValueError when it is there but does not describe the file's rows."""
        kv = pf.metadata.metadata or {}
        raw = kv.get(SOURCE_ROWS_KEY)
        if raw is None:
            return cls(None)
        try:
            pairs = json.loads(raw)
            ranges = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        except (ValueError, TypeError) as err:
            raise ValueError(f"malformed {SOURCE_ROWS_KEY.decode()} metadata: {err}") from None
        starts, stops = ranges[:, 0], ranges[:, 1]
        if len(ranges) and (
            starts[0] < 0 or np.any(stops <= starts) or np.any(starts[1:] < stops[:-1])
        ):  # rows must rise strictly, so the keys they make stay unique
            raise ValueError(f"{SOURCE_ROWS_KEY.decode()} metadata holds overlapping or unordered ranges")
        if int((stops - starts).sum()) != pf.metadata.num_rows:
            raise ValueError(
                f"{SOURCE_ROWS_KEY.decode()} metadata names {int((stops - starts).sum())} rows, "
                f"the file holds {pf.metadata.num_rows}"
            )
        return cls(ranges)

    def rows(self, first: int, n: int) -> np.ndarray:
        """Row numbers of positions ``first .. first + n - 1`` (int64), ascending."""
        pos = np.arange(first, first + n, dtype=np.int64)
        if self._ranges is None or n == 0:
            return pos
        k = np.searchsorted(self._ends, pos, side="right")
        return self._ranges[k, 0] + (pos - self._firsts[k])


class RangeBuilder:
    """The kept rows' numbers, gathered batch by batch in ascending order, as compact ``[[start, stop], ...]``."""

    def __init__(self) -> None:
        self._ranges: list[list[int]] = []

    def add(self, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = rows[np.concatenate(([0], breaks))].tolist()
        stops = (rows[np.concatenate((breaks - 1, [len(rows) - 1]))] + 1).tolist()
        if self._ranges and self._ranges[-1][1] == starts[0]:
            self._ranges[-1][1] = stops[0]
            starts, stops = starts[1:], stops[1:]
        self._ranges.extend([a, b] for a, b in zip(starts, stops, strict=True))

    def metadata(self) -> dict[bytes, bytes]:
        return {SOURCE_ROWS_KEY: json.dumps(self._ranges, separators=(",", ":")).encode()}


def safe_metadata(md: dict[bytes, bytes] | None) -> dict[bytes, bytes]:
    """The key-value metadata a cleaned file may carry: only UTF-8 text that cannot spell an image out. The writer
    copies it unscreened, so anything else (binary values, a base64 run, Arrow's own serialised schema, which the
    writer makes afresh) is left out, as is a stale row record (:data:`SOURCE_ROWS_KEY`, :data:`SOURCE_KEYS_KEY`)."""
    out: dict[bytes, bytes] = {}
    for k, v in (md or {}).items():
        if k in (SOURCE_ROWS_KEY, SOURCE_KEYS_KEY):
            continue
        try:
            texts = (k.decode("utf-8"), v.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        if all(text_may_embed_image(t) is None for t in texts):
            out[k] = v
    return out


def _safe_field(f: pa.Field) -> pa.Field:
    """``f`` with :func:`safe_metadata` applied to it and to every field nested in it. A name is copied as it is,
    so a name that could carry an image written as text is refused."""
    embedded = text_may_embed_image(f.name)
    if embedded is not None:
        raise UserError(f"a column name may embed an image ({embedded}): it would be copied unscreened")
    t = f.type
    if pa.types.is_struct(t):
        t = pa.struct([_safe_field(t.field(i)) for i in range(t.num_fields)])
    elif pa.types.is_list(t):
        t = pa.list_(_safe_field(t.value_field))
    elif pa.types.is_large_list(t):
        t = pa.large_list(_safe_field(t.value_field))
    elif pa.types.is_fixed_size_list(t):
        t = pa.list_(_safe_field(t.value_field), t.list_size)
    elif pa.types.is_map(t):
        t = pa.map_(_safe_field(t.key_field), _safe_field(t.item_field), t.keys_sorted)
    return pa.field(f.name, t, f.nullable, safe_metadata(f.metadata) or None)


def writer_schema(schema: pa.Schema) -> pa.Schema:
    """A file's schema (as stored, see :func:`open_encoded`) for its cleaned copy, with only the metadata
    :func:`safe_metadata` lets through, at the file's level and every field's."""
    return pa.schema([_safe_field(f) for f in schema], metadata=safe_metadata(schema.metadata) or None)


# --- reading in bounded batches --------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Consecutive rows of one row group: ``batch`` holds them, or is None when they could not be read."""

    row_group: int
    group_first: int  # position in the file of the row group's first row
    first: int  # position in the file of the chunk's first row
    num_rows: int
    batch: pa.RecordBatch | None
    error: str | None = None


def batch_rows(pf: pq.ParquetFile, row_group: int) -> int:
    """Rows per batch so a batch holds about :data:`BATCH_BYTES` uncompressed bytes by the footer's sizes, and at
    most :data:`MAX_BATCH_ROWS`."""
    md = pf.metadata.row_group(row_group)
    per_row = max(md.total_byte_size / max(md.num_rows, 1), sum(_fixed_bytes(f.type) for f in pf.schema_arrow))
    return int(max(1, min(MAX_BATCH_ROWS, BATCH_BYTES // max(per_row, 1))))


def _fixed_bytes(t: pa.DataType) -> int:
    """Bytes every row of a column of type ``t`` takes decoded whatever the footer says: fixed-size values (a
    ``fixed_size_binary`` of 20 MB costs that much per row even when dictionary pages store it once)."""
    if pa.types.is_fixed_size_binary(t):
        return int(t.byte_width)
    if pa.types.is_struct(t):
        return sum(_fixed_bytes(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_fixed_size_list(t):
        return int(t.list_size) * _fixed_bytes(t.value_type)
    return 0


def iter_chunks(
    pf: pq.ParquetFile, name: str, columns: Sequence[str] | None = None, batch_size: int | None = None
) -> Iterator[Chunk]:
    """Every row of the file, in order, in chunks of at most ``batch_size`` rows (by default sized from the footer
    to :data:`BATCH_BYTES`). Rows a damaged row group does not give are one failed chunk; the row counts always
    add up to the footer's, so no row is dropped and none is made up."""
    md = pf.metadata
    first = 0
    cols = list(columns) if columns is not None else None
    for i in range(md.num_row_groups):
        n = md.row_group(i).num_rows
        size = batch_size or batch_rows(pf, i)
        done = 0
        error: str | None = None
        it: Iterator[pa.RecordBatch] | None = None
        while done < n:
            try:
                if it is None:
                    it = iter(pf.iter_batches(batch_size=size, row_groups=[i], columns=cols, use_threads=False))
                batch = next(it, None)
            except (OSError, pa.ArrowException) as err:
                error = f"unreadable row group {i} of {name}: {err}"
                break
            if batch is None:
                error = f"unreadable row group {i} of {name}: it holds {done} rows, the footer says {n}"
                break
            if batch.num_rows == 0:
                continue
            if batch.num_rows > n - done:
                error = f"unreadable row group {i} of {name}: it holds more rows than the footer's {n}"
                batch = batch.slice(0, n - done)
            yield Chunk(i, first, first + done, batch.num_rows, batch)
            done += batch.num_rows
        if done < n:
            yield Chunk(i, first, first + done, n - done, None, error)
        first += n


def compression_of(pf: pq.ParquetFile) -> str:
    md = pf.metadata
    if md.num_row_groups and md.row_group(0).num_columns:
        c = str(md.row_group(0).column(0).compression).lower()
        return c if c in {"snappy", "gzip", "brotli", "zstd", "lz4", "none"} else "snappy"
    return "snappy"


# --- cell sizes ------------------------------------------------------------------------------------------------


def cell_bytes(arr: pa.Array) -> np.ndarray:
    """Per row, the bytes its binary and string values hold at any depth, summed (int64): what decoding the cell
    costs, found from offsets and from dictionary values' lengths, so a giant cell is measured without being
    expanded or copied. Parquet holds no unions, so they count 0."""
    t = arr.type
    n = len(arr)
    out = np.zeros(n, dtype=np.int64)
    if n == 0:
        return out
    if pa.types.is_dictionary(t):
        sizes = cell_bytes(arr.dictionary)
        idx = pc.fill_null(arr.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(arr.is_valid().to_numpy(zero_copy_only=False), sizes[idx], 0) if len(sizes) else out
    if isinstance(t, pa.ExtensionType):
        return cell_bytes(arr.storage)
    if pa.types.is_fixed_size_binary(t):
        return np.where(arr.is_valid().to_numpy(zero_copy_only=False), t.byte_width, 0).astype(np.int64)
    if _is_bytes(t) or _is_text(t):
        lengths = pc.binary_length(arr)
        return pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            out += cell_bytes(arr.field(i))
        return out
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        if size:
            child = cell_bytes(arr.values.slice(arr.offset * size, n * size))
            out = child.reshape(n, size).sum(axis=1)
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offs = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        base = int(offs[0])
        offs -= base
        child = np.concatenate(([0], np.cumsum(cell_bytes(arr.values.slice(base, int(offs[-1]))))))
        return (child[offs[1:]] - child[offs[:-1]]).astype(np.int64)
    return out


def row_bytes(batch: pa.RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """Per row, (its largest cell's bytes, the column index of that cell): see :func:`cell_bytes`."""
    n = batch.num_rows
    sizes = np.zeros(n, dtype=np.int64)
    widest = np.zeros(n, dtype=np.int64)
    for i in range(batch.num_columns):
        s = cell_bytes(batch.column(i))
        widest[s > sizes] = i
        np.maximum(sizes, s, out=sizes)
    return sizes, widest


def bounded(chunk: Chunk, limit: int = BATCH_BYTES) -> Iterator[Chunk]:
    """``chunk`` in consecutive slices whose rows decode to at most ``limit`` bytes together (a row over it alone;
    rows over :data:`CELL_LIMIT` count nothing, they are failed undecoded): the file's footer may understate what
    its rows hold, and a dictionary-encoded cell costs its full size once decoded."""
    batch = chunk.batch
    if batch is None or batch.num_rows <= 1:
        yield chunk
        return
    total = np.zeros(batch.num_rows, dtype=np.int64)
    for i in range(batch.num_columns):
        s = cell_bytes(batch.column(i))
        total += np.where(s > CELL_LIMIT, 0, s)
    start, acc = 0, 0
    for j, size in enumerate(total.tolist()):
        if j > start and acc + size > limit:
            n = j - start
            yield Chunk(chunk.row_group, chunk.group_first, chunk.first + start, n, batch.slice(start, n))
            start, acc = j, 0
        acc += size
    n = batch.num_rows - start
    yield Chunk(chunk.row_group, chunk.group_first, chunk.first + start, n, batch.slice(start, n))


def open_encoded(path: Path) -> tuple[pq.ParquetFile, pa.Schema]:
    """The file opened so that its byte and text columns read as dictionaries, and its schema as stored: a value
    repeated through a dictionary page is held once until :func:`decode` expands a bounded slice of rows. Without
    this, a few kilobytes of file decode to gigabytes (one 20 MB dictionary value named by every row)."""
    plain = pq.ParquetFile(path)
    schema = plain.schema_arrow
    leaves = [plain.schema.column(i) for i in range(len(plain.schema))]
    paths = [c.path for c in leaves if c.physical_type == "BYTE_ARRAY" and str(c.logical_type) != "Decimal"]
    if not paths:
        return plain, schema
    try:
        encoded = pq.ParquetFile(path, read_dictionary=paths)
    except (OSError, pa.ArrowException, KeyError):
        return plain, schema
    plain.close()
    return encoded, schema


def decode(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch read through :func:`open_encoded` with the file's own types again (dictionaries expanded)."""
    if batch.schema.equals(schema):
        return batch
    cols = [_cast(batch.column(i), schema.field(i).type) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def _cast(arr: pa.Array, t: pa.DataType) -> pa.Array:
    if arr.type.equals(t):
        return arr
    try:
        return arr.cast(t)
    except pa.ArrowNotImplementedError:  # no direct cast (dictionary to a view type): through the value types
        return arr.cast(_undictionary(arr.type)).cast(t)


def _undictionary(t: pa.DataType) -> pa.DataType:
    """``t`` with every dictionary type replaced by its value type."""
    if pa.types.is_dictionary(t):
        return _undictionary(t.value_type)
    if pa.types.is_struct(t):
        return pa.struct([t.field(i).with_type(_undictionary(t.field(i).type)) for i in range(t.num_fields)])
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_undictionary(t.value_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_undictionary(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_undictionary(t.value_type)), t.list_size)
    if pa.types.is_map(t):
        return pa.map_(
            t.key_field.with_type(_undictionary(t.key_type)),
            t.item_field.with_type(_undictionary(t.item_type)),
            t.keys_sorted,
        )
    return t


# --- text that may spell an image ------------------------------------------------------------------------------

_PATTERNS = list(EMBEDDED_IMAGE_PATTERNS.items())
# Patterns whose shortest match is SHORTEST_EMBEDDED_RUN characters (see text_may_embed_image): tried on long values
# only, since most text is a caption; every other pattern is tried on every value.
_RUN_PATTERNS = frozenset({"a base64 run", "wrapped base64", "hex-encoded bytes", "a byte array"})


def text_hits(arr: pa.Array) -> np.ndarray:
    """Per row, the index in :data:`EMBEDDED_IMAGE_PATTERNS` of a pattern some text in the cell matches at any
    depth, else -1 (int64): whole columns at once, in RE2, so a clean of many rows stays vectorised."""
    t = arr.type
    n = len(arr)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0 or not holds_text(t):
        return out
    if pa.types.is_dictionary(t):
        sub = text_hits(arr.dictionary)
        idx = pc.fill_null(arr.indices, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(arr.is_valid().to_numpy(zero_copy_only=False), sub[idx], -1) if len(sub) else out
    if isinstance(t, pa.ExtensionType):
        return text_hits(arr.storage)
    if _is_text(t):
        a = arr.cast(pa.large_string()) if pa.types.is_string_view(t) else arr
        lengths = pc.fill_null(pc.binary_length(a), 0).to_numpy(zero_copy_only=False)
        long = np.flatnonzero(lengths >= SHORTEST_EMBEDDED_RUN)
        for i in range(len(_PATTERNS) - 1, -1, -1):  # the first pattern that matches names the row
            rx = _PATTERNS[i][1]
            if _PATTERNS[i][0] not in _RUN_PATTERNS:
                m = pc.fill_null(pc.match_substring_regex(a, rx), False).to_numpy(zero_copy_only=False)
                out[m] = i
            elif len(long):  # the run patterns need more text than a caption has: only long values are tried
                sub = a.take(pa.array(long))
                m = pc.fill_null(pc.match_substring_regex(sub, rx), False).to_numpy(zero_copy_only=False)
                out[long[m]] = i
        return out
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            child = text_hits(arr.field(i))
            out = np.where(out < 0, child, out)
        return out
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        if size:
            out = text_hits(arr.values.slice(arr.offset * size, n * size)).reshape(n, size).max(axis=1)
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offs = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        child = text_hits(arr.values.slice(0, offs[-1]))[offs[0] :]
        rows = np.flatnonzero(offs[1:] > offs[:-1])
        if len(rows):
            out[rows] = np.maximum.reduceat(child, offs[:-1][rows] - offs[0])
        return out
    # anything else that holds text (a union, a run-end encoded column): value by value
    for j, v in enumerate(arr.to_pylist()):
        found = [w for s in _texts(v) if (w := text_may_embed_image(s)) is not None]
        if found:
            out[j] = next(i for i, (what, _rx) in enumerate(_PATTERNS) if what == found[0])
    return out


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def text_findings(batch: pa.RecordBatch) -> list[str | None]:
    """Per row, why it may carry an image spelled out as text ("column 'txt' may embed an image (a base64 run);
    not screened"), or None: such a cell would reach the cleaned copy without any decoder having seen it."""
    out: list[str | None] = [None] * batch.num_rows
    for i, f in enumerate(batch.schema):
        if not holds_text(f.type):
            continue
        hits = text_hits(batch.column(i))
        for j in np.flatnonzero(hits >= 0).tolist():
            if out[j] is None:
                out[j] = f"column {f.name!r} may embed an image ({_PATTERNS[int(hits[j])][0]}); not screened"
    return out


# --- row digests -----------------------------------------------------------------------------------------------

_NULL = b"\x00"
_VALID = b"\x01"
Pieces = list[bytes | memoryview]


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _lp(raw: bytes) -> bytes:
    return _u64(len(raw)) + raw


def _fixed_width(t: pa.DataType) -> int | None:
    """Bytes per value of a type whose values are one fixed-size little-endian slot in the data buffer."""
    if (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
        or pa.types.is_interval(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        bits = int(t.bit_width)
        return bits // 8 if bits % 8 == 0 else None
    return None


def encode_column(arr: pa.Array) -> list[Pieces]:
    """Per row, an unambiguous byte encoding of its value for this column's type: a null/valid tag, then raw
    bytes with their length (binary, UTF-8 strings), the fixed-size value slot (numbers, times, decimals), or the
    children in order (struct fields; list elements after their count). Binary and string values are views of
    Arrow's buffers, never copies."""
    t = arr.type
    n = len(arr)
    if n == 0:
        return []
    if pa.types.is_dictionary(t):
        return encode_column(arr.dictionary_decode())
    if isinstance(t, pa.ExtensionType):
        return encode_column(arr.storage)
    if pa.types.is_string_view(t):
        return encode_column(arr.cast(pa.large_string()))
    if pa.types.is_binary_view(t):
        return encode_column(arr.cast(pa.large_binary()))
    if pa.types.is_run_end_encoded(t):
        return encode_column(pc.run_end_decode(arr))
    if pa.types.is_null(t):
        return [[_NULL] for _ in range(n)]
    valid: list[bool] | None = None
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False).tolist()
    out: list[Pieces]
    if pa.types.is_binary(t) or pa.types.is_string(t) or pa.types.is_large_binary(t) or pa.types.is_large_string(t):
        wide = pa.types.is_large_binary(t) or pa.types.is_large_string(t)
        bufs = arr.buffers()
        offs = np.frombuffer(
            bufs[1], dtype=np.int64 if wide else np.int32, count=n + 1, offset=arr.offset * (8 if wide else 4)
        ).tolist()
        data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
        out = [[_VALID + _u64(offs[j + 1] - offs[j]), data[offs[j] : offs[j + 1]]] for j in range(n)]
    elif pa.types.is_boolean(t):
        flags = pc.fill_null(arr, False).to_numpy(zero_copy_only=False).tolist()
        out = [[b"\x01\x01" if f else b"\x01\x00"] for f in flags]
    elif (w := _fixed_width(t)) is not None:
        raw = bytes(memoryview(arr.buffers()[1])[arr.offset * w : (arr.offset + n) * w])
        out = [[_VALID + raw[j * w : (j + 1) * w]] for j in range(n)]
    elif pa.types.is_struct(t):
        children = [encode_column(arr.field(i)) for i in range(t.num_fields)]
        out = []
        for j in range(n):
            row: Pieces = [_VALID]
            for c in children:
                row.extend(c[j])
            out.append(row)
    elif pa.types.is_fixed_size_list(t):
        size = t.list_size
        child = encode_column(arr.values.slice(arr.offset * size, n * size))
        out = []
        for j in range(n):
            row = [_VALID + _u64(size)]
            for elem in child[j * size : (j + 1) * size]:
                row.extend(elem)
            out.append(row)
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t):
        offs = arr.offsets.to_numpy(zero_copy_only=False).tolist()
        child = encode_column(arr.values.slice(0, offs[-1]))
        out = []
        for j in range(n):
            a, b = offs[j], offs[j + 1]
            row = [_VALID + _u64(b - a)]
            for elem in child[a:b]:
                row.extend(elem)
            out.append(row)
    else:  # unions and other rare types: Arrow's own rendering of the value
        out = [[_VALID + _lp(arr.slice(j, 1).to_string().encode())] for j in range(n)]
    if valid is not None:
        for j in range(n):
            if not valid[j]:
                out[j] = [_NULL]
    return out


class RowDigester:
    """SHA-256 of each whole row as the file holds it: every column in schema order, after a header naming the
    columns and their types, so a row whose caption, URL or any cell changed gets another digest."""

    def __init__(self, schema: pa.Schema) -> None:
        self.header = b"cleanset.parquet-row.v1\n" + b"".join(
            _lp(f.name.encode("utf-8", "surrogatepass")) + _lp(str(f.type).encode()) for f in schema
        )

    def digests(self, batch: pa.RecordBatch) -> list[str]:
        cols = [encode_column(batch.column(i)) for i in range(batch.num_columns)]
        out: list[str] = []
        for j in range(batch.num_rows):
            h = hashlib.sha256(self.header)
            for c in cols:
                for piece in c[j]:
                    h.update(piece)
            out.append(h.hexdigest())
        return out


def scalar_columns(schema: pa.Schema) -> list[str]:
    """Columns whose values are plain text, numbers or flags: the ones copied into an item's ``meta``."""
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_integer(f.type)
        or pa.types.is_floating(f.type)
        or pa.types.is_boolean(f.type)
    ]
