"""rematch: stored probes against new bank versions, no image read; equal to a fresh scan against those versions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleanset.banks.base import MemoryBank
from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.results.rematch import rematch
from cleanset.runs.schema import to_table
from cleanset.runs.store import RunStore
from cleanset.runs.summary import summarize

RNG = np.random.default_rng(7)


def rand_hex(nbytes: int) -> str:
    return RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes().hex()


def flip_bits(hex_value: str, n: int, start: int = 0) -> str:
    """``hex_value`` with bits start..start+n-1 flipped: exactly n bits away."""
    b = bytearray(bytes.fromhex(hex_value))
    for i in range(start, start + n):
        b[i // 8] ^= 1 << (i % 8)
    return b.hex()


def ok_item(key: str, shard: str, pdq: str, md5: str, matches: list[Match], verdict: Verdict) -> ItemResult:
    probes = [
        Probe("md5", "md5", md5),
        Probe("pdq/original", "pdq", pdq, 90),
        Probe("pdq/rotate90", "pdq", flip_bits(pdq, 40, start=100), 90),
    ]
    return ItemResult(key, shard, Status.OK, None, verdict, {"md5": md5, "pdq": pdq}, probes=probes, matches=matches)


def hand_run(tmp_path: Path) -> tuple[Path, list[dict]]:
    """Five items over two shards: i0 matched by md5 (A0), i1 by pdq (A1, 5 bits), i2 unmatched, i3 unmatched,
    and a failed item."""
    vals = [{"pdq": rand_hex(32), "md5": rand_hex(16)} for _ in range(4)]
    results = [
        ok_item("i0", "s0", vals[0]["pdq"], vals[0]["md5"], [Match("listA", 1, "A0", "md5", 0, "md5")], Verdict.REMOVE),
        ok_item(
            "i1",
            "s0",
            vals[1]["pdq"],
            vals[1]["md5"],
            [Match("listA", 1, "A1", "pdq", 5, "pdq/original")],
            Verdict.REMOVE,
        ),
        ok_item("i2", "s1", vals[2]["pdq"], vals[2]["md5"], [], Verdict.KEEP),
        ok_item("i3", "s1", vals[3]["pdq"], vals[3]["md5"], [], Verdict.KEEP),
        ItemResult("bad", "s1", Status.FAILED, "decode: truncated", None),
    ]
    run = tmp_path / "run"
    (run / "items").mkdir(parents=True)
    for sid in ("s0", "s1"):
        pq.write_table(to_table([r for r in results if r.shard == sid]), run / "items" / f"{sid}.parquet")
    manifest = {
        "cleanset_version": "0.1.0",
        "banks": [{"name": "listA", "version": 1, "allow": False, "entry_count": 2, "digest": "x", "thresholds": {}}],
        "quality_gate": 50,
        "policy": {"review_above": 20, "bank_actions": {}, "allow_banks": [], "score_review": {}},
        "fingerprint": "f" * 64,
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    summary = summarize(to_table(results))
    summary.update(started="t0", finished="t1", shards={"total": 2, "committed": 2})
    (run / "summary.json").write_text(json.dumps(summary))
    return run, vals


def test_rematch_hand_run(tmp_path: Path, cleanset_home: Path) -> None:
    run, v = hand_run(tmp_path)
    # v2 drops A0, keeps A1, adds i2's md5 (A2) and a pdq 25 bits from i3's rotated view (A3: review, > 20 bits).
    v2 = MemoryBank.from_hex(
        "listA",
        [
            ("pdq", flip_bits(v[1]["pdq"], 5), "A1"),
            ("md5", v[2]["md5"], "A2"),
            ("pdq", flip_bits(flip_bits(v[3]["pdq"], 40, start=100), 25), "A3"),
        ],
        version=2,
    )
    res = rematch(run, [], snapshots=[v2])
    assert res.revision == 1 and res.base_revision == 0 and res.items == 5 and res.matched_items == 4
    store = RunStore(run)
    assert store.latest_revision() == 1
    rows = {r["key"]: r for r in store.items_table().to_pylist()}
    assert rows["i0"]["verdict"] == "keep" and rows["i0"]["matches"] == []
    assert [(m["entry_id"], m["version"], m["distance"]) for m in rows["i1"]["matches"]] == [("A1", 2, 5)]
    assert rows["i2"]["verdict"] == "remove" and rows["i2"]["matches"][0]["entry_id"] == "A2"
    assert rows["i3"]["verdict"] == "review"
    assert (rows["i3"]["matches"][0]["probe"], rows["i3"]["matches"][0]["distance"]) == ("pdq/rotate90", 25)
    assert (
        rows["bad"]["status"] == "failed"
        and rows["bad"]["verdict"] is None
        and rows["bad"]["reason"] == "decode: truncated"
    )
    changes = pq.read_table(run / "revisions" / "1" / "changes.parquet").to_pylist()
    got = sorted((c["key"], c["change"], c["entry_id"], c["old_verdict"], c["new_verdict"]) for c in changes)
    assert got == [
        ("i0", "no_longer_matched", "A0", "remove", "keep"),
        ("i0", "verdict_changed", None, "remove", "keep"),
        ("i2", "newly_matched", "A2", "keep", "remove"),
        ("i2", "verdict_changed", None, "keep", "remove"),
        ("i3", "newly_matched", "A3", "keep", "review"),
        ("i3", "verdict_changed", None, "keep", "review"),
    ]
    s = store.summary
    assert (s["items"], s["kept"], s["removed"], s["review"], s["failed"]) == (5, 1, 2, 1, 1)
    assert s["banks"] == [{"name": "listA", "version": 2}] and s["revision"] == 1
    assert (
        store.manifest["banks"][0]["version"] == 2 and store.manifest["revision"]["previous_banks"][0]["version"] == 1
    )
    assert RunStore(run).summary_of(0)["removed"] == 2  # the scan's own results are untouched

    # A second rematch builds on revision 1; an allow bank now suppresses i2's md5 probe.
    allow = MemoryBank.from_hex("fp", [("md5", v[2]["md5"], "F1")], allow=True)
    res2 = rematch(run, [], snapshots=[v2, allow])
    assert res2.revision == 2 and res2.base_revision == 1
    rows = {r["key"]: r for r in RunStore(run).items_table().to_pylist()}
    assert rows["i2"]["verdict"] == "keep" and any("allow bank fp" in n for n in rows["i2"]["notes"])
    assert "fp" in RunStore(run).manifest["policy"]["allow_banks"]


def e2e_env(home: Path) -> dict[str, str]:
    return {**os.environ, "CLEANSET_HOME": str(home)}


@pytest.mark.slow
def test_rematch_equals_fresh_scan(tmp_path: Path, cleanset_home: Path) -> None:
    """Scan with v1, import v2 (entries added and removed), rematch; a fresh scan against v2 gives the same
    verdicts and matches, item by item. listB is not re-matched and stays at the run's version."""
    from cleanset.banks.base import BankRow
    from cleanset.banks.store import BankStore
    from cleanset.signals.engine import HashConfig, HashEngine
    from cleanset.sources.synth import sample_items, write_folder

    items = sample_items(18, seed=11)
    ds = write_folder(tmp_path / "ds", items, subdirs=3, captions=False)
    eng = HashEngine(HashConfig())
    h = [eng.hash_bytes(it.data).hashes for it in items[:8]]
    store = BankStore.default()
    store.create_from_rows("listA", [BankRow("pdq", h[1]["pdq"], "A1"), BankRow("pdq", h[2]["pdq"], "A2")])
    store.create_from_rows("listC", [BankRow("md5", h[0]["md5"], "C0"), BankRow("md5", h[6]["md5"], "C6")])
    store.create_from_rows("listB", [BankRow("sha256", h[3]["sha256"], "B3")])

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [sys.executable, "-m", "cleanset", *args],
            capture_output=True,
            text=True,
            env=e2e_env(cleanset_home),
            check=False,
        )
        assert p.returncode == 0, p.stderr[-3000:]
        return p

    banks = ["--bank", "listA", "--bank", "listB", "--bank", "listC"]
    cli("scan", str(ds), *banks, "--out", str(tmp_path / "run1"), "--workers", "1")
    # v2: A2 and C0 removed, A1 and C6 kept, A5 (pdq 6 bits off item 5) and C4 (md5 of item 4) added.
    store.create_from_rows(
        "listA", [BankRow("pdq", h[1]["pdq"], "A1"), BankRow("pdq", flip_bits(h[5]["pdq"], 6), "A5")]
    )
    store.create_from_rows("listC", [BankRow("md5", h[6]["md5"], "C6"), BankRow("md5", h[4]["md5"], "C4")])
    hidden = ds.rename(tmp_path / "ds-away")  # rematch must not need the images: take them away meanwhile
    out = cli("rematch", str(tmp_path / "run1"), "--bank", "listA", "--bank", "listC").stdout
    hidden.rename(ds)
    assert "revision 1" in out and "newly matched 2" in out and "no longer matched 2" in out
    assert "incremental" in out and "listA@2" in out and "listB@1" in out
    cli("scan", str(ds), *banks, "--out", str(tmp_path / "run2"), "--workers", "1")

    def view(run: Path) -> dict[str, tuple]:
        t = RunStore(run).items_table().to_pylist()
        return {
            r["key"]: (r["status"], r["verdict"], sorted(tuple(sorted(m.items())) for m in r["matches"])) for r in t
        }

    rematched, fresh = view(tmp_path / "run1"), view(tmp_path / "run2")
    assert rematched == fresh
    entries = sorted(m[2][1] for v in fresh.values() for m in v[2])
    assert entries == ["A1", "A5", "B3", "C4", "C6"]
    s1, s2 = RunStore(tmp_path / "run1").summary, RunStore(tmp_path / "run2").summary
    for k in ("items", "kept", "removed", "review", "failed", "matches_by_bank", "matches_by_probe"):
        assert s1[k] == s2[k], k
    assert RunStore(tmp_path / "run1").manifest["banks"] == RunStore(tmp_path / "run2").manifest["banks"]


