"""Everything a report shows, as plain data: ``report.json`` is this dict and ``report.html`` renders it.

Built only from the run's own records (summary, manifest, ledger, item rows, a revision's changes); nothing here
opens an image, and no bank value can appear because runs never store one (matches are named by bank, version, entry
id and distance). The item's own hashes are left out too: a reader of the report needs keys, not hashes, and only the
columns that name an item are read (never ``probes`` or the hash columns).

Two readers share the page: a dataset maintainer asks which items left and what to do about the failed ones; a
trust-and-safety analyst asks which list entry matched, how closely, through which view of the picture, and why an
item waits for review. So each flagged row carries both the "where" (URL or key, caption) and the "what" (list,
version, entry, signal, distance, the probe in words, the policy reason).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cleanset.assess.policy import BANK_RULE, UNSCREENED_FRAMES, Policy, judgement, match_verdict
from cleanset.records import FAILURE_CODES, Match, Status, Verdict, failure_code
from cleanset.runs.schema import ITEM_SCHEMA
from cleanset.runs.store import RunStore
from cleanset.screening.stage import NOT_CLASSIFIED
from cleanset.signals import is_url_signal

REPORT_VERSION = 2
SCORE_BINS = 20
# Past this many rows a table's data would make the page too heavy to open; the counts above it stay exact.
MAX_LISTED = 100_000
CAPTION_CHARS = 80
EXAMPLES_PER_CODE = 3
CHANGES_FILE = "changes.parquet"

# The columns a report reads: names and outcomes of items, never their hashes or probes.
_ITEM_COLUMNS = (
    "key",
    "shard",
    "status",
    "reason",
    "verdict",
    "url",
    "caption",
    "matches",
    "scores",
    "rules",
    "text_lists",
    "notes",
)
_EXACT_PROBES = {
    "md5": "exact file",
    "sha1": "exact file",
    "sha256": "exact file",
    "url_md5": "exact URL",
    "url_sha1": "exact URL",
}
_DIHEDRAL_WORDS = {
    "original": "as is",
    "rotate90": "rotated 90°",
    "rotate180": "rotated 180°",
    "rotate270": "rotated 270°",
    # PDQ's flips name the axis flipped over: across x is upside down, across y is a left-right mirror
    # (tests/actions/test_report_views.py checks this against real edits).
    "flipx": "upside down (flipped)",
    "flipy": "mirrored",
    "flipplus1": "mirrored on the diagonal",
    "flipminus1": "mirrored on the other diagonal",
}
_FRAME = re.compile(r"frame(\d+)")
_GRID_STEP = re.compile(r"(\d+)x(\d+)u*\.(\d+)")
_REGIONS = {
    "trim": "border trimmed",
    "trim.rows": "top/bottom border trimmed",
    "trim.cols": "side borders trimmed",
    "inset": "picture inside a window",
}


def _grid_words(label: str) -> str | None:
    """``2x2.3`` -> "collage cell 4 of 4"; ``1x2.1.2x1.0`` -> "collage cell 2 of 2, cell 1 of 2"."""
    steps = []
    pos = 0
    while pos < len(label):
        m = _GRID_STEP.match(label, pos)
        if m is None:
            return None
        rows, cols, i = (int(g) for g in m.groups())
        steps.append(f"cell {i + 1} of {rows * cols}")
        pos = m.end() + (1 if label[m.end() : m.end() + 1] == "." else 0)
    return "collage " + ", ".join(steps) if steps else None


def _view_words(segment: str) -> str | None:
    """Words for one prefix segment of a probe name, or None when it is not a view the engine makes."""
    if segment == "pdq":
        return ""
    if segment == "pdq512":
        return "other PDQ dialect"
    if segment in _REGIONS:
        return _REGIONS[segment]
    frame = _FRAME.fullmatch(segment)
    if frame is not None:
        return f"frame {int(frame.group(1)) + 1}"
    if segment.startswith("grid"):
        base, trimmed = (segment[:-5], True) if segment.endswith(".trim") else (segment, False)
        words = _grid_words(base[4:])
        if words is not None:
            return words + (", border trimmed" if trimmed else "")
    return None


def probe_words(probe: str | None) -> str:
    """A probe name in words for a reader who does not know the engine's naming: ``pdq/flipx`` -> "mirrored"."""
    if not probe:
        return ""
    if probe in _EXACT_PROBES:
        return _EXACT_PROBES[probe]
    *prefix, last = probe.split("/")
    words: list[str] = []
    for seg in prefix:
        if seg == "given" and last in _EXACT_PROBES:
            return _EXACT_PROBES[last] + " (hash given in the metadata)"
        w = _view_words(seg)
        words.append(f"column {seg}" if w is None else w)
    if last in _DIHEDRAL_WORDS:
        if last != "original" or not any(words):
            words.append(_DIHEDRAL_WORDS[last])
    elif last == "phash":
        words.append("pHash")
    elif last in _EXACT_PROBES:
        words.append(_EXACT_PROBES[last])
    else:
        words.append(last)
    return ", ".join(w for w in words if w)


