"""Re-matching a run's stored probes against new bank versions, without reading a single image.

A scan stores every probe it matched (the item's own hashes, per view: rotations, flips, regions), so when a list
gains or loses entries the verdicts can be brought up to date from the results alone. The new decision is taken
by the same ``pipeline.policy.decide`` with the run's stored policy, and matching uses every bank of the run (the
named ones at their new version, the others at the version the run used), so allow banks keep suppressing exactly
as in a fresh scan and the result equals what scanning again with those versions would give.

The outcome is a new revision ``RUN/revisions/<n>/`` (items, summary, manifest with the new bank versions, and
``changes.parquet``) written under a temporary name and renamed, so a revision is either complete or absent.
Failed items stay failed: nothing was hashed for them, so there is nothing to match.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.banks.base import MemoryBank
from cleanset.errors import UserError
from cleanset.pipeline.ledger import write_parquet_atomic
from cleanset.pipeline.policy import Policy, decide
from cleanset.records import Match, Probe, Status
from cleanset.results.schema import ITEM_SCHEMA, MATCH_TYPE, match_row
from cleanset.results.store import REVISIONS_DIR, RunStore

CHANGES_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("change", pa.string(), nullable=False),  # newly_matched | no_longer_matched | verdict_changed
        pa.field("bank", pa.string()),
        pa.field("entry_id", pa.string()),
        pa.field("old_verdict", pa.string()),
        pa.field("new_verdict", pa.string()),
    ]
)
CHANGE_KINDS = ("newly_matched", "no_longer_matched", "verdict_changed")
# What the incremental path reads of each shard (hash columns, sizes and notes are carried over untouched).
DELTA_COLUMNS = ["key", "shard", "status", "verdict", "probes", "matches", "scores"]


@dataclass
class RematchResult:
    revision: int
    base_revision: int
    path: Path
    items: int
    matched_items: int  # items whose probes were matched (failed items are not)
    seconds: float
    changes: Counter[str] = field(default_factory=Counter)  # change kind -> rows
    transitions: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)  # (old, new) -> items
    examples: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    mode: str = "incremental"  # or "full": every probe against every bank (an allow bank changed, or asked for)
    entries_added: int = 0
    entries_removed: int = 0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def _bank_record(s: Any) -> dict[str, Any]:
    from cleanset.pipeline.scan import bank_record

    return bank_record(s)


def resolve_banks(
    manifest: dict[str, Any], names: Sequence[str], snapshots: Sequence[Any] | None = None
) -> tuple[list[Any], list[Any]]:
    """The run's banks with ``names`` replaced by their latest (or ``NAME@VERSION``) version, plus any new ones.

    ``snapshots`` (tests, the demo) stand in for the store's copies of the named banks.
    """
    from cleanset.banks.store import BankStore
    from cleanset.pipeline.scan import open_banks

    if not names and not snapshots:
        raise UserError("no bank given: pass --bank NAME for each list that has a new version")
    new = list(snapshots) if snapshots is not None else open_banks(names)
    if len({s.name for s in new}) != len(new):
        raise UserError("the same bank is given twice")
    by_name = {s.name: s for s in new}
    store = None
    out = []
    for b in manifest.get("banks") or []:
        if b["name"] in by_name:
            out.append(by_name.pop(b["name"]))
            continue
        store = store or BankStore.default()
        try:
            out.append(store.open(b["name"], int(b["version"])))
        except UserError as e:
            raise UserError(
                f"the run also used bank {b['name']!r} version {b['version']}, which the store cannot open ({e}); "
                "pass it with --bank too"
            ) from None
    out.extend(by_name.values())
    return out, new


def open_old(manifest: dict[str, Any], name: str) -> Any | None:
    """The version of ``name`` the run used, if the store still has it (None: re-match that bank in full)."""
    from cleanset.banks.store import BankStore

    rec = next((b for b in manifest.get("banks") or [] if b["name"] == name), None)
    if rec is None:
        return None
    try:
        return BankStore.default().open(name, int(rec["version"]))
    except UserError:
        return None


def _policy(manifest: dict[str, Any], snaps: Sequence[Any]) -> Policy:
    return Policy.from_dict(manifest.get("policy") or {}).with_allow_banks(s.name for s in snaps if s.allow)


def _sort_key(m: Match) -> tuple[str, str, str, int, str]:
    return (m.bank, m.signal, m.probe, m.distance, m.entry_id)


def rematch_table(table: pa.Table, matcher: Any, policy: Policy) -> tuple[pa.Table, list[dict[str, Any]]]:
    """One shard: new matches, verdicts and notes for its ok rows; returns the new table and its change rows."""
    status = table.column("status").to_pylist()
    old_verdicts = table.column("verdict").to_pylist()
    old_matches = table.column("matches").to_pylist()
    notes = table.column("notes").to_pylist()
    scores = table.column("scores").to_pylist()
    keys = table.column("key").to_pylist()
    shards = table.column("shard").to_pylist()
    ok_rows = [i for i, s in enumerate(status) if s == Status.OK]
    probes_col = table.column("probes").to_pylist()
    probe_lists = [
        [Probe(p["name"], p["signal"], p["value"], p["quality"]) for p in probes_col[i] or []] for i in ok_rows
    ]
    results = matcher.match_many(probe_lists) if ok_rows else []
    new_matches: list[list[dict[str, Any]]] = [m or [] for m in old_matches]
    new_verdicts = list(old_verdicts)
    new_notes = [list(n or []) for n in notes]
    changes: list[dict[str, Any]] = []
    for i, (matches, match_notes) in zip(ok_rows, results, strict=True):
        ms = sorted(matches, key=_sort_key)
        verdict = decide(Status.OK, ms, dict(scores[i] or []) or None, policy)
        new_matches[i] = [match_row(m) for m in ms]
        new_verdicts[i] = None if verdict is None else str(verdict)
        # The matcher's allow-bank notes are re-derived; the scan's own notes (e.g. metadata hashes) stay.
        kept_notes = [n for n in new_notes[i] if " is in allow bank " not in n]
        new_notes[i] = kept_notes + [n for n in match_notes if n not in kept_notes]
        old_v, new_v = old_verdicts[i], new_verdicts[i]
        before = {(m["bank"], m["entry_id"]) for m in old_matches[i] or []}
        after = {(m.bank, m.entry_id) for m in ms}
        base = {"key": keys[i], "shard": shards[i], "old_verdict": old_v, "new_verdict": new_v}
        changes += [{**base, "change": "newly_matched", "bank": b, "entry_id": e} for b, e in sorted(after - before)]
        changes += [
            {**base, "change": "no_longer_matched", "bank": b, "entry_id": e} for b, e in sorted(before - after)
        ]
        if old_v != new_v:
            changes.append({**base, "change": "verdict_changed", "bank": None, "entry_id": None})
    idx = {name: table.schema.get_field_index(name) for name in ("matches", "verdict", "notes")}
    out = table
    out = out.set_column(idx["matches"], ITEM_SCHEMA.field("matches"), pa.array(new_matches, pa.list_(MATCH_TYPE)))
    out = out.set_column(idx["verdict"], ITEM_SCHEMA.field("verdict"), pa.array(new_verdicts, pa.string()))
    out = out.set_column(idx["notes"], ITEM_SCHEMA.field("notes"), pa.array(new_notes, pa.list_(pa.string())))
    return out, changes


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def rematch(
    run: Path,
    bank_names: Sequence[str],
    snapshots: Sequence[Any] | None = None,
    max_examples: int = 20,
    full: bool = False,
) -> RematchResult:
    """Write the next revision of ``run`` with the named banks at their new versions; see the module docstring."""
    from cleanset.matching.matcher import BankMatcher
    from cleanset.results.summary import summarize

    t0 = time.perf_counter()
    store = RunStore(run)
    base_rev = store.latest_revision()
    manifest = store.manifest_of(base_rev)
    base_summary = store.summary_of(base_rev)
    snaps, named = resolve_banks(manifest, bank_names, snapshots)
    policy = _policy(manifest, snaps)
    gate = int(manifest.get("quality_gate", 50))
    was_allow = {b["name"] for b in manifest.get("banks") or [] if b.get("allow")}
    # An allow bank that changes can un-suppress or suppress probes of every other bank: match everything again.
    used = {(b["name"], int(b["version"]), b.get("digest") or "") for b in manifest.get("banks") or []}
    # A bank given at the version (and content) the run already used has not changed: nothing to re-match.
    named = [s for s in named if (s.name, int(s.version), s.digest or "") not in used]
    if full or any(s.allow or s.name in was_allow for s in named):
        mode = "full"
        matcher = BankMatcher.build(snaps, quality_gate=gate)
    else:
        mode = "incremental"
        deltas = [bank_delta(open_old(manifest, s.name), s) for s in named]
        allow_indexes = _indexes([s for s in snaps if s.allow], gate)
        requery_indexes = {
            d.snapshot.name: _indexes(
                [
                    MemoryBank(
                        d.snapshot.name,
                        d.snapshot.version,
                        dict(d.requery),
                        {sig: d.snapshot.threshold(sig) for sig in d.requery},
                    )
                ],
                gate,
            )
            for d in deltas
            if d.requery
        }

    revisions = run / REVISIONS_DIR
    revisions.mkdir(exist_ok=True)
    existing = [int(p.name) for p in revisions.iterdir() if p.name.isdigit()]
    rev = max([base_rev, *existing]) + 1
    tmp = revisions / f".tmp-{rev}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "items").mkdir(parents=True)

    result = RematchResult(rev, base_rev, revisions / str(rev), 0, 0, 0.0, mode=mode)
    if mode == "incremental":
        result.entries_added = sum(d.added for d in deltas)
        result.entries_removed = sum(d.removed for d in deltas)

    def one_shard(f: Path) -> tuple[int, int, list[dict[str, Any]]]:
        target = tmp / "items" / f.name
        if mode == "full":
            table = pq.read_table(f, schema=ITEM_SCHEMA)
            new, changes = rematch_table(table, matcher, policy)
        else:
            # Only the columns matching needs; a shard nothing changed in is linked, not rewritten, so a list
            # update that touches a few items costs a read of the probes, not a copy of the run.
            table = pq.read_table(f, columns=DELTA_COLUMNS)
            part, changes = rematch_table_delta(table, deltas, allow_indexes, requery_indexes, policy, gate)
            if part is table:
                _link_or_copy(f, target)
            else:
                rest = pq.read_table(f, columns=[c for c in ITEM_SCHEMA.names if c not in DELTA_COLUMNS])
                cols = {c: part.column(c) for c in DELTA_COLUMNS} | {c: rest.column(c) for c in rest.column_names}
                new = pa.Table.from_arrays([cols[c] for c in ITEM_SCHEMA.names], schema=ITEM_SCHEMA)
        if mode == "full" or part is not table:
            write_parquet_atomic(target, new)
        ok = int(pc.sum(pc.equal(table.column("status"), str(Status.OK))).as_py() or 0)
        return table.num_rows, ok, changes

    # One shard after another: threads over shards measured slower (the index kernels already use the cores).
    all_changes: list[dict[str, Any]] = []
    for n, ok, changes in map(one_shard, store.item_files(base_rev)):
        result.items += n
        result.matched_items += ok
        all_changes += changes
    for c in all_changes:
        if c["change"] == "verdict_changed":
            result.transitions[(c["old_verdict"], c["new_verdict"])] += 1
    pq.write_table(pa.Table.from_pylist(all_changes, schema=CHANGES_SCHEMA), tmp / "changes.parquet")
    result.changes = Counter(c["change"] for c in all_changes)
    result.examples = all_changes[:max_examples]

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bank_records = [_bank_record(s) for s in snaps]
    new_manifest = dict(manifest)
    new_manifest["banks"] = bank_records
    new_manifest["policy"] = policy.to_dict()
    new_manifest["revision"] = {
        "number": rev,
        "base": base_rev,
        "created": now,
        "rematched": sorted({s.name for s in (snapshots or [])} | {n.partition("@")[0] for n in bank_names}),
        "previous_banks": [{"name": b["name"], "version": b["version"]} for b in manifest.get("banks") or []],
    }
    _write_json(tmp / "manifest.json", new_manifest)
    summary = summarize(sorted((tmp / "items").glob("*.parquet")))
    result.seconds = time.perf_counter() - t0
    summary.update(
        banks=[{"name": b["name"], "version": b["version"]} for b in bank_records],
        shards=base_summary.get("shards"),
        started=base_summary.get("started"),
        finished=base_summary.get("finished"),
        elapsed_s=base_summary.get("elapsed_s"),
        revision=rev,
        base_revision=base_rev,
        rematched_at=now,
        rematch_elapsed_s=round(result.seconds, 3),
        rematch_mode=mode,
        changes={k: int(result.changes.get(k, 0)) for k in CHANGE_KINDS},
    )
    for k in ("items", "failed"):  # rematch only re-decides ok items; anything else is a bug, never written
        if summary[k] != base_summary.get(k, summary[k]):
            shutil.rmtree(tmp)
            raise AssertionError(f"rematch changed the {k} count: {base_summary.get(k)} -> {summary[k]}")
    _write_json(tmp / "summary.json", summary)
    os.replace(tmp, result.path)
    result.summary = summary
    return result


# ---------------------------------------------------------------------------------------------------------------
# Incremental path. Lists change by a few entries between versions, so instead of matching every probe against the
# whole new list, only the entries that are new (or whose id changed) are matched, old matches of removed ids are
# dropped and all others are kept. The rules are the matcher's (one match per (bank, entry id): smallest distance,
# then earliest probe; gated PDQ probes only at distance 0; probes inside an allow bank match nothing), so the
# result is what a full match gives; tests compare the two, and with a fresh scan.
# ---------------------------------------------------------------------------------------------------------------


def _link_or_copy(src: Path, dst: Path) -> None:
    """A revision's unchanged shard: a hard link to the base file (never edited in place), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


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
        (s in old.signals()) != (s in new.signals()) or old.threshold(s) != new.threshold(s)
        for s in signals
        if s in old.signals() and s in new.signals()
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


