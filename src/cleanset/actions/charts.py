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
from matplotlib.axis import Axis
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
MARK = "#a23b2a"
REMOVED, REVIEW, FAILED = "#9b2f20", "#d39b2a", "#8893a0"
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


def _integers(*axes: Axis) -> None:
    """Counts have integer ticks only: an axis reading "2.5 items" is wrong, not just ugly."""
    for axis in axes:
        axis.set_major_locator(MaxNLocator(integer=True))


def _short(label: str, n: int = 40) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int], str]], title: str) -> str:
    """Horizontal bars in the given order (the caller sorts), one colour per series, capped at ``MAX_BARS``."""
    names = [_short(str(x)) for x in labels[:MAX_BARS]][::-1]
    with plt.rc_context(_RC):
        fig, ax = _figure(height=max(1.4, 0.26 * len(names) + 1.0))
        left = [0] * len(names)
        for name, values, color in series:
            vals = list(values[:MAX_BARS])[::-1]
            if any(vals):
                ax.barh(range(len(vals)), vals, left=left, color=color, label=name)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        ax.set_yticks(range(len(names)), names)
        for i, v in enumerate(left):
            ax.annotate(f"{v:,}", (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        _integers(ax.xaxis)
        ax.set_xlabel("items")
        ax.set_title(title, loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.06, 1.0), frameon=False, fontsize=8)
    return _svg(fig, title)


def histogram(
    edges_or_bins: Sequence[float],
    counts: Sequence[int],
    title: str,
    xlabel: str,
    discrete: bool = False,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """``discrete``: one bar per integer bin (PDQ distance); otherwise ``edges`` has len(counts) + 1 entries.

    ``marks`` are dashed vertical lines (a threshold, a review cut-off), so the reader sees how close the hits sit
    to where the policy draws its lines."""
    with plt.rc_context(_RC):
        fig, ax = _figure()
        if discrete:
            ax.bar(list(edges_or_bins), list(counts), width=0.9, color=COLOR)
            _integers(ax.xaxis)
        elif counts:
            e = list(edges_or_bins)
            ax.bar(
                e[:-1],
                list(counts),
                width=[b - a for a, b in itertools.pairwise(e)],
                align="edge",
                color=COLOR,
            )
        _integers(ax.yaxis)
        for x, label in marks:
            ax.axvline(x, color=MARK, linestyle="--", linewidth=1)
            ax.annotate(
                label,
                (x, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -2),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color=MARK,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("items")
        ax.set_title(title, loc="left")
    return _svg(fig, title)


def _rates(seconds: Sequence[float], cumulative: Sequence[int]) -> tuple[list[float], list[float]]:
    """Items per minute between successive commits; commits at the same second are one step."""
    edges: list[float] = [seconds[0]]
    done: list[int] = [cumulative[0]]
    for t, c in zip(seconds[1:], cumulative[1:], strict=True):
        if t > edges[-1]:
            edges.append(t)
            done.append(c)
        else:
            done[-1] = c
    rates = [60.0 * (b - a) / (t1 - t0) for a, b, t0, t1 in zip(done, done[1:], edges, edges[1:], strict=False)]
    return edges, rates


def progress_chart(seconds: Sequence[float], cumulative: Sequence[int], title: str) -> str:
    """Items committed over time (left) and the throughput between commits (right): a scan that slowed down or
    stalled shows here, and nowhere in the tables."""
    minutes = bool(seconds) and max(seconds) >= 600
    scale, unit = (60.0, "minutes") if minutes else (1.0, "seconds")
    t = [x / scale for x in seconds]
    with plt.rc_context(_RC):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 2.6))
        if t:
            ax1.step(t, list(cumulative), where="post", color=COLOR)
            ax1.plot(t, list(cumulative), "o", ms=3, color=COLOR)
            edges, rates = _rates(seconds, cumulative)
            if rates:
                ax2.stairs(rates, [e / scale for e in edges], color=COLOR, fill=True, alpha=0.85)
        _integers(ax1.yaxis)
        ax1.set_xlabel(f"{unit} since first commit")
        ax1.set_ylabel("items committed")
        ax1.set_title(title, loc="left")
        ax2.set_xlabel(f"{unit} since first commit")
        ax2.set_ylabel("items per minute")
        ax2.set_title("throughput", loc="left")
        fig.tight_layout()
    return _svg(fig, title)
