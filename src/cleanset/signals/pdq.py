"""PDQ, Meta's 256-bit perceptual hash, in the two dialects that hash lists are made with.

- ``pdq``: the full-resolution hash that python-threatexchange and HMA compute (``pdqhash`` bindings to Meta's C++
  fed with every decoded pixel). Bit-exact with that reference on its published examples; on real photos the
  fast path agrees bit for bit except when a DCT coefficient lies within float rounding of the median
  (tests/signals/test_pdq_agreement.py measures it).
- ``pdq512``: what Meta's own C++ command-line tool hashes (``pdq/cpp/io/pdqio.cpp``): an image wider or taller
  than 512 px is first resized to exactly 512x512 by CImg's nearest neighbour (source index ``floor(i * n / 512)``
  along each axis, aspect ratio ignored). Images of at most 512x512 give the same hash in both dialects. The two
  dialects differ by several bits on most large photos, so an item is matched in both against a bank's ``pdq``
  entries.

Luma follows ``pdqhash`` (float64 ``0.299 R + 0.587 G + 0.114 B`` rounded to float32) rather than the C++ tool's
float32 arithmetic: the two differ in the last float32 bit at most, and ``pdqhash`` is the reference the agreement
tests hold us to. Low-quality hashes (quality < 50) are returned with their quality, never as an empty string; the
matcher decides what to do with them. Images smaller than 5 px in either dimension get the reference's answer: an
all-zero hash with quality 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from cleanset.records import DIHEDRAL_NAMES
from cleanset.signals import SIGNALS
from cleanset.signals import pdq_kernel as k
from cleanset.signals.base import Metric, PixelSignal, SignalExample
from cleanset.signals.examples import example_png
from cleanset.signals.phash import GreyPlan, lanczos_span, phash_from_blocks
from cleanset.signals.phash import dct_rows as phash_dct_rows

DOWNSAMPLE_DIMS = 512  # the C++ tool's DOWNSAMPLE_DIMS
ZERO_HEX = "0" * 64


@dataclass(frozen=True, slots=True)
class PdqResult:
    """A PDQ hash, its quality (0-100), and the hashes of its eight rotations/flips (``DIHEDRAL_NAMES`` order;
    ``dihedral[0] == hex``)."""

    hex: str
    quality: int
    dihedral: tuple[str, ...]

    def by_name(self) -> dict[str, str]:
        return dict(zip(DIHEDRAL_NAMES, self.dihedral, strict=True))


def _words_hex(words: np.ndarray) -> tuple[str, ...]:
    # The reference prints word 15 first, each as four hex digits (big-endian uint16); one conversion for all
    # the hashes (eight, or sixteen for both dialects), then cut.
    text = words[:, ::-1].astype(">u2").tobytes().hex()
    return tuple(text[i : i + 64] for i in range(0, len(text), 64))


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 array, got shape {rgb.shape} dtype {rgb.dtype}")
    return rgb


def result_from_samples(samples: np.ndarray) -> PdqResult:
    """Quality, DCT and the eight hashes from the reference's 64x64 float32 buffer."""
    quality, words = k.hash_samples(samples, k.dct_matrix())
    hexes = _words_hex(words)
    return PdqResult(hex=hexes[0], quality=int(quality), dihedral=hexes)


def too_small(rgb: np.ndarray) -> bool:
    return rgb.shape[0] < k.MIN_HASHABLE_DIM or rgb.shape[1] < k.MIN_HASHABLE_DIM


ZERO_RESULT = PdqResult(hex=ZERO_HEX, quality=0, dihedral=(ZERO_HEX,) * 8)

_NO_GREY_SUM = np.zeros((1, 1), dtype=np.float64)
_NO_INDEX = np.zeros(0, dtype=np.int64)


