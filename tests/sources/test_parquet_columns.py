"""Parquet rows are screened and cleaned whole: every image column, a digest over every cell, stable keys."""

from __future__ import annotations

import decimal
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for
from source_samples import items

import cleanset.sources.parquet as parquet_mod
from cleanset.banks.base import MemoryBank
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.runs.store import RunStore
from cleanset.sources import ParquetImageSource, open_source
from cleanset.sources._parquet import SOURCE_ROWS_KEY, RowDigester, image_columns
from cleanset.sources.base import CleanGate, ContentChanged, content_digest
from cleanset.sources.synth import HF_IMAGE

LIST_OF_IMAGES = pa.list_(pa.binary())


def _img(i: int) -> bytes:
    return items()[i].data


def _write_multi(path: Path, rows: list[dict]) -> Path:
    """A Hugging Face-style file with two image structs, a list of images, a caption and a URL."""
    schema = pa.schema(
        [
            ("image", HF_IMAGE),
            ("edited_image", HF_IMAGE),
            ("extra", LIST_OF_IMAGES),
            ("caption", pa.string()),
            ("url", pa.string()),
        ]
    ).with_metadata({"huggingface": json.dumps({"info": {"features": {}}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=2)
    return path


def _hf(data: bytes | None, name: str = "x.jpg") -> dict | None:
    return None if data is None else {"bytes": data, "path": name}


def _rows() -> list[dict]:
    return [
        {"image": _hf(_img(0)), "edited_image": _hf(_img(1)), "extra": [_img(2), _img(3)], "caption": "a"},
        {"image": None, "edited_image": _hf(_img(4)), "extra": None, "caption": "b"},
        {"image": _hf(_img(5)), "edited_image": None, "extra": [None, _img(6)], "caption": "c"},
        {"image": None, "edited_image": None, "extra": [], "caption": "d", "url": "https://a.example/d.jpg"},
        {"image": None, "edited_image": None, "extra": None, "caption": "e"},
    ]


def test_every_image_column_is_an_item_part(tmp_path: Path) -> None:
    path = _write_multi(tmp_path / "hf" / "train.parquet", _rows())
    assert [c.name for c in image_columns(pq.read_schema(path))] == ["image", "edited_image", "extra"]
    src = open_source([path])
    assert isinstance(src, ParquetImageSource)
    got = list(src.read(src.shards()[0]))
    assert [it.key for it in got] == [f"train/{i}" for i in range(5)]  # items = rows
    assert got[0].data == _img(0)
    assert got[0].parts == [("edited_image", _img(1)), ("extra[0]", _img(2)), ("extra[1]", _img(3))]
    assert (got[1].data, got[1].parts, got[1].error) == (_img(4), [], None)  # no primary image: still screened
    assert got[2].parts == [("extra[1]", _img(6))]
    assert got[3].data is None and got[3].url == "https://a.example/d.jpg" and got[3].error is None
    assert got[4].error == "no image bytes in column(s) 'image', 'edited_image', 'extra'"
    assert got[0].meta["caption"] == "a" and got[0].meta["image_path"] == "x.jpg"
    digests = [it.digest for it in got]
    assert all(d is not None and len(d) == 64 for d in digests) and len(set(digests)) == 5
    assert content_digest(got[3]) == got[3].digest  # a URL-only row is written whole too: its digest is the row's


@pytest.mark.parametrize("column", ["edited_image", "extra"])
def test_listed_picture_only_in_a_second_column_is_matched(tmp_path: Path, column: str) -> None:
    from cleanset.signals.engine import HashConfig, HashEngine

    listed = _img(7)
    rows = [
        {"image": _hf(_img(i)), "edited_image": _hf(_img(i + 10)), "extra": [_img(i + 15)], "caption": f"r{i}"}
        for i in range(4)
    ]
    if column == "edited_image":
        rows[2]["edited_image"] = _hf(listed)
    else:
        rows[2]["extra"] = [_img(20), listed]
    path = _write_multi(tmp_path / "ds" / "train.parquet", rows)
    pdq = HashEngine(HashConfig(signals=("pdq",), dihedral=False, regions=False)).hash_bytes(listed).hashes["pdq"]
    bank = MemoryBank.from_hex("hot", [("pdq", pdq, "p"), ("md5", hashlib.md5(listed).hexdigest(), "m")])
    run = tmp_path / "run"
    summary = execute(prepare(ScanOptions(sources=[path], banks=[], out=run, executor="inline"), [bank]), "inline")
    assert summary["items"] == 4 and summary["failed"] == 0 and summary["removed"] == 1
    t = {r["key"]: r for r in RunStore(run).items_table().to_pylist()}
    hit = t["train/2"]
    assert hit["verdict"] == "remove"
    part = "edited_image" if column == "edited_image" else "extra[1]"
    assert {m["probe"].split("/")[0] for m in hit["matches"]} == {part}
    src = ParquetImageSource([path])
    assert {it.key: it.digest for it in src.read(src.shards()[0])} == {k: r["content_sha256"] for k, r in t.items()}


def test_changed_caption_or_url_since_the_scan_is_refused(tmp_path: Path) -> None:
    rows = [{"image": _hf(_img(i)), "caption": f"c{i}", "url": f"https://a.example/{i}.jpg"} for i in range(6)]
    path = _write_multi(tmp_path / "ds" / "train.parquet", rows)
    src = ParquetImageSource([path])
    sh = src.shards()[0]
    keep = {f"train/{i}" for i in range(6)}
    scanned = gate_for(src, sh, keep)
    for field, value in (("caption", "something else"), ("url", "https://b.example/4.jpg")):
        changed = [dict(r) for r in rows]
        changed[4][field] = value
        _write_multi(path, changed)  # same images, one text cell changed
        gate = CleanGate(sh, recorded=scanned.recorded, keep=keep)
        with pytest.raises(ContentChanged, match="train/4"):
            src.write_clean(sh, gate, tmp_path / "out")
        assert not (tmp_path / "out" / "train.parquet").exists()
    _write_multi(path, rows)  # back as scanned: clean goes through
    assert src.write_clean(sh, CleanGate(sh, recorded=scanned.recorded, keep=keep), tmp_path / "out") == 6


def test_row_digest_is_per_row_and_sees_every_type() -> None:
    schema = pa.schema(
        [
            ("ts", pa.timestamp("ns")),
            ("dec", pa.decimal128(7, 2)),
            ("tags", pa.dictionary(pa.int8(), pa.string())),
            ("nested", pa.struct([("xs", pa.list_(pa.int32())), ("m", pa.map_(pa.string(), pa.float64()))])),
            ("flag", pa.bool_()),
            ("fixed", pa.list_(pa.int16(), 2)),
            ("blob", pa.large_binary()),
        ]
    )
    base = {
        "ts": 1_000_000_001,
        "dec": decimal.Decimal("12.34"),
        "tags": "a",
        "nested": {"xs": [1, 2], "m": [("k", 1.5)]},
        "flag": True,
        "fixed": [1, 2],
        "blob": b"\x00\x01",
    }
    variants = [
        {},
        {"ts": 1_000_000_002},
        {"dec": decimal.Decimal("12.35")},
        {"tags": "b"},
        {"nested": {"xs": [1], "m": [("k", 1.5)]}},
        {"nested": {"xs": [1, 2], "m": [("k", -0.0)]}},
        {"nested": None},
        {"flag": False},
        {"fixed": [2, 1]},
        {"blob": b"\x00"},
        {"blob": None},
    ]
    rows = [{**base, **v} for v in variants]
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    digester = RowDigester(schema)
    whole = digester.digests(batch)
    assert len(set(whole)) == len(rows)  # any changed cell changes the row's digest
    assert digester.digests(batch.slice(3, 5)) == whole[3:8]  # a row's digest does not depend on its batch
    renamed = pa.schema([*list(schema)[:-1], pa.field("other", pa.large_binary())])
    assert RowDigester(renamed).digests(batch)[0] != whole[0]  # names count too


def test_oversized_cell_fails_its_row_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = max(len(_img(i)) for i in range(3)) + 10
    rows = [{"image": _hf(_img(i)), "caption": "x" * (limit + 1 if i == 1 else 5)} for i in range(3)]
    path = _write_multi(tmp_path / "ds" / "train.parquet", rows)
    monkeypatch.setattr(parquet_mod, "CELL_LIMIT", limit)
    got = list(ParquetImageSource([path]).read(ParquetImageSource([path]).shards()[0]))
    assert [it.error is None for it in got] == [True, False, True]
    assert "column 'caption'" in (got[1].error or "") and got[1].data is None


def test_cleaned_copy_keeps_keys_through_two_cleans(tmp_path: Path) -> None:
    files = write_hf(tmp_path / "hf", 12)
    src = ParquetImageSource(files)
    sh = src.shards()[0]
    keys = [it.key for it in src.read(sh)]
    first = {k for i, k in enumerate(keys) if i not in (0, 3, 4, 5, 11)}
    src.write_clean(sh, gate_for(src, sh, first), tmp_path / "c1")
    assert json.loads(pq.ParquetFile(tmp_path / "c1" / files[0].name).metadata.metadata[SOURCE_ROWS_KEY]) == [
        [1, 3],
        [6, 11],
    ]
    again = ParquetImageSource([tmp_path / "c1"])
    assert [it.key for it in again.read(again.shards()[0])] == [k for k in keys if k in first]
    second = first - {keys[7]}
    again.write_clean(again.shards()[0], gate_for(again, again.shards()[0], second), tmp_path / "c2")
    twice = ParquetImageSource([tmp_path / "c2"])
    got = list(twice.read(twice.shards()[0]))
    assert [it.key for it in got] == [k for k in keys if k in second]
    original = {it.key: it.data for it in src.read(sh)}
    assert all(it.data == original[it.key] for it in got)


def test_bad_row_record_is_one_failed_marker(tmp_path: Path) -> None:
    (path,) = write_hf(tmp_path / "hf", 3)
    t = pq.read_table(path)
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, SOURCE_ROWS_KEY: b"[[0,2]]"}), path)
    src = ParquetImageSource([path])
    got = list(src.read(src.shards()[0]))
    assert len(got) == 1 and got[0].key.endswith("#unreadable") and "names 2 rows" in (got[0].error or "")


