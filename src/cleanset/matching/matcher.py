"""Match an item's probes against every bank: the one place that turns hashes into named matches.

Rules (each is a decision a reviewer should be able to find in one place):

- A probe is compared with every bank that holds its ``signal``; exact signals by equality, perceptual ones
  within ``snapshot.threshold(signal)`` bits (inclusive).
- A ``pdq`` probe whose quality is below the quality gate is matched at distance 0 only: a flat or tiny image has
  an unstable PDQ hash, and matching it by distance flags unrelated images. Its exact value still matches, and a
  note says so. A probe without a quality (a bare hash typed by a user) is not gated.
- Allow banks hold known false positives. A probe whose value lies within an allow bank's threshold of one of
  its entries (under the same quality gate) produces no match from any other bank, and a note names the allow
  bank and entry. Allow banks never produce matches themselves. The rule is per probe, not per item: another
  probe of the same item (another rotation, a region) is still matched.
- One ``Match`` per (bank, entry id): the smallest distance wins; on a tie the smallest probe name (a rule that
  does not depend on probe order, so a rematch from stored probes agrees). Matches are ordered by (distance, bank,
  entry id).
- Each (bank, signal) index is built once, in ``build``; ``match_many`` answers a whole shard with one batch
  query per index and gives exactly what ``match`` gives item by item.
- The gate and the suppression are applied in one place, ``match_columns`` (one signal's probes as arrays, the
  gate as ``gated_mask``): ``match_many`` calls it per signal, and so does the incremental rematch on stored
  probe columns with a matcher over the changed entries, so neither re-implements a rule.

Bank values never leave this module: a ``Match`` names bank, version, entry id, signal, distance and probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cleanset.banks.base import BankSnapshot
from cleanset.errors import UserError
from cleanset.matching.base import Index
from cleanset.matching.exact import ExactIndex
from cleanset.matching.stored import hamming_index
from cleanset.records import Match, Probe
from cleanset.signals import DEFAULT_QUALITY_GATE, get_signal, quality_gated_signals
from cleanset.signals.base import Metric

# Probe signals under the quality gate, as the signals declare them (``Signal.quality_gated``); each matcher asks
# ``quality_gated_signals()`` when built, this name is that table at import.
QUALITY_GATED_SIGNALS: frozenset[str] = quality_gated_signals()


@dataclass(frozen=True)
class BankIndex:
    """One (bank, signal) pair, indexed."""

    bank: str
    version: int
    allow: bool
    signal: str
    threshold: int
    index: Index
    entry_ids: Sequence[str]


def match_order(m: Match) -> tuple[int, str, str]:
    """How an item's matches are listed: nearest first."""
    return (m.distance, m.bank, m.entry_id)


def keep_better(best: dict[tuple[str, str], Match], m: Match) -> None:
    """Keep one match per (bank, entry id): the smallest distance, then the smallest probe name. The tie rule does
    not depend on the order probes come in, so a rematch from stored probes decides exactly as the scan did."""
    key = (m.bank, m.entry_id)
    cur = best.get(key)
    if cur is None or (m.distance, m.probe) < (cur.distance, cur.probe):
        best[key] = m


