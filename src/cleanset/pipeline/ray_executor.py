"""``ray``: the same shard tasks on a Ray cluster (or a local Ray instance), under the same contract.

- **One Ray task per shard; paths travel, not bytes.** A task gets the shard (id and path) and a reference to the
  scan's state, put into the object store once per scan: the picklable ``ScanPlan``, the run folder and the few
  environment settings that say where banks and storage are. Image bytes never pass through the driver.
- **Bank indexes once per node, through the object store.** The driver built the matcher from the banks the plan
  names (checked by digest) before any task ran; it is put into Ray's object store once per scan, and a worker's
  first task of the scan takes it from there: its indexes are NumPy arrays, which Ray maps read-only from shared
  memory, so a node holds one copy whatever its number of workers, and no node needs the bank store. The worker
  builds the rest of its ``ScanContext`` from the plan (``plan.build_context(matcher, url_plan)``: source, engine,
  screening) and keeps it for every later task of the scan. ``share_indexes = False`` makes each worker process
  reopen the banks from the plan instead (refusing one whose digest changed), once per process, never per task.
  A worker that cannot build its context stops the scan with that error instead of failing every item.
- **The same commit and ledger.** A task commits its shard itself (``ledger.commit_shard``: atomic rename locally,
  write-then-marker on object storage), into a run folder every node sees: a shared file system, or a run on
  object storage (``cleanset.storage``) whose ledger is the truth wherever the scan resumes. A remote run's
  working copy is recomputed by each worker under its own node's cache, never the driver's path.
- **The same retry rule.** Ray's own retries are off (``max_retries=0``); a task that raises or whose worker dies
  (``WorkerCrashedError``: a decoder's segfault, an OOM kill, a ``kill -9``) goes through ``Executor.retry`` like
  every other executor's, and a shard given up is committed with all its items failed. Before that the driver
  reads the run's ledger (the store's, for a remote run): a task lost after its commit is settled from it.
- **Progress back to the driver's bar.** Tasks send ``(shard, attempt, items, failed)`` batches to a small actor
  the driver polls; progress of an attempt that failed is taken back, and a straggler from it is ignored.

The driver starts a local Ray instance (``workers`` CPUs, no dashboard) unless an address is given
(``--address``, or Ray's own ``RAY_ADDRESS``), in which case it joins that cluster. Either way it disconnects at
the end of the scan (a local instance it started stops; a cluster keeps running); a caller that already called
``ray.init`` (a notebook, a test module) keeps its connection, and its instance serves every scan.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanset import storage
from cleanset.cluster import ADDRESS_ENV, ensure_ray, forwarded_env, import_ray
from cleanset.errors import CleansetError, UserError
from cleanset.pipeline.events import Event, EventFn, GaveUp, Progress, ShardDone
from cleanset.pipeline.executors import EXECUTORS, Executor, _failed_row, give_up, process_shard
from cleanset.pipeline.ledger import commit_shard
from cleanset.pipeline.tasks import ScanContext
from cleanset.runs.layout import RunDir, read_json
from cleanset.runs.schema import to_table
from cleanset.sources.base import Shard, marker_key

PROGRESS_EVERY_S = 0.25
POLL_S = 0.1


@dataclass(frozen=True)
class _State:
    """What every task of one scan shares, put into the object store once."""

    token: str
    plan: Any  # ScanPlan
    run: RunDir
    env: Mapping[str, str]
    source: Any = None  # the driver's own source, only when the plan could not rebuild it (a caller's wrapper)
    matcher: Any = None  # ObjectRef of the driver's matcher (share_indexes), else None: reopen the banks
    url_plan: Any = None  # the URL column path's prefilters, built by the driver with the matcher
    mirror: str | None = None  # the driver's mirror of remote locations; a shard staged there is read from ours


class _SetupFailed(CleansetError):
    """A worker could not build the scan's context (a bank missing on its node, a changed digest)."""


# One context per worker process: built on the scan's first task there, reused by every later task of the scan.
_CONTEXTS: dict[str, ScanContext] = {}


def _context(state: _State) -> ScanContext:
    ctx = _CONTEXTS.get(state.token)
    if ctx is not None:
        return ctx
    from cleanset.threads import limit_blas_threads, one_query_thread

    os.environ.update(state.env)
    limit_blas_threads()
    one_query_thread()  # Ray runs a task per core
    _CONTEXTS.clear()  # a previous scan's indexes
    try:
        if state.matcher is None:
            ctx = state.plan.build_context()
        else:
            ray = import_ray()
            ctx = state.plan.build_context(matcher=ray.get(state.matcher), url_plan=state.url_plan)
    except Exception as e:
        raise _SetupFailed(f"{type(e).__name__}: {e}") from None
    if state.source is not None:
        ctx.source = state.source
    _CONTEXTS[state.token] = ctx
    return ctx


