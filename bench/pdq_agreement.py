"""How closely cleanset's PDQ agrees with Meta's reference (the ``pdqhash`` bindings), on the same photos.

Prints, for ``pdq`` (full resolution) and ``pdq512`` (the C++ tool's 512x512 nearest-neighbour path fed to
``pdqhash``): the share of photos hashed identically, the largest and mean bit difference, the share with equal
quality, and how far the two dialects lie apart on photos over 512 px. The tests assert the bounds
(tests/signals/test_pdq_agreement.py); this script prints the figures.

    .venv/bin/python bench/pdq_agreement.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "signals"))

from reference_hashes import hamming, hash_corpus


def line(label: str, pairs: list[tuple[str, str]], qualities: list[tuple[int | None, int]]) -> None:
    d = [hamming(a, b) for a, b in pairs]
    same = sum(x == 0 for x in d) / len(d)
    q = sum(a == b for a, b in qualities) / len(qualities)
    print(
        f"{label:7s} identical {same:7.1%}  max {max(d):2d} bits  mean {statistics.mean(d):.2f} bits  quality {q:.1%}"
    )


def published_rows() -> None:
    """Meta's published python-threatexchange examples (../shared/pdq-reference), when that folder is beside us."""
    import csv

    import numpy as np
    from PIL import Image

    from cleanset.signals.pdq import pdq_rgb

    ref = Path(__file__).resolve().parents[2] / "shared" / "pdq-reference"
    if not (ref / "expected_hashes.csv").is_file():
        print(f"published examples: {ref} not found, skipped")
        return
    with (ref / "expected_hashes.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["expected_source"].startswith("python-threatexchange")]
    same = 0
    for r in rows:
        with Image.open(ref / "data" / r["file (relative to pdq-vectors/data/)"]) as im:
            same += pdq_rgb(np.asarray(im.convert("RGB"))).hex == r["expected_pdq_hex"]
    print(f"published python-threatexchange examples: {same}/{len(rows)} bit for bit")


def main() -> None:
    published_rows()
    results = hash_corpus()
    mp = [r.megapixels for r in results]
    print(f"photos: {len(results)} (Debian wallpapers + scikit-image), {statistics.mean(mp):.2f} MP mean")
    line(
        "pdq",
        [(r.ours.hashes["pdq"], r.ref_pdq) for r in results],
        [(r.ours.pdq_quality, r.ref_quality) for r in results],
    )
    line(
        "pdq512",
        [(r.ours.hashes["pdq512"], r.ref_pdq512) for r in results],
        [(r.ours.pdq512_quality, r.ref_quality512) for r in results],
    )
    big = [r for r in results if max(r.ours.width or 0, r.ours.height or 0) > 512]
    gaps = sorted(hamming(r.ours.hashes["pdq"], r.ours.hashes["pdq512"]) for r in big)
    print(
        f"pdq vs pdq512 on {len(big)} photos over 512 px: median {statistics.median(gaps)} bits, "
        f"95th percentile {gaps[int(0.95 * (len(gaps) - 1))]}, max {gaps[-1]}, "
        f"{sum(g > 31 for g in gaps)} of {len(gaps)} more than 31 bits apart (a list made with one dialect misses "
        "those photos at the default threshold unless the other is computed too)"
    )
    ph = [hamming(r.ours.hashes["phash"], r.ref_phash) for r in results]
    print(
        f"phash vs imagehash.phash: identical {sum(x == 0 for x in ph) / len(ph):.1%}, "
        f"median {statistics.median(ph)}, max {max(ph)} bits"
    )


if __name__ == "__main__":
    main()
