"""Where shards run: the Executor seam.

Every executor runs the same ``scan_shard`` + ``commit_shard`` per shard and shares one retry rule (below), so
results do not depend on the executor or the number of workers.

Retry rule (all executors): a shard whose attempt fails (a Python error, or the worker process dying: segfault in
a decoder, OOM kill) is tried once more. If the second attempt fails too, the shard is committed with every item
it holds marked ``failed`` with the reason (fail closed: its items are accounted for and the cleaned dataset leaves
them out); when even listing its items fails, one failed row ``<shard>#unread`` stands for the shard.

``local``: one forked process per shard attempt, up to ``workers`` at a time. The parent has built the hash engine
and the matcher (and warmed them up) before forking, so the bank indexes are shared copy-on-write and never rebuilt;
a crash takes down only its own shard. Children die with the parent (PR_SET_PDEATHSIG), so a ``kill -9`` of the
scan leaves no writer behind. ``inline``: the same, in this process, for tests and debugging.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing as mp
import os
import queue
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from cleanset.pipeline.ledger import commit_shard
from cleanset.pipeline.runs import RunDir, read_json
from cleanset.pipeline.tasks import ScanContext, safe_items, scan_shard
from cleanset.records import ItemResult, Status
from cleanset.registry import Registry
from cleanset.results.schema import to_table
from cleanset.sources.base import Shard, marker_key

ATTEMPTS = 2  # first try + one retry


@dataclass
class Event:
    """What an executor reports to whoever shows progress: ``progress`` (items, failed), ``shard`` (entry),
    ``retry`` / ``gave_up`` (reason)."""

    kind: str
    shard: str
    items: int = 0
    failed: int = 0
    entry: dict[str, Any] | None = None
    reason: str | None = None


EventFn = Callable[[Event], None]


class Executor(ABC):
    name: ClassVar[str]

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or default_workers())

    @abstractmethod
    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        """Scan and commit every shard; returns the ledger entries in the order of ``shards``."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def get_executor(name: str, workers: int | None = None) -> Executor:
    return EXECUTORS.get(name)(workers)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def process_shard(shard: Shard, ctx: ScanContext, run: RunDir, on_event: EventFn) -> dict[str, Any]:
    """One attempt: scan then commit. Raises on failure (the caller applies the retry rule)."""

    def progress(n: int, failed: int) -> None:
        on_event(Event("progress", shard.id, items=n, failed=failed))

    result = scan_shard(shard, ctx, progress)
    return commit_shard(run, shard, result.table, result.elapsed_s, result.timings.as_dict())


def give_up(shard: Shard, ctx: ScanContext, run: RunDir, reason: str) -> dict[str, Any]:
    """Commit the shard with all its items failed (see the module docstring)."""
    t0 = time.perf_counter()
    rows: list[ItemResult] = []
    try:
        for item in safe_items(ctx.source, shard):
            rows.append(_failed_row(item.key, shard, item.error or reason, item.url))
    except Exception as e:
        rows = [
            _failed_row(marker_key(shard.id, "unread"), shard, f"{reason}; listing its items failed too: {e}", None)
        ]
    if not rows:
        rows = [_failed_row(marker_key(shard.id, "unread"), shard, reason, None)]
    return commit_shard(run, shard, to_table(rows), time.perf_counter() - t0)


def _failed_row(key: str, shard: Shard, reason: str, url: str | None) -> ItemResult:
    return ItemResult(key=key, shard=shard.id, status=Status.FAILED, reason=reason, verdict=None, url=url)


@EXECUTORS.register("inline")
class InlineExecutor(Executor):
    name = "inline"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = 1

    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for shard in shards:
            entry: dict[str, Any] | None = None
            reason = ""
            for attempt in range(ATTEMPTS):
                done = _Tally(on_event)
                try:
                    entry = process_shard(shard, ctx, run, done)
                    break
                except Exception as e:
                    reason = f"internal: {type(e).__name__}: {e}"
                    done.reset(shard.id)
                    on_event(Event("retry" if attempt + 1 < ATTEMPTS else "gave_up", shard.id, reason=reason))
            if entry is None:
                entry = give_up(shard, ctx, run, f"{reason} (after {ATTEMPTS} attempts)")
                on_event(Event("progress", shard.id, items=entry["items"], failed=entry["failed"]))
            on_event(Event("shard", shard.id, entry=entry))
            entries.append(entry)
        return entries


class _Tally:
    """Forwards progress and remembers it, so a failed attempt's progress can be taken back."""

    def __init__(self, on_event: EventFn) -> None:
        self.on_event = on_event
        self.items = 0
        self.failed = 0

    def __call__(self, ev: Event) -> None:
        if ev.kind == "progress":
            self.items += ev.items
            self.failed += ev.failed
        self.on_event(ev)

    def reset(self, shard_id: str) -> None:
        if self.items or self.failed:
            self.on_event(Event("progress", shard_id, items=-self.items, failed=-self.failed))
        self.items = self.failed = 0


