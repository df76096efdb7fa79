"""Hash lookups from concurrent requests answered together: one ``api.check_many`` per batch.

A lookup's fixed cost in Python (building probes, the policy, the matcher's bookkeeping) is several times the
index's own work for one hash; ``check_many`` pays it once per batch. No timer decides a batch: a lookup thread
takes every request waiting when it is free, answers them together (the index kernel releases the GIL, so the event
loop keeps reading requests meanwhile) and goes straight on to the next ones. Alone, a request is answered at once.

The thread pulls its work from a queue rather than being handed each batch by the event loop: handed over, each
batch waited until the loop, busy writing the previous batch's answers, got round to starting it, and the lookup
thread stood idle a third of the time under load (measured with ``bench/service_load.py``).

Each request gets exactly what ``check_many`` gives it alone (answers do not depend on the batch: the matcher
decides per item), and requests asked against different bank views (another generation, a caller's thresholds)
are never mixed. A batch that raises is answered request by request, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Mapping, Sequence

from cleanset import api
from cleanset.assess import Policy
from cleanset.records import Probe
from cleanset.service.workers import Outcome, Workers, settle

Items = Sequence[Mapping[str, str] | Sequence[Probe]]
Answer = list[api.Check] | BaseException
_Work = tuple[asyncio.AbstractEventLoop, api.Banks, "Policy | None", Items, "asyncio.Future[list[api.Check]]"]


class LookupBatcher:
    """``concurrency`` lookup threads take batches from one queue: the kernel releases the GIL, so a second thread
    can use a second core while the first is inside the index. Threads start with the first request."""

    def __init__(self, max_items: int = 512, concurrency: int = 1) -> None:
        self.max_items = max_items
        self.concurrency = max(1, concurrency)
        self.batches = 0  # batches answered (tests, metrics)
        self._workers: Workers[_Work] = Workers(self.concurrency, "cleanset-lookup", self._serve)

    async def check(
        self, items: Items, banks: api.Banks, policy: Policy | None = None, timeout_s: float | None = None
    ) -> list[api.Check]:
        """``policy``: the service's (``--policy``), judging as ``check_many`` does; None is the default.
        ``timeout_s``: how long to wait for the answer before ``TimeoutError`` (the caller answers 503); the
        lookup itself is not interrupted, its answer is dropped."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[api.Check]] = loop.create_future()
        self._workers.put((loop, banks, policy, items, fut))
        if timeout_s is None:
            return await fut
        return await asyncio.wait_for(fut, timeout_s)

    def close(self) -> None:
        """Stop the lookup threads once the work already queued is answered."""
        self._workers.close()

    def _serve(self) -> None:
        carry: _Work | None = None  # a request that did not fit the last batch: it opens the next one
        while True:
            first = carry if carry is not None else self._workers.queue.get()
            carry = None
            if first is None:
                return
            batch, size, stop = [first], len(first[3]), False
            nxt: _Work | None = None
            while size < self.max_items:
                try:
                    nxt = self._workers.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if size + len(nxt[3]) > self.max_items:
                    carry = nxt
                    break
                batch.append(nxt)
                size += len(nxt[3])
            self._run(batch)
            batch = first = nxt = None  # type: ignore[assignment]  # nothing of a sent batch is held while waiting
            if stop:
                if carry is not None:  # answered before stopping: queued work is never left waiting
                    self._run([carry])
                return

    def _run(self, batch: list[_Work]) -> None:
        """Answer one batch. Nothing escapes: whatever goes wrong fails that batch's requests, and the thread goes
        on to the next (a thread that died would leave every later request waiting). Kept out of ``_serve``'s
        loop so the batch, its banks and its answers are let go as soon as they are sent, not held until the
        next request arrives (after a reload that would keep the old banks alive on a quiet server)."""
        try:
            answers: list[Answer] = _answer([(banks, policy, items) for _, banks, policy, items, _ in batch])
        except Exception as e:  # every request of the batch hears it
            answers = [e] * len(batch)
        self.batches += 1
        by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[Outcome]]] = {}
        for (loop, _, _, _, fut), ans in zip(batch, answers, strict=True):
            outcome = (fut, None, ans) if isinstance(ans, BaseException) else (fut, ans, None)
            by_loop.setdefault(id(loop), (loop, []))[1].append(outcome)
        for loop, outcomes in by_loop.values():
            settle(loop, outcomes)


def _answer(batch: Sequence[tuple[api.Banks, Policy | None, Items]]) -> list[Answer]:
    """Per request, its checks (or the exception it alone raised), grouping requests by the banks and policy
    they ask."""
    out: list[Answer] = [[] for _ in batch]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (banks, policy, _) in enumerate(batch):
        groups.setdefault((id(banks), id(policy)), []).append(i)
    for idx in groups.values():
        banks, policy, _ = batch[idx[0]]
        flat = [h for i in idx for h in batch[i][2]]
        try:
            checks = api.check_many(flat, banks, policy)
        except Exception:
            for i in idx:  # someone's input was bad: find whose, without failing the others
                try:
                    out[i] = api.check_many(batch[i][2], banks, policy)
                except Exception as e:
                    out[i] = e
            continue
        pos = 0
        for i in idx:
            n = len(batch[i][2])
            out[i] = checks[pos : pos + n]
            pos += n
    return out
