"""Re-matching a run's stored probes against new bank versions, without reading a single image.

A scan stores every probe it matched (the item's own hashes, per view: rotations, flips, regions), so when a list
gains or loses entries the verdicts can be brought up to date from the results alone. The new decision is taken
by the same ``cleanset.assess`` with the run's stored policy, and matching uses every bank of the run (the
named ones at their new version, the others at the version the run used), so allow banks keep suppressing exactly
as in a fresh scan and the result equals what scanning again with those versions would give.

The outcome is a new revision ``RUN/revisions/<n>/`` (items, summary, manifest with the new bank versions, and
``changes.parquet``) written under a temporary name and renamed, so a revision is either complete or absent.
Failed items stay failed (verdict none), but the file digests a failed item still has are matched again, as a scan
matches them, so an unreadable file on a new list is known to be listed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.assess import Policy, assess_many
from cleanset.atomic import atomic_output, make_dirs, sweep_dead
from cleanset.banks.base import MemoryBank
from cleanset.errors import UserError
from cleanset.records import Probe, Status
from cleanset.results.changes import CHANGE_KINDS, CHANGES_SCHEMA, change_rows
from cleanset.results.rematch_delta import (
    DELTA_COLUMNS,
    bank_delta,
    indexes_for,
    old_rules,
    rematch_table_delta,
    with_rules,
)
from cleanset.runs.layout import RunDir
from cleanset.runs.parquet import write_parquet_atomic
from cleanset.runs.schema import ITEM_SCHEMA, MATCH_TYPE, match_row, read_items, with_full_probes
from cleanset.runs.store import REVISIONS_DIR, RunStore
from cleanset.signals import DEFAULT_QUALITY_GATE


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
    from cleanset.runs.banks import bank_record

    return bank_record(s)


def resolve_banks(
    manifest: dict[str, Any], names: Sequence[str], snapshots: Sequence[Any] | None = None
) -> tuple[list[Any], list[Any]]:
    """The run's banks with ``names`` replaced by their latest (or ``NAME@VERSION``) version, plus any new ones.

    ``snapshots`` (tests, the demo) stand in for the store's copies of the named banks.
    """
    from cleanset.banks.store import BankStore
    from cleanset.runs.banks import open_banks

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
    """The run's policy, with the allow banks its policy file named, plus those of the bank set now in use that are
    allow lists (a store's allow list re-imported as a block list stops being one; a policy file's stays)."""
    policy = Policy.from_dict(manifest.get("policy") or {})
    store_allow_then = {b["name"] for b in manifest.get("banks") or [] if b.get("allow")}
    from_policy = policy.allow_banks - store_allow_then
    return replace(policy, allow_banks=frozenset(from_policy | {s.name for s in snaps if s.allow}))


def rematch_table(table: pa.Table, matcher: Any, policy: Policy) -> tuple[pa.Table, list[dict[str, Any]]]:
    """One shard: new matches, verdicts and notes for its ok rows; returns the new table and its change rows."""
    status = table.column("status").to_pylist()
    old_verdicts = table.column("verdict").to_pylist()
    old_matches = table.column("matches").to_pylist()
    notes = table.column("notes").to_pylist()
    scores = table.column("scores").to_pylist()
    keys = table.column("key").to_pylist()
    shards = table.column("shard").to_pylist()
    probes_col = with_full_probes(table).column("probes").to_pylist()
    ok_rows = [i for i, s in enumerate(status) if s == Status.OK or probes_col[i]]
    probe_lists = [
        [Probe(p["name"], p["signal"], p["value"], p["quality"]) for p in probes_col[i] or []] for i in ok_rows
    ]
    assessed = assess_many(
        probe_lists,
        matcher,
        policy,
        statuses=[Status(status[i]) for i in ok_rows],
        scores=[dict(scores[i] or []) or None for i in ok_rows],
    )
    new_matches: list[list[dict[str, Any]]] = [m or [] for m in old_matches]
    new_verdicts = list(old_verdicts)
    new_notes = [list(n or []) for n in notes]
    new_rules = old_rules(table)
    changes: list[dict[str, Any]] = []
    for i, a in zip(ok_rows, assessed, strict=True):
        ms, match_notes, verdict = list(a.matches), a.notes, a.verdict  # matches in the matcher's own order
        new_matches[i] = [match_row(m) for m in ms]
        new_verdicts[i] = None if verdict is None else str(verdict)
        new_rules[i] = list(a.rules)
        # The matcher's allow-bank notes are re-derived; the scan's own notes (e.g. metadata hashes) stay.
        kept_notes = [n for n in new_notes[i] if " is in allow bank " not in n]
        new_notes[i] = kept_notes + [n for n in match_notes if n not in kept_notes]
        changes += change_rows(keys[i], shards[i], old_matches[i], ms, old_verdicts[i], new_verdicts[i])
    idx = {name: table.schema.get_field_index(name) for name in ("matches", "verdict", "notes")}
    out = table
    out = out.set_column(idx["matches"], ITEM_SCHEMA.field("matches"), pa.array(new_matches, pa.list_(MATCH_TYPE)))
    out = out.set_column(idx["verdict"], ITEM_SCHEMA.field("verdict"), pa.array(new_verdicts, pa.string()))
    out = out.set_column(idx["notes"], ITEM_SCHEMA.field("notes"), pa.array(new_notes, pa.list_(pa.string())))
    return with_rules(out, new_rules), changes


def _link_or_copy(src: Path, dst: Path) -> None:
    """A revision's unchanged shard: a hard link to the base file (never edited in place), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_output(path) as tmp:  # owner-only inside the run (cleanset.atomic)
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class _Job:
    """What re-matching one shard needs, whichever process does it: the full matcher, or the changed entries'
    indexes. On Ray it is put into the object store once (its indexes are NumPy arrays, shared per node)."""

    mode: str
    policy: Policy
    gate: int
    matcher: Any = None
    deltas: Sequence[Any] = ()
    allow_indexes: Any = None
    requery_indexes: Any = None


