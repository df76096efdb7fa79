"""A rematch after the clean makes the cleaned copy stale: rematch says so, and attest refuses the copy until it is
cleaned again (the new list versions may flag items the copy still holds). Real scan, rematch, clean and attest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cleanset.actions import dsse
from cleanset.actions.attestation import attest
from cleanset.actions.clean import clean
from cleanset.actions.verify import verify
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import UserError
from cleanset.pipeline.scan import ScanOptions, run_scan
from cleanset.sources.synth import sample_items, write_folder


def test_rematch_after_clean_makes_the_copy_stale(tmp_path: Path, cleanset_home: Path) -> None:
    samples = sample_items(6, seed=5)
    src = write_folder(tmp_path / "src", samples, captions=False)
    md5 = [hashlib.md5(s.data).hexdigest() for s in samples]
    store = BankStore.default()
    store.create_from_rows("standin", [BankRow("md5", md5[0], "E0")], note="benign stand-in")
    run = tmp_path / "run"
    run_scan(ScanOptions(sources=[src], banks=["standin"], out=run, signals=("md5",), executor="inline"))
    first = tmp_path / "clean1"
    clean([src], run, first)
    priv, pub = dsse.generate_keypair(tmp_path / "keys")
    key = dsse.load_private_key(priv)
    attest(run=run, dataset=[first], key=key, out=tmp_path / "a1.json")

    # The list's next version flags one more of the items the first copy holds.
    store.create_from_rows("standin", [BankRow("md5", m, f"E{i}") for i, m in enumerate(md5[:2])], note="v2")
    proc = subprocess.run(
        [sys.executable, "-m", "cleanset", "rematch", str(run), "--bank", "standin"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CLEANSET_HOME": str(cleanset_home)},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"the cleaned copy {first.resolve()} was made at revision 0 and is now stale (revision 1)" in proc.stderr
    assert "Run `cleanset clean` again" in proc.stderr
    with pytest.raises(UserError, match=r"cleaned at revision 0, but .* is at revision 1"):
        attest(run=run, dataset=[first], key=key, out=tmp_path / "a2.json")

    second = tmp_path / "clean2"
    clean([src], run, second)
    st = attest(run=run, dataset=[second], key=key, out=tmp_path / "a2.json")
    assert st["predicate"]["dataset"]["items"] == 4 and st["predicate"]["scan"]["revision"] == 1
    assert verify([second], tmp_path / "a2.json", dsse.load_public_key(pub)).ok
