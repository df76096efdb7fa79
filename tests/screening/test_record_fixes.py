"""Review fixes of what a screened scan records: the full rules and thresholds in the manifest, term lists pinned
to the version resolved at plan time, a term list version never overwritten by a concurrent import, and a remote
run folder refused for the neighbour pass before anything is scanned."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import cleanset.api as api
from cleanset.assess.policy import DEFAULT_RULES, DEFAULT_THRESHOLDS, Policy
from cleanset.cli.app import app
from cleanset.pipeline.plan import ScanPlan
from cleanset.screening.stage import ScreenConfig
from cleanset.screening.terms import TermStore
from cleanset.signals.engine import HashConfig


def _laion(tmp_path: Path) -> Path:
    path = tmp_path / "part-0.parquet"
    pq.write_table(
        pa.table({"URL": [f"https://images.example.org/{i}.jpg" for i in range(4)], "TEXT": ["a kitten"] * 4}), path
    )
    return path


def test_a_screened_scan_records_its_rules_and_pinned_lists(tmp_path: Path, cleanset_home: Path) -> None:
    words = tmp_path / "pets.txt"
    words.write_text("kitten\n", encoding="utf-8")
    TermStore.default().import_file("pets", words, "minor")
    banks = api.banks_from_rows(cleanset_home, "standin", [("md5", hashlib.md5(b"nothing").hexdigest(), "E0")])
    run = tmp_path / "run"
    config = ScreenConfig(classifiers=(), term_lists=("pets",), default_terms=False)
    api.scan([_laion(tmp_path)], banks, run, screen=config, executor="inline", format="laion")
    manifest = json.loads((run / "manifest.json").read_text())
    assert [r["name"] for r in manifest["policy"]["rules"]] == [r.name for r in DEFAULT_RULES]
    assert manifest["policy"]["thresholds"] == dict(sorted(DEFAULT_THRESHOLDS.items()))
    assert Policy.from_dict(manifest["policy"]).rules == DEFAULT_RULES
    assert config.pinned().term_lists == ("pets@1",)
    TermStore.default().import_file("pets", words, "minor")  # a new version after planning
    source = SimpleNamespace(name="laion")
    plan = ScanPlan.of(source, [], {}, [], HashConfig(), Policy(), 0, config)
    assert plan.screen.term_lists == ("pets@2",)
    pinned = ScreenConfig(classifiers=(), term_lists=("pets@1",), default_terms=False)
    assert pinned.pinned().term_lists == ("pets@1",) and [tl.label for tl in pinned.build().lists] == ["minor:pets@1"]


def test_concurrent_imports_never_overwrite_a_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = TermStore(tmp_path / "home")
    store.create("pets", ["kitten"], "minor")
    real = store._versions
    calls = {"n": 0}

    def stale(name: str) -> list[int]:
        calls["n"] += 1
        return [] if calls["n"] == 1 else real(name)  # as another import that had not yet seen version 1

    monkeypatch.setattr(store, "_versions", stale)
    info = store.create("pets", ["puppy"], "minor")
    assert info.version == 2
    assert store.open("pets", 1).terms == ("kitten",) and store.open("pets", 2).terms == ("puppy",)
    assert not [p for p in (store.dir / "pets").iterdir() if p.name.startswith(".")]


def test_embeddings_with_a_remote_out_is_refused_up_front(tmp_path: Path, cleanset_home: Path) -> None:
    args = ["scan", str(tmp_path), "--bank", "x", "--out", "s3://bucket/run", "--screen", "--embeddings", "e.npy"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2 and "local --out" in out.output
