"""Parquet files holding image bytes: img2dataset's ``output_format=parquet`` and Hugging Face ``image`` columns.

img2dataset (``ParquetSampleWriter``) writes one row per attempted sample: ``key``, ``jpg`` (binary; null for a
failed download), ``txt`` and the metadata columns (``url``, ``status``, ``error_message``, ``width``, ...).
Hugging Face datasets store an ``image`` struct ``{bytes, path}``, sometimes several (``image``,
``edited_image``) or lists of them.

One item per row. Every column that can hold bytes is screened (:func:`cleanset.sources._parquet.holds_bytes`:
binary, fixed-size binary, dictionaries of them, and structs, lists and maps holding them at any depth), because
``clean`` writes whole rows and a row is only as clean as its least-checked cell: the primary image column
(:func:`~cleanset.sources._parquet.image_column`) gives ``data``, every other bytes value of the row a part named
by where it sits (``<column>``, ``<column>[i]``, ``<column>.<field>``, ``<column>[1][0]``). Bytes values shorter
than :data:`~cleanset.sources._parquet.MIN_IMAGE_BYTES` cannot hold a picture and are not parts (a
``fixed_size_binary`` md5 column); a part that does not decode fails the row, like any item. A row whose primary
cell is null but that holds other images is screened by those. Text can spell an image out where no decoder sees
it: a row with a string cell (at any depth) that :data:`~cleanset.sources.base.EMBEDDED_IMAGE_PATTERNS` match is a
failed item naming the column. ``digest`` is the SHA-256 of the whole row (every cell, see
:class:`~cleanset.sources._parquet.RowDigester`), so ``clean`` refuses a row whose caption, URL or any cell
changed since the scan.

Key: the ``key`` column when present and non-null, else ``<shard>/<row>`` (row = position in the file as the scan
read it: a cleaned file carries its rows' original numbers, so re-reading it gives the same keys). A repeated key
within a file gets ``#2``, ``#3``... (never a key already used in the file, see
:class:`~cleanset.sources._files.UniqueKeys`) so every row stays addressable; a cleaned file records such keys
under :data:`~cleanset.sources._parquet.SOURCE_KEYS_KEY` (the rows that made them unique may be gone), so they
read back unchanged too. A row without image bytes is a URL-only item when it has a URL, else a failed item. A
cell larger than :data:`~cleanset.sources._parquet.CELL_LIMIT` fails its row without being decoded. An unreadable
row group yields one failed item per row it holds (keys from the ``key`` column when that column alone still
reads), an unreadable footer one failed marker item ``<shard>#unreadable``.

Files are read in bounded batches whatever their row-group size, with byte and text columns kept
dictionary-encoded until a slice of rows that decodes to at most
:data:`~cleanset.sources._parquet.BATCH_BYTES` is expanded (see :func:`~cleanset.sources._parquet.bounded`), so a
small file whose dictionary names one huge value from every row cannot make a worker expand it all at once.
``write_clean`` streams the same way: the same file names and schema, the schema metadata that cannot carry an
image (:func:`~cleanset.sources._parquet.safe_metadata`), the kept rows of each input row group together (split
when they pass :data:`ROW_GROUP_BYTES`), and the kept rows' numbers in the file's key-value metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.sources._files import UniqueKeys, atomic_output
from cleanset.sources._parquet import (
    CAPTION_NAMES,
    CELL_LIMIT,
    MIN_IMAGE_BYTES,
    SOURCE_KEYS_KEY,
    Chunk,
    ImageColumn,
    ParquetShards,
    RangeBuilder,
    RowDigester,
    RowMap,
    bounded,
    byte_values,
    compression_of,
    decode,
    detect_parquet,
    find_column,
    image_column,
    image_columns,
    iter_chunks,
    open_encoded,
    require_column,
    row_bytes,
    scalar_columns,
    text_findings,
    writer_schema,
)
from cleanset.sources.base import SOURCES, CleanGate, Shard, Source, SourceItem, marker_key, marker_keys

ROW_GROUP_BYTES = 64 << 20  # kept rows buffered before an output row group is written


@dataclass
class _Layout:
    """Where a file keeps what an item needs, found once from its schema."""

    images: list[ImageColumn]  # every byte-holding column: the primary image column first, then schema order
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
        primary = next((c for c in images if found is not None and c.name == found[0]), None)
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
    pf: pq.ParquetFile  # byte and text columns read as dictionaries (see open_encoded)
    schema: pa.Schema  # the file's own schema, which decoded batches have
    layout: _Layout
    rows: RowMap
    keys: dict[int, str]  # position -> the key the scan gave that row, where the file's values do not give it


def _source_keys(pf: pq.ParquetFile) -> dict[int, str]:
    """The :data:`SOURCE_KEYS_KEY` record of a cleaned file; ValueError when it does not describe its rows."""
    raw = (pf.metadata.metadata or {}).get(SOURCE_KEYS_KEY)
    if raw is None:
        return {}
    try:
        record = json.loads(raw)
        out = {int(k): v for k, v in record.items()}
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"malformed {SOURCE_KEYS_KEY.decode()} metadata: {err}") from None
    n = pf.metadata.num_rows
    if not all(0 <= k < n and isinstance(v, str) for k, v in out.items()):
        raise ValueError(f"{SOURCE_KEYS_KEY.decode()} metadata names rows the file does not hold")
    return out


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

    def item_counts(self) -> dict[str, int] | None:
        return self._files.item_counts()

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        opened = self._open(shard)
        if isinstance(opened, SourceItem):
            yield opened
            return
        try:
            for _chunk, items, _bases in self._chunks(shard, opened):
                yield from items
        finally:
            opened.pf.close()

    def _open(self, shard: Shard) -> _File | SourceItem:
        """The opened file, or the one failed marker item standing for a file that cannot be read at all."""
        path = Path(shard.path)
        try:
            pf, schema = open_encoded(path)
        except FileNotFoundError as err:
            return SourceItem(key=marker_key(shard.id, "missing"), error=f"shard vanished: {err}")
        except (OSError, pa.ArrowException) as err:
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet: {err}")
        try:
            rows = RowMap.of(pf)
            keys = _source_keys(pf)
        except ValueError as err:
            pf.close()
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet {path.name}: {err}")
        layout = _Layout.of(schema, self.url_col, self.caption_col)
        if not layout.images:
            pf.close()
            return SourceItem(key=marker_key(shard.id, "unreadable"), error=f"no image column in {path.name}")
        return _File(pf, schema, layout, rows, keys)

    def _chunks(self, shard: Shard, f: _File) -> Iterator[tuple[Chunk, list[SourceItem], list[str]]]:
        """Bounded chunks of rows with their items and each row's key before :class:`UniqueKeys` (the ``key``
        value or ``<shard>/<row>``), so ``clean`` can record the keys that differ from it."""
        unique = UniqueKeys(marker_keys(shard.id))  # a key column value never poses as a marker
        for whole in iter_chunks(f.pf, Path(shard.path).name):
            for chunk in bounded(whole):
                bases, keys = self._keys(chunk, f, shard, unique)
                yield chunk, self._items(chunk, f, shard, keys), bases

    def _keys(self, chunk: Chunk, f: _File, shard: Shard, unique: UniqueKeys) -> tuple[list[str], list[str]]:
        """(base, key) of each row. A cleaned file's :data:`SOURCE_KEYS_KEY` record gives back the ``#N`` keys the
        scan handed out: the rows that made them unique may have been removed."""
        rows = f.rows.rows(chunk.first, chunk.num_rows).tolist()
        given: list[Any] = [None] * chunk.num_rows
        if f.layout.key_col is not None:
            if chunk.batch is not None:
                given = chunk.batch.column(f.layout.key_col).to_pylist()
            else:
                given = self._keys_of_broken_chunk(f, chunk) or given
        bases = [str(g) if g is not None else f"{shard.id}/{r}" for g, r in zip(given, rows, strict=True)]
        keys = [unique(f.keys.get(chunk.first + j, b)) for j, b in enumerate(bases)]
        return bases, keys

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

    def _items(self, chunk: Chunk, f: _File, shard: Shard, keys: list[str]) -> list[SourceItem]:
        if chunk.batch is None:
            return [SourceItem(key=k, error=chunk.error) for k in keys]
        try:
            return self._row_items(chunk.batch, keys, f)
        except (OSError, pa.ArrowException, ValueError) as err:  # a value Arrow cannot hand over: fail the rows
            return [SourceItem(key=k, error=f"unreadable rows in {Path(shard.path).name}: {err}") for k in keys]

    def _row_items(self, batch: pa.RecordBatch, keys: list[str], f: _File) -> list[SourceItem]:
        layout = f.layout
        n = batch.num_rows
        sizes, widest = row_bytes(batch)  # from the still-encoded batch: a giant cell is never expanded
        big = sizes > CELL_LIMIT
        ok = np.flatnonzero(~big)
        sub = decode(batch if len(ok) == n else batch.take(pa.array(ok)), f.schema)
        digests = layout.digester.digests(sub)
        spelled = text_findings(sub)
        primary = layout.primary
        others = [c for c in layout.images if c is not primary]
        cells = [c.cells(sub.column(c.name)) for c in others]
        pvalues = sub.column(primary.name).to_pylist() if primary is not None else [None] * len(ok)
        urls = sub.column(layout.url_col).to_pylist() if layout.url_col else [None] * len(ok)
        meta_cols = {c: sub.column(c).to_pylist() for c in layout.meta_cols}
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
            url = urls[k] if isinstance(urls[k], str) and urls[k] else None
            if spelled[k] is not None:
                item = SourceItem(key=keys[j], url=url, meta=meta, error=spelled[k])
            else:
                item = _item(keys[j], pvalues[k], [c[k] for c in cells], layout, url, meta)
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
        kept_keys: dict[str, str] = {}  # position in the cleaned file -> key, where its base does not give it
        written = 0
        pending: list[pa.RecordBatch] = []
        pending_bytes = 0
        group = -1
        try:
            with (
                atomic_output(final) as tmp,
                pq.ParquetWriter(tmp, writer_schema(opened.schema), compression=compression_of(pf)) as w,
            ):
                for chunk, items, bases in self._chunks(shard, opened):
                    admitted = np.fromiter((gate.admit(it) for it in items), dtype=bool, count=len(items))
                    if pending and (chunk.row_group != group or pending_bytes >= ROW_GROUP_BYTES):
                        w.write_table(pa.Table.from_batches(pending))
                        pending, pending_bytes = [], 0
                    group = chunk.row_group
                    if chunk.batch is None or not admitted.any():
                        continue
                    kept = decode(chunk.batch.filter(pa.array(admitted)), opened.schema)
                    kept_rows.add(opened.rows.rows(chunk.first, chunk.num_rows)[admitted])
                    for pos, j in enumerate(np.flatnonzero(admitted).tolist(), start=written):
                        if items[j].key != bases[j]:
                            kept_keys[str(pos)] = items[j].key
                    pending.append(kept)
                    pending_bytes += kept.nbytes
                    written += kept.num_rows
                if pending:
                    w.write_table(pa.Table.from_batches(pending))
                md = kept_rows.metadata()
                if kept_keys:
                    md[SOURCE_KEYS_KEY] = json.dumps(kept_keys, separators=(",", ":")).encode()
                w.add_key_value_metadata(md)
        finally:
            pf.close()
        return written


def _item(
    key: str,
    pvalue: Any,
    cells: list[list[tuple[str, bytes]]],
    layout: _Layout,
    url: str | None,
    meta: dict[str, Any],
) -> SourceItem:
    """The row's item: the primary image as ``data`` (else the first bytes found), every other bytes value of the
    row (at least :data:`MIN_IMAGE_BYTES` long) a part."""
    others = [c for col in cells for c in col]
    primary = layout.primary
    if primary is not None:
        raw = pvalue.get("bytes") if isinstance(pvalue, dict) else pvalue
        if isinstance(pvalue, dict) and isinstance(pvalue.get("path"), str) and pvalue["path"]:
            meta["image_path"] = pvalue["path"]
        found: list[tuple[str, bytes]] = []
        byte_values(primary.name, pvalue, found)
        inner = [(n, b) for n, b in found if n != primary.name and len(b) >= MIN_IMAGE_BYTES]
        others = inner + others
        if isinstance(raw, bytes) and raw:
            return SourceItem(key=key, data=raw, url=url, meta=meta, parts=others)
        if raw == b"":
            return SourceItem(key=key, url=url, meta=meta, error=f"empty image (0 bytes) in column {primary.name!r}")
    if others:
        return SourceItem(key=key, data=others[0][1], url=url, meta=meta, parts=others[1:])
    if url is not None:
        return SourceItem(key=key, url=url, meta=meta)
    names = ", ".join(repr(c.name) for c in layout.images)
    return SourceItem(key=key, meta=meta, error=f"no image bytes in column(s) {names}")
