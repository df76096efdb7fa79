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
    class add:  # stands for an actor method: ``sink.add.remote(...)``
        @staticmethod
        def remote(*args: object) -> None:
            pass


def test_a_ray_task_commits_under_its_own_nodes_cache(
    mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run and the shard reaching a worker name the driver's mirror; the worker must not read or write there
    (another user's home, on another machine) but under its own cache. The task body runs here, without Ray: the
    finding is not Ray's."""
    import shutil

    from cleanset.pipeline import ray_executor
    from cleanset.pipeline.scan import ScanOptions, prepare

    paths, images = make_wds(tmp_path / "ds", shards=1, per_shard=2)
    for p in paths:
        storage.upload(p, f"{mem}/ds/{p.name}")
    _bank(images, [A], "v1")
    url = f"{mem}/run"
    prep = prepare(ScanOptions(sources=[f"{mem}/ds"], banks=["standin"], out=url))
    driver = tmp_path / "cache"  # the driver's mirror: the source was staged there, the working copy made there
    assert prep.todo[0].path.startswith(str(driver))
    state = ray_executor._State(uuid.uuid4().hex, prep.ctx.plan, prep.run, {}, mirror=str(storage.cache_root()))
    shutil.rmtree(driver)  # not there on the worker's node
    monkeypatch.setenv("CLEANSET_CACHE", str(tmp_path / "worker-cache"))
    entry = ray_executor._shard_task(state, "scan", prep.todo[0], "", 1, _Sink())
    assert entry["shard"] == "00000" and entry["items"] == 2 and entry["failed"] == 0 and entry["removed"] == 1
    assert storage.list_names(f"{url}/ledger") == ["00000.json"]
    assert not driver.exists() and (tmp_path / "worker-cache" / "storage" / "memory").is_dir()


class _FakeRay:
    """Just enough of Ray for the executor's driver loop, run in this process: each task runs at once, and the
    first one's result is lost as if its node died on the way back, after the task had committed."""

    class exceptions:  # the shape of ``ray.exceptions``
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            pass

        class WorkerCrashedError(RayError):
            pass

    def __init__(self) -> None:
        self.results: dict[int, object] = {}
        self.calls = 0

    def put(self, obj: object) -> object:
        return obj

    def get(self, ref: object) -> object:
        if isinstance(ref, int):
            result = self.results[ref]
            if isinstance(result, BaseException):
                raise result
            return result
        return ref

    def remote(self, *args: object, **kw: object):
        fake = self

        def wrap(fn):
            class Handle:
                def remote(self, *a: object) -> object:
                    if isinstance(fn, type):
                        actor = fn()

                        class Actor:
                            def __getattr__(self, name: str) -> object:
                                method = getattr(actor, name)
                                return type("M", (), {"remote": staticmethod(method)})()

                        return Actor()
                    fake.calls += 1
                    out = fn(*a)
                    lost = fake.exceptions.WorkerCrashedError("the node running the task died")
                    fake.results[fake.calls] = lost if fake.calls == 1 else out
                    return fake.calls

            return Handle()

        return wrap

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 1.0}

    def wait(self, refs: list[object], num_returns: int = 1, timeout: float | None = None) -> tuple[list, list]:
        return list(refs[:num_returns]), list(refs[num_returns:])

    def cancel(self, ref: object, force: bool = False) -> None:
        pass

    def kill(self, actor: object) -> None:
        pass


def test_a_ray_task_lost_after_its_commit_is_not_redone(mem: str, tmp_path: Path) -> None:
    from cleanset.pipeline.events import Event, GaveUp, Retry, ShardDone
    from cleanset.pipeline.ray_executor import RayExecutor
    from cleanset.pipeline.scan import ScanOptions, prepare

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=2)
    _bank(images, [A], "v1")
    url = f"{mem}/run"
    prep = prepare(ScanOptions(sources=paths, banks=["standin"], out=url))
    events: list[Event] = []
    fake = _FakeRay()
    ex = RayExecutor(workers=1, address=None)
    ex.share_indexes = False  # each "worker" reopens the banks from the plan: no object store here
    entries = ex._run(fake, prep.todo, prep.ctx, prep.run, events.append)
    assert fake.calls == 2  # one task per shard: the lost one was not sent again
    assert not [e for e in events if isinstance(e, Retry | GaveUp)]
    assert [e.shard for e in events if isinstance(e, ShardDone)] == ["00000", "00001"]
    assert [e["failed"] for e in entries] == [0, 0] and [e["items"] for e in entries] == [2, 2]


def test_a_remote_clean_refuses_an_out_that_overlaps_the_source_or_the_run(mem: str, tmp_path: Path) -> None:
    from cleanset.errors import UserError

    paths, images = make_wds(tmp_path / "ds", shards=1, per_shard=2)
    for p in paths:
        storage.upload(p, f"{mem}/ds/{p.name}")
    _bank(images, [A], "v1")
    run = f"{mem}/run"
    api.scan([f"{mem}/ds"], ["standin"], run, executor="inline")
    for out in (f"{mem}/ds/cleaned", f"{mem}/run/cleaned", mem, f"{mem}/ds/"):
        with pytest.raises(UserError, match="overlaps"):
            api.clean([f"{mem}/ds"], run, out)
    assert not storage.exists(f"{mem}/ds/cleaned") and not storage.exists(f"{mem}/run/cleaned")
    assert storage.overlaps("s3a://b/ds/x", "s3://b/ds") and storage.overlaps("gcs://b", "gs://b/ds")
    assert not storage.overlaps("s3://b/ds2", "s3://b/ds") and not storage.overlaps("s3://b/ds", "gs://b/ds")