def random_run(tmp_path: Path, v1: MemoryBank, allow: MemoryBank, n: int = 240) -> Path:
    """Items whose probes sit at many distances from v1's entries; matches and verdicts from the real matcher."""
    from cleanset.assess.policy import Policy, decide
    from cleanset.matching.matcher import BankMatcher

    rng = np.random.default_rng(3)
    pdq_entries = [bytes(v).hex() for v in v1.values("pdq")]
    md5_entries = [bytes(v).hex() for v in v1.values("md5")]
    results = []
    for i in range(n):
        base = pdq_entries[i % len(pdq_entries)] if i % 3 else rand_hex(32)
        pdq = flip_bits(base, int(rng.integers(0, 45)), start=int(rng.integers(0, 200)))
        md5 = md5_entries[i % len(md5_entries)] if i % 7 == 0 else rand_hex(16)
        q = 30 if i % 11 == 0 else 90
        probes = [
            Probe("md5", "md5", md5),
            Probe("pdq/original", "pdq", pdq, q),
            Probe("pdq/flipx", "pdq", flip_bits(pdq, int(rng.integers(0, 30)), start=100), q),
        ]
        if i % 13 == 0:
            failed = ItemResult(f"k{i:04d}", f"s{i % 3}", Status.FAILED, "decode: x", None)
            results.append(failed)
            continue
        results.append(ItemResult(f"k{i:04d}", f"s{i % 3}", Status.OK, None, Verdict.KEEP, probes=probes))
    matcher = BankMatcher.build([v1, allow])
    policy = Policy(review_above=20, allow_banks=frozenset({allow.name}))
    ok = [r for r in results if r.status is Status.OK]
    for r, (ms, notes) in zip(ok, matcher.match_many([r.probes for r in ok]), strict=True):
        r.matches = sorted(ms, key=lambda m: (m.bank, m.signal, m.probe, m.distance, m.entry_id))
        r.notes = notes
        r.verdict = decide(r.status, r.matches, None, policy)
    run = tmp_path / "run"
    (run / "items").mkdir(parents=True)
    for sid in ("s0", "s1", "s2"):
        pq.write_table(to_table([r for r in results if r.shard == sid]), run / "items" / f"{sid}.parquet")
    banks = [
        {
            "name": b.name,
            "version": b.version,
            "allow": b.allow,
            "entry_count": b.entry_count,
            "digest": "",
            "thresholds": {},
        }
        for b in (v1, allow)
    ]
    manifest = {"banks": banks, "quality_gate": 50, "policy": policy.to_dict(), "fingerprint": "0" * 64}
    (run / "manifest.json").write_text(json.dumps(manifest))
    (run / "summary.json").write_text(json.dumps(summarize(to_table(results))))
    assert sum(1 for r in results if r.matches) > 20  # the run has plenty of matches to lose and gain
    return run