def _nonempty(col: pa.ChunkedArray) -> pa.Array:
    """Rows whose list (or map) holds anything; from the offsets, so no row becomes a Python object."""
    parts = [np.diff(c.offsets.to_numpy(zero_copy_only=False)) > 0 for c in col.chunks]
    return pa.array(np.concatenate(parts) if parts else np.zeros(0, dtype=bool))


def _counting(matches: list[dict[str, Any]], allow: set[str]) -> list[dict[str, Any]]:
    return [m for m in matches if m["bank"] not in allow]


def _closest(matches: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    return min(matches, key=lambda m: (m["distance"], m["bank"], m["entry_id"], m["probe"]), default=None)


def _truncate(text: str | None, n: int = CAPTION_CHARS) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


class Explainer:
    """Why the policy gave a flagged item its verdict, in the words of the policy that gave it.

    Uses ``assess.policy.match_verdict`` itself, so the reason shown cannot drift from the rule applied."""

    def __init__(self, manifest: Mapping[str, Any], allow: set[str]) -> None:
        self.policy = Policy.from_dict(manifest.get("policy") or {}).with_allow_banks(allow)
        self.thresholds = {
            b["name"]: dict(b.get("thresholds") or {}) for b in manifest.get("banks") or [] if b.get("name")
        }

    def verdict_of(self, m: dict[str, Any]) -> Verdict | None:
        return match_verdict(Match(**m), self.policy)

    def match_reason(self, m: dict[str, Any], verdict: Verdict) -> str:
        p = self.policy
        if verdict is Verdict.REVIEW:
            if p.bank_actions.get(m["bank"]) == "review":
                return f"list {m['bank']} is set to review"
            return f"near the threshold: distance {m['distance']} > review-above {p.review_above}"
        if m["distance"] == 0 and m["signal"] in _EXACT_PROBES:
            return "exact match"
        limit = self.thresholds.get(m["bank"], {}).get(m["signal"])
        return f"within the list's threshold ({m['distance']} ≤ {limit})" if limit is not None else "match"

    def screen_reasons(self, matches: Iterable[dict[str, Any]], scores: Mapping[str, float]) -> list[str]:
        """The screening rules that fired for an item, with the scores that made them fire (from ``judgement``
        under the run's policy, so the words cannot drift from the rule applied), and the strict policy's step."""
        j = judgement(Status.OK, [Match(**m) for m in matches], scores, self.policy)
        return [r for r in j.reasons if r.startswith("rule ") or r.startswith("strict policy")]

    def score_reasons(self, scores: Mapping[str, float]) -> list[str]:
        out = []
        frames = scores.get(UNSCREENED_FRAMES, 0) or 0
        if frames > 0:
            out.append(f"more frames than screened ({int(frames)} not screened)")
        for name, threshold in sorted(self.policy.score_review.items()):
            s = scores.get(name)
            if s is not None and s >= threshold:
                out.append(f"score {name} {s:.3f} ≥ {threshold:g}")
        return out


def flagged_rows(items: pa.Table, explain: Explainer) -> list[dict[str, Any]]:
    """One row per removed or review item: where it is, what matched (the closest match that asked for its verdict)
    and why the policy gave that verdict.

    Only flagged rows become Python objects: a run of millions of kept items costs one Arrow filter here."""
    flagged = items.filter(pc.is_in(items.column("verdict"), value_set=pa.array(["remove", "review"])))
    cols = ("key", "shard", "verdict", "url", "caption", "matches", "scores", "text_lists")
    names = [c for c in cols if c in items.column_names]
    out = []
    for r in flagged.select(names).to_pylist():
        verdict = Verdict(r["verdict"])
        judged = [(m, explain.verdict_of(m)) for m in r["matches"] or []]
        asking = [m for m, v in judged if v is verdict]
        # A policy that changed since (an old manifest) can leave no match asking for the verdict: show the closest.
        best = _closest(asking) or _closest(m for m, v in judged if v is not None)
        scores = dict(r["scores"] or [])
        if verdict is Verdict.REMOVE:
            why = [explain.match_reason(best, verdict)] if asking and best is not None else []
        else:  # every reason counts for a reviewer: a list set to review and a score may both apply
            why = sorted({explain.match_reason(m, verdict) for m in asking})
            why += explain.score_reasons(scores)
        if not why or verdict is Verdict.REVIEW:  # screening: the rules that fired, named, never the picture
            why += explain.screen_reasons(r["matches"] or [], scores)
        why += [f"caption matched term list {label}" for label in r.get("text_lists") or []]
        # A URL a URL list matched *is* that list's value: the report (a shareable artefact) names the key instead.
        url = None if any(is_url_signal(str(m["signal"])) for m in r["matches"] or []) else r.get("url")
        out.append(
            {
                "key": r["key"],
                "where": url or r["key"],
                "url": url,
                "caption": _truncate(r.get("caption")),
                "shard": r["shard"],
                "verdict": r["verdict"],
                "why": why or ["policy"],
                "bank": best["bank"] if best else None,
                "version": best["version"] if best else None,
                "entry_id": best["entry_id"] if best else None,
                "signal": best["signal"] if best else None,
                "distance": best["distance"] if best else None,
                "probe": best["probe"] if best else None,
                "probe_words": probe_words(best["probe"]) if best else None,
            }
        )
    out.sort(key=lambda r: (r["verdict"] != "remove", r["shard"], r["key"]))
    return out


def failed_rows(items: pa.Table, limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """Failed items by key, grouped by code; codes are worked out once per distinct reason, not once per row."""
    failed = items.filter(pc.equal(items.column("status"), "failed")).select(["key", "shard", "reason"])
    if failed.num_rows == 0:
        return []
    reasons = failed.column("reason").combine_chunks()
    distinct = pc.unique(reasons)
    codes = pa.array([failure_code(r) for r in distinct.to_pylist()], pa.string())
    code_col = codes.take(pc.index_in(reasons, value_set=distinct))
    if reasons.null_count:
        code_col = pc.fill_null(code_col, "other")
    table = failed.append_column("code", code_col)
    table = table.sort_by([("code", "ascending"), ("shard", "ascending"), ("key", "ascending")]).slice(0, limit)
    return table.select(["key", "shard", "code", "reason"]).to_pylist()


def failures_by_code(by_reason: Mapping[str, int]) -> list[dict[str, Any]]:
    """The summary's per-reason counts regrouped by code, most items first, each with its commonest reasons."""
    groups: dict[str, Counter[str]] = {}
    for reason, n in by_reason.items():
        groups.setdefault(failure_code(None if reason == "(none)" else reason), Counter())[reason] += int(n)
    out = [
        {
            "code": code,
            "items": sum(c.values()),
            "meaning": FAILURE_CODES[code],
            "examples": [{"reason": r, "items": n} for r, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))][
                :EXAMPLES_PER_CODE
            ],
        }
        for code, c in groups.items()
    ]
    return sorted(out, key=lambda g: (-g["items"], g["code"]))


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


