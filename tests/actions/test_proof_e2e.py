"""The proof chain through the real CLI: scan -> clean -> report -> keygen -> attest -> verify (and a tampered copy)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_scan_clean_report_attest_verify(tmp_path: Path, cleanset_home: Path) -> None:
    from cleanset.banks.base import BankRow
    from cleanset.banks.store import BankStore
    from cleanset.signals.engine import HashConfig, HashEngine
    from cleanset.sources.synth import sample_items, write_folder

    items = sample_items(12, seed=21)
    ds = write_folder(tmp_path / "ds", items, subdirs=2, captions=False)
    h = [HashEngine(HashConfig()).hash_bytes(it.data).hashes for it in items[:2]]
    BankStore.default().create_from_rows(
        "listA", [BankRow("md5", h[0]["md5"], "A0"), BankRow("pdq", h[1]["pdq"], "A1")]
    )
    env = {**os.environ, "CLEANSET_HOME": str(cleanset_home)}

    def cli(*args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, env=env, check=False
        )
        assert p.returncode == rc, (args, p.stdout[-2000:], p.stderr[-2000:])
        return p

    run, clean = tmp_path / "run", tmp_path / "clean"
    cli("scan", str(ds), "--bank", "listA", "--out", str(run), "--workers", "1")
    cli("clean", str(ds), str(run), "--out", str(clean))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["removed"] == 2 and summary["kept"] == 10

    card = cli("report", str(run), "--json", "--card").stdout
    report = json.loads((run / "report.json").read_text())
    assert report["counts"] == {k: summary[k] for k in ("items", "kept", "removed", "review", "failed")}
    assert report["matches_by_bank"] == summary["matches_by_bank"]
    assert sorted(r["entry_id"] for r in report["flagged"]) == ["A0", "A1"]
    html = (run / "report.html").read_text()
    assert f'id="count-removed" data-count="{summary["removed"]}"' in html
    assert "| listA | 1 | block | 2 |" in card
    for value in (h[0]["md5"], h[1]["pdq"]):  # the list's values (here: the items' own hashes) appear nowhere
        assert value not in html and value not in card and value not in json.dumps(report)

    cli("keygen", "--out", str(tmp_path / "keys"))
    cli("attest", str(run), "--key", str(tmp_path / "keys" / "cleanset.key"))
    att = run / "attestation.intoto.json"
    assert h[0]["md5"] not in att.read_text()
    pub = str(tmp_path / "keys" / "cleanset.pub")
    ok = cli("verify", str(clean), str(att), "--pubkey", pub).stdout
    assert "verified: 10 items" in ok and "listA@1" in ok

    tampered = tmp_path / "tampered"
    shutil.copytree(clean, tampered)
    victim = next(p for p in sorted(tampered.rglob("*.jpg")))
    victim.unlink()
    bad = cli("verify", str(tampered), str(att), "--pubkey", pub, rc=1)
    key = f"{victim.parent.name}/{victim.name}"  # a folder key is the image's path, extension included
    assert f"removed item {key!r}" in bad.stderr