class BankMatcher:
    def __init__(self, indexes: Sequence[BankIndex], quality_gate: int = DEFAULT_QUALITY_GATE) -> None:
        self.indexes = list(indexes)
        self.quality_gate = quality_gate
        self._gated_signals = quality_gated_signals()

    @classmethod
    def build(cls, snapshots: Sequence[BankSnapshot], quality_gate: int = DEFAULT_QUALITY_GATE) -> BankMatcher:
        """Index every (bank, signal) once: a stored bank version's own index when it has one (mapped, see
        ``matching.stored``), otherwise one built now."""
        seen: set[str] = set()
        indexes: list[BankIndex] = []
        for snap in snapshots:
            if snap.name in seen:
                raise UserError(f"bank {snap.name!r} given twice: match against one version of a bank")
            seen.add(snap.name)
            for signal in snap.signals():
                sig = get_signal(signal)
                values = snap.values(signal)
                ids = snap.entry_ids(signal)
                if values.ndim != 2 or values.shape[1] * 8 != sig.bits or len(ids) != len(values):
                    raise UserError(
                        f"bank {snap.name!r} v{snap.version}: {signal} values are not {sig.bits}-bit rows "
                        "with one entry id each"
                    )
                threshold = snap.threshold(signal)
                index: Index = (
                    hamming_index(snap, signal, values, threshold)
                    if sig.metric is Metric.HAMMING
                    else ExactIndex.build(values)
                )
                indexes.append(BankIndex(snap.name, snap.version, snap.allow, signal, threshold, index, ids))
        return cls(indexes, quality_gate)

    def signals(self) -> list[str]:
        return sorted({b.signal for b in self.indexes})

    def match(self, probes: Sequence[Probe]) -> tuple[list[Match], list[str]]:
        return self.match_many([probes])[0]

    def match_many(self, probe_lists: Sequence[Sequence[Probe]]) -> list[tuple[list[Match], list[str]]]:
        flat = [(item, pos, p) for item, probes in enumerate(probe_lists) for pos, p in enumerate(probes)]
        notes: list[list[str]] = [[] for _ in probe_lists]
        gated = gated_mask(
            np.array([p.signal in self._gated_signals for _, _, p in flat], dtype=bool),
            np.array([np.nan if p.quality is None else p.quality for _, _, p in flat], dtype=np.float64),
            self.quality_gate,
        )
        for (item, _, p), g in zip(flat, gated.tolist(), strict=True):
            if g:
                notes[item].append(f"pdq probe {p.name} below quality gate: matched exactly only")
        by_signal: dict[str, list[int]] = {}
        for i, (_, _, p) in enumerate(flat):
            by_signal.setdefault(p.signal, []).append(i)
        best: list[dict[tuple[str, str], Match]] = [{} for _ in probe_lists]
        suppressed: dict[int, tuple[str, str]] = {}
        for signal, signal_rows in by_signal.items():
            # An item's probes of one rotation/flip side by side (pdq/x beside pdq512/x): two hashes of one picture
            # a few bits apart have many chunk values in common, whose lookups the Hamming index then does once for
            # both (``kernels.mih_query``), and the rest read table lines still in cache.
            # Only the order of the index's work changes; every rule below is independent of it.
            signal_rows.sort(key=lambda i: (flat[i][0], flat[i][2].name.rsplit("/", 1)[-1]))
            rows = np.asarray(signal_rows, dtype=np.int64)
            values = _probe_array(signal, [flat[i][2] for i in signal_rows])
            hits = self.match_columns(signal, values, gated[rows])
            for r, (bank, entry) in hits.suppressed.items():
                suppressed[signal_rows[r]] = (bank, entry)
            for r, b, er, dr in hits.rows():
                item, _pos, p = flat[signal_rows[r]]
                keep_better(best[item], Match(b.bank, b.version, b.entry_ids[er], b.signal, dr, p.name))
        for row in sorted(suppressed):
            item, _, p = flat[row]
            bank, entry = suppressed[row]
            notes[item].append(f"probe {p.name} is in allow bank {bank} (entry {entry}): not matched")
        return [(sorted(best[item].values(), key=match_order), notes[item]) for item in range(len(probe_lists))]

    def match_columns(self, signal: str, values: np.ndarray, gated: np.ndarray, distinct: bool = True) -> ColumnHits:
        """The rules of ``match_many`` over one signal's probes given as columns: ``values`` (n, bytes) rows and the
        ``gated`` mask (``gated_mask``). Gated probes are asked at distance 0 only; a probe within an allow bank's
        reach gives no hit from any other bank and is listed in ``suppressed``. Every (probe row, bank index,
        entry row, distance) hit is returned, not yet reduced to one match per entry (``keep_better`` does that,
        also across calls: rematch merges these hits with an item's stored matches).

        ``distinct``: ask the index once per distinct value (see ``_query_distinct``); rematch, whose probes were
        stored one item at a time and rarely repeat within a shard, skips the grouping."""
        gated = np.asarray(gated, dtype=bool)
        suppressed: dict[int, tuple[str, str]] = {}
        rows_out: list[np.ndarray] = []
        banks_out: list[np.ndarray] = []
        entries_out: list[np.ndarray] = []
        dists_out: list[np.ndarray] = []
        picked = [(i, b) for i, b in enumerate(self.indexes) if b.signal == signal]
        for i, b in sorted(picked, key=lambda ib: not ib[1].allow):  # allow banks first
            pr, er, dr = self._query(b, values, gated, distinct)
            if b.allow:
                for r, e in zip(pr.tolist(), er.tolist(), strict=True):
                    suppressed.setdefault(r, (b.bank, b.entry_ids[e]))
                continue
            if suppressed:
                keep = ~np.isin(pr, np.fromiter(suppressed, dtype=np.int64, count=len(suppressed)))
                pr, er, dr = pr[keep], er[keep], dr[keep]
            rows_out.append(pr)
            banks_out.append(np.full(len(pr), i, dtype=np.int64))
            entries_out.append(er)
            dists_out.append(dr)
        empty = np.zeros(0, dtype=np.int64)
        return ColumnHits(
            self.indexes,
            np.concatenate(rows_out) if rows_out else empty,
            np.concatenate(banks_out) if banks_out else empty,
            np.concatenate(entries_out) if entries_out else empty,
            np.concatenate(dists_out) if dists_out else empty,
            suppressed,
        )

    def _query(
        self, b: BankIndex, probes: np.ndarray, gated: np.ndarray, distinct: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probe row, entry row, distance) of ``b``'s hits; gated probes are asked at distance 0 only."""
        out_r, out_e, out_d = [], [], []
        for sel, threshold in ((~gated, b.threshold), (gated, 0)):
            rows = np.flatnonzero(sel)
            if len(rows) == 0:
                continue
            query = _query_distinct if distinct else _query_all
            pr, er, dr = query(b.index, probes[rows], threshold)
            out_r.append(rows[pr])
            out_e.append(np.asarray(er, dtype=np.int64))
            out_d.append(np.asarray(dr, dtype=np.int64))
        if not out_r:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(out_r), np.concatenate(out_e), np.concatenate(out_d)


