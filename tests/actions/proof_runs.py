"""Hand-built run directories in the scan's on-disk layout, for testing report/attest before (and beside) the
real scanner: items through ``runs.schema.to_table``, counts through ``runs.summary.summarize``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cleanset.records import ItemResult, Match, Probe, Status, Verdict
from cleanset.runs.schema import to_table
from cleanset.runs.summary import summarize

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
    content: str | None = None,
    url: str | None = None,
    signals_sha256: bool = True,
) -> ItemResult:
    """One result row. ``content`` is the content digest the scan records (``content_sha256``); by default the
    same as ``sha256`` for a screened item, none for a failed one. ``signals_sha256=False`` leaves the sha256
    signal out, as a scan run without it."""
    status = Status.FAILED if verdict is None else Status.OK
    sha = sha256 or hashlib.sha256(key.encode()).hexdigest()
    hashes = {} if verdict is None else {"pdq": "ab" * 32, **({"sha256": sha} if signals_sha256 else {})}
    probes = [] if verdict is None else [Probe("pdq/original", "pdq", "ab" * 32, 90), Probe("md5", "md5", "cd" * 16)]
    return ItemResult(
        key=key,
        shard=shard,
        status=status,
        reason=reason,
        verdict=verdict,
        hashes=hashes,
        url=url,
        content_sha256=content if content is not None or verdict is None or url is not None else sha,
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
    format: str = "folder",
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
        "format": format,
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


REMOVED_MATCH = Match("listA", 3, "E1", "md5", 0, "md5")


def cleaned_dataset(
    root: Path,
    fmt: str = "folder",
    n: int = 10,
    remove: Sequence[int] = (3, 7),
    review: Sequence[int] = (),
    keep_review: bool = False,
    extra: Sequence[ItemResult] = (),
    sha256_signal: bool = True,
) -> dict[str, Path]:
    """A benign dataset (``folder``: two sub-folders with captions; ``webdataset``: two shards), a hand-built run
    that removes (and sends to review) the items at those positions in reading order, and its real ``clean``.

    Returns ``src``, ``run`` and ``ds`` (the cleaned copy). ``extra`` rows go into the run as they are;
    ``sha256_signal=False`` makes it a run that did not ask for the sha256 signal (the content digest is recorded
    all the same).
    """
    from cleanset.actions.clean import clean
    from cleanset.sources import open_source
    from cleanset.sources.base import content_digest
    from cleanset.sources.synth import sample_items, write_folder, write_webdataset

    samples = sample_items(n, seed=3)
    src = root / "src"
    if fmt == "folder":
        write_folder(src, samples, subdirs=2, captions=True)
    else:
        write_webdataset(src, samples, per_shard=(n + 1) // 2)
    source = open_source([src], fmt)
    results = list(extra)
    read = [(shard, it) for shard in source.shards() for it in source.read(shard)]
    for i, (shard, it) in enumerate(read):
        verdict = Verdict.REMOVE if i in remove else Verdict.REVIEW if i in review else Verdict.KEEP
        matches = [REMOVED_MATCH] if verdict is Verdict.REMOVE else []
        results.append(
            item(it.key, shard.id, verdict, sha256=content_digest(it), matches=matches, signals_sha256=sha256_signal)
        )
    run = root / "run"
    write_run(run, results, banks=[bank("listA", 3, 5)], format=fmt)
    ds = root / "clean"
    clean([src], run, ds, keep_review=keep_review)
    return {"src": src, "run": run, "ds": ds}


def bank(name: str, version: int = 1, entries: int = 3, allow: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "allow": allow,
        "entry_count": entries,
        "digest": "sha256:" + "1" * 64,
        "thresholds": {"pdq": 31},
    }
