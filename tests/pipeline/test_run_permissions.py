"""A run folder holds a matched item's own hashes, which are list values: it is as private as the bank store
(folders 0700, files 0600) under any umask, through scan, resume, rematch and clean, while the cleaned dataset
keeps the permissions any program's output would have."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from scan_fixtures import make_wds, planted_bank

from cleanset.actions.clean import clean
from cleanset.atomic import atomic_output, private_dir
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.results.rematch import rematch
from cleanset.runs.layout import RunDir


@pytest.fixture()
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes(tree: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(folder -> mode, file -> mode) of everything under ``tree``, itself included."""
    dirs, files = {}, {}
    for dirpath, _, filenames in os.walk(tree):
        dirs[dirpath] = stat.S_IMODE(os.stat(dirpath).st_mode)
        for name in filenames:
            p = os.path.join(dirpath, name)
            files[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return dirs, files


def assert_private(tree: Path) -> int:
    dirs, files = modes(tree)
    assert {d: m for d, m in dirs.items() if m != 0o700} == {}
    assert {f: m for f, m in files.items() if m != 0o600} == {}
    return len(files)


def scan(sources: list[Path], out: Path, bank: object) -> dict:
    opts = ScanOptions(sources=sources, banks=[], out=out, executor="inline", workers=1)
    return execute(prepare(opts, [bank]), "inline", 1)


@pytest.mark.parametrize("umask", [0o022, 0o000], indirect=True)
def test_run_scan_rematch_clean_are_owner_only(tmp_path: Path, cleanset_home: Path, umask: int) -> None:
    paths, images = make_wds(tmp_path / "data", shards=2, per_shard=4)
    _, entries = planted_bank(images, ["000000001"], name="standin")
    store = BankStore.default()
    store.create_from_rows("standin", [BankRow(s, v, e) for s, v, e in entries])
    run = tmp_path / "runs" / "run"
    summary = scan(paths, run, store.open("standin"))
    assert summary["removed"] == 1

    # A new list version (one decoy fewer): rematch writes a revision folder into the run.
    store.create_from_rows("standin", [BankRow(s, v, e) for s, v, e in entries[:-1]])
    assert rematch(run, ["standin"]).revision == 1
    out = tmp_path / "cleaned"
    report = clean(paths, run, out)
    assert report.written == len(images) - 1

    assert (run / "revisions" / "1" / "changes.parquet").is_file() and (run / "clean.json").is_file()
    assert assert_private(run) >= 10
    assert_private(cleanset_home)
    # The cleaned dataset is the user's to share: the modes their umask gives, as for any program's output.
    dirs, files = modes(out)
    assert set(dirs.values()) == {0o777 & ~umask}
    assert files and set(files.values()) == {0o666 & ~umask}
    assert stat.S_IMODE(os.stat(tmp_path / "runs").st_mode) == 0o777 & ~umask  # above the run: the user's


def test_resuming_a_run_made_before_runs_were_private_closes_it(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    config = {"sources": ["/data"], "format": "folder"}
    run.open_for_scan(config)
    (run.items_dir / "s0.parquet").write_bytes(b"results")
    for p in (run.path, run.items_dir, run.ledger_dir):
        os.chmod(p, 0o755)
    for p in (run.manifest_path, run.items_dir / "s0.parquet", run.lock_path):
        os.chmod(p, 0o644)
    _, resumed = run.open_for_scan(config)
    assert resumed
    assert assert_private(run.path) == 3


def test_atomic_output_follows_the_folder(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        secret = private_dir(tmp_path / "secret")
        with atomic_output(secret / "deep" / "x.json") as tmp:
            assert stat.S_IMODE(tmp.stat().st_mode) == 0o600  # before a byte is written
            tmp.write_text("{}")
        assert stat.S_IMODE((secret / "deep").stat().st_mode) == 0o700
        assert stat.S_IMODE((secret / "deep" / "x.json").stat().st_mode) == 0o600
        with atomic_output(secret / "replaced.bin") as tmp:
            tmp.unlink()
            tmp.write_bytes(b"written by a library that recreates its file")
        assert stat.S_IMODE((secret / "replaced.bin").stat().st_mode) == 0o600

        group = tmp_path / "group-readable"  # not owner-only, unlike pytest's tmp_path
        group.mkdir(mode=0o755)
        with atomic_output(group / "cleaned" / "shard.tar") as tmp:
            tmp.write_bytes(b"data")
        assert stat.S_IMODE((group / "cleaned").stat().st_mode) == 0o777
        assert stat.S_IMODE((group / "cleaned" / "shard.tar").stat().st_mode) == 0o666
    finally:
        os.umask(old)
