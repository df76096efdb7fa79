"""Joining LAION metadata rows to img2dataset's download of them, by URL, so rows get their image's hashes too.

The index maps each downloaded URL to where its bytes lie: a tar member's data offset and size (found by walking
tar headers, which seeks past the data instead of reading it) or a Parquet row. Bytes are read only for rows that
are screened, one ``pread`` per tar member. URLs come from the shard's sibling Parquet (``key``, ``url``,
``status``) when there is one, else from each sample's ``.json`` member.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.sources._files import expand_paths, listed_files
from cleanset.sources._parquet import find_column, image_column
from cleanset.sources.base import SourceItem
from cleanset.sources.webdataset import _is_image_ext, split_member


@dataclass(frozen=True)
class TarRef:
    path: str
    offset: int
    size: int
    key: str


@dataclass(frozen=True)
class ParquetRef:
    path: str
    row_group: int
    row: int
    key: str


class ImageIndex:
    def __init__(self, refs: dict[str, TarRef | ParquetRef]) -> None:
        self.refs = refs
        self._cache: tuple[tuple[str, int], list[bytes | None]] | None = None

    @classmethod
    def open(cls, images: Path) -> ImageIndex:
        paths = expand_paths([images])
        tars = listed_files(paths, ".tar")
        refs: dict[str, TarRef | ParquetRef] = {}
        if tars:
            for t in tars:
                _index_tar(t, refs)
            return cls(refs)
        parquets = listed_files(paths, ".parquet")
        if not parquets:
            raise UserError(f"--images {images}: no img2dataset output (.tar or .parquet shards) there")
        for p in parquets:
            _index_parquet(p, refs)
        return cls(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def attach(self, item: SourceItem) -> None:
        """Give ``item`` its downloaded image's bytes when its URL was downloaded; errors fail the item."""
        ref = self.refs.get(item.url or "")
        if ref is None:
            return
        item.meta["image_key"] = ref.key
        try:
            data = self._read(ref)
        except (OSError, pa.ArrowException, ValueError) as err:
            item.error = f"downloaded image unreadable ({ref.path}, key {ref.key}): {err}"
            return
        if not data:
            item.error = f"downloaded image is empty ({ref.path}, key {ref.key})"
            return
        item.data = data

    def _read(self, ref: TarRef | ParquetRef) -> bytes | None:
        if isinstance(ref, TarRef):
            fd = os.open(ref.path, os.O_RDONLY)
            try:
                data = os.pread(fd, ref.size, ref.offset)
            finally:
                os.close(fd)
            if len(data) != ref.size:
                raise ValueError(f"tar member cut short ({len(data)} of {ref.size} bytes)")
            return data
        where = (ref.path, ref.row_group)
        if self._cache is None or self._cache[0] != where:
            pf = pq.ParquetFile(ref.path)
            col, is_struct = image_column(pf.schema_arrow) or ("", False)
            values = pf.read_row_group(ref.row_group, columns=[col]).column(0).to_pylist()
            if is_struct:
                values = [v.get("bytes") if isinstance(v, dict) else None for v in values]
            self._cache = (where, values)
        return self._cache[1][ref.row]


def _urls_from_sidecar(tar: Path) -> dict[str, str] | None:
    side = tar.with_suffix(".parquet")
    if not side.is_file():
        return None
    try:
        schema = pq.read_schema(side)
        key_col, url_col = find_column(schema, "key"), find_column(schema, "url")
        if key_col is None or url_col is None:
            return None
        t = pq.read_table(side, columns=[key_col, url_col])
    except (OSError, pa.ArrowException):
        return None
    return {str(k): u for k, u in zip(t[key_col].to_pylist(), t[url_col].to_pylist(), strict=True) if u}


def _index_tar(tar: Path, refs: dict[str, TarRef | ParquetRef]) -> None:
    urls = _urls_from_sidecar(tar)
    members: dict[str, tuple[int, int]] = {}
    json_urls: dict[str, str] = {}
    try:
        with tarfile.open(tar, mode="r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                key, ext = split_member(m.name)
                if _is_image_ext(ext) and key not in members:
                    members[key] = (m.offset_data, m.size)
                elif urls is None and ext.lower() == "json":
                    f = tf.extractfile(m)
                    try:
                        obj = json.loads(f.read()) if f is not None else None
                    except ValueError:
                        obj = None
                    if isinstance(obj, dict) and isinstance(obj.get("url"), str):
                        json_urls[key] = obj["url"]
    except (tarfile.TarError, OSError):
        pass  # members indexed before the damage stay joinable; the rest keep URL-only screening
    for key, url in (urls if urls is not None else json_urls).items():
        if key in members and url not in refs:
            off, size = members[key]
            refs[url] = TarRef(str(tar.resolve()), off, size, key)


def _index_parquet(path: Path, refs: dict[str, TarRef | ParquetRef]) -> None:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException):
        return
    schema = pf.schema_arrow
    url_col, key_col, found = find_column(schema, "url"), find_column(schema, "key"), image_column(schema)
    if url_col is None or found is None:
        return
    img_col, is_struct = found
    for i in range(pf.metadata.num_row_groups):
        try:
            cols = [url_col, img_col] + ([key_col] if key_col else [])
            t = pf.read_row_group(i, columns=cols)
        except (OSError, pa.ArrowException):
            continue
        img = t[img_col]
        present = (img.combine_chunks().field("bytes") if is_struct else img.combine_chunks()).is_valid()
        keys = t[key_col].to_pylist() if key_col else [None] * t.num_rows
        for j, (url, ok) in enumerate(zip(t[url_col].to_pylist(), present.to_pylist(), strict=True)):
            if url and ok and url not in refs:
                refs[url] = ParquetRef(str(path.resolve()), i, j, str(keys[j] if keys[j] is not None else j))
