"""Live banks: the service's banks as one immutable snapshot, replaced whole on reload.

A request takes the current ``BankSet`` once, at its start, and answers from it alone: a reload builds the next set
beside it (indexes and all) and then swaps one reference, which Python makes atomic. A request in flight keeps
the old set alive until it answers, so no request fails or sees half an index; the old indexes are freed when the
last such request is done, and memory returns to one index's worth.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cleanset.api import Banks
from cleanset.errors import UserError


@dataclass(frozen=True)
class BankSet:
    """One generation of the service's banks; never changed after it is built."""

    banks: Banks
    generation: int
    loaded_at: float
    build_s: float
    pinned: dict[str, int | None] = field(default_factory=dict)  # name -> version asked for (None: latest)
    views: dict[bytes, Banks] = field(default_factory=dict, compare=False)  # callers' thresholds -> view (app.py)

    @cached_property
    def described(self) -> list[dict[str, Any]]:
        """Names, versions, sizes and thresholds: what ``GET /v1/banks`` publishes, never a value."""
        from cleanset.runs.banks import bank_record  # as a run's manifest names it, plus its size per signal

        return [
            {**bank_record(s), "counts": {sig: int(s.values(sig).shape[0]) for sig in s.signals()}}
            for s in self.banks.snapshots
        ]

    def threshold(self, bank: str, signal: str) -> int | None:
        for b in self.banks.matcher.indexes:
            if b.bank == bank and b.signal == signal:
                return int(b.threshold)
        return None


def _open(specs: Sequence[str]) -> tuple[list[Any], dict[str, int | None]]:
    from cleanset.runs.banks import open_banks as open_snapshots

    snaps = open_snapshots(list(specs))
    pinned = {}
    for spec in specs:
        name, _, ver = spec.partition("@")
        pinned[name] = int(ver) if ver else None
    return snaps, pinned