def screening(items: pa.Table, manifest: Mapping[str, Any], explain: Explainer) -> dict[str, Any] | None:
    """What screening found, as counts: items each rule fired for (and the verdicts they ended with), items at or
    above each score's threshold, items whose caption matched each term list. None when the scan did not screen.

    Counts only: a reviewer learns how many items each rule sent where, and each flagged row says which rules
    fired for it, without a picture being shown."""
    screen = manifest.get("screen")
    if not screen:
        return None
    policy = explain.policy
    rule_items: Counter[str] = Counter()
    rule_verdicts: dict[str, Counter[str]] = {}
    if "rules" in items.column_names:
        fired = items.filter(_nonempty(items.column("rules"))).select(["verdict", "rules"])
        for row in fired.to_pylist():
            for rule in set(row["rules"] or []):
                rule_items[rule] += 1
                rule_verdicts.setdefault(rule, Counter())[row["verdict"] or "failed"] += 1
    actions = {r.name: r.action for r in policy.rules}
    rules = [
        {
            "rule": r.name,
            "when": " and ".join(r.when),
            "action": r.action,
            "items": int(rule_items.get(r.name, 0)),
            "removed": int(rule_verdicts.get(r.name, Counter()).get("remove", 0)),
            "review": int(rule_verdicts.get(r.name, Counter()).get("review", 0)),
        }
        for r in policy.rules
    ]
    for extra in sorted(set(rule_items) - set(actions) - {BANK_RULE}):
        v = rule_verdicts.get(extra, Counter())
        rules.append(
            {"rule": extra, "when": "", "action": "", "items": int(rule_items[extra]),
             "removed": int(v.get("remove", 0)), "review": int(v.get("review", 0))}
        )  # fmt: skip
    over: dict[str, dict[str, Any]] = {}
    lists: Counter[str] = Counter()
    scored = items.filter(_nonempty(items.column("scores")))
    for sc in scored.column("scores").to_pylist():
        for name, value in sc or []:
            if name == UNSCREENED_FRAMES or value is None:
                continue
            t = policy.threshold(name)
            o = over.setdefault(name, {"threshold": t, "scored": 0, "at_or_above": 0})
            o["scored"] += 1
            o["at_or_above"] += int(value >= t)
    # Items no classifier saw (URL rows have no pixels), counted so that silence is not read as "clean".
    unclassified = 0
    if "notes" in items.column_names:
        noted = items.filter(_nonempty(items.column("notes"))).column("notes").to_pylist()
        unclassified = sum(NOT_CLASSIFIED in (n or []) for n in noted)
    ok = int(pc.sum(pc.equal(items.column("status"), str(Status.OK))).as_py() or 0)
    classified = ok - unclassified if screen.get("models") else 0
    if "text_lists" in items.column_names:
        listed = items.filter(_nonempty(items.column("text_lists")))
        for labels in listed.column("text_lists").to_pylist():
            lists.update(set(labels or []))
    return {
        "models": list(screen.get("models") or []),
        "lists": list(screen.get("lists") or []),
        "score_columns": list(screen.get("score_columns") or []),
        "policy": policy.name,
        "strict": policy.strict,
        "rules": rules,
        "scores": {k: over[k] for k in sorted(over) if not k.startswith("text.")},
        "text_lists": dict(sorted(lists.items())),
        "classified": classified,
        "unclassified": unclassified if screen.get("models") else ok,
    }


