"""Hand-built run directories in the scan's on-disk layout, for testing report/attest before (and beside) the
real scanner: items through ``results.schema.to_table``, counts through ``results.summary.summarize``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.results.schema import to_table
from cleanset.results.summary import summarize

# A value that looks like a list entry; tests assert it never reaches a report.
SECRET_BANK_VALUE = "f" * 56 + "0badc0de"


def item(
    key: str,
    shard: str,
    verdict: Verdict | None,
    *,
    matches: Sequence[Match] = (),
    reason: str | None = None,
    scores: dict[str, float] | None = None,
    sha256: str | None = None,
) -> ItemResult:
    status = Status.FAILED if verdict is None else Status.OK
    hashes = {} if verdict is None else {"sha256": sha256 or hashlib.sha256(key.encode()).hexdigest(), "pdq": "ab" * 32}
    probes = [] if verdict is None else [Probe("pdq/original", "pdq", "ab" * 32, 90), Probe("md5", "md5", "cd" * 16)]
    return ItemResult(
        key=key,
        shard=shard,
        status=status,
        reason=reason,
        verdict=verdict,
        hashes=hashes,
        probes=probes,
        matches=list(matches),
        scores=scores or {},
    )


def write_run(
    run: Path,
    results: Sequence[ItemResult],
    banks: Sequence[dict[str, Any]] = (),
    policy: dict[str, Any] | None = None,
    commit_times: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write manifest, items, ledger and summary like a finished scan; returns the summary."""
    (run / "items").mkdir(parents=True)
    (run / "ledger").mkdir()
    shards: dict[str, list[ItemResult]] = {}
    for r in results:
        shards.setdefault(r.shard, []).append(r)
    for i, (sid, rows) in enumerate(sorted(shards.items())):
        table = to_table(rows)
        pq.write_table(table, run / "items" / f"{sid}.parquet")
        s = summarize(table)
        entry = {
            "shard": sid,
            "path": f"/data/{sid}",
            **{k: s[k] for k in ("items", "kept", "removed", "review", "failed")},
            "committed_at": (commit_times or {}).get(sid, f"2026-01-01T00:00:{10 + 7 * i:02d}Z"),
            "elapsed_s": 1.5,
        }
        (run / "ledger" / f"{sid}.json").write_text(json.dumps(entry))
    manifest = {
        "cleanset_version": "0.1.0",
        "created": "2026-01-01T00:00:00Z",
        "sources": ["/data/photos"],
        "format": "folder",
        "banks": list(banks),
        "signals": ["md5", "sha256", "pdq"],
        "probes": {"dihedral": True, "regions": False},
        "quality_gate": 50,
        "policy": policy or {"review_above": None, "bank_actions": {}, "allow_banks": [], "score_review": {}},
        "fingerprint": "0" * 64,
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    summary = summarize(to_table(list(results)))
    summary.update(
        banks=[{"name": b["name"], "version": b["version"]} for b in banks],
        shards={"total": len(shards), "committed": len(shards)},
        started="2026-01-01T00:00:00Z",
        finished="2026-01-01T00:01:00Z",
        elapsed_s=60.0,
    )
    (run / "summary.json").write_text(json.dumps(summary))
    return summary


def bank(name: str, version: int = 1, entries: int = 3, allow: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "allow": allow,
        "entry_count": entries,
        "digest": "sha256:" + "1" * 64,
        "thresholds": {"pdq": 31},
    }
