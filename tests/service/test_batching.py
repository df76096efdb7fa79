"""The lookup batcher: concurrent requests answered together, each exactly as alone, a bad one failing alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cleanset import api
from cleanset.banks.base import MemoryBank
from cleanset.service.batching import LookupBatcher


@pytest.fixture(scope="module")
def banks() -> api.Banks:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (2000, 32), dtype=np.uint8)
    return api.Banks([MemoryBank("b", 1, {"pdq": (values, [f"e{i}" for i in range(len(values))])})])


def _queries(banks: api.Banks, k: int) -> list[dict[str, str]]:
    values = banks.snapshots[0].values("pdq")
    rng = np.random.default_rng(4)
    out = []
    for i in range(k):
        v = np.array(values[i * 7]) if i % 2 == 0 else rng.integers(0, 256, 32, dtype=np.uint8)
        if i % 4 == 0:
            v[0] ^= 0x0F  # four bits away: still within the threshold
        out.append({"pdq": bytes(v).hex()})
    return out


def test_concurrent_requests_share_batches_and_get_what_they_get_alone(banks: api.Banks) -> None:
    queries = _queries(banks, 64)
    batcher = LookupBatcher()

    async def all_at_once() -> list[list[api.Check]]:
        return await asyncio.gather(*(batcher.check([q], banks) for q in queries))

    try:
        answers = asyncio.run(all_at_once())
    finally:
        batcher.close()
    alone = [api.check_many([q], banks) for q in queries]
    assert [a[0].to_dict() for a in answers] == [a[0].to_dict() for a in alone]
    assert sum(bool(a[0].matches) for a in answers) == 32  # the planted half matched, the random half did not
    assert 1 <= batcher.batches < len(queries)  # requests waiting together were answered together


def test_a_bad_request_fails_alone(banks: api.Banks) -> None:
    good = _queries(banks, 6)
    bad = [{"pdq": "zz"}]
    batcher = LookupBatcher()

    async def mixed() -> list[list[api.Check] | BaseException]:
        reqs = [[good[0]], bad, [good[1], good[2]], [good[3]]]
        return await asyncio.gather(*(batcher.check(r, banks) for r in reqs), return_exceptions=True)

    try:
        out = asyncio.run(mixed())
    finally:
        batcher.close()
    assert isinstance(out[1], Exception)
    for got, want in zip([out[0], out[2], out[3]], [[good[0]], [good[1], good[2]], [good[3]]], strict=True):
        assert not isinstance(got, BaseException)
        assert [c.to_dict() for c in got] == [c.to_dict() for c in api.check_many(want, banks)]


def test_close_stops_the_lookup_threads(banks: api.Banks) -> None:
    batcher = LookupBatcher(concurrency=2)
    asyncio.run(batcher.check(_queries(banks, 1), banks))
    threads = list(batcher._workers.threads)
    assert len(threads) == 2 and all(t.is_alive() for t in threads)
    batcher.close()
    assert not any(t.is_alive() for t in threads)


def test_steady_heap_freezes_and_a_reload_still_frees_what_was_frozen() -> None:
    """In a fresh interpreter (it changes the whole process): the heap is frozen, the young generation is collected
    less often, the switch interval is short; and a set that was live (frozen) when the heap was frozen, in a
    reference cycle, is freed by ``release_memory`` once nothing holds it."""
    code = textwrap.dedent(
        """
        import gc, sys, weakref
        from cleanset.service.live import GC_THRESHOLDS, SWITCH_INTERVAL_S, release_memory, steady_heap

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        gone = weakref.ref(a)
        steady_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        del a, b
        gc.collect()
        assert gone() is not None, "frozen: a plain collection leaves it"
        release_memory()
        assert gone() is None, "release_memory must thaw, collect and freeze again"
        assert gc.get_freeze_count() > 0
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_a_failing_batch_fails_its_requests_and_the_next_ones_are_answered(
    banks: api.Banks, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanset.service import batching

    queries = _queries(banks, 2)
    batcher = LookupBatcher()
    real = batching._answer
    monkeypatch.setattr(batching, "_answer", lambda batch: (_ for _ in ()).throw(RuntimeError("boom")))
    try:
        with pytest.raises(RuntimeError, match="boom"):
            asyncio.run(batcher.check([queries[0]], banks, timeout_s=10))
        monkeypatch.setattr(batching, "_answer", real)
        got = asyncio.run(batcher.check([queries[1]], banks, timeout_s=10))
    finally:
        batcher.close()
    assert got[0].to_dict() == api.check_many([queries[1]], banks)[0].to_dict()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_lookup_thread_is_replaced(banks: api.Banks, monkeypatch: pytest.MonkeyPatch) -> None:
    """Something no handler catches (here SystemExit) ends the thread: its request times out, and the next request
    gets a new thread rather than waiting for ever."""
    batcher = LookupBatcher()
    query = _queries(banks, 1)

    def die(batch: list[object]) -> None:
        raise SystemExit

    monkeypatch.setattr(batcher, "_run", die)
    with pytest.raises(TimeoutError):
        asyncio.run(batcher.check(query, banks, timeout_s=0.5))
    assert not any(t.is_alive() for t in batcher._workers.threads)
    monkeypatch.undo()
    try:
        got = asyncio.run(batcher.check(query, banks, timeout_s=10))
    finally:
        batcher.close()
    assert got[0].to_dict() == api.check_many(query, banks)[0].to_dict()


def test_batches_stay_within_max_items(banks: api.Banks, monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanset.service import batching

    sizes: list[int] = []
    real = batching._answer

    def record(batch: list[tuple[object, object, list[object]]]) -> list[object]:
        sizes.append(sum(len(items) for _, _, items in batch))
        return real(batch)  # type: ignore[arg-type]

    monkeypatch.setattr(batching, "_answer", record)
    queries = _queries(banks, 40)
    batcher = LookupBatcher(max_items=10)

    async def many() -> list[list[api.Check]]:
        return await asyncio.gather(*(batcher.check(queries[i : i + 3], banks) for i in range(0, 39, 3)))

    try:
        answers = asyncio.run(many())
    finally:
        batcher.close()
    assert sum(sizes) == 39 and max(sizes) <= 10
    assert [c.to_dict() for a in answers for c in a] == [c.to_dict() for c in api.check_many(queries[:39], banks)]


def test_requests_from_two_event_loops_are_each_answered(banks: api.Banks) -> None:
    import threading

    queries = _queries(banks, 16)
    batcher = LookupBatcher()
    out: dict[int, list[dict[str, object]]] = {}

    def run(k: int) -> None:
        async def go() -> list[list[api.Check]]:
            return await asyncio.gather(*(batcher.check([q], banks) for q in queries[k::2]))

        out[k] = [a[0].to_dict() for a in asyncio.run(go())]

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        batcher.close()
    for k in (0, 1):
        assert out[k] == [c.to_dict() for c in api.check_many(queries[k::2], banks)]


def test_the_last_batch_is_not_held_after_it_is_answered(banks: api.Banks) -> None:
    """After a reload the old banks must go once the requests that used them are answered, even on a quiet
    server: the lookup thread keeps nothing of a batch it has sent."""
    import gc
    import weakref

    rng = np.random.default_rng(5)
    values = rng.integers(0, 256, (100, 32), dtype=np.uint8)
    old = api.Banks([MemoryBank("old", 1, {"pdq": (values, [f"o{i}" for i in range(100)])})])
    gone = weakref.ref(old)
    batcher = LookupBatcher()
    try:
        asyncio.run(batcher.check(_queries(banks, 1), old))
        del old
        gc.collect()
        assert gone() is None, "the lookup thread still holds the last batch's banks"
    finally:
        batcher.close()


def test_a_server_process_allocates_arrow_memory_with_malloc() -> None:
    """In a fresh interpreter (it changes the process): after ``server_allocator`` Arrow's default pool is the
    system one, whose large blocks go back to the system when freed (a reload's old entry ids must not stay)."""
    code = textwrap.dedent(
        """
        import pyarrow as pa
        from cleanset.service.live import server_allocator

        server_allocator()
        print(pa.default_memory_pool().backend_name)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "system"
