"""Showing a scan as it runs and when it ends: a Rich progress bar on stderr and the one-screen summary.

Kept out of the CLI module so that the demo (and anything else that runs a scan for a person) shows the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Table
from rich.text import Text

from cleanset.records import FAILURE_CODES
from cleanset.runs.summary import by_code

PLAIN_EVERY_S = 5.0


class ScanProgress:
    """Items done, items/s, failures, shards and an ETA, redrawn ten times a second.

    Counted per item as the workers report batches, not per shard: one shard can hold a whole folder. The ETA is
    from items, so it needs the item total. A source that can tell it cheaply offers ``item_counts()`` (shard id
    -> items, or None); otherwise it is estimated from the shards already committed (the mean per shard for each
    one still to do), and until one is, the ETA says ``?`` rather than guess. The rate is this session's, from the
    start of the scan, so it slows honestly while nothing arrives.
    """

    def __init__(self, console: Console, prep: Any) -> None:
        self.t0 = time.perf_counter()
        self.shards_total: int = prep.shards_total
        self.committed: dict[str, int] = {sid: int(e.get("items") or 0) for sid, e in prep.done.items()}
        self.resumed_items = sum(self.committed.values())
        self.partial: dict[str, int] = {}  # items reported so far by shards not yet committed
        self.items = 0  # this session's
        self.failed = 0
        self.known = _item_counts(prep.ctx.source)
        self.total: int | None = self._estimate()  # recomputed on each report; the redraw thread only reads it
        # Off a terminal (a log file, tee, CI) a redrawn bar shows nothing until the end: write a plain line every
        # PLAIN_EVERY_S seconds instead.
        self.plain = not console.is_terminal
        self.last_line = time.perf_counter()
        self.progress = Progress(
            TextColumn("[bold]scan"),
            BarColumn(bar_width=20),
            _Line(self),
            console=console,
            transient=False,
            disable=self.plain,
        )
        self.task = self.progress.add_task("scan", total=self.total, completed=self.resumed_items)
        if prep.resumed:
            console.print(
                f"resuming: {len(prep.done)} of {prep.shards_total} shards ({self.resumed_items:,} items) "
                "already committed"
            )

    def _estimate(self) -> int | None:
        """All items of the scan, resumed ones included, or None while there is nothing to estimate it from."""
        if self.known is not None:
            return sum(self.known.values())
        if not self.committed:
            return None
        sizes = self.committed.values()
        mean = sum(sizes) / len(self.committed)
        if any(n > max(sizes) for n in self.partial.values()):
            return None  # shards differ more than the committed ones show: no total worth an ETA
        todo = self.shards_total - len(self.committed) - len(self.partial)
        return round(sum(sizes) + sum(max(n, mean) for n in self.partial.values()) + todo * mean)

    def done(self) -> int:
        return self.resumed_items + self.items

    def rate(self) -> float:
        return self.items / max(time.perf_counter() - self.t0, 1e-9)

    def eta_s(self) -> float | None:
        total, rate = self.total, self.rate()
        if total is None or rate <= 0:
            return None
        return max(total - self.done(), 0) / rate

    def on_event(self, ev: Any) -> None:
        if ev.kind == "progress":
            self.items += ev.items
            self.failed += ev.failed
            self.partial[ev.shard] = self.partial.get(ev.shard, 0) + ev.items
        elif ev.kind == "shard":
            self.partial.pop(ev.shard, None)
            self.committed[ev.shard] = int((ev.entry or {}).get("items") or 0)
        elif ev.kind in ("retry", "gave_up"):
            what = "retrying" if ev.kind == "retry" else "giving up on"
            self.progress.console.print(f"[yellow]{what} shard {ev.shard}: {ev.reason}")
        self.total = self._estimate()
        self.progress.update(self.task, total=self.total, completed=self.done())
        now = time.perf_counter()
        if self.plain and now - self.last_line >= PLAIN_EVERY_S:
            self.last_line = now
            self.progress.console.print(f"scan {self.line()}", highlight=False)

    def line(self) -> str:
        """The numbers, most wanted first: a narrow terminal cuts the end of the line."""
        total = self.total
        of = f"/{total:,}" if total is not None else ""
        return (
            f"{self.done():,}{of} items  {self.rate():,.0f}/s  ETA {_clock(self.eta_s())}  {self.failed:,} failed  "
            f"{len(self.committed)}/{self.shards_total} shards  {_clock(time.perf_counter() - self.t0)}"
        )


def _item_counts(source: Any) -> dict[str, int] | None:
    counts = getattr(source, "item_counts", None)
    if not callable(counts):
        return None
    got = counts()
    return {str(k): int(v) for k, v in got.items()} if got is not None else None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Line(ProgressColumn):
    """The numbers, read from the view at every redraw so elapsed time, rate and ETA move between reports."""

    def __init__(self, view: ScanProgress) -> None:
        super().__init__()
        self.view = view

    def render(self, task: Task) -> Text:
        return Text(self.view.line())


def print_summary(console: Console, s: dict[str, Any], out: Path) -> None:
    """The one-screen summary: counts, matches per bank, failures grouped by code (a few kinds, however many files
    failed), where results are."""
    t = Table(title="scan summary", show_header=False, box=None)
    for k in ("items", "kept", "removed", "review", "failed"):
        t.add_row(k, f"{s[k]:,}")
    t.add_row("shards", f"{s['shards']['committed']}/{s['shards']['total']} (resumed {s['shards']['resumed']})")
    t.add_row("elapsed", f"{s['elapsed_s']:.1f} s")
    console.print(t)
    banks = Table(title="items matched per bank")
    banks.add_column("bank")
    banks.add_column("version", justify="right")
    banks.add_column("items", justify="right")
    for b in s["banks"]:
        banks.add_row(b["name"], str(b["version"]), f"{s['matches_by_bank'].get(b['name'], 0):,}")
    console.print(banks)
    if s["failures_by_reason"]:
        codes = s.get("failures_by_code") or by_code(s["failures_by_reason"])  # a summary from before codes
        f = Table(title="failures by code")
        f.add_column("code")
        f.add_column("items", justify="right")
        f.add_column("meaning", overflow="fold")
        for code, n in codes.items():
            f.add_row(code, f"{n:,}", FAILURE_CODES.get(code, ""))
        console.print(f)
        top = next(iter(s["failures_by_reason"]))
        console.print(f"commonest reason: {top} (all reasons: {out}/summary.json)")
    console.print(f"results: {out}/items/*.parquet, summary: {out}/summary.json")
    console.print(f'ask: cleanset query {out} "SELECT verdict, count(*) FROM items GROUP BY verdict"')
