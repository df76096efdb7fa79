"""Compiled PDQ core: the 64x64 blurred samples, the quality score, the 16x16 DCT and the eight dihedral hashes.

Why this is not a port of the reference loop. Meta's PDQ blurs the whole luma image with two passes of a box filter
in each direction (a tent filter, the "Jarosz" filter) and then reads only 64x64 of the blurred pixels. The blur is
linear and separable, so each of those 64x64 values is a weighted sum of the pixels in a small window:

    sample[r, c] = sum_x H[c, x] * (sum_y V[r, y] * luma[y, x])

where ``V[r]`` and ``H[c]`` are the tent weights (box filter applied to a box filter, with the reference's edge
normalisation) of sample row ``r`` and sample column ``c``. Windows are about ``dim/128`` wide and samples
``dim/64`` apart, so every pixel row feeds about one sample row: one pass over the image with one vectorised
multiply-add per pixel (after luma) replaces four full-image passes, and the horizontal weights are applied to the
64 resulting rows only. The weights are exact in float64 and the sums are accumulated in float64; the reference
accumulates running sums in float32, so the two differ by rounding only, which moves a hash bit only when a DCT
coefficient sits within rounding of the median (measured in tests/signals/test_pdq_agreement.py: identical on every
photo of the corpus).

Everything after the 64x64 samples (quality, DCT, median, bits, dihedral sign/transposes) is done in float32 in the
reference's order of operations, so it is bit-exact given the same samples. numba runs without fastmath: fused or
reordered float operations would break that agreement.

pHash's share of the pass (block sums of the same luma, Lanczos down to 32x32, DCT, median) is compiled here too, and
``hash_pass`` runs the scan and every hash after it in one call (see its docstring for why that matters).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils
from numba.core import types as nbtypes
from numba.extending import intrinsic

NUM_SAMPLES = 64
MIN_HASHABLE_DIM = 5  # the reference returns a zero hash and quality 0 below this


# Luma contributions per 8-bit channel value: float64(v) * coefficient, exactly the products pdqhash's NumPy code
# forms (uint8 array times a Python float is float64), so table lookups give the same sums in the same order.
LUMA_R = np.arange(256, dtype=np.float64) * 0.299
LUMA_G = np.arange(256, dtype=np.float64) * 0.587
LUMA_B = np.arange(256, dtype=np.float64) * 0.114


def jarosz_window(dim: int) -> int:
    """Box window the reference uses along a dimension of ``dim`` pixels (``ceil(dim / 128)``)."""
    return (dim + 2 * NUM_SAMPLES - 1) // (2 * NUM_SAMPLES)


def sample_indices(dim: int) -> np.ndarray:
    """Pixel index the reference reads for each of the 64 samples: centres, not corners."""
    return np.array([int(((i + 0.5) * dim) / NUM_SAMPLES) for i in range(NUM_SAMPLES)], dtype=np.int64)


@njit(cache=True, nogil=True)
def _tent_rows(dim: int, window: int, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = (window + 2) // 2
    lo = np.empty(dim, dtype=np.int64)
    hi = np.empty(dim, dtype=np.int64)
    for kk in range(dim):
        lo[kk] = max(kk - (window - half), 0)
        hi[kk] = min(kk + half - 1, dim - 1)
    width = 0
    for s in range(samples.shape[0]):
        c = samples[s]
        width = max(width, hi[hi[c]] - lo[lo[c]] + 1)
    width = min(width, dim)
    starts = np.empty(samples.shape[0], dtype=np.int64)
    weights = np.zeros((samples.shape[0], width), dtype=np.float64)
    for s in range(samples.shape[0]):
        c = samples[s]
        # keep every row inside the image so the scan never reads past an edge
        start = min(lo[lo[c]], dim - width)
        starts[s] = start
        count_c = hi[c] - lo[c] + 1
        for kk in range(lo[c], hi[c] + 1):
            wk = 1.0 / (count_c * (hi[kk] - lo[kk] + 1))
            for jj in range(lo[kk], hi[kk] + 1):
                weights[s, jj - start] += wk
    return starts, weights


@lru_cache(maxsize=1024)
def tent_weights(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(start[64], weights[64, L]) of box∘box at the 64 sample positions along a dimension of ``dim`` pixels.

    Row ``s`` of ``weights`` holds the weights of pixels ``start[s] .. start[s] + L - 1`` (zero-padded to a common
    length L), in float64. The reference's box filter writes output ``k`` as the mean of inputs
    ``k - (window - half) .. k + half - 1`` with ``half = (window + 2) // 2``, clipped at the edges and divided by
    the number of inputs actually summed; box∘box at sample ``c`` is the mean over ``k`` in ``c``'s window of
    those means.
    """
    return _tent_rows(dim, jarosz_window(dim), sample_indices(dim))


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """16x64 DCT-II rows 1..16, built the way the reference builds it (float scale times double cosine)."""
    scale = np.float32(np.sqrt(2.0 / 64.0))
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(64, dtype=np.float64)[None, :]
    return (np.float64(scale) * np.cos((np.pi / 2.0 / 64.0) * i * (2.0 * j + 1.0))).astype(np.float32)


