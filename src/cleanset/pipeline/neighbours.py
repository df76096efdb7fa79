"""The neighbour pass: after a scan, items close to a hit in embedding space get a ``neighbour`` score and are judged
again, written as the run's next revision.

Why a revision and not part of the shard scan: which items are hits is known only when every shard is done, and a
committed shard is never edited (its ledger entry and digest say what it holds). So, like ``rematch``, the pass
writes ``RUN/revisions/<n>/`` with the shards it changed rewritten, the others linked, its own manifest (naming the
embeddings, k and threshold) and summary; the report and ``clean`` read the latest revision.

Alignment: embedding row ``i`` is the run's ``i``-th item, shards in natural order of their ids (``part-2`` before
``part-10``, as LAION's ``img_emb_<n>.npy`` follow ``metadata_<n>.parquet``), items in the order the scan read
them. A run whose item count differs from the embeddings' row count is refused: neighbours of the wrong item would be
worse than none. Embeddings from a column of the dataset's own files come per shard (``shard_embeddings`` reads the
file each shard was scanned from, as the ledger names it), and each shard's row count is checked on its own: equal
totals over files taken in another order would pair every row with the wrong item, silently.

Which items are hits is decided from their matches under the run's policy (``match_verdict``), not from a stored
``rules`` column that a rematch may have left behind. Running the pass again with the same embeddings, ``k`` and
threshold on the revision it wrote changes nothing and writes nothing (a resumed ``scan --embeddings``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cleanset.assess import Policy, judgement
from cleanset.assess.policy import match_verdict
from cleanset.atomic import atomic_output, make_dirs, sweep_dead
from cleanset.errors import UserError
from cleanset.records import Match, Status
from cleanset.runs.parquet import write_parquet_atomic
from cleanset.runs.schema import ITEM_SCHEMA, read_items
from cleanset.runs.store import REVISIONS_DIR, RunStore
from cleanset.runs.summary import summarize
from cleanset.screening.neighbours import (
    DEFAULT_K,
    DEFAULT_MIN_SIMILARITY,
    NEIGHBOUR_SCORE,
    Embeddings,
    find_neighbours,
    load_parquet_column,
    rows_of,
)

__all__ = ["NeighbourResult", "neighbour_pass", "shard_embeddings"]

NOTE = "neighbour of matched item"


@dataclass
class NeighbourResult:
    revision: int
    path: Path
    hits: int
    neighbours: int
    changed: int  # items whose verdict the neighbour score changed
    seconds: float


def _natural(s: str) -> tuple[Any, ...]:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s))


def shard_embeddings(run: Path | str, column: str, sources: Sequence[Path | str] = ()) -> dict[str, np.ndarray]:
    """Embeddings of a Parquet column, per shard id: each shard's rows from the file the scan read for it (the
    ledger's ``path``; else a file of ``sources`` whose stem is the shard id). Never a listing's order."""
    by_stem: dict[str, Path] = {}
    for p in sources:
        for f in sorted(Path(p).rglob("*.parquet")) if Path(p).is_dir() else [Path(p)]:
            by_stem.setdefault(f.stem, f)
    out: dict[str, np.ndarray] = {}
    for entry in RunStore(Path(run)).ledger():
        shard = str(entry["shard"])
        path = Path(str(entry.get("path") or ""))
        if not path.is_file():
            found = by_stem.get(shard)
            if found is None:
                raise UserError(f"shard {shard}: its file {path} is gone and no source file is named {shard}.parquet")
            path = found
        out[shard] = load_parquet_column([path], column)
    return out


def neighbour_pass(
    run: Path | str,
    embeddings: Embeddings | Mapping[str, np.ndarray],
    k: int = DEFAULT_K,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    source: str = "",
) -> NeighbourResult:
    """Write the next revision of ``run`` with every neighbour of a hit scored and judged again. ``embeddings``: one
    array over all items (shards in natural order) or its parts in order (mapped ``.npy`` files, streamed), or one
    array per shard id (each checked against its shard)."""
    t0 = time.perf_counter()
    run = Path(run)
    store = RunStore(run)
    base_rev = store.latest_revision()
    manifest = store.manifest_of(base_rev)
    done = (manifest.get("revision") or {}).get("neighbours") or {}
    same = (done.get("embeddings"), done.get("k"), done.get("min_similarity")) == (source, k, min_similarity)
    if base_rev and source not in ("", "array") and same:
        summary = store.summary_of(base_rev).get("neighbours") or {}
        return NeighbourResult(
            base_rev,
            store.revision_dir(base_rev),
            int(summary.get("hits", done.get("hits", 0))),
            int(summary.get("neighbours", 0)),
            0,
            round(time.perf_counter() - t0, 3),
        )
    policy = Policy.from_dict(manifest.get("policy") or {})
    files = sorted(store.item_files(base_rev), key=lambda f: _natural(f.stem))
    parts = [read_items(f, ["key", "status", "matches", "scores"]) for f in files]
    counts = [t.num_rows for t in parts]
    if isinstance(embeddings, Mapping):
        missing = [f.stem for f in files if f.stem not in embeddings]
        if missing:
            raise UserError(f"{run}: no embeddings for shard(s) {', '.join(missing[:5])}")
        for f, n in zip(files, counts, strict=True):
            rows = int(embeddings[f.stem].shape[0])
            if rows != n:
                raise UserError(
                    f"shard {f.stem} of {run} holds {n:,} items, its embeddings {rows:,} rows: they do not align"
                )
        embeddings = [embeddings[f.stem] for f in files]  # streamed in this order: no concatenated copy
    total = sum(counts)
    if total != rows_of(embeddings):
        raise UserError(
            f"{run} holds {total:,} items, the embeddings {rows_of(embeddings):,} rows: they do not align "
            "(one row per item, in the order of the dataset's files)"
        )
    keys: list[str] = []
    hits: list[int] = []
    offset = 0
    for t in parts:
        matches = t.column("matches").to_pylist()
        keys += t.column("key").to_pylist()
        for j in range(t.num_rows):
            # A hit is an item a match counts for under the policy (an allow bank's match does not).
            if any(match_verdict(Match(**m), policy) is not None for m in matches[j] or []):
                hits.append(offset + j)
        offset += t.num_rows
    found = find_neighbours(embeddings, hits, k, min_similarity).as_dict()

    revisions = run / REVISIONS_DIR
    make_dirs(revisions)
    existing = [int(p.name) for p in revisions.iterdir() if p.name.isdigit()]
    rev = max([base_rev, *existing]) + 1
    sweep_dead(revisions, ".tmp-")
    tmp = revisions / f".tmp-{rev}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    make_dirs(tmp / "items")
    changed = 0
    offset = 0
    for f, n, part in zip(files, counts, parts, strict=True):
        mine = {r - offset: v for r, v in found.items() if offset <= r < offset + n}
        offset += n
        target = tmp / "items" / f.name
        # a neighbour score an earlier pass left (its hit since delisted, or no longer this close) is cleared
        stale = [
            j
            for j, sc in enumerate(part.column("scores").to_pylist())
            if j not in mine and any(name == NEIGHBOUR_SCORE for name, _ in sc or [])
        ]
        if not mine and not stale:
            try:
                os.link(f, target)
            except OSError:
                shutil.copy2(f, target)
            continue
        rows = read_items(f).to_pylist()
        for j in sorted({*mine, *stale}):
            row = rows[j]
            if row["status"] != str(Status.OK):
                continue
            scores = dict(row["scores"] or [])
            kept_notes = [n for n in row["notes"] or [] if not n.startswith(NOTE)]
            if j in mine:
                sim, hit = mine[j]
                scores[NEIGHBOUR_SCORE] = sim
                kept_notes.append(f"{NOTE} {keys[hit]} (cosine {sim:.3f})")
            else:
                scores.pop(NEIGHBOUR_SCORE, None)
            j2 = judgement(Status.OK, [Match(**m) for m in row["matches"] or []], scores, policy)
            new = None if j2.verdict is None else str(j2.verdict)
            changed += new != row["verdict"]
            row["scores"] = list(scores.items())
            row["verdict"] = new
            row["rules"] = list(j2.rules)
            row["notes"] = kept_notes
        write_parquet_atomic(target, pa.Table.from_pylist(rows, schema=ITEM_SCHEMA))

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    new_manifest = dict(manifest)
    new_manifest["revision"] = {
        "number": rev,
        "base": base_rev,
        "created": now,
        "rematched": [],
        "neighbours": {"embeddings": source, "k": k, "min_similarity": min_similarity, "hits": len(hits)},
        "previous_banks": [{"name": b["name"], "version": b["version"]} for b in manifest.get("banks") or []],
    }
    base_summary = store.summary_of(base_rev)
    summary = summarize(sorted((tmp / "items").glob("*.parquet")))
    seconds = time.perf_counter() - t0
    summary.update(
        {
            k2: base_summary.get(k2)
            for k2 in ("banks", "shards", "started", "finished", "elapsed_s")
            if k2 in base_summary
        },
        revision=rev,
        base_revision=base_rev,
        neighbours={"hits": len(hits), "neighbours": len(found), "verdicts_changed": changed},
    )
    for key in ("items", "failed"):
        if summary[key] != base_summary.get(key, summary[key]):
            shutil.rmtree(tmp)
            raise AssertionError(f"the neighbour pass changed the {key} count")
    for name, obj in (("manifest.json", new_manifest), ("summary.json", summary)):
        with atomic_output(tmp / name) as part:
            part.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    final = revisions / str(rev)
    os.replace(tmp, final)
    return NeighbourResult(rev, final, len(hits), len(found), changed, round(seconds, 3))
