"""A run's path is data: glob characters in it must not widen what `cleanset query` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cleanset.pipeline.ledger import commit_shard
from cleanset.records import ItemResult, Status, Verdict
from cleanset.results.query import query
from cleanset.runs.layout import RunDir
from cleanset.runs.schema import to_table
from cleanset.sources.base import Shard

GLOBBY = "run[1]*?"
# What the glob "run[1]*?" matches: a sibling that must never be read in GLOBBY's place.
SIBLING = "run1-other"


def make_run(path: Path, prefix: str, n: int) -> Path:
    run = RunDir(path)
    run.open_for_scan({"sources": ["/data"], "format": "folder"})
    items = [ItemResult(f"{prefix}-{i}", "s0", Status.OK, None, Verdict.KEEP) for i in range(n)]
    commit_shard(run, Shard("s0", "/data/s0"), to_table(items), 0.1)
    return path


def test_query_reads_exactly_the_named_run(tmp_path: Path) -> None:
    run = make_run(tmp_path / GLOBBY, "mine", 3)
    make_run(tmp_path / SIBLING, "other", 5)
    keys = query(run, "SELECT key FROM items ORDER BY key").column("key").to_pylist()
    assert keys == ["mine-0", "mine-1", "mine-2"]
    assert query(run, "SELECT count(*) AS n FROM matches").column("n").to_pylist() == [0]


def test_query_cli_on_a_globby_run_directory(tmp_path: Path) -> None:
    parent = tmp_path / "runs*"  # a glob character above the run as well
    run = make_run(parent / GLOBBY, "mine", 2)
    make_run(parent / SIBLING, "other", 4)
    out = subprocess.run(
        [sys.executable, "-m", "cleanset", "query", str(run), "SELECT key FROM items ORDER BY key", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert [r["key"] for r in json.loads(out.stdout)] == ["mine-0", "mine-1"]


def test_summary_counts_exactly_the_named_run(tmp_path: Path) -> None:
    """The scan's closing summary and rematch's revision summary read the same files, never a glob's siblings."""
    from cleanset.runs.store import RunStore
    from cleanset.runs.summary import summarize

    run = make_run(tmp_path / GLOBBY, "mine", 2)
    make_run(tmp_path / SIBLING, "other", 3)
    assert summarize(RunStore(run).item_files())["items"] == 2