@njit(cache=True, nogil=True, inline="always")
def _block_sums_of(band: np.ndarray, block_cols: int, acc: np.ndarray) -> None:
    whole = band.shape[0] // block_cols
    for bx in range(whole):
        s = 0.0
        base = bx * block_cols
        for j in range(block_cols):
            s += band[base + j]
        acc[bx] = s
    for bx in range(whole, acc.shape[0]):
        s = 0.0
        for x in range(bx * block_cols, band.shape[0]):
            s += band[x]
        acc[bx] = s
    band[:] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _block_sums(band: np.ndarray, block_cols: int, acc: np.ndarray) -> None:
    """One row of pHash block sums from the column sums ``band`` of a band of pixel rows (``scan_image``).

    The order of the additions does not change the result: every luma is a float32 multiple of 2**-27 below 256
    and a block holds under 2**18 pixels (1/65536 of an image), so every partial sum is a multiple of 2**-27 below
    2**26, exact in float64.

    The widths of images up to 2,303 px (2 to 8 columns a block) are compiled with the width as a constant: the
    compiler then unrolls each block's sum and interleaves neighbouring blocks, which halves the cost (with a
    variable width, summing the blocks cost a fifth of the pass).
    """
    if block_cols == 4:
        _block_sums_of(band, 4, acc)
    elif block_cols == 5:
        _block_sums_of(band, 5, acc)
    elif block_cols == 6:
        _block_sums_of(band, 6, acc)
    elif block_cols == 7:
        _block_sums_of(band, 7, acc)
    elif block_cols == 8:
        _block_sums_of(band, 8, acc)
    elif block_cols == 2:
        _block_sums_of(band, 2, acc)
    elif block_cols == 3:
        _block_sums_of(band, 3, acc)
    else:
        _block_sums_of(band, block_cols, acc)


_THOUSAND = np.float32(1000.0)
_BYTE = np.uint32(0xFF)


@njit(cache=True, nogil=True, inline="always")
def _word_luma(w: Any) -> np.float32:
    """The reference's luma of one RGBX word, ``float32(0.299 R + 0.587 G + 0.114 B)`` with float64 products and
    sums, computed as ``float32(299 R + 587 G + 114 B) / 1000`` at the full SIMD width.

    Why it is the same number: ``299 R + 587 G + 114 B`` is an integer below 2**24, so float32 holds it exactly, and
    IEEE division rounds the true quotient by 1,000 once, correctly. The float64 expression lies within a few
    float64 units of that quotient, and a quotient ``N / 1000`` is never within ``2**-28`` of a point where float32
    rounding changes (it is not dyadic unless it is a multiple of 1/8, which float32 holds exactly), so both round
    to the same float32. tests/signals/test_pdq_kernel.py checks all 2**24 colours.

    The integer is formed in 32-bit integer arithmetic and converted once: three conversions and float products
    per pixel (with the channels widened to 64-bit integers) made the pixel loop a quarter slower.
    """
    n = (w & _BYTE) * np.uint32(299) + ((w >> np.uint32(8)) & _BYTE) * np.uint32(587)
    n += ((w >> np.uint32(16)) & _BYTE) * np.uint32(114)
    return np.float32(np.int32(n)) / _THOUSAND


