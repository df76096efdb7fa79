"""Scans through the library: every item accounted for, planted items found, broken input failed with a reason,
the same results whichever executor, and the atomic commit's guarantees."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scan_fixtures import image_bytes, make_wds, planted_bank, wds_members, write_tar

from cleanset.assess.policy import Policy
from cleanset.errors import UserError
from cleanset.pipeline.ledger import CountMismatch, commit_shard, committed
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.records import ItemResult, Status, Verdict
from cleanset.runs.layout import RunDir
from cleanset.runs.schema import to_table
from cleanset.runs.store import RunStore
from cleanset.sources.base import Shard, SourceItem


def scan(
    sources: list[Path], out: Path, bank: object, executor: str = "inline", workers: int = 1, **kw: object
) -> dict:
    opts = ScanOptions(sources=sources, banks=[], out=out, executor=executor, workers=workers, **kw)  # type: ignore[arg-type]
    return execute(prepare(opts, [bank]), executor, workers)


def by_key(table: pa.Table) -> pa.Table:
    return table.sort_by([("shard", "ascending"), ("key", "ascending")])


def check_counts(run: Path) -> None:
    """items = kept + removed + review + failed per shard (ledger and items file) and in total."""
    store = RunStore(run)
    total = {k: 0 for k in ("items", "kept", "removed", "review", "failed")}
    for e in store.ledger():
        t = pa.parquet.read_table(Path(run) / "items" / f"{e['shard']}.parquet")
        assert e["items"] == t.num_rows == e["kept"] + e["removed"] + e["review"] + e["failed"]
        assert e["failed"] == int(pc.sum(pc.equal(t["status"], "failed")).as_py() or 0)
        assert e["removed"] == int(pc.sum(pc.equal(t["verdict"], "remove")).as_py() or 0)
        for k in total:
            total[k] += e[k]
    s = store.summary
    assert {k: s[k] for k in total} == total
    assert s["items"] == s["kept"] + s["removed"] + s["review"] + s["failed"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict[str, bytes]]:
    return make_wds(tmp_path_factory.mktemp("wds"), shards=3, per_shard=8)


def test_planted_items_are_removed_and_counts_add_up(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    planted = ["000000003", "000020007"]
    bank, _ = planted_bank(images, planted)
    summary = scan(paths, tmp_path / "run", bank)
    check_counts(tmp_path / "run")
    t = RunStore(tmp_path / "run").items_table()
    assert t.num_rows == len(images)
    assert sorted(t["key"].to_pylist()) == sorted(images)
    removed = sorted(r["key"] for r in t.to_pylist() if r["verdict"] == "remove")
    assert removed == sorted(planted)
    assert summary["removed"] == 2 and summary["kept"] == len(images) - 2 and summary["failed"] == 0
    assert summary["matches_by_bank"] == {"standin": 2}
    row = next(r for r in t.to_pylist() if r["key"] == planted[0])
    signals = {(m["bank"], m["signal"], m["entry_id"]) for m in row["matches"]}
    assert ("standin", "md5", "md5-0") in signals and ("standin", "pdq", "pdq-0") in signals
    # the manifest names the bank by identity, never by values
    man = RunStore(tmp_path / "run").manifest
    assert man["banks"][0]["name"] == "standin" and man["format"] == "webdataset"
    assert len(man["fingerprint"]) == 64


def test_review_above_sends_far_matches_to_review(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    bank, _ = planted_bank(images, ["000010001"], noise=20, md5=False)
    s = scan(paths, tmp_path / "run", bank, policy=Policy(review_above=10))
    t = RunStore(tmp_path / "run").items_table().to_pylist()
    row = next(r for r in t if r["key"] == "000010001")
    assert row["verdict"] == "review"
    assert min(m["distance"] for m in row["matches"]) == 20
    assert s["review"] == 1 and s["removed"] == 0


def test_broken_inputs_fail_closed(tmp_path: Path) -> None:
    d = tmp_path / "wds"
    d.mkdir()
    good = [image_bytes(i) for i in range(4)]
    members = wds_members(["a0", "a1", "a2", "a3"], good)
    members += [("corrupt.jpg", b"\xff\xd8\xff\xe0 not really a jpeg" * 10), ("empty.jpg", b"")]
    write_tar(d / "00000.tar", members)
    # truncated tar: a complete tar cut in the middle of its second member
    full = write_tar(d / "full.tmp", wds_members(["b0", "b1", "b2"], [image_bytes(10 + i) for i in range(3)]))
    raw = full.read_bytes()
    (d / "00001.tar").write_bytes(raw[: len(raw) // 2])
    full.unlink()
    write_tar(d / "00002.tar", wds_members(["c0"], [image_bytes(20)]))
    paths = sorted(d.glob("*.tar"))
    bank, _ = planted_bank(dict(zip(["a0"], good[:1], strict=True)), ["a0"])
    opts = ScanOptions(sources=paths, banks=[], out=tmp_path / "run", executor="inline")
    prep = prepare(opts, [bank])
    (d / "00002.tar").unlink()  # vanishes after listing, before it is read
    summary = execute(prep, "inline")
    check_counts(tmp_path / "run")
    rows = {r["key"]: r for r in RunStore(tmp_path / "run").items_table().to_pylist()}
    for k in ("corrupt", "empty"):
        assert rows[k]["status"] == "failed" and rows[k]["verdict"] is None and rows[k]["reason"], rows[k]
    assert rows["a0"]["verdict"] == "remove"
    assert all(rows[k]["verdict"] == "keep" for k in ("a1", "a2", "a3"))
    trunc = [r for r in rows.values() if r["shard"] == prep.todo[1].id and r["status"] == "failed"]
    assert trunc, "the truncated tar must leave a failed record"
    gone = [r for r in rows.values() if r["shard"] == prep.todo[2].id]
    assert len(gone) == 1 and gone[0]["status"] == "failed" and gone[0]["reason"]
    assert summary["failed"] == sum(1 for r in rows.values() if r["status"] == "failed") >= 4
    assert sum(summary["failures_by_reason"].values()) == summary["failed"]


def test_local_and_inline_give_identical_results(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    bank, _ = planted_bank(images, ["000000001", "000020002"])
    scan(paths, tmp_path / "inline", bank)
    scan(paths, tmp_path / "local", bank, executor="local", workers=2)
    a = by_key(RunStore(tmp_path / "inline").items_table())
    b = by_key(RunStore(tmp_path / "local").items_table())
    assert a.num_rows == len(images)
    assert a.equals(b)


def test_rerun_skips_committed_shards_and_different_scan_is_refused(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    bank, _ = planted_bank(images, ["000000001"])
    run = tmp_path / "run"
    first = scan(paths, run, bank)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (run / "items").iterdir()}
    again = scan(paths, run, bank)
    assert again["shards"]["resumed"] == 3 and again["items"] == first["items"]
    assert {p.name: p.stat().st_mtime_ns for p in (run / "items").iterdir()} == mtimes
    with pytest.raises(UserError, match=r"different scan.*policy"):
        scan(paths, run, bank, policy=Policy(review_above=3))
    with pytest.raises(UserError, match=r"different scan.*sources"):
        scan(paths[:2], run, bank)


def test_refuses_a_foreign_non_empty_directory(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    bank, _ = planted_bank(images, [])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        scan(paths, tmp_path / "x", bank)


def test_commit_refuses_counts_that_do_not_add_up(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.open_for_scan({"sources": ["x"]})
    shard = Shard("s0", "x")
    ok = ItemResult("k0", "s0", Status.OK, None, Verdict.KEEP)
    bad = ItemResult("k1", "s0", Status.OK, None, None)  # ok without a verdict: not accounted anywhere
    with pytest.raises(CountMismatch):
        commit_shard(run, shard, to_table([ok, bad]), 0.0)
    assert not run.items_path("s0").exists() and not run.ledger_path("s0").exists()
    entry = commit_shard(run, shard, to_table([ok]), 0.0)
    assert committed(run) == {"s0": entry}
    assert not list(run.items_dir.glob("*.tmp*"))


class _BrokenSource:
    """Wraps a real source; shard ``crash_id`` kills its worker process, ``raise_id`` raises in the reader."""

    name = "webdataset"
    item_content = True

    def __init__(self, inner, crash_id: str, raise_id: str) -> None:
        self.inner, self.crash_id, self.raise_id = inner, crash_id, raise_id

    def shards(self) -> list[Shard]:
        return self.inner.shards()

    def shard_digest(self, shard: Shard) -> str | None:
        return self.inner.shard_digest(shard)

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        if shard.id == self.crash_id:
            os.kill(os.getpid(), signal.SIGKILL)
        if shard.id == self.raise_id:
            raise RuntimeError("reader bug")
        return self.inner.read(shard)


def test_crashing_worker_is_retried_then_its_items_are_failed(dataset, tmp_path: Path) -> None:
    paths, images = dataset
    bank, _ = planted_bank(images, [])
    opts = ScanOptions(sources=paths, banks=[], out=tmp_path / "run", executor="local", workers=2)
    prep = prepare(opts, [bank])
    ids = [s.id for s in prep.todo]
    prep.ctx.source = _BrokenSource(prep.ctx.source, crash_id=ids[0], raise_id=ids[1])  # type: ignore[assignment]
    events: list[str] = []
    summary = execute(prep, "local", 2, on_event=lambda ev: events.append(f"{ev.kind}:{ev.shard}"))
    check_counts(tmp_path / "run")
    rows = RunStore(tmp_path / "run").items_table().to_pylist()
    crashed = [r for r in rows if r["shard"] == ids[0]]
    assert len(crashed) == 1 and "SIGKILL" in crashed[0]["reason"] and crashed[0]["status"] == "failed"
    raised = [r for r in rows if r["shard"] == ids[1]]
    assert len(raised) == 1 and "reader bug" in raised[0]["reason"]
    assert all(r["verdict"] == "keep" for r in rows if r["shard"] == ids[2])
    assert f"retry:{ids[0]}" in events and f"gave_up:{ids[0]}" in events
    assert summary["failed"] == 2 and summary["kept"] == 8


def test_unreadable_parquet_row_group_fails_its_rows_only(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from cleanset.sources.synth import sample_items, write_parquet_bytes

    items = sample_items(12, seed=4)
    (path,) = write_parquet_bytes(tmp_path / "pq", items, per_file=12, row_group_size=4)
    meta = pq.read_metadata(path)
    col = meta.row_group(1).column(0)
    raw = bytearray(path.read_bytes())
    start = col.data_page_offset
    raw[start : start + col.total_compressed_size] = b"\xff" * col.total_compressed_size  # garbage pages
    path.write_bytes(bytes(raw))
    bank, _ = planted_bank({}, [])
    s = scan([path], tmp_path / "run", bank)
    check_counts(tmp_path / "run")
    rows = RunStore(tmp_path / "run").items_table().to_pylist()
    failed = [r for r in rows if r["status"] == "failed"]
    assert s["items"] == 12 and len(failed) == 4 and s["kept"] == 8
    assert all("row group 1" in r["reason"] and r["verdict"] is None for r in failed), failed[0]["reason"]


def test_scan_ends_when_workers_messages_never_arrive(dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed while holding the shared queue's lock silences every worker's "done": the parent settles
    committed shards from disk instead of waiting forever."""
    import threading

    from cleanset.pipeline import executors

    def silent_worker(tasks: object, results: object) -> None:
        ctx, run = executors._CHILD["ctx"], executors._CHILD["run"]
        while (task := tasks.get()) is not None:  # type: ignore[attr-defined]
            executors.process_shard(task[1], ctx, run, lambda ev: None)

    monkeypatch.setattr(executors, "_worker_main", silent_worker)
    monkeypatch.setattr(executors, "QUEUE_SILENCE_S", 0.2)
    paths, images = dataset
    bank, _ = planted_bank(images, ["000000001"])
    done: list[dict] = []
    t = threading.Thread(target=lambda: done.append(scan(paths, tmp_path / "run", bank, executor="local", workers=2)))
    t.daemon = True
    t.start()
    t.join(timeout=120)
    assert done, "the scan did not end"
    assert done[0]["items"] == len(images) and done[0]["removed"] == 1
    check_counts(tmp_path / "run")
