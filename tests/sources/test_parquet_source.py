"""Parquet with image bytes (img2dataset and Hugging Face layouts): reading, a damaged row group, clean output."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for
from source_samples import items

from cleanset.sources import ParquetImageSource, open_source
from cleanset.sources._parquet import SOURCE_ROWS_KEY
from cleanset.sources.synth import write_parquet_bytes


def _all(src: ParquetImageSource) -> list:
    return [it for sh in src.shards() for it in src.read(sh)]


def test_img2dataset_parquet(tmp_path: Path) -> None:
    write_parquet_bytes(tmp_path / "pq", items(), per_file=10, failed_per_file=1)
    src = open_source([tmp_path / "pq"])
    assert isinstance(src, ParquetImageSource)
    got = {it.key: it for it in _all(src)}
    assert len(got) == len(items()) + 3
    for it in items():
        g = got[it.key]
        assert (g.data, g.url, g.meta["caption"], g.error) == (it.data, it.url, it.caption, None)
    ghost = got["00000f0000"]  # a failed download: no bytes, its URL is still screened
    assert ghost.data is None and ghost.url.endswith("/gone/0-0.jpg") and ghost.error is None


def test_hf_image_struct(tmp_path: Path) -> None:
    files = write_parquet_bytes(tmp_path / "hf", items()[:7], per_file=100, style="hf", row_group_size=3)
    src = open_source(files)
    sid = src.shards()[0].id
    got = _all(src)  # type: ignore[arg-type]
    assert [it.key for it in got] == [f"{sid}/{i}" for i in range(7)]
    assert [it.data for it in got] == [it.data for it in items()[:7]]
    assert got[2].meta["caption"] == items()[2].caption


def _corrupt_row_group(path: Path, rg: int, column: str) -> None:
    md = pq.ParquetFile(path).metadata.row_group(rg)
    col = next(md.column(i) for i in range(md.num_columns) if md.column(i).path_in_schema.startswith(column))
    raw = bytearray(path.read_bytes())
    start = col.data_page_offset
    raw[start : start + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))


def test_unreadable_row_group_fails_its_rows_only(tmp_path: Path) -> None:
    (path,) = write_parquet_bytes(tmp_path / "pq", items()[:12], per_file=100, row_group_size=4)
    _corrupt_row_group(path, 1, "jpg")
    src = ParquetImageSource([path])
    got = list(src.read(src.shards()[0]))
    assert len(got) == 12
    bad = [it for it in got if it.error is not None]
    assert [it.key for it in bad] == [it.key for it in items()[4:8]]  # keys still read from the key column
    assert all("unreadable row group 1" in it.error for it in bad)
    assert [it.data for it in got if it.error is None] == [it.data for it in items()[:4] + items()[8:12]]


def test_unreadable_footer_is_one_failed_marker(tmp_path: Path) -> None:
    (path,) = write_parquet_bytes(tmp_path / "pq", items()[:4])
    src = ParquetImageSource([path])
    path.write_bytes(path.read_bytes()[:-20])
    got = list(src.read(src.shards()[0]))
    assert [it.key for it in got] == ["00000#unreadable"] and "unreadable Parquet" in got[0].error


@pytest.mark.parametrize("style", ["img2dataset", "hf"])
def test_write_clean_same_schema_kept_rows(tmp_path: Path, style: str) -> None:
    files = write_parquet_bytes(tmp_path / "pq", items(), per_file=10, style=style, row_group_size=4)
    src = ParquetImageSource(files)
    keys = {sh.id: [it.key for it in src.read(sh)] for sh in src.shards()}
    keep = {k for ks in keys.values() for i, k in enumerate(ks) if i % 3 == 1}
    out = tmp_path / "out"
    for sh in src.shards():
        assert src.write_clean(sh, gate_for(src, sh, keep), out) == sum(k in keep for k in keys[sh.id])
        orig, new = pq.read_table(sh.path), pq.read_table(out / Path(sh.path).name)
        assert new.schema == orig.schema and new.schema.metadata == orig.schema.metadata
        assert new.to_pylist() == [r for i, r in enumerate(orig.to_pylist()) if i % 3 == 1]
        kept = [i for i in range(len(keys[sh.id])) if i % 3 == 1]
        assert (
            pq.ParquetFile(out / Path(sh.path).name).metadata.metadata[SOURCE_ROWS_KEY]
            == str([[i, i + 1] for i in kept]).replace(" ", "").encode()
        )
    # keys live in a column (img2dataset) or are row numbers the cleaned file carries (Hugging Face): either way
    # the cleaned files re-read with the keys the scan gave those rows
    assert sorted(it.key for it in _all(ParquetImageSource([out]))) == sorted(keep)


def test_renamed_repeat_never_takes_an_existing_key(tmp_path: Path) -> None:
    jpg = items()[0].data
    pq.write_table(pa.table({"key": ["x", "x", "x#2"], "jpg": [jpg, jpg, jpg]}), tmp_path / "a.parquet")
    keys = [it.key for it in _all(ParquetImageSource([tmp_path / "a.parquet"]))]
    assert keys == ["x", "x#2", "x#2#2"]
