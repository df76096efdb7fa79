"""Charts as inline SVG strings (matplotlib, vector only), so the report is one file with no assets to fetch.

Text stays text (``svg.fonttype = none``) so the page is searchable and small; the SVG carries no date and a fixed
hash salt, so the same run always renders the same bytes.
"""

from __future__ import annotations

import html
import io
import itertools
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")


import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

_RC: Any = {  # typed loosely: matplotlib types rc keys as one long Literal
    "svg.fonttype": "none",
    "svg.hashsalt": "cleanset",
    "text.parse_math": False,  # labels come from outside; a "$" must stay a dollar sign
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLOR = "#3b6ea5"
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)  # RDF boilerplate with external URIs
MAX_BARS = 30


def _svg(fig: Figure, title: str) -> str:
    buf = io.StringIO()
    with plt.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    svg = _METADATA.sub("", text[text.index("<svg") :])
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title, quote=True)}" ', 1)


def _figure(width: float = 6.4, height: float = 2.6) -> tuple[Figure, plt.Axes]:
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(width, height))
    return fig, ax


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str = "items") -> str:
    """Horizontal bars, largest first, capped so a run with thousands of probe names still renders."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda lv: -lv[1])[:MAX_BARS]
    with plt.rc_context(_RC):
        fig, ax = _figure(height=max(1.2, 0.28 * len(pairs) + 0.8))
        if pairs:
            names = [p[0] if len(p[0]) <= 40 else p[0][:39] + "…" for p in pairs][::-1]
            vals = [p[1] for p in pairs][::-1]
            ax.barh(range(len(vals)), vals, color=COLOR)
            ax.set_yticks(range(len(vals)), names)
            for i, v in enumerate(vals):
                ax.annotate(f"{v:g}", (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        else:
            ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
    return _svg(fig, title)


def histogram(
    edges_or_bins: Sequence[float], counts: Sequence[int], title: str, xlabel: str, discrete: bool = False
) -> str:
    """``discrete``: one bar per integer bin (PDQ distance); otherwise ``edges`` has len(counts) + 1 entries."""
    with plt.rc_context(_RC):
        fig, ax = _figure()
        if discrete:
            ax.bar(list(edges_or_bins), list(counts), width=0.9, color=COLOR)
        elif counts:
            e = list(edges_or_bins)
            ax.bar(
                e[:-1],
                list(counts),
                width=[b - a for a, b in itertools.pairwise(e)],
                align="edge",
                color=COLOR,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("items")
        ax.set_title(title, loc="left")
    return _svg(fig, title)


def progress_chart(seconds: Sequence[float], cumulative: Sequence[int], per_shard: Sequence[int], title: str) -> str:
    """Items committed over time (line) with each shard's size (bars at its commit index)."""
    with plt.rc_context(_RC):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 2.6))
        if seconds:
            ax1.step(list(seconds), list(cumulative), where="post", color=COLOR)
            ax1.plot(list(seconds), list(cumulative), "o", ms=3, color=COLOR)
        ax1.set_xlabel("seconds since first commit")
        ax1.set_ylabel("items committed")
        ax1.set_title(title, loc="left")
        ax2.bar(range(1, len(per_shard) + 1), list(per_shard), color=COLOR)
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_xlabel("shard (commit order)")
        ax2.set_ylabel("items")
        ax2.set_title("items per shard", loc="left")
        fig.tight_layout()
    return _svg(fig, title)
