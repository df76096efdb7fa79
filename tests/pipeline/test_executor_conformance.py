"""The executor contract, run against every registered executor: the same data gives the same results table, and
so does a run in which a worker dies mid-shard (killed for ``local``, raising for in-process executors); the one
retry rule decides what follows a failure; the scan plan pickles, and a fresh process builds a working context from
it; executors, sources and list formats come in through entry points, as an outside package's would.

A plugin author runs ``check_executor`` on their own executor (see ``test_a_plugin_executor_passes_the_kit``)."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from scan_fixtures import make_wds, planted_bank

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.pipeline import executors
from cleanset.pipeline.events import RETRY_RULE, Event, GaveUp, Progress, Retry, ShardDone
from cleanset.pipeline.executors import EXECUTORS, Executor, give_up, process_shard
from cleanset.pipeline.plan import ScanPlan
from cleanset.pipeline.scan import ScanOptions, execute, prepare
from cleanset.pipeline.tasks import ScanContext
from cleanset.registry import Registry
from cleanset.runs.layout import RunDir
from cleanset.runs.store import RunStore
from cleanset.sources.base import Shard, SourceItem

PLANTED = ["000000001", "000010002"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[tuple[str, str, str]]]:
    paths, images = make_wds(tmp_path_factory.mktemp("wds"), shards=3, per_shard=5)
    _, entries = planted_bank(images, PLANTED)
    return paths, entries


@pytest.fixture()
def bank_home(dataset, cleanset_home: Path) -> Path:
    """The planted bank in a real store: the plan names banks by store version and digest."""
    BankStore.default().create_from_rows("standin", [BankRow(*e) for e in dataset[1]], note="benign stand-in")
    return cleanset_home


class _KilledOnce:
    """A source whose worker is SIGKILLed once while reading one shard, after its first item: the first attempt is
    cut mid-shard, the retry reads it whole. The marker file is the memory across processes (a killed worker
    forgets)."""

    def __init__(self, inner: Any, shard_id: str, marker: Path) -> None:
        self.inner, self.shard_id, self.marker = inner, shard_id, marker

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # unpickling (a Ray worker) asks for these before ``inner`` is set
            raise AttributeError(name)
        return getattr(self.inner, name)

    def read(self, shard: Shard) -> Iterator[SourceItem]:
        for i, item in enumerate(self.inner.read(shard)):
            if shard.id == self.shard_id and i == 1 and not self.marker.exists():
                self.marker.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            yield item


def _dies_once(events: list[Event], shard_id: str, marker: Path) -> Any:
    """An event sink that raises once, at the shard's first progress report: the attempt dies after work was done
    and reported but before its commit, as an in-process worker dies (a reader's own error would not do: the
    reader loop turns it into a failed row, by design)."""

    def on_event(ev: Event) -> None:
        events.append(ev)
        if isinstance(ev, Progress) and ev.shard == shard_id and ev.items > 0 and not marker.exists():
            marker.touch()
            raise RuntimeError("worker died mid-shard")

    return on_event


def _results(run: Path) -> pa.Table:
    table = RunStore(run).items_table()
    return table.sort_by([("shard", "ascending"), ("key", "ascending")])


def check_executor(
    name: str, paths: Sequence[Path], tmp: Path, kill: bool, workers: int = 2
) -> tuple[pa.Table, pa.Table, list[Event]]:
    """The conformance kit: a clean run and a run with one worker dying mid-shard, by executor ``name``; returns
    both results tables (which must equal each other and every other executor's) and the second run's events."""
    clean = execute(prepare(ScanOptions(sources=paths, banks=["standin"], out=tmp / f"{name}-a")), name, workers)
    prep = prepare(ScanOptions(sources=paths, banks=["standin"], out=tmp / f"{name}-b"))
    target, marker = prep.todo[1].id, tmp / f"{name}.died"
    events: list[Event] = []
    if kill:
        prep.ctx.source = _KilledOnce(prep.ctx.source, target, marker)  # type: ignore[assignment]
        again = execute(prep, name, workers, on_event=events.append)
    else:
        again = execute(prep, name, workers, on_event=_dies_once(events, target, marker))
    assert (tmp / f"{name}.died").exists(), "the injected failure never happened"
    for s in (clean, again):
        assert s["items"] == 15 and s["removed"] == len(PLANTED) and s["failed"] == 0
        assert s["items"] == s["kept"] + s["removed"] + s["review"] + s["failed"]
    return _results(tmp / f"{name}-a"), _results(tmp / f"{name}-b"), events


@contextlib.contextmanager
def _one_instance(name: str) -> Iterator[None]:
    """For ``ray``, one local instance serves both runs (the executor would start and stop one per scan)."""
    if name != "ray":
        yield
        return
    from cleanset.cluster import ensure_ray, import_ray

    started = ensure_ray(num_cpus=2)
    try:
        yield
    finally:
        if started:
            import_ray().shutdown()


@pytest.mark.slow  # starts Ray (the ray executor) besides forking workers
def test_every_registered_executor_gives_the_same_results(dataset, bank_home: Path, tmp_path: Path) -> None:
    paths, _ = dataset
    tables: dict[str, pa.Table] = {}
    for name in EXECUTORS.names():
        # a separate process can be killed; an in-process executor sees an exception
        kill = name in ("local", "ray")
        with _one_instance(name):
            clean, interrupted, events = check_executor(name, paths, tmp_path, kill)
        assert clean.equals(interrupted), f"{name}: a worker dying mid-shard changed the results"
        tables[name] = clean
        retried = [e for e in events if isinstance(e, Retry)]
        assert len(retried) == 1 and not any(isinstance(e, GaveUp) for e in events)
        # Ray reports a dead worker but not the signal that killed it
        said = {"local": "SIGKILL", "ray": "ray worker died"}.get(name, "worker died mid-shard")
        assert said in retried[0].reason
        # Progress taken back for the failed attempt: the shown count ends at the number of items.
        assert sum(e.items for e in events if isinstance(e, Progress)) == 15
        assert sorted(e.shard for e in events if isinstance(e, ShardDone)) == sorted(set(clean["shard"].to_pylist()))
    first = next(iter(tables.values()))
    for name, table in tables.items():
        assert table.equals(first), f"{name} differs from {next(iter(tables))}"


def test_the_retry_rule_is_one_rule() -> None:
    assert all(EXECUTORS.get(n).retry is RETRY_RULE for n in EXECUTORS.names())
    assert RETRY_RULE.after_failure("s", 1, "boom") == Retry("s", "boom", 1)
    assert RETRY_RULE.after_failure("s", 2, "boom") == GaveUp("s", "boom (after 2 attempts)")


def test_the_plan_pickles_and_a_fresh_process_builds_from_it(dataset, bank_home: Path, tmp_path: Path) -> None:
    paths, _ = dataset
    prep = prepare(ScanOptions(sources=paths, banks=["standin"], out=tmp_path / "run"))
    plan = prep.ctx.plan
    assert isinstance(plan, ScanPlan)
    blob = pickle.dumps(plan)
    assert pickle.loads(blob) == plan
    assert b"decoy" not in blob and all(e[1].encode() not in blob for e in dataset[1])  # names banks, holds no values
    (tmp_path / "plan.pkl").write_bytes(blob)
    code = (
        "import pickle, sys\n"
        "from cleanset.pipeline.tasks import scan_shard\n"
        "plan = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "ctx = plan.build_context()\n"
        "shard = ctx.source.shards()[0]\n"
        "t = scan_shard(shard, ctx, lambda n, f: None).table\n"
        "print(sorted(zip(t['key'].to_pylist(), t['verdict'].to_pylist())))\n"
    )
    env = {**os.environ, "CLEANSET_HOME": str(bank_home)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "plan.pkl")], capture_output=True, text=True, env=env, check=True
    ).stdout
    from cleanset.pipeline.tasks import scan_shard

    t = scan_shard(prep.todo[0], prep.ctx, lambda n, f: None).table
    assert out.strip() == str(sorted(zip(t["key"].to_pylist(), t["verdict"].to_pylist(), strict=True)))
    assert "remove" in out


def test_a_plan_refuses_a_bank_whose_bytes_changed(dataset, bank_home: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from cleanset.errors import UserError

    paths, _ = dataset
    plan = prepare(ScanOptions(sources=paths, banks=["standin"], out=tmp_path / "run")).ctx.plan
    forged = replace(plan, banks=(replace(plan.banks[0], digest="0" * 64),))
    with pytest.raises(UserError, match="digest"):
        forged.build_context()


class ToyExecutor(Executor):
    """What a plugin's executor looks like: shards in reverse order, in this process, under the shared rule."""

    name = "toy"

    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: Any) -> list[dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for shard in reversed(shards):
            attempt = 0
            while shard.id not in entries:
                attempt += 1
                shown: list[Progress] = []

                def forward(ev: Event, shown: list[Progress] = shown) -> None:
                    if isinstance(ev, Progress):
                        shown.append(ev)
                    on_event(ev)

                try:
                    entries[shard.id] = process_shard(shard, ctx, run, forward)
                except Exception as e:
                    on_event(Progress(shard.id, -sum(p.items for p in shown), -sum(p.failed for p in shown)))
                    step = self.retry.after_failure(shard.id, attempt, f"internal: {e}")
                    on_event(step)
                    if isinstance(step, GaveUp):
                        entries[shard.id] = give_up(shard, ctx, run, step.reason)
                        on_event(Progress(shard.id, entries[shard.id]["items"], entries[shard.id]["failed"]))
            on_event(ShardDone(shard.id, entries[shard.id]))
        return [entries[s.id] for s in shards]


def _entry_points(group: str, extra: Sequence[tuple[str, str]] = ()) -> list[EntryPoint]:
    builtin = {
        "cleanset.executors": [
            ("inline", "cleanset.pipeline.executors:InlineExecutor"),
            ("local", "cleanset.pipeline.executors:LocalExecutor"),
        ]
    }
    return [EntryPoint(n, v, group) for n, v in [*builtin.get(group, []), *extra]]


def test_a_plugin_executor_passes_the_kit(
    dataset, bank_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered exactly as an outside package would be (an entry point), then held to the same table."""
    toy = (("toy", f"{__name__}:ToyExecutor"),)
    monkeypatch.setattr("cleanset.registry.entry_points", lambda group: _entry_points(group, toy))
    registry: Registry[type[Executor]] = Registry("executor", group="cleanset.executors")
    registry.add("inline", executors.InlineExecutor)  # as the built-in module does on import
    monkeypatch.setattr(executors, "EXECUTORS", registry)
    assert registry.names() == ["inline", "local", "toy"]
    paths, _ = dataset
    clean, interrupted, _ = check_executor("toy", paths, tmp_path, kill=False)
    reference, _, _ = check_executor("inline", paths, tmp_path, kill=False)
    assert clean.equals(interrupted) and clean.equals(reference)


def test_entry_points_load_once_and_a_taken_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def eps(group: str) -> list[EntryPoint]:
        calls.append(group)
        return _entry_points(group, (("inline", f"{__name__}:ToyExecutor"),))

    monkeypatch.setattr("cleanset.registry.entry_points", eps)
    registry: Registry[type[Executor]] = Registry("executor", group="cleanset.executors")
    registry.add("inline", executors.InlineExecutor)
    with pytest.raises(ValueError, match="duplicate executor name 'inline'"):
        registry.names()
    plain: Registry[int] = Registry("thing")  # no group: never asks
    plain.add("a", 1)
    assert plain.names() == ["a"] and calls == ["cleanset.executors"]


def test_built_ins_are_declared_as_entry_points() -> None:
    """Installed (``pip install -e .``), the built-ins are listed in the same groups a plugin uses."""
    from importlib.metadata import entry_points

    from cleanset.banks.formats import FORMATS
    from cleanset.signals import SIGNALS, signal_names
    from cleanset.sources import SOURCES

    signal_names()  # the built-in signal modules, imported
    for group, registry in (
        ("cleanset.executors", EXECUTORS),
        ("cleanset.sources", SOURCES),
        ("cleanset.formats", FORMATS),
        ("cleanset.signals", SIGNALS),
    ):
        declared = {ep.name for ep in entry_points(group=group)}
        if not declared:
            pytest.skip("cleanset is not installed with its entry points (a bare source checkout)")
        assert declared <= set(registry.names()), group
        for ep in entry_points(group=group):
            assert registry.get(ep.name) is ep.load()