class LiveBanks:
    """Holds the current ``BankSet``; ``reload`` builds the next one and swaps it in. One reload at a time."""

    def __init__(self, specs: Sequence[str], quality_gate: int | None = None) -> None:
        t0 = time.perf_counter()
        snaps, pinned = _open(specs)
        banks = Banks(snaps, quality_gate)
        _ = banks.matcher  # built now, before the first request, not by it
        self._lock = threading.Lock()
        self._current = BankSet(banks, 1, time.time(), time.perf_counter() - t0, pinned)
        self._staged: dict[str, Staged] = {}
        self._staging = threading.Lock()
        self.started = time.time()
        self.launch: str | None = None  # set by a service whose workers follow each other (stamps go under it)

    @property
    def current(self) -> BankSet:
        return self._current

    def version_of(self, name: str) -> int | None:
        for s in self._current.banks.snapshots:
            if s.name == name:
                return int(s.version)
        return None

    def reload(self, name: str, version: int | None = None) -> BankSet:
        """Make the latest stored version of bank ``name`` live (a bank pinned with ``NAME@VERSION`` stays at its
        version; ``version`` asks for one, as a sibling worker's stamp does). Only that bank's indexes are opened;
        the others are shared with the previous set. The version made live is stamped for sibling workers of the
        same launch; a staged build at or below it is dropped (it would only hold a second index's memory)."""
        from cleanset.banks.store import BankStore

        with self._lock:
            cur = self._current
            if name not in cur.pinned:
                raise UserError(f"bank {name!r} is not served (served: {', '.join(cur.pinned) or 'none'})")
            t0 = time.perf_counter()
            want = cur.pinned[name] if cur.pinned[name] is not None else version
            store = BankStore.default()
            snap = store.open(name, want)
            if cur.pinned[name] is None and int(snap.version) == store.layout.version_numbers(name)[-1]:
                # The newest version: opened through staging (single flight), so a reload that arrives while the
                # watcher is opening it waits for that one open, and one arriving first opens it for both.
                self.stage(name)
            staged = self._take_staged(name, int(snap.version))
            banks = cur.banks.replacing(snap, None if staged is None else staged.banks)
            nxt = BankSet(banks, cur.generation + 1, time.time(), time.perf_counter() - t0, dict(cur.pinned))
            self._current = nxt
            self._drop_staged(name, int(snap.version))
            if self.launch is not None:
                write_stamp(self.launch, name, int(snap.version))
        del cur
        release_memory()
        return nxt

    # -- staging: a new version's index opened when it lands, so the reload only swaps ---------------------------

    def stage(self, name: str) -> Staged | None:
        """Open the index of the newest stored version of served bank ``name`` now, beside the live one, if it is
        newer than what is live (pinned banks never move): mapped when the version stores its tables
        (``matching.stored``), built otherwise. Its reload then swaps it in: at 10 million entries opening takes a
        second or more, a build several, the swap nothing. The staged index counts as a second index's worth of
        memory until the reload (or a newer version) replaces it."""
        from cleanset.banks.store import BankStore

        cur = self._current
        if cur.pinned.get(name, 0) is not None:
            return None
        store = BankStore.default()
        numbers = store.layout.version_numbers(name)
        have = self.version_of(name)
        if not numbers or have is None or numbers[-1] == have:
            return None
        with self._staging:
            st = self._staged.get(name)
            building = st is not None and st.version == numbers[-1]
            if not building:
                st = self._staged[name] = Staged(numbers[-1])
        assert st is not None
        if building:
            st.ready.wait()
            return st
        try:
            t0 = time.perf_counter()
            built = Banks([store.open(name, st.version)], cur.banks.quality_gate)
            _ = built.matcher
            st.banks, st.build_s = built, time.perf_counter() - t0
        finally:
            st.ready.set()
        # A reload may have made this version (or a newer one) live while it was building: the live version was
        # read without the reload lock. Then nobody will take the build; keeping it would hold a second index.
        have = self.version_of(name)
        if have is not None and st.version <= have:
            self._drop_staged(name, have)
            st.banks = None
        release_memory()  # the build's temporaries
        return st if st.banks is not None else None

    def _drop_staged(self, name: str, live_version: int) -> None:
        with self._staging:
            st = self._staged.get(name)
            if st is not None and st.ready.is_set() and st.version <= live_version:
                del self._staged[name]

    def staged(self) -> dict[str, int]:
        """Bank -> version whose index is built and waiting for its reload."""
        return {n: s.version for n, s in list(self._staged.items()) if s.ready.is_set() and s.banks is not None}

    def _take_staged(self, name: str, version: int) -> Staged | None:
        """The staged build of exactly this version (waiting for it if it is being built), taken out of staging."""
        with self._staging:
            st = self._staged.get(name)
            if st is None or st.version != version:
                return None
        st.ready.wait()
        with self._staging:
            if self._staged.get(name) is st:
                del self._staged[name]
        return st if st.banks is not None else None


@dataclass
class Staged:
    version: int
    banks: Banks | None = None
    build_s: float = 0.0
    ready: threading.Event = field(default_factory=threading.Event)


async def stage_imports(live: LiveBanks, every_s: float = 1.0) -> None:
    """Watch the store for new versions of served banks and stage their indexes (``LiveBanks.stage``)."""
    import asyncio

    while True:
        await asyncio.sleep(every_s)
        for name in list(live.current.pinned):
            try:
                await asyncio.to_thread(live.stage, name)
            except (UserError, OSError):
                continue  # a version half-removed meanwhile: the next look sees the store as it is
            except Exception:  # staging is an optimisation: the reload still builds; say why, keep watching
                logging.getLogger("cleanset.service").exception("staging bank %s failed", name)


def release_memory() -> None:
    """Free the previous set now and hand its pages back: Index objects may sit in reference cycles (so
    ``gc.collect``), and glibc and Arrow keep freed memory for reuse unless asked to return it, which would read
    as growth after every reload. In a server whose heap is frozen (``steady_heap``), the frozen objects are
    thawed first, or a previous set frozen while it was live would never be collected, and frozen again after."""
    frozen = gc.get_freeze_count() > 0
    if frozen:
        gc.unfreeze()
    gc.collect()
    if frozen:
        gc.freeze()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except ImportError:
        pass
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


