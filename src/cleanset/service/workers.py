"""Daemon threads serving one queue, for the service's lookups (``batching``) and image checks (``slots``).

Both take their work from a queue themselves rather than being handed each piece by the event loop (a thread that
had finished otherwise waited for the busy loop to give it the next). A thread that died is replaced the next time
work is queued, so a request never waits on a thread that is gone; ``close`` stops the live ones after the work
already queued, with one ``None`` each.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Workers(Generic[T]):
    def __init__(self, count: int, name: str, serve: Callable[[], None]) -> None:
        self.count = max(1, count)
        self.name = name
        self.queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self._serve = serve
        self._lock = threading.Lock()

    def put(self, item: T) -> None:
        self.ensure()
        self.queue.put(item)

    def ensure(self) -> None:
        """Start the threads, or replace any that died."""
        if len(self.threads) == self.count and all(t.is_alive() for t in self.threads):
            return
        with self._lock:
            self.threads = [t for t in self.threads if t.is_alive()]
            while len(self.threads) < self.count:
                # daemon: a server stopping mid-batch is not held up by it
                t = threading.Thread(target=self._serve, name=f"{self.name}-{len(self.threads)}", daemon=True)
                t.start()
                self.threads.append(t)

    def close(self) -> None:
        with self._lock:
            alive = [t for t in self.threads if t.is_alive()]
            for _ in alive:
                self.queue.put(None)
            for t in alive:
                t.join()
            self.threads = []


Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]  # a request's future, its result or its error


def settle(loop: asyncio.AbstractEventLoop, outcomes: Sequence[Outcome]) -> None:
    """From a worker thread: resolve these futures of ``loop`` (one wake-up of the loop for all of them). A
    future already done (its request went away) is left alone; a loop that has closed has nobody waiting."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_apply, list(outcomes))


def _apply(outcomes: list[Outcome]) -> None:
    for fut, result, error in outcomes:
        if fut.done():
            continue
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
