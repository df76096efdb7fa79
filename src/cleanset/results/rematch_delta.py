"""Rematch's incremental path: match only what a list version gained, and drop what it lost.

Lists change by a few entries between versions, so instead of matching every probe against the
whole new list, only the entries that are new (or whose id changed) are matched, old matches of removed ids are
dropped and all others are kept. The rules are not rematch's own: the changed entries and the allow banks are put
in a ``BankMatcher``, whose ``match_columns`` applies the quality gate and the allow-list suppression exactly as
for the scan and ``assess`` (tests/assess/test_paths_agree.py), and ``keep_better`` keeps one match per (bank,
entry id) across stored and new matches; the verdict is ``assess.judge``'s. The result is what a full match
gives; tests compare the two, and with a fresh scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanset.assess import Policy, judgement
from cleanset.banks.hexcodec import decode_column
from cleanset.errors import UserError
from cleanset.matching.matcher import BankMatcher, ColumnHits, gated_mask, keep_better, match_order
from cleanset.records import Match, Status
from cleanset.results.changes import change_rows
from cleanset.runs.schema import COLUMN_PROBES, ITEM_SCHEMA, MATCH_TYPE, match_row, with_full_probes

# What the incremental path reads of each shard (hash columns, sizes and notes are carried over untouched).
DELTA_COLUMNS = ["key", "shard", "status", "verdict", "probes", "matches", "scores", "rules", *COLUMN_PROBES]


@dataclass
class BankDelta:
    """What changed in one block bank between the run's version and the new one."""

    snapshot: Any  # the new version
    requery: dict[str, tuple[np.ndarray, list[str]]]  # signal -> entries every probe is matched against
    dropped_ids: set[str] | None  # ids whose old matches no longer hold; None: all of the bank's old matches
    added: int = 0
    removed: int = 0


def _ids(snap: Any, signal: str) -> pa.Array:
    ids = snap.entry_ids(signal)
    arrow = getattr(ids, "arrow", None)
    return arrow if isinstance(arrow, pa.Array) else pa.array(list(ids), pa.string())


def _entry_keys(snap: Any, signal: str) -> pa.Array:
    """One binary key per entry: value bytes + NUL + id, so set operations run in Arrow, not Python."""
    values = np.ascontiguousarray(snap.values(signal))
    n, width = values.shape
    vals = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(values.tobytes())])
    return pc.binary_join_element_wise(vals.cast(pa.binary()), _ids(snap, signal).cast(pa.binary()), b"\x00")


def bank_delta(old: Any | None, new: Any) -> BankDelta:
    """Entries to match and old matches to drop. Without the old version, or when a threshold changed, every
    entry of the new version is matched and every old match of the bank dropped (a full re-match of that bank)."""
    signals = sorted(set(new.signals()) | set(old.signals() if old is not None else ()))
    if old is None or any(
        old.threshold(s) != new.threshold(s) for s in signals if s in old.signals() and s in new.signals()
    ):
        full = {s: (np.asarray(new.values(s)), list(new.entry_ids(s))) for s in new.signals()}
        return BankDelta(new, full, None, added=int(new.entry_count), removed=int(old.entry_count) if old else 0)
    added: dict[str, np.ndarray] = {}
    dropped: set[str] = set()
    n_added = n_removed = 0
    for s in signals:
        new_keys = _entry_keys(new, s) if s in new.signals() else pa.array([], pa.binary())
        old_keys = _entry_keys(old, s) if s in old.signals() else pa.array([], pa.binary())
        is_new = ~pc.is_in(new_keys, value_set=old_keys).to_numpy(zero_copy_only=False)
        gone = ~pc.is_in(old_keys, value_set=new_keys).to_numpy(zero_copy_only=False)
        added[s] = is_new
        n_added += int(is_new.sum())
        n_removed += int(gone.sum())
        if gone.any():
            dropped.update(_ids(old, s).filter(pa.array(gone)).to_pylist())
    requery: dict[str, tuple[np.ndarray, list[str]]] = {}
    for s in new.signals():
        ids = _ids(new, s)
        # An id that lost any value is matched again in full: the old match may have come from the lost value.
        touched = pc.is_in(ids, value_set=pa.array(sorted(dropped), pa.string())).to_numpy(zero_copy_only=False)
        sel = np.flatnonzero(added[s] | touched)
        if len(sel):
            requery[s] = (np.asarray(new.values(s))[sel], ids.take(pa.array(sel)).to_pylist())
    return BankDelta(new, requery, dropped, n_added, n_removed)


def hex_rows(values: pa.Array, nbytes: int, what: str) -> np.ndarray:
    """Stored probe values to (n, nbytes) uint8 rows, with the banks' bulk hex decoder; a bad value is named."""
    rows, bad = decode_column(values, 2 * nbytes)
    if bad.any():
        raise UserError(f"{what}: stored probe value {values[int(np.flatnonzero(bad)[0])].as_py()!r} is not valid hex")
    return rows


