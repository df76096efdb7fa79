"""Image checks on the service's own threads, at most ``slots`` at once, bounded waiting, and a timeout.

The threads take their work from a queue themselves. Handed each check by the event loop (a semaphore released by
a callback on the loop, then ``run_in_executor``), a thread that had finished waited until the loop, busy reading
bodies and writing answers, got round to giving it the next one: under 32 clients the two check threads stood idle
about a quarter of the time (``bench/service_load.py``: the server used 1.5 of 2 cores).

Rules, as before: a slot is freed when its thread has finished, not when its request stopped waiting (after a
timeout the work goes on, and counting it keeps the work bounded by the cores). A check that finds every slot
taken waits, but only ``max_waiting`` of them, holding at most ``max_waiting_bytes`` of bodies between them, and
only for ``wait_s``: past any of these the answer is 503 at once, and the caller retries. A check that gave up
waiting is never started.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from cleanset.service.workers import Workers, settle

BUSY = {"Retry-After": "1"}


@dataclass(eq=False)
class _Job:
    work: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[Any]
    started: asyncio.Future[None] | None  # set when a thread takes it, for a check that had to wait
    size: int
    queued_at: float = field(default_factory=time.monotonic)
    taken: bool = False
    dropped: bool = False


class CheckSlots:
    def __init__(self, slots: int, max_waiting: int, wait_s: float, max_waiting_bytes: int) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max_waiting
        self.max_waiting_bytes = max_waiting_bytes
        self.wait_s = wait_s
        self.waiting = 0  # queued, not yet taken by a thread
        self.waiting_bytes = 0
        self.running = 0  # taken and not finished (a timed-out check counts until its thread is done)
        self._lock = threading.Lock()
        self._workers: Workers[_Job] = Workers(self.slots, "cleanset-check", self._serve)

    async def run(self, work: Callable[[], Any], size: int, *, timeout_s: float) -> Any:
        """``work()``'s result, computed on a check thread; ``size``: the bytes the check holds while it waits."""
        loop = asyncio.get_running_loop()
        with self._lock:
            wait = self.running + self.waiting >= self.slots
            if wait and (self.waiting >= self.max_waiting or self.waiting_bytes + size > self.max_waiting_bytes):
                raise HTTPException(503, "busy: every image check slot is taken; retry", headers=BUSY)
            job = _Job(work, loop, loop.create_future(), loop.create_future() if wait else None, size)
            self.waiting += 1
            self.waiting_bytes += size
        self._workers.put(job)
        if job.started is not None:
            try:
                await asyncio.wait_for(asyncio.shield(job.started), self.wait_s)
            except TimeoutError:
                with self._lock:
                    if not job.taken:  # still queued: it is never started
                        job.dropped = True
                        self.waiting -= 1
                        self.waiting_bytes -= size
                        raise HTTPException(
                            503, f"busy: no image check slot within {self.wait_s} s; retry", headers=BUSY
                        ) from None
        try:
            return await asyncio.wait_for(asyncio.shield(job.done), timeout_s)
        except TimeoutError:
            raise HTTPException(503, f"image check took over {timeout_s} s; not checked") from None

    def close(self) -> None:
        """Stop the threads once the checks already queued are done."""
        self._workers.close()

    def _serve(self) -> None:
        while True:
            job = self._workers.queue.get()
            if job is None:
                return
            self._take(job)
            job = None  # nothing of a finished check is held while waiting for the next

    def _take(self, job: _Job) -> None:
        with self._lock:
            if job.dropped:
                return
            job.taken = True
            self.waiting -= 1
            self.waiting_bytes -= job.size
            self.running += 1
        try:
            if job.started is not None:
                settle(job.loop, [(job.started, None, None)])
            try:
                result, error = job.work(), None
            except Exception as e:  # the request hears it; the thread goes on
                result, error = None, e
            settle(job.loop, [(job.done, result, error)])
        finally:
            with self._lock:
                self.running -= 1
