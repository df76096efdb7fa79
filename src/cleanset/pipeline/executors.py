"""Where shards run: the Executor seam.

Every executor runs the same ``scan_shard`` + ``commit_shard`` per shard and shares one retry rule (below), so
results do not depend on the executor or the number of workers.

Retry rule (all executors): ``events.RetryRule``, held once as ``Executor.retry``: a shard whose attempt fails (a
Python error, or the worker process dying: segfault in a decoder, OOM kill) is tried once more. If the second
attempt fails too, the shard is committed with every item it holds marked ``failed`` with the reason (fail closed:
its items are accounted for and the cleaned dataset leaves them out); when even listing its items fails, one failed
row ``<shard>#unread`` stands for the shard.

What a worker needs is ``ScanContext``; a worker that does not share the parent's memory builds it from the
picklable ``plan.ScanPlan`` (``ctx.plan.build_context()``). Executors are registered in ``EXECUTORS``, which also
loads the entry point group ``cleanset.executors``, and ``tests/pipeline/test_executor_conformance.py`` runs every
registered one on the same data.

``local``: ``workers`` processes (all cores by default), each forked once and fed one shard at a time. The parent
has built the hash engine and the matcher (and warmed them up) before forking, so the bank indexes are shared
copy-on-write and never rebuilt; the parent knows which shard each worker holds, so a crash costs only that shard's
attempt and the worker is replaced. Children die with the parent (PR_SET_PDEATHSIG), so a ``kill -9`` of the
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from cleanset.pipeline.events import RETRY_RULE, Event, EventFn, GaveUp, Progress, Retry, RetryRule, ShardDone
from cleanset.pipeline.ledger import commit_shard
from cleanset.pipeline.tasks import ScanContext, safe_items, scan_shard
from cleanset.records import ItemResult, Status
from cleanset.registry import Registry
from cleanset.runs.layout import RunDir, read_json
from cleanset.runs.schema import to_table
from cleanset.sources.base import Shard, marker_key
from cleanset.threads import limit_blas_threads, one_query_thread


class Executor(ABC):
    name: ClassVar[str]
    retry: ClassVar[RetryRule] = RETRY_RULE  # one rule for every executor; see the module docstring

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or default_workers())

    @abstractmethod
    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        """Scan and commit every shard; returns the ledger entries in the order of ``shards``."""


EXECUTORS: Registry[type[Executor]] = Registry("executor", group="cleanset.executors")


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
        on_event(Progress(shard.id, items=n, failed=failed))

    result = scan_shard(shard, ctx, progress)
    return commit_shard(
        run, shard, result.table, result.elapsed_s, result.timings.as_dict(), source_sha256=result.source_sha256
    )


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
            attempt = 0
            while entry is None:
                attempt += 1
                done = _Tally(on_event)
                try:
                    entry = process_shard(shard, ctx, run, done)
                except Exception as e:
                    done.reset(shard.id)
                    step = self.retry.after_failure(shard.id, attempt, f"internal: {type(e).__name__}: {e}")
                    on_event(step)
                    if isinstance(step, GaveUp):
                        entry = give_up(shard, ctx, run, step.reason)
                        on_event(Progress(shard.id, items=entry["items"], failed=entry["failed"]))
            on_event(ShardDone(shard.id, entry))
            entries.append(entry)
        return entries


class _Tally:
    """Forwards progress and remembers it, so a failed attempt's progress can be taken back."""

    def __init__(self, on_event: EventFn) -> None:
        self.on_event = on_event
        self.items = 0
        self.failed = 0

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, Progress):
            self.items += ev.items
            self.failed += ev.failed
        self.on_event(ev)

    def reset(self, shard_id: str) -> None:
        if self.items or self.failed:
            self.on_event(Progress(shard_id, items=-self.items, failed=-self.failed))
        self.items = self.failed = 0


# A committed shard whose "done" message has not arrived after this long is settled from disk instead.
QUEUE_SILENCE_S = 5.0

# State handed to forked children: set in the parent just before forking, inherited, never pickled.
_CHILD: dict[str, Any] = {}


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != _CHILD.get("parent_pid"):  # parent already gone before prctl took effect
            os._exit(1)


def _worker_main(tasks: Any, results: Any) -> None:
    """A worker process: forked once, it scans (or gives up on) one shard at a time until told to stop."""
    _die_with_parent()
    limit_blas_threads()
    one_query_thread()
    ctx: ScanContext = _CHILD["ctx"]
    run: RunDir = _CHILD["run"]
    while True:
        task = tasks.get()
        if task is None:
            break
        kind, shard, reason = task

        def forward(ev: Event, sid: str = shard.id) -> None:
            if isinstance(ev, Progress):
                results.put(("progress", sid, ev.items, ev.failed))

        try:
            if kind == "scan":
                process_shard(shard, ctx, run, forward)
            else:
                give_up(shard, ctx, run, reason)
            results.put(("done", shard.id, 0, 0))
        except Exception as e:
            results.put(("error", shard.id, 0, 0, f"internal: {type(e).__name__}: {e}"))
    results.close()
    results.join_thread()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"worker process killed by {name}"
    return f"worker process exited with code {code}"


