"""Clean is closed-world: tried as an attacker would, listed bytes never reach the cleaned copy.

Each test plants a benign "listed" picture (its md5 and PDQ in a stand-in bank) where an earlier cleanset let it
through, runs the real scan and clean, and asserts that no byte stream of the output carries it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from cleanset.actions.clean import CLEAN_MARKER, clean, read_clean_marker
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import UserError
from cleanset.pipeline.scan import ScanOptions, run_scan
from cleanset.runs.store import RunStore
from cleanset.signals.engine import HashConfig, HashEngine
from cleanset.sources.base import ContentChanged
from pictures import encode, photo, picture

LISTED = photo()
LISTED_JPEG = encode(LISTED)
ENGINE = HashEngine(HashConfig(signals=("md5", "pdq"), dihedral=False, regions=False))
LISTED_PDQ = ENGINE.hash_bytes(encode(LISTED, "PNG")).hashes["pdq"]  # of the picture's own pixels
LISTED_MD5 = hashlib.md5(LISTED_JPEG).hexdigest()


@pytest.fixture()
def bank(cleanset_home: Path) -> str:
    """The listed picture's md5 (of its JPEG bytes) and PDQ in a stored stand-in bank."""
    rows = [BankRow("md5", LISTED_MD5, "listed-md5"), BankRow("pdq", LISTED_PDQ, "listed-pdq")]
    BankStore.default().create_from_rows("standin", rows, note="benign stand-in")
    return "standin"


def scan(paths: list[Path], run: Path, bank: str, signals: tuple[str, ...] = ("md5", "pdq")) -> dict:
    return run_scan(ScanOptions(sources=paths, banks=[bank], out=run, signals=signals, executor="inline"))


def output_streams(out: Path) -> list[bytes]:
    """Every byte stream the cleaned copy holds: each file, and each member of each tar."""
    streams: list[bytes] = []
    for p in sorted(out.rglob("*")):
        if p.is_symlink():
            raise AssertionError(f"link in the cleaned output: {p}")
        if not p.is_file():
            continue
        data = p.read_bytes()
        streams.append(data)
        if tarfile.is_tarfile(p):
            with tarfile.open(p) as tf:
                for m in tf:
                    assert m.isfile(), f"{p}: member {m.name} is not a regular file"
                    f = tf.extractfile(m)
                    assert f is not None
                    streams.append(f.read())
    return streams


def assert_not_listed(out: Path) -> None:
    """No stream of the output decodes to the listed picture (PDQ within 31 bits) or has its md5."""
    want = int(LISTED_PDQ, 16)
    for data in output_streams(out):
        got = ENGINE.hash_bytes(data)
        assert got.hashes.get("md5") != LISTED_MD5
        for probe in got.probes:
            if probe.signal == "pdq":
                assert bin(int(probe.value, 16) ^ want).count("1") > 31


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("listed_first", [True, False])
def test_duplicate_member_name_in_a_group_writes_only_the_kept_copy(
    tmp_path: Path, bank: str, listed_first: bool
) -> None:
    decoy = encode(picture(2))
    pair = [("x.jpg", LISTED_JPEG), ("x.jpg", decoy)]
    members = [*(pair if listed_first else pair[::-1]), ("x.txt", b"a caption"), ("y.jpg", encode(picture(3)))]
    (tmp_path / "wds").mkdir()
    (tmp_path / "wds" / "00000.tar").write_bytes(tar_bytes(members))
    summary = scan([tmp_path / "wds"], tmp_path / "run", bank)
    assert summary["removed"] == 1 and summary["kept"] == 2
    report = clean([tmp_path / "wds"], tmp_path / "run", tmp_path / "out")
    assert report.written == 2
    with tarfile.open(tmp_path / "out" / "00000.tar") as tf:
        names = tf.getnames()
    assert names.count("x.jpg") == 1 and "x.txt" in names and "y.jpg" in names
    assert_not_listed(tmp_path / "out")