_HEX = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX[_c] = 10 + _i


def hex_rows(values: pa.Array, nbytes: int, what: str) -> np.ndarray:
    """Fixed-width hex strings to (n, nbytes) uint8 rows without a Python loop; a malformed value is named."""
    values = values.cast(pa.large_string()) if values.type != pa.large_string() else values
    n = len(values)
    lengths = pc.utf8_length(values).to_numpy(zero_copy_only=False) if n else np.zeros(0, np.int64)
    if n and (values.null_count or (lengths != 2 * nbytes).any()):
        bad = int(np.flatnonzero(lengths != 2 * nbytes)[0]) if (lengths != 2 * nbytes).any() else 0
        raise UserError(f"{what}: probe value {values[bad].as_py()!r} is not {2 * nbytes} hex digits")
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset : values.offset + n + 1]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]] if n else np.zeros(0, np.uint8)
    nib = _HEX[data.reshape(n, 2 * nbytes)]
    if (nib == 255).any():
        raise UserError(f"{what}: probe value is not hex")
    return (nib[:, 0::2] << 4) | nib[:, 1::2]


@dataclass
class FlatProbes:
    """The probes of one shard's ok items as columns: row, position within the item, name, signal, value, gate."""

    item: np.ndarray
    pos: np.ndarray
    signal: np.ndarray  # int32 code per probe into ``signals``
    signals: list[str]
    gated: np.ndarray
    names: pa.Array
    values: pa.Array

    @classmethod
    def of(cls, table: pa.Table, quality_gate: int) -> FlatProbes:
        from cleanset.matching.matcher import QUALITY_GATED_SIGNALS

        lists = table.column("probes").combine_chunks()
        flat = lists.flatten()
        item = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = lists.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        pos = np.arange(len(flat), dtype=np.int64) + offsets[0] - offsets[item] if len(flat) else item
        ok = (table.column("status").to_numpy(zero_copy_only=False) == str(Status.OK))[item] if len(flat) else item
        keep = np.flatnonzero(ok)
        if len(keep) != len(flat):  # failed items hold no probes, so this is rare
            flat = flat.take(pa.array(keep))
        # Dictionary codes: a few distinct signal names over millions of probes, compared as integers.
        enc = pc.dictionary_encode(flat.field("signal"))
        enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
        signals = [str(x) for x in enc.dictionary.to_pylist()]
        signal = enc.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        quality = flat.field("quality").fill_null(32767).to_numpy(zero_copy_only=False)
        gated_codes = [i for i, name in enumerate(signals) if name in QUALITY_GATED_SIGNALS]
        gated = np.isin(signal, gated_codes) & (quality < quality_gate)
        return cls(item[keep], pos[keep], signal, signals, gated, flat.field("name"), flat.field("value"))

    def hits(self, index: Any, signal: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(flat row, entry row, distance) of every probe of ``signal`` within the index's threshold."""
        from cleanset.signals import get_signal

        if signal not in self.signals:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = np.flatnonzero(self.signal == self.signals.index(signal))
        if not len(rows):
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        arr = hex_rows(self.values.take(pa.array(rows)), get_signal(signal).bits // 8, signal)
        out_r, out_e, out_d = [], [], []
        for sel, threshold in ((~self.gated[rows], index.threshold), (self.gated[rows], 0)):
            sub = np.flatnonzero(sel)
            if len(sub):
                pr, er, dr = index.index.query(arr[sub], threshold)
                out_r.append(rows[sub[pr]])
                out_e.append(er)
                out_d.append(dr)
        if not out_r:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(out_r), np.concatenate(out_e), np.concatenate(out_d)


def _indexes(snaps: Sequence[Any], quality_gate: int) -> list[Any]:
    from cleanset.matching.matcher import BankMatcher

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
    suppressed = np.zeros(len(probes.item), dtype=bool)
    for b in allow_indexes:
        r, _, _ = probes.hits(b, b.signal)
        suppressed[r] = True
    # New hits: item -> (bank, id) -> (distance, pos, Match)
    new_best: dict[int, dict[tuple[str, str], tuple[int, int, Match]]] = {}
    for bank, idxs in requery_indexes.items():
        for b in idxs:
            r, e, d = probes.hits(b, b.signal)
            keep = ~suppressed[r]
            r, e, d = r[keep], e[keep], d[keep]
            if not len(r):
                continue
            names = probes.names.take(pa.array(r)).to_pylist()
            for row, er, dist, name in zip(r.tolist(), e.tolist(), d.tolist(), names, strict=True):
                item, pos = int(probes.item[row]), int(probes.pos[row])
                eid = b.entry_ids[er]
                cur = new_best.setdefault(item, {}).get((bank, eid))
                if cur is None or (dist, pos) < cur[:2]:
                    new_best[item][(bank, eid)] = (dist, pos, Match(bank, b.version, eid, b.signal, dist, name))
    old_matches = table.column("matches").to_pylist()
    touched = set(new_best) | {i for i, ms in enumerate(old_matches) if ms and any(m["bank"] in changed for m in ms)}
    status = table.column("status").to_pylist()
    touched = {i for i in touched if status[i] == Status.OK}
    verdicts = table.column("verdict").to_pylist()
    new_verdicts = list(verdicts)
    new_matches = list(old_matches)
    keys, shards, scores = table.column("key"), table.column("shard"), table.column("scores")
    changes: list[dict[str, Any]] = []
    lists = table.column("probes")
    for i in sorted(touched):
        names = [p["name"] for p in lists[i].as_py() or []]
        pos_of = {n: k for k, n in reversed(list(enumerate(names)))}
        best: dict[tuple[str, str], tuple[int, int, Match]] = {}
        for m in old_matches[i] or []:
            delta = changed.get(m["bank"])
            if delta is not None and (delta.dropped_ids is None or m["entry_id"] in delta.dropped_ids):
                continue
            version = delta.snapshot.version if delta is not None else m["version"]
            mm = Match(m["bank"], version, m["entry_id"], m["signal"], m["distance"], m["probe"])
            best[(m["bank"], m["entry_id"])] = (m["distance"], pos_of.get(m["probe"], 1 << 30), mm)
        for k, cand in new_best.get(i, {}).items():
            cur = best.get(k)
            if cur is None or cand[:2] < cur[:2]:
                best[k] = cand
        ms = sorted((t[2] for t in best.values()), key=_sort_key)
        verdict = decide(Status.OK, ms, dict(scores[i].as_py() or []) or None, policy)
        new_matches[i] = [match_row(m) for m in ms]
        new_verdicts[i] = None if verdict is None else str(verdict)
        before = {(m["bank"], m["entry_id"]) for m in old_matches[i] or []}
        after = {(m.bank, m.entry_id) for m in ms}
        base = {
            "key": keys[i].as_py(),
            "shard": shards[i].as_py(),
            "old_verdict": verdicts[i],
            "new_verdict": new_verdicts[i],
        }
        changes += [{**base, "change": "newly_matched", "bank": b, "entry_id": e} for b, e in sorted(after - before)]
        changes += [
            {**base, "change": "no_longer_matched", "bank": b, "entry_id": e} for b, e in sorted(before - after)
        ]
        if verdicts[i] != new_verdicts[i]:
            changes.append({**base, "change": "verdict_changed", "bank": None, "entry_id": None})
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
    return out, changes
