"""The Ray executor on a real local Ray instance: the local executor's results, failed items included; a worker
killed mid-shard costs one retried attempt and gives the correct shard; a worker that cannot set up the scan stops
it with the reason; and a Ray scan from and to S3 equals the local one. Ray is slow to start, so one instance
serves the module and the tests are few."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from scan_fixtures import make_wds, planted_bank, wds_members, write_tar

from cleanset import api, storage
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import UserError
from cleanset.pipeline.events import Event, GaveUp, Progress, Retry, ShardDone
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.runs.store import RunStore
from cleanset.sources.base import Shard, SourceItem

PLANTED = ["000000001", "000010002"]


@pytest.fixture()
def dataset(tmp_path: Path, cleanset_home: Path) -> list[Path]:
    """Three benign shards, plus one with an undecodable image and a sidecar that may hide an image (both failed
    items, fail closed), and a bank planted with two of the images."""
    paths, images = make_wds(tmp_path / "ds", shards=3, per_shard=4)
    bad = wds_members(["000030000", "000030001"], [images["000000000"][:150], images["000000002"]])
    bad[4] = ("000030001.txt", b"<svg onload=x>")
    paths.append(write_tar(tmp_path / "ds" / "00003.tar", bad))
    _, entries = planted_bank(images, PLANTED)
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in entries], note="benign stand-in")
    return paths


def _items(run: Path) -> pa.Table:
    return RunStore(run).items_table().sort_by([("shard", "ascending"), ("key", "ascending")])


@pytest.mark.slow
def test_a_ray_scan_equals_the_local_one_failed_items_included(ray_up: None, dataset: list[Path], tmp_path: Path):
    local = api.scan(dataset, ["standin"], tmp_path / "local", executor="local", workers=2)
    events: list[Event] = []
    on_ray = api.scan(dataset, ["standin"], tmp_path / "ray", executor="ray", workers=2, on_event=events.append)
    assert local["failed"] >= 1 and local["removed"] == len(PLANTED)
    for k in ("items", "kept", "removed", "review", "failed", "failures_by_reason"):
        assert on_ray[k] == local[k], k
    assert on_ray["executor"] == "ray"
    assert _items(tmp_path / "ray").equals(_items(tmp_path / "local"))
    # Progress reached the driver: it adds up to the items, and every shard said it was done, once.
    assert sum(e.items for e in events if isinstance(e, Progress)) == local["items"]
    assert sorted(e.shard for e in events if isinstance(e, ShardDone)) == sorted(p.stem for p in dataset)
    assert not [e for e in events if isinstance(e, Retry | GaveUp)]


class KillsItsWorker:
    """A source whose Ray worker SIGKILLs itself once, after the first item of one shard: the attempt dies
    mid-shard with work done and reported. The marker file is the memory across processes."""

    def __init__(self, inner: Any, shard_id: str, marker: Path) -> None:
        self.inner, self.shard_id, self.marker = inner, shard_id, marker

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for i, item in enumerate(self.inner.read(shard)):
            if shard.id == self.shard_id and i == 1 and not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


@pytest.mark.slow
def test_a_ray_worker_killed_mid_shard_gives_a_retried_correct_shard(
    ray_up: None, dataset: list[Path], tmp_path: Path
) -> None:
    reference = api.scan(dataset, ["standin"], tmp_path / "ref", executor="inline")
    prep = prepare(ScanOptions(sources=dataset, banks=["standin"], out=tmp_path / "ray"))
    target, marker = prep.todo[0].id, tmp_path / "killed"
    prep.ctx.source = KillsItsWorker(prep.ctx.source, target, marker)  # type: ignore[assignment]
    events: list[Event] = []
    summary = execute(prep, "ray", 2, on_event=events.append)
    assert marker.exists(), "the worker was never killed"
    retried = [e for e in events if isinstance(e, Retry)]
    assert [(e.shard, e.attempt) for e in retried] == [(target, 1)] and "ray worker died" in retried[0].reason
    assert not any(isinstance(e, GaveUp) for e in events)
    # The dead attempt's progress was taken back: the bar ends at the item count, not above it.
    assert sum(e.items for e in events if isinstance(e, Progress)) == reference["items"] == summary["items"]
    assert summary["failed"] == reference["failed"] and summary["removed"] == reference["removed"]
    assert _items(tmp_path / "ray").equals(_items(tmp_path / "ref"))
    assert [e.shard for e in events if isinstance(e, ShardDone)].count(target) == 1


def test_a_worker_that_cannot_open_the_banks_stops_the_scan(
    ray_up: None, dataset: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the indexes not shared, each worker reopens the banks from the plan and refuses other bytes."""
    from cleanset.pipeline.ray_executor import RayExecutor

    monkeypatch.setattr(RayExecutor, "share_indexes", False)
    prep = prepare(ScanOptions(sources=dataset, banks=["standin"], out=tmp_path / "run"))
    plan = prep.ctx.plan
    prep.ctx.plan = replace(plan, banks=(replace(plan.banks[0], digest="0" * 64),))  # bytes not the planned ones
    with pytest.raises(UserError, match=r"could not set up the scan.*digest"):
        execute(prep, "ray", 2)
    assert not list((tmp_path / "run" / "ledger").glob("*.json"))  # nothing committed under a wrong list


