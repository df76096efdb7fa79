"""Bytes a Parquet file holds anywhere (nested, dictionary-encoded, fixed-size, spelled out as text, or in its
metadata) are screened or left out of the cleaned copy: a benign "listed" picture is planted in each place."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gates import gate_for

from cleanset.actions.clean import clean
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import UserError
from cleanset.pipeline.scan import ScanOptions, run_scan
from cleanset.runs.store import RunStore
from cleanset.signals.engine import HashConfig, HashEngine
from cleanset.sources import LaionSource, ParquetImageSource
from cleanset.sources._parquet import CAPTION_NAMES, holds_bytes
from pictures import encode, picture

LISTED = picture(1)
LISTED_JPEG = encode(LISTED)
LISTED_B64 = base64.b64encode(LISTED_JPEG)
ENGINE = HashEngine(HashConfig(signals=("md5", "pdq"), dihedral=False, regions=False))


@pytest.fixture()
def bank(cleanset_home: Path) -> str:
    """The listed picture's md5 (of its JPEG bytes) and PDQ in a stored stand-in bank."""
    pdq = ENGINE.hash_bytes(encode(LISTED, "PNG")).hashes["pdq"]
    rows = [BankRow("md5", hashlib.md5(LISTED_JPEG).hexdigest(), "listed-md5"), BankRow("pdq", pdq, "listed-pdq")]
    BankStore.default().create_from_rows("standin", rows, note="benign stand-in")
    return "standin"


def assert_not_listed(out: Path) -> None:
    for p in out.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            assert LISTED_JPEG not in data and LISTED_B64 not in data, p


N = 4  # rows; row 1 hides the listed picture


def _hidden(kind: str) -> tuple[pa.DataType, list[Any], str]:
    """(column type, its cells, the part name the listed picture gets) for one way of hiding bytes."""
    x = LISTED_JPEG
    if kind == "struct field":
        t = pa.struct([("thumb", pa.binary()), ("note", pa.string())])
        return t, [None, {"thumb": x, "note": "n"}, {"thumb": b"s" * 8, "note": "m"}, None], "hide.thumb"
    if kind == "fixed_size_binary":
        return pa.binary(len(x)), [None, x, None, None], "hide"
    if kind == "list of lists":
        return pa.list_(pa.list_(pa.binary())), [[[]], [[b"tiny"], [b"", x]], None, [None]], "hide[1][1]"
    if kind == "dictionary":
        return pa.dictionary(pa.int32(), pa.binary()), [None, x, None, None], "hide"
    if kind == "map":
        return pa.map_(pa.string(), pa.binary()), [[], [("a", x)], None, [("b", None)]], "hide[0][1]"
    if kind == "binary_view":
        return pa.list_(pa.binary_view()), [None, [b"", x], [], None], "hide[1]"
    raise AssertionError(kind)


KINDS = ["struct field", "fixed_size_binary", "list of lists", "dictionary", "map", "binary_view"]