@dataclass
class FlatProbes:
    """The probes of one shard's items as columns: row, name, signal, value, gate (failed items keep their file
    digests, which are matched like any other)."""

    item: np.ndarray
    signal: np.ndarray  # int32 code per probe into ``signals``
    signals: list[str]
    gated: np.ndarray
    names: pa.Array
    values: pa.Array

    @classmethod
    def of(cls, table: pa.Table, quality_gate: int) -> FlatProbes:
        from cleanset.signals import quality_gated_signals

        lists = with_full_probes(table).column("probes").combine_chunks()
        flat = lists.flatten()
        item = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        # Dictionary codes: a few distinct signal names over millions of probes, compared as integers.
        enc = pc.dictionary_encode(flat.field("signal"))
        enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
        signals = [str(x) for x in enc.dictionary.to_pylist()]
        signal = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        quality = flat.field("quality").cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        gated_signal = np.array([name in quality_gated_signals() for name in signals], dtype=bool)
        # the matcher's own gate (one definition for the scan, `match`, assess and rematch)
        gated = gated_mask(gated_signal[signal] if len(signals) else np.zeros(0, bool), quality, quality_gate)
        return cls(item, signal, signals, gated, flat.field("name"), flat.field("value"))

    def hits(self, matcher: BankMatcher, signal: str) -> ColumnHits | None:
        """The matcher's hits (allow banks suppressing, gated probes at distance 0) for the probes of ``signal``;
        None when no probe or no index has that signal. Rows are flat probe rows."""
        from cleanset.signals import get_signal

        if signal not in self.signals or not any(b.signal == signal for b in matcher.indexes):
            return None
        rows = np.flatnonzero(self.signal == self.signals.index(signal))
        if not len(rows):
            return None
        arr = hex_rows(self.values.take(pa.array(rows)), get_signal(signal).bits // 8, signal)
        found = matcher.match_columns(signal, arr, self.gated[rows], distinct=False)
        return replace(found, row=rows[found.row])


def indexes_for(snaps: Sequence[Any], quality_gate: int) -> list[Any]:
    return BankMatcher.build(snaps, quality_gate=quality_gate).indexes if snaps else []


def rematch_table_delta(
    table: pa.Table,
    deltas: Sequence[BankDelta],
    allow_indexes: Sequence[Any],
    requery_indexes: dict[str, list[Any]],
    policy: Policy,
    quality_gate: int,
) -> tuple[pa.Table, list[dict[str, Any]]]:
    """One shard through the incremental path; same output as ``rematch_table``."""
    changed = {d.snapshot.name: d for d in deltas}
    probes = FlatProbes.of(table, quality_gate)
    # The changed entries and the allow banks as one matcher: its rules (quality gate, allow-list suppression) are
    # the ones the scan and ``assess`` use; only which entries it holds is rematch's own.
    matcher = BankMatcher([*allow_indexes, *(b for idxs in requery_indexes.values() for b in idxs)], quality_gate)
    new_best: dict[int, dict[tuple[str, str], Match]] = {}  # item -> (bank, id) -> best Match
    for signal in probes.signals:
        found = probes.hits(matcher, signal)
        if found is None or not len(found.row):
            continue
        names = probes.names.take(pa.array(found.row)).to_pylist()
        for (row, b, er, dist), name in zip(found.rows(), names, strict=True):
            match = Match(b.bank, b.version, b.entry_ids[er], b.signal, dist, name)
            keep_better(new_best.setdefault(int(probes.item[row]), {}), match)
    old_matches = table.column("matches").to_pylist()
    touched = set(new_best) | {i for i, ms in enumerate(old_matches) if ms and any(m["bank"] in changed for m in ms)}
    status = table.column("status").to_pylist()
    verdicts = table.column("verdict").to_pylist()
    new_verdicts = list(verdicts)
    new_matches = list(old_matches)
    new_rules = old_rules(table)
    keys, shards, scores = table.column("key"), table.column("shard"), table.column("scores")
    changes: list[dict[str, Any]] = []
    for i in sorted(touched):
        best: dict[tuple[str, str], Match] = {}
        for m in old_matches[i] or []:
            delta = changed.get(m["bank"])
            if delta is not None and (delta.dropped_ids is None or m["entry_id"] in delta.dropped_ids):
                continue
            version = delta.snapshot.version if delta is not None else m["version"]
            keep_better(best, Match(m["bank"], version, m["entry_id"], m["signal"], m["distance"], m["probe"]))
        for cand in new_best.get(i, {}).values():
            keep_better(best, cand)
        ms = sorted(best.values(), key=match_order)
        # the matches come from an entry subset here; the verdict is still assess's own rule
        j = judgement(Status(status[i]), ms, dict(scores[i].as_py() or []) or None, policy)
        verdict = j.verdict
        new_rules[i] = list(j.rules)
        new_matches[i] = [match_row(m) for m in ms]
        new_verdicts[i] = None if verdict is None else str(verdict)
        changes += change_rows(keys[i].as_py(), shards[i].as_py(), old_matches[i], ms, verdicts[i], new_verdicts[i])
    if not touched:
        return table, changes
    out = table.set_column(
        table.schema.get_field_index("matches"),
        ITEM_SCHEMA.field("matches"),
        pa.array(new_matches, pa.list_(MATCH_TYPE)),
    )
    out = out.set_column(
        out.schema.get_field_index("verdict"), ITEM_SCHEMA.field("verdict"), pa.array(new_verdicts, pa.string())
    )
    return with_rules(out, new_rules), changes


def old_rules(table: pa.Table) -> list[list[str]]:
    """The rules each row's stored verdict named; empty for a run written before the column existed."""
    if "rules" not in table.column_names:
        return [[] for _ in range(table.num_rows)]
    return [list(r or []) for r in table.column("rules").to_pylist()]


def with_rules(table: pa.Table, rules: list[list[str]]) -> pa.Table:
    """Store the rules that fired for the new verdicts: the report's per-rule counts and the neighbour pass read
    them, so a verdict rematch changed must not keep the rules of the old one."""
    field = ITEM_SCHEMA.field("rules")
    col = pa.array(rules, field.type)
    i = table.schema.get_field_index("rules")
    return table.append_column(field, col) if i < 0 else table.set_column(i, field, col)
