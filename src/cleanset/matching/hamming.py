"""Exact Hamming range search for perceptual hashes (pdq: 256 bits, threshold 31; phash: 64 bits, threshold 8).

Multi-index hashing with direct-addressed tables. The hash's bits are cut into ``m`` contiguous chunks; for each
chunk a table has one uint32 slot per possible chunk value: empty, the id of the one entry with that value, or
(top bit set) where the list of the entries sharing it starts (a count, then the ids, lists back to back). A
query with threshold ``t`` gives chunk ``c`` a search radius ``r_c`` with ``sum(r_c + 1) >= t + 1``: if an entry
is within ``t`` of the probe, the per-chunk distances add up to at most ``t``, so at least one chunk differs by
at most ``r_c`` (pigeonhole).
Enumerating every value within ``r_c`` of the probe's chunk and reading those buckets therefore finds every
entry within ``t``; each candidate is then checked with the full popcount distance. The radii are derived from the
threshold at query time, so the index stays exact for any threshold the user sets; where the tables would not
save work (a wide threshold, a tiny bank) it answers by brute force, which is exact too.

The layout (how many chunks, how wide) is chosen at build time by a cost model: each bucket read and each
candidate costs about one cache miss, a brute-force comparison far less; the index may use at most 4x the raw
hash bytes (raw values + one uint32 slot per chunk value + the lists, at most 1.5 uint32 per entry and chunk). For
10 million PDQ hashes at t=31 that is 11 chunks of 23-24 bits searched at radius 2 (one at radius 1): about 2,900
slot reads and 2,900 candidates per query, where faiss' 16x16-bit multi-hash layout verifies about 41,000. Half
the non-empty slots hold their one entry themselves, which saves the read of a separate id table for them.

Rows and slots start on a cache line, so a candidate costs one miss, not two: a build aligns them
(``cleanset.arrays``), and a saved index is mapped from ``.npy`` files, whose headers NumPy pads to 64 bytes. A
probe whose chunk value equals the previous probe's takes that chunk's candidates from it rather than reading the
same slots again (``kernels.mih_query``); the matcher puts an image's two PDQ dialects side by side for this.

Batches are split over threads (``nogil`` kernels, no copies), except in a scan's worker processes, where the
cores are the workers' (``cleanset.threads.one_query_thread``); each probe's answer is the same whichever block it
lands in, so batch and single queries agree exactly.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numba
import numpy as np

from cleanset.arrays import aligned_empty, cache_aligned
from cleanset.errors import InputFormatError
from cleanset.matching import kernels
from cleanset.matching.base import (
    INDEXES,
    Index,
    array_digest,
    check_probes,
    check_values,
    empty_result,
    load_array,
    meta_int,
    read_meta,
    to_words,
    write_meta,
)
from cleanset.threads import query_threads

MAX_WIDTH = 26  # a direct table of 2**26 uint32 slots is 256 MiB: wider never pays
MEMORY_FACTOR = 4  # index bytes <= 4x the raw hash bytes
C_LOOKUP = 1.0  # one bucket read: about one cache miss
C_CANDIDATE = 1.0  # one candidate verified: one id read and one random row read
C_SCAN_PER_WORD = 0.01  # one entry's word compared in a sequential scan, relative to a miss
MIN_BLOCK = 256  # probes per thread before a batch is split over threads
FORMAT = 2  # saved layout: 2 = slots and lists (1, offsets and ids, is refused: the index is rebuilt)


def default_threshold(bits: int) -> int:
    """PDQ's 31 of 256 bits, scaled: 8 for a 64-bit phash."""
    return round(bits * 31 / 256)


def split_widths(bits: int, m: int) -> tuple[int, ...]:
    base, extra = divmod(bits, m)
    return (base + 1,) * extra + (base,) * (m - extra)


@cache
def _ball(width: int, radius: int) -> int:
    """How many values lie within ``radius`` bits of one ``width``-bit value."""
    return sum(math.comb(width, k) for k in range(radius + 1)) if radius >= 0 else 0


def allocate(widths: tuple[int, ...], threshold: int, n: int) -> tuple[tuple[int, ...], float, int] | None:
    """Per-chunk radii with ``sum(r + 1) == threshold + 1`` (exact by pigeonhole), cheapest first by the cost
    model. Returns (radii, estimated cost, bucket reads), or None when no radii can cover the threshold."""
    if threshold + 1 > sum(w + 1 for w in widths):
        return None
    per = [C_LOOKUP + C_CANDIDATE * n / 2.0**w for w in widths]
    q = [0] * len(widths)
    for _ in range(threshold + 1):
        best, best_gain = -1, math.inf
        for i, w in enumerate(widths):
            if q[i] > w:
                continue
            gain = (_ball(w, q[i]) - _ball(w, q[i] - 1)) * per[i]
            if gain < best_gain:
                best, best_gain = i, gain
        q[best] += 1
    cost = sum(_ball(w, qi - 1) * p for w, qi, p in zip(widths, q, per, strict=True))
    lookups = sum(_ball(w, qi - 1) for w, qi in zip(widths, q, strict=True))
    return tuple(qi - 1 for qi in q), cost, lookups