def test_workers_take_the_indexes_from_the_object_store_not_the_bank_store(
    ray_up: None, dataset: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shared indexes (the default): the workers never open the bank store, so a node needs none; here their
    CLEANSET_HOME (which travels with the scan) points at an empty folder, and the results are still the local
    executor's."""
    reference = api.scan(dataset, ["standin"], tmp_path / "ref", executor="inline")
    prep = prepare(ScanOptions(sources=dataset, banks=["standin"], out=tmp_path / "ray"))
    monkeypatch.setenv("CLEANSET_HOME", str(tmp_path / "no-banks-here"))
    summary = execute(prep, "ray", 2)
    assert summary["removed"] == reference["removed"] == len(PLANTED)
    assert _items(tmp_path / "ray").equals(_items(tmp_path / "ref"))
    assert not (tmp_path / "no-banks-here").exists()


@pytest.mark.slow
def test_a_ray_scan_from_and_to_s3_equals_the_local_one(
    ray_up: None, dataset: list[Path], s3: str, tmp_path: Path
) -> None:
    # The endpoint (FSSPEC_S3_ENDPOINT_URL) travels to the workers with the scan; credentials do not (a node has
    # its own): here the module's Ray instance started with the server's stand-in ones (conftest.ray_up).
    for p in dataset:
        storage.upload(p, f"{s3}/ds/{p.name}")
    local = api.scan(dataset, ["standin"], tmp_path / "local", executor="local", workers=2)
    on_ray = api.scan([f"{s3}/ds"], ["standin"], f"{s3}/runs/r", executor="ray", workers=2)
    assert all(on_ray[k] == local[k] for k in ("items", "kept", "removed", "review", "failed"))
    assert sorted(storage.list_names(f"{s3}/runs/r/ledger")) == sorted(f"{p.stem}.json" for p in dataset)
    copy = tmp_path / "fresh"
    from cleanset.runs.layout import RunDir

    RunDir(copy, f"{s3}/runs/r").pull()  # what the store holds, read by a machine that ran nothing
    assert _items(copy).equals(_items(tmp_path / "local"))


@pytest.mark.slow
def test_rematch_on_ray_equals_rematch_here(ray_up: None, dataset: list[Path], tmp_path: Path) -> None:
    """Both modes: incremental (only the changed entries' indexes travel) and full (the whole matcher, put into the
    object store once)."""
    import shutil

    from cleanset.results.rematch import rematch

    api.scan(dataset, ["standin"], tmp_path / "a", executor="local", workers=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    _, images = make_wds(tmp_path / "again", shards=3, per_shard=4)  # the same seeds: the same images
    _, entries = planted_bank(images, [*PLANTED, "000020003"])
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in entries], note="update")
    for full in (False, True):
        here = rematch(tmp_path / "a", ["standin"], full=full)
        there = rematch(tmp_path / "b", ["standin"], full=full, executor="ray", workers=2)
        assert here.mode == there.mode == ("full" if full else "incremental")
        assert there.summary["removed"] == here.summary["removed"] == len(PLANTED) + 1
        assert dict(there.changes) == dict(here.changes) and (full or there.changes.get("verdict_changed") == 1)
        a = RunStore(tmp_path / "a").items_table(revision=here.revision)
        b = RunStore(tmp_path / "b").items_table(revision=there.revision)
        assert a.sort_by("key").equals(b.sort_by("key"))


