"""Sources, run folders and cleaned output on object storage, against a real S3 server on loopback (moto).

What must hold: a scan from and to S3 gives the local scan's results; the store's ledger is the truth, so a scan
killed with SIGKILL resumes from the store (even from another machine's empty working copy) and ends equal; a
clean to S3 writes the local clean's files, its completion marker last; remote paths with an unknown scheme are
refused by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
from scan_fixtures import make_wds, planted_bank, wds_members, write_tar

from cleanset import api, storage
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import UserError
from cleanset.runs.layout import RunDir
from cleanset.runs.store import RunStore

PLANTED = ["000000001", "000010003"]


def _dataset(root: Path, shards: int = 3, per_shard: int = 4, size: int = 96) -> tuple[list[Path], dict[str, bytes]]:
    """Benign WebDataset shards, one of them with an undecodable member (a failed item, fail closed)."""
    paths, images = make_wds(root, shards=shards, per_shard=per_shard, size=size)
    cut = images["000000000"][:150]
    paths.append(write_tar(root / f"{shards:05d}.tar", wds_members([f"{shards:05d}0000"], [cut])))
    return paths, images


def _bank(images: dict[str, bytes]) -> None:
    _, entries = planted_bank(images, PLANTED)
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in entries], note="benign stand-in")


def _upload(root: Path, url: str) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file():
            storage.upload(p, storage.join(url, p.relative_to(root).as_posix()))


def _items(run: Path) -> pa.Table:
    return RunStore(run).items_table().sort_by([("shard", "ascending"), ("key", "ascending")])


def _remote_items(url: str, tmp: Path) -> pa.Table:
    """The items as the store holds them, read from a fresh working copy (no local state of the scan)."""
    fs, path = storage.filesystem(storage.join(url, "items"))
    names = sorted(fs.ls(path, detail=False))
    assert names, f"no items on the store at {url}"
    fresh = RunDir(tmp / "fresh-copy", url)
    fresh.pull()
    return _items(fresh.path)


def test_scan_from_and_to_s3_equals_the_local_scan(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    paths, images = _dataset(tmp_path / "ds")
    _bank(images)
    _upload(tmp_path / "ds", f"{s3}/ds")
    local = api.scan(paths, ["standin"], tmp_path / "local-run", workers=2)
    remote = api.scan([f"{s3}/ds"], ["standin"], f"{s3}/runs/a", workers=2)
    for k in ("items", "kept", "removed", "review", "failed"):
        assert remote[k] == local[k], k
    assert local["failed"] == 1 and local["removed"] == len(PLANTED)
    assert _remote_items(f"{s3}/runs/a", tmp_path).equals(_items(tmp_path / "local-run"))
    manifest = json.loads(storage.read_bytes(f"{s3}/runs/a/manifest.json"))
    assert manifest["sources"] == [f"{s3}/ds"]  # the run names the dataset where it lives, not the mirror
    assert json.loads(storage.read_bytes(f"{s3}/runs/a/summary.json"))["items"] == local["items"]
    assert sorted(storage.list_names(f"{s3}/runs/a/ledger")) == [f"{p.stem}.json" for p in paths]
    # Run results hold list values (a matched item's hashes): nothing of the run is left world-readable locally.
    assert os.stat(storage.mirror_path(f"{s3}/runs/a")).st_mode & 0o077 == 0
    # The same command again resumes: every shard is on the store already, so nothing is redone.
    again = api.scan([f"{s3}/ds"], ["standin"], f"{s3}/runs/a", workers=2)
    assert again["shards"]["resumed"] == len(paths) and again["items"] == local["items"]


def test_a_commit_without_its_marker_is_redone(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    """Write-then-marker: items on the store without a ledger entry (killed between the two uploads) do not count,
    and a working copy's entry the store never got is dropped when the run is reopened."""
    paths, images = _dataset(tmp_path / "ds", shards=2)
    _bank(images)
    run_url = f"{s3}/runs/m"
    first = api.scan(paths, ["standin"], run_url, workers=1)
    fs, root = storage.filesystem(run_url)
    fs.rm(f"{root}/ledger/00001.json")  # the marker never made it; its items object did
    reopened = RunDir.at(run_url)
    assert not reopened.ledger_path("00001").exists()
    again = api.scan(paths, ["standin"], run_url, workers=1)
    assert again["shards"]["resumed"] == len(paths) - 1 and again["items"] == first["items"]
    assert storage.exists(f"{run_url}/ledger/00001.json")