def by_shard(items: pa.Table) -> list[dict[str, Any]]:
    """Removed, review and failed items per shard, for the shards that have any: where in the dataset they sit."""
    if items.num_rows == 0:
        return []
    verdict, status = items.column("verdict"), items.column("status")

    def flag(mask: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.cast(pc.fill_null(mask, False), pa.int64())

    t = pa.table(
        {
            "shard": items.column("shard"),
            "removed": flag(pc.equal(verdict, "remove")),
            "review": flag(pc.equal(verdict, "review")),
            "failed": flag(pc.equal(status, "failed")),
        }
    )
    g = t.group_by("shard").aggregate([("shard", "count"), ("removed", "sum"), ("review", "sum"), ("failed", "sum")])
    rows = [
        {
            "shard": r["shard"],
            "items": int(r["shard_count"]),
            "removed": int(r["removed_sum"]),
            "review": int(r["review_sum"]),
            "failed": int(r["failed_sum"]),
        }
        for r in g.to_pylist()
    ]
    rows = [r for r in rows if r["removed"] or r["review"] or r["failed"]]
    return sorted(rows, key=lambda r: (-(r["removed"] + r["review"] + r["failed"]), r["shard"]))


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


_SEVERITY = {None: 0, "keep": 1, "review": 2, "remove": 3}


def latest_changes(store: RunStore, rev: int, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The changes of the newest revision up to ``rev`` that changed a verdict, naming the later ones that changed
    none: a rematch that found nothing new must not hide the one before it that did."""
    newest = revision_changes(store, rev, manifest)
    later: list[int] = []
    for r in range(rev, 0, -1):
        found = newest if r == rev else revision_changes(store, r, store.manifest_of(r))
        if found is not None and found["counts"]["verdict_changed"]:
            return {**found, "later_unchanged": sorted(later)}
        later.append(r)
    return newest


def revision_changes(store: RunStore, rev: int, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Items whose verdict the revision changed, each with the list change that explains it; None for the scan
    itself or a revision written without a changes file.

    A verdict that got stricter is explained by an entry the item newly matches, one that eased by an entry it no
    longer matches; the version is the list's in this revision, the previous one the base revision's."""
    if rev == 0:
        return None
    path = store.revision_dir(rev) / CHANGES_FILE
    if not path.is_file():
        return None
    rows = pq.read_table(path).to_pylist()
    info = manifest.get("revision") or {}
    versions = {b["name"]: b.get("version") for b in manifest.get("banks") or []}
    previous = {b["name"]: b.get("version") for b in info.get("previous_banks") or []}
    causes: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["change"] != "verdict_changed":
            causes.setdefault((r["key"], r["shard"]), []).append(r)
    changed = []
    transitions: Counter[str] = Counter()
    for r in rows:
        if r["change"] != "verdict_changed":
            continue
        old, new = r["old_verdict"], r["new_verdict"]
        transitions[f"{old} → {new}"] += 1
        want = "newly_matched" if _SEVERITY.get(new, 0) > _SEVERITY.get(old, 0) else "no_longer_matched"
        cands = sorted(
            causes.get((r["key"], r["shard"]), []),
            key=lambda c: (c["change"] != want, c["bank"] or "", c["entry_id"] or ""),
        )
        cause = cands[0] if cands else None
        bank = cause["bank"] if cause else None
        changed.append(
            {
                "key": r["key"],
                "shard": r["shard"],
                "old_verdict": old,
                "new_verdict": new,
                "change": cause["change"].replace("_", " ") if cause else None,
                "bank": bank,
                "version": versions.get(bank) if bank else None,
                "previous_version": previous.get(bank) if bank else None,
                "entry_id": cause["entry_id"] if cause else None,
            }
        )
    changed.sort(key=lambda c: (-_SEVERITY.get(c["new_verdict"], 0), c["shard"], c["key"]))
    kinds = Counter(r["change"] for r in rows)
    return {
        "revision": rev,
        "base_revision": info.get("base"),
        "created": info.get("created"),
        "rematched": list(info.get("rematched") or []),
        "counts": {k: int(kinds.get(k, 0)) for k in ("newly_matched", "no_longer_matched", "verdict_changed")},
        "transitions": dict(sorted(transitions.items(), key=lambda kv: (-kv[1], kv[0]))),
        "items": changed[:MAX_LISTED],
    }


def _bank_public(b: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies a list version; the manifest never holds values, but keep the report's fields fixed."""
    return {k: b.get(k) for k in ("name", "version", "allow", "entry_count", "digest", "thresholds") if k in b}


def build_report(run: Path, revision: int | None = None) -> dict[str, Any]:
    store = RunStore(run)
    rev = store.latest_revision() if revision is None else revision
    m, s = store.manifest_of(rev), store.summary_of(rev)
    cols = [c for c in _ITEM_COLUMNS if c in ITEM_SCHEMA.names]
    items = store.items_table(rev, columns=cols)  # a run from before screening reads with those columns empty
    allow = {b["name"] for b in m.get("banks") or [] if b.get("allow")}
    allow |= set((m.get("policy") or {}).get("allow_banks") or [])
    counts = {k: int(s.get(k, 0)) for k in ("items", "kept", "removed", "review", "failed")}
    by_probe = dict(sorted((s.get("matches_by_probe") or {}).items()))
    by_reason = dict(sorted((s.get("failures_by_reason") or {}).items(), key=lambda kv: -kv[1]))
    return {
        "report_version": REPORT_VERSION,
        "run": {
            "revision": rev,
            "revisions": [0, *store.revisions()],
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
        "matches_by_probe": by_probe,
        "probe_words": {p: probe_words(p) for p in by_probe},
        "failures_by_reason": by_reason,
        "failures_by_code": failures_by_code(by_reason),
        "pdq_distance": pdq_distance_histogram(items, allow),
        "by_shard": by_shard(items),
        "progress": progress(store.ledger()),
        "scores": score_histograms(items),
        "screening": screening(items, m, Explainer(m, allow)),
        "changes": latest_changes(store, rev, m),
        "flagged": flagged_rows(items, Explainer(m, allow)),
        "failed": failed_rows(items),
    }
