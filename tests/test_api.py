"""The Python API: its documented examples run, and one round trip (check, scan, clean, attest, verify, report) on
benign generated pictures gives the answers the layers below give."""

from __future__ import annotations

import doctest
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import cleanset
import cleanset.api as api
from cleanset.actions import dsse
from cleanset.records import FAILURE_CODES
from cleanset.sources.synth import sample_items, write_folder


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buf, "PNG")
    return buf.getvalue()


def test_documented_examples_run() -> None:
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0


def test_the_root_reexports_the_api_lazily() -> None:
    code = "import sys, cleanset; assert 'cleanset.api' not in sys.modules; cleanset.check_bytes; print('ok')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "ok\n"
    assert cleanset.check_bytes is api.check_bytes
    with pytest.raises(AttributeError):
        _ = cleanset.no_such_name  # type: ignore[attr-defined]


def test_checks_name_matches_never_values(tmp_path: Path) -> None:
    data = _png((10, 200, 90))
    md5 = hashlib.md5(data).hexdigest()
    banks = api.banks_from_rows(tmp_path / "home", "standin", [("md5", md5, "E7")])
    check = api.check_bytes(data, banks)
    assert check.verdict == "remove" and check.failure is None
    assert check.hashes["md5"] == md5  # the item's own hash; the list's value is nowhere in the answer
    answer = json.dumps(check.to_dict())
    assert '"entry_id": "E7"' in answer and answer.count(md5) == 0
    assert [m.probe for m in check.matches] == ["md5"]
    assert api.check_bytes(_png((1, 2, 3)), banks).verdict == "keep"


def test_check_hashes_accepts_a_mapping_or_probes(tmp_path: Path) -> None:
    data = _png((120, 30, 30))
    banks = api.banks_from_rows(tmp_path / "home", "standin", [("md5", hashlib.md5(data).hexdigest(), "E1")])
    hashes = api.check_bytes(data, banks).hashes
    assert api.check_hashes({"md5": hashes["md5"].upper()}, banks).verdict == "remove"
    probes = api.check_bytes(data, banks)
    assert api.check_hashes({"sha256": hashes["sha256"]}, banks).verdict == "keep"
    assert probes.matches == api.check_hashes({"md5": hashes["md5"]}, banks).matches
    with pytest.raises(ValueError):
        api.check_hashes({"md5": "xyz"}, banks)


def test_check_url_matches_a_url_list(tmp_path: Path) -> None:
    banks0 = api.banks_from_rows(tmp_path / "h0", "empty", [("md5", "0" * 32, "Z")])
    hashed = api.check_url("https://example.org/a.jpg", banks0).hashes
    sig = next(s for s in ("url_sha1", "url_md5") if s in hashed)
    banks = api.banks_from_rows(tmp_path / "home", "urls", [(sig, hashed[sig], "U1")])
    assert api.check_url("https://example.org/a.jpg", banks).verdict == "remove"
    assert api.check_url("https://example.org/b.jpg", banks).verdict == "keep"


def test_a_failure_carries_a_stable_code(tmp_path: Path) -> None:
    banks = api.banks_from_rows(tmp_path / "home", "standin", [("md5", "0" * 32, "E1")])
    check = api.check_bytes(b"\x00" * 64, banks)
    assert check.verdict is None and check.failure is not None
    assert check.failure.code in FAILURE_CODES and check.failure.detail
    assert check.to_dict()["failure"]["code"] == check.failure.code


def test_scan_clean_attest_verify_report(tmp_path: Path, cleanset_home: Path) -> None:
    samples = sample_items(5, seed=11)
    src = write_folder(tmp_path / "src", samples, captions=False)
    md5 = hashlib.md5(samples[0].data).hexdigest()
    api.banks_from_rows(cleanset_home, "standin", [("md5", md5, "E0")])
    banks = api.open_banks(["standin"])
    run = tmp_path / "run"
    summary = api.scan([src], banks, run, signals=("md5",), executor="inline")
    assert (summary["items"], summary["removed"], summary["failures_by_code"]) == (5, 1, {})
    report = api.clean([src], run, tmp_path / "clean")
    assert report is not None
    priv, pub = dsse.generate_keypair(tmp_path / "keys")
    statement = api.attest(run, tmp_path / "clean", priv, tmp_path / "a.json")
    assert statement["predicate"]["dataset"]["items"] == 4
    assert api.verify(tmp_path / "clean", tmp_path / "a.json", pub).ok
    html, data = api.report(run)
    assert html.is_file() and len(data["flagged"]) == 1 and data["failures_by_code"] == []
