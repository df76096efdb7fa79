"""numba kernels behind the Hamming indexes.

Hash values are held as rows of native ``uint64`` words (zero-padded to a whole word: zero bits on both sides add
nothing to a distance). Bit ``k`` of a value is bit ``k % 64`` of word ``k // 64``; chunks are contiguous bit ranges
in that numbering, so building and querying agree by construction.

Every kernel is ``nogil`` so a batch can be split over Python threads without copying the index, and ``cache=True``
so a CLI run does not pay the compile on every start. Arrays here come from our own build or from a load that has
already checked shapes and bounds: numba does no bounds checking, so the callers validate first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_U1 = np.uint64(1)
AHEAD = 32  # slots requested ahead of the one read in phase 1 (see ``_buckets``); any value gives the same results


@intrinsic
def _popcount64(typingctx: Any, x: Any) -> Any:
    """One ``popcnt`` instruction (LLVM ``ctpop``); numba has no public popcount."""
    if x != types.uint64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


popcount64: Any = _popcount64  # typed for mypy as what it is at run time: a function of one uint64


@intrinsic
def _prefetch(typingctx: Any, arr: Any, idx: Any) -> Any:
    """Start loading the cache line of ``arr[idx]`` (LLVM ``prefetch``, read, keep in all levels); no effect on
    results. numba has no public prefetch."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


prefetch: Any = _prefetch


@njit(cache=True, inline="always")
def row_distance(a: np.ndarray, i: Any, b: np.ndarray, j: Any) -> Any:
    s = np.int64(0)
    for w in range(a.shape[1]):
        s += np.int64(popcount64(a[i, w] ^ b[j, w]))
    return s


@njit(cache=True, inline="always")
def chunk_value(words: np.ndarray, row: Any, start: int, width: int) -> np.uint64:
    w = start >> 6
    o = np.uint64(start & 63)
    v = words[row, w] >> o
    if (start & 63) + width > 64:
        v |= words[row, w + 1] << (np.uint64(64) - o)
    return v & ((_U1 << np.uint64(width)) - _U1)


