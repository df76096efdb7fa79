"""Parquet plumbing shared by the image-bytes and LAION metadata sources.

A shard is one file; it is read one row group at a time so a damaged row group costs only its own rows, which are
still named (failed, with the reason) because the row count of every group is in the file's footer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cleanset.errors import UserError
from cleanset.sources._files import common_root, expand_paths, listed_files, shard_id_for

BINARY_IMAGE_NAMES = ("jpg", "jpeg", "png", "webp", "image", "img", "image_bytes", "bytes")


def find_column(schema: pa.Schema, *names: str) -> str | None:
    """The schema's column matching one of ``names`` case-insensitively (first name wins): LAION writes ``URL``."""
    lower = {n.lower(): n for n in schema.names}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _is_bytes(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t))


def image_column(schema: pa.Schema) -> tuple[str, bool] | None:
    """(column, is_struct) of the image bytes: a Hugging Face ``{bytes, path}`` struct or a binary column."""
    for f in schema:
        if pa.types.is_struct(f.type):
            names = [f.type.field(i).name for i in range(f.type.num_fields)]
            if "bytes" in names and _is_bytes(f.type.field("bytes").type):
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
        has_image = image_column(schema) is not None
        if want_images != has_image:
            return False
        if not want_images and find_column(schema, "url") is None:
            return False
    return readable > 0


@dataclass
class RowGroup:
    index: int
    first_row: int
    num_rows: int
    table: pa.Table | None  # None when unreadable
    error: str | None


def iter_row_groups(path: Path, columns: Sequence[str] | None = None) -> Iterator[RowGroup]:
    """Row groups in order; raises OSError/ArrowException only when the footer itself is unreadable."""
    pf = pq.ParquetFile(path)
    md = pf.metadata
    first = 0
    for i in range(md.num_row_groups):
        n = md.row_group(i).num_rows
        try:
            table = pf.read_row_group(i, columns=list(columns) if columns is not None else None)
            if table.num_rows != n:
                raise pa.ArrowInvalid(f"row group holds {table.num_rows} rows, footer says {n}")
            yield RowGroup(i, first, n, table, None)
        except (OSError, pa.ArrowException) as err:
            yield RowGroup(i, first, n, None, f"unreadable row group {i} of {path.name}: {err}")
        first += n


def compression_of(pf: pq.ParquetFile) -> str:
    md = pf.metadata
    if md.num_row_groups and md.row_group(0).num_columns:
        c = str(md.row_group(0).column(0).compression).lower()
        return c if c in {"snappy", "gzip", "brotli", "zstd", "lz4", "none"} else "snappy"
    return "snappy"
