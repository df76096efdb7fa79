"""cleanset's pHash against imagehash.phash (its definition) on the real-photo corpus and on small images.

Small images (below 512 px on both sides) take imagehash's exact path and must agree bit for bit; larger ones use
block-averaged greyscale from the PDQ scan and may differ by a bit or two (see cleanset.signals.phash).
A flat image gives imagehash's answer for flat images (only the DC bit set), not rounding noise.
"""

from __future__ import annotations

import statistics

import imagehash
import numpy as np
from PIL import Image
from reference_hashes import PhotoResult, hamming

from cleanset.signals.phash import PHashSignal, phash_rgb


def test_corpus_phash_close_to_imagehash(corpus_results: list[PhotoResult]) -> None:
    dists = [hamming(r.ours.hashes["phash"], r.ref_phash) for r in corpus_results]
    med, worst = statistics.median(dists), max(dists)
    identical = sum(d == 0 for d in dists) / len(dists)
    p95 = sorted(dists)[int(0.95 * (len(dists) - 1))]
    print(f"phash vs imagehash on {len(dists)} photos: identical {identical:.1%}, median {med}, p95 {p95}, max {worst}")
    assert med <= 1
    assert p95 <= 4
    assert identical >= 0.7
    # within the default threshold, so a list made with imagehash is still matched by distance
    within = sum(d <= PHashSignal.default_threshold for d in dists) / len(dists)
    assert within >= 0.99


def test_small_images_match_imagehash_exactly() -> None:
    rng = np.random.default_rng(11)
    for shape in [(32, 32), (100, 80), (511, 300), (17, 250)]:
        base = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        im = Image.fromarray(base).resize(shape[::-1], Image.Resampling.BICUBIC)
        rgb = np.asarray(im)
        assert phash_rgb(rgb) == str(imagehash.phash(im)), shape


def test_flat_images_give_imagehash_answer() -> None:
    for shape in [(100, 100, 3), (800, 1200, 3)]:
        flat = np.full(shape, 77, dtype=np.uint8)
        assert phash_rgb(flat) == str(imagehash.phash(Image.fromarray(flat))) == "8000000000000000"


def test_lanczos_matrix_matches_pillow() -> None:
    from cleanset.signals.phash import lanczos_matrix

    rng = np.random.default_rng(13)
    grey = np.asarray(Image.fromarray(rng.integers(0, 256, (40, 36), dtype=np.uint8)).resize((288, 256)))
    ref = np.asarray(Image.fromarray(grey, "L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    tmp = np.clip(np.floor(grey @ lanczos_matrix(288).T + 0.5), 0, 255)
    ours = np.clip(np.floor(lanczos_matrix(256) @ tmp + 0.5), 0, 255)
    assert np.abs(ours - ref).max() <= 1 and (ours != ref).mean() < 0.01


def test_phash_moves_with_content() -> None:
    rng = np.random.default_rng(12)
    a = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((600, 400)))
    b = np.asarray(Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((600, 400)))
    assert hamming(phash_rgb(a), phash_rgb(b)) > 8
    brighter = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    assert hamming(phash_rgb(a), phash_rgb(brighter)) <= 2
