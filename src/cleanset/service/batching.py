"""Hash lookups from concurrent requests answered together: one ``api.check_many`` per batch.

A lookup's fixed cost in Python (building probes, the policy, the matcher's bookkeeping) is several times the
index's own work for one hash; ``check_many`` pays it once per batch. No timer decides a batch: while one batch
runs (in a thread: the index kernel releases the GIL, so the event loop keeps reading requests meanwhile), the
requests that arrive wait, and the next batch takes all of them. Alone, a request is answered at once.

Each request gets exactly what ``check_many`` gives it alone (answers do not depend on the batch: the matcher
decides per item), and requests asked against different bank views (another generation, a caller's thresholds)
are never mixed. A batch that raises is answered request by request, so one bad request fails only itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from cleanset import api
from cleanset.records import Probe

Items = Sequence[Mapping[str, str] | Sequence[Probe]]


class LookupBatcher:
    """``concurrency`` batches may run at once, each in its own thread: the kernel releases the GIL, so a second
    batch can use a second core while the first is inside the index."""

    def __init__(self, max_items: int = 512, concurrency: int = 1) -> None:
        self.max_items = max_items
        self.concurrency = max(1, concurrency)
        self._pending: list[tuple[api.Banks, Items, asyncio.Future[list[api.Check]]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()  # held: a task nobody references may be collected
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cleanset-lookup")

    async def check(self, items: Items, banks: api.Banks) -> list[api.Check]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[list[api.Check]] = loop.create_future()
        self._pending.append((banks, items, fut))
        self._kick(loop)
        return await fut

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending and self._inflight < self.concurrency:
            take, size = 0, 0
            while take < len(self._pending) and (take == 0 or size + len(self._pending[take][1]) <= self.max_items):
                size += len(self._pending[take][1])
                take += 1
            batch, self._pending = self._pending[:take], self._pending[take:]
            self._inflight += 1
            task = loop.create_task(self._run(loop, batch, size))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[api.Banks, Items, asyncio.Future[list[api.Check]]]],
        size: int,
    ) -> None:
        try:
            answers: list[list[api.Check] | BaseException] = await loop.run_in_executor(self._pool, _answer, batch)
        except BaseException as e:  # the pool itself failed (shut down): every request in the batch hears it
            answers = [e] * len(batch)
        finally:
            self._inflight -= 1
        for (_, _, fut), ans in zip(batch, answers, strict=True):
            if fut.done():  # the request was cancelled (client went away)
                continue
            if isinstance(ans, BaseException):
                fut.set_exception(ans)
            else:
                fut.set_result(ans)
        self._kick(loop)


def _answer(
    batch: Sequence[tuple[api.Banks, Items, object]],
) -> list[list[api.Check] | BaseException]:
    """Per request, its checks (or the exception it alone raised), grouping requests by the banks they ask."""
    out: list[list[api.Check] | BaseException] = [[] for _ in batch]
    groups: dict[int, list[int]] = {}
    for i, (banks, _, _) in enumerate(batch):
        groups.setdefault(id(banks), []).append(i)
    for idx in groups.values():
        banks = batch[idx[0]][0]
        flat = [h for i in idx for h in batch[i][1]]
        try:
            checks = api.check_many(flat, banks)
        except Exception:
            for i in idx:  # someone's input was bad: find whose, without failing the others
                try:
                    out[i] = api.check_many(batch[i][1], banks)
                except Exception as e:
                    out[i] = e
            continue
        pos = 0
        for i in idx:
            n = len(batch[i][1])
            out[i] = checks[pos : pos + n]
            pos += n
    return out
