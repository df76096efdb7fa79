"""The store is the truth for a remote run, whatever a working copy holds; fsspec's in-process ``memory://`` store
stands in for S3 where the finding is not about S3 itself (fast: no server).

What must hold: a working copy's rematch revision or ``clean.json`` that the store lacks, or holds otherwise, never
wins over the store's; a commit counts only once the store has its ledger entry; credentials never travel to
workers."""

from __future__ import annotations

import tarfile
import uuid
from pathlib import Path

import pytest
from scan_fixtures import make_wds, planted_bank

from cleanset import api, storage
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.runs.layout import RunDir
from cleanset.runs.store import RunStore

A, B, C = "000000001", "000010002", "000000000"


@pytest.fixture()
def mem(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cleanset_home: Path) -> str:
    """A fresh bucket in fsspec's memory store and a private mirror for this test."""
    monkeypatch.setenv("CLEANSET_CACHE", str(tmp_path / "cache"))
    return f"memory://b{uuid.uuid4().hex[:12]}"


def _bank(images: dict[str, bytes], keys: list[str], note: str) -> None:
    _, entries = planted_bank(images, keys)
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in entries], note=note)


def _verdict(run: RunDir, key: str) -> str:
    [row] = [r for r in RunStore(run.path).items_table().to_pylist() if r["key"] == key]
    return str(row["verdict"])


def _cleaned_keys(out: Path) -> set[str]:
    keys: set[str] = set()
    for p in out.rglob("*.tar"):
        with tarfile.open(p) as tar:
            keys |= {m.split(".")[0] for m in tar.getnames()}
    return keys


def test_a_local_revision_the_store_lacks_is_dropped(mem: str, tmp_path: Path) -> None:
    """The store's run is deleted and scanned anew with a list that knows B: the working copy's old revision 1
    (B kept) must not be what clean uses."""
    from cleanset.results.rematch import rematch

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=3)
    url = f"{mem}/run"
    _bank(images, [A], "v1")
    api.scan(paths, ["standin"], url, executor="inline")
    _bank(images, [A, C], "v2")
    assert rematch(url, ["standin"]).revision == 1
    fs, root = storage.filesystem(url)
    fs.rm(root, recursive=True)
    _bank(images, [A, C, B], "v3")
    api.scan(paths, ["standin"], url, executor="inline")
    run = RunDir.at(url)
    assert RunStore(run.path).latest_revision() == 0 and _verdict(run, B) == "remove"
    report = api.clean(paths, url, tmp_path / "clean")
    assert report.revision == 0 and B not in _cleaned_keys(tmp_path / "clean")


def test_a_local_revision_that_differs_from_the_stores_is_replaced(
    mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another machine rematched the same run with another list: its revision 1 replaces this copy's."""
    from cleanset.results.rematch import rematch

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=3)
    url = f"{mem}/run"
    _bank(images, [A], "v1")
    api.scan(paths, ["standin"], url, executor="inline")
    _bank(images, [A, C], "v2")
    rematch(url, ["standin"])
    assert _verdict(RunDir.at(url), B) == "keep"
    here = str(tmp_path / "cache")
    monkeypatch.setenv("CLEANSET_CACHE", str(tmp_path / "other-machine"))  # its own working copy, the same store
    fs, root = storage.filesystem(storage.join(url, "revisions"))
    fs.rm(root, recursive=True)
    _bank(images, [A, C, B], "v3")
    assert rematch(url, ["standin"]).revision == 1  # revision 1 again, now with B removed, pushed to the store
    monkeypatch.setenv("CLEANSET_CACHE", here)
    again = RunDir.at(url)
    assert RunStore(again.path).latest_revision() == 1 and _verdict(again, B) == "remove"


def test_clean_json_follows_the_store(mem: str, tmp_path: Path) -> None:
    paths, images = make_wds(tmp_path / "ds", shards=1, per_shard=3)
    url = f"{mem}/run"
    _bank(images, [A], "v1")
    api.scan(paths, ["standin"], url, executor="inline")
    api.clean(paths, url, tmp_path / "clean")
    run = RunDir.at(url)
    assert (run.path / "clean.json").is_file()
    fs, path = storage.filesystem(storage.join(url, "clean.json"))
    fs.rm(path)
    RunDir.at(url)
    assert not (run.path / "clean.json").exists()
    other = RunDir(tmp_path / "other", url)
    other.pull()
    assert not (other.path / "clean.json").exists()
    api.clean(paths, url, tmp_path / "clean2")
    other.pull()
    assert (other.path / "clean.json").is_file()


def test_credentials_never_travel_to_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanset.cluster import forwarded_env

    for name in ("FSSPEC_S3_KEY", "FSSPEC_S3_SECRET", "FSSPEC_GCS_TOKEN", "FSSPEC_HF_TOKEN", "FSSPEC_S3"):
        monkeypatch.setenv(name, "sekrit-" + name)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sekrit-aws")
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("FSSPEC_GCS_PROJECT", "proj")
    env = forwarded_env()
    assert not [v for v in env.values() if "sekrit" in v]
    assert env["FSSPEC_S3_ENDPOINT_URL"] == "http://127.0.0.1:9000" and env["FSSPEC_GCS_PROJECT"] == "proj"


def test_a_shard_reported_done_but_not_committed_stops_the_scan(
    cleanset_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Ray workers committing into a local --out on their own disks look like to the driver."""
    from cleanset.errors import CleansetError
    from cleanset.pipeline import scan

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=2)
    _bank(images, [A], "v1")
    real = scan.committed
    monkeypatch.setattr(scan, "committed", lambda run: {k: v for k, v in real(run).items() if k != "00001"})
    with pytest.raises(CleansetError, match="shards 00001 were reported done but are not committed"):
        api.scan(paths, ["standin"], tmp_path / "run", executor="inline")


class _Sink:
    class add:  # noqa: N801 - stands for an actor method: ``sink.add.remote(...)``
        @staticmethod
        def remote(*args: object) -> None:
            pass


def test_a_ray_task_commits_under_its_own_nodes_cache(
    mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run reaching a worker names the driver's working copy; the worker must not write there (another user's
    home on a laptop) but under its own cache. The task body runs here, without Ray: the finding is not Ray's."""
    from cleanset.pipeline import ray_executor
    from cleanset.pipeline.scan import ScanOptions, prepare

    paths, images = make_wds(tmp_path / "ds", shards=1, per_shard=2)
    _bank(images, [A], "v1")
    url = f"{mem}/run"
    prep = prepare(ScanOptions(sources=paths, banks=["standin"], out=url))
    driver = tmp_path / "driver-home"
    driver.mkdir(mode=0o500)  # the driver's cache path, not writable here
    state = ray_executor._State("t", prep.ctx.plan, RunDir(driver / "run", url), {})
    monkeypatch.setenv("CLEANSET_CACHE", str(tmp_path / "worker-cache"))
    entry = ray_executor._shard_task(state, "scan", prep.todo[0], "", 1, _Sink())
    assert entry["shard"] == "00000" and storage.list_names(f"{url}/ledger") == ["00000.json"]
    assert not (driver / "run").exists()
    assert (tmp_path / "worker-cache" / "storage" / "memory").is_dir()