def _shard_task(state: _State, kind: str, shard: Shard, reason: str, attempt: int, sink: Any) -> dict[str, Any]:
    """One attempt at one shard, in a Ray worker: scan and commit (or give up and commit), reporting progress."""
    ctx = _context(state)
    buf = [0, 0]
    last = [time.monotonic()]

    def flush() -> None:
        if buf[0] or buf[1]:
            sink.add.remote(shard.id, attempt, buf[0], buf[1])
            buf[0] = buf[1] = 0
        last[0] = time.monotonic()

    def forward(ev: Event) -> None:
        if isinstance(ev, Progress):
            buf[0] += ev.items
            buf[1] += ev.failed
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                flush()

    run = _working_copy(state.run)
    shard = _on_this_node(shard, state.mirror)
    entry = process_shard(shard, ctx, run, forward) if kind == "scan" else give_up(shard, ctx, run, reason)
    flush()
    return entry


def _on_this_node(shard: Shard, driver_mirror: str | None) -> Shard:
    """A shard of a remote source names its file in the driver's mirror (``/home/alice/.cache/...``); this worker
    staged the same file (same relative layout) under its own node's cache when it opened the source."""
    if driver_mirror is None:
        return shard
    try:
        rel = Path(shard.path).relative_to(driver_mirror)
    except ValueError:  # a local path: the same on every node (a shared or mounted file system)
        return shard
    return dataclasses.replace(shard, path=str(storage.cache_root() / rel))


def _working_copy(run: RunDir) -> RunDir:
    """The run as this worker commits into it. A remote run's working copy is recomputed under this node's own
    cache: the driver's (``/home/alice/.cache/...``) may not exist here, or belong to another user. A local run is
    a folder every node must see at the same path (a shared file system), so it travels as it is."""
    if run.remote is None:
        return run
    return RunDir(storage.mirror_path(run.remote), run.remote)


class _ProgressSink:
    """The driver's mailbox for progress: tasks add, the driver takes everything so far."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int, int, int]] = []

    def add(self, shard: str, attempt: int, items: int, failed: int) -> None:
        self.batches.append((shard, attempt, items, failed))

    def take(self) -> list[tuple[str, int, int, int]]:
        out, self.batches = self.batches, []
        return out


def _own_source(ctx: ScanContext) -> Any:
    """The driver's source object when the plan's spec would not rebuild it (a wrapper around the registered
    class); None otherwise, so workers reopen the source from the plan's paths on their own node."""
    from cleanset.sources import SOURCES

    spec = ctx.plan.source
    try:
        registered = SOURCES.get(spec.format)
    except Exception:
        return ctx.source
    return None if type(ctx.source) is registered else ctx.source


def _committed_entry(run: RunDir, sid: str) -> dict[str, Any] | None:
    """The shard's ledger entry where the run's truth is (the store for a remote run, else the shared folder), or
    None. Asked before a failed attempt is retried: a task can die after its commit (its node lost on the way
    back), and a retry would briefly put new items beside the old entry, a give-up overwrite a good commit."""
    if run.remote is None:
        if run.ledger_path(sid).is_file() and run.items_path(sid).is_file():
            entry: dict[str, Any] = read_json(run.ledger_path(sid))
            return entry
        return None
    url = storage.join(run.remote, run.relative(run.ledger_path(sid)))
    if not storage.exists(url):
        return None
    stored: dict[str, Any] = json.loads(storage.read_bytes(url))
    return stored