RELEASE_AFTER_S = 2.0  # well past any hash lookup; an image check still running then frees its set on its own
GC_THRESHOLDS = (20_000, 20, 20)  # Python's default is (700, 10, 10)
SWITCH_INTERVAL_S = 0.0005  # Python's default is 0.005


def steady_heap() -> None:
    """Tune a server process's interpreter for many small requests over a large, long-lived heap.

    Measured with ``bench/service_load.py`` (10 million PDQ entries, 32 clients, one worker): with Python's
    defaults the service answered about 3,000 lookups/s with a p99 near 90 ms; with these settings, 5,600/s with a
    p99 under 9 ms.
    - The heap after start-up (FastAPI, NumPy, numba, the banks: hundreds of thousands of objects) never becomes
      garbage, yet every full collection walked all of it, stalling every request in flight: it is frozen
      (``gc.freeze``), so collections walk only what requests made. A reload thaws it (``release_memory``).
    - A request allocates a few hundred objects, so the youngest generation was collected every few requests;
      it is collected every 20,000 allocations instead.
    - The lookup thread releases the GIL inside the index and must win it back from the event loop to answer;
      at the default interval it waited up to 5 ms each time.
    Only for a process that is a server: it changes the whole interpreter (tests that run the app in-process
    leave it alone)."""
    import sys

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def server_allocator() -> None:
    """Arrow allocates through the C library's ``malloc`` in a server process, before any bank is opened.

    A bank's entry ids are an Arrow table (about 100 MB at 10 million entries). Arrow's default allocator keeps a
    heap per thread, and memory freed by another thread returns to the owner's heap only when that thread next
    allocates: after a reload under load the old version's table was freed by whichever thread let go of it last,
    and 200 MB stayed resident on the server for good (``bench/service_load.py``, depending on timing). ``malloc``
    returns blocks that large to the system as soon as they are freed."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())


def stamp_dir(launch: str) -> Path:
    """``service/live/<launch>``: one launch's stamps; another launch (an earlier run, another service on this
    ``CLEANSET_HOME``) never reads them."""
    from cleanset.banks.layout import home

    if not launch.isalnum():
        raise ValueError(f"launch id {launch!r}: letters and digits only")
    return home() / "service" / "live" / launch


def write_stamp(launch: str, name: str, version: int) -> None:
    """The version a worker made live, for its sibling workers to follow."""
    from cleanset.atomic import atomic_output, private_dir

    private_dir(stamp_dir(launch))
    with atomic_output(stamp_dir(launch) / name) as tmp:
        tmp.write_text(str(version), encoding="ascii")


def read_stamps(launch: str, names: Sequence[str], since: float = 0.0) -> dict[str, int]:
    """Stamps of this launch written at or after ``since`` (a worker's start: anything older it has loaded)."""
    out = {}
    for name in names:
        path = stamp_dir(launch) / name
        try:
            if path.stat().st_mtime < since:
                continue
            out[name] = int(path.read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
    return out


async def follow_siblings(live: LiveBanks, every_s: float = 1.0) -> None:
    """With ``--workers N`` a reload reaches one worker; the others see its stamp within ``every_s`` and load
    the same version. Only upwards: a stamp never takes a worker back to an older version (a list's newer
    version may hold entries the older lacks, so going back would fail open); an admin's reload is the one way
    to change a served version otherwise. Without a launch id (one worker) there is nothing to follow."""
    import asyncio

    while True:
        await asyncio.sleep(every_s)
        if live.launch is None:
            continue
        cur = live.current
        for name, version in read_stamps(live.launch, list(cur.pinned), live.started).items():
            have = live.version_of(name)
            if cur.pinned.get(name) is None and have is not None and version > have:
                try:
                    await asyncio.to_thread(live.reload, name, version)
                except UserError:
                    continue  # the stamped version vanished (bank removed): keep serving what is loaded
                # as after an admin's reload: requests in flight at the swap held the old set; free it once done
                later = asyncio.get_running_loop()
                later.call_later(RELEASE_AFTER_S, later.run_in_executor, None, release_memory)