def _image_file(path: Path, kind: str) -> Path:
    t, cells, _ = _hidden(kind)
    table = pa.table(
        {
            "key": [f"k{i}" for i in range(N)],
            "jpg": [encode(picture(10 + i)) for i in range(N)],
            "hide": pa.array(cells, t),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="none")  # uncompressed: planted bytes would show verbatim
    return path


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_in_any_column_are_a_screened_part(tmp_path: Path, kind: str) -> None:
    path = _image_file(tmp_path / "ds" / "a.parquet", kind)
    src = ParquetImageSource([path])
    got = {it.key: it for it in src.read(src.shards()[0])}
    assert _hidden(kind)[2] in dict(got["k1"].parts)
    assert dict(got["k1"].parts)[_hidden(kind)[2]] == LISTED_JPEG
    assert all(len(b) >= 64 for it in got.values() for _, b in it.parts)  # short values hold no picture


@pytest.mark.parametrize("kind", KINDS)
def test_listed_picture_in_a_hidden_column_never_reaches_the_cleaned_copy(tmp_path: Path, bank: str, kind: str) -> None:
    path = _image_file(tmp_path / "ds" / "a.parquet", kind)
    summary = run_scan(ScanOptions(sources=[path], banks=[bank], out=tmp_path / "run", executor="inline"))
    assert summary["removed"] == 1
    removed = [r["key"] for r in RunStore(tmp_path / "run").items_table().to_pylist() if r["verdict"] == "remove"]
    assert removed == ["k1"]
    clean([path], tmp_path / "run", tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "a.parquet").column("key").to_pylist() == ["k0", "k2", "k3"]
    assert_not_listed(tmp_path / "out")


@pytest.mark.parametrize(
    ("t", "held"),
    [
        (pa.struct([("thumb", pa.binary())]), True),
        (pa.binary(16), True),
        (pa.list_(pa.list_(pa.large_binary())), True),
        (pa.dictionary(pa.int8(), pa.binary()), True),
        (pa.map_(pa.string(), pa.binary()), True),
        (pa.map_(pa.binary(), pa.string()), True),
        (pa.sparse_union([pa.field("a", pa.int8()), pa.field("b", pa.binary())]), True),
        (pa.dense_union([pa.field("a", pa.int8()), pa.field("b", pa.binary_view())]), True),
        (pa.list_(pa.binary(), 3), True),
        (pa.large_list_view(pa.binary()), True),
        (pa.string(), False),
        (pa.dictionary(pa.int8(), pa.string()), False),
        (pa.struct([("a", pa.string()), ("b", pa.list_(pa.int64()))]), False),
        (pa.decimal128(10, 2), False),
    ],
)
def test_holds_bytes(t: pa.DataType, held: bool) -> None:
    assert holds_bytes(t) is held


@pytest.mark.parametrize("kind", KINDS)
def test_laion_refuses_a_file_with_bytes_in_any_column(tmp_path: Path, kind: str) -> None:
    t, cells, _ = _hidden(kind)
    path = tmp_path / "meta" / "a.parquet"
    path.parent.mkdir()
    pq.write_table(
        pa.table({"url": [f"https://a.example/{i}.jpg" for i in range(N)], "hide": pa.array(cells, t)}), path
    )
    with pytest.raises(UserError, match=r"holds image bytes .*'hide'"):
        LaionSource([path])


def _with_metadata(table: pa.Table) -> pa.Table:
    hf = json.dumps({"info": {"features": {"jpg": {"_type": "Image"}}}})
    md = {b"huggingface": hf.encode(), b"raw": LISTED_JPEG, b"spelled": LISTED_B64, b"ok": b"a note"}
    fields = [f.with_metadata({b"doc": b"fine", b"blob": LISTED_B64}) for f in table.schema]
    return table.cast(pa.schema(fields, metadata=md))


@pytest.mark.parametrize("fmt", ["parquet", "laion"])
def test_metadata_that_may_carry_an_image_is_not_copied(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "ds" / "a.parquet"
    path.parent.mkdir()
    cols: dict[str, Any] = {"url": [f"https://a.example/{i}.jpg" for i in range(N)], "txt": ["c"] * N}
    if fmt == "parquet":
        cols["jpg"] = [encode(picture(10 + i)) for i in range(N)]
    pq.write_table(_with_metadata(pa.table(cols)), path, compression="none")
    src: ParquetImageSource | LaionSource = ParquetImageSource([path]) if fmt == "parquet" else LaionSource([path])
    sh = src.shards()[0]
    keys = {it.key for it in src.read(sh)}
    assert src.write_clean(sh, gate_for(src, sh, keys), tmp_path / "out") == N
    out = pq.ParquetFile(tmp_path / "out" / "a.parquet")
    md = out.schema_arrow.metadata
    assert md[b"ok"] == b"a note" and b"huggingface" in md and b"raw" not in md and b"spelled" not in md
    assert all(f.metadata == {b"doc": b"fine"} for f in out.schema_arrow)
    assert_not_listed(tmp_path / "out")


def test_text_cell_spelling_an_image_fails_its_row(tmp_path: Path) -> None:
    path = tmp_path / "ds" / "a.parquet"
    path.parent.mkdir()
    texts = ["a cat", LISTED_B64.decode(), "a dog", "x " + LISTED_JPEG.hex(",")]
    notes = [None, None, [{"path": "data:image/jpeg;base64,/9j/AAAA"}], None]
    table = pa.table(
        {
            "jpg": [encode(picture(10 + i)) for i in range(N)],
            "txt": texts,
            "notes": pa.array(notes, pa.list_(pa.struct([("path", pa.string())]))),
        }
    )
    pq.write_table(table, path, compression="none")
    src = ParquetImageSource([path])
    sh = src.shards()[0]
    got = list(src.read(sh))
    assert [it.error for it in got] == [
        None,
        "column 'txt' may embed an image (a base64 run); not screened",
        "column 'notes' may embed an image (a data URI); not screened",
        "column 'txt' may embed an image (hex-encoded bytes); not screened",
    ]
    gate = gate_for(src, sh, {it.key for it in got})
    assert src.write_clean(sh, gate, tmp_path / "out") == 1
    assert set(gate.unwritten()) == {"a/1", "a/2", "a/3"}
    assert_not_listed(tmp_path / "out")


def test_laion_clean_leaves_out_rows_whose_text_spells_an_image(tmp_path: Path) -> None:
    path = tmp_path / "meta" / "a.parquet"
    path.parent.mkdir()
    n = 6
    table = pa.table(
        {
            "url": [f"https://a.example/{i}.jpg" for i in range(n)],
            "caption": pa.array(["a cat", LISTED_B64.decode(), "x", None, "y", "z"], pa.large_string()),
            "tags": pa.array([None, None, None, ["ok", "<svg onload=1>"], None, None], pa.list_(pa.string())),
            "extra": pa.array(
                [{"s": "fine"}] * 4 + [{"s": LISTED_JPEG.hex(" ")}, None], pa.struct([("s", pa.string())])
            ),
        }
    )
    pq.write_table(table, path, compression="none")
    src = LaionSource([path])
    sh = src.shards()[0]
    keys = [it.key for it in src.read(sh)]
    assert all(b.column("error").null_count == b.num_rows for b in src.read_batches(sh))  # the scan: fast, unchanged
    gate = gate_for(src, sh, keys)
    assert src.write_clean(sh, gate, tmp_path / "out") == 3
    assert gate.unwritten() == {
        "a/1": "column 'caption' may embed an image (a base64 run); not screened",
        "a/3": "column 'tags' may embed an image (SVG markup); not screened",
        "a/4": "column 'extra' may embed an image (hex-encoded bytes); not screened",
    }
    out = pq.ParquetFile(tmp_path / "out" / "a.parquet")
    assert out.read().column("url").to_pylist() == [f"https://a.example/{i}.jpg" for i in (0, 2, 5)]
    again = LaionSource([tmp_path / "out"])
    assert [it.key for it in again.read(again.shards()[0])] == ["a/0", "a/2", "a/5"]
    assert_not_listed(tmp_path / "out")


def test_both_parquet_sources_pick_the_same_caption(tmp_path: Path) -> None:
    path = tmp_path / "ds" / "a.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"url": ["https://a.example/0.jpg"], "text": ["t"], "txt": ["x"], "caption": ["c"]}), path)
    assert CAPTION_NAMES[0] == "caption"
    assert next(iter(LaionSource([path]).read(LaionSource([path]).shards()[0]))).meta["caption"] == "c"
    pq.write_table(pa.table({"jpg": [encode(picture(3))], "text": ["t"], "txt": ["x"], "caption": ["c"]}), path)
    assert next(iter(ParquetImageSource([path]).read(ParquetImageSource([path]).shards()[0]))).meta["caption"] == "c"
