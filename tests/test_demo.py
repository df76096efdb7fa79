"""The demo as a newcomer runs it: a real `cleanset demo` subprocess, checked against what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq

from cleanset.demo import EDITS


def test_demo_finds_every_planted_item_and_verifies(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "cleanset", "demo", "--out", str(out), "--images", "60"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "attestation verified" in proc.stderr

    run = out / "run"
    summary = json.loads(next(iter(sorted(run.glob("revisions/*/summary.json")))).read_text())
    assert summary["items"] == 60
    assert summary["items"] == summary["kept"] + summary["removed"] + summary["review"] + summary["failed"]
    # Every listed item (edited copies, the MD5 entry, the entry added in v2) is removed; the cut file failed.
    assert summary["removed"] == len(EDITS) + 2
    assert summary["failed"] == 1

    removed = pq.read_table(out / "cleaned" / "removed.parquet").to_pylist()
    removed_keys = {r["key"] for r in removed}
    kept_keys = set()
    for tar in sorted((out / "cleaned").glob("*.tar")):
        with tarfile.open(tar) as tf:
            kept_keys |= {Path(m.name).name.split(".")[0] for m in tf.getmembers()}
    assert len(kept_keys) == summary["kept"]
    assert not kept_keys & removed_keys
    assert len(removed_keys) == summary["removed"] + summary["failed"]

    html = (run / "report.html").read_text()
    assert "<img" not in html.lower()

    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanset",
            "verify",
            str(out / "cleaned"),
            str(out / "attestation.intoto.json"),
            "--pubkey",
            str(out / "keys" / "cleanset.pub"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