@pytest.mark.slow
def test_a_scan_killed_with_sigkill_resumes_from_the_store(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    paths, images = _dataset(tmp_path / "ds", shards=10, per_shard=6, size=384)
    _bank(images)
    _upload(tmp_path / "ds", f"{s3}/ds")
    run_url = f"{s3}/runs/k"
    cmd = [sys.executable, "-m", "cleanset", "scan", f"{s3}/ds", "--bank", "standin", "--out", run_url]
    proc = subprocess.Popen([*cmd, "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not storage.list_names(f"{run_url}/ledger") and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(storage.list_names(f"{run_url}/ledger"))
    assert 0 < done_before < len(paths), f"the kill came at {done_before} of {len(paths)} shards"
    assert not storage.exists(f"{run_url}/summary.json")
    # Resume on "another machine": a new, empty mirror; only the store knows what was done.
    env = {**os.environ, "CLEANSET_CACHE": str(tmp_path / "other-machine")}
    out = subprocess.run([*cmd, "--workers", "2", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["run"] == run_url and summary["shards"]["resumed"] == done_before
    local = api.scan(paths, ["standin"], tmp_path / "local-run", workers=2)
    assert summary["items"] == local["items"] and summary["removed"] == local["removed"]
    assert _remote_items(run_url, tmp_path).equals(_items(tmp_path / "local-run"))


def test_clean_to_s3_writes_the_local_clean_with_its_marker_last(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    paths, images = _dataset(tmp_path / "ds")
    _bank(images)
    _upload(tmp_path / "ds", f"{s3}/ds")
    run_url = f"{s3}/runs/c"
    api.scan([f"{s3}/ds"], ["standin"], run_url, workers=2)
    api.scan(paths, ["standin"], tmp_path / "local-run", workers=2)
    local = api.clean(paths, tmp_path / "local-run", tmp_path / "local-clean")
    remote = api.clean([f"{s3}/ds"], run_url, f"{s3}/clean")
    assert remote.out == f"{s3}/clean" and remote.run == run_url
    for k in ("items", "kept", "written", "removed", "failed_dropped", "files_root"):
        assert getattr(remote, k) == getattr(local, k), k
    fs, root = storage.filesystem(f"{s3}/clean")
    stored = {f[len(root) + 1 :]: fs.cat_file(f) for f in fs.find(root)}
    written = {p.relative_to(tmp_path / "local-clean").as_posix(): p.read_bytes()
               for p in (tmp_path / "local-clean").rglob("*") if p.is_file()}  # fmt: skip
    marker = ".cleanset-clean.json"
    assert stored.keys() == written.keys() and marker in stored
    assert all(stored[k] == written[k] for k in stored if k != marker)  # the marker dates itself
    for key in PLANTED:  # what the scan removed is nowhere in the copy
        assert all(images[key] not in data for data in stored.values())
    # The run's clean record went to the store as well; a second clean into the same URL is refused.
    assert json.loads(storage.read_bytes(f"{run_url}/clean.json"))["out"] == f"{s3}/clean"
    with pytest.raises(UserError, match="already holds a cleaned dataset"):
        api.clean([f"{s3}/ds"], run_url, f"{s3}/clean")
    # The CLI takes the run's URL and finds the dataset at the URL the run recorded.
    from typer.testing import CliRunner

    from cleanset.cli.app import app

    res = CliRunner().invoke(app, ["clean", run_url, "--dry-run", "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["dry_run"] and doc["removed"] == local.removed and doc["run"] == run_url


def test_locations_are_parsed_before_anything_is_created(tmp_path: Path) -> None:
    assert storage.location("s3://bucket/run/") == "s3://bucket/run"
    assert storage.location(f"file://{tmp_path}/x") == tmp_path / "x"
    assert storage.location("data/x") == Path("data/x")
    with pytest.raises(UserError, match="ftp:// is not a supported location"):
        storage.location("ftp://host/run")
    assert storage.expand_braces("s3://b/{00..02}.tar") == ["s3://b/00.tar", "s3://b/01.tar", "s3://b/02.tar"]


def test_a_missing_remote_source_is_named(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    BankStore.default().create_from_rows("standin", [BankRow("md5", "0" * 32, "x")], note="benign stand-in")
    with pytest.raises(UserError, match=f"source path does not exist: {s3}/nothing"):
        api.scan([f"{s3}/nothing"], ["standin"], tmp_path / "run")


def test_rematch_of_a_run_on_s3_pushes_its_revision(s3: str, cleanset_home: Path, tmp_path: Path) -> None:
    from cleanset.results.rematch import rematch

    paths, images = _dataset(tmp_path / "ds", shards=2)
    _bank(images)
    run_url = f"{s3}/runs/re"
    first = api.scan(paths, ["standin"], run_url, workers=1)
    _, entries = planted_bank(images, [*PLANTED, "000010000"])  # one more planted image: a list update finds it
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in entries], note="update")
    res = rematch(run_url, ["standin"])
    assert res.revision == 1 and res.summary["removed"] == first["removed"] + 1
    fresh = RunDir(tmp_path / "elsewhere", run_url)
    fresh.pull()  # another machine sees the revision the store holds, marker (summary.json) and all
    store = RunStore(fresh.path)
    assert store.latest_revision() == 1 and store.summary_of(1)["removed"] == first["removed"] + 1


def test_the_cli_takes_urls_and_refuses_unknown_schemes_by_name(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cleanset.cli.app import app

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["scan", "data", "--bank", "b", "--out", "ftp://host/run"])
    assert isinstance(res.exception, UserError) and "ftp:// is not a supported location" in str(res.exception)
    res = CliRunner().invoke(app, ["scan", "data", "--bank", "b", "--out", "r", "--address", "ray://h:10001"])
    assert isinstance(res.exception, UserError) and "--address is for --executor ray" in str(res.exception)
    assert list(tmp_path.iterdir()) == []  # nothing made under a mangled name


def test_staging_follows_the_store(s3: str, tmp_path: Path) -> None:
    """The mirror fetches a file once, again when it changed, and drops one the store no longer holds."""
    (tmp_path / "d").mkdir()
    for name, data in (("a.tar", b"one"), ("b.tar", b"two")):
        storage.upload(_write(tmp_path / "d" / name, data), f"{s3}/d/{name}")
    [local] = storage.stage([f"{s3}/d"])
    assert sorted(p.name for p in local.iterdir() if not p.name.startswith(".")) == ["a.tar", "b.tar"]
    before = (local / "a.tar").stat().st_mtime_ns
    storage.stage([f"{s3}/d"])
    assert (local / "a.tar").stat().st_mtime_ns == before  # unchanged on the store: not fetched again
    storage.upload(_write(tmp_path / "d" / "a.tar", b"changed"), f"{s3}/d/a.tar")
    fs, root = storage.filesystem(f"{s3}/d/b.tar")
    fs.rm(root)
    storage.stage([f"{s3}/d"])
    assert (local / "a.tar").read_bytes() == b"changed" and not (local / "b.tar").exists()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_commit_the_store_did_not_take_is_a_failed_attempt(
    s3: str, cleanset_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger entry's upload fails once (a dropped connection): the attempt failed, the shard is retried under
    the one rule, and the store ends with every shard; nothing counts as committed that the store lacks."""
    from cleanset.pipeline.events import Event, Retry

    paths, images = _dataset(tmp_path / "ds", shards=2)
    _bank(images)
    real, dropped = storage.upload, []

    def flaky(local: Path, url: str) -> None:
        if url.endswith("/ledger/00000.json") and not dropped:
            dropped.append(url)
            raise ConnectionResetError("connection reset by peer")
        real(local, url)

    monkeypatch.setattr(storage, "upload", flaky)
    events: list[Event] = []
    summary = api.scan(paths, ["standin"], f"{s3}/runs/f", executor="inline", on_event=events.append)
    assert dropped and [e.shard for e in events if isinstance(e, Retry)] == ["00000"]
    assert "connection reset" in next(e for e in events if isinstance(e, Retry)).reason
    local = api.scan(paths, ["standin"], tmp_path / "local", executor="inline")
    assert summary["items"] == local["items"] and summary["failed"] == local["failed"] == 1
    assert sorted(storage.list_names(f"{s3}/runs/f/ledger")) == ["00000.json", "00001.json", "00002.json"]


def test_file_urls_are_local_paths(cleanset_home: Path, tmp_path: Path) -> None:
    paths, images = _dataset(tmp_path / "ds", shards=2)
    _bank(images)
    by_path = api.scan(paths, ["standin"], tmp_path / "a", executor="inline")
    by_url = api.scan([f"file://{tmp_path}/ds"], ["standin"], f"file://{tmp_path}/b", executor="inline")
    assert by_url["items"] == by_path["items"] and _items(tmp_path / "b").equals(_items(tmp_path / "a"))
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["sources"] == [str(tmp_path / "ds")]


def test_a_push_slower_than_the_queue_silence_that_then_fails_is_retried(
    s3: str, cleanset_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's ledger upload outlasts the executor's patience for a silent queue, then the connection drops: the
    shard was never committed, so it must be retried, not settled from a local entry the store never got."""
    from cleanset.pipeline import executors
    from cleanset.pipeline.events import Event, Retry

    paths, images = _dataset(tmp_path / "ds", shards=2)
    _bank(images)
    monkeypatch.setattr(executors, "QUEUE_SILENCE_S", 0.3)
    real, once = storage.upload, tmp_path / "dropped-once"

    def slow_then_dropped(local: Path, url: str) -> None:  # runs in the forked worker: a file says "done once"
        if url.endswith("/ledger/00000.json") and not once.exists():
            once.touch()
            time.sleep(1.5)
            raise ConnectionResetError("connection reset by peer")
        real(local, url)

    monkeypatch.setattr(storage, "upload", slow_then_dropped)
    events: list[Event] = []
    summary = api.scan(paths, ["standin"], f"{s3}/runs/slow", executor="local", workers=1, on_event=events.append)
    assert once.exists() and [e.shard for e in events if isinstance(e, Retry)] == ["00000"]
    assert summary["shards"]["committed"] == 3 and summary["items"] == 9
    assert sorted(storage.list_names(f"{s3}/runs/slow/ledger")) == ["00000.json", "00001.json", "00002.json"]