def test_tar_members_in_other_formats_are_screened_or_left_out(tmp_path: Path, bank: str) -> None:
    members = [
        ("a.jpg", encode(picture(2))),
        ("a.ppm", encode(LISTED, "PPM")),  # listed, in a format the scan did not decode
        ("a.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/jpeg;base64,AAAA"/></svg>'),
        ("b.jpg", encode(picture(3))),
        ("b.bin", LISTED_JPEG),  # listed bytes under a name that says nothing
        ("b.txt", b"caption of b"),
        ("c.jpg", encode(picture(4))),
        ("c.dat", b"\x00\x01binary\xff" * 10),  # neither image nor text: never copied unscreened
    ]
    (tmp_path / "wds").mkdir()
    (tmp_path / "wds" / "00000.tar").write_bytes(tar_bytes(members))
    summary = scan([tmp_path / "wds"], tmp_path / "run", bank)
    rows = {r["key"]: r for r in RunStore(tmp_path / "run").items_table().to_pylist()}
    assert rows["a.ppm"]["verdict"] == "remove" and rows["b.bin"]["verdict"] == "remove"
    assert rows["a.svg"]["status"] == "failed" and rows["c.dat"]["status"] == "failed"
    assert summary["items"] == summary["kept"] + summary["removed"] + summary["review"] + summary["failed"]
    clean([tmp_path / "wds"], tmp_path / "run", tmp_path / "out")
    with tarfile.open(tmp_path / "out" / "00000.tar") as tf:
        assert sorted(tf.getnames()) == ["a.jpg", "b.jpg", "b.txt", "c.jpg"]
    assert_not_listed(tmp_path / "out")


def test_folder_files_in_other_formats_and_binary_sidecars_are_left_out(tmp_path: Path, bank: str) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "x.jpg").write_bytes(encode(picture(2)))
    (root / "x.ppm").write_bytes(encode(LISTED, "PPM"))  # once a sidecar copied as is
    (root / "x.txt").write_text("a caption")
    (root / "y.jpg").write_bytes(encode(picture(3)))
    (root / "y.json").write_text('{"blob": "' + "QUFB" * 200 + '"}')  # base64 run: may embed an image
    (root / "z.svg").write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    summary = scan([root], tmp_path / "run", bank)
    rows = {r["key"]: r for r in RunStore(tmp_path / "run").items_table().to_pylist()}
    assert rows["x.ppm"]["verdict"] == "remove"
    assert rows["y.json"]["status"] == "failed" and rows["z.svg"]["status"] == "failed"
    assert summary["kept"] == 2
    clean([root], tmp_path / "run", tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [CLEAN_MARKER, "removed.parquet", "x.jpg", "x.txt", "y.jpg"]
    assert not any(p.is_symlink() or os.stat(p).st_nlink > 1 for p in (tmp_path / "out").iterdir())
    assert_not_listed(tmp_path / "out")


@pytest.mark.parametrize("kind", ["folder", "webdataset"])
def test_bytes_swapped_between_scan_and_clean_are_refused(tmp_path: Path, bank: str, kind: str) -> None:
    """sha256 is not among the signals: the content digest is recorded all the same, and clean checks it."""
    kept = encode(picture(5))
    if kind == "folder":
        (tmp_path / "ds").mkdir()
        (tmp_path / "ds" / "k.jpg").write_bytes(kept)
    else:
        (tmp_path / "ds").mkdir()
        (tmp_path / "ds" / "00000.tar").write_bytes(tar_bytes([("k.jpg", kept)]))
    summary = scan([tmp_path / "ds"], tmp_path / "run", bank, signals=("md5", "pdq"))
    assert summary["kept"] == 1
    if kind == "folder":
        (tmp_path / "ds" / "k.jpg").write_bytes(LISTED_JPEG)
    else:
        (tmp_path / "ds" / "00000.tar").write_bytes(tar_bytes([("k.jpg", LISTED_JPEG)]))
    key = "k.jpg" if kind == "folder" else "k"  # a folder key is the image's path, extension included
    with pytest.raises(ContentChanged, match=re.escape(f"'{key}'")):
        clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing that looks like a finished copy
    assert not list(tmp_path.glob(".out*"))  # nor a partial one


def test_clean_finishes_with_a_marker_and_leaves_no_partial_folder(tmp_path: Path, bank: str) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.jpg").write_bytes(encode(picture(6)))
    (tmp_path / "ds" / "b.jpg").write_bytes(LISTED_JPEG)
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    (tmp_path / "out").mkdir()  # an empty --out is fine
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    partial = tmp_path / f".out.cleanset-partial-{gone.pid}"  # a killed clean's, by a process that is gone
    partial.mkdir()
    (partial / "leftover.jpg").write_bytes(LISTED_JPEG)  # a killed clean's leftovers are swept, never renamed in
    clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    marker = read_clean_marker(tmp_path / "out")
    assert marker is not None and marker["kept"] == 1 and marker["removed"] == 1
    assert marker["run_fingerprint"] == RunStore(tmp_path / "run").manifest["fingerprint"]
    assert marker["revision"] == RunStore(tmp_path / "run").latest_revision()
    assert "run" not in marker and "sources" not in marker  # no local paths travel with the data
    assert not partial.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CLEAN_MARKER, "a.jpg", "removed.parquet"]
    assert (
        hashlib.sha256((tmp_path / "out" / "a.jpg").read_bytes()).hexdigest()
        == hashlib.sha256((tmp_path / "ds" / "a.jpg").read_bytes()).hexdigest()
    )