def scan_cost(n: int, words_per_row: int) -> float:
    return n * words_per_row * C_SCAN_PER_WORD


def table_bytes(n: int, width: int) -> float:
    """Expected bytes of one chunk's slots and lists over ``n`` random values: a slot per value; for each value
    held by two entries or more, a count and those entries' ids (Poisson occupancy)."""
    slots = 2.0**width
    lam = n / slots
    alone = slots * lam * math.exp(-lam)  # values held by exactly one entry: the id sits in the slot
    shared = slots * (1 - math.exp(-lam)) - alone  # values held by two or more: one list each
    return 4 * (slots + (n - alone) + shared)


def choose_widths(bits: int, n: int, threshold: int, words_per_row: int) -> tuple[int, ...]:
    """The cheapest chunking for ``threshold`` within the memory budget; () means brute force is cheaper."""
    raw = n * words_per_row * 8
    best: tuple[int, ...] = ()
    best_cost = scan_cost(n, words_per_row)
    for m in range(1, bits + 1):
        widths = split_widths(bits, m)
        if max(widths) > MAX_WIDTH:
            continue
        memory = raw + sum(table_bytes(n, w) for w in widths)
        if memory > MEMORY_FACTOR * raw:
            continue
        plan = allocate(widths, threshold, n)
        if plan is not None and plan[1] < best_cost:
            best, best_cost = widths, plan[1]
    return best


