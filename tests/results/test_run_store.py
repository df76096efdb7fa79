"""Reading a run back: latest revision by default, summaries computed from the rows, query views."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cleanset.errors import UserError
from cleanset.pipeline.ledger import commit_shard
from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.results.query import query
from cleanset.runs.layout import RunDir
from cleanset.runs.schema import to_table
from cleanset.runs.store import RunStore
from cleanset.runs.summary import summarize
from cleanset.sources.base import Shard


def rows(shard: str, n: int, start: int = 0) -> list[ItemResult]:
    out = []
    for i in range(start, start + n):
        key = f"{shard}-{i}"
        probes = [Probe("md5", "md5", f"{i:032x}"), Probe("pdq/original", "pdq", f"{i:064x}", 90)]
        if i % 7 == 3:
            out.append(ItemResult(key, shard, Status.FAILED, "decode: broken" if i % 2 else "read: gone", None))
        elif i % 5 == 1:
            m = [
                Match("hot", 2, f"e{i}", "pdq", 4, "pdq/original"),
                Match("hot", 2, f"f{i}", "md5", 0, "md5"),
                Match("other", 1, f"g{i}", "pdq", 9, "pdq/original"),
            ]
            out.append(ItemResult(key, shard, Status.OK, None, Verdict.REMOVE, probes=probes, matches=m))
        else:
            out.append(ItemResult(key, shard, Status.OK, None, Verdict.KEEP, probes=probes))
    return out


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    r = RunDir(tmp_path / "run")
    r.open_for_scan({"sources": ["/data"], "format": "folder"})
    for s, n in (("s0", 23), ("s1", 17)):
        commit_shard(r, Shard(s, f"/data/{s}"), to_table(rows(s, n)), 0.5)
    (r.path / "summary.json").write_text(json.dumps({"items": 40}))
    return r.path


def test_summary_counts_items_not_matches(run: Path) -> None:
    table = RunStore(run).items_table()
    s = summarize(table)
    rs = rows("s0", 23) + rows("s1", 17)
    verdicts = Counter(str(r.verdict) for r in rs)
    assert s["items"] == 40 == table.num_rows
    assert (s["kept"], s["removed"], s["failed"]) == (verdicts["keep"], verdicts["remove"], verdicts["None"])
    assert s["items"] == s["kept"] + s["removed"] + s["review"] + s["failed"]
    assert s["failures_by_reason"] == dict(Counter(r.reason for r in rs if r.status is Status.FAILED))
    # an item hit by two entries of "hot" counts once for "hot"
    assert s["matches_by_bank"] == {"hot": verdicts["remove"], "other": verdicts["remove"]}
    assert s["matches_by_probe"] == {"md5": verdicts["remove"], "pdq/original": verdicts["remove"]}
    assert summarize(RunStore(run).item_files()) == s


def test_latest_revision_is_the_default(run: Path) -> None:
    store = RunStore(run)
    assert store.revisions() == [] and store.latest_revision() == 0
    rev = run / "revisions" / "1"
    (rev / "items").mkdir(parents=True)
    t = pq.read_table(run / "items" / "s0.parquet")
    t = t.set_column(t.schema.get_field_index("verdict"), "verdict", t["verdict"].fill_null("keep"))
    pq.write_table(t.slice(0, 5), rev / "items" / "s0.parquet")
    (rev / "summary.json").write_text(json.dumps({"items": 5}))
    assert store.revisions() == [1]
    assert store.items_table().num_rows == 5
    assert store.items_table(revision=0).num_rows == 40
    assert store.summary == {"items": 5} and store.summary_of(0) == {"items": 40}
    assert store.manifest["format"] == "folder"  # the revision has none of its own: the scan's
    assert query(run, "SELECT count(*) AS n FROM items").to_pylist() == [{"n": 5}]
    assert query(run, "SELECT count(*) AS n FROM items", revision=0).to_pylist() == [{"n": 40}]
    with pytest.raises(UserError, match="no revision 2"):
        store.items_table(revision=2)


def test_ledger_and_views(run: Path) -> None:
    ledger = RunStore(run).ledger()
    assert [e["shard"] for e in ledger] == ["s0", "s1"]
    assert [e["items"] for e in ledger] == [23, 17]
    got = query(run, "SELECT bank, count(DISTINCT key) AS n FROM matches GROUP BY bank ORDER BY bank").to_pylist()
    removed = sum(1 for r in rows("s0", 23) + rows("s1", 17) if r.verdict is Verdict.REMOVE)
    assert got == [{"bank": "hot", "n": removed}, {"bank": "other", "n": removed}]
    n = query(run, "SELECT count(*) AS n FROM probes WHERE signal = 'pdq'").to_pylist()[0]["n"]
    assert n == sum(1 for r in rows("s0", 23) + rows("s1", 17) if r.probes)
    assert (
        query(run, "SELECT sum(failed) AS f FROM ledger").to_pylist()[0]["f"]
        == summarize(RunStore(run).items_table())["failed"]
    )


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a scan run"):
        RunStore(tmp_path)


def test_a_shard_from_before_the_screening_columns_still_reads(tmp_path: Path) -> None:
    """Runs written before ``rules``, ``text_lists`` and the classifier score columns existed are still read
    (report, rematch, clean): the missing columns come back empty, the rest unchanged."""
    table = to_table(rows("s0", 12))
    old = table.drop_columns([c for c in ("rules", "text_lists", "open_nsfw") if c in table.column_names])
    (tmp_path / "items").mkdir()
    pq.write_table(old, tmp_path / "items" / "s0.parquet")
    (tmp_path / "manifest.json").write_text("{}")
    back = RunStore(tmp_path).items_table()
    assert back.num_rows == 12 and back.column("key").to_pylist() == table.column("key").to_pylist()
    assert back.column("rules").to_pylist() == [[]] * 12
    assert back.column("verdict").to_pylist() == table.column("verdict").to_pylist()
    assert RunStore(tmp_path).items_table(columns=["key", "text_lists"]).column("text_lists").to_pylist() == [[]] * 12
