"""`cleanset bank` run as a real subprocess: what it prints, its exit codes, and that no list value ever leaves
the store through output or through any file other than the value arrays."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from bank_samples import hexes, write

from cleanset.signals import get_signal

PDQ = hexes("pdq", 6, 31)
MD5 = hexes("md5", 3, 32)
SHA1 = hexes("sha1", 2, 33)
URLS = ["https://example.com/secret-path/one.jpg", "https://example.org/other/two.png"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=120, check=False
    )


def forms(value: str) -> list[str]:
    """Ways a hex value could be leaked in text: lower/upper hex, base64 and raw bytes as latin-1."""
    raw = bytes.fromhex(value)
    return [value.lower(), value.upper(), base64.b64encode(raw).decode(), base64.b16encode(raw).decode()]


@pytest.fixture()
def secret_list(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """A CSV whose values and URLs must never be shown; returns (file, hex values stored, readable secrets)."""
    lines = ["signal_type,signal_value,id,source"]
    lines += [f"pdq,{v},p{i},hotline-a" for i, v in enumerate(PDQ)]
    lines += [f"md5,{v.upper()},m{i},hotline-a" for i, v in enumerate(MD5)]
    lines += [f"sha1,{v},s{i},hotline-b" for i, v in enumerate(SHA1)]
    lines += [f"url,{u},u{i},hotline-b" for i, u in enumerate(URLS)]
    url_hashes = [get_signal("url_sha1").compute_url(u) for u in URLS]  # type: ignore[attr-defined]
    return write(tmp_path / "list.csv", "\n".join(lines) + "\n"), [*PDQ, *MD5, *SHA1, *url_hashes], URLS


def test_cli_never_shows_values(cleanset_home: Path, tmp_path: Path, secret_list) -> None:  # type: ignore[no-untyped-def]
    path, values, urls = secret_list
    runs = [
        cli("bank", "import", "hot", str(path), "--note", "first", "--threshold", "pdq=24"),
        cli("bank", "import", "hot", str(path), "--json"),
        cli("bank", "list"),
        cli("bank", "list", "--json"),
        cli("bank", "info", "hot"),
        cli("bank", "info", "hot", "--json"),
    ]
    bad = write(tmp_path / "bad.csv", f"signal_type,signal_value,id\npdq,{PDQ[0]},a\npdq,{PDQ[1][:-1]},b\n")
    runs.append(cli("bank", "import", "hot", str(bad)))
    for r in runs[:-1]:
        assert r.returncode == 0, r.stderr
    assert runs[-1].returncode == 2 and f"{bad}:3:" in runs[-1].stderr
    text = "\n".join(r.stdout + r.stderr for r in runs)
    for v in [*values, PDQ[1][:-1]]:
        for form in forms(v) if len(v) % 2 == 0 else [v, v.upper()]:
            assert form not in text
    for u in urls:
        assert u not in text and "secret-path" not in text
    # ... and the output did say something real
    info = json.loads(runs[5].stdout)
    assert info["latest"]["counts"] == {"md5": 3, "pdq": 6, "sha1": 2, "url_sha1": 2}
    assert info["thresholds"]["pdq"] == 24
    assert [v["version"] for v in info["versions"]] == [1]  # the second import was identical: no new version

    # Files: values live only in values/*.npy; manifests and entry tables hold none, and no URL is kept anywhere.
    value_files, other_files = [], []
    for p in cleanset_home.rglob("*"):
        if p.is_file():
            (value_files if p.parent.name == "values" else other_files).append(p)
    assert value_files and other_files
    blob_values = b"".join(p.read_bytes() for p in value_files)
    assert all(bytes.fromhex(v) in blob_values for v in values)  # the search below would find a leak
    for p in other_files:
        data = p.read_bytes()
        for v in values:
            assert bytes.fromhex(v) not in data, p
            assert all(f.encode() not in data for f in forms(v)), p
    for p in [*value_files, *other_files]:
        assert all(u.encode() not in p.read_bytes() for u in urls)


def test_cli_list_info_remove_and_errors(cleanset_home: Path, tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "\n".join(PDQ) + "\n")
    r = cli("bank", "import", "plainbank", str(f))
    assert r.returncode == 2 and "--signal" in r.stderr
    r = cli("bank", "import", "plainbank", str(f), "--signal", "pdq", "--allow", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["allow"] and report["counts"] == {"pdq": 6} and report["format"] == "plain"
    r = cli("bank", "info", "missing")
    assert r.returncode == 2 and "no bank named 'missing'" in r.stderr
    r = cli("bank", "remove", "plainbank", "--yes")
    assert r.returncode == 0 and "removed bank plainbank" in r.stdout
    assert not (cleanset_home / "banks" / "plainbank").exists()


def test_outside_text_is_not_read_as_markup(
    cleanset_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notes and source file names are the user's text: rich markup in them is printed, not interpreted."""
    monkeypatch.setenv("COLUMNS", "400")  # one line per table row, so the text can be found whole
    path = write(tmp_path / "list[b]s.csv", f"signal_type,signal_value,id\nmd5,{MD5[0]},m0\n")
    imported = cli("bank", "import", "hot", str(path), "--note", "fix [/x]")
    assert imported.returncode == 0, imported.stderr
    info = cli("bank", "info", "hot")
    assert info.returncode == 0, info.stderr
    assert "fix [/x]" in info.stdout and "list[b]s.csv" in info.stdout
    assert cli("bank", "list").returncode == 0


def test_remove_needs_yes_off_a_terminal_and_speaks_json(tmp_path: Path, cleanset_home: Path) -> None:
    f = tmp_path / "l.txt"
    f.write_text("ab" * 32 + "\n")
    assert cli("bank", "import", "gone", str(f), "--signal", "pdq").returncode == 0
    refused = cli("bank", "remove", "gone")  # no terminal: no prompt to hang on, a clear error instead
    assert refused.returncode == 2 and "--yes" in refused.stderr
    done = cli("bank", "remove", "gone", "--yes", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == {"removed": "gone", "versions": 1}
    missing = cli("bank", "info", "gone")
    assert missing.returncode == 2 and "CLEANSET_HOME" in missing.stderr
