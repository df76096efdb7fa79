"""LAION-style URL metadata: the batch API, validation of given hashes, joining img2dataset's download, clean."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for
from source_samples import items

from cleanset.sources import BATCH_SCHEMA, LaionSource, UnaccountedItem, open_source
from cleanset.sources.synth import (
    laion_url,
    write_laion_metadata,
    write_laion_rows,
    write_parquet_bytes,
    write_webdataset,
)


def _batches(src: LaionSource) -> pa.Table:
    return pa.Table.from_batches(
        [b for sh in src.shards() for b in src.read_batches(sh, batch_size=1000)], BATCH_SCHEMA
    )


def test_batches_cover_every_row_with_keys_and_urls(tmp_path: Path) -> None:
    files = write_laion_metadata(tmp_path / "m", 5_000, files=2, row_group_size=1024)
    src = open_source([tmp_path / "m"])
    assert isinstance(src, LaionSource) and src.batchable
    t = _batches(src)
    assert t.num_rows == 5_000
    assert t["key"][0].as_py() == "part-00000/0" and t["key"][2_500].as_py() == "part-00001/0"
    assert t["url"].to_pylist()[2_500 + 17] == laion_url(2_500 + 17)
    assert t["md5"].to_pylist() == [v for f in files for v in pq.read_table(f)["md5"].to_pylist()]
    assert t["error"].null_count == 5_000 and t["sha1"].null_count == 5_000


def test_given_hashes_validated(tmp_path: Path) -> None:
    good = "0123456789abcdef0123456789ABCDEF"
    rows = {
        "URL": ["https://a.example/1.jpg", "https://a.example/2.jpg", None, None, "https://a.example/5.jpg"],
        "TEXT": ["one", "two", "three", "four", "five"],
        "MD5": [good, "not-hex", good, None, ""],
    }
    pq.write_table(pa.table(rows), tmp_path / "m.parquet")
    src = LaionSource([tmp_path / "m.parquet"])
    t = _batches(src).to_pylist()
    assert [r["md5"] for r in t] == [good.lower(), None, good.lower(), None, None]
    assert [r["error"] for r in t] == [
        None,
        "invalid md5 value in column 'MD5'",
        None,
        "no URL and no content hash",
        None,
    ]
    items_ = list(src.read(src.shards()[0]))
    assert [it.error for it in items_] == [r["error"] for r in t]
    assert items_[0].given_hashes == {"md5": good.lower()} and items_[0].meta["caption"] == "one"
    assert items_[2].url is None and items_[2].error is None


def test_unreadable_row_group_rows_failed_and_counted(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 3_000, row_group_size=1_000)
    md = pq.ParquetFile(path).metadata.row_group(1).column(0)
    raw = bytearray(path.read_bytes())
    raw[md.data_page_offset : md.data_page_offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))
    t = _batches(LaionSource([path]))
    assert t.num_rows == 3_000
    errors = t["error"].to_pylist()
    assert all(e is None for e in errors[:1000] + errors[2000:])
    assert all(e is not None and "unreadable row group 1" in e for e in errors[1000:2000])
    assert t["key"][1500].as_py() == "part-00000/1500"


@pytest.mark.parametrize("layout", ["webdataset", "parquet"])
def test_join_with_img2dataset_output(tmp_path: Path, layout: str) -> None:
    its = items()
    meta = write_laion_rows(tmp_path / "meta" / "laion.parquet", its)
    downloaded = its[:15]
    if layout == "webdataset":
        write_webdataset(tmp_path / "dl", downloaded, per_shard=6)
    else:
        write_parquet_bytes(tmp_path / "dl", downloaded, per_file=6, failed_per_file=1)
    src = open_source([meta], "laion", images=tmp_path / "dl")
    assert isinstance(src, LaionSource) and not src.batchable
    got = list(src.read(src.shards()[0]))
    assert [it.url for it in got] == [it.url for it in its]
    assert [it.data for it in got] == [it.data for it in downloaded] + [None] * (len(its) - 15)
    assert all(g.given_hashes["md5"] == hashlib.md5(it.data).hexdigest() for g, it in zip(got, its, strict=True))
    assert got[3].meta["image_key"] == its[3].key


def test_write_clean_filters_rows(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 2_500, row_group_size=1_000)
    src = LaionSource([path])
    sh = src.shards()[0]
    keys = [f"{sh.id}/{i}" for i in range(2_500)]
    keep = {k for i, k in enumerate(keys) if i % 7 and not 1_000 <= i < 2_000}
    assert src.write_clean(sh, gate_for(src, sh, keep), tmp_path / "out") == len(keep)
    orig, new = pq.read_table(path), pq.read_table(tmp_path / "out" / path.name)
    assert new.schema == orig.schema
    assert new.to_pylist() == [r for i, r in enumerate(orig.to_pylist()) if keys[i] in keep]
    assert pq.ParquetFile(tmp_path / "out" / path.name).metadata.num_row_groups == 2  # the middle group is gone
    with pytest.raises(UnaccountedItem, match=f"{sh.id}/3"):
        src.write_clean(sh, gate_for(src, sh, keep, set(keys) - {f"{sh.id}/3"}), tmp_path / "out2")


def test_vanished_file_is_one_failed_marker_row(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 10)
    src = LaionSource([path])
    path.unlink()
    rows = _batches(src).to_pylist()
    assert [(r["key"], r["row"]) for r in rows] == [("part-00000#missing", -1)]
    assert "vanished" in rows[0]["error"]
    assert [it.key for it in src.read(src.shards()[0])] == ["part-00000#missing"]