def test_a_remote_clean_stages_under_the_cache_and_names_an_unfinished_one(
    mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanset.errors import UserError

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=2)
    _bank(images, [A], "v1")
    run = f"{mem}/run"
    api.scan(paths, ["standin"], run, executor="inline")
    real, staged = storage.upload_tree, []

    def killed_mid_upload(local: Path, url: str, last: tuple[str, ...] = ()) -> int:
        staged.append(local)
        first = sorted(p for p in local.rglob("*.tar"))[0]
        storage.upload(first, storage.join(url, first.relative_to(local).as_posix()))
        raise KeyboardInterrupt  # the clean is stopped after one file, before the marker

    monkeypatch.setattr(storage, "upload_tree", killed_mid_upload)
    with pytest.raises(KeyboardInterrupt):
        api.clean(paths, run, f"{mem}/clean")
    assert staged and staged[0].is_relative_to(tmp_path / "cache")
    assert not staged[0].exists()  # the staging copy does not outlive the clean
    monkeypatch.setattr(storage, "upload_tree", real)
    with pytest.raises(UserError, match="holds an unfinished clean"):
        api.clean(paths, run, f"{mem}/clean")
    api.clean(paths, run, f"{mem}/clean2")
    with pytest.raises(UserError, match="already holds a cleaned dataset"):
        api.clean(paths, run, f"{mem}/clean2")


def test_a_changed_file_of_the_same_size_is_fetched_again(mem: str, tmp_path: Path) -> None:
    from cleanset.storage import _stamp

    fs, path = storage.filesystem(f"{mem}/d/a.tar")
    fs.pipe_file(path, b"one")
    [local] = storage.stage([f"{mem}/d"])
    assert (local / "a.tar").read_bytes() == b"one"
    fs.pipe_file(path, b"two")  # the same size; only the store's own version field says it changed
    storage.stage([f"{mem}/d"])
    assert (local / "a.tar").read_bytes() == b"two"
    hub = {"size": 3, "type": "file", "blob_id": "aaa", "lfs": None}
    assert _stamp(hub) != _stamp({**hub, "blob_id": "bbb"})
    assert _stamp({**hub, "lfs": {"sha256": "1"}}) != _stamp({**hub, "lfs": {"sha256": "2"}})


def test_clean_names_the_urls_not_the_mirror(mem: str, tmp_path: Path) -> None:
    from cleanset.errors import UserError
    from cleanset.sources.base import ContentChanged

    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=2)
    for p in paths:
        storage.upload(p, f"{mem}/ds/{p.name}")
    _bank(images, [A], "v1")
    run = f"{mem}/run"
    api.scan([f"{mem}/ds"], ["standin"], run, executor="inline")
    other, _ = make_wds(tmp_path / "other", shards=2, per_shard=2, size=80)  # the same keys, other bytes
    storage.upload(other[1], f"{mem}/ds/{other[1].name}")
    with pytest.raises(ContentChanged) as changed:
        api.clean([f"{mem}/ds"], run, tmp_path / "clean")
    assert f"{mem}/ds" in str(changed.value) and str(tmp_path / "cache") not in str(changed.value)
    fs, path = storage.filesystem(f"{run}/ledger/00001.json")
    fs.rm(path)
    with pytest.raises(UserError, match="is incomplete") as incomplete:
        api.clean([f"{mem}/ds"], run, tmp_path / "clean")
    assert str(incomplete.value).startswith(f"{run} is incomplete") and "cache" not in str(incomplete.value)


def test_attest_and_verify_refuse_urls_by_name(cleanset_home: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cleanset.actions import dsse
    from cleanset.cli.app import app
    from cleanset.errors import UserError

    priv, _pub = dsse.generate_keypair(tmp_path / "keys")
    key = dsse.load_private_key(priv)
    with pytest.raises(UserError, match="the run s3://b/run is a URL"):
        api.attest("s3://b/run", tmp_path / "clean", key, tmp_path / "att.json")
    with pytest.raises(UserError, match="the dataset gs://b/clean is a URL"):
        api.verify(["gs://b/clean"], tmp_path / "att.json")
    with pytest.raises(UserError, match="the run memory://b/run is a URL"):
        api.report("memory://b/run")
    run = tmp_path / "run"
    run.mkdir()
    (run / "clean.json").write_text('{"out": "s3://b/clean"}')
    res = CliRunner().invoke(app, ["attest", str(run), "--key", str(priv)])
    assert isinstance(res.exception, UserError) and "wrote to s3://b/clean" in str(res.exception)
    assert not list(tmp_path.glob("s3*")) and not list(run.glob("s3*"))


def test_no_local_ledger_entry_exists_while_its_push_runs(
    mem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL during the push must leave nothing here that claims the shard: the local entry moves in only once
    the store holds items and ledger entry."""
    paths, images = make_wds(tmp_path / "ds", shards=2, per_shard=2)
    _bank(images, [A], "v1")
    url = f"{mem}/run"
    real, seen = storage.upload, []

    def watching(local: Path, target: str) -> None:
        if "/ledger/" in target:
            name = target.rsplit("/", 1)[-1]
            working = storage.mirror_path(url) / "ledger" / name
            seen.append((name, working.exists(), storage.exists(f"{url}/items/{name[:-5]}.parquet")))
        real(local, target)

    monkeypatch.setattr(storage, "upload", watching)
    summary = api.scan(paths, ["standin"], url, executor="inline")
    assert seen == [("00000.json", False, True), ("00001.json", False, True)]
    assert summary["shards"]["committed"] == 2