def _rematch_file(f: Path, target: Path, job: _Job) -> tuple[int, int, list[dict[str, Any]]]:
    """One shard's items file into the new revision: (items, ok items, changes)."""
    if job.mode == "full":
        table = read_items(f)
        new, changes = rematch_table(table, job.matcher, job.policy)
    else:
        # Only the columns matching needs; a shard nothing changed in is linked, not rewritten, so a list
        # update that touches a few items costs a read of the probes, not a copy of the run.
        table = read_items(f, DELTA_COLUMNS)
        part, changes = rematch_table_delta(
            table, job.deltas, job.allow_indexes, job.requery_indexes, job.policy, job.gate
        )
        if part is table:
            _link_or_copy(f, target)
        else:
            rest = read_items(f, [c for c in ITEM_SCHEMA.names if c not in DELTA_COLUMNS])
            cols = {c: part.column(c) for c in DELTA_COLUMNS} | {c: rest.column(c) for c in rest.column_names}
            new = pa.Table.from_arrays([cols[c] for c in ITEM_SCHEMA.names], schema=ITEM_SCHEMA)
    if job.mode == "full" or part is not table:
        write_parquet_atomic(target, new)
    ok = int(pc.sum(pc.equal(table.column("status"), str(Status.OK))).as_py() or 0)
    return table.num_rows, ok, changes


def _on_ray(
    files: Sequence[Path], items_dir: Path, job: _Job, workers: int | None
) -> list[tuple[int, int, list[dict[str, Any]]]]:
    """One Ray task per shard file, the job put into the object store once. Paths travel: the run folder must be
    one every node sees (a shared file system; a run on object storage is re-matched in the driver's working copy,
    so on a cluster of several nodes that copy must be shared too). A failed task is tried once more (the scan's
    rule); a second failure stops the rematch and no revision is written: a revision is complete or absent."""
    from cleanset.cluster import ensure_ray, forwarded_env, import_ray

    ray = import_ray()
    ensure_ray(None, workers)
    job_ref = ray.put(job)
    task = ray.remote(num_cpus=1, max_retries=1, retry_exceptions=True)(_remote_file)
    refs = [task.remote(f, items_dir / f.name, job_ref, forwarded_env()) for f in files]
    try:
        out: list[tuple[int, int, list[dict[str, Any]]]] = ray.get(refs)
    except ray.exceptions.RayError as e:
        raise UserError(f"rematch on Ray failed (no revision written): {' '.join(str(e).split())[:500]}") from None
    return out


