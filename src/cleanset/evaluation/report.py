"""The robustness benchmark's outputs: a Markdown table (what the CLI prints), the same as HTML, and a plot.

Only distances, recall and counts are written: the stand-in bank's values never leave the run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from cleanset.evaluation.robustness import METHODS, RobustnessResult

# Autoescaping, as the scan report's templates: transform names and notes reach the page as text, never markup.
_ENV = Environment(
    loader=PackageLoader("cleanset.evaluation", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)

LABELS = {"pdq": "PDQ", "probes": "cleanset probes", "phash": "pHash"}


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.0f}"


def table_rows(result: RobustnessResult) -> tuple[list[str], list[list[str]]]:
    head = ["transform"]
    for m in METHODS:
        head += [f"{LABELS[m]} recall", f"{LABELS[m]} median/p95"]
    head += ["false matches PDQ/probes/pHash", "caught by"]
    body = []
    for r in result.rows:
        line = [r.name]
        for m in METHODS:
            s = r.stats[m]
            line += [_pct(s.recall), f"{_num(s.quantile(0.5))}/{_num(s.quantile(0.95))}"]
        line.append("/".join(str(r.stats[m].false_matches) for m in METHODS))
        line.append(", ".join(f"{k} {v}" for k, v in sorted(r.matched_by.items(), key=lambda kv: -kv[1])))
        body.append(line)
    return head, body


def summary_lines(result: RobustnessResult) -> list[str]:
    lines = [
        f"photos: {result.photos} distinct ({result.banked} banked, {result.photos - result.banked} not banked); "
        f"left out (same picture, or PDQ quality under 50): {len(result.dropped)}",
        f"thresholds: PDQ {result.threshold} (quality gate 50), pHash {result.phash_threshold}",
        "false matches among distinct photos (all transforms): "
        + ", ".join(f"{LABELS[m]} {result.false_matches(m)} of {result.comparisons[m]} comparisons" for m in METHODS),
    ]
    c = result.cost
    if c is not None:
        lines.append(
            f"cost on {c.photos} untransformed photos ({c.with_regions} got region probes): "
            f"from JPEG files (decode + hash) plain PDQ+dihedral {1000 * c.plain_file_s / c.photos:.2f} ms/photo, "
            f"with probes {1000 * c.probes_file_s / c.photos:.2f} ms/photo ({100 * c.file_overhead:+.1f}%); "
            f"on decoded pixels (hash only) {1000 * c.plain_s / c.photos:.2f} vs {1000 * c.probes_s / c.photos:.2f} "
            f"ms/photo ({100 * c.overhead:+.1f}%)"
        )
    return lines


def markdown(result: RobustnessResult) -> str:
    head, body = table_rows(result)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in body]
    out.append("")
    out += [f"- {line}" for line in summary_lines(result)]
    return "\n".join(out) + "\n"


def html_page(result: RobustnessResult) -> str:
    head, body = table_rows(result)
    return _ENV.get_template("robustness.html.j2").render(head=head, body=body, notes=summary_lines(result))


def plot(result: RobustnessResult, path: Path) -> None:
    """Grouped bars of recall per transform for the three matchers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in result.rows]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.42 * len(names)), 4.5))
    width = 0.27
    for k, m in enumerate(METHODS):
        xs = [i + (k - 1) * width for i in range(len(names))]
        ax.bar(xs, [100 * r.stats[m].recall for r in result.rows], width, label=LABELS[m])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, ha="right", fontsize=8)
    ax.set_ylabel(f"recall at threshold (%), PDQ <= {result.threshold}")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    ax.set_title(f"cleanset robustness: {result.banked} banked of {result.photos} photos", pad=22)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else x


def as_json(result: RobustnessResult) -> dict[str, object]:
    """Everything in the table, as plain JSON (no NaN: a figure without data is null)."""
    return {
        "photos": result.photos,
        "banked": result.banked,
        "dropped": result.dropped,
        "threshold": result.threshold,
        "phash_threshold": result.phash_threshold,
        "comparisons": result.comparisons,
        "transforms": [
            {
                "name": r.name,
                "family": r.family,
                "matched_by": r.matched_by,
                **{
                    m: {
                        "recall": _finite(r.stats[m].recall),
                        "median": _finite(r.stats[m].quantile(0.5)),
                        "p95": _finite(r.stats[m].quantile(0.95)),
                        "false_matches": r.stats[m].false_matches,
                    }
                    for m in METHODS
                },
            }
            for r in result.rows
        ],
        "cost": None
        if result.cost is None
        else {
            "photos": result.cost.photos,
            "plain_s": result.cost.plain_s,
            "probes_s": result.cost.probes_s,
            "overhead": result.cost.overhead,
            "plain_file_s": result.cost.plain_file_s,
            "probes_file_s": result.cost.probes_file_s,
            "file_overhead": _finite(result.cost.file_overhead),
            "with_regions": result.cost.with_regions,
        },
    }


def write_report(result: RobustnessResult, out: Path) -> dict[str, Path]:
    """Write table.md, table.html, recall.png and results.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "table.md",
        "html": out / "table.html",
        "plot": out / "recall.png",
        "json": out / "results.json",
    }
    paths["markdown"].write_text(markdown(result))
    paths["html"].write_text(html_page(result))
    plot(result, paths["plot"])
    paths["json"].write_text(json.dumps(as_json(result), indent=2, allow_nan=False) + "\n")
    return paths
