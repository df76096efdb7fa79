"""Every path that decides about an item gives the verdicts ``assess`` gives for the same probes: the image scan's
batch step, the URL column path, rematch (full and incremental), `cleanset match` and the robustness benchmark.

One fixture (``assess_fixtures``) feeds them all, so a rule that one path re-implemented differently fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
from assess_fixtures import ALLOW, BANKS, BLOCK, CASES, POLICY, SOFT

from cleanset.assess import Policy, assess_many
from cleanset.banks.base import BankRow, MemoryBank
from cleanset.matching.matcher import BankMatcher
from cleanset.pipeline.tasks import ScanContext, Timings, _finish
from cleanset.records import HashOutcome, ItemResult, Probe, Status
from cleanset.runs.schema import to_table
from cleanset.sources.base import Shard, SourceItem

SHARD = Shard("s0", "s0")


def expected(policy: Policy = POLICY, cases: Any = CASES) -> list[str | None]:
    out = assess_many([c.probes for c in cases], BANKS, policy, scores=[c.scores for c in cases])
    return [None if a.verdict is None else str(a.verdict) for a in out]


def test_the_fixture_means_what_it_says() -> None:
    assert expected() == [c.expected for c in CASES]


def scan_results(matcher: BankMatcher) -> list[ItemResult]:
    """The image scan's decision step (``tasks._finish``) over hashing outcomes holding the fixture's probes."""
    ctx = ScanContext(source=None, engine=None, matcher=matcher, policy=POLICY)  # type: ignore[arg-type]
    batch = [
        (SourceItem(key=c.key), HashOutcome(Status.OK, probes=list(c.probes), scores=dict(c.scores)), []) for c in CASES
    ]
    return list(_finish(batch, SHARD, ctx, None, Timings()))


def test_image_scan() -> None:
    assert [str(r.verdict) for r in scan_results(BankMatcher.build(BANKS))] == expected()


def stored_table() -> pa.Table:
    """What a scan before any of the banks existed stored: every probe, no match, the verdicts of that time."""
    return to_table(scan_results(BankMatcher.build([])))


def test_rematch_full() -> None:
    from cleanset.results.rematch import rematch_table

    out, _ = rematch_table(stored_table(), BankMatcher.build(BANKS), POLICY)
    assert out.column("verdict").to_pylist() == expected()


def test_rematch_incremental() -> None:
    from cleanset.results.rematch_delta import DELTA_COLUMNS, bank_delta, indexes_for, rematch_table_delta

    gate = 50
    deltas = [bank_delta(None, s) for s in (BLOCK, SOFT)]
    requery = {
        d.snapshot.name: indexes_for([MemoryBank(d.snapshot.name, d.snapshot.version, dict(d.requery))], gate)
        for d in deltas
    }
    table = stored_table().select(DELTA_COLUMNS)
    out, _ = rematch_table_delta(table, deltas, indexes_for([ALLOW], gate), requery, POLICY, gate)
    assert out.column("verdict").to_pylist() == expected()


def test_url_column_path() -> None:
    """Rows of a batchable source carrying the fixture's md5 values as metadata: the exact-hash cases."""
    from cleanset.pipeline import urlscan

    cases = [c for c in CASES if all(p.signal == "md5" for p in c.probes) and len(c.probes) == 1 and not c.scores]
    assert {c.key for c in cases} >= {"exact", "soft"}
    n = len(cases)
    cols: dict[str, pa.Array] = {
        "key": pa.array([c.key for c in cases], pa.string()),
        "row": pa.array(range(n), pa.int64()),
        "error": pa.nulls(n, pa.string()),
        "url": pa.nulls(n, pa.string()),
        "md5": pa.array([c.probes[0].value for c in cases], pa.string()),
        "sha1": pa.nulls(n, pa.string()),
        "sha256": pa.nulls(n, pa.string()),
    }
    batch = pa.RecordBatch.from_arrays(list(cols.values()), schema=urlscan.BATCH_COLUMNS)
    engine = SimpleNamespace(config=SimpleNamespace(signals=()))
    ctx = ScanContext(source=None, engine=engine, matcher=BankMatcher.build(BANKS), policy=POLICY, snapshots=BANKS)  # type: ignore[arg-type]
    table = urlscan.scan_batch(batch, SHARD, ctx, urlscan.plan_for(ctx), Timings())
    assert table.column("verdict").to_pylist() == expected(cases=cases)


def test_url_path_is_chosen_by_capability_not_name() -> None:
    from cleanset.pipeline.urlscan import applies

    class Batches:
        name = "anything"
        batchable = True

        def read_batches(self, shard: Shard) -> list[pa.RecordBatch]:
            return []

    assert applies(Batches())
    laion_without_batches = SimpleNamespace(name="laion", batchable=False)
    assert not applies(laion_without_batches)


def test_match_cli(cleanset_home: Path) -> None:
    """`cleanset match` with the fixture's banks in a store: its policy is the default one, allow banks counted."""
    from cleanset.banks.store import BankStore

    store = BankStore(cleanset_home)
    for snap in BANKS:
        rows = [
            BankRow(sig, v.tobytes().hex(), e)
            for sig in snap.signals()
            for v, e in zip(snap.values(sig), snap.entry_ids(sig), strict=True)
        ]
        store.create_from_rows(snap.name, rows, allow=snap.allow)
    lines = [
        json.dumps(
            {
                "input": c.key,
                "probes": [
                    {"name": p.name, "signal": p.signal, "value": p.value, "quality": p.quality} for p in c.probes
                ],
            }
        )
        for c in CASES
    ]
    (cleanset_home.parent / "in.jsonl").write_text("\n".join(lines) + "\n")
    args = ["-b", "hotline", "-b", "soft", "-b", "fp", "-f", str(cleanset_home.parent / "in.jsonl")]
    proc = subprocess.run(
        [sys.executable, "-m", "cleanset", "match", *args],
        env={**os.environ, "CLEANSET_HOME": str(cleanset_home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    snaps = [store.open(s.name) for s in BANKS]
    want = assess_many([c.probes for c in CASES], snaps, Policy().with_allow_banks(["fp"]))
    assert [o["verdict"] for o in got] == [str(a.verdict) for a in want]
    assert [o["reasons"] for o in got] == [list(a.reasons) for a in want]


def test_robustness_benchmark_counts_what_assess_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark's recall and false matches are read off ``assess`` answers, never a matcher of its own."""
    import skimage.data

    from cleanset.evaluation import robustness
    from cleanset.evaluation.corpus import Photo

    calls: list[tuple[list[list[Probe]], list[Any]]] = []

    def spy(probe_lists: Any, matcher: Any, policy: Any = None, **kw: Any) -> Any:
        out = assess_many(probe_lists, matcher, policy, **kw)
        calls.append((list(probe_lists), out))
        return out

    monkeypatch.setattr(robustness, "assess_many", spy)
    photos = [Photo(n, getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    result = robustness.run_photos(photos, transforms=["flip-h"], cost=False)
    assert len(calls) == 1
    _, answers = calls[0]
    k = len(robustness.METHODS)
    for j, method in enumerate(robustness.METHODS):
        hits = sum(
            1
            for i in range(0, len(photos), 2)
            if any(m.entry_id == f"e{i // 2}" for m in answers[i * k + j].matches)
            and answers[i * k + j].verdict != "keep"
        )
        assert result.row("flip-h").stats[method].hits == hits