def _remote_file(f: Path, target: Path, job: _Job, env: dict[str, str]) -> tuple[int, int, list[dict[str, Any]]]:
    os.environ.update(env)
    return _rematch_file(f, target, job)


def rematch(
    run: Path | str,
    bank_names: Sequence[str],
    snapshots: Sequence[Any] | None = None,
    max_examples: int = 20,
    full: bool = False,
    executor: str = "local",
    workers: int | None = None,
) -> RematchResult:
    """Write the next revision of ``run`` with the named banks at their new versions; see the module docstring.

    ``executor``: ``local`` (this process: the index kernels already use the cores) or ``ray`` (one task per
    shard file on the cluster Ray's ``RAY_ADDRESS`` names, or a local instance with ``workers`` CPUs)."""
    if executor not in ("local", "inline", "ray"):
        raise UserError(f"rematch runs on executor local or ray, not {executor!r}")
    from cleanset.matching.matcher import BankMatcher
    from cleanset.runs.summary import summarize

    t0 = time.perf_counter()
    run_dir = RunDir.at(run)  # a run on object storage: its working copy, pulled from the store
    run = run_dir.path
    store = RunStore(run)
    base_rev = store.latest_revision()
    manifest = store.manifest_of(base_rev)
    base_summary = store.summary_of(base_rev)
    snaps, named = resolve_banks(manifest, bank_names, snapshots)
    policy = _policy(manifest, snaps)
    gate = int(manifest.get("quality_gate", DEFAULT_QUALITY_GATE))
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
        allowindexes_for = indexes_for([s for s in snaps if s.allow], gate)
        requeryindexes_for = {
            d.snapshot.name: indexes_for(
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
    make_dirs(revisions)  # owner-only like the run
    existing = [int(p.name) for p in revisions.iterdir() if p.name.isdigit()]
    rev = max([base_rev, *existing]) + 1
    sweep_dead(revisions, ".tmp-")  # half-built revisions of killed rematches hold the run's hashes
    tmp = revisions / f".tmp-{rev}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    make_dirs(tmp / "items")

    result = RematchResult(rev, base_rev, revisions / str(rev), 0, 0, 0.0, mode=mode)
    if mode == "incremental":
        result.entries_added = sum(d.added for d in deltas)
        result.entries_removed = sum(d.removed for d in deltas)

    if mode == "full":
        job = _Job(mode, policy, gate, matcher=matcher)
    else:
        job = _Job(
            mode, policy, gate, deltas=deltas, allow_indexes=allowindexes_for, requery_indexes=requeryindexes_for
        )
    files = list(store.item_files(base_rev))
    if executor == "ray":
        try:
            parts = _on_ray(files, tmp / "items", job, workers)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        # One shard after another: threads over shards measured slower (the index kernels already use the cores).
        parts = [_rematch_file(f, tmp / "items" / f.name, job) for f in files]
    all_changes: list[dict[str, Any]] = []
    for n, ok, changes in parts:
        result.items += n
        result.matched_items += ok
        all_changes += changes
    for c in all_changes:
        if c["change"] == "verdict_changed":
            result.transitions[(c["old_verdict"], c["new_verdict"])] += 1
    with atomic_output(tmp / "changes.parquet") as part:
        pq.write_table(pa.Table.from_pylist(all_changes, schema=CHANGES_SCHEMA), part)
    result.changes = Counter(c["change"] for c in all_changes)
    result.examples = all_changes[:max_examples]

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bank_records = [_bank_record(s) for s in snaps]
    new_manifest = dict(manifest)
    new_manifest["banks"] = bank_records
    # a screened run keeps its full rules and thresholds, so a later cleanset's defaults never re-judge it
    new_manifest["policy"] = policy.to_dict(full="screen" in manifest)
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
    run_dir.push_revision(rev)
    result.summary = summary
    return result
