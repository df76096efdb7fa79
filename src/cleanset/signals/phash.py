"""pHash: the 64-bit DCT hash as ``imagehash.phash`` defines it, computed from the engine's one decode.

Definition (imagehash 4.3, ``hash_size=8, highfreq_factor=4``): greyscale (Pillow's ``L``: ITU-R 601 luma), resize
to 32x32 with Lanczos, 2-D DCT-II, keep the top-left 8x8 coefficients, bit = coefficient > their median, bits
row-major, most significant first, as 16 hex digits.

Why the result can differ from imagehash by a bit or two on large images: a Lanczos filter from a 2-megapixel image
down to 32x32 reads every pixel about six times, which costs more than PDQ itself. cleanset instead averages the
luma of fixed blocks while it scans the pixels for PDQ (the same pass, see ``pdq_kernel.scan_shared``), so the
intermediate image is at least 256 px on each side, and applies Pillow's own Lanczos weights from there (each
output summed over its window only, compiled, in ``pdq_kernel.lanczos_32``; what Pillow's ``reducing_gap`` option
does in spirit). Images below 512 px on both sides
take imagehash's exact path (Pillow ``L`` conversion and resize). On the real-photo corpus of
tests/signals/test_phash_agreement.py about 80 % of hashes are identical, the median difference is 0 bits and the
largest is within the default threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from cleanset.signals import SIGNALS
from cleanset.signals import pdq_kernel as k
from cleanset.signals.base import Metric, PixelSignal, SignalExample
from cleanset.signals.examples import example_png

HASH_SIZE = 8
IMG_SIZE = 32  # hash_size * highfreq_factor
GREY_MIN_SIDE = 256  # block-averaged intermediate is at least this many pixels on each side


@dataclass
class GreyPlan:
    """Where the PDQ scan adds each pixel's luma: block ``(y // block_rows, x // block_cols)``."""

    block_rows: int
    block_cols: int
    sums: np.ndarray
    counts: np.ndarray

    def means(self) -> np.ndarray:
        return self.sums / self.counts


def grey_plan(height: int, width: int) -> GreyPlan | None:
    """Block layout for an image, or None when it is small enough for the exact imagehash path."""
    layout = _grey_layout(height, width)
    if layout is None:
        return None
    fy, fx, counts = layout
    # Row-major: the scan writes a block row at a time, and a column-major row is 300 values a cache-set apart
    # (they evict each other), which made writing the sums cost a tenth of the whole pass. Not zeroed: a scan
    # writes every block (clearing 600 KB per image is a visible cost of its own).
    return GreyPlan(fy, fx, np.empty(counts.shape, dtype=np.float64), counts)


