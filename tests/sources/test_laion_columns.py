"""LAION metadata: columns as the user names them, rows never invented, keys and bytes that survive ``clean``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for
from source_samples import items

from cleanset.errors import UserError
from cleanset.sources import BATCH_SCHEMA, LaionSource, open_source
from cleanset.sources._parquet import SOURCE_ROWS_KEY
from cleanset.sources.base import CleanGate, ContentChanged, Shard, UnaccountedItem
from cleanset.sources.synth import write_laion_metadata, write_laion_rows, write_webdataset


def _rows(src: LaionSource, shard: Shard | None = None) -> pa.Table:
    sh = shard or src.shards()[0]
    return pa.Table.from_batches(list(src.read_batches(sh, batch_size=1000)), BATCH_SCHEMA)


def _link_file(path: Path, n: int = 3_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    links = [f"https://img{i % 5}.example.org/p/{i}.jpg" for i in range(n)]
    pq.write_table(pa.table({"link": links, "alt": [f"alt {i}" for i in range(n)]}), path, row_group_size=1_000)
    return path


def test_unknown_url_column_is_an_error_not_invented_rows(tmp_path: Path) -> None:
    """It used to read 3,000 rows through no column and report 65,536 failed items; now it names the columns."""
    path = _link_file(tmp_path / "m" / "meta.parquet")
    with pytest.raises(UserError, match="columns found: link, alt; name the URL column with --url-col"):
        open_source([path], "laion")
    src = open_source([path], "laion", url_col="LINK", caption_col="alt")
    assert isinstance(src, LaionSource)
    t = _rows(src)
    assert t.num_rows == 3_000 and t["error"].null_count == 3_000  # items = rows
    assert t["url"].to_pylist() == pq.read_table(path)["link"].to_pylist()
    got = list(src.read(src.shards()[0]))
    assert len(got) == 3_000 and got[7].meta["caption"] == "alt 7" and got[7].url.endswith("/7.jpg")
    with pytest.raises(UserError, match=r"no column 'title' \(given as --caption-col\)"):
        open_source([path], "laion", caption_col="title")


def test_rows_are_counted_even_when_no_column_names_a_target(tmp_path: Path) -> None:
    path = _link_file(tmp_path / "m" / "meta.parquet")
    src = LaionSource([path], url_col="link")
    pq.write_table(pa.table({"other": list(range(3_000))}), path)  # changed under the open source
    t = _rows(src)
    assert t.num_rows == 3_000 and set(t["error"].to_pylist()) == {"no URL and no content hash"}
    assert len(list(src.read(src.shards()[0]))) == 3_000


def test_image_bytes_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"url": ["https://a.example/1.jpg"], "jpg": [items()[0].data]}), path)
    with pytest.raises(UserError, match="--format parquet"):
        LaionSource([path])


def test_cleaned_file_reads_back_with_the_scanned_keys(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 2_500, row_group_size=1_000)
    src = LaionSource([path])
    sh = src.shards()[0]
    keys = _rows(src)["key"].to_pylist()
    keep = {k for i, k in enumerate(keys) if i % 7 and not 1_000 <= i < 2_000}
    assert src.write_clean(sh, gate_for(src, sh, keep), tmp_path / "c1") == len(keep)
    c1 = LaionSource([tmp_path / "c1"])
    t = _rows(c1)
    kept = [k for k in keys if k in keep]
    assert t["key"].to_pylist() == kept and [it.key for it in c1.read(c1.shards()[0])] == kept
    assert t["row"].to_pylist() == [int(k.rsplit("/", 1)[1]) for k in kept]
    urls = pq.read_table(path)["URL"].to_pylist()
    assert t["url"].to_pylist() == [u for u, k in zip(urls, keys, strict=True) if k in keep]
    # cleaning the cleaned copy composes: its rows keep their first numbers
    second = set(kept[::2])
    c1.write_clean(c1.shards()[0], gate_for(c1, c1.shards()[0], second), tmp_path / "c2")
    assert _rows(LaionSource([tmp_path / "c2"]))["key"].to_pylist() == [k for k in keys if k in second]


def test_modified_file_since_the_scan_is_refused(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 1_200, row_group_size=500)
    src = LaionSource([path])
    sh = src.shards()[0]
    gate = gate_for(src, sh, set(_rows(src)["key"].to_pylist()))
    assert gate.shard_digest == hashlib.sha256(path.read_bytes()).hexdigest() == src.shard_digest(sh)
    t = pq.read_table(path)
    urls = t["URL"].to_pylist()
    urls[600] = "https://elsewhere.example/600.jpg"
    pq.write_table(t.set_column(0, "URL", pa.array(urls, pa.string())), path, row_group_size=500)  # same rows
    fresh = CleanGate(sh, recorded=gate.recorded, keep=gate.keep, shard_digest=gate.shard_digest)
    with pytest.raises(ContentChanged, match="not the file the scan read"):
        src.write_clean(sh, fresh, tmp_path / "out")
    assert not (tmp_path / "out" / path.name).exists()


def test_clean_with_joined_images_writes_metadata_rows_only(tmp_path: Path) -> None:
    its = items()[:6]
    meta = write_laion_rows(tmp_path / "meta" / "laion.parquet", its)
    write_webdataset(tmp_path / "dl", its[:4], per_shard=6)
    src = LaionSource([meta], images=tmp_path / "dl")
    sh = src.shards()[0]
    assert [it.data is not None for it in src.read(sh)] == [True] * 4 + [False] * 2  # the scan hashes them
    keys = [f"{sh.id}/{i}" for i in range(6)]
    # the scan records no content digest for rows of a file it digests whole
    gate = CleanGate(sh, recorded=dict.fromkeys(keys), keep=set(keys[1:]), shard_digest=src.shard_digest(sh))
    assert src.write_clean(sh, gate, tmp_path / "out") == 5
    assert pq.read_table(tmp_path / "out" / meta.name).to_pylist() == pq.read_table(meta).to_pylist()[1:]


def test_admit_keys_answers_as_admit(tmp_path: Path) -> None:
    sh = Shard("s", "s.parquet")
    keys = [f"s/{i}" for i in range(5)]
    gate = CleanGate(sh, recorded=dict.fromkeys(keys), keep={"s/1", "s/2", "s/4"})
    assert gate.admit_keys(keys[:3], [False, False, True]) == [False, True, False]
    assert gate.admit_keys(keys[3:]) == [False, True] and len(gate.admitted) == 2
    with pytest.raises(UnaccountedItem, match="twice"):
        CleanGate(sh, recorded=dict.fromkeys(keys), keep=set()).admit_keys(["s/0", "s/0"])
    with pytest.raises(UnaccountedItem, match="never recorded"):
        CleanGate(sh, recorded=dict.fromkeys(keys), keep=set()).admit_keys(["s/0", "s/9"])
    with pytest.raises(ContentChanged):
        CleanGate(sh, recorded={"s/0": "ab" * 32}, keep={"s/0"}).admit_keys(["s/0"])


def test_bad_row_record_is_one_failed_marker(tmp_path: Path) -> None:
    (path,) = write_laion_metadata(tmp_path / "m", 10)
    t = pq.read_table(path)
    pq.write_table(t.replace_schema_metadata({SOURCE_ROWS_KEY: b"[[5,2]]"}), path)
    rows = _rows(LaionSource([path])).to_pylist()
    assert [(r["key"], r["row"]) for r in rows] == [("part-00000#unreadable", -1)]
    assert "unordered" in rows[0]["error"]


def test_row_positions_invert_the_recorded_rows() -> None:
    """Captions of flagged rows are read by position: the inverse of the rows a cleaned file records."""
    import numpy as np

    from cleanset.sources._parquet import RowMap

    m = RowMap(np.array([[0, 3], [10, 12]], dtype=np.int64))  # positions 0..4 hold rows 0,1,2,10,11
    assert m.positions(np.array([0, 2, 10, 11, 5, 12]), 5).tolist() == [0, 2, 3, 4, -1, -1]
    assert m.rows(0, 5).tolist() == [0, 1, 2, 10, 11]
    assert RowMap(None).positions(np.array([0, 4, 5, -1]), 5).tolist() == [0, 4, -1, -1]