@dataclass(frozen=True)
class ColumnHits:
    """Hits of one signal's probe columns (``BankMatcher.match_columns``): parallel arrays of probe row, position
    of the ``BankIndex`` in ``indexes``, entry row and distance; ``suppressed`` maps a probe row inside an allow
    bank to that (bank, entry id)."""

    indexes: Sequence[BankIndex]
    row: np.ndarray
    bank: np.ndarray
    entry: np.ndarray
    distance: np.ndarray
    suppressed: dict[int, tuple[str, str]]

    def rows(self) -> list[tuple[int, BankIndex, int, int]]:
        return [
            (r, self.indexes[b], e, d)
            for r, b, e, d in zip(
                self.row.tolist(), self.bank.tolist(), self.entry.tolist(), self.distance.tolist(), strict=True
            )
        ]


def gated_mask(gated_signal: np.ndarray, quality: np.ndarray, quality_gate: int) -> np.ndarray:
    """The quality gate, the one definition every path uses (the matcher's items, rematch's stored columns): a
    probe is gated, matched at distance 0 only, when its signal declares itself quality-gated (``gated_signal``,
    per probe, from ``quality_gated_signals()``) and its quality is below ``quality_gate``. A probe without a
    quality (NaN here) is not gated: a bare hash typed by a user has none."""
    with np.errstate(invalid="ignore"):
        return np.asarray(gated_signal, dtype=bool) & (np.asarray(quality, dtype=np.float64) < quality_gate)


def _query_all(index: Index, probes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return index.query(probes, threshold)


def _query_distinct(index: Index, probes: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``index.query`` asked once per distinct value, each hit given to every probe row holding that value.

    A symmetric picture's rotations, or its two PDQ dialects, often hash alike; at 10 million entries each query
    costs thousands of cache misses, and about one probe in twenty repeats another of its batch. Distinct values
    are asked in the order they first appear, which keeps neighbouring probes together (see ``match_many``)."""
    _, first, inverse = np.unique(probes, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(probes):
        return index.query(probes, threshold)
    uid = inverse.ravel()
    keep = np.sort(first)
    pk, er, dr = index.query(probes[keep], threshold)
    order = np.argsort(uid, kind="stable")  # rows grouped by value
    counts = np.bincount(uid, minlength=len(first))
    start = np.cumsum(counts) - counts
    hit_uid = uid[keep[pk]]
    reps = counts[hit_uid]
    within = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    rows = order[np.repeat(start[hit_uid], reps) + within]
    return rows, np.repeat(er, reps), np.repeat(dr, reps)


def _probe_array(signal: str, probes: Sequence[Probe]) -> np.ndarray:
    """Probe values as (k, bytes) rows; a malformed value is a caller's bug and is named, never skipped.

    Values of the right length are decoded together in one ``bytes.fromhex`` rather than checked one by one. It
    accepts exactly what ``Signal.validate`` accepts at that length, except whitespace, which it skips: then fewer
    bytes come out, and so does a value it cannot read; either way the values are checked one by one, which names
    the bad one."""
    sig = get_signal(signal)
    width = sig.bits // 8
    values = [p.value for p in probes]
    if all(isinstance(v, str) and len(v) == 2 * width for v in values):
        try:
            raw = bytes.fromhex("".join(values))
        except ValueError:
            raw = b""
        if len(raw) == width * len(values):
            return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), width).copy()
    out = np.empty((len(probes), width), dtype=np.uint8)
    for i, p in enumerate(probes):
        try:
            out[i] = np.frombuffer(sig.to_bytes(p.value), dtype=np.uint8)
        except ValueError as e:
            raise UserError(f"probe {p.name}: {e}") from None
    return out