def test_the_cli_scans_on_ray(ray_up: None, dataset: list[Path], tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from cleanset.cli.app import app

    args = ["scan", *map(str, dataset), "--bank", "standin", "--out", str(tmp_path / "run"), "--executor", "ray"]
    res = CliRunner().invoke(app, [*args, "--workers", "2", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["executor"] == "ray" and doc["removed"] == len(PLANTED) and doc["failed"] >= 1


class AlwaysKillsItsWorker(KillsItsWorker):
    """Every attempt at the shard kills its worker, listing the items for the give-up too."""

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for i, item in enumerate(self.inner.read(shard)):
            if shard.id == self.shard_id and i == 1:
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


@pytest.mark.slow
def test_a_shard_that_always_kills_its_worker_is_given_up_as_the_local_executor_does(
    ray_up: None, dataset: list[Path], tmp_path: Path
) -> None:
    """Fail closed under the one rule: two attempts, then the give-up (whose listing dies too), so the shard is one
    failed ``#unread`` row, exactly as the local executor ends; the other shards are untouched."""
    tables, gave_up = {}, {}
    for ex in ("local", "ray"):
        prep = prepare(ScanOptions(sources=dataset, banks=["standin"], out=tmp_path / ex))
        target = prep.todo[0].id
        prep.ctx.source = AlwaysKillsItsWorker(prep.ctx.source, target, tmp_path / f"{ex}.killed")  # type: ignore[assignment]
        events: list[Event] = []
        execute(prep, ex, 2, on_event=events.append)
        gave_up[ex] = [e for e in events if isinstance(e, GaveUp)]
        tables[ex] = _items(tmp_path / ex).select(["key", "shard", "status", "verdict"])
        rows = _items(tmp_path / ex).filter(pa.compute.equal(_items(tmp_path / ex)["shard"], target)).to_pylist()
        assert [(r["key"], r["status"]) for r in rows] == [(f"{target}#unread", "failed")]
        assert ("ray worker died" if ex == "ray" else "SIGKILL") in rows[0]["reason"]
    assert [e.shard for e in gave_up["ray"]] == [e.shard for e in gave_up["local"]] == [target]
    assert "after 2 attempts" in gave_up["ray"][0].reason
    assert tables["ray"].equals(tables["local"])


@pytest.mark.slow
def test_a_screened_ray_scan_equals_the_local_one(ray_up: None, dataset: list[Path], tmp_path: Path) -> None:
    """Screening travels in the plan: Ray workers load the shipped classifier and the caption lists themselves
    and give the local executor's scores, rules and verdicts, item for item."""
    from cleanset.screening.stage import ScreenConfig

    screen = ScreenConfig()
    local = api.scan(dataset, ["standin"], tmp_path / "local", executor="local", workers=2, screen=screen)
    on_ray = api.scan(dataset, ["standin"], tmp_path / "ray", executor="ray", workers=2, screen=screen)
    for k in ("items", "kept", "removed", "review", "failed"):
        assert on_ray[k] == local[k], k
    mine, theirs = _items(tmp_path / "ray"), _items(tmp_path / "local")
    assert mine.equals(theirs)
    scores = [s for s in theirs.column("open_nsfw").to_pylist() if s is not None]
    assert len(scores) >= 10  # every decoded picture was classified, on both executors
