"""Everything a report shows, as plain data: ``report.json`` is this dict and ``report.html`` renders it.

Built only from the run's own records (summary, manifest, ledger, item rows); nothing here opens an image, and no
bank value can appear because runs never store one (matches are named by bank, version, entry id and distance).
The item's own hashes are left out too: a reader of the report needs keys, not hashes.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cleanset.results.store import RunStore

REPORT_VERSION = 1
SCORE_BINS = 20


def _nonempty(col: pa.ChunkedArray) -> pa.Array:
    """Rows whose list (or map) holds anything; from the offsets, so no row becomes a Python object."""
    parts = [np.diff(c.offsets.to_numpy(zero_copy_only=False)) > 0 for c in col.chunks]
    return pa.array(np.concatenate(parts) if parts else np.zeros(0, dtype=bool))


def _counting(matches: list[dict[str, Any]], allow: set[str]) -> list[dict[str, Any]]:
    return [m for m in matches if m["bank"] not in allow]


def _best(matches: list[dict[str, Any]]) -> dict[str, Any] | None:
    return min(matches, key=lambda m: (m["distance"], m["bank"], m["entry_id"], m["probe"])) if matches else None


def flagged_rows(items: pa.Table, allow: set[str]) -> list[dict[str, Any]]:
    """One row per removed or review item, naming the closest counting match (or the score that flagged it).

    Only flagged rows become Python objects: a run of millions of kept items costs one Arrow filter here."""
    flagged = items.filter(pc.is_in(items.column("verdict"), value_set=pa.array(["remove", "review"])))
    cols = flagged.select(["key", "shard", "verdict", "matches", "scores"]).to_pylist()
    out = []
    for r in cols:
        if r["verdict"] not in ("remove", "review"):
            continue
        best = _best(_counting(r["matches"] or [], allow))
        if best is not None:
            reason = f"{best['signal']} match"
        else:
            scores = dict(r["scores"] or [])
            top = max(scores.items(), key=lambda kv: kv[1]) if scores else None
            reason = f"score {top[0]}={top[1]:.3f}" if top else "policy"
        out.append(
            {
                "key": r["key"],
                "shard": r["shard"],
                "verdict": r["verdict"],
                "reason": reason,
                "bank": best["bank"] if best else None,
                "version": best["version"] if best else None,
                "entry_id": best["entry_id"] if best else None,
                "signal": best["signal"] if best else None,
                "probe": best["probe"] if best else None,
                "distance": best["distance"] if best else None,
            }
        )
    out.sort(key=lambda r: (r["verdict"] != "remove", r["shard"], r["key"]))
    return out


def pdq_distance_histogram(items: pa.Table, allow: set[str]) -> dict[str, Any]:
    """One count per matched item at its closest PDQ distance: an item hit by eight rotations still counts once."""
    best: list[int] = []
    matched = items.filter(_nonempty(items.column("matches")))
    for ms in matched.column("matches").to_pylist():
        d = [m["distance"] for m in _counting(ms or [], allow) if m["signal"] == "pdq"]
        if d:
            best.append(min(d))
    top = max([*best, 0])
    counts = Counter(best)
    return {"distance": list(range(top + 1)), "items": [counts.get(i, 0) for i in range(top + 1)]}


def score_histograms(items: pa.Table) -> dict[str, dict[str, Any]]:
    by_name: dict[str, list[float]] = {}
    scored = items.filter(_nonempty(items.column("scores")))
    for sc in scored.column("scores").to_pylist():
        for name, value in sc or []:
            if value is not None:
                by_name.setdefault(name, []).append(float(value))
    out = {}
    for name, values in sorted(by_name.items()):
        arr = np.asarray(values, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            hi = lo + 1.0
        counts, edges = np.histogram(arr, bins=SCORE_BINS, range=(lo, hi))
        out[name] = {"edges": [round(float(e), 6) for e in edges], "items": counts.tolist(), "n": int(arr.size)}
    return out


def _ts(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def progress(ledger: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shards in commit order with the running total: how the scan advanced over time."""
    rows = sorted(ledger, key=lambda e: (e.get("committed_at") or "", str(e.get("shard"))))
    t0 = _ts(rows[0].get("committed_at")) if rows else None
    total = 0
    out = []
    for e in rows:
        total += int(e.get("items", 0))
        t = _ts(e.get("committed_at"))
        out.append(
            {
                "shard": e.get("shard"),
                "items": int(e.get("items", 0)),
                "committed_at": e.get("committed_at"),
                "seconds": None if t is None or t0 is None else round(t - t0, 3),
                "elapsed_s": e.get("elapsed_s"),
                "cumulative_items": total,
            }
        )
    return out


def _bank_public(b: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies a list version; the manifest never holds values, but keep the report's fields fixed."""
    return {k: b.get(k) for k in ("name", "version", "allow", "entry_count", "digest", "thresholds") if k in b}


def build_report(run: Path, revision: int | None = None) -> dict[str, Any]:
    store = RunStore(run)
    rev = store.latest_revision() if revision is None else revision
    m, s, items = store.manifest_of(rev), store.summary_of(rev), store.items_table(rev)
    allow = {b["name"] for b in m.get("banks") or [] if b.get("allow")}
    allow |= set((m.get("policy") or {}).get("allow_banks") or [])
    counts = {k: int(s.get(k, 0)) for k in ("items", "kept", "removed", "review", "failed")}
    return {
        "report_version": REPORT_VERSION,
        "run": {
            "revision": rev,
            "cleanset_version": m.get("cleanset_version"),
            "created": m.get("created"),
            "format": m.get("format"),
            "sources": [Path(p).name for p in m.get("sources") or []],
            "fingerprint": m.get("fingerprint"),
            "signals": m.get("signals"),
            "probes": m.get("probes"),
            "quality_gate": m.get("quality_gate"),
            "policy": m.get("policy"),
            "started": s.get("started"),
            "finished": s.get("finished"),
            "elapsed_s": s.get("elapsed_s"),
            "shards": s.get("shards"),
        },
        "counts": counts,
        "banks": [_bank_public(b) for b in m.get("banks") or []],
        "matches_by_bank": dict(sorted((s.get("matches_by_bank") or {}).items())),
        "matches_by_probe": dict(sorted((s.get("matches_by_probe") or {}).items())),
        "failures_by_reason": dict(sorted((s.get("failures_by_reason") or {}).items(), key=lambda kv: -kv[1])),
        "pdq_distance": pdq_distance_histogram(items, allow),
        "progress": progress(store.ledger()),
        "scores": score_histograms(items),
        "flagged": flagged_rows(items, allow),
    }