def _failure_reason(ray: Any, err: BaseException) -> str:
    """What the retry rule records for a failed attempt: the task's own error, or how its worker died."""
    if isinstance(err, ray.exceptions.RayTaskError):
        cause = getattr(err, "cause", None)
        if isinstance(cause, _SetupFailed):
            raise UserError(f"a Ray worker could not set up the scan: {cause}") from None
        if cause is not None:
            return f"internal: {type(cause).__name__}: {cause}"
        return f"internal: {err}"
    text = " ".join(str(err).split())
    return f"ray worker died ({type(err).__name__}: {text[:300]})"


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """One Ray task per shard on a local instance or a cluster; see the module docstring."""

    name = "ray"
    share_indexes: bool = True  # the driver's matcher through the object store; False: each worker reopens banks

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        super().__init__(workers)
        self.address = address or os.environ.get(ADDRESS_ENV) or None  # else a local instance

    def run(self, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn) -> list[dict[str, Any]]:
        if not shards:
            return []
        if ctx.plan is None:
            raise UserError("the ray executor needs the scan's plan (ScanContext.plan); prepare the scan first")
        ray = import_ray()
        started = ensure_ray(self.address, self.workers)
        try:
            return self._run(ray, shards, ctx, run, on_event)
        finally:
            if started:  # a local instance this scan started stops with it; a cluster it joined is only left
                ray.shutdown()

    def _run(
        self, ray: Any, shards: Sequence[Shard], ctx: ScanContext, run: RunDir, on_event: EventFn
    ) -> list[dict[str, Any]]:
        shared = ray.put(ctx.matcher) if self.share_indexes else None
        url_plan = ctx.url_plan if self.share_indexes else None
        mirror = str(storage.cache_root())
        state = _State(uuid.uuid4().hex, ctx.plan, run, forwarded_env(), _own_source(ctx), shared, url_plan, mirror)
        state_ref = ray.put(state)
        sink = ray.remote(num_cpus=0)(_ProgressSink).remote()
        task = ray.remote(max_retries=0, num_cpus=1)(_shard_task)
        in_flight_max = max(1, 2 * int(ray.cluster_resources().get("CPU", self.workers)))

        pending: deque[tuple[str, Shard, str]] = deque(("scan", s, "") for s in shards)
        scans: dict[str, int] = {}  # scan attempts per shard, for the retry rule
        tries: dict[str, int] = {}  # submissions per shard: progress is taken from the current one only
        shown: dict[str, list[int]] = {}
        inflight: dict[Any, tuple[str, Shard, int, str]] = {}
        entries: dict[str, dict[str, Any]] = {}

        def show(sid: str, items: int, failed: int) -> None:
            if items or failed:
                s = shown.setdefault(sid, [0, 0])
                s[0] += items
                s[1] += failed
                on_event(Progress(sid, items=items, failed=failed))

        def take_back(sid: str) -> None:
            items, failed = shown.pop(sid, [0, 0])
            if items or failed:
                on_event(Progress(sid, items=-items, failed=-failed))

        def done(sid: str, entry: dict[str, Any]) -> None:
            items, failed = shown.pop(sid, [0, 0])
            if entry["items"] != items or entry["failed"] != failed:  # what the batches had not said yet
                on_event(Progress(sid, items=entry["items"] - items, failed=entry["failed"] - failed))
            entries[sid] = entry
            on_event(ShardDone(sid, entry))

        def settle(ref: Any) -> None:
            kind, shard, attempt, why = inflight.pop(ref)
            sid = shard.id
            drain()  # this attempt's last batches, before it is settled
            try:
                entry = ray.get(ref)
            except ray.exceptions.RayError as e:
                tries[sid] = attempt + 1  # whatever this attempt still sends is ignored
                reason = _failure_reason(ray, e)
                take_back(sid)
                stored = _committed_entry(run, sid)
                if stored is not None:  # it committed, then its node died: never redo (or give up) a good commit
                    done(sid, stored)
                    return
                if kind == "give_up":  # even listing its items failed: one row stands for the shard
                    text = f"{why}; listing its items failed too: {reason}"
                    row = _failed_row(marker_key(sid, "unread"), shard, text, None)
                    entry = commit_shard(run, shard, to_table([row]), 0)
                    done(sid, entry)
                    return
                step = self.retry.after_failure(sid, scans[sid], reason)
                on_event(step)
                pending.appendleft(("give_up", shard, step.reason) if isinstance(step, GaveUp) else ("scan", shard, ""))
                return
            tries[sid] = attempt + 1
            done(sid, entry)

        def drain() -> None:
            for sid, attempt, items, failed in ray.get(sink.take.remote()):
                if sid not in entries and tries.get(sid) == attempt:
                    show(sid, items, failed)

        try:
            while pending or inflight:
                while pending and len(inflight) < in_flight_max:
                    kind, shard, reason = pending.popleft()
                    if kind == "scan":
                        scans[shard.id] = scans.get(shard.id, 0) + 1
                    attempt = tries.get(shard.id, 0) + 1
                    tries[shard.id] = attempt
                    ref = task.remote(state_ref, kind, shard, reason, attempt, sink)
                    inflight[ref] = (kind, shard, attempt, reason)
                refs = list(inflight)
                ready, rest = ray.wait(refs, num_returns=1, timeout=POLL_S)
                if ready and rest:
                    more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                    ready += more
                drain()
                for ref in ready:
                    settle(ref)
        finally:
            for ref in inflight:
                ray.cancel(ref, force=True)
            ray.kill(sink)
        self._fetch_missing(run, entries)
        return [entries[s.id] for s in shards]

    @staticmethod
    def _fetch_missing(run: RunDir, entries: Mapping[str, Mapping[str, Any]]) -> None:
        """Shards committed on other nodes into a remote run: into the driver's working copy, for the summary."""
        here = [run.items_path(sid).is_file() and run.ledger_path(sid).is_file() for sid in entries]
        if run.remote is not None and not all(here):
            run.pull()
