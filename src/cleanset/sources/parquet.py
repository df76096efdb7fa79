"""Parquet files holding image bytes: img2dataset's ``output_format=parquet`` and Hugging Face ``image`` columns.

img2dataset (``ParquetSampleWriter``) writes one row per attempted sample: ``key``, ``jpg`` (binary; null for a
failed download), ``txt`` and the metadata columns (``url``, ``status``, ``error_message``, ``width``, ...).
Hugging Face datasets store an ``image`` struct ``{bytes, path}``. Either way the image column is found from the
schema (:func:`cleanset.sources._parquet.image_column`).

Key: the ``key`` column when present and non-null, else ``<shard>/<row>`` (row = position in the file). A repeated
key within a file gets ``#2``, ``#3``... (never a key already used in the file, see
:class:`~cleanset.sources._files.UniqueKeys`) so every row stays addressable. A row without image bytes is a
URL-only item when it has a ``url`` (img2dataset's failed downloads: the URL is still screened), else a failed
item. An unreadable row group yields one failed item per row (keys from the ``key`` column when that column
alone still reads), an unreadable footer one failed marker item ``<shard>#unreadable``.

``write_clean`` writes the same file names with the same schema (and schema metadata), one output row group per
input row group, keeping only kept rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.sources._files import UniqueKeys, atomic_output
from cleanset.sources._parquet import (
    ParquetShards,
    compression_of,
    detect_parquet,
    find_column,
    image_column,
    iter_row_groups,
)
from cleanset.sources.base import SOURCES, Shard, Source, SourceItem, check_expected, marker_key


@SOURCES.register("parquet")
class ParquetImageSource(Source):
    name = "parquet"

    def __init__(self, paths: Sequence[Path]) -> None:
        self._files = ParquetShards.from_paths(paths, "parquet (image bytes)")

    @classmethod
    def detect(cls, paths: Sequence[Path]) -> bool:
        return detect_parquet(paths, want_images=True)

    def shards(self) -> list[Shard]:
        return [Shard(id=sid, path=str(p)) for sid, p in self._files.files.items()]

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for item, _rg, _row in self._iter(shard):
            yield item

    def _iter(self, shard: Shard) -> Iterator[tuple[SourceItem, int, int]]:
        """Items with (row group index, row within group); row group -1 for marker items."""
        path = Path(shard.path)
        try:
            schema = pq.read_schema(path)
        except FileNotFoundError as err:
            yield SourceItem(key=marker_key(shard.id, "missing"), error=f"shard vanished: {err}"), -1, -1
            return
        except (OSError, pa.ArrowException) as err:
            yield SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet: {err}"), -1, -1
            return
        found = image_column(schema)
        if found is None:
            yield (
                SourceItem(key=marker_key(shard.id, "unreadable"), error=f"no image column in {path.name}"),
                -1,
                -1,
            )
            return
        img_col, is_struct = found
        key_col = find_column(schema, "key")
        url_col = find_column(schema, "url")
        cap_col = find_column(schema, "txt", "caption", "text")
        unique = UniqueKeys()
        try:
            groups = iter_row_groups(path)
            for rg in groups:
                if rg.table is None:
                    keys = self._keys_of_broken_group(path, rg.index, rg.first_row, rg.num_rows, key_col, shard)
                    for j, broken_key in enumerate(keys):
                        yield SourceItem(key=unique(broken_key), error=rg.error), rg.index, j
                    continue
                cols = rg.table.to_pydict()
                for j in range(rg.num_rows):
                    row: dict[str, Any] = {c: v[j] for c, v in cols.items()}
                    given = row.get(key_col) if key_col else None
                    key = unique(str(given) if given is not None else f"{shard.id}/{rg.first_row + j}")
                    yield self._item(key, row, img_col, is_struct, url_col, cap_col), rg.index, j
        except (OSError, pa.ArrowException) as err:
            yield SourceItem(key=marker_key(shard.id, "unreadable"), error=f"unreadable Parquet: {err}"), -1, -1

    @staticmethod
    def _keys_of_broken_group(
        path: Path, index: int, first: int, n: int, key_col: str | None, shard: Shard
    ) -> list[str]:
        if key_col is not None:
            try:
                col = pq.ParquetFile(path).read_row_group(index, columns=[key_col]).column(0).to_pylist()
                if len(col) == n:
                    return [str(k) if k is not None else f"{shard.id}/{first + j}" for j, k in enumerate(col)]
            except (OSError, pa.ArrowException):
                pass
        return [f"{shard.id}/{first + j}" for j in range(n)]

    @staticmethod
    def _item(
        key: str, row: dict[str, Any], img_col: str, is_struct: bool, url_col: str | None, cap_col: str | None
    ) -> SourceItem:
        img = row.pop(img_col)
        data: bytes | None
        if is_struct:
            data = img.get("bytes") if isinstance(img, dict) else None
            if isinstance(img, dict) and img.get("path"):
                row["image_path"] = img["path"]
        else:
            data = img
        url = row.get(url_col) if url_col else None
        url = url if isinstance(url, str) and url else None
        meta = {k: v for k, v in row.items() if isinstance(v, str | int | float | bool) or v is None}
        if cap_col and isinstance(row.get(cap_col), str):
            meta["caption"] = row[cap_col]
        if data is None:
            if url is not None:
                return SourceItem(key=key, url=url, meta=meta)
            return SourceItem(key=key, meta=meta, error=f"no image bytes in column {img_col!r}")
        if not data:
            return SourceItem(key=key, url=url, meta=meta, error=f"empty image (0 bytes) in column {img_col!r}")
        return SourceItem(key=key, data=data, url=url, meta=meta)

    def write_clean(self, shard: Shard, keep: set[str], out_dir: Path, expect: Collection[str] | None = None) -> int:
        path = Path(shard.path)
        masks: dict[int, list[bool]] = {}
        for item, rg, _row in self._iter(shard):
            check_expected(shard, item.key, expect)
            if rg >= 0:
                masks.setdefault(rg, [])
                masks[rg].append(item.key in keep)
        try:
            pf = pq.ParquetFile(path)
            schema = pf.schema_arrow
        except (OSError, pa.ArrowException):
            return 0  # missing or unreadable file: its marker item was failed, nothing can be written
        final = out_dir / path.relative_to(self._files.root)
        written = 0
        with atomic_output(final) as tmp, pq.ParquetWriter(tmp, schema, compression=compression_of(pf)) as w:
            for rg_index in range(pf.metadata.num_row_groups):
                mask = masks.get(rg_index)
                if mask is None or not any(mask):
                    continue
                try:
                    table = pf.read_row_group(rg_index)
                except (OSError, pa.ArrowException):
                    continue  # an unreadable group's rows were failed; there are no bytes to keep
                kept = table.filter(pa.array(mask))
                w.write_table(kept)
                written += kept.num_rows
        return written