@dataclass
class _Worker:
    process: Any
    tasks: Any
    busy: tuple[str, Shard] | None = None  # (kind, shard) being worked on


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """Worker processes forked once each and fed one shard at a time; see the module docstring."""

    name = "local"

    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        if not shards:
            return []
        self._mpc = mp.get_context("fork")
        self._results = self._mpc.Queue()
        _CHILD.update(ctx=ctx, run=run, parent_pid=os.getpid())
        gc.freeze()  # children never traverse (or dirty, copy-on-write) the parent's objects: banks, indexes
        pending: list[tuple[str, Shard, str]] = [("scan", s, "") for s in reversed(shards)]
        attempts: dict[str, int] = {}
        last_error: dict[str, str] = {}
        shown: dict[str, list[int]] = {}  # progress shown per shard, taken back when an attempt fails
        entries: dict[str, dict[str, Any]] = {}
        workers = [self._spawn() for _ in range(min(self.workers, len(shards)))]

        def handle(msg: tuple[Any, ...]) -> None:
            kind, sid = msg[0], msg[1]
            owner = next((w for w in workers if w.busy is not None and w.busy[1].id == sid), None)
            if owner is None:  # a settled task's straggler: nothing to add
                return
            if kind == "progress":
                s = shown.setdefault(sid, [0, 0])
                s[0] += msg[2]
                s[1] += msg[3]
                on_event(Progress(sid, items=msg[2], failed=msg[3]))
            else:  # done or error: the ledger on disk says which
                if kind == "error":
                    last_error[sid] = msg[4]
                pending.extend(self._finished(owner, run, on_event, shown, last_error, attempts, entries))

        try:
            while pending or any(w.busy for w in workers):
                for w in workers:
                    if w.busy is None and pending:
                        kind, shard, reason = pending.pop()
                        if kind == "scan":
                            attempts[shard.id] = attempts.get(shard.id, 0) + 1
                        w.busy = (kind, shard)
                        w.tasks.put((kind, shard, reason))

                for msg in self._drain(0.1):
                    handle(msg)
                for w in workers:
                    if w.busy is not None and self._committed_long_ago(run, w.busy[1].id):
                        # Its shard is on disk but the message never came: a worker killed while holding the shared
                        # queue's lock silences the queue for all. Settle from disk so the scan still ends.
                        pending.extend(self._finished(w, run, on_event, shown, last_error, attempts, entries))
                for i, w in enumerate(workers):
                    if w.process.is_alive():
                        continue
                    w.process.join()
                    for msg in self._drain(0):  # what it said before dying
                        handle(msg)
                    if w.busy is not None:
                        sid = w.busy[1].id
                        if w.process.exitcode != 0 or sid not in last_error:
                            last_error[sid] = _exit_reason(w.process.exitcode)
                        pending.extend(self._finished(w, run, on_event, shown, last_error, attempts, entries))
                    if pending or any(x.busy for x in workers):
                        workers[i] = self._spawn()
        finally:
            for w in workers:
                if w.process.is_alive():
                    w.tasks.put(None)
            for w in workers:
                w.process.join(timeout=5)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()
            _CHILD.clear()
            gc.unfreeze()
            self._results.close()
        return [entries[s.id] for s in shards]

    @staticmethod
    def _committed_long_ago(run: RunDir, sid: str) -> bool:
        """Ledger and items on disk for ``sid`` for longer than a working queue takes to say so."""
        ledger = run.ledger_path(sid)
        try:
            return run.items_path(sid).is_file() and time.time() - ledger.stat().st_mtime > QUEUE_SILENCE_S
        except FileNotFoundError:
            return False

    def _spawn(self) -> _Worker:
        tasks = self._mpc.SimpleQueue()
        p = self._mpc.Process(target=_worker_main, args=(tasks, self._results), daemon=True)
        p.start()
        return _Worker(p, tasks)

    def _drain(self, timeout: float) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        block = timeout > 0
        while True:
            try:
                out.append(self._results.get(block, timeout) if block else self._results.get_nowait())
            except queue.Empty:
                return out
            block = False

    @staticmethod
    def _finished(
        w: _Worker,
        run: RunDir,
        on_event: EventFn,
        shown: dict[str, list[int]],
        last_error: dict[str, str],
        attempts: dict[str, int],
        entries: dict[str, dict[str, Any]],
    ) -> list[tuple[str, Shard, str]]:
        """Settle the worker's task by what is on disk; returns the follow-up task, if any, to queue."""
        assert w.busy is not None
        kind, shard = w.busy
        w.busy = None
        sid = shard.id
        path = run.ledger_path(sid)
        if path.is_file() and run.items_path(sid).is_file():
            entry: dict[str, Any] = read_json(path)
            if kind == "give_up":
                on_event(Progress(sid, items=entry["items"], failed=entry["failed"]))
            shown.pop(sid, None)
            entries[sid] = entry
            on_event(ShardDone(sid, entry))
            return []
        items, failed = shown.pop(sid, [0, 0])
        if items or failed:
            on_event(Progress(sid, items=-items, failed=-failed))
        reason = last_error.get(sid, "failed")
        if kind == "give_up":  # even listing its items failed: one row stands for the shard
            entry = commit_shard(run, shard, to_table([_failed_row(marker_key(sid, "unread"), shard, reason, None)]), 0)
            on_event(Progress(sid, items=1, failed=1))
            entries[sid] = entry
            on_event(ShardDone(sid, entry))
            return []
        step = LocalExecutor.retry.after_failure(sid, attempts[sid], reason)
        on_event(step)
        if isinstance(step, Retry):
            return [("scan", shard, "")]
        return [("give_up", shard, step.reason)]
