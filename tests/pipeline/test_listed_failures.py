"""A file that cannot be decoded is failed, but its file digests are still matched: a listed file is never kept
because it was unreadable, and a list update finds it without reading it again. Plus the order-independent tie
rule and allow-to-block list changes, which rematch must decide exactly as a fresh scan does."""

from __future__ import annotations

import hashlib
from pathlib import Path

from scan_fixtures import make_wds, wds_members, write_tar

from cleanset.actions.clean import clean
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.matching.matcher import BankMatcher
from cleanset.pipeline.scan import ScanOptions, run_scan
from cleanset.records import Probe
from cleanset.results.rematch import rematch
from cleanset.runs.store import RunStore


def _rows(run: Path) -> dict[str, dict]:
    cols = ["key", "status", "verdict", "matches"]
    return {r["key"]: r for r in RunStore(run).items_table(columns=cols).to_pylist()}


def _view(run: Path) -> dict[str, tuple]:
    def matches(r: dict) -> list[tuple]:
        return sorted((m["bank"], m["entry_id"], m["probe"], m["distance"]) for m in r["matches"])

    return {k: (r["status"], r["verdict"], matches(r)) for k, r in _rows(run).items()}


def test_undecodable_listed_file_is_matched_dropped_and_rematched(tmp_path: Path, cleanset_home: Path) -> None:
    shards, images = make_wds(tmp_path / "ds", shards=1, per_shard=4)
    cut = next(iter(images.values()))[:200]  # a truncated JPEG: cannot be decoded
    extra = write_tar(tmp_path / "ds" / "00001.tar", wds_members(["bad0001"], [cut]))
    store = BankStore.default()
    store.create_from_rows("hot", [BankRow("md5", hashlib.md5(b"unrelated").hexdigest(), "x")])
    run = tmp_path / "run"
    run_scan(ScanOptions(sources=[*shards, extra], banks=["hot"], out=run, executor="inline"))
    assert _rows(run)["bad0001"]["status"] == "failed" and not _rows(run)["bad0001"]["matches"]

    # the list gains the broken file's md5: rematch finds it from the stored digest, as a fresh scan does
    store.create_from_rows("hot", [BankRow("md5", hashlib.md5(cut).hexdigest(), "listed-broken")])
    rematch(run, ["hot"])
    fresh = tmp_path / "fresh"
    run_scan(ScanOptions(sources=[*shards, extra], banks=["hot"], out=fresh, executor="inline"))
    assert _view(run) == _view(fresh)
    bad = _rows(run)["bad0001"]
    assert bad["status"] == "failed" and bad["verdict"] is None
    assert [m["entry_id"] for m in bad["matches"]] == ["listed-broken"]

    # --keep-failed keeps unreadable files, but never one whose digest is listed
    report = clean([*shards, extra], run, tmp_path / "clean", keep_failed=True)
    assert report.failed_kept == 0 and report.failed_dropped == 1


def test_tie_between_probes_does_not_depend_on_their_order() -> None:
    from cleanset.banks.base import MemoryBank

    v = "ab" * 32
    bank = MemoryBank.from_hex("b", [("pdq", v, "E")])
    m = BankMatcher.build([bank])
    a = [Probe("pdq/rotate90", "pdq", v, 90), Probe("pdq/original", "pdq", v, 90)]
    (first, _), (second, _) = m.match_many([a, list(reversed(a))])
    assert [x.probe for x in first] == [x.probe for x in second] == ["pdq/original"]


def test_rematch_after_an_allow_list_becomes_a_block_list(tmp_path: Path, cleanset_home: Path) -> None:
    shards, images = make_wds(tmp_path / "ds", shards=1, per_shard=3)
    key, data = next(iter(images.items()))
    store = BankStore.default()
    store.create_from_rows("L", [BankRow("md5", hashlib.md5(data).hexdigest(), "e1")], allow=True)
    run = tmp_path / "run"
    run_scan(ScanOptions(sources=shards, banks=["L"], out=run, executor="inline"))
    assert _rows(run)[key]["verdict"] == "keep"
    store.create_from_rows("L", [BankRow("md5", hashlib.md5(data).hexdigest(), "e1")], allow=False)
    rematch(run, ["L"])
    fresh = tmp_path / "fresh"
    run_scan(ScanOptions(sources=shards, banks=["L"], out=fresh, executor="inline"))
    assert _rows(fresh)[key]["verdict"] == "remove"
    assert _view(run) == _view(fresh)