@lru_cache(maxsize=256)
def _grey_layout(height: int, width: int) -> tuple[int, int, np.ndarray] | None:
    # Cached: a corpus has few distinct sizes, and building the counts costs as much as the pHash itself.
    fy = max(height // GREY_MIN_SIDE, 1)
    fx = max(width // GREY_MIN_SIDE, 1)
    if fy == 1 and fx == 1:
        return None
    nby = -(-height // fy)
    nbx = -(-width // fx)
    rows_per = np.minimum(fy, height - np.arange(nby) * fy)
    cols_per = np.minimum(fx, width - np.arange(nbx) * fx)
    counts = np.outer(rows_per, cols_per).astype(np.float64)
    counts.flags.writeable = False
    return fy, fx, counts


@lru_cache(maxsize=1)
def dct_rows() -> np.ndarray:
    # Unnormalised DCT-II (scipy.fftpack.dct type 2) rows 0..7 over 32 samples.
    k = np.arange(HASH_SIZE, dtype=np.float64)[:, None]
    n = np.arange(IMG_SIZE, dtype=np.float64)[None, :]
    return 2.0 * np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * IMG_SIZE))


def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.where((x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)


@lru_cache(maxsize=256)
def lanczos_matrix(n_in: int, n_out: int = IMG_SIZE) -> np.ndarray:
    """Pillow's Lanczos resampling weights (``Resample.c`` ``precompute_coeffs``) as an n_out x n_in matrix."""
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    m = np.zeros((n_out, n_in), dtype=np.float64)
    for xx in range(n_out):
        center = (xx + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        w = _lanczos((np.arange(lo, hi) - center + 0.5) / filterscale)
        m[xx, lo:hi] = w / w.sum()
    return m


def phash_from_small(pixels: np.ndarray) -> str:
    """pHash from the 32x32 greyscale image."""
    # Inputs are whole numbers, so exact DCT coefficients of a flat image are exact zeros (ties with the median
    # that imagehash's FFT keeps as ties); rounding away matrix-product noise keeps them ties here too.
    # Compiled: a dozen small NumPy calls cost ten times more than the arithmetic right after a large scan has
    # pushed NumPy's code out of the caches.
    value = k.phash_bits(np.ascontiguousarray(pixels, dtype=np.float64), dct_rows())
    return f"{value:016x}"


def phash_from_grey(grey: np.ndarray) -> str:
    """pHash of a greyscale (uint8, 2-D) image, resized exactly as imagehash does (Pillow's Lanczos)."""
    small = Image.fromarray(grey, "L").resize((IMG_SIZE, IMG_SIZE), Image.Resampling.LANCZOS)
    return phash_from_small(np.asarray(small, dtype=np.float64))


@lru_cache(maxsize=256)
def lanczos_span(n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """``lanczos_matrix(n_in)`` as (start[32], weights[32, L]): each output's weights from its first to its last
    non-zero input, zero-padded to a common length. The dense product spends most of its time multiplying zeros
    (each output reads about 6 * n_in / 32 of the n_in inputs)."""
    m = lanczos_matrix(n_in)
    nz = m != 0.0
    lo = nz.argmax(axis=1)
    hi = n_in - nz[:, ::-1].argmax(axis=1)
    width = int((hi - lo).max())
    lo = np.minimum(lo, n_in - width)
    weights = np.stack([m[i, lo[i] : lo[i] + width] for i in range(m.shape[0])])
    return lo.astype(np.int64), np.ascontiguousarray(weights)


def phash_from_blocks(means: np.ndarray) -> str:
    """pHash of block-averaged luma (float, 2-D): Pillow's Lanczos weights applied horizontal pass first, with
    8-bit rounding between and after, as Pillow does for an ``L`` image (the kernel reads ``means`` transposed)."""
    col_lo, col_w = lanczos_span(means.shape[1])
    row_lo, row_w = lanczos_span(means.shape[0])
    means_t = np.ascontiguousarray(means.T, dtype=np.float64)
    return phash_from_small(k.lanczos_32(means_t, col_lo, col_w, row_lo, row_w))


def exact_grey(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``L`` conversion of RGB pixels (what imagehash starts from)."""
    return np.asarray(Image.fromarray(rgb, "RGB").convert("L"))


def phash_rgb(rgb: np.ndarray) -> str:
    """pHash of decoded RGB pixels on its own (the engine shares the PDQ scan instead)."""
    from cleanset.signals.pdq import scan

    plan = grey_plan(rgb.shape[0], rgb.shape[1])
    if plan is None:
        return phash_from_grey(exact_grey(rgb))
    scan(rgb, plan.block_rows, plan.block_cols, plan.sums)
    return phash_from_blocks(plan.means())


# Expected values were produced by imagehash 4.3.2 (``str(imagehash.phash(Image.open(png)))``) on example_png(name).
_EXAMPLES = {
    "waves-96x128": "800e50033ffddb57",
    "rings-700x900": "91116e6a6a6d6d6c",
}


@SIGNALS.register("phash")
class PHashSignal(PixelSignal):
    """64-bit DCT perceptual hash (imagehash's ``phash``)."""

    name = "phash"
    bits = 64
    metric = Metric.HAMMING
    default_threshold = 8
    column = "phash"
    by_default = True
    rank = 60

    @classmethod
    def compute_rgb(cls, rgb: np.ndarray) -> str:
        return phash_rgb(rgb)

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return [SignalExample(example_png(n), v, note=n) for n, v in _EXAMPLES.items()]
