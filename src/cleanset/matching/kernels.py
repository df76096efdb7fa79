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
        # one declaration per module, whatever the element type: a function prefetching arrays of two types
        # would otherwise declare the intrinsic twice with different pointer types
        ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
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


EMPTY = np.uint32(0xFFFFFFFF)  # a slot whose chunk value no entry has
TAG = np.uint32(0x80000000)  # set: the slot points into the chunk's lists; clear: the slot is the one entry's id
MASK = np.uint32(0x7FFFFFFF)


@njit(cache=True, nogil=True)
def build_chunk(
    words: np.ndarray,
    start: int,
    width: int,
    slots: np.ndarray,
    lists: np.ndarray,
    keys: np.ndarray,
    tmp_keys: np.ndarray,
    tmp_ids: np.ndarray,
) -> int:
    """One chunk's slots, and its lists written into ``lists`` (room for 1.5 words per entry: each list holds
    two entries or more, plus its count); returns the words of ``lists`` used.

    A counting sort of every entry by its chunk value, in two radix passes (high half, then low half of the chunk)
    so every histogram and write stream stays in cache: a single pass over a 2**24-value table was one cache miss
    per entry per chunk, and took most of a minute at 10 million entries. The second pass sorts one high value's
    entries at a time (a few thousand, in cache) and files them straight into their slots and lists, in slot
    order. Stable, so each list holds its entries in ascending order."""
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
    widest = 0
    for h in range(high):
        widest = max(widest, hist[h + 1])
        hist[h + 1] += hist[h]
    cursor = hist[:high].copy()
    for i in range(n):
        k = keys[i]
        hb = np.int64(k >> np.uint32(lo_bits))
        at = cursor[hb]
        tmp_keys[at] = k
        tmp_ids[at] = i
        cursor[hb] = at + 1
    cnt = np.zeros(low + 1, dtype=np.int64)
    fill = np.zeros(low, dtype=np.int64)
    local = np.empty(widest + 1, dtype=np.uint32)
    pos = 0
    for h in range(high):
        a = hist[h]
        b = hist[h + 1]
        cnt[:] = 0
        for p in range(a, b):
            cnt[np.int64(tmp_keys[p] & low_mask) + 1] += 1
        for u in range(low):
            cnt[u + 1] += cnt[u]
        fill[:] = cnt[:low]
        for p in range(a, b):
            lv = np.int64(tmp_keys[p] & low_mask)
            local[fill[lv]] = tmp_ids[p]
            fill[lv] += 1
        base = h * low
        local[b - a] = EMPTY  # read (and discarded) for an empty last value: no branch on emptiness
        for u in range(low):
            lo = cnt[u]
            k = cnt[u + 1] - lo
            v = local[lo]
            slots[base + u] = v if k == 1 else EMPTY
            if k >= 2:
                slots[base + u] = TAG | np.uint32(pos)
                lists[pos] = np.uint32(k)
                for j in range(k):
                    lists[pos + 1 + j] = local[lo + j]
                pos += k + 1
    return pos