@INDEXES.register("hamming")
class HammingIndex(Index):
    name = "hamming"

    def __init__(
        self,
        words: np.ndarray,
        nbytes: int,
        widths: tuple[int, ...],
        slots: np.ndarray,
        lists: np.ndarray,
        list_base: np.ndarray,
    ) -> None:
        self.words = words
        self.nbytes_per_value = nbytes
        self.widths = widths
        self.starts = np.cumsum((0, *widths[:-1])).astype(np.int64) if widths else np.zeros(0, np.int64)
        self.widths_arr = np.asarray(widths, dtype=np.int64)
        self.slot_base = np.cumsum((0, *(2**w for w in widths[:-1]))).astype(np.int64)
        self.slots = slots
        self.lists = lists
        self.list_base = np.asarray(list_base, dtype=np.int64)  # chunk c's lists: lists[list_base[c]:list_base[c+1]]
        self._plans: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray] | None] = {}
        self.last_scanned = 0  # probes answered by linear scan in the last query (for benchmarks and tests)
        self.last_shared = 0  # (probe, chunk) lookups the last query took from the probe before (likewise)

    @classmethod
    def build(
        cls, values: np.ndarray, threshold_hint: int | None = None, widths: tuple[int, ...] | None = None
    ) -> HammingIndex:
        """``threshold_hint``: the threshold the bank is usually queried at (it only steers the layout; any
        threshold stays exact). ``widths`` forces a chunking (tests use it to exercise small banks)."""
        values = check_values(values)
        n, nbytes = values.shape
        if n >= 2**30:
            raise ValueError("a Hamming index holds fewer than 2**30 entries")  # ids and list offsets fit 31 bits
        words = cache_aligned(to_words(values))  # one cache line per row read (see ``cleanset.arrays``)
        bits = nbytes * 8
        if widths is None:
            hint = default_threshold(bits) if threshold_hint is None else threshold_hint
            widths = choose_widths(bits, n, hint, words.shape[1])
        widths = tuple(int(w) for w in widths)
        _check_widths(widths, bits, Path("<build>"))
        if not widths:
            return cls(words, nbytes, widths, np.zeros(0, np.uint32), np.zeros(0, np.uint32), np.zeros(1, np.int64))
        # Allocated here, not inside the kernels: NumPy asks the kernel for transparent huge pages on large arrays,
        # and queries read these tables at random, where 4 KiB pages cost a TLB miss per read.
        slots = aligned_empty(sum(2**w for w in widths), np.uint32)
        starts = np.cumsum((0, *widths[:-1])).astype(np.int64)
        at = np.cumsum((0, *(2**w for w in widths[:-1]))).astype(np.int64)
        keys, tmp_keys, tmp_ids = (np.empty(n, dtype=np.uint32) for _ in range(3))
        # A chunk's lists take at most 1.5 words per entry (each list holds two entries or more, plus its count).
        # Reserved at that bound and filled in order: pages never written are never backed by memory, and the
        # lists need no second copy to be put together.
        lists = np.empty(len(widths) * (n + n // 2), dtype=np.uint32)
        list_base = np.zeros(len(widths) + 1, dtype=np.int64)
        for c, w in enumerate(widths):
            base = int(list_base[c])
            list_base[c + 1] = base + kernels.build_chunk(
                words, int(starts[c]), w, slots[at[c] : at[c] + 2**w], lists[base:], keys, tmp_keys, tmp_ids
            )
        return cls(words, nbytes, widths, slots, lists[: list_base[-1]], list_base)

    def _plan(self, threshold: int, method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(radii, masks, mask starts) for ``threshold`` (``kernels.flip_masks``), or None to scan (no tables,
        or, with method "auto", tables that would cost more than a scan)."""
        key = (threshold, method)
        if key not in self._plans:
            plan = allocate(self.widths, threshold, len(self)) if self.widths and method != "scan" else None
            if plan is None or (method == "auto" and plan[1] >= scan_cost(len(self), self.words.shape[1])):
                self._plans[key] = None
            else:
                radii = np.asarray(plan[0], dtype=np.int64)
                self._plans[key] = (radii, *kernels.flip_masks(self.widths_arr, radii))
        return self._plans[key]

    def radii(self, threshold: int) -> tuple[int, ...] | None:
        """How far each chunk is searched at ``threshold`` (None: no tables, or they cannot cover it)."""
        plan = self._plan(threshold, "tables")
        return None if plan is None else tuple(int(r) for r in plan[0])

    def query(
        self, probes: np.ndarray, threshold: int, *, threads: int | None = None, method: str = "auto"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs within ``threshold``, sorted by (probe, entry). ``threads`` (default: 1 in a scan worker, see
        ``cleanset.threads.query_threads``; otherwise numba's thread count, i.e. ``NUMBA_NUM_THREADS``) splits a
        large batch into blocks answered in parallel. ``method``: "auto" (tables or scan, whichever the cost model
        says is cheaper, per threshold and per probe), "tables" (the tables whenever radii can cover the threshold:
        tests use it on small banks) or "scan"; all exact."""
        if method not in ("auto", "tables", "scan"):
            raise ValueError(f"unknown method {method!r}")
        probes = check_probes(probes, self.nbytes_per_value)
        self.last_scanned = self.last_shared = 0
        if len(self) == 0 or len(probes) == 0 or threshold < 0:
            return empty_result()
        qwords = to_words(probes)
        plan = self._plan(int(threshold), method)
        if plan is None:
            self.last_scanned = len(probes)
            return kernels.brute_query(self.words, qwords, int(threshold))
        radii, masks, mask_start = plan
        limit = max(int(scan_cost(len(self), self.words.shape[1]) / C_CANDIDATE), 64)
        if method == "tables":
            limit = len(self) * len(self.widths) + 1  # more than any probe can have: never scan

        def run(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
            return kernels.mih_query(
                self.words,
                block,
                self.starts,
                self.widths_arr,
                radii,
                masks,
                mask_start,
                self.slot_base,
                self.slots,
                self.list_base,
                self.lists,
                int(threshold),
                limit,
            )

        nthreads = max(1, min(threads or query_threads() or numba.get_num_threads(), len(qwords) // MIN_BLOCK))
        if nthreads == 1:
            parts = [run(qwords)]
            firsts = [0]
        else:
            firsts = [len(qwords) * i // nthreads for i in range(nthreads)]
            blocks = [qwords[a:b] for a, b in zip(firsts, [*firsts[1:], len(qwords)], strict=True)]
            with ThreadPoolExecutor(nthreads) as pool:
                parts = list(pool.map(run, blocks))
        self.last_scanned = sum(p[3] for p in parts)
        self.last_shared = sum(p[4] for p in parts)
        pr = np.concatenate([p[0] + f for p, f in zip(parts, firsts, strict=True)])
        er = np.concatenate([p[1] for p in parts])
        dr = np.concatenate([p[2] for p in parts])
        order = np.lexsort((er, pr))
        return pr[order], er[order], dr[order]

    @property
    def nbytes(self) -> int:
        """Bytes the index holds: raw values (as words), slots and lists."""
        return int(self.words.nbytes + self.slots.nbytes + self.lists.nbytes)

    def save(self, directory: Path, *, words: bool = True) -> None:
        """``words=False``: the tables only (slots and lists), with the SHA-256 of the values they were built
        from; ``load`` then takes the words from its caller (a bank version's own values, mapped),
        so the index never holds a second copy of them."""
        arrays = self._arrays() if words else {"slots": self.slots, "lists": self.lists}
        meta: dict[str, object] = {
            "kind": self.name,
            "format": FORMAT,
            "n": len(self),
            "nbytes": self.nbytes_per_value,
            "widths": list(self.widths),
            "list_base": [int(x) for x in self.list_base],
            "sha256": {k: array_digest(a) for k, a in arrays.items()},
        }
        if not words:
            meta["words_sha256"] = array_digest(self.words)
        write_meta(directory, meta)
        for k, a in arrays.items():
            np.save(directory / f"{k}.npy", a, allow_pickle=False)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"words": self.words, "slots": self.slots, "lists": self.lists}

    @classmethod
    def load(cls, directory: Path, *, deep: bool = False, words: np.ndarray | None = None) -> HammingIndex:
        """Memory-mapped. Shapes, slots, lists and entry ids are bounds-checked before any kernel reads them
        (numba does not bounds-check) and each array must match the SHA-256 recorded when it was saved, so a
        damaged file is refused rather than silently missing entries. ``deep`` also proves that every id sits in
        its own chunk value's bucket exactly once per chunk (slower than rebuilding; for audits and tests).

        ``words``: for an index saved with ``words=False``, the values it was built from, as ``to_words`` gives
        them; refused unless their SHA-256 is the one recorded (tables over other values would miss entries)."""
        meta = read_meta(directory, cls.name, FORMAT)
        n = meta_int(meta, "n", directory)
        nbytes = meta_int(meta, "nbytes", directory, low=1)
        raw_widths = meta.get("widths")
        if not isinstance(raw_widths, list) or not all(
            isinstance(w, int) and not isinstance(w, bool) for w in raw_widths
        ):
            raise InputFormatError(str(directory / "index.json"), "field 'widths' must be a list of integers")
        widths = tuple(raw_widths)
        _check_widths(widths, nbytes * 8, directory)
        wpr = -(-nbytes // 8)
        list_base = meta.get("list_base")
        if (
            not isinstance(list_base, list)
            or len(list_base) != len(widths) + 1
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in list_base)
            or list_base[0] != 0
            or any(b < a for a, b in itertools.pairwise(list_base))
        ):
            raise InputFormatError(str(directory / "index.json"), "field 'list_base' must be rising integers from 0")
        slots = load_array(directory, "slots", np.uint32, (sum(2**w for w in widths),), mmap=True)
        lists = load_array(directory, "lists", np.uint32, (list_base[-1],), mmap=True)
        arrays = {"slots": slots, "lists": lists}
        if "words_sha256" in meta:  # tables only: the words are the caller's
            where = str(directory / "index.json")
            if words is None:
                raise InputFormatError(where, "this index holds tables only: open it with the values it indexes")
            if words.dtype != np.uint64 or words.shape != (n, wpr) or not words.flags.c_contiguous:
                raise InputFormatError(where, f"built over {n} values of {nbytes} bytes; given {words.shape}")
            expected = [(words, meta["words_sha256"], where, "built from other values than the ones given")]
        elif words is not None:  # the caller indexes these values: an index carrying its own would ignore them
            raise InputFormatError(
                str(directory / "index.json"), "this index holds its own values, not tables over the ones given"
            )
        else:
            words = arrays["words"] = load_array(directory, "words", np.uint64, (n, wpr), mmap=True)
            expected = []
        digests = meta.get("sha256")
        for k, a in arrays.items():
            want = digests.get(k) if isinstance(digests, dict) else None
            expected.append((a, want, str(directory / f"{k}.npy"), "content does not match the index header's SHA-256"))
        index = cls(words, nbytes, widths, slots, lists, np.asarray(list_base, dtype=np.int64))
        # The bounds check (it reads nothing out of bounds, whatever the tables hold) runs beside the digests:
        # the kernel and hashlib both release the GIL, and at 10 million entries each takes most of a second.
        with ThreadPoolExecutor(1) as pool:
            checked = pool.submit(
                kernels.check_tables,
                words,
                index.starts,
                index.widths_arr,
                index.slot_base,
                slots,
                index.list_base,
                lists,
                deep,
            )
            for a, want, where, why in expected:
                if array_digest(a) != want:
                    raise InputFormatError(where, why)
            problem = checked.result()
        if problem:
            raise InputFormatError(str(directory), f"index tables are inconsistent: {_PROBLEMS[problem]}")
        return index

    def __len__(self) -> int:
        return int(self.words.shape[0])


_PROBLEMS = {
    1: "a list is out of place, out of bounds or short, or a chunk does not file every entry once",
    2: "an entry id is out of range or filed under the wrong chunk value",
    3: "an entry id is listed twice in one chunk table",
}


def _check_widths(widths: tuple[int, ...], bits: int, where: Path) -> None:
    if any(w < 1 or w > MAX_WIDTH for w in widths) or sum(widths) > bits:
        raise InputFormatError(str(where), f"chunk widths must be 1..{MAX_WIDTH} bits and cover at most {bits} bits")
