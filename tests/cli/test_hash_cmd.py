"""`cleanset hash` as a user runs it (a real subprocess): JSON lines, exit codes, --signals, --no-dihedral."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanset", "hash", *args], capture_output=True, text=True, timeout=300
    )


def lines(out: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.stdout.splitlines()]


def published(root: Path, name: str) -> str:
    with (root / "expected_hashes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["file (relative to pdq-vectors/data/)"] == name and row["expected_source"].startswith("python-"):
                return row["expected_pdq_hex"]
    raise AssertionError(name)


@pytest.fixture()
def files(tmp_path: Path, pdq_reference: Path) -> dict[str, Path]:
    data = pdq_reference / "data"
    out = {
        "wee": tmp_path / "wee.jpg",
        "bridge": tmp_path / "bridge.jpg",
        "corrupt": tmp_path / "corrupt.jpg",
        "text": tmp_path / "notes.txt",
    }
    shutil.copyfile(data / "misc-images" / "wee.jpg", out["wee"])
    shutil.copyfile(data / "bridge-mods" / "aaa-orig.jpg", out["bridge"])
    out["corrupt"].write_bytes(out["bridge"].read_bytes()[:5000])
    out["text"].write_text("not an image\n")
    return out


def test_good_and_bad_files(files: dict[str, Path], pdq_reference: Path) -> None:
    missing = files["wee"].parent / "missing.jpg"
    out = run(str(files["wee"]), str(files["bridge"]), str(files["corrupt"]), str(files["text"]), str(missing))
    assert out.returncode == 1, out.stderr
    rows = lines(out)
    assert [r["path"] for r in rows] == [
        str(files["wee"]),
        str(files["bridge"]),
        str(files["corrupt"]),
        str(files["text"]),
        str(missing),
    ]
    wee, bridge, corrupt, text, gone = rows
    assert wee["status"] == bridge["status"] == "ok"
    assert wee["md5"] == hashlib.md5(files["wee"].read_bytes()).hexdigest()
    assert wee["sha256"] == hashlib.sha256(files["wee"].read_bytes()).hexdigest()
    assert wee["pdq"] == published(pdq_reference, "misc-images/wee.jpg")
    assert bridge["pdq"] == published(pdq_reference, "bridge-mods/aaa-orig.jpg")
    assert bridge["pdq_quality"] == 100 and bridge["pdq512"] != bridge["pdq"]
    assert (bridge["width"], bridge["height"], bridge["format"]) == (1600, 1004, "JPEG")
    assert isinstance(bridge["probes"], dict) and "pdq/rotate90" in bridge["probes"]
    assert "pdq512/flipx" in bridge["probes"] and "pdq512/flipx" not in wee.get("probes", {})  # type: ignore[operator]
    for bad in (corrupt, text, gone):
        assert bad["status"] == "failed" and bad["reason"]
        assert not {"pdq", "phash"} & set(bad)  # no perceptual hash of what could not be decoded
    for readable in ("corrupt", "text"):  # but the file digests, so a list can still name the file
        row = {"corrupt": corrupt, "text": text}[readable]
        assert row["md5"] == hashlib.md5(files[readable].read_bytes()).hexdigest()
    assert "md5" not in gone
    assert str(corrupt["reason"]).startswith("decode:")
    assert str(gone["reason"]).startswith("read:")


def test_signals_and_no_dihedral(files: dict[str, Path]) -> None:
    out = run("--signals", "md5,pdq", "--no-dihedral", str(files["wee"].parent))
    assert out.returncode == 1  # the folder holds the corrupt and text files too
    rows = {Path(str(r["path"])).name: r for r in lines(out)}
    assert set(rows) == {"wee.jpg", "bridge.jpg", "corrupt.jpg", "notes.txt"}
    assert set(rows["bridge.jpg"]) == {"path", "status", "md5", "pdq", "pdq_quality", "width", "height", "format"}
    ok = run("--signals", "sha1", str(files["wee"]), str(files["text"]))
    assert ok.returncode == 0  # byte signals need no decoding
    assert [r["sha1"] for r in lines(ok)] == [
        hashlib.sha1(files["wee"].read_bytes()).hexdigest(),
        hashlib.sha1(files["text"].read_bytes()).hexdigest(),
    ]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--signals", "md5,nosuch"], "nosuch"),
        (["--signals", "url_sha1"], "url_sha1"),
        (["--frobnicate"], "frobnicate"),
    ],
)
def test_usage_errors_exit_2(files: dict[str, Path], args: list[str], needle: str) -> None:
    out = run(*args, str(files["wee"]))
    assert out.returncode == 2
    assert needle in out.stderr and out.stdout == ""
