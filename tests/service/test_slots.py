"""Check slots: threads take queued checks themselves; the bounds on running and waiting checks hold."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi import HTTPException

from cleanset.service.slots import CheckSlots


def test_a_check_that_gave_up_waiting_is_never_started() -> None:
    slots = CheckSlots(1, max_waiting=4, wait_s=0.1, max_waiting_bytes=1 << 20)
    release = threading.Event()
    ran: list[str] = []

    def first() -> str:
        release.wait(10)
        ran.append("first")
        return "first"

    def second() -> str:
        ran.append("second")
        return "second"

    async def both() -> list[object]:
        a = asyncio.ensure_future(slots.run(first, 10, timeout_s=10))
        await asyncio.sleep(0.05)  # the first holds the only slot
        b = asyncio.ensure_future(slots.run(second, 10, timeout_s=10))
        out = await asyncio.gather(b, return_exceptions=True)
        release.set()
        return [await a, *out]

    try:
        got = asyncio.run(both())
    finally:
        slots.close()
    assert got[0] == "first"
    assert isinstance(got[1], HTTPException) and got[1].status_code == 503 and "no image check slot" in got[1].detail
    assert ran == ["first"]  # the second never ran, not even once the slot was free
    assert (slots.waiting, slots.waiting_bytes, slots.running) == (0, 0, 0)


def test_waiting_is_bounded_and_errors_reach_their_request() -> None:
    slots = CheckSlots(1, max_waiting=1, wait_s=5, max_waiting_bytes=1 << 20)
    release = threading.Event()

    def blocked() -> str:
        release.wait(10)
        return "done"

    def broken() -> str:
        raise ValueError("bad picture")

    async def go() -> list[object]:
        a = asyncio.ensure_future(slots.run(blocked, 1, timeout_s=10))
        await asyncio.sleep(0.05)
        b = asyncio.ensure_future(slots.run(broken, 1, timeout_s=10))  # waits: the one place in the queue
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException, match="busy"):  # a second waiter is refused at once
            await slots.run(blocked, 1, timeout_s=10)
        release.set()
        return list(await asyncio.gather(a, b, return_exceptions=True))

    try:
        a, b = asyncio.run(go())
    finally:
        slots.close()
    assert a == "done"
    assert isinstance(b, ValueError) and "bad picture" in str(b)