def test_explicit_columns_must_exist(tmp_path: Path) -> None:
    from cleanset.errors import UserError

    files = write_hf(tmp_path / "hf", 2)
    with pytest.raises(UserError, match=r"no column 'link' \(given as --url-col\); columns found: image, text"):
        open_source(files, url_col="link")
    src = open_source(files, caption_col="TEXT")
    assert next(iter(src.read(src.shards()[0]))).meta["caption"] == items()[0].caption


def write_hf(out: Path, n: int) -> list[Path]:
    from cleanset.sources.synth import write_parquet_bytes

    return write_parquet_bytes(out, items()[:n], per_file=100, style="hf", row_group_size=4)


def test_row_group_that_breaks_midway_fails_only_its_unread_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cleanset.sources._parquet as pq_mod
    from cleanset.sources.synth import write_parquet_bytes

    (path,) = write_parquet_bytes(tmp_path / "pq", items()[:12], per_file=100, row_group_size=12)
    monkeypatch.setattr(pq_mod, "MAX_BATCH_ROWS", 5)
    real = pq.ParquetFile.iter_batches

    def breaks_after_one(self: pq.ParquetFile, *args: object, **kw: object):  # type: ignore[no-untyped-def]
        it = real(self, *args, **kw)  # type: ignore[arg-type]
        yield next(it)
        raise pa.ArrowInvalid("page checksum mismatch")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", breaks_after_one)
    src = ParquetImageSource([path])
    got = list(src.read(src.shards()[0]))
    assert [it.key for it in got] == [it.key for it in items()[:12]]  # every row, keys from the key column
    assert [it.error is None for it in got] == [True] * 5 + [False] * 7
    assert "unreadable row group 0" in (got[5].error or "") and "checksum" in (got[5].error or "")


def test_repeated_keys_read_back_as_scanned_after_the_first_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "ds" / "a.parquet"
    path.parent.mkdir()
    keys = ["k", "k", "j", "k", "k#2"]
    table = pa.table({"key": keys, "jpg": [_img(i) for i in range(len(keys))]})
    pq.write_table(table, path)
    src = ParquetImageSource([path])
    sh = src.shards()[0]
    scanned = [it.key for it in src.read(sh)]
    assert scanned == ["k", "k#2", "j", "k#3", "k#2#2"]
    keep = set(scanned) - {"k"}
    assert src.write_clean(sh, gate_for(src, sh, keep), tmp_path / "out") == 4
    again = ParquetImageSource([tmp_path / "out"])
    got = list(again.read(again.shards()[0]))
    assert [it.key for it in got] == [k for k in scanned if k in keep]
    assert [it.data for it in got] == [_img(i) for i in range(1, len(keys))]
    # and a second clean of the cleaned copy keeps them too
    second = keep - {"j"}
    again.write_clean(again.shards()[0], gate_for(again, again.shards()[0], second), tmp_path / "out2")
    twice = ParquetImageSource([tmp_path / "out2"])
    assert [it.key for it in twice.read(twice.shards()[0])] == [k for k in scanned if k in second]
