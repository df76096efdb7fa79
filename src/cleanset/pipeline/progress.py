"""Showing a scan as it runs and when it ends: a Rich progress bar on stderr and the one-screen summary.

Kept out of the CLI module so that the demo (and anything else that runs a scan for a person) shows the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


class ScanProgress:
    """items/s, failures and an ETA by shards (item totals are unknown until a shard is read)."""

    def __init__(self, console: Console, prep: Any) -> None:
        self.progress = Progress(
            TextColumn("[bold]scan"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f} shards"),
            TextColumn("{task.fields[items]:,} items  {task.fields[rate]:,.0f}/s  {task.fields[failed]:,} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.t0 = time.perf_counter()
        self.items = 0
        self.failed = 0
        self.task = self.progress.add_task("scan", total=len(prep.todo), items=0, failed=0, rate=0.0)
        if prep.resumed:
            console.print(f"resuming: {len(prep.done)} of {prep.shards_total} shards already committed")

    def on_event(self, ev: Any) -> None:
        if ev.kind == "progress":
            self.items += ev.items
            self.failed += ev.failed
        elif ev.kind == "shard":
            self.progress.advance(self.task, 1)
        elif ev.kind in ("retry", "gave_up"):
            what = "retrying" if ev.kind == "retry" else "giving up on"
            self.progress.console.print(f"[yellow]{what} shard {ev.shard}: {ev.reason}")
        rate = self.items / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, items=self.items, failed=self.failed, rate=rate)


def print_summary(console: Console, s: dict[str, Any], out: Path) -> None:
    """The one-screen summary: counts, matches per bank, the commonest failure reasons, where results are."""
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
        f = Table(title="failures by reason")
        f.add_column("reason", overflow="fold")
        f.add_column("items", justify="right")
        reasons = list(s["failures_by_reason"].items())
        for reason, n in reasons[:10]:
            f.add_row(reason, f"{n:,}")
        if len(reasons) > 10:
            f.add_row(f"... {len(reasons) - 10} more reasons (see summary.json)", "")
        console.print(f)
    console.print(f"results: {out}/items/*.parquet, summary: {out}/summary.json")
    console.print(f'ask: cleanset query {out} "SELECT verdict, count(*) FROM items GROUP BY verdict"')