@njit(cache=True, nogil=True)
def _grow(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _scan(
    words: np.ndarray,
    qwords: np.ndarray,
    q0: int,
    q1: int,
    e0: int,
    e1: int,
    threshold: int,
    pr: np.ndarray,
    er: np.ndarray,
    dr: np.ndarray,
    k: int,
) -> int:
    """Probes ``q0:q1`` against entries ``e0:e1``, hits appended at ``k``; -1 when the output is full (the
    caller grows it and repeats the block). Output arrays are parameters, never reassigned here: reassigning
    arrays inside a hot numba loop costs reference counting on every hit path and made this loop 20x slower."""
    cap = pr.shape[0]
    for q in range(q0, q1):
        for e in range(e0, e1):
            d = row_distance(qwords, q, words, e)
            if d <= threshold:
                if k == cap:
                    return -1
                pr[k] = q
                er[k] = e
                dr[k] = d
                k += 1
    return k


@njit(cache=True, nogil=True)
def brute_query(words: np.ndarray, qwords: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (probe, entry, distance) within ``threshold``, by comparing every probe with every entry.

    Entries are walked in tiles that stay in cache while every probe passes over them, so a batch reads the bank
    once instead of once per probe. Output is sorted by (probe, entry).
    """
    n = words.shape[0]
    nq = qwords.shape[0]
    pr = np.empty(1024, dtype=np.int64)
    er = np.empty(1024, dtype=np.int64)
    dr = np.empty(1024, dtype=np.int64)
    k = 0
    tile = 2048
    for t0 in range(0, n, tile):
        t1 = min(n, t0 + tile)
        while True:
            k2 = _scan(words, qwords, 0, nq, t0, t1, threshold, pr, er, dr, k)
            if k2 >= 0:
                k = k2
                break
            pr = _grow(pr, 2 * pr.shape[0])
            er = _grow(er, 2 * er.shape[0])
            dr = _grow(dr, 2 * dr.shape[0])
    order = np.argsort(pr[:k] * max(n, 1) + er[:k], kind="mergesort")
    return pr[:k][order], er[:k][order], dr[:k][order]


@njit(cache=True, nogil=True)
def _build_chunk(
    words: np.ndarray,
    start: int,
    width: int,
    offsets: np.ndarray,
    ids: np.ndarray,
    keys: np.ndarray,
    tmp_keys: np.ndarray,
    tmp_ids: np.ndarray,
) -> None:
    """Counting sort of every entry by one chunk value, in two radix passes (high half, then low half of the
    chunk) so every histogram and write stream stays in cache: a single pass over a 2**24-slot table was one
    cache miss per entry per chunk, and took most of a minute at 10 million entries. Stable, so each bucket
    lists its entries in ascending order."""
    n = words.shape[0]
    lo_bits = width - width // 2
    high = 1 << (width // 2)
    low = 1 << lo_bits
    low_mask = np.uint32(low - 1)
    hist = np.zeros(high + 1, dtype=np.int64)
    for i in range(n):
        k = np.uint32(chunk_value(words, i, start, width))
        keys[i] = k
        hist[np.int64(k >> np.uint32(lo_bits)) + 1] += 1
    for h in range(high):
        hist[h + 1] += hist[h]
    cursor = hist[:high].copy()
    for i in range(n):
        k = keys[i]
        hb = np.int64(k >> np.uint32(lo_bits))
        pos = cursor[hb]
        tmp_keys[pos] = k
        tmp_ids[pos] = i
        cursor[hb] = pos + 1
    cnt = np.zeros(low + 1, dtype=np.int64)
    for h in range(high):
        a = hist[h]
        b = hist[h + 1]
        cnt[:] = 0
        for p in range(a, b):
            cnt[np.int64(tmp_keys[p] & low_mask) + 1] += 1
        for u in range(low):
            cnt[u + 1] += cnt[u]
        for u in range(low):
            offsets[h * low + u] = a + cnt[u]
        for p in range(a, b):
            lv = np.int64(tmp_keys[p] & low_mask)
            ids[a + cnt[lv]] = tmp_ids[p]
            cnt[lv] += 1
    offsets[high * low] = n


@njit(cache=True, nogil=True)
def build_tables(
    words: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    off_base: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
) -> np.ndarray:
    """Every entry filed in each chunk's direct-addressed table (CSR: offsets + entry ids).

    ``offsets[off_base[c] + v] .. offsets[off_base[c] + v + 1]`` is the slice of ``ids[c]`` holding the entries
    whose chunk ``c`` equals ``v``, in ascending entry order.
    """
    n = words.shape[0]
    m = starts.shape[0]
    keys = np.empty(n, dtype=np.uint32)
    tmp_keys = np.empty(n, dtype=np.uint32)
    tmp_ids = np.empty(n, dtype=np.uint32)
    for c in range(m):
        base = off_base[c]
        size = (1 << widths[c]) + 1
        _build_chunk(words, starts[c], widths[c], offsets[base : base + size], ids[c], keys, tmp_keys, tmp_ids)
    return ids


@njit(cache=True, nogil=True)
def _buckets(
    qchunk: np.ndarray,
    widths: np.ndarray,
    radii: np.ndarray,
    off_base: np.ndarray,
    offsets: np.ndarray,
    r_chunk: np.ndarray,
    r_lo: np.ndarray,
    r_hi: np.ndarray,
    comb: np.ndarray,
    ids: np.ndarray,
) -> tuple[int, Any]:
    """Phase 1 of a probe: the non-empty bucket of every value within ``radii[c]`` of each chunk value (the
    combinations of up to ``r`` flipped bits, walked in lexicographic order). Returns (buckets found, candidates
    in them).

    At 10 million entries every bucket read is a cache miss in a table of hundreds of MB. The slots are listed
    first and only then read, each one's cache line requested (prefetched) ``AHEAD`` slots before it is read; each
    non-empty bucket's first entry id is requested in turn for phase 2. Reading as they are enumerated left most of
    the misses waiting one after another behind the enumeration's own work; requesting all ~2,900 lines of a
    probe at once asked for far more than the core keeps in flight, and was 10-15 % slower than this window."""
    nr = 0
    total = np.int64(0)
    slots = r_lo  # slot numbers first, then overwritten in place by the buckets found (nr <= listed)
    listed = 0
    for c in range(qchunk.shape[0]):
        r = radii[c]
        b = widths[c]
        base = off_base[c]
        for kk in range(r + 1):
            for j in range(kk):
                comb[j] = j
            while True:
                mask = np.uint64(0)
                for j in range(kk):
                    mask |= _U1 << np.uint64(comb[j])
                v = base + np.int64(qchunk[c] ^ mask)
                slots[listed] = v
                r_chunk[listed] = c
                listed += 1
                j = kk - 1
                while j >= 0 and comb[j] == b - kk + j:
                    j -= 1
                if j < 0:
                    break
                comb[j] += 1
                for ll in range(j + 1, kk):
                    comb[ll] = comb[ll - 1] + 1
    for s in range(min(listed, AHEAD)):
        prefetch(offsets, slots[s])
    for s in range(listed):
        if s + AHEAD < listed:
            prefetch(offsets, slots[s + AHEAD])
        v = slots[s]
        c = r_chunk[s]
        lo = np.int64(offsets[v])
        hi = np.int64(offsets[v + 1])
        if hi > lo:
            prefetch(ids[c], lo)
            r_chunk[nr] = c
            r_lo[nr] = lo
            r_hi[nr] = hi
            nr += 1
            total += hi - lo
    return nr, total


@njit(cache=True, nogil=True)
def _candidates(
    words: np.ndarray,
    ids: np.ndarray,
    nr: int,
    r_chunk: np.ndarray,
    r_lo: np.ndarray,
    r_hi: np.ndarray,
    cand_e: np.ndarray,
    cand_c: np.ndarray,
) -> int:
    """Phase 2 of a probe: every candidate's entry id and chunk, each entry's row requested (prefetched) as it is
    listed, so phase 3 finds most rows on their way."""
    nc = 0
    for s in range(nr):
        c = r_chunk[s]
        for p in range(r_lo[s], r_hi[s]):
            e = np.int64(ids[c, p])
            prefetch(words[e], 0)
            cand_e[nc] = e
            cand_c[nc] = c
            nc += 1
    return nc


@njit(cache=True, nogil=True)
def _verify(
    words: np.ndarray,
    qwords: np.ndarray,
    q: Any,
    qchunk: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    radii: np.ndarray,
    threshold: int,
    nc: int,
    cand_e: np.ndarray,
    cand_c: np.ndarray,
    pr: np.ndarray,
    er: np.ndarray,
    dr: np.ndarray,
    k: int,
) -> int:
    """Phase 3 of a probe: full distance of every candidate; a hit is kept only from the first chunk that can
    find it (so no entry is reported twice). Appends at ``k``; -1 when the output is full."""
    cap = pr.shape[0]
    for s in range(nc):
        e = cand_e[s]
        c = cand_c[s]
        d = row_distance(qwords, q, words, e)
        if d > threshold:
            continue
        first = True
        for c2 in range(c):
            if radii[c2] >= 0:
                x = chunk_value(words, e, starts[c2], widths[c2]) ^ qchunk[c2]
                if np.int64(popcount64(x)) <= radii[c2]:
                    first = False
                    break
        if not first:
            continue
        if k == cap:
            return -1
        pr[k] = q
        er[k] = e
        dr[k] = d
        k += 1
    return k


@njit(cache=True, nogil=True)
def mih_query(
    words: np.ndarray,
    qwords: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    radii: np.ndarray,
    off_base: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    threshold: int,
    lookups: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Multi-index hashing range search, exact.

    ``radii[c]`` is how far chunk ``c`` is searched (-1: not at all); the caller guarantees
    ``sum(radii + 1) >= threshold + 1``, so an entry within ``threshold`` differs from the probe by at most
    ``radii[c]`` bits in some chunk ``c`` (pigeonhole) and is enumerated there. A probe whose candidate count
    passes ``limit`` is answered by a linear scan instead (cheaper at that point, and just as exact). Returns the
    hits in probe order and the number of probes that took the scan.
    """
    n = words.shape[0]
    m = starts.shape[0]
    pr = np.empty(1024, dtype=np.int64)
    er = np.empty(1024, dtype=np.int64)
    dr = np.empty(1024, dtype=np.int64)
    k = 0
    scanned = 0
    r_chunk = np.empty(lookups, dtype=np.int64)
    r_lo = np.empty(lookups, dtype=np.int64)
    r_hi = np.empty(lookups, dtype=np.int64)
    qchunk = np.empty(m, dtype=np.uint64)
    comb = np.empty(64, dtype=np.int64)
    cand_e = np.empty(1024, dtype=np.int64)
    cand_c = np.empty(1024, dtype=np.int64)
    for q in range(qwords.shape[0]):
        for c in range(m):
            qchunk[c] = chunk_value(qwords, q, starts[c], widths[c])
        nr, total = _buckets(qchunk, widths, radii, off_base, offsets, r_chunk, r_lo, r_hi, comb, ids)
        nc = 0
        if total > limit:
            scanned += 1
        else:
            cand_e = _grow(cand_e, total)
            cand_c = _grow(cand_c, total)
            nc = _candidates(words, ids, nr, r_chunk, r_lo, r_hi, cand_e, cand_c)
        while True:
            if total > limit:
                k2 = _scan(words, qwords, q, q + 1, 0, n, threshold, pr, er, dr, k)
            else:
                k2 = _verify(
                    words, qwords, q, qchunk, starts, widths, radii, threshold, nc, cand_e, cand_c, pr, er, dr, k
                )
            if k2 >= 0:
                k = k2
                break
            pr = _grow(pr, 2 * pr.shape[0])
            er = _grow(er, 2 * er.shape[0])
            dr = _grow(dr, 2 * dr.shape[0])
    return pr[:k], er[:k], dr[:k], scanned


@njit(cache=True)
def rows_sorted(keys: np.ndarray) -> bool:
    """True when the rows of a (n, w) uint8 array are in non-decreasing byte order (memcmp order)."""
    for i in range(1, keys.shape[0]):
        for j in range(keys.shape[1]):
            a = keys[i - 1, j]
            b = keys[i, j]
            if a < b:
                break
            if a > b:
                return False
    return True


@njit(cache=True, nogil=True)
def check_tables(
    words: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    off_base: np.ndarray,
    offsets: np.ndarray,
    ids: np.ndarray,
    deep: bool,
) -> int:
    """0 when the CSR tables are safe to read, and (``deep``) exactly what ``build_tables`` makes of ``words``;
    otherwise a problem code (1: offsets not a non-decreasing run from 0 to n; 2: an id out of range or in the
    wrong bucket; 3: an id listed twice in one chunk). Offsets are checked before any id is read through them.
    The shallow check reads the tables once, in order; the deep one also reads every id's row (random access,
    about twice the cost of building the index)."""
    n = words.shape[0]
    m = starts.shape[0]
    seen = np.zeros(n, dtype=np.int64)
    for c in range(m):
        base = off_base[c]
        size = 1 << widths[c]
        if offsets[base] != 0 or offsets[base + size] != n:
            return 1
        for v in range(size):
            if offsets[base + v + 1] < offsets[base + v]:
                return 1
        for p in range(n):
            if np.int64(ids[c, p]) >= n:
                return 2
        if not deep:
            continue
        for v in range(size):
            for p in range(offsets[base + v], offsets[base + v + 1]):
                e = np.int64(ids[c, p])
                if e >= n:
                    return 2
                if np.int64(chunk_value(words, e, starts[c], widths[c])) != v:
                    return 2
                if seen[e] == c + 1:
                    return 3
                seen[e] = c + 1
    return 0