def test_sidecar_swapped_between_scan_and_clean_is_refused(tmp_path: Path, bank: str) -> None:
    """A URL-only group's JSON (its screened URL) and an image's caption are part of the content digest."""
    (tmp_path / "ds").mkdir()
    url_only = [("u.json", b'{"url": "https://example.org/screened.jpg"}'), ("u.txt", b"a caption")]
    shard = tmp_path / "ds" / "00000.tar"
    shard.write_bytes(tar_bytes([("k.jpg", encode(picture(7))), ("k.txt", b"caption"), *url_only]))
    summary = scan([tmp_path / "ds"], tmp_path / "run", bank)
    assert summary["kept"] == 2
    swapped = [("u.json", b'{"url": "https://example.org/never-screened.jpg"}'), ("u.txt", b"a caption")]
    shard.write_bytes(tar_bytes([("k.jpg", encode(picture(7))), ("k.txt", b"caption"), *swapped]))
    with pytest.raises(ContentChanged, match="'u'"):
        clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_kept_item_gone_before_clean_is_counted_failed_not_dropped_silently(tmp_path: Path, bank: str) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.jpg").write_bytes(encode(picture(8)))
    (tmp_path / "ds" / "b.jpg").write_bytes(encode(picture(9)))
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    (tmp_path / "ds" / "b.jpg").unlink()
    (tmp_path / "ds" / "b.jpg").mkdir()  # still listed as a name, but no longer a readable file
    report = clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    assert (report.kept, report.written, report.failed_when_cleaning) == (1, 1, 1)
    assert report.items == report.kept + report.removed + report.review_dropped + report.failed_dropped
    removed = {r["key"]: r for r in pq.read_table(tmp_path / "out" / "removed.parquet").to_pylist()}
    assert removed["b.jpg"]["dropped_as"] == "failed" and removed["b.jpg"]["reason"].startswith("clean: ")
    assert read_clean_marker(tmp_path / "out")["kept"] == 1  # type: ignore[index]