@njit(cache=True, nogil=True)
def scan_image(
    rgb: np.ndarray,
    lut_r: np.ndarray,
    lut_g: np.ndarray,
    lut_b: np.ndarray,
    row_start: np.ndarray,
    row_w: np.ndarray,
    col_start: np.ndarray,
    col_w: np.ndarray,
    grey_block_rows: int,
    grey_block_cols: int,
    grey_sum: np.ndarray,
    row_index: np.ndarray | None = None,
    col_index: np.ndarray | None = None,
    words: np.ndarray | None = None,
) -> np.ndarray:
    """One pass over the pixels: the reference's blurred-and-decimated 64x64 luma buffer, evaluated at the samples
    only, and (when ``grey_block_rows`` > 0) block sums of the same luma into ``grey_sum`` for the 64-bit pHash.

    With ``row_index``/``col_index`` the image scanned is ``rgb[row_index][:, col_index]`` (the C++ tool's
    nearest-neighbour resize) without building it; numba compiles the plain and the indexed case separately.

    ``words``, when given, is the same image as 32-bit little-endian RGBX pixels (``rgb`` is then only a view of
    it): whole-pixel loads let the luma loop vectorise, about a third faster than three byte lookups, and give the
    same float32 luma as the lookup tables' float64 products (see ``_word_luma``).

    Each pixel row is added, weighted, into the full-width rows of the one or two sample rows whose vertical tent
    covers it (independent multiply-adds that vectorise); the horizontal tent is applied once at the end, to 64
    rows instead of to every pixel row.
    """
    n_rows = rgb.shape[0] if row_index is None else row_index.shape[0]
    n_cols = rgb.shape[1] if col_index is None else col_index.shape[0]
    lv = row_w.shape[1]
    lh = col_w.shape[1]
    vert = np.zeros((64, n_cols), dtype=np.float64)
    # float32, like the reference's luma buffer; storing float32 (not float64 holding float32 values) also lets the
    # loops vectorise
    luma = np.empty(n_cols, dtype=np.float32)
    want_grey = grey_block_rows > 0
    band = np.zeros(n_cols if want_grey else 1, dtype=np.float64)
    first = 0  # first sample row whose vertical window has not ended yet
    for y in range(n_rows):
        while first < 64 and row_start[first] + lv <= y:
            first += 1
        in_window = first < 64 and row_start[first] <= y
        if not in_window and not want_grey:
            if first == 64:
                break
            continue
        sy = y if row_index is None else row_index[y]
        if words is not None and col_index is None:
            wrow = words[sy]
            for x in range(n_cols):
                luma[x] = _word_luma(wrow[x])
        elif words is not None and col_index is not None:
            wrow = words[sy]
            for x in range(n_cols):
                luma[x] = _word_luma(wrow[col_index[x]])
        elif col_index is None:
            for x in range(n_cols):
                # pdqhash's NumPy luma: float64 products summed left to right, rounded to float32
                v = lut_r[rgb[sy, x, 0]] + lut_g[rgb[sy, x, 1]] + lut_b[rgb[sy, x, 2]]
                luma[x] = np.float32(v)
        else:
            for x in range(n_cols):
                sx = col_index[x]
                v = lut_r[rgb[sy, sx, 0]] + lut_g[rgb[sy, sx, 1]] + lut_b[rgb[sy, sx, 2]]
                luma[x] = np.float32(v)
        if want_grey:
            for x in range(n_cols):
                band[x] += np.float64(luma[x])
            if (y + 1) % grey_block_rows == 0 or y == n_rows - 1:
                _block_sums(band, grey_block_cols, grey_sum[y // grey_block_rows])
        r = first
        while r < 64 and row_start[r] <= y:
            wv = row_w[r, y - row_start[r]]
            if wv != 0.0:
                for x in range(n_cols):
                    vert[r, x] += wv * np.float64(luma[x])
            r += 1
    out = np.empty((64, 64), dtype=np.float32)
    for i in range(64):
        for c in range(64):
            s = 0.0
            x0 = col_start[c]
            for k in range(lh):
                s += col_w[c, k] * vert[i, x0 + k]
            out[i, c] = np.float32(s)
    return out


@njit(cache=True, nogil=True)
def luma_64x64(rgb: np.ndarray) -> np.ndarray:
    """Luma of an image that is already 64x64: the reference hashes it without blurring."""
    out = np.empty((64, 64), dtype=np.float32)
    for y in range(64):
        for x in range(64):
            v = rgb[y, x, 0] * 0.299 + rgb[y, x, 1] * 0.587 + rgb[y, x, 2] * 0.114
            out[y, x] = np.float32(v)
    return out


@njit(cache=True, nogil=True)
def quality_score(a: np.ndarray) -> int:
    """The reference's heuristic: count of significant gradients in the 64x64 buffer, scaled to 0..100."""
    total = 0
    hundred = np.float32(100.0)
    denom = np.float32(255.0)
    for i in range(63):
        for j in range(64):
            d = int(((a[i, j] - a[i + 1, j]) * hundred) / denom)
            total += abs(d)
    for i in range(64):
        for j in range(63):
            d = int(((a[i, j] - a[i, j + 1]) * hundred) / denom)
            total += abs(d)
    q = total // 90
    return 100 if q > 100 else q


@njit(cache=True, nogil=True)
def dct_16x16(a: np.ndarray, d: np.ndarray) -> np.ndarray:
    """B = D A D^T in float32 with the reference's summation order.

    Each output is still summed over ``k`` in order from zero, but the loops run ``k`` outside and the output
    column inside, so neighbouring outputs are added side by side in vector registers instead of one long chain
    of dependent additions per output (which made this a fifth of the hashing after the scan).
    """
    t = np.zeros((16, 64), dtype=np.float32)
    for i in range(16):
        for k in range(64):
            dik = d[i, k]
            for j in range(64):
                t[i, j] += dik * a[k, j]
    dt = np.ascontiguousarray(d.T)
    b = np.zeros((16, 16), dtype=np.float32)
    for i in range(16):
        for k in range(64):
            tik = t[i, k]
            for j in range(16):
                b[i, j] += tik * dt[k, j]
    return b


@njit(cache=True, nogil=True)
def _bits(b: np.ndarray, median: np.float32, words: np.ndarray, which: int) -> None:
    """Bit (i, j) is set when coefficient (i, j) exceeds the lower median (the reference's Torben median)."""
    for i in range(16):
        w = 0
        for j in range(16):
            if b[i, j] > median:
                w |= 1 << j
        words[which, i] = w


@njit(cache=True, nogil=True)
def select_kth(v: np.ndarray, kth: int) -> Any:
    """The ``kth`` smallest value of ``v`` (0-based), reordering ``v`` in place: the value ``np.partition`` and a
    full sort give, from a plain quickselect.

    Why not ``np.partition``/``np.sort``: their compiled code is large, and these selections run once per image
    after the scan, with their code out of the caches; on a freshly decoded photo the small loop saves more than
    the selections themselves cost.
    """
    lo = 0
    hi = v.shape[0] - 1
    while lo < hi:
        pivot = v[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while v[i] < pivot:
                i += 1
            while v[j] > pivot:
                j -= 1
            if i <= j:
                t = v[i]
                v[i] = v[j]
                v[j] = t
                i += 1
                j -= 1
        # now v[lo..j] <= pivot <= v[i..hi], and anything between equals the pivot
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            break
    return v[kth]


@njit(cache=True, nogil=True)
def _lower_median(b: np.ndarray) -> np.float32:
    # The 128th smallest value; a selection finds the same value as a full sort, in about half the time.
    return select_kth(b.copy().ravel(), 127)


@njit(cache=True, nogil=True)
def dihedral_words(b: np.ndarray) -> np.ndarray:
    """Hash words (8 x 16 uint16-valued) of the eight rotations/flips, from the one DCT by sign flips/transposes.

    Order: original, rotate90, rotate180, rotate270, flipx, flipy, flipplus1, flipminus1 (the reference's order).

    A transpose does not change which values the coefficients take, only where, so the eight transforms have four
    medians between them (original = flipplus1, rotate180 = flipminus1, rotate90 = flipy, rotate270 = flipx); each
    is sorted for once.
    """
    words = np.zeros((8, 16), dtype=np.int64)
    aux = np.empty((16, 16), dtype=np.float32)
    medians = np.empty(4, dtype=np.float32)
    medians[0] = _lower_median(b)
    for t in range(1, 8):
        for i in range(16):
            for j in range(16):
                v = b[i, j]
                if t == 1:  # rotate90: transpose, negate even columns
                    aux[j, i] = v if (j & 1) else -v
                elif t == 2:  # rotate180
                    aux[i, j] = -v if ((i + j) & 1) else v
                elif t == 3:  # rotate270: transpose, negate even rows
                    aux[j, i] = v if (i & 1) else -v
                elif t == 4:  # flipx
                    aux[i, j] = v if (i & 1) else -v
                elif t == 5:  # flipy
                    aux[i, j] = v if (j & 1) else -v
                elif t == 6:  # flipplus1: transpose
                    aux[j, i] = v
                else:  # flipminus1
                    aux[j, i] = -v if ((i + j) & 1) else v
        if t <= 3:
            medians[t] = _lower_median(aux)
        _bits(aux, medians[(0, 1, 2, 3, 3, 1, 0, 2)[t]], words, t)
    _bits(b, medians[0], words, 0)
    return words


@njit(cache=True, nogil=True)
def hash_samples(samples: np.ndarray, dct: np.ndarray) -> tuple[int, np.ndarray]:
    """Quality and the eight hashes' words of a 64x64 buffer, in one call (each compiled call costs a dispatch)."""
    return quality_score(samples), dihedral_words(dct_16x16(samples, dct))


@njit(cache=True, nogil=True)
def gather(rgb: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rgb[rows][:, cols]`` without copying the full-width rows first (the C++ tool's nearest-neighbour resize)."""
    out = np.empty((rows.shape[0], cols.shape[0], 3), dtype=np.uint8)
    for i in range(rows.shape[0]):
        y = rows[i]
        for j in range(cols.shape[0]):
            x = cols[j]
            out[i, j, 0] = rgb[y, x, 0]
            out[i, j, 1] = rgb[y, x, 1]
            out[i, j, 2] = rgb[y, x, 2]
    return out


@njit(cache=True, nogil=True, inline="always")
def _luma_row(
    rgb: np.ndarray,
    words: np.ndarray | None,
    y: int,
    lut_r: np.ndarray,
    lut_g: np.ndarray,
    lut_b: np.ndarray,
    luma: np.ndarray,
) -> None:
    # Inlined so that LLVM sees ``luma`` is the caller's own buffer and vectorises the loop (as a call it may not).
    if words is not None:
        wrow = words[y]
        for x in range(luma.shape[0]):
            luma[x] = _word_luma(wrow[x])
    else:
        for x in range(luma.shape[0]):
            luma[x] = np.float32(lut_r[rgb[y, x, 0]] + lut_g[rgb[y, x, 1]] + lut_b[rgb[y, x, 2]])


@njit(cache=True, nogil=True, inline="always")
def _words_row(
    wrow: np.ndarray, luma: np.ndarray, band: np.ndarray, grey: bool, nv: int, v0: Any, w0: float, v1: Any, w1: float
) -> None:
    """Luma of one row of RGBX words, added into the pHash band and the (at most two) open sample rows, in one
    loop: each pixel is loaded and converted once, and every value is still added in the order ``scan_image``
    adds it (per element, pixel row by pixel row), so the sums are bit-identical.

    One loop per case, so that each vectorises without a branch inside."""
    n = luma.shape[0]
    if grey:
        if nv == 2:
            for x in range(n):
                v = _word_luma(wrow[x])
                luma[x] = v
                f = np.float64(v)
                band[x] += f
                v0[x] += w0 * f
                v1[x] += w1 * f
        elif nv == 1:
            for x in range(n):
                v = _word_luma(wrow[x])
                luma[x] = v
                f = np.float64(v)
                band[x] += f
                v0[x] += w0 * f
        else:
            for x in range(n):
                v = _word_luma(wrow[x])
                luma[x] = v
                band[x] += np.float64(v)
    elif nv == 2:
        for x in range(n):
            v = _word_luma(wrow[x])
            luma[x] = v
            f = np.float64(v)
            v0[x] += w0 * f
            v1[x] += w1 * f
    elif nv == 1:
        for x in range(n):
            v = _word_luma(wrow[x])
            luma[x] = v
            v0[x] += w0 * np.float64(v)
    else:
        for x in range(n):
            luma[x] = _word_luma(wrow[x])


def _prefetch_impl(typingctx: Any, arr: Any, idx: Any) -> Any:
    """Ask for the cache line holding ``arr[idx]`` (LLVM's ``prefetch``: read, keep in every level); no effect on
    results, and no fault on any address."""
    sig = nbtypes.void(arr, idx)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch: Any = intrinsic(_prefetch_impl)
# Pixel rows ahead of the one being hashed that ``scan_shared`` asks the memory system for.
_PREFETCH_ROWS = 8


@njit(cache=True, nogil=True, inline="always")
def _open_rows(row_start: np.ndarray, lv: int) -> int:
    """How many sample rows' vertical windows can be open at once: the ring of row buffers needs that many."""
    most = 1
    for r in range(64):
        c = 0
        for q in range(r, 64):
            if row_start[q] < row_start[r] + lv:
                c += 1
        most = max(most, c)
    return most


@njit(cache=True, nogil=True, inline="always")
def _horizontal_row(v: np.ndarray, col_start: np.ndarray, col_w: np.ndarray, out: np.ndarray) -> None:
    """The horizontal tent of one finished sample row: ``out[c] = sum_k col_w[c, k] * v[col_start[c] + k]``, each
    summed over ``k`` in order from zero (the order the separate scan, ``scan_image``, adds in).

    Eight outputs at a time, each in its own scalar accumulator: eight independent chains of multiply-adds over
    contiguous weights and pixels, where the 64 sums side by side in an array read both at scattered places."""
    lh = col_w.shape[1]
    for c in range(0, 64, 8):
        x0, x1, x2, x3 = col_start[c], col_start[c + 1], col_start[c + 2], col_start[c + 3]
        x4, x5, x6, x7 = col_start[c + 4], col_start[c + 5], col_start[c + 6], col_start[c + 7]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for k in range(lh):
            s0 += col_w[c, k] * v[x0 + k]
            s1 += col_w[c + 1, k] * v[x1 + k]
            s2 += col_w[c + 2, k] * v[x2 + k]
            s3 += col_w[c + 3, k] * v[x3 + k]
            s4 += col_w[c + 4, k] * v[x4 + k]
            s5 += col_w[c + 5, k] * v[x5 + k]
            s6 += col_w[c + 6, k] * v[x6 + k]
            s7 += col_w[c + 7, k] * v[x7 + k]
        out[c] = np.float32(s0)
        out[c + 1] = np.float32(s1)
        out[c + 2] = np.float32(s2)
        out[c + 3] = np.float32(s3)
        out[c + 4] = np.float32(s4)
        out[c + 5] = np.float32(s5)
        out[c + 6] = np.float32(s6)
        out[c + 7] = np.float32(s7)


@njit(cache=True, nogil=True)
def scan_shared(
    rgb: np.ndarray,
    words: np.ndarray | None,
    lut_r: np.ndarray,
    lut_g: np.ndarray,
    lut_b: np.ndarray,
    row_start: np.ndarray,
    row_w: np.ndarray,
    col_start: np.ndarray,
    col_w: np.ndarray,
    small_rows: np.ndarray,
    small_cols: np.ndarray,
    small_row_start: np.ndarray,
    small_row_w: np.ndarray,
    small_col_start: np.ndarray,
    small_col_w: np.ndarray,
    grey_block_rows: int,
    grey_block_cols: int,
    grey_sum: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``scan_image`` of the full image, of its nearest-neighbour resize to ``small_rows`` x ``small_cols`` (source
    indices; empty for none) and the pHash block sums, from one luma computation per pixel row.

    Each full-resolution luma row is computed once and feeds the full-size samples, the grey blocks and every
    resized row that copies it (accumulated at full width, gathered at ``small_cols`` once per finished sample
    row). Every float operation is the one ``scan_image`` does, in the same order, so both buffers are
    bit-identical to two separate scans. Returns (full, small); ``small`` is ``full`` when no resize was asked
    for.

    Only the few sample rows whose vertical window covers the current pixel row are held (a ring of row buffers),
    and each gets its horizontal tent as soon as its window ends: the working set stays in the core's own cache
    instead of a 64-row float64 buffer the size of a megabyte that is read again at the end.
    """
    n_rows = rgb.shape[0]
    n_cols = rgb.shape[1]
    lv = row_w.shape[1]
    n_ring = _open_rows(row_start, lv)
    ring = np.empty((n_ring, n_cols), dtype=np.float64)
    out = np.empty((64, 64), dtype=np.float32)
    luma = np.empty(n_cols, dtype=np.float32)
    want_grey = grey_block_rows > 0
    band = np.zeros(n_cols if want_grey else 1, dtype=np.float64)
    n_small = small_rows.shape[0]
    want_small = n_small > 0
    ns_cols = small_cols.shape[0]
    lvs = small_row_w.shape[1]
    n_small_ring = _open_rows(small_row_start, lvs) if want_small else 1
    # Each resized sample row is accumulated at full width and gathered at ``small_cols`` when it is finished:
    # the resized value (i, j) gets exactly the operations, in the same order, as full-width column
    # ``small_cols[j]``, and adding whole contiguous rows vectorises where a gathered row does not (the gathered
    # rows cost a sixth of the pass).
    small_ring = np.empty((n_small_ring, n_cols if want_small else 1), dtype=np.float64)
    small_row = np.empty(ns_cols, dtype=np.float64)
    small_out = np.empty((64, 64), dtype=np.float32)
    opened = 0  # sample rows opened so far (their window has started)
    first = 0  # first sample row not yet finished
    small_opened = 0
    small_first = 0
    si = 0  # next row of the resized image
    for y in range(n_rows):
        while opened < 64 and row_start[opened] <= y:
            ring[opened % n_ring, :] = 0.0
            opened += 1
        in_window = first < opened
        small_here = si < n_small and small_rows[si] == y
        if not (in_window or want_grey or small_here):
            if first == 64 and si >= n_small:
                break
            continue
        nv = 0
        r0 = r1 = first
        for r in range(first, opened):
            if row_w[r, y - row_start[r]] != 0.0:
                if nv == 0:
                    r0 = r
                elif nv == 1:
                    r1 = r
                nv += 1
        if words is not None and y + _PREFETCH_ROWS < n_rows:
            # The decoder's output has mostly left the core's caches by the time it is hashed, and the hardware
            # prefetcher, which stops at each 4 KiB page, keeps only a little ahead of a loop this busy: asking
            # for the rows a few steps ahead took up to a tenth off the pass on a freshly decoded image while the
            # machine's memory was busy, and cost nothing measurable when it was not.
            ahead = words[y + _PREFETCH_ROWS]
            for xp in range(0, n_cols, 16):
                _prefetch(ahead, xp)
        if words is not None and nv <= 2:
            _words_row(
                words[y],
                luma,
                band,
                want_grey,
                nv,
                ring[r0 % n_ring],
                row_w[r0, y - row_start[r0]],
                ring[r1 % n_ring],
                row_w[r1, y - row_start[r1]],
            )
        else:
            _luma_row(rgb, words, y, lut_r, lut_g, lut_b, luma)
            if want_grey:
                for x in range(n_cols):
                    band[x] += np.float64(luma[x])
            for r in range(first, opened):
                wv = row_w[r, y - row_start[r]]
                if wv != 0.0:
                    v = ring[r % n_ring]
                    for x in range(n_cols):
                        v[x] += wv * np.float64(luma[x])
        if want_grey and ((y + 1) % grey_block_rows == 0 or y == n_rows - 1):
            _block_sums(band, grey_block_cols, grey_sum[y // grey_block_rows])
        while first < opened and row_start[first] + lv - 1 <= y:
            _horizontal_row(ring[first % n_ring], col_start, col_w, out[first])
            first += 1
        if small_here:
            while si < n_small and small_rows[si] == y:  # an upscaled axis repeats source rows
                while small_opened < 64 and small_row_start[small_opened] <= si:
                    small_ring[small_opened % n_small_ring, :] = 0.0
                    small_opened += 1
                for r in range(small_first, small_opened):
                    wv = small_row_w[r, si - small_row_start[r]]
                    if wv != 0.0:
                        v = small_ring[r % n_small_ring]
                        for x in range(n_cols):
                            v[x] += wv * np.float64(luma[x])
                while small_first < small_opened and small_row_start[small_first] + lvs - 1 <= si:
                    v = small_ring[small_first % n_small_ring]
                    for x in range(ns_cols):
                        small_row[x] = v[small_cols[x]]
                    _horizontal_row(small_row, small_col_start, small_col_w, small_out[small_first])
                    small_first += 1
                si += 1
    if want_small:
        return out, small_out
    return out, out


# -- pHash's share of the pass (``signals/phash.py``) ---------------------------------------------------------------

PHASH_SIZE = 8  # imagehash's hash_size: the 8x8 low-frequency DCT coefficients


@njit(cache=True, nogil=True)
def lanczos_32(
    means_t: np.ndarray, col_lo: np.ndarray, col_w: np.ndarray, row_lo: np.ndarray, row_w: np.ndarray
) -> np.ndarray:
    """Pillow's two Lanczos passes (horizontal first, 8-bit rounding between and after) of a block-mean image,
    given transposed (``means_t[x, y]``), down to 32x32, reading only each output's window.

    Each output is summed over its window in input order; the loops run along the other axis so that each step is
    one vector multiply-add over a contiguous row (a dependent chain per output, or a dense product that mostly
    multiplies zeros, is several times slower)."""
    nby = means_t.shape[1]
    n_out = col_w.shape[0]
    tmp = np.empty((nby, n_out), dtype=np.float64)
    acc = np.empty(nby, dtype=np.float64)
    n_taps = col_w.shape[1]
    for xx in range(n_out):
        acc[:] = 0.0
        lo = col_lo[xx]
        k = 0
        while k + 4 <= n_taps:  # four taps a step, added in the same order: a quarter of the trips through acc
            w0, w1, w2, w3 = col_w[xx, k], col_w[xx, k + 1], col_w[xx, k + 2], col_w[xx, k + 3]
            s0, s1, s2, s3 = means_t[lo + k], means_t[lo + k + 1], means_t[lo + k + 2], means_t[lo + k + 3]
            for y in range(nby):
                acc[y] = acc[y] + s0[y] * w0 + s1[y] * w1 + s2[y] * w2 + s3[y] * w3
            k += 4
        while k < n_taps:
            wk = col_w[xx, k]
            src = means_t[lo + k]
            for y in range(nby):
                acc[y] += src[y] * wk
            k += 1
        for y in range(nby):
            tmp[y, xx] = min(max(np.floor(acc[y] + 0.5), 0.0), 255.0)
    small = np.empty((row_w.shape[0], n_out), dtype=np.float64)
    acc_out = np.empty(n_out, dtype=np.float64)
    for yy in range(row_w.shape[0]):
        acc_out[:] = 0.0
        lo = row_lo[yy]
        for k in range(row_w.shape[1]):
            wk = row_w[yy, k]
            t = tmp[lo + k]
            for xx in range(n_out):
                acc_out[xx] += t[xx] * wk
        for xx in range(n_out):
            small[yy, xx] = min(max(np.floor(acc_out[xx] + 0.5), 0.0), 255.0)
    return small


@njit(cache=True, nogil=True)
def phash_bits(pixels: np.ndarray, c: np.ndarray) -> Any:
    """``round(C P C^T, 6) > median`` as 64 bits, row-major, most significant first (``np.packbits`` order)."""
    n = pixels.shape[0]
    t = np.zeros((PHASH_SIZE, n), dtype=np.float64)
    for i in range(PHASH_SIZE):
        for k in range(n):
            cik = c[i, k]
            for m in range(n):
                t[i, m] += cik * pixels[k, m]
    low = np.empty(PHASH_SIZE * PHASH_SIZE, dtype=np.float64)
    for i in range(PHASH_SIZE):
        for j in range(PHASH_SIZE):
            s = 0.0
            for m in range(n):
                s += t[i, m] * c[j, m]
            low[i * PHASH_SIZE + j] = np.rint(s * 1e6) / 1e6  # np.round(s, 6): multiply, rint, divide
    half = low.shape[0] // 2
    ordered = low.copy()
    below = select_kth(ordered, half - 1)
    median = (below + select_kth(ordered, half)) / 2.0
    value = np.uint64(0)
    for b in range(low.shape[0]):
        value = (value << np.uint64(1)) | np.uint64(1 if low[b] > median else 0)
    return value


@njit(cache=True, nogil=True, error_model="numpy")
def _block_means_t(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(sums / counts).T``, contiguous, for ``lanczos_32``.

    Eight block rows at a time: divided along the rows (contiguous, so the divisions vectorise), then written out
    a whole cache line of the transposed output per column. ``error_model="numpy"`` only drops the zero-divisor
    check (counts are never zero), which otherwise keeps every division scalar."""
    nby, nbx = sums.shape
    out = np.empty((nbx, nby), dtype=np.float64)
    tmp = np.empty((8, nbx), dtype=np.float64)
    for y0 in range(0, nby, 8):
        h = min(8, nby - y0)
        for j in range(h):
            for x in range(nbx):
                tmp[j, x] = sums[y0 + j, x] / counts[y0 + j, x]
        if h == 8:  # each output line written whole, from eight values held in registers
            t0, t1, t2, t3, t4, t5, t6, t7 = tmp[0], tmp[1], tmp[2], tmp[3], tmp[4], tmp[5], tmp[6], tmp[7]
            for x in range(nbx):
                o = out[x]
                o[y0], o[y0 + 1], o[y0 + 2], o[y0 + 3] = t0[x], t1[x], t2[x], t3[x]
                o[y0 + 4], o[y0 + 5], o[y0 + 6], o[y0 + 7] = t4[x], t5[x], t6[x], t7[x]
        else:
            for x in range(nbx):
                for j in range(h):
                    out[x, y0 + j] = tmp[j, x]
    return out


# -- everything after the decode, in one call ------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def hash_pass(
    rgb: np.ndarray,
    words: np.ndarray | None,
    row_start: np.ndarray,
    row_w: np.ndarray,
    col_start: np.ndarray,
    col_w: np.ndarray,
    small_rows: np.ndarray,
    small_cols: np.ndarray,
    small_row_start: np.ndarray,
    small_row_w: np.ndarray,
    small_col_start: np.ndarray,
    small_col_w: np.ndarray,
    grey_block_rows: int,
    grey_block_cols: int,
    grey_sum: np.ndarray,
    grey_counts: np.ndarray,
    lz_col_lo: np.ndarray,
    lz_col_w: np.ndarray,
    lz_row_lo: np.ndarray,
    lz_row_w: np.ndarray,
    pdq_dct: np.ndarray,
    phash_dct: np.ndarray,
) -> tuple[int, np.ndarray, int, np.ndarray, Any]:
    """``scan_shared``, both dialects' quality and hash words, and the pHash bits, in one compiled call.

    Why one call: right after a scan of several megabytes the interpreter's and NumPy's code and data are out of
    the caches, and the dozen small calls that finish the hashes (block means, Lanczos, DCT, medians, dispatch)
    cost several times their arithmetic. Returns (quality, words, quality512, words512, phash bits); the 512
    pair repeats the first when ``small_rows`` is empty, and the pHash bits are 0 when ``grey_block_rows`` is 0.
    """
    full, small = scan_shared(
        rgb,
        words,
        LUMA_R,
        LUMA_G,
        LUMA_B,
        row_start,
        row_w,
        col_start,
        col_w,
        small_rows,
        small_cols,
        small_row_start,
        small_row_w,
        small_col_start,
        small_col_w,
        grey_block_rows,
        grey_block_cols,
        grey_sum,
    )
    quality, hash_words = hash_samples(full, pdq_dct)
    quality512, words512 = quality, hash_words
    if small_rows.shape[0] > 0:
        quality512, words512 = hash_samples(small, pdq_dct)
    bits = np.uint64(0)  # numba would widen a plain 0 and phash_bits' uint64 to float64
    if grey_block_rows > 0:
        means_t = _block_means_t(grey_sum, grey_counts)
        bits = phash_bits(lanczos_32(means_t, lz_col_lo, lz_col_w, lz_row_lo, lz_row_w), phash_dct)
    return quality, hash_words, quality512, words512, bits