def test_incremental_equals_full(tmp_path: Path, cleanset_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cleanset.results.rematch as rm

    entries = [("pdq", rand_hex(32), f"P{i}") for i in range(30)] + [("md5", rand_hex(16), f"M{i}") for i in range(10)]
    entries.append(("md5", rand_hex(16), "P3"))  # one id with two signals
    v1 = MemoryBank.from_hex("listA", entries, version=1)
    allow = MemoryBank.from_hex("fp", [("pdq", entries[5][1], "F5")], allow=True)
    run = random_run(tmp_path, v1, allow)
    # v2: drops P0-P4 and M0-M2, changes P6's value, adds near-duplicates of existing entries under new ids.
    kept = [e for e in entries if e[2] not in {"P0", "P1", "P2", "P3", "P4", "M0", "M1", "M2", "P6"}]
    added = [("pdq", flip_bits(entries[i][1], 9, start=50), f"N{i}") for i in range(0, 30, 3)]
    added += [("pdq", flip_bits(entries[6][1], 3), "P6"), ("md5", entries[35][1], "N35")]
    v2 = MemoryBank.from_hex("listA", kept + added, version=2)
    monkeypatch.setattr(rm, "open_old", lambda manifest, name: v1 if name == "listA" else None)
    shutil.copytree(run, tmp_path / "run_full")
    inc = rematch(run, [], snapshots=[v2, allow])
    full = rematch(tmp_path / "run_full", [], snapshots=[v2, allow], full=True)
    assert inc.mode == "incremental" and full.mode == "full"
    assert (inc.entries_added, inc.entries_removed) == (12, 10)  # P3 has a pdq and an md5 entry

    def rows(r: Path) -> list[tuple]:
        t = RunStore(r).items_table().to_pylist()
        return [(x["key"], x["status"], x["verdict"], x["matches"]) for x in t]

    assert rows(run) == rows(tmp_path / "run_full")
    assert inc.changes == full.changes and inc.transitions == full.transitions
    assert inc.changes["newly_matched"] > 0 and inc.changes["no_longer_matched"] > 0

    def changes(r: Path) -> list[dict]:
        return sorted(
            pq.read_table(r / "revisions" / "1" / "changes.parquet").to_pylist(),
            key=lambda c: sorted((k, str(v)) for k, v in c.items()),
        )

    assert changes(run) == changes(tmp_path / "run_full")


def test_rematch_sweeps_revisions_a_killed_rematch_left(tmp_path: Path, cleanset_home: Path) -> None:
    """A half-built revision of a dead process holds the run's hashes: the next rematch removes it."""
    import subprocess

    run, v = hand_run(tmp_path)
    revisions = run / "revisions"
    revisions.mkdir(exist_ok=True)
    proc = subprocess.Popen(["true"])
    proc.wait()
    leftover = revisions / f".tmp-7-{proc.pid}"
    (leftover / "items").mkdir(parents=True)
    (leftover / "items" / "s.parquet").write_bytes(b"hashes")
    rematch(run, [], snapshots=[MemoryBank.from_hex("listA", [("md5", v[2]["md5"], "A2")], version=2)])
    assert not leftover.exists()


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_rematch_rewrites_the_rules_that_fired(tmp_path: Path, cleanset_home: Path, full: bool) -> None:
    """The report's per-rule counts and the neighbour pass read ``rules``: a verdict rematch changed must name the
    rules of the new verdict, not keep the old one's (a withdrawn entry's ``bank-match`` included)."""
    run, v = hand_run(tmp_path)
    for sid in ("s0", "s1"):  # the scan had named the bank rule for the two matched items
        path = run / "items" / f"{sid}.parquet"
        t = pq.read_table(path)
        rules = [["bank-match"] if k in ("i0", "i1") else [] for k in t.column("key").to_pylist()]
        pq.write_table(
            t.set_column(t.schema.get_field_index("rules"), "rules", pa.array(rules, pa.list_(pa.string()))), path
        )
    v2 = MemoryBank.from_hex("listA", [("pdq", flip_bits(v[1]["pdq"], 5), "A1"), ("md5", v[2]["md5"], "A2")], version=2)
    rematch(run, [], snapshots=[v2], full=full)
    rows = {r["key"]: r for r in RunStore(run).items_table().to_pylist()}
    assert rows["i0"]["verdict"] == "keep" and rows["i0"]["rules"] == []  # A0 withdrawn
    assert rows["i1"]["rules"] == ["bank-match"]
    assert rows["i2"]["verdict"] == "remove" and rows["i2"]["rules"] == ["bank-match"]
    assert rows["i3"]["rules"] == []


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_policy_files_allow_bank_stays_allowed_after_rematch(tmp_path: Path, cleanset_home: Path, full: bool) -> None:
    """A bank the scan's policy file allowed (not an allow list in the store) still never counts after a rematch;
    a store allow list re-imported as a block list is what stops counting as one."""
    run, v = hand_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["policy"]["allow_banks"] = ["listA"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    v2 = MemoryBank.from_hex("listA", [("md5", v[2]["md5"], "A2")], version=2)
    rematch(run, [], snapshots=[v2], full=full)
    rows = {r["key"]: r for r in RunStore(run).items_table().to_pylist()}
    assert rows["i2"]["matches"] and rows["i2"]["verdict"] == "keep"