def scan(
    rgb: np.ndarray,
    grey_block_rows: int = 0,
    grey_block_cols: int = 0,
    grey_sum: np.ndarray | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The 64x64 PDQ buffer of ``rgb`` (one pass), optionally writing luma block sums into ``grey_sum``
    (every block; its previous contents do not matter).

    When ``rgb`` is the first three channels of an HxWx4 buffer (what ``imaging.decode`` returns for JPEG), the
    scan reads whole 32-bit pixels from that buffer, which is faster and gives the same values.

    With ``size`` (rows, cols), the buffer of the image nearest-neighbour resized to that size, as the C++ tool
    resizes (source index ``floor(i * n / size)``), without materialising it.
    """
    rgb = _as_rgb(rgb)
    row_index = col_index = None
    n_rows, n_cols = rgb.shape[:2]
    if size is not None:
        n_rows, n_cols = size
        row_index = _nearest_index(rgb.shape[0], n_rows)
        col_index = _nearest_index(rgb.shape[1], n_cols)
    if n_rows == 64 and n_cols == 64:
        # pdqhash.compute hashes a 64x64 image without blurring it
        if row_index is not None and col_index is not None:
            rgb = k.gather(rgb, row_index, col_index)
        return k.luma_64x64(rgb)
    row_start, row_w = k.tent_weights(n_rows)
    col_start, col_w = k.tent_weights(n_cols)
    return k.scan_image(
        rgb,
        k.LUMA_R,
        k.LUMA_G,
        k.LUMA_B,
        row_start,
        row_w,
        col_start,
        col_w,
        grey_block_rows,
        grey_block_cols,
        _NO_GREY_SUM if grey_sum is None else grey_sum,
        row_index,
        col_index,
        _words(rgb),
    )


def scan_both(
    rgb: np.ndarray,
    grey_block_rows: int = 0,
    grey_block_cols: int = 0,
    grey_sum: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The 64x64 buffers of both dialects (full resolution, and the 512x512 resize of an image larger than that),
    with pHash's block sums as in ``scan``, from one pass that computes each pixel's luma once.

    Separate scans convert the pixel rows the 512 resize reads a second time; the shared pass gathers them from
    the luma row already computed. Bit-identical to ``scan(rgb)`` and ``scan(rgb, size=(512, 512))``.
    """
    rgb = _as_rgb(rgb)
    n_rows, n_cols = rgb.shape[:2]
    if not needs_resize_512(rgb) or (n_rows, n_cols) == (64, 64):
        full = scan(rgb, grey_block_rows, grey_block_cols, grey_sum)
        return full, full if not needs_resize_512(rgb) else scan(rgb, size=(DOWNSAMPLE_DIMS, DOWNSAMPLE_DIMS))
    row_start, row_w = k.tent_weights(n_rows)
    col_start, col_w = k.tent_weights(n_cols)
    small_start, small_w = k.tent_weights(DOWNSAMPLE_DIMS)
    return k.scan_shared(
        rgb,
        _words(rgb),
        k.LUMA_R,
        k.LUMA_G,
        k.LUMA_B,
        row_start,
        row_w,
        col_start,
        col_w,
        _nearest_index(n_rows),
        _nearest_index(n_cols),
        small_start,
        small_w,
        small_start,
        small_w,
        grey_block_rows,
        grey_block_cols,
        _NO_GREY_SUM if grey_sum is None else grey_sum,
    )


def shared_pass(
    rgb: np.ndarray, plan: GreyPlan | None = None, resize_512: bool = False
) -> tuple[PdqResult, PdqResult | None, str | None]:
    """Everything the engine's shared pass gives, from one compiled call: the PDQ result, the pdq512 result when
    ``resize_512`` (and the image is larger than 512 px; else None), and the pHash from ``plan``'s block sums
    (None without a plan). The same values as ``scan_both``, ``result_from_samples`` and ``phash_from_blocks``
    called one by one; the one call saves their overhead, which is large right after a scan (see
    ``pdq_kernel.hash_pass``).
    """
    rgb = _as_rgb(rgb)
    if too_small(rgb):
        raise ValueError(f"image of {rgb.shape[1]}x{rgb.shape[0]} is below PDQ's {k.MIN_HASHABLE_DIM} px")
    n_rows, n_cols = rgb.shape[:2]
    small = resize_512 and needs_resize_512(rgb)
    if (n_rows, n_cols) == (64, 64):  # unblurred: the separate functions' own case
        full_samples, small_samples = scan_both(rgb) if small else (scan(rgb), None)
        grey_hex = phash_from_blocks(plan.means()) if plan is not None else None
        full_res = result_from_samples(full_samples)
        return full_res, result_from_samples(small_samples) if small_samples is not None else None, grey_hex
    head, tail = _pass_geometry(n_rows, n_cols, small, plan.sums.shape if plan is not None else None)
    grey: tuple[Any, ...] = _NO_GREY if plan is None else (plan.block_rows, plan.block_cols, plan.sums, plan.counts)
    quality, words, quality512, words512, bits = k.hash_pass(rgb, _words(rgb), *head, *grey, *tail)
    if small:
        hexes = _words_hex(np.concatenate((words, words512)))  # one conversion for both dialects
        full_res = PdqResult(hex=hexes[0], quality=int(quality), dihedral=hexes[:8])
        small_res = PdqResult(hex=hexes[8], quality=int(quality512), dihedral=hexes[8:])
    else:
        hexes = _words_hex(words)
        full_res, small_res = PdqResult(hex=hexes[0], quality=int(quality), dihedral=hexes), None
    return full_res, small_res, f"{bits:016x}" if plan is not None else None


_NO_GREY = (0, 0, _NO_GREY_SUM, _NO_GREY_SUM)


@lru_cache(maxsize=256)
def _pass_geometry(
    n_rows: int, n_cols: int, small: bool, grey_shape: tuple[int, int] | None
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """``hash_pass``'s arguments that depend only on the image size (before and after the grey plan's): one cached
    lookup per image instead of a dozen."""
    row_start, row_w = k.tent_weights(n_rows)
    col_start, col_w = k.tent_weights(n_cols)
    small_start, small_w = k.tent_weights(DOWNSAMPLE_DIMS)
    head = (
        row_start,
        row_w,
        col_start,
        col_w,
        _nearest_index(n_rows) if small else _NO_INDEX,
        _nearest_index(n_cols) if small else _NO_INDEX,
        small_start,
        small_w,
        small_start,
        small_w,
    )
    if grey_shape is not None:
        lz_col_lo, lz_col_w = lanczos_span(grey_shape[1])
        lz_row_lo, lz_row_w = lanczos_span(grey_shape[0])
    else:
        lz_col_lo = lz_row_lo = _NO_INDEX
        lz_col_w = lz_row_w = _NO_GREY_SUM
    return head, (lz_col_lo, lz_col_w, lz_row_lo, lz_row_w, k.dct_matrix(), phash_dct_rows())


def _words(rgb: np.ndarray) -> np.ndarray | None:
    """``rgb``'s pixels as little-endian RGBX words, when ``rgb`` is a view of a C-contiguous HxWx4 buffer."""
    base = rgb.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == np.uint8
        and base.shape == (*rgb.shape[:2], 4)
        and base.flags["C_CONTIGUOUS"]
        and rgb.strides == base.strides
        and rgb.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    ):
        return base.view("<u4").reshape(rgb.shape[:2])
    return None


def pdq_rgb(rgb: np.ndarray) -> PdqResult:
    """PDQ (full-resolution dialect) of decoded RGB pixels, with its dihedral hashes."""
    rgb = _as_rgb(rgb)
    if too_small(rgb):
        return ZERO_RESULT
    return result_from_samples(scan(rgb))


@lru_cache(maxsize=1024)
def _nearest_index(n: int, size: int = DOWNSAMPLE_DIMS) -> np.ndarray:
    return (np.arange(size, dtype=np.int64) * n) // size


def needs_resize_512(rgb: np.ndarray) -> bool:
    return rgb.shape[0] > DOWNSAMPLE_DIMS or rgb.shape[1] > DOWNSAMPLE_DIMS


def resize_512(rgb: np.ndarray) -> np.ndarray:
    """The C++ tool's resize: 512x512 by nearest neighbour when either side exceeds 512, else unchanged."""
    if not needs_resize_512(rgb):
        return rgb
    return k.gather(rgb, _nearest_index(rgb.shape[0]), _nearest_index(rgb.shape[1]))


def pdq512_rgb(rgb: np.ndarray) -> PdqResult:
    """PDQ in the C++ tool's dialect (see the module docstring)."""
    rgb = _as_rgb(rgb)
    if not needs_resize_512(rgb):
        return pdq_rgb(rgb)
    return result_from_samples(scan(rgb, size=(DOWNSAMPLE_DIMS, DOWNSAMPLE_DIMS)))


# Expected values below were produced by the reference, ``pdqhash`` 0.2.8 (``compute``), on the pixels of
# ``example_png(name)``, and for pdq512 on those pixels after the C++ tool's nearest-neighbour resize.
_PDQ_EXAMPLES = {
    "waves-96x128": "a57fffd5d400a43f03ff7e40e440e83fc3fe0f803c6dee1f887831c0678511a0",
    "rings-700x900": "3b1b5564eb651c98d4e4a564189bd4d4d4e41a9b589b58db2b2b2b2b2b3bd4cc",
    "steps-40x300": "25f5fb555200e6027a82a112cd78ba65adff612f85d7da73502af8ee72a0431e",
}
_PDQ512_EXAMPLES = {
    "waves-96x128": "a57fffd5d400a43f03ff7e40e440e83fc3fe0f803c6dee1f887831c0678511a0",
    "rings-700x900": "3b1bd564eb651c90d4e4a564589bd4c4d4e41a9b589b58db2b2b2b2b2b3bd4cc",
}


@SIGNALS.register("pdq")
class PdqSignal(PixelSignal):
    """256-bit PDQ, full-resolution dialect (python-threatexchange / HMA)."""

    name = "pdq"
    bits = 256
    metric = Metric.HAMMING
    default_threshold = 31
    quality_gated = True
    column = "pdq"
    dihedral = True
    by_default = True
    rank = 40

    @classmethod
    def compute_rgb(cls, rgb: np.ndarray) -> str:
        return pdq_rgb(rgb).hex

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return [SignalExample(example_png(n), v, note=n) for n, v in _PDQ_EXAMPLES.items()]


@SIGNALS.register("pdq512")
class Pdq512Signal(PixelSignal):
    """256-bit PDQ as Meta's C++ tool computes it (512x512 nearest-neighbour resize first); matched against
    banks' ``pdq`` entries."""

    name = "pdq512"
    bits = 256
    metric = Metric.HAMMING
    default_threshold = 31
    quality_gated = True  # its probes are ``pdq`` probes, with a PDQ quality
    bank_signal = "pdq"
    column = "pdq512"
    dihedral = True
    by_default = True
    rank = 50

    @classmethod
    def compute_rgb(cls, rgb: np.ndarray) -> str:
        return pdq512_rgb(rgb).hex

    @classmethod
    def examples(cls) -> Sequence[SignalExample]:
        return [SignalExample(example_png(n), v, note=n) for n, v in _PDQ512_EXAMPLES.items()]
