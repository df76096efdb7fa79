"""``report.html``: one self-contained page about a run that nobody has to look away from.

It shows numbers, charts (inline SVG) and tables of flagged, failed and changed items by key or URL; it never shows,
embeds or links an image and holds no bank value and no hash of an item. The page comes from a Jinja2 template with
autoescaping, so every string that came from outside (keys, URLs, captions, shard ids, bank names, reasons) is
escaped by the engine rather than by hand; table data is embedded as JSON through ``tojson`` (``<``, ``>``, ``&``
and ``'`` written as ``\\u`` escapes, so no key can close the script element), and the page's script writes cells
with ``textContent`` only. There is no network access: no external script, style, font or link, and a
Content-Security-Policy that would refuse one.

The page reads two ways: a dataset maintainer's (what left, where it was, what failed and why) and a trust-and-safety
analyst's (which list entry matched, how closely, through which view, why an item waits for review). Charts carry
only what the tables cannot: how close matches sit to the thresholds, which shards hold the flagged items, how the
scan advanced; a chart with nothing to add is left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cleanset.actions import charts
from cleanset.atomic import atomic_output
from cleanset.records import UNSCREENED_FRAMES

MAX_TABLE_ROWS = 100_000
# The page may load nothing from anywhere: only its own inline style and script run.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PAGE_SIZE = 50
# A progress chart of a short run is two dots and a line: it says nothing the finish time does not.
MIN_PROGRESS_COMMITS = 3
MIN_PROGRESS_SECONDS = 60.0

_ENV = Environment(
    loader=PackageLoader("cleanset.actions", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters["num"] = lambda v: f"{int(v):,}"
# A table cell as report.js writes it (lists joined with "; "), for the rows the page holds without JavaScript.
_ENV.filters["cell"] = lambda v: "" if v is None else "; ".join(map(str, v)) if isinstance(v, list) else str(v)


def _col(
    field: str, label: str, sub: str | None = None, cls: str | None = None, mark: bool = False, title: str | None = None
) -> dict[str, Any]:
    """One column of an embedded table: ``sub`` is a field shown as a second line when it differs, ``title`` one
    shown on hover, ``mark`` styles the cell by its value (verdicts)."""
    return {"col": field, "label": label, "sub": sub, "cls": cls, "mark": mark, "title": title}


# Every field is a key of the rows in report.json, so the JSON holds what the page shows under the same names.
_FLAGGED = [
    _col("where", "item (URL or key)", sub="key", cls="wide"),
    _col("caption", "caption", cls="wide"),
    _col("shard", "shard"),
    _col("verdict", "verdict", mark=True),
    _col("why", "why", cls="wide"),
    _col("bank", "list"),
    _col("version", "version", cls="n"),
    _col("entry_id", "entry id"),
    _col("signal", "signal"),
    _col("distance", "distance", cls="n"),
    _col("probe_words", "matched as", title="probe"),
]
_FAILED = [
    _col("key", "key", cls="wide"),
    _col("shard", "shard"),
    _col("code", "code"),
    _col("reason", "reason", cls="wide"),
]
_CHANGES = [
    _col("key", "key", cls="wide"),
    _col("shard", "shard"),
    _col("old_verdict", "was", mark=True),
    _col("new_verdict", "now", mark=True),
    _col("bank", "list"),
    _col("version", "version", cls="n"),
    _col("previous_version", "before", cls="n"),
    _col("entry_id", "entry id"),
    _col("change", "cause"),
]


def _table(
    table_id: str,
    rows: list[dict[str, Any]],
    total: int,
    spec: list[dict[str, Any]],
    label: str,
    placeholder: str,
    cut: str,
) -> dict[str, Any]:
    shown = rows[:MAX_TABLE_ROWS]
    return {
        "id": table_id,
        "rows": shown,
        "total": total,
        "cut": cut if total > len(shown) else "",
        "columns": list(spec),
        "label": label,
        "placeholder": placeholder,
        "hash_filter": table_id == "flagged",
        "has_caption": any(r.get("caption") for r in shown),
    }


def progress_worth_a_chart(prog: list[dict[str, Any]]) -> bool:
    """Enough commits over enough time for a throughput curve to show anything."""
    seconds = [p["seconds"] for p in prog if p.get("seconds") is not None]
    return len(seconds) >= MIN_PROGRESS_COMMITS and max(seconds) - min(seconds) >= MIN_PROGRESS_SECONDS


def _policy_words(run: dict[str, Any]) -> list[tuple[str, str]]:
    p = run.get("policy") or {}
    actions = p.get("bank_actions") or {}
    return [
        ("review above distance", "none" if p.get("review_above") is None else str(p["review_above"])),
        ("lists set to review", ", ".join(b for b, a in sorted(actions.items()) if a == "review") or "none"),
        ("allow lists", ", ".join(p.get("allow_banks") or []) or "none"),
        (
            "scores sent to review",
            ", ".join(f"{k} ≥ {v:g}" for k, v in (p.get("score_review") or {}).items()) or "none",
        ),
        ("PDQ quality gate", str(run.get("quality_gate"))),
        *([("policy", str(p["name"]))] if p.get("name") else []),
        *([("strict", "review items are removed")] if p.get("strict") else []),
    ]


def _blocks_by_pdq(b: dict[str, Any]) -> bool:
    return not b.get("allow") and "pdq" in (b.get("thresholds") or {})


def _charts(data: dict[str, Any]) -> dict[str, Markup]:
    """Only charts that add to the tables: the per-list, per-probe and per-reason counts are tables already."""
    out: dict[str, Markup] = {}
    pdq = data["pdq_distance"]
    if any(pdq["items"]):
        policy = data["run"].get("policy") or {}
        limits = sorted({int(b["thresholds"]["pdq"]) for b in data["banks"] if _blocks_by_pdq(b)})
        marks = [(t + 0.5, f"threshold {t}") for t in limits]
        if policy.get("review_above") is not None:
            marks.append((int(policy["review_above"]) + 0.5, f"review above {policy['review_above']}"))
        out["pdq-distance"] = Markup(
            charts.histogram(
                pdq["distance"],
                pdq["items"],
                "closest PDQ distance of matched items",
                "Hamming distance (bits)",
                discrete=True,
                marks=marks,
            )
        )
    shards = data["by_shard"]
    if shards and len(data["progress"]) > 1:
        out["shards"] = Markup(
            charts.stacked_bars(
                [s["shard"] for s in shards],
                [
                    ("removed", [s["removed"] for s in shards], charts.REMOVED),
                    ("review", [s["review"] for s in shards], charts.REVIEW),
                    ("failed", [s["failed"] for s in shards], charts.FAILED),
                ],
                "flagged and failed items per shard"
                + (f" (the {charts.MAX_BARS} with most)" if len(shards) > charts.MAX_BARS else " (most first)"),
            )
        )
    review = (data["run"].get("policy") or {}).get("score_review") or {}
    screened = (data.get("screening") or {}).get("scores") or {}
    for name, h in data["scores"].items():
        if name == UNSCREENED_FRAMES or name.startswith("text."):  # counts the "why" column states item by item
            continue
        marks = [(float(review[name]), f"review at {review[name]:g}")] if name in review else []
        if name in screened:
            marks.append((float(screened[name]["threshold"]), f"threshold {screened[name]['threshold']:g}"))
        out[f"score-{name}"] = Markup(charts.histogram(h["edges"], h["items"], f"score: {name}", name, marks=marks))
    return out


def render_html(data: dict[str, Any]) -> str:
    run = data["run"]
    tables = {
        "flagged": _table(
            "flagged",
            data["flagged"],
            len(data["flagged"]),
            _FLAGGED,
            "flagged items",
            "search URL, key, list, entry id, reason…",
            "report.json has all of them.",
        ),
        "failed": _table(
            "failed",
            data["failed"],
            data["counts"]["failed"],
            _FAILED,
            "failed items",
            "search key, code, reason…",
            "the counts by code cover all of them.",
        ),
    }
    if not tables["flagged"]["has_caption"]:
        tables["flagged"]["columns"] = [c for c in tables["flagged"]["columns"] if c["col"] != "caption"]
    changes = data.get("changes")
    if changes:
        tables["changes"] = _table(
            "changes",
            changes["items"],
            changes["counts"]["verdict_changed"],
            _CHANGES,
            "changed items",
            "search key, list, verdict…",
            "the counts above cover all of them.",
        )
    prog = data["progress"]
    progress_chart = (
        Markup(
            charts.progress_chart(
                [p["seconds"] or 0.0 for p in prog], [p["cumulative_items"] for p in prog], "scan progress"
            )
        )
        if progress_worth_a_chart(prog)
        else None
    )
    return _ENV.get_template("report.html.j2").render(
        csp=_CSP,
        data=data,
        run=run,
        counts=data["counts"],
        banks=data["banks"],
        policy=_policy_words(run),
        changes=changes,
        tables=tables,
        failure_codes=data["failures_by_code"],
        charts=_charts(data),
        progress_chart=progress_chart,
        page_size=PAGE_SIZE,
    )


def write_report(run: Path, revision: int | None = None, json_out: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write RUN/report.html (and RUN/report.json with ``json_out``); returns the HTML path and the data."""
    from cleanset.actions.report_data import build_report

    data = build_report(run, revision)
    out = run / "report.html"
    with atomic_output(out) as tmp:  # owner-only inside the run folder, like everything there
        tmp.write_text(render_html(data), encoding="utf-8")
    if json_out:
        with atomic_output(run / "report.json") as tmp:
            tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out, data
