"""The bank store: versions, history, digest, thresholds, allow banks, owner-only files, the snapshot seam."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from bank_samples import csv_text, hexes, write

from cleanset.banks.base import BankRow, BankSnapshot
from cleanset.banks.store import BankStore, parse_thresholds
from cleanset.errors import InputFormatError, UserError

PDQ = hexes("pdq", 30, 21)
MD5 = hexes("md5", 10, 22)


@pytest.fixture()
def store(cleanset_home: Path) -> BankStore:
    return BankStore.default()


def csv_file(tmp_path: Path, name: str, pdq: list[str], md5: list[str] = ()) -> Path:  # type: ignore[assignment]
    rows = [("pdq", v, f"p{PDQ.index(v)}") for v in pdq] + [("md5", v, f"m{MD5.index(v)}") for v in md5]
    return write(tmp_path / name, csv_text(rows, extra="hotline-a"))


def test_default_store_lives_under_cleanset_home(store: BankStore, cleanset_home: Path) -> None:
    assert store.root == cleanset_home


def test_import_open_and_snapshot_protocol(store: BankStore, tmp_path: Path) -> None:
    f = csv_file(tmp_path, "l.csv", PDQ[:20], MD5[:5])
    report = store.import_file("hotline", f, note="weekly")
    assert (report.version, report.entry_count, report.counts) == (1, 25, {"md5": 5, "pdq": 20})
    snap = store.open("hotline")
    assert isinstance(snap, BankSnapshot)
    assert (snap.name, snap.version, snap.allow, snap.entry_count) == ("hotline", 1, False, 25)
    assert snap.signals() == ["md5", "pdq"]
    vals = snap.values("pdq")
    assert vals.dtype == np.uint8 and vals.shape == (20, 32) and isinstance(vals, np.memmap)
    ids = snap.entry_ids("pdq")
    stored = {ids[i]: bytes(vals[i]).hex() for i in range(len(ids))}
    assert stored == {f"p{i}": PDQ[i] for i in range(20)}
    assert [bytes(v) for v in vals] == sorted(bytes(v) for v in vals)  # canonical order
    assert snap.labels("pdq", 0) == {"source": "hotline-a"}
    assert snap.threshold("pdq") == 31 and snap.threshold("md5") == 0
    assert snap.digest == report.digest and snap.digest.startswith("sha256:")
    m = snap.manifest
    assert m.note == "weekly" and m.format == "csv" and m.source.file == "l.csv"
    assert m.source.sha256 == "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()
    assert m.created.endswith("Z")


def test_versions_record_added_and_removed(store: BankStore, tmp_path: Path) -> None:
    store.import_file("b", csv_file(tmp_path, "v1.csv", PDQ[:10], MD5[:4]))
    r2 = store.import_file("b", csv_file(tmp_path, "v2.csv", PDQ[3:15], MD5[2:4]), note="refresh")
    assert (r2.version, r2.added, r2.removed) == (2, 5, 5)  # +pdq 10..14; -pdq 0..2, -md5 0..1
    r3 = store.import_file("b", csv_file(tmp_path, "v3.csv", PDQ[3:15], MD5[2:4]))
    assert r3.unchanged and (r3.version, r3.digest) == (2, r2.digest)  # identical: no new version
    assert store.open("b", 1).entry_count == 14
    assert store.open("b").version == 2
    assert [v.version for v in store.versions("b")] == [1, 2]
    info = store.info("b")
    assert [v["note"] for v in info["versions"]] == ["", "refresh"]
    with pytest.raises(UserError, match="bank 'b' has no version 7"):
        store.open("b", 7)
    with pytest.raises(UserError, match="no bank named 'nope'"):
        store.open("nope")
    with pytest.raises(UserError, match="no bank named 'nope'"):
        store.info("nope")


def test_digest_is_order_and_format_independent_and_pinned(store: BankStore, tmp_path: Path) -> None:
    rows = [("pdq", PDQ[i], f"p{i}") for i in range(8)] + [("md5", MD5[0], "m0")]
    a = store.import_file("a", write(tmp_path / "a.csv", csv_text(rows)))
    shuffled = rows[::-1]
    jsonl = "\n".join(
        json.dumps({"signal_type": s, "signal_value": v.upper(), "id": i, "x": 1}) for s, v, i in shuffled
    )
    b = store.import_file("b", write(tmp_path / "b.jsonl", jsonl + "\n"))
    assert a.digest == b.digest
    c = store.import_file("c", write(tmp_path / "c.csv", csv_text([*rows[:-1], ("md5", MD5[0], "other")])))
    assert c.digest != a.digest
    # The byte layout is part of the format: recompute it from the documented definition.
    h = hashlib.sha256(b"cleanset-bank-content-v1\n")
    for sig, width in (("md5", 16), ("pdq", 32)):
        entries = sorted((bytes.fromhex(v), i) for s, v, i in rows if s == sig)
        h.update(f"{sig}\n{len(entries)}\n{width}\n".encode())
        h.update(b"".join(v for v, _ in entries))
        h.update(b"".join(len(i.encode()).to_bytes(8, "little") for _, i in entries))
        h.update(b"".join(i.encode() for _, i in entries))
    assert a.digest == "sha256:" + h.hexdigest()


def test_files_and_directories_are_owner_only_whatever_the_umask(
    store: BankStore, tmp_path: Path, cleanset_home: Path
) -> None:
    old = os.umask(0)
    try:
        store.import_file("p", csv_file(tmp_path, "l.csv", PDQ[:5], MD5[:2]))
        store.import_file("p", csv_file(tmp_path, "l2.csv", PDQ[:6]))
    finally:
        os.umask(old)
    seen_files = 0
    for dirpath, _, filenames in os.walk(cleanset_home):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for name in filenames:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, name)).st_mode) == 0o600, name
            seen_files += 1
    assert seen_files == 2 * 1 + 2 * 2 + 1 * 2  # two manifests, v1: 2 signals x 2 files, v2: 1 signal x 2 files
    assert not [p for p in (cleanset_home / "banks" / "p").iterdir() if p.name.startswith(".")]


def test_allow_flag_and_thresholds_carry_across_versions(store: BankStore, tmp_path: Path) -> None:
    f = csv_file(tmp_path, "l.csv", PDQ[:5], MD5[:1])
    r = store.import_file("fp", f, allow=True, thresholds={"pdq": 24})
    assert r.allow and r.thresholds == {"md5": 0, "pdq": 24}
    assert store.open("fp").allow and store.open("fp").threshold("pdq") == 24
    store.import_file("fp", f)  # no flags: keeps both
    assert store.open("fp").allow and store.open("fp").threshold("pdq") == 24
    store.import_file("fp", f, allow=False, thresholds={"pdq": 20})
    assert not store.open("fp").allow and store.open("fp").threshold("pdq") == 20
    assert store.open("fp", 1).threshold("pdq") == 24  # history is immutable
    for bad, words in (({"md5": 3}, "matched exactly"), ({"pdq": 300}, "outside 0..256"), ({"tlsh": 1}, "unknown")):
        with pytest.raises(UserError, match=words):
            store.import_file("fp", f, thresholds=bad)
    assert parse_thresholds(["pdq=24", " phash = 6"]) == {"pdq": 24, "phash": 6}
    with pytest.raises(UserError, match="SIGNAL=N"):
        parse_thresholds(["pdq:24"])


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "..", "sp ace", "x" * 200])
def test_bank_names_are_checked(store: BankStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="invalid bank name"):
        store.import_file(name, csv_file(tmp_path, "l.csv", PDQ[:1]))


def test_failed_import_leaves_no_version(store: BankStore, tmp_path: Path, cleanset_home: Path) -> None:
    store.import_file("x", csv_file(tmp_path, "ok.csv", PDQ[:3]))
    bad = write(tmp_path / "bad.csv", csv_text([("pdq", PDQ[0], "a"), ("pdq", PDQ[1][:-1], "b")]))
    with pytest.raises(InputFormatError, match=r"bad\.csv:3: pdq value must be 64 hex digits, got 63"):
        store.import_file("x", bad)
    assert [v.version for v in store.versions("x")] == [1]
    r = store.import_file("x", bad, skip_invalid=True)
    assert (r.version, r.skipped, r.entry_count) == (2, 1, 1)
    assert store.open("x").manifest.skipped == 1
    with pytest.raises(InputFormatError, match="no entries"):
        store.import_file("x", write(tmp_path / "none.csv", csv_text([("pdq", "zz", "a")])), skip_invalid=True)
    with pytest.raises(UserError, match="no such file"):
        store.import_file("x", tmp_path / "missing.csv")
    leftovers = [p for p in (cleanset_home / "banks" / "x").rglob("*") if p.name.startswith(".")]
    assert leftovers == []


def test_create_from_rows_list_and_remove(store: BankStore) -> None:
    rows = [BankRow("pdq", PDQ[0], "photo-1"), BankRow("phash", "00ff00ff00ff00ff", "photo-1")]
    r = store.create_from_rows("demo", rows, note="stand-in")
    assert r.counts == {"pdq": 1, "phash": 1} and r.format == "rows"
    assert store.open("demo").threshold("phash") == 8
    with pytest.raises(InputFormatError, match="<rows>:1: pdq value must be 64"):
        store.create_from_rows("demo", [BankRow("pdq", "abc", "x")])
    store.create_from_rows("other", [BankRow("md5", MD5[0], "m")], allow=True)
    assert [(m.name, m.version, m.allow) for m in store.list()] == [("demo", 1, False), ("other", 1, True)]
    store.remove("demo")
    assert [m.name for m in store.list()] == ["other"]
    with pytest.raises(UserError, match="no bank named 'demo'"):
        store.remove("demo")
    assert store.create_from_rows("demo", rows).version == 1  # a removed name starts again at version 1


def test_plain_and_url_imports_through_the_store(store: BankStore, tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", "\n".join(PDQ[:4]) + "\n")
    with pytest.raises(InputFormatError, match="--signal"):
        store.import_file("p", f)
    assert store.import_file("p", f, signal="pdq").counts == {"pdq": 4}
    u = write(tmp_path / "u.txt", "https://example.com/1\nhttps://example.com/2\n")
    r = store.import_file("u", u)
    assert r.format == "urls" and r.counts == {"url_sha1": 2}
    again = store.import_file("p", f, format="te", signal="pdq")  # same entries through another format
    assert again.unchanged and again.version == 1


def test_in_memory_digest_equals_stored_digest(store: BankStore) -> None:
    from cleanset.banks.digest import digest_of

    entries = [("pdq", PDQ[i], f"p{i}") for i in (5, 1, 3)] + [("md5", MD5[2], "m")]

    def rows(es: list[tuple[str, str, str]]) -> dict[str, tuple[np.ndarray, list[str]]]:
        out: dict[str, tuple[np.ndarray, list[str]]] = {}
        for sig in {s for s, _, _ in es}:
            sel = [(v, i) for s, v, i in es if s == sig]
            out[sig] = (np.array([list(bytes.fromhex(v)) for v, _ in sel], dtype=np.uint8), [i for _, i in sel])
        return out

    stored = store.create_from_rows("mem", [BankRow(s, v, i) for s, v, i in entries])
    assert digest_of(rows(entries)) == stored.digest
    assert digest_of(rows(entries[::-1])) == stored.digest
    assert digest_of(rows(entries[:-1])) != stored.digest