# State handed to forked children: set in the parent just before forking, inherited, never pickled.
_CHILD: dict[str, Any] = {}


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != _CHILD.get("parent_pid"):  # parent already gone before prctl took effect
            os._exit(1)


def _child_scan(shard: Shard, q: Any) -> None:
    _die_with_parent()
    ctx: ScanContext = _CHILD["ctx"]
    run: RunDir = _CHILD["run"]

    def forward(ev: Event) -> None:
        q.put((ev.kind, ev.shard, ev.items, ev.failed))

    try:
        process_shard(shard, ctx, run, forward)
    except BaseException as e:
        q.put(("error", shard.id, 0, 0, f"internal: {type(e).__name__}: {e}"))
        q.close()
        q.join_thread()
        os._exit(1)
    q.close()
    q.join_thread()


def _child_give_up(shard: Shard, reason: str) -> None:
    _die_with_parent()
    give_up(shard, _CHILD["ctx"], _CHILD["run"], reason)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"worker process killed by {name}"
    return f"worker process exited with code {code}"


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    name = "local"

    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        mpc = mp.get_context("fork")
        q = mpc.Queue()
        _CHILD.update(ctx=ctx, run=run, parent_pid=os.getpid())
        gc.freeze()  # children never traverse (or dirty, copy-on-write) the parent's objects: banks, indexes
        pending = list(reversed(shards))
        attempts: dict[str, int] = {}
        last_error: dict[str, str] = {}
        shown: dict[str, list[int]] = {}  # progress shown per shard, taken back on retry
        running: dict[str, tuple[Any, Shard, bool]] = {}  # shard id -> (process, shard, is_give_up)
        entries: dict[str, dict[str, Any]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.workers:
                    shard = pending.pop()
                    n = attempts.get(shard.id, 0)
                    if n < ATTEMPTS:
                        attempts[shard.id] = n + 1
                        p = mpc.Process(target=_child_scan, args=(shard, q), daemon=True)
                        running[shard.id] = (p, shard, False)
                    else:
                        reason = f"{last_error.get(shard.id, 'failed')} (after {ATTEMPTS} attempts)"
                        on_event(Event("gave_up", shard.id, reason=reason))
                        p = mpc.Process(target=_child_give_up, args=(shard, reason), daemon=True)
                        running[shard.id] = (p, shard, True)
                    p.start()
                self._drain(q, on_event, shown, last_error, timeout=0.1)
                for sid, (p, shard, was_give_up) in list(running.items()):
                    if p.is_alive():
                        continue
                    p.join()
                    self._drain(q, on_event, shown, last_error, timeout=0)
                    del running[sid]
                    entry = self._committed(run, shard)
                    if entry is not None:
                        if was_give_up:
                            on_event(Event("progress", sid, items=entry["items"], failed=entry["failed"]))
                        entries[sid] = entry
                        shown.pop(sid, None)
                        on_event(Event("shard", sid, entry=entry))
                        continue
                    if p.exitcode != 1 or sid not in last_error:
                        last_error[sid] = _exit_reason(p.exitcode)
                    items, failed = shown.pop(sid, [0, 0])
                    if items or failed:
                        on_event(Event("progress", sid, items=-items, failed=-failed))
                    if was_give_up:  # even listing the items killed the worker: one row stands for the shard
                        entry = commit_shard(
                            run,
                            shard,
                            to_table([_failed_row(marker_key(sid, "unread"), shard, last_error[sid], None)]),
                            0.0,
                        )
                        on_event(Event("progress", sid, items=1, failed=1))
                        entries[sid] = entry
                        on_event(Event("shard", sid, entry=entry))
                    else:
                        if attempts[sid] < ATTEMPTS:
                            on_event(Event("retry", sid, reason=last_error[sid]))
                        pending.append(shard)
        finally:
            for p, _, _ in running.values():
                if p.is_alive():
                    p.kill()
                p.join()
            _CHILD.clear()
            gc.unfreeze()
            q.close()
        return [entries[s.id] for s in shards]

    @staticmethod
    def _committed(run: RunDir, shard: Shard) -> dict[str, Any] | None:
        path = run.ledger_path(shard.id)
        if path.is_file() and run.items_path(shard.id).is_file():
            entry: dict[str, Any] = read_json(path)
            return entry
        return None

    @staticmethod
    def _drain(
        q: Any, on_event: EventFn, shown: dict[str, list[int]], last_error: dict[str, str], timeout: float
    ) -> None:
        block = timeout > 0
        while True:
            try:
                msg = q.get(block, timeout) if block else q.get_nowait()
            except queue.Empty:
                return
            block = False
            kind, sid = msg[0], msg[1]
            if kind == "progress":
                s = shown.setdefault(sid, [0, 0])
                s[0] += msg[2]
                s[1] += msg[3]
                on_event(Event("progress", sid, items=msg[2], failed=msg[3]))
            elif kind == "error":
                last_error[sid] = msg[4]
