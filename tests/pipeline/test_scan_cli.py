"""`cleanset scan` and `cleanset query` as a user runs them: real subprocesses, a real bank store, kill -9."""

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
from scan_fixtures import make_wds, planted_bank

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.runs.store import RunStore


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


@pytest.fixture()
def setup(tmp_path: Path, cleanset_home: Path) -> tuple[list[Path], dict[str, bytes], list[tuple[str, str, str]]]:
    """Six shards, two planted items (one by md5 and PDQ, one by PDQ only) in a stored bank."""
    paths, images = make_wds(tmp_path / "wds", shards=6, per_shard=6, size=160)
    _, entries = planted_bank(images, ["000010002", "000040005"])
    BankStore.default().create_from_rows(
        "standin", [BankRow(signal=s, value=v, entry_id=e) for s, v, e in entries], note="test stand-in"
    )
    return paths, images, entries


def scan_args(paths: list[Path], out: Path, *extra: str) -> list[str]:
    return ["scan", *map(str, paths), "--bank", "standin", "--out", str(out), *extra]


def sorted_items(run: Path) -> pa.Table:
    return RunStore(run).items_table().sort_by([("shard", "ascending"), ("key", "ascending")])


def test_resume_after_sigkill_equals_uninterrupted_run(setup, tmp_path: Path) -> None:
    paths, images, entries = setup
    whole = tmp_path / "whole"
    out = cli(*scan_args(paths, whole, "--workers", "1"))
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout and "standin" in out.stdout

    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleanset", *scan_args(paths, run, "--workers", "1")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((run / "ledger").glob("*.json")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((run / "ledger").glob("*.json")))
    assert 1 <= done < len(paths), f"kill landed after {done} of {len(paths)} shards; the test proves nothing"
    assert not (run / "summary.json").exists()

    again = cli(*scan_args(paths, run, "--workers", "1"))
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["shards"]["resumed"] >= done and summary["shards"]["committed"] == len(paths)
    assert not list((run / "items").glob("*.tmp*"))
    a, b = sorted_items(whole), sorted_items(run)
    assert a.num_rows == len(images)
    assert a.equals(b)
    assert summary["removed"] == 2 and summary["items"] == len(images)
    # no bank value anywhere in what the scan printed or wrote beside the items
    for _, value, _ in entries:
        if value not in {h for r in a.to_pylist() for h in (r["pdq"], r["md5"])}:
            assert value not in again.stdout + again.stderr + (run / "summary.json").read_text()
            assert value not in (run / "manifest.json").read_text()


def test_different_scan_into_used_run_is_refused(setup, tmp_path: Path) -> None:
    paths, _, _ = setup
    run = tmp_path / "run"
    assert cli(*scan_args(paths[:2], run, "--executor", "inline")).returncode == 0
    out = cli(*scan_args(paths[:2], run, "--executor", "inline", "--review-above", "8"))
    assert out.returncode == 2
    assert "already holds a different scan" in out.stderr and "policy" in out.stderr


def test_unknown_bank_fails_before_reading(setup, tmp_path: Path) -> None:
    paths, _, _ = setup
    out = cli("scan", str(paths[0]), "--bank", "nope", "--out", str(tmp_path / "run"))
    assert out.returncode == 2
    assert "nope" in out.stderr
    assert not (tmp_path / "run").exists()


def test_query_views(setup, tmp_path: Path) -> None:
    paths, images, _ = setup
    run = tmp_path / "run"
    assert cli(*scan_args(paths, run, "--workers", "2")).returncode == 0
    out = cli("query", str(run), "SELECT verdict, count(*) AS n FROM items GROUP BY verdict ORDER BY verdict", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [{"verdict": "keep", "n": len(images) - 2}, {"verdict": "remove", "n": 2}]
    out = cli("query", str(run), "SELECT DISTINCT key, bank FROM matches ORDER BY key", "--csv")
    assert out.stdout.splitlines() == ["key,bank", "000010002,standin", "000040005,standin"]
    out = cli("query", str(run), "SELECT count(*) AS n FROM probes WHERE probe = 'pdq/rotate90'", "--json")
    assert json.loads(out.stdout) == [{"n": len(images)}]
    out = cli("query", str(run), "SELECT sum(items) AS n, count(*) AS shards FROM ledger", "--json")
    assert json.loads(out.stdout) == [{"n": len(images), "shards": len(paths)}]
    out = cli("query", str(run), "SELECT key FROM items WHERE verdict = 'remove' ORDER BY key")
    assert out.returncode == 0 and "000010002" in out.stdout
    bad = cli("query", str(run), "SELECT nope FROM items")
    assert bad.returncode == 2 and "query failed" in bad.stderr
    # Cells and column names are data, not rich markup: a key like "a[/x]" must print as itself, not crash.
    out = cli("query", str(run), """SELECT '[/x]' || key AS "[/c]", '[b]k' AS b FROM items ORDER BY key LIMIT 1""")
    assert out.returncode == 0, out.stderr
    assert "[/x]000000000" in out.stdout and "[/c]" in out.stdout and "[b]k" in out.stdout
