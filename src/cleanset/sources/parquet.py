"""Parquet files holding image bytes: img2dataset's ``output_format=parquet`` and Hugging Face ``image`` columns.

img2dataset (``ParquetSampleWriter``) writes one row per attempted sample: ``key``, ``jpg`` (binary; null for a
failed download), ``txt`` and the metadata columns (``url``, ``status``, ``error_message``, ``width``, ...).
Hugging Face datasets store an ``image`` struct ``{bytes, path}``, sometimes several (``image``,
``edited_image``) or lists of them.

One item per row. Every image-bearing column is screened (:func:`cleanset.sources._parquet.image_columns`: binary,
Hugging Face image structs, lists of either), because ``clean`` writes whole rows and a row is only as clean as
its least-checked cell: the primary image column (:func:`~cleanset.sources._parquet.image_column`) gives
``data``, every other non-empty image cell a part named ``<column>`` or ``<column>[i]``. A row whose primary cell
is null but that holds other images is screened by those. ``digest`` is the SHA-256 of the whole row (every cell,
see :class:`~cleanset.sources._parquet.RowDigester`), so ``clean`` refuses a row whose caption, URL or any cell
changed since the scan.

Key: the ``key`` column when present and non-null, else ``<shard>/<row>`` (row = position in the file as the scan
read it: a cleaned file carries its rows' original numbers, so re-reading it gives the same keys). A repeated key
within a file gets ``#2``, ``#3``... (never a key already used in the file, see
:class:`~cleanset.sources._files.UniqueKeys`) so every row stays addressable. A row without image bytes is a
URL-only item when it has a URL, else a failed item. A cell larger than
:data:`~cleanset.sources._parquet.CELL_LIMIT` fails its row without being copied. An unreadable row group yields
one failed item per row it holds (keys from the ``key`` column when that column alone still reads), an unreadable
footer one failed marker item ``<shard>#unreadable``.

Files are read in bounded batches whatever their row-group size, and ``write_clean`` streams the same way: the
same file names, schema and schema metadata, the kept rows of each input row group together (split when they pass
:data:`ROW_GROUP_BYTES`), and the kept rows' numbers in the file's key-value metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.sources._files import UniqueKeys, atomic_output
from cleanset.sources._parquet import (
    CELL_LIMIT,
    Chunk,
    ImageColumn,
    ParquetShards,
    RangeBuilder,
    RowDigester,
    RowMap,
    cell_bytes,
    compression_of,
    detect_parquet,
    find_column,
    image_column,
    image_columns,
    iter_chunks,
    require_column,
    scalar_columns,
    writer_schema,
)
from cleanset.sources.base import SOURCES, CleanGate, Shard, Source, SourceItem, marker_key

ROW_GROUP_BYTES = 64 << 20  # kept rows buffered before an output row group is written
CAPTION_NAMES = ("txt", "caption", "text")


@dataclass
class _Layout:
    """Where a file keeps what an item needs, found once from its schema."""

    images: list[ImageColumn]  # the primary image column first, then the others in schema order
    primary: ImageColumn | None
    key_col: str | None
    url_col: str | None
    cap_col: str | None
    meta_cols: list[str]
    digester: RowDigester

    @classmethod
    def of(cls, schema: pa.Schema, url_col: str | None, caption_col: str | None) -> _Layout:
        images = image_columns(schema)
        found = image_column(schema)
        primary = next((c for c in images if found is not None and c.name == found[0] and not c.listed), None)
        if primary is not None:
            images = [primary, *(c for c in images if c is not primary)]
        key_col = find_column(schema, "key")
        if key_col is not None:
            t = schema.field(key_col).type
            if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)):
                key_col = None  # not a key we can print; rows are keyed by position
        return cls(
            images=images,
            primary=primary,
            key_col=key_col,
            url_col=find_column(schema, url_col or "url"),
            cap_col=find_column(schema, caption_col) if caption_col else find_column(schema, *CAPTION_NAMES),
            meta_cols=scalar_columns(schema),
            digester=RowDigester(schema),
        )


@dataclass
class _File:
    pf: pq.ParquetFile
    layout: _Layout
    rows: RowMap


@SOURCES.register("parquet")
class ParquetImageSource(Source):
    name = "parquet"

    def __init__(self, paths: Sequence[Path], url_col: str | None = None, caption_col: str | None = None) -> None:
        self._files = ParquetShards.from_paths(paths, "parquet (image bytes)")
        self.url_col = url_col
        self.caption_col = caption_col
        if url_col is not None or caption_col is not None:
            for path, schema in self._files.schemas():
                if url_col is not None:
                    require_column(path, schema, "--url-col", url_col)
                if caption_col is not None:
                    require_column(path, schema, "--caption-col", caption_col)

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return detect_parquet(paths, want_images=True)

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._files.files.items()]

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        opened = self._open(shard)
        if isinstance(opened, SourceItem):
            yield opened
            return
        try:
            for _chunk, items in self._chunks(shard, opened):
                yield from items
        finally:
            opened.pf.close()

    def _open(self, shard: Shard) -> _File | SourceItem:
        """The opened file, or the one failed marker item standing for a file that cannot be read at all."""
        path = Path(shard.path)
        try:
            pf = pq.ParquetFile(path)
            schema = pf.schema_arrow
        except FileNotFoundError as err:
            return SourceItem(key=marker_key(shard.id, "missing"), error=f"shard vanished: {err}")
        except (OSError, pa.ArrowException) as err:
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet: {err}")
        try:
            rows = RowMap.of(pf)
        except ValueError as err:
            pf.close()
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet {path.name}: {err}")
        layout = _Layout.of(schema, self.url_col, self.caption_col)
        if not layout.images:
            pf.close()
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"no image column in {path.name}")
        return _File(pf, layout, rows)

    def _chunks(self, shard: Shard, f: _File) -> Iterator[tuple[Chunk, list[SourceItem]]]:
        unique = UniqueKeys()
        for chunk in iter_chunks(f.pf, Path(shard.path).name):
            yield chunk, self._items(chunk, f, shard, unique)

    def _keys(self, chunk: Chunk, f: _File, shard: Shard, unique: UniqueKeys) -> list[str]:
        rows = f.rows.rows(chunk.first, chunk.num_rows).tolist()
        given: list[Any] = [None] * chunk.num_rows
        if f.layout.key_col is not None:
            if chunk.batch is not None:
                given = chunk.batch.column(f.layout.key_col).to_pylist()
            else:
                given = self._keys_of_broken_chunk(f, chunk) or given
        return [unique(str(g) if g is not None else f"{shard.id}/{r}") for g, r in zip(given, rows, strict=True)]

    @staticmethod
    def _keys_of_broken_chunk(f: _File, chunk: Chunk) -> list[Any] | None:
        """The ``key`` column of rows whose group is damaged elsewhere: it often still reads on its own."""
        assert f.layout.key_col is not None
        try:
            col = f.pf.read_row_group(chunk.row_group, columns=[f.layout.key_col]).column(0)
            values: list[Any] = col.slice(chunk.first - chunk.group_first, chunk.num_rows).to_pylist()
        except (OSError, pa.ArrowException):
            return None
        return values if len(values) == chunk.num_rows else None

    def _items(self, chunk: Chunk, f: _File, shard: Shard, unique: UniqueKeys) -> list[SourceItem]:
        keys = self._keys(chunk, f, shard, unique)
        if chunk.batch is None:
            return [SourceItem(key=k, error=chunk.error) for k in keys]
        try:
            return self._row_items(chunk.batch, keys, f.layout)
        except (OSError, pa.ArrowException, ValueError) as err:  # a value Arrow cannot hand over: fail the rows
            return [SourceItem(key=k, error=f"unreadable rows in {Path(shard.path).name}: {err}") for k in keys]

    def _row_items(self, batch: pa.RecordBatch, keys: list[str], layout: _Layout) -> list[SourceItem]:
        n = batch.num_rows
        sizes = np.zeros(n, dtype=np.int64)
        widest = np.full(n, -1, dtype=np.int64)
        for i in range(batch.num_columns):
            s = cell_bytes(batch.column(i))
            widest[s > sizes] = i
            np.maximum(sizes, s, out=sizes)
        big = sizes > CELL_LIMIT
        ok = np.flatnonzero(~big)
        sub = batch if len(ok) == n else batch.take(pa.array(ok))
        digests = layout.digester.digests(sub)
        cells = [c.cells(sub.column(c.name)) for c in layout.images]
        urls = sub.column(layout.url_col).to_pylist() if layout.url_col else [None] * len(ok)
        meta_cols = {c: sub.column(c).to_pylist() for c in layout.meta_cols}
        primary_empty = [False] * len(ok)
        paths: list[Any] = [None] * len(ok)
        if layout.primary is not None:
            primary_empty, paths = _primary_extras(sub.column(layout.primary.name), layout.primary)
        items: list[SourceItem] = []
        k = 0
        for j in range(n):
            if big[j]:
                col = batch.schema.field(int(widest[j])).name
                why = f"a cell of {int(sizes[j]):,} bytes in column {col!r} (limit {CELL_LIMIT:,})"
                items.append(SourceItem(key=keys[j], error=why))
                continue
            meta: dict[str, Any] = {c: v[k] for c, v in meta_cols.items()}
            if layout.cap_col and isinstance(meta.get(layout.cap_col), str):
                meta["caption"] = meta[layout.cap_col]
            if paths[k]:
                meta["image_path"] = paths[k]
            url = urls[k] if isinstance(urls[k], str) and urls[k] else None
            item = _item(keys[j], [c[k] for c in cells], layout, primary_empty[k], url, meta)
            item.digest = digests[k]
            items.append(item)
            k += 1
        return items

    def write_clean(self, shard: Shard, gate: CleanGate, out_dir: Path) -> int:
        opened = self._open(shard)
        if isinstance(opened, SourceItem):
            gate.admit(opened)  # a damaged file's marker: recorded as failed, nothing readable to write
            return 0
        path = Path(shard.path)
        final = out_dir / path.relative_to(self._files.root)
        pf = opened.pf
        kept_rows = RangeBuilder()
        written = 0
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        group = -1
        try:
            with (
                atomic_output(final) as tmp,
                pq.ParquetWriter(tmp, writer_schema(pf), compression=compression_of(pf)) as w,
            ):
                for chunk, items in self._chunks(shard, opened):
                    admitted = np.fromiter((gate.admit(it) for it in items), dtype=bool, count=len(items))
                    if pending and (chunk.row_group != group or pending_bytes >= ROW_GROUP_BYTES):
                        w.write_table(pa.Table.from_batches(pending))
                        pending, pending_bytes = [], 0
                    group = chunk.row_group
                    if chunk.batch is None or not admitted.any():
                        continue
                    kept = chunk.batch.filter(pa.array(admitted))
                    kept_rows.add(opened.rows.rows(chunk.first, chunk.num_rows)[admitted])
                    pending.append(kept)
                    pending_bytes += kept.nbytes
                    written += kept.num_rows
                if pending:
                    w.write_table(pa.Table.from_batches(pending))
                w.add_key_value_metadata(kept_rows.metadata())
        finally:
            pf.close()
        return written


def _primary_extras(arr: pa.Array, col: ImageColumn) -> tuple[list[bool], list[Any]]:
    """Per row: is the primary cell present but 0 bytes, and the Hugging Face struct's ``path`` if it has one."""
    paths: list[Any] = [None] * len(arr)
    values = arr
    if col.struct:
        children = arr.flatten()
        values = children[arr.type.get_field_index("bytes")]
        pi = arr.type.get_field_index("path")
        if pi >= 0 and pa.types.is_string(arr.type.field(pi).type):
            paths = children[pi].to_pylist()
    empty = pc.fill_null(pc.equal(pc.binary_length(values), 0), False).to_pylist()
    return empty, paths


def _item(
    key: str,
    cells: list[list[tuple[str, bytes]]],
    layout: _Layout,
    primary_empty: bool,
    url: str | None,
    meta: dict[str, Any],
) -> SourceItem:
    """The row's item: the primary image as ``data`` (else the first image found), every other image a part."""
    primary = cells[0] if layout.primary is not None else []
    others = [c for col in cells[1 if layout.primary is not None else 0 :] for c in col]
    if primary:
        return SourceItem(key=key, data=primary[0][1], url=url, meta=meta, parts=others)
    if layout.primary is not None and primary_empty:
        return SourceItem(key=key, url=url, meta=meta, error=f"empty image (0 bytes) in column {layout.primary.name!r}")
    if others:
        return SourceItem(key=key, data=others[0][1], url=url, meta=meta, parts=others[1:])
    if url is not None:
        return SourceItem(key=key, url=url, meta=meta)
    names = ", ".join(repr(c.name) for c in layout.images)
    return SourceItem(key=key, meta=meta, error=f"no image bytes in column(s) {names}")