@njit(cache=True, nogil=True)
def flip_masks(widths: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every XOR mask a query applies to its chunk values: for chunk ``c``, the masks of up to ``radii[c]`` of its
    ``widths[c]`` bits (fewest bits first, then lexicographic), at ``masks[start[c]:start[c + 1]]``. Made once per
    threshold (``HammingIndex._plan``), so a probe's slot numbers are one XOR each instead of a walk through bit
    combinations per probe."""
    m = widths.shape[0]
    start = np.zeros(m + 1, dtype=np.int64)
    for c in range(m):
        total = 0
        binom = 1
        for kk in range(min(radii[c], widths[c]) + 1):  # sum of C(w, kk), kk = 0..r (a wider radius adds nothing)
            total += binom
            binom = binom * (widths[c] - kk) // (kk + 1)
        start[c + 1] = start[c] + (total if radii[c] >= 0 else 0)
    masks = np.empty(start[m], dtype=np.uint64)
    comb = np.empty(64, dtype=np.int64)
    at = 0
    for c in range(m):
        b = widths[c]
        for kk in range(min(radii[c], b) + 1):
            for j in range(kk):
                comb[j] = j
            while True:
                mask = np.uint64(0)
                for j in range(kk):
                    mask |= _U1 << np.uint64(comb[j])
                masks[at] = mask
                at += 1
                j = kk - 1
                while j >= 0 and comb[j] == b - kk + j:
                    j -= 1
                if j < 0:
                    break
                comb[j] += 1
                for ll in range(j + 1, kk):
                    comb[ll] = comb[ll - 1] + 1
    return masks, start


@njit(cache=True, nogil=True)
def _buckets(
    qchunk: np.ndarray,
    shared: np.ndarray,
    masks: np.ndarray,
    mask_start: np.ndarray,
    slot_base: np.ndarray,
    slots: np.ndarray,
    list_base: np.ndarray,
    lists: np.ndarray,
    words: np.ndarray,
    r_chunk: np.ndarray,
    r_pos: np.ndarray,
    cand_e: np.ndarray,
    cand_c: np.ndarray,
) -> tuple[int, int]:
    """Phase 1 of a probe: the slot of every value within ``radii[c]`` of each chunk value (``flip_masks``),
    except in chunks ``shared`` with the probe before (see ``mih_query``). A slot holding one entry is that
    entry's id, which becomes a candidate at once (its row requested for phase 3); a slot of a value two or more
    entries share points to their list, whose first line is requested for phase 2. Returns (lists found,
    candidates so far).

    At 10 million entries every slot read is a cache miss in a table of hundreds of MB. The slots are listed
    first and only then read, each one's cache line requested (prefetched) ``AHEAD`` slots before it is read.
    Reading as they are enumerated left most of the misses waiting one after another behind the enumeration's own
    work; requesting all ~2,900 lines of a probe at once asked for far more than the core keeps in flight, and was
    10-15 % slower than this window. With one entry per slot being the commonest non-empty case (a table of
    2^23 slots over 10 million entries), keeping that entry in the slot saves the second miss a separate id table
    cost: about a seventh of a probe's misses."""
    nl = 0
    nc = 0
    listed = 0
    at = r_pos  # slot numbers first, then overwritten in place by the lists found (nl <= listed)
    for c in range(qchunk.shape[0]):
        if shared[c]:
            continue
        base = slot_base[c]
        v = qchunk[c]
        for s in range(mask_start[c], mask_start[c + 1]):
            at[listed] = base + np.int64(v ^ masks[s])
            r_chunk[listed] = c
            listed += 1
    for s in range(min(listed, AHEAD)):
        prefetch(slots, at[s])
    for s in range(listed):
        if s + AHEAD < listed:
            prefetch(slots, at[s + AHEAD])
        v = slots[at[s]]
        if v == EMPTY:
            continue
        c = r_chunk[s]
        if v < TAG:
            e = np.int64(v)
            prefetch(words[e], 0)
            cand_e[nc] = e
            cand_c[nc] = c
            nc += 1
        else:
            p = list_base[c] + np.int64(v & MASK)
            prefetch(lists, p)
            r_chunk[nl] = c
            at[nl] = p
            nl += 1
    return nl, nc


@njit(cache=True, nogil=True)
def _listed(lists: np.ndarray, nl: int, r_pos: np.ndarray) -> int:
    """Phase 2a: how many entries the lists found in phase 1 hold (their counts, requested in phase 1)."""
    total = np.int64(0)
    for s in range(nl):
        total += np.int64(lists[r_pos[s]])
    return int(total)


@njit(cache=True, nogil=True)
def _candidates(
    words: np.ndarray,
    lists: np.ndarray,
    nl: int,
    r_chunk: np.ndarray,
    r_pos: np.ndarray,
    cand_e: np.ndarray,
    cand_c: np.ndarray,
    nc: int,
) -> int:
    """Phase 2b: every listed entry becomes a candidate after the slots' own, each row requested as it is listed,
    so phase 3 finds most rows on their way."""
    for s in range(nl):
        c = r_chunk[s]
        p = r_pos[s]
        k = np.int64(lists[p])
        for j in range(1, k + 1):
            e = np.int64(lists[p + j])
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


# ``_reuse`` and ``_keep`` are functions of their own, not loops written inline in ``mih_query``: inline, numba
# compiled the query much slower, even for probes that share nothing.
@njit(cache=True, nogil=True)
def _reuse(
    prev_e: np.ndarray,
    prev_c: np.ndarray,
    prev_n: int,
    shared: np.ndarray,
    cand_e: np.ndarray,
    cand_c: np.ndarray,
    nc: int,
) -> int:
    """Append the previous probe's candidates from the chunks this probe shares."""
    for s in range(max(prev_n, 0)):
        if shared[prev_c[s]]:
            cand_e[nc] = prev_e[s]
            cand_c[nc] = prev_c[s]
            nc += 1
    return nc


@njit(cache=True, nogil=True)
def _keep(
    cand_e: np.ndarray, cand_c: np.ndarray, nc: int, prev_e: np.ndarray, prev_c: np.ndarray, per_chunk: np.ndarray
) -> None:
    """This probe's candidates, kept for the next one, with how many each chunk found."""
    per_chunk[:] = 0
    for s in range(nc):
        prev_e[s] = cand_e[s]
        prev_c[s] = cand_c[s]
        per_chunk[cand_c[s]] += 1


@njit(cache=True, nogil=True)
def mih_query(
    words: np.ndarray,
    qwords: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    radii: np.ndarray,
    masks: np.ndarray,
    mask_start: np.ndarray,
    slot_base: np.ndarray,
    slots: np.ndarray,
    list_base: np.ndarray,
    lists: np.ndarray,
    threshold: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Multi-index hashing range search, exact.

    ``radii[c]`` is how far chunk ``c`` is searched (-1: not at all); the caller guarantees
    ``sum(radii + 1) >= threshold + 1``, so an entry within ``threshold`` differs from the probe by at most
    ``radii[c]`` bits in some chunk ``c`` (pigeonhole) and is enumerated there. ``masks``/``mask_start``:
    ``flip_masks(widths, radii)``. A probe whose candidate count passes ``limit`` is answered by a linear scan
    instead (cheaper at that point, and just as exact). Returns the hits in probe order, the number of probes that
    took the scan, and the number of (probe, chunk) lookups taken from the probe before.

    A chunk value equal to the previous probe's has the same candidates, so they are taken from that probe's list
    instead of being looked up again. An item's probes come in pairs of one picture's two PDQ dialects a few bits
    apart (``BankMatcher.match_many`` puts them side by side), which share many of their chunk values. Only the
    lookups are shared: each candidate is still verified against each probe."""
    n = words.shape[0]
    m = starts.shape[0]
    pr = np.empty(1024, dtype=np.int64)
    er = np.empty(1024, dtype=np.int64)
    dr = np.empty(1024, dtype=np.int64)
    k = 0
    scanned = 0
    lookups = masks.shape[0]
    r_chunk = np.empty(lookups, dtype=np.int64)
    r_pos = np.empty(lookups, dtype=np.int64)
    qchunk = np.empty(m, dtype=np.uint64)
    prev_chunk = np.empty(m, dtype=np.uint64)
    shared = np.zeros(m, dtype=np.bool_)
    cand_e = np.empty(max(lookups, 1024), dtype=np.int64)
    cand_c = np.empty(max(lookups, 1024), dtype=np.int64)
    prev_e = np.empty(max(lookups, 1024), dtype=np.int64)
    prev_c = np.empty(max(lookups, 1024), dtype=np.int64)
    prev_n = -1  # the previous probe's candidates, all of them (-1: it took the scan, or there was none)
    prev_per_chunk = np.zeros(m, dtype=np.int64)  # how many of them each chunk found
    saved = np.int64(0)  # chunk lookups taken from the previous probe
    for q in range(qwords.shape[0]):
        reused = np.int64(0)
        for c in range(m):
            qchunk[c] = chunk_value(qwords, q, starts[c], widths[c])
            shared[c] = prev_n >= 0 and qchunk[c] == prev_chunk[c]
            if shared[c]:
                reused += prev_per_chunk[c]
                saved += np.int64(radii[c] >= 0)
        nl, nc = _buckets(
            qchunk, shared, masks, mask_start, slot_base, slots, list_base, lists, words, r_chunk, r_pos, cand_e, cand_c
        )
        total = nc + _listed(lists, nl, r_pos) + reused
        if total > limit:
            scanned += 1
        else:
            if total > cand_e.shape[0]:
                grown_e = np.empty(max(total, 2 * cand_e.shape[0]), dtype=np.int64)
                grown_c = np.empty(grown_e.shape[0], dtype=np.int64)
                grown_e[:nc] = cand_e[:nc]
                grown_c[:nc] = cand_c[:nc]
                cand_e = grown_e
                cand_c = grown_c
            nc = _candidates(words, lists, nl, r_chunk, r_pos, cand_e, cand_c, nc)
            nc = _reuse(prev_e, prev_c, prev_n, shared, cand_e, cand_c, nc)
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
        if total > limit:
            prev_n = -1
        else:
            if nc > prev_e.shape[0]:
                prev_e = np.empty(cand_e.shape[0], dtype=np.int64)
                prev_c = np.empty(cand_e.shape[0], dtype=np.int64)
            _keep(cand_e, cand_c, nc, prev_e, prev_c, prev_per_chunk)
            prev_chunk[:] = qchunk
            prev_n = nc
    return pr[:k], er[:k], dr[:k], scanned, int(saved)


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
    slot_base: np.ndarray,
    slots: np.ndarray,
    list_base: np.ndarray,
    lists: np.ndarray,
    deep: bool,
) -> int:
    """0 when the slots and lists are safe to read, and (``deep``) exactly what ``build_chunk`` makes of
    ``words``; otherwise a problem code (1: a list out of place, out of bounds or short,
    or a chunk not filing every entry; 2: an id out of range or in the wrong slot; 3: an id filed twice in one
    chunk). Every list is checked to lie inside its chunk, back to back in slot order, before any id in it is read.
    The shallow check reads the tables once, in order; the deep one also reads every id's row (random access,
    about twice the cost of building the index)."""
    n = words.shape[0]
    m = starts.shape[0]
    seen = np.zeros(n if deep else 0, dtype=np.int64)
    for c in range(m):
        base = slot_base[c]
        lo = list_base[c]
        hi = list_base[c + 1]
        pos = np.int64(0)
        filed = np.int64(0)
        for v in range(1 << widths[c]):
            s = slots[base + v]
            if s == EMPTY:
                continue
            if s < TAG:
                k = np.int64(1)
                first = np.int64(-1)
            else:
                if np.int64(s & MASK) != pos or lo + pos >= hi:
                    return 1
                k = np.int64(lists[lo + pos])
                if k < 2 or lo + pos + 1 + k > hi:
                    return 1
                first = lo + pos + 1
                pos += k + 1
            for j in range(k):
                e = np.int64(s) if first < 0 else np.int64(lists[first + j])
                if e >= n:
                    return 2
                if deep:
                    if np.int64(chunk_value(words, e, starts[c], widths[c])) != v:
                        return 2
                    if seen[e] == c + 1:
                        return 3
                    seen[e] = c + 1
            filed += k
        if lo + pos != hi or filed != n:
            return 1
    return 0
