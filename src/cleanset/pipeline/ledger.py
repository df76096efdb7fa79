"""Committing one shard's results atomically, and knowing which shards are done.

Order matters: the items file is written under a temporary name, fsynced, renamed and the directory fsynced; only
then is the ledger entry written (the same way). A ledger entry therefore always points at a complete items file,
and a shard without one is simply redone; a ``kill -9`` at any moment loses at most the shards in flight.

A run on object storage (``RunDir.remote``) has no rename: the items file is committed in the local working copy,
then the items object and the ledger entry are uploaded (write-then-marker), and only then does the working copy's
ledger entry move into place. The store's ledger is the truth, and no local entry ever claims what it lacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cleanset import storage
from cleanset.atomic import fsync_dir, private_dir
from cleanset.runs.layout import RunDir, read_json, write_json_atomic
from cleanset.runs.parquet import write_parquet_atomic
from cleanset.sources.base import Shard

COUNT_KEYS = ("items", "kept", "removed", "review", "failed")


class CountMismatch(AssertionError):
    """A shard's counts do not add up: a bug, never committed."""


@dataclass(frozen=True)
class ShardCounts:
    items: int
    kept: int
    removed: int
    review: int
    failed: int

    @classmethod
    def of_table(cls, table: pa.Table) -> ShardCounts:
        """Counts from the committed columns themselves, so the ledger cannot disagree with the items file."""
        import pyarrow.compute as pc

        status = table.column("status")
        verdict = table.column("verdict")

        def n(col: pa.ChunkedArray, value: str) -> int:
            return int(pc.sum(pc.equal(col, value)).as_py() or 0)

        return cls(
            items=table.num_rows,
            kept=n(verdict, "keep"),
            removed=n(verdict, "remove"),
            review=n(verdict, "review"),
            failed=n(status, "failed"),
        )

    def check(self, where: str) -> None:
        if self.items != self.kept + self.removed + self.review + self.failed:
            raise CountMismatch(
                f"{where}: items {self.items} != kept {self.kept} + removed {self.removed} + review {self.review} "
                f"+ failed {self.failed}"
            )

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNT_KEYS}


def commit_shard(
    run: RunDir,
    shard: Shard,
    table: pa.Table,
    elapsed_s: float,
    timings: Mapping[str, float] | None = None,
    source_sha256: str | None = None,
) -> dict[str, Any]:
    """Write the shard's items then its ledger entry; returns the entry. Raises CountMismatch before writing
    anything when the counts do not add up. ``elapsed_s`` and ``timings`` include the commit itself."""
    counts = ShardCounts.of_table(table)
    counts.check(f"shard {shard.id}")
    t0, c0 = time.perf_counter(), time.process_time()
    if run.remote is not None:  # a worker on another node: its working copy of the run starts here
        for d in (run.items_dir, run.ledger_dir):
            private_dir(d)
    write_parquet_atomic(run.items_path(shard.id), table)
    write_s, write_cpu = time.perf_counter() - t0, time.process_time() - c0
    entry: dict[str, Any] = {
        "shard": shard.id,
        "path": shard.path,
        **counts.as_dict(),
        "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "elapsed_s": round(elapsed_s + write_s, 4),
    }
    if timings is not None:
        entry["timings"] = {**timings, "write_s": round(write_cpu, 4)}
    if source_sha256 is not None:  # the shard file the scan read (Source.shard_digest): clean checks it
        entry["source_sha256"] = source_sha256
    if run.remote is None:
        write_json_atomic(run.ledger_path(shard.id), entry)
    else:
        _commit_remote(run, shard.id, entry)
    return entry


def _commit_remote(run: RunDir, sid: str, entry: Mapping[str, Any]) -> None:
    """Write-then-marker on a store: the items object, then the ledger entry, and only then the working copy's own
    entry moves into place. The local entry is what this machine's executor settles a shard by, so it must never
    exist before the store holds the commit: a push still running, or failing, or cut by a SIGKILL, leaves no entry
    here, and the shard is an attempt that failed (retried under the one rule) or is redone on resume."""
    pending = run.ledger_dir / f".{sid}.pending"
    write_json_atomic(pending, entry)
    try:
        run.push(run.relative(run.items_path(sid)))
        storage.upload(pending, storage.join(str(run.remote), run.relative(run.ledger_path(sid))))
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, run.ledger_path(sid))
    os.utime(run.ledger_path(sid))  # committed now, not when the push began (executors time silence from here)
    fsync_dir(run.ledger_dir)


def committed(run: RunDir) -> dict[str, dict[str, Any]]:
    """Ledger entries by shard id, for shards whose items file is in place."""
    out: dict[str, dict[str, Any]] = {}
    if not run.ledger_dir.is_dir():
        return out
    for p in sorted(run.ledger_dir.glob("*.json")):
        entry = read_json(p)
        if run.items_path(entry["shard"]).is_file():
            out[entry["shard"]] = entry
    return out


def totals(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    return {k: sum(int(e[k]) for e in entries.values()) for k in COUNT_KEYS}
