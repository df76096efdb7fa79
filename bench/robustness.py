"""Robustness of matching under common edits: plain PDQ (the baseline), cleanset's probes, and pHash, in one run.

Runs ``cleanset bench robustness`` twice over Debian's wallpapers plus scikit-image's photos: on photographs only
(the corpus the issue's recall criteria speak of) and on every distinct picture (renders, drawings and patterns
included, reported for completeness). Each table gives recall at the threshold and distance quantiles per transform,
false matches among distinct pictures, and the cost of probes as a ratio to plain hashing in the same run.

    .venv/bin/python bench/robustness.py [--out DIR] [--limit N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cleanset.evaluation.report import markdown
from cleanset.evaluation.robustness import run

WALLPAPERS = [Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers")]
# Transforms the "done when" names, with the recall it asks of cleanset's probes.
REQUIRED = (
    "flip-h", "flip-v", "rotate90", "rotate180", "rotate270", "border", "border-uneven", "letterbox", "pillarbox",
    "collage2x2", "collage2x2-tight",
    "jpeg50", "jpeg70", "jpeg90", "resize0.5x", "resize0.75x", "resize1.5x", "resize2x", "greyscale", "blur",
)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out/robustness"))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    dirs = [d for d in WALLPAPERS if d.is_dir()]
    if not dirs:
        raise SystemExit("no wallpapers: install Debian's wallpaper packages (see scripts/test.sh)")
    for label, only in (("photographs", True), ("all pictures", False)):
        result = run(dirs, args.out / label.replace(" ", "-"), limit=args.limit, photographs_only=only)
        print(f"## {label}\n")
        print(markdown(result))
        below = [
            f"{r.name} {100 * r.stats['probes'].recall:.1f}%"
            for r in result.rows
            if r.name in REQUIRED and r.stats["probes"].recall < 0.99
        ]
        falses = result.false_matches("probes")
        verdict = "PASS" if not below and falses == 0 else "FAIL"
        print(f"{label}: probes recall >= 99% on the required transforms, no false match: {verdict}")
        if below:
            print(f"  below 99%: {', '.join(below)}")
        print()


if __name__ == "__main__":
    main()
