"""`cleanset match` as a user runs it: a real subprocess against a real bank store.

Exit status: 0 nothing matched, 1 something matched (or an input could not be hashed), 2 usage error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore

PDQ = "f162eb9daab170c0567fe3632d9a5548c5612982dd5e374a7424ebbc8a835c95"
MD5 = "9e107d9d372bb6826bd81d3542a419d6"


def flip_hex(value: str, bits: int) -> str:
    x = int(value, 16)
    for b in range(bits):
        x ^= 1 << (7 * b)
    return f"{x:0{len(value)}x}"


def run(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLEANSET_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cleanset", "match", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture()
def home(cleanset_home: Path) -> Path:
    store = BankStore(cleanset_home)
    store.create_from_rows("hotline", [BankRow("pdq", PDQ, "p-1"), BankRow("md5", MD5, "m-1")])
    store.create_from_rows("fp", [BankRow("pdq", flip_hex(PDQ, 20), "fp-1")], allow=True, thresholds={"pdq": 8})
    return cleanset_home


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in out.splitlines()]


def test_hashes_on_the_command_line(home: Path) -> None:
    res = run(home, "--bank", "hotline", flip_hex(PDQ, 9), MD5, flip_hex(PDQ, 32))
    assert res.returncode == 1, res.stderr  # something matched
    out = lines(res.stdout)
    assert [o["input"] for o in out] == [flip_hex(PDQ, 9), MD5, flip_hex(PDQ, 32)]
    assert out[0]["matches"] == [
        {"bank": "hotline", "version": 1, "entry_id": "p-1", "signal": "pdq", "distance": 9, "probe": "pdq"}
    ]
    assert [m["entry_id"] for m in out[1]["matches"]] == ["m-1"]
    assert out[2]["matches"] == []
    assert PDQ not in res.stdout and PDQ not in res.stderr


def test_hash_json_lines_with_quality_gate_and_allow_bank(home: Path, tmp_path: Path) -> None:
    records = [
        {"path": "a.jpg", "status": "ok", "hashes": {"pdq": flip_hex(PDQ, 3), "md5": MD5}, "pdq_quality": 30},
        {"path": "b.jpg", "status": "ok", "hashes": {"pdq": flip_hex(PDQ, 3)}, "pdq_quality": 90},
        {
            "path": "c.jpg",
            "probes": [{"name": "pdq/rotate90", "signal": "pdq", "value": flip_hex(PDQ, 18), "quality": 90}],
        },
    ]
    f = tmp_path / "hashes.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    res = run(home, "-b", "hotline", "-b", "fp", "--file", str(f))
    assert res.returncode == 1, res.stderr
    a, b, c = lines(res.stdout)
    assert [m["signal"] for m in a["matches"]] == ["md5"]
    assert a["notes"] == ["pdq probe pdq/original below quality gate: matched exactly only"]
    assert [(m["entry_id"], m["distance"]) for m in b["matches"]] == [("p-1", 3)]
    assert c["matches"] == [] and c["notes"] == ["probe pdq/rotate90 is in allow bank fp (entry fp-1): not matched"]


def test_signal_option_and_ambiguous_lengths(home: Path) -> None:
    res = run(home, "-b", "hotline", "--signal", "pdq512", flip_hex(PDQ, 2))
    assert res.returncode == 1, res.stderr
    (out,) = lines(res.stdout)
    assert [(m["probe"], m["signal"], m["distance"]) for m in out["matches"]] == [("pdq512", "pdq", 2)]
    res = run(home, "-b", "hotline", "--signal", "sha256", PDQ)  # same length as pdq, asked as sha256 only
    assert lines(res.stdout)[0]["matches"] == [] and res.returncode == 0
    res = run(home, "-b", "hotline", "a" * 40)  # sha1 length: the bank holds no sha1
    assert lines(res.stdout)[0]["notes"] == ["no chosen bank holds sha1 or url_sha1 values"]


def test_failed_hash_record_is_reported_and_exit_code_says_so(home: Path) -> None:
    res = run(
        home, "-b", "hotline", "-f", "-", stdin=json.dumps({"path": "x", "status": "failed", "reason": "decode: bad"})
    )
    assert res.returncode == 1
    assert lines(res.stdout)[0]["notes"] == ["not matched: hashing failed: decode: bad"]


def test_bad_line_is_named(home: Path, tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text(f"{MD5}\n\nnot-a-hash\n")
    res = run(home, "-b", "hotline", "-f", str(f))
    assert res.returncode == 2
    assert f"{f}:3:" in res.stderr


def test_unknown_bank_is_a_user_error_naming_cleanset_home_and_the_banks(home: Path) -> None:
    res = run(home, "-b", "nope", MD5)
    assert res.returncode == 2 and res.stdout == ""
    assert f"no bank named 'nope' in CLEANSET_HOME={home}; banks there: fp, hotline" in res.stderr
    assert "Traceback" not in res.stderr


def test_exit_status_0_when_nothing_matched_1_when_something_did(home: Path, tmp_path: Path) -> None:
    clean = run(home, "-b", "hotline", flip_hex(PDQ, 32), "0" * 32)
    assert clean.returncode == 0, clean.stderr
    assert [o["matches"] for o in lines(clean.stdout)] == [[], []]
    hit = run(home, "-b", "hotline", "0" * 32, MD5)  # one of two inputs matches
    assert hit.returncode == 1, hit.stderr
    assert [len(o["matches"]) for o in lines(hit.stdout)] == [0, 1]
    f = tmp_path / "many.txt"  # a match in a later batch still sets the status
    f.write_text("\n".join(["0" * 32] * 5000 + [MD5]) + "\n")
    res = run(home, "-b", "hotline", "-f", str(f))
    assert res.returncode == 1 and len(lines(res.stdout)) == 5001


def test_threshold_is_inclusive_at_31_bits(home: Path) -> None:
    """docs/matching.md: "distance ≤ threshold", so 31 bits from an entry matches at the default and 32 does not."""
    res = run(home, "-b", "hotline", flip_hex(PDQ, 31), flip_hex(PDQ, 32))
    assert res.returncode == 1
    at, past = lines(res.stdout)
    assert [(m["entry_id"], m["distance"]) for m in at["matches"]] == [("p-1", 31)] and past["matches"] == []


def test_one_json_object_per_input_and_no_bank_value(home: Path, tmp_path: Path) -> None:
    """Inputs from a hash file are named by their file, so the output holds no hash at all: a near match must not
    tell the reader the listed value."""
    f = tmp_path / "h.jsonl"
    f.write_text(
        json.dumps({"path": "a.jpg", "status": "ok", "pdq": flip_hex(PDQ, 5), "pdq_quality": 90})
        + "\n"
        + json.dumps({"path": "b.jpg", "status": "ok", "md5": "1" * 32})
        + "\n"
    )
    res = run(home, "-b", "hotline", "-f", str(f))
    assert res.returncode == 1, res.stderr
    out = lines(res.stdout)
    assert [o["input"] for o in out] == ["a.jpg", "b.jpg"] and all(isinstance(o, dict) for o in out)
    assert set(out[0]) == {"input", "line", "matches", "verdict", "reasons", "notes"}
    assert set(out[0]["matches"][0]) == {"bank", "version", "entry_id", "signal", "distance", "probe"}
    for value in (PDQ, MD5, flip_hex(PDQ, 5)):
        assert value not in res.stdout and value not in res.stderr


def test_bank_at_version(home: Path) -> None:
    """`--bank NAME@V` as in `scan`: an older version of a bank answers with its own entries and version."""
    BankStore(home).create_from_rows("hotline", [BankRow("md5", MD5, "m-2")])  # version 2 drops the pdq entry
    res = run(home, "-b", "hotline@1", flip_hex(PDQ, 4))
    assert res.returncode == 1, res.stderr
    assert [(m["version"], m["entry_id"]) for m in lines(res.stdout)[0]["matches"]] == [(1, "p-1")]
    res = run(home, "-b", "hotline", "--signal", "pdq", flip_hex(PDQ, 4))  # the latest: no pdq entry left
    assert res.returncode == 0 and lines(res.stdout)[0]["matches"] == []
    res = run(home, "-b", "hotline@2", MD5)
    assert res.returncode == 1 and lines(res.stdout)[0]["matches"][0]["version"] == 2
    res = run(home, "-b", "hotline@3", MD5)
    assert res.returncode == 2 and "has no version 3 (versions: 1, 2)" in res.stderr


@pytest.mark.parametrize("gate", ["-1", "101"])
def test_quality_gate_out_of_range_is_a_usage_error(home: Path, gate: str) -> None:
    res = run(home, "-b", "hotline", "--quality-gate", gate, MD5)
    assert res.returncode == 2 and res.stdout == ""
    assert f"--quality-gate must be 0..100 (a PDQ quality), got {gate}" in res.stderr


def test_quality_gate_bounds_are_accepted(home: Path, tmp_path: Path) -> None:
    f = tmp_path / "h.jsonl"
    f.write_text(json.dumps({"path": "a.jpg", "status": "ok", "pdq": flip_hex(PDQ, 3), "pdq_quality": 100}) + "\n")
    res = run(home, "-b", "hotline", "--quality-gate", "100", "-f", str(f))
    assert res.returncode == 1 and lines(res.stdout)[0]["notes"] == []  # 100 is not below a gate of 100
    res = run(home, "-b", "hotline", "--quality-gate", "0", "-f", str(f))
    assert res.returncode == 1, res.stderr


def test_cleanset_hash_output_is_matched(cleanset_home: Path, tmp_path: Path) -> None:
    """`cleanset hash FILE > h.jsonl; cleanset match -f h.jsonl`: the layout hash writes (hashes as top-level
    fields, extra PDQ probes as a {name: value} object) is read back and matched."""
    import hashlib

    from cleanset.sources.synth import sample_items

    img = tmp_path / "cat.jpg"
    img.write_bytes(sample_items(1, seed=5)[0].data)
    env = {**os.environ, "CLEANSET_HOME": str(cleanset_home)}
    hashed = subprocess.run(
        [sys.executable, "-m", "cleanset", "hash", str(img)], env=env, capture_output=True, text=True, timeout=120
    )
    assert hashed.returncode == 0, hashed.stderr
    record = json.loads(hashed.stdout)
    assert "hashes" not in record and isinstance(record["probes"], dict)  # the layout under test
    out = tmp_path / "h.jsonl"
    out.write_text(hashed.stdout)
    md5 = hashlib.md5(img.read_bytes()).hexdigest()
    BankStore(cleanset_home).create_from_rows("mine", [BankRow("md5", md5, "m-9")])
    res = run(cleanset_home, "-b", "mine", "-f", str(out))
    assert res.returncode == 1, res.stderr
    [line] = lines(res.stdout)
    assert line["input"] == str(img)
    assert [(m["entry_id"], m["probe"]) for m in line["matches"]] == [("m-9", "md5")]


def test_hash_layout_probes_get_their_signal_and_quality() -> None:
    from cleanset.cli.match_cmd import _from_hash_json

    other = flip_hex(PDQ, 30)
    rec = {
        "path": "a.jpg",
        "status": "ok",
        "md5": MD5,
        "pdq": PDQ,
        "pdq512": other,
        "pdq_quality": 80,
        "pdq512_quality": 70,
        "probes": {"pdq/rotate90": PDQ, "pdq512/flipx": other, "trim/original": PDQ},
    }
    got = {(p.name, p.signal, p.quality) for p in _from_hash_json(json.dumps(rec))["probes"]}
    assert got == {
        ("md5", "md5", None),
        ("pdq/original", "pdq", 80),
        ("pdq512/original", "pdq", 70),
        ("pdq/rotate90", "pdq", 80),
        ("pdq512/flipx", "pdq", 70),
        ("trim/original", "pdq", 80),
    }
    with pytest.raises(ValueError, match="needs hash fields"):
        _from_hash_json(json.dumps({"path": "a.jpg", "status": "ok", "width": 3}))