def test_a_source_file_named_like_the_removal_list_does_not_confuse_the_copy(tmp_path: Path, bank: str) -> None:
    """``removed.jpg`` at the root: the cleaned copy's ``removed.parquet`` is not taken for its sidecar, and a
    source ``removed.parquet`` is neither an item nor copied over the removal list."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "removed.jpg").write_bytes(encode(picture(10)))
    (tmp_path / "ds" / "removed.parquet").write_bytes(b"PAR1 not the removal list")
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    from cleanset.sources import open_source

    again = open_source([tmp_path / "out"])
    items = [it for sh in again.shards() for it in again.read(sh)]
    assert [it.key for it in items] == ["removed.jpg"] and not items[0].extras
    assert pq.read_table(tmp_path / "out" / "removed.parquet").num_rows == 0


def _animated(fmt: str, frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    extra: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    if fmt != "TIFF":
        extra["duration"] = 100
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **extra)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG", "WEBP"])
def test_listed_picture_as_a_later_frame_is_removed(tmp_path: Path, bank: str, fmt: str) -> None:
    """Frame 2 of an animation or page 2 of a TIFF: every frame is screened (up to a cap, then review)."""
    frames = [picture(20, 256), LISTED, picture(21, 256)]
    if fmt == "GIF":
        frames = [f.quantize(256, dither=Image.Dither.NONE).convert("RGB") for f in frames]
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / f"anim.{fmt.lower()}").write_bytes(_animated(fmt, frames))
    (tmp_path / "ds" / "ok.jpg").write_bytes(encode(picture(22)))
    summary = scan([tmp_path / "ds"], tmp_path / "run", bank)
    assert (summary["removed"], summary["kept"]) == (1, 1)
    clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "ok.jpg",
        "removed.parquet",
    ]


def test_listed_picture_resaved_as_16_bit_png_is_removed(tmp_path: Path, bank: str) -> None:
    grey16 = (np.asarray(LISTED.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(grey16).save(buf, "PNG")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "deep.png").write_bytes(buf.getvalue())
    summary = scan([tmp_path / "ds"], tmp_path / "run", bank)
    assert summary["removed"] == 1


def _wds_with_sibling(root: Path, groups: list[tuple[str, bytes]], rows: pa.Table) -> None:
    root.mkdir()
    (root / "00000.tar").write_bytes(tar_bytes([(f"{k}.jpg", data) for k, data in groups]))
    pq.write_table(rows, root / "00000.parquet")


def test_img2dataset_sibling_parquet_is_checked_and_cleaned(tmp_path: Path, bank: str) -> None:
    """The shard's metadata Parquet: schema metadata that may carry an image is dropped, a swap since the scan is
    refused, and text spelling an image in a kept row stops the clean."""
    rows = pa.table({"key": ["a", "b"], "url": ["https://e.org/a", "https://e.org/b"], "status": ["success"] * 2})
    blob = base64.b64encode(LISTED_JPEG)
    _wds_with_sibling(
        tmp_path / "ds", [("a", encode(picture(30))), ("b", LISTED_JPEG)], rows.replace_schema_metadata({"x": blob})
    )
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    out = pq.read_table(tmp_path / "out" / "00000.parquet")
    assert out.column("key").to_pylist() == ["a"] and not (out.schema.metadata or {}).get(b"x")

    swapped = pa.table({"key": ["a", "b"], "url": ["https://e.org/other", "x"], "status": ["success"] * 2})
    pq.write_table(swapped, tmp_path / "ds" / "00000.parquet")
    with pytest.raises(ContentChanged):
        clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out2")


def test_sibling_text_spelling_an_image_stops_the_clean(tmp_path: Path, bank: str) -> None:
    rows = pa.table({"key": ["a"], "caption": [base64.b64encode(LISTED_JPEG).decode()], "status": ["success"]})
    _wds_with_sibling(tmp_path / "ds", [("a", encode(picture(31)))], rows)
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    with pytest.raises(UserError, match="may embed an image"):
        clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")


def test_a_stored_key_shared_by_a_kept_and_a_removed_group_keeps_no_metadata_row(tmp_path: Path, bank: str) -> None:
    """Two groups stored as ``a`` (not next to each other): the removed one's URL must not stay in the Parquet."""
    rows = pa.table({"key": ["a", "z", "a"], "url": ["https://e.org/1", "https://e.org/z", "https://listed.example/2"]})
    (tmp_path / "ds").mkdir()
    members = [("a.jpg", encode(picture(32))), ("z.jpg", encode(picture(33))), ("a.jpg", LISTED_JPEG)]
    (tmp_path / "ds" / "00000.tar").write_bytes(tar_bytes(members))
    pq.write_table(rows, tmp_path / "ds" / "00000.parquet")
    summary = scan([tmp_path / "ds"], tmp_path / "run", bank)
    assert summary["removed"] == 1
    clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "00000.parquet").column("key").to_pylist() == ["z"]


def test_keep_failed_counts_each_failed_item_once(tmp_path: Path, bank: str) -> None:
    """An item unreadable at scan and at clean, kept with --keep-failed: one failed item, dropped once."""
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.jpg").write_bytes(encode(picture(40)))
    (tmp_path / "ds" / "empty.jpg").write_bytes(b"")  # failed at the scan: nothing was read
    (tmp_path / "ds" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")  # read, but not decodable
    scan([tmp_path / "ds"], tmp_path / "run", bank)
    report = clean([tmp_path / "ds"], tmp_path / "run", tmp_path / "out", keep_failed=True)
    assert (report.failed_kept, report.failed_dropped, report.failed_when_cleaning) == (1, 1, 0)
    assert report.items == report.kept + report.removed + report.review_dropped + report.failed_dropped
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".jpg") == ["a.jpg", "broken.jpg"]
