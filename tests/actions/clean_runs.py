"""A scan run written by hand (manifest, items, ledger), so clean is tested without the scanner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from cleanset.records import ItemResult, Match, Status, Verdict
from cleanset.runs.schema import to_table
from cleanset.sources import Source
from cleanset.sources.base import content_digest

MATCH = Match(bank="standin", version=3, entry_id="entry-17", signal="md5", distance=0, probe="md5")


def verdict_by_index(i: int) -> tuple[Status, Verdict | None]:
    """Index 1 mod 5 removed, 2 mod 5 review, 3 mod 10 failed, the rest kept."""
    if i % 10 == 3:
        return Status.FAILED, None
    return Status.OK, {1: Verdict.REMOVE, 2: Verdict.REVIEW}.get(i % 5, Verdict.KEEP)


def write_run(
    run: Path,
    source: Source,
    decide: Callable[[int], tuple[Status, Verdict | None]] = verdict_by_index,
    skip_ledger: set[str] | None = None,
    drop_keys: set[str] | None = None,
) -> dict[str, tuple[Status, Verdict | None]]:
    """Results for every item of ``source`` (minus ``drop_keys``); returns key -> decision."""
    (run / "items").mkdir(parents=True)
    (run / "ledger").mkdir()
    (run / "manifest.json").write_text(json.dumps({"format": source.name, "sources": []}))
    decisions: dict[str, tuple[Status, Verdict | None]] = {}
    i = 0
    for shard in source.shards():
        results = []
        items = list(source.read(shard))
        digest = source.shard_digest(shard)  # the scan records it after reading the shard
        for item in items:
            status, verdict = decide(i)
            i += 1
            if drop_keys and item.key in drop_keys:
                continue
            decisions[item.key] = (status, verdict)
            results.append(
                ItemResult(
                    key=item.key,
                    shard=shard.id,
                    status=status,
                    reason="decode: broken on purpose" if status is Status.FAILED else None,
                    verdict=verdict,
                    hashes={"md5": "0" * 32},
                    content_sha256=content_digest(item) if item.error is None and source.item_content else None,
                    matches=[MATCH] if verdict is Verdict.REMOVE else [],
                )
            )
        pq.write_table(to_table(results), run / "items" / f"{shard.id}.parquet")
        if not skip_ledger or shard.id not in skip_ledger:
            entry = {"shard": shard.id, "items": len(results), "source_sha256": digest}
            (run / "ledger" / f"{shard.id}.json").write_text(json.dumps(entry))
    return decisions
