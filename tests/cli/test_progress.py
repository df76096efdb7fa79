"""The scan's progress view: counted per item as batches arrive (not per shard), an ETA only once the item total
can be told, and numbers that move between reports."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

from rich.console import Console

from cleanset.pipeline.events import Event, Progress, ShardDone
from cleanset.pipeline.progress import ScanProgress


def prep(shards: int, done: dict[str, dict[str, Any]] | None = None, source: Any = None) -> Any:
    return SimpleNamespace(
        shards_total=shards,
        done=done or {},
        resumed=bool(done),
        todo=[],
        ctx=SimpleNamespace(source=source or object()),
    )


def view_of(p: Any) -> ScanProgress:
    return ScanProgress(Console(file=io.StringIO(), width=200), p)


def test_items_count_before_any_shard_finishes() -> None:
    v = view_of(prep(4))
    v.on_event(Progress("s0", items=512, failed=3))
    task = v.progress.tasks[0]
    assert task.completed == 512  # per item, not 0 shards
    assert v.failed == 3
    assert v.total is None and v.eta_s() is None  # no shard finished, no count offered: no guess


def test_eta_from_items_once_a_shard_is_committed() -> None:
    v = view_of(prep(4))
    v.on_event(Progress("s0", items=100))
    v.on_event(ShardDone("s0", entry={"items": 100, "failed": 0}))
    v.on_event(Progress("s1", items=30))
    assert v.total == 400  # 100 done + s1 (at least the mean) + two shards at the mean
    eta = v.eta_s()
    assert eta is not None and eta > 0
    assert v.progress.tasks[0].completed == 130


def test_a_retried_shard_takes_its_items_back() -> None:
    v = view_of(prep(2))
    v.on_event(Progress("s0", items=50))
    v.on_event(Progress("s0", items=-50))
    assert v.progress.tasks[0].completed == 0 and v.partial["s0"] == 0


def test_resumed_shards_count_and_estimate_from_the_start() -> None:
    v = view_of(prep(4, done={"s0": {"items": 10}, "s1": {"items": 10}}))
    assert v.progress.tasks[0].completed == 20
    assert v.total == 40


def test_a_source_that_counts_its_items_gives_the_total_at_once() -> None:
    class Counting:
        def item_counts(self) -> dict[str, int]:
            return {"a": 7, "b": 5}

    v = view_of(prep(2, source=Counting()))
    assert v.total == 12


def test_the_line_moves_between_reports() -> None:
    v = view_of(prep(1))
    col = v.progress.columns[-1]
    first = str(col(v.progress.tasks[0]))  # type: ignore[operator]
    assert "0 items" in first and "ETA ?" in first and "0/1 shards" in first
    v.t0 -= 2.0  # two seconds on: elapsed shows it without any new event
    assert "0:00:02" in str(col(v.progress.tasks[0]))  # type: ignore[operator]


def test_bench_reports_each_transformed_photo() -> None:
    import skimage.data

    from cleanset.cli.bench_cmd import BenchProgress
    from cleanset.evaluation.corpus import Photo
    from cleanset.evaluation.robustness import run_photos

    photos = [Photo(n, getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    calls: list[tuple[str, int, int | None]] = []
    run_photos(photos, transforms=["flip-h", "rotate90"], cost=False, progress=lambda *a: calls.append(a))
    assert calls[0] == ("transforms", 0, 8) and calls[-1] == ("transforms", 8, 8)
    assert [c[1] for c in calls] == list(range(9))  # one report per photo and transform, from the start
    view = BenchProgress()
    view.update("transforms", 3, 8)
    task = view.progress.tasks[0]
    assert (task.completed, task.total, task.description) == (3, 8, "transformed photos")


def test_a_shard_reports_hashed_items_before_its_batch_is_matched(
    dataset: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """40 items are one match batch: the scan still reports them as they are hashed (here every item, the
    report interval set to zero), and the reports add up to the shard's items with its failures."""
    from cli_fixtures import BANK

    from cleanset.pipeline import tasks
    from cleanset.pipeline.scan import ScanOptions, execute, prepare

    monkeypatch.setattr(tasks, "PROGRESS_EVERY_S", 0.0)
    events: list[Event] = []
    opts = ScanOptions(sources=[dataset.data], banks=[BANK], out=tmp_path / "r", executor="inline")
    summary = execute(prepare(opts), "inline", on_event=events.append)
    reports = [(e.items, e.failed) for e in events if e.kind == "progress"]
    assert len(reports) > 10  # not one report for the whole shard
    assert sum(n for n, _ in reports) == summary["items"] == 40
    assert sum(f for _, f in reports) == summary["failed"]


def test_no_total_while_a_shard_outgrows_every_committed_one() -> None:
    """A small last shard committed first says nothing of a big one still running: no 100% while work remains."""
    v = view_of(prep(2))
    v.on_event(Progress("small", items=500))
    v.on_event(ShardDone("small", entry={"items": 500}))
    v.on_event(Progress("big", items=643))
    assert v.total is None and v.eta_s() is None
    v.on_event(ShardDone("big", entry={"items": 1000}))
    assert v.total == 1500


def test_the_closing_screen_groups_failures_by_code(tmp_path: Any) -> None:
    """However many files failed, the screen shows a few kinds (stable codes), and the commonest reason in full."""
    import pyarrow as pa

    from cleanset.pipeline.progress import print_summary
    from cleanset.runs.summary import summarize

    reasons = [f"decode: file{i}.jpg: truncated" for i in range(30)] + ["read: permission denied", None]
    items = pa.table(
        {
            "key": [str(i) for i in range(len(reasons))],
            "shard": ["s"] * len(reasons),
            "status": ["failed"] * len(reasons),
            "reason": reasons,
            "verdict": pa.nulls(len(reasons), pa.string()),
            "matches": pa.array(
                [[]] * len(reasons), pa.list_(pa.struct([("bank", pa.string()), ("probe", pa.string())]))
            ),
        }
    )
    s = summarize(items)
    assert s["failures_by_code"] == {"decode": 30, "other": 1, "read": 1}
    s.update(banks=[], shards={"committed": 1, "total": 1, "resumed": 0}, elapsed_s=1.0)
    buf = io.StringIO()
    print_summary(Console(file=buf, width=120), s, tmp_path)
    text = buf.getvalue()
    assert "failures by code" in text and "decode" in text and "30" in text
    assert text.count("file") <= 2  # not one line per file


def test_off_a_terminal_progress_is_written_as_plain_lines(monkeypatch: Any) -> None:
    """Into a log file or a pipe a redrawn bar shows nothing until the end: plain lines appear as items arrive."""
    import cleanset.pipeline.progress as progress

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    out = io.StringIO()
    v = ScanProgress(Console(file=out, width=200), prep(2))
    assert v.plain
    v.on_event(Progress("s0", items=100, failed=1))
    v.on_event(Progress("s0", items=50, failed=0))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("scan ")]
    assert len(lines) == 2 and lines[-1].startswith("scan 150 items") and "1 failed" in lines[-1]
