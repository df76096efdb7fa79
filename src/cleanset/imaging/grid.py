"""Find the cells of a grid or collage: dividing gutters, seams between pictures, and the regular layouts.

A collage is split by lines that cross the whole picture (or the whole cell being split): either a gutter, a band
of lines that are one flat colour, or a seam, a straight step where most pixels differ from the one across the
line. Both are read off one compiled pass over a strided copy (~160 samples a side), so an ordinary photo costs a
small fraction of its PDQ. A seam has to stand out: most of the line must be a strong step while the lines just
beside it are not (a textured photo has strong steps everywhere).

Collage makers put their lines at halves and thirds, and a thin gutter can fall between the strided samples, so
at those positions (when the strided copy hints at a step there) every full-resolution line is read: a flat run
is a gutter, and a line whose mean step jumps far above its neighbours' along the whole length is a seam even
where the two pictures share colours along part of it.

Pictures have lines of their own (horizons, stripes, planks). So: many lines across the whole picture are a
pattern, not a collage; the regular layout is proposed from the lines at halves/thirds alone, so a picture's own
line inside a cell does not cut it; and a lone seam anywhere else, with no gutter and nothing else backing it up,
is not proposed at all.

Uneven layouts (one big picture beside two stacked ones) are split the way they were made: first by the lines
that cross the whole image, then each cell again by the lines that cross that cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from cleanset.imaging.borders import Box, stride_for

GRID_SIDE = 160  # the strided copy has about this many pixels on its longest side
STEP_TOL = 32  # a luma step at least this large counts as strong
FLAT_STD = 4.0  # a gutter row's luma varies less than this (JPEG noise included)
MAX_GUTTER_SHARE = 0.06  # a wider flat band is background, not a gutter
SEAM_FRACTION = 0.75  # share of a line that must be a strong step, anywhere
REGULAR_SEAM_FRACTION = 0.42  # the same, at 1/2, 1/3, 2/3 of the way across
SEAM_PROMINENCE = 0.3  # the line must beat the lines two rows away by this share
SEAM_FRACTION_LONE = 0.5  # or: at least this share ...
SEAM_PROMINENCE_LONE = 0.35  # ... beating the lines beside it by this much
SEAM_MIN_MEAN = 10.0  # at a regular position, a line whose mean luma step is at least this ...
SEAM_MEAN_RATIO = 5.0  # ... and this many times the typical step of the rows around it is a seam too,
SEAM_NOISE = 8.0  # provided that a step of at least this much ...
SEAM_LENGTH = 0.7  # ... runs along this share of the line
REGULAR_POSITIONS = (1 / 3, 1 / 2, 2 / 3)
REGULAR_SLACK = 0.015  # how close to a regular position counts as "at" it (share of the length)
MIN_CELL = 64  # full-resolution pixels: smaller cells are not worth a hash
MIN_CELL_SHARE = 0.12  # nor are cells thinner than this share of what is being split
HINT_SHARE = 0.12  # a strided step share this high near a regular position is worth an exact look
MAX_LINES = 4  # more dividers than this on one axis is a pattern (stripes, tiles), not a collage


@dataclass(frozen=True)
class Cell:
    """One cell of a split, with its layout label (``2x2.3``, or ``1x2.1.2x1.0`` when split twice)."""

    label: str
    box: Box


@njit(cache=True, nogil=True)
def _line_stats(rgb: np.ndarray, step: int, step_tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass over every ``step``-th pixel: per sampled row and column, the luma spread (std) and the share of
    pixels that step strongly from the previous row/column.

    Returns (row_std[nr], row_step[nr-1], col_std[nc], col_step[nc-1]); ``row_step[k-1]`` belongs to the
    boundary between sampled rows k-1 and k.
    """
    nr = (rgb.shape[0] + step - 1) // step
    nc = (rgb.shape[1] + step - 1) // step
    tol = np.int32(step_tol * 256)
    prev = np.zeros(nc, dtype=np.int32)
    cur = np.zeros(nc, dtype=np.int32)
    row_s = np.zeros(nr)
    row_q = np.zeros(nr)
    col_s = np.zeros(nc, dtype=np.int64)
    col_q = np.zeros(nc, dtype=np.int64)
    row_step = np.zeros(max(nr - 1, 0))
    col_step = np.zeros(max(nc - 1, 0), dtype=np.int64)
    for i in range(nr):
        y = i * step
        for j in range(nc):
            x = j * step
            # luma x 256 in integers (BT.601 weights), exact enough to tell flat from not
            cur[j] = np.int32(77) * rgb[y, x, 0] + np.int32(150) * rgb[y, x, 1] + np.int32(29) * rgb[y, x, 2]
        # Separate simple loops over the luma row: the compiler vectorises these.
        rs = np.int64(0)
        rq = np.int64(0)
        for j in range(nc):
            vs = np.int64(cur[j] >> 8)
            rs += vs
            rq += vs * vs
            col_s[j] += vs
            col_q[j] += vs * vs
        for j in range(1, nc):
            col_step[j - 1] += abs(cur[j] - cur[j - 1]) >= tol
        if i > 0:
            rstep = 0
            for j in range(nc):
                rstep += abs(cur[j] - prev[j]) >= tol
            row_step[i - 1] = rstep
        row_s[i] = rs
        row_q[i] = rq
        prev, cur = cur, prev
    row_std = np.sqrt(np.maximum(row_q / nc - (row_s / nc) ** 2, 0.0))
    col_std = np.sqrt(np.maximum(col_q / nr - (col_s / nr) ** 2, 0.0))
    return row_std, row_step / nc, col_std, col_step / max(nr, 1)


@njit(cache=True, nogil=True)
def _line_bands(std: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Candidate dividers as rows (start, end) of an (k, 2) array: gutters [i, j) and seams [k, k) (see _lines)."""
    n = len(std)
    out = np.empty((2 * n + 2, 2), dtype=np.int64)
    m = 0
    # Runs of flat rows that do not touch the edge (a flat run there is margin, which the trim handles), and that
    # are thin: a wide one is the flat background of a drawing.
    wide = max(1, int(MAX_GUTTER_SHARE * n))
    i = 1
    while i < n:
        if std[i] <= FLAT_STD and std[i - 1] > FLAT_STD:
            j = i
            while j < n and std[j] <= FLAT_STD:
                j += 1
            if j < n and j - i <= wide:
                out[m, 0] = i
                out[m, 1] = j
                m += 1
            i = j
        i += 1
    ns = len(s)
    for k in range(2, ns - 2):
        v = s[k]
        if v < s[k - 1] or v < s[k + 1]:
            continue
        beside = max(s[k - 2], s[k + 2])
        pos = (k + 1) / n
        need = SEAM_FRACTION
        for r in REGULAR_POSITIONS:
            if abs(pos - r) <= REGULAR_SLACK:
                need = REGULAR_SEAM_FRACTION
        # A seam is a strong step along most of the line that the lines beside it do not have; a weaker one
        # counts when it stands out all the more (two photos that happen to share colours along part of it).
        if (v >= need and v - beside >= SEAM_PROMINENCE) or (
            v >= SEAM_FRACTION_LONE and v - beside >= SEAM_PROMINENCE_LONE
        ):
            out[m, 0] = k + 1
            out[m, 1] = k + 1
            m += 1
    return out[:m]


def _lines(std: np.ndarray, s: np.ndarray) -> list[tuple[int, int]]:
    """Dividers across one axis, from the per-line spread ``std`` (n) and step shares ``s`` (n-1) of the small
    copy, as half-open bands of small rows: a gutter band [i, j) covers the flat rows; a seam between rows k-1
    and k is the empty band [k, k).
    """
    n = len(std)
    if n < 8:
        return []
    bands = sorted((int(a), int(b)) for a, b in _line_bands(std, s))
    return _merge(bands, gap=max(2, n // 50))


def _merge(bands: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Join bands closer than ``gap`` small rows (both edges of a thin gutter, a seam beside its gutter)."""
    out: list[tuple[int, int]] = []
    for b0, b1 in bands:
        if out and b0 - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], b1))
        else:
            out.append((b0, b1))
    return out


def _refine_seam(
    full: np.ndarray, k: int, step: int, *, lo: int | None = None, hi: int | None = None, cstep: int | None = None
) -> int:
    """Exact full-resolution row of a seam found between small rows k-1 and k (or between rows ``lo`` and
    ``hi``): the row with the strongest step from the row above it."""
    lo = max(1, (k - 1) * step + 1 if lo is None else lo)
    hi = min(full.shape[0] - 1, k * step if hi is None else hi)
    if lo >= hi:
        return min(max(k * step, 0), full.shape[0])
    rows = full[lo - 1 : hi + 1, :: cstep or step].astype(np.int16)
    diff = np.abs(rows[1:] - rows[:-1]).max(axis=2).mean(axis=1)
    return lo + int(np.argmax(diff))


@njit(cache=True, nogil=True)
def _window_stats(
    rgb: np.ndarray, axis: int, r0: int, r1: int, cstep: int, step_tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every full-resolution line r0..r1-1 across ``axis`` (rows for 0, columns for 1), sampled every ``cstep``
    pixels along the line: luma spread, the share of samples where the line differs strongly from the line two
    before it (two, so a seam blurred over one line still counts), the mean luma difference from that line, and
    the share of samples where it differs at all (beyond noise); and the sampled luma (x 256) itself.

    Pixels are read in memory order whichever the axis, so a column window costs what a row window costs.
    """
    n = r1 - r0
    length = rgb.shape[1 - axis]
    nc = (length + cstep - 1) // cstep
    lum = np.empty((n, nc), dtype=np.int32)
    if axis == 0:
        for i in range(n):
            for j in range(nc):
                y, x = r0 + i, j * cstep
                lum[i, j] = np.int32(77) * rgb[y, x, 0] + np.int32(150) * rgb[y, x, 1] + np.int32(29) * rgb[y, x, 2]
    else:
        for j in range(nc):
            for i in range(n):
                y, x = j * cstep, r0 + i
                lum[i, j] = np.int32(77) * rgb[y, x, 0] + np.int32(150) * rgb[y, x, 1] + np.int32(29) * rgb[y, x, 2]
    tol = np.int32(step_tol * 256)
    low = np.int32(SEAM_NOISE * 256)
    std = np.zeros(n)
    share = np.zeros(n)
    mean = np.zeros(n)
    some = np.zeros(n)
    for i in range(n):
        s = 0.0
        q = 0.0
        for j in range(nc):
            f = lum[i, j] / 256.0
            s += f
            q += f * f
        std[i] = np.sqrt(max(q / nc - (s / nc) ** 2, 0.0))
        if i >= 2:
            hit = 0
            seen = 0
            total = 0
            for j in range(nc):
                d = abs(lum[i, j] - lum[i - 2, j])
                total += d
                if d >= tol:
                    hit += 1
                if d >= low:
                    seen += 1
            share[i] = hit / nc
            mean[i] = total / nc / 256.0
            some[i] = seen / nc
    return std, share, mean, some, lum


@njit(cache=True, nogil=True)
def _window_verdict(
    std: np.ndarray, share: np.ndarray, mean: np.ndarray, some: np.ndarray, wide: int
) -> tuple[int, int]:
    """(start, end) window lines of a gutter, (k, k) of a seam just before line k, or (-1, -1)."""
    n = len(std)
    # A gutter: a run of flat lines inside the window (not cut off by its ends), no wider than ``wide``.
    i = 4
    while i < n - 4:
        if std[i] <= FLAT_STD:
            j = i
            while j < n and std[j] <= FLAT_STD:
                j += 1
            if std[i - 1] > FLAT_STD and j < n and j - i <= wide:
                return i, j
            i = j
        i += 1
    k = 4
    for t in range(4, n - 4):
        if mean[t] > mean[k]:
            k = t
    beside = max(share[k - 3], share[min(k + 3, n - 1)])
    # Neighbouring lines of one photo differ little on average; across a seam between two photos the mean
    # difference jumps, even where the two happen to share colours along part of the line.
    calm = np.median(np.concatenate((mean[2 : max(2, k - 2)], mean[k + 3 :])))
    strong = share[k] >= REGULAR_SEAM_FRACTION and share[k] - beside >= SEAM_PROMINENCE
    outlier = (
        mean[k] >= SEAM_MIN_MEAN
        and mean[k] >= SEAM_MEAN_RATIO * max(calm, 1.0)
        and some[k] >= SEAM_LENGTH  # along the whole line, not a third of it (an uneven layout)
    )
    if strong or outlier:
        return k, k
    return -1, -1


@njit(cache=True, nogil=True)
def _regular_scan(rgb: np.ndarray, axis: int, step: int, hint: np.ndarray) -> np.ndarray:
    """Gutters and seams at the regular positions as rows (end before, start after) of a (k, 2) array."""
    n = rgb.shape[axis]
    cstep = 2 * step  # along the line, every other strided sample is plenty
    slack = max(3, int(REGULAR_SLACK * n))
    wide = max(2, int(MAX_GUTTER_SHARE * n))
    out = np.empty((len(REGULAR_POSITIONS), 2), dtype=np.int64)
    m = 0
    for pos in REGULAR_POSITIONS:
        c = int(pos * n + 0.5)
        r0, r1 = max(0, c - slack - 4), min(n, c + slack + 4)
        if r1 - r0 < 12:
            continue
        # hint[k - 1] belongs to the boundary between strided lines k-1 and k
        lo, hi = max(0, r0 // step - 1), min(len(hint), r1 // step + 1)
        if lo >= hi or hint[lo:hi].max() < HINT_SHARE:
            continue
        std, share, mean, some, lum = _window_stats(rgb, axis, r0, r1, cstep, STEP_TOL)
        i, j = _window_verdict(std, share, mean, some, wide)
        if i < 0:
            continue
        if i == j:
            # The two-apart step at i spans lines i-2..i: the seam is before i or before i-1, whichever
            # one-line step is larger.
            a_step = np.abs(lum[i] - lum[i - 1]).mean()
            b_step = np.abs(lum[i - 1] - lum[i - 2]).mean()
            i = j = i if a_step >= b_step else i - 1
        out[m, 0] = r0 + i
        out[m, 1] = r0 + j
        m += 1
    return out[:m]


def _regular_edges(rgb: np.ndarray, axis: int, step: int, hint: np.ndarray) -> list[tuple[int, int]]:
    """Gutters and seams at the regular positions (halves, thirds), checked on every full-resolution line there.

    The strided copy can step over a gutter of a few pixels; collage makers put their lines at these positions,
    so these few lines are worth reading exactly: when the strided copy shows at least a hint of a step there
    (``hint``: step shares per strided line), which an ordinary photo mostly does not.
    """
    return [(int(a), int(b)) for a, b in _regular_scan(rgb, axis, step, hint)]


def _edges(rgb: np.ndarray, axis: int, std: np.ndarray, s: np.ndarray, step: int) -> list[tuple[int, int]]:
    """Every divider across ``axis`` as (end of the cell before, start of the cell after) in full-resolution
    lines."""
    full = rgb if axis == 0 else rgb.transpose(1, 0, 2)
    n_full = full.shape[0]
    edges: list[tuple[int, int]] = []
    for b0, b1 in _lines(std, s):
        if b0 == b1:
            r = _refine_seam(full, b0, step)
            edges.append((r, r))
        else:
            # Keep the uncertain rows on both sides of a gutter inside the cells; the cell trim removes them.
            edges.append((min(n_full, b0 * step), max(0, (b1 - 1) * step + 1)))
    exact = _regular_edges(rgb, axis, step, s)
    gap = max(2 * step, 4)
    merged: list[tuple[int, int]] = []
    for e in sorted(exact + edges):
        if merged and e[0] - merged[-1][1] <= gap:
            prev = merged[-1]
            # Prefer the exactly measured one (from the regular positions) over the strided estimate.
            merged[-1] = prev if prev in exact else e if e in exact else (min(prev[0], e[0]), max(prev[1], e[1]))
        else:
            merged.append(e)
    return merged


def _intervals(edges: list[tuple[int, int]], n: int) -> list[tuple[int, int]] | None:
    starts = [0] + [e[1] for e in edges]
    ends = [e[0] for e in edges] + [n]
    min_len = max(MIN_CELL, int(MIN_CELL_SHARE * n))
    cells = [(s, e) for s, e in zip(starts, ends, strict=True) if e - s >= min_len]
    return cells if len(cells) >= 2 else None


def _cuts(
    rgb: np.ndarray, axis: int, std: np.ndarray, s: np.ndarray, step: int
) -> tuple[list[tuple[int, int]] | None, list[tuple[int, int]] | None, bool]:
    """Cells along axis 0 as full-resolution intervals: (the regular split, the split by every line found).

    The regular split uses only the lines at a half or at both thirds, so a picture's own lines (a horizon, a
    door frame) inside a regular collage's cell do not cut it. Either is None when it does not divide anything.
    """
    n = rgb.shape[axis]
    edges = _edges(rgb, axis, std, s, step)
    if not edges or len(edges) > MAX_LINES:
        # Many lines across the whole picture are a pattern (stripes, tiles, planks), not a collage: lines that
        # cross every picture of a real collage are its seams, and there are few of them.
        return None, None, False

    def near(e: tuple[int, int], pos: float) -> bool:
        return abs((e[0] + e[1]) / 2 - pos * n) <= max(3, REGULAR_SLACK * n)

    thirds = [next((e for e in edges if near(e, p)), None) for p in (1 / 3, 2 / 3)]
    half = next((e for e in edges if near(e, 1 / 2)), None)
    regular = None
    if thirds[0] is not None and thirds[1] is not None:
        regular = _intervals([thirds[0], thirds[1]], n)
    elif half is not None:
        regular = _intervals([half], n)
    free = _intervals(edges, n)
    # Lines at regular positions, gutters, or more than one line: evidence of a collage on its own.
    sure = regular is not None or (free is not None and (len(free) > 2 or any(a != b for a, b in edges)))
    return regular, free, sure


def _layout(rows: list[tuple[int, int]], cols: list[tuple[int, int]]) -> list[tuple[str, Box]]:
    layout = f"{len(rows)}x{len(cols)}"
    return [
        (f"{layout}.{r * len(cols) + c}", Box(y0, y1, x0, x1))
        for r, (y0, y1) in enumerate(rows)
        for c, (x0, x1) in enumerate(cols)
    ]


def _split(full: np.ndarray, step: int) -> tuple[list[tuple[str, Box]], bool] | None:
    """One level of splitting: rows by lines across the full width, columns by lines across the full height.

    Gives the regular layout's cells and, when other lines were found, the cells of the layout they make; and
    whether the split is sure (see ``_cuts``) or rests on a single seam anywhere, which may be a horizon.
    """
    row_std, row_step, col_std, col_step = _line_stats(full, step, STEP_TOL)
    reg_r, free_r, sure_r = _cuts(full, 0, row_std, row_step, step)
    reg_c, free_c, sure_c = _cuts(full, 1, col_std, col_step, step)
    whole_r, whole_c = [(0, full.shape[0])], [(0, full.shape[1])]
    out: list[tuple[str, Box]] = []
    seen: set[Box] = set()
    for rows, cols in ((reg_r, reg_c), (free_r, free_c)):
        if rows is None and cols is None:
            continue
        for label, box in _layout(rows or whole_r, cols or whole_c):
            if box not in seen:
                seen.add(box)
                if any(lb == label for lb, _ in out):
                    label = label.replace(".", "u.", 1)
                out.append((label, box))
    if not out:
        return None
    return out, sure_r or sure_c or (free_r is not None and free_c is not None)


def find_cells(rgb: np.ndarray, *, depth: int = 2) -> list[Cell]:
    """The cells of a collage in ``rgb`` (coordinates of ``rgb``), or [] when it is not one.

    When the first split makes two cells, each is split again (once) by lines that cross only that cell, which is
    how uneven layouts are built. A cell that splits again is kept as well as its parts: the line inside it may be the
    picture's own (a horizon), not a seam. A split on one lone seam (not at a half or a third, no gutter, no
    further split inside) is not proposed.
    """
    h, w = rgb.shape[:2]
    step = stride_for(h, w, GRID_SIDE)
    first = _split(rgb, step)
    if first is None:
        return []
    top, sure = first
    out: list[Cell] = []
    for label, box in top:
        sub = None
        if depth > 1 and len(top) <= 2 and min(box.height, box.width) >= 2 * MIN_CELL:
            view = rgb[box.y0 : box.y1, box.x0 : box.x1]
            sub = _split(view, stride_for(box.height, box.width, GRID_SIDE))
        out.append(Cell(label, box))
        if sub is not None and len(top) * len(sub[0]) <= 16:
            sure = True
            out.extend(Cell(f"{label}.{sl}", sb.offset(box.y0, box.x0)) for sl, sb in sub[0])
    # A lone seam anywhere that nothing else backs up is more often a horizon or a wall's edge than a collage
    # of two pictures; proposing it would cost a hash on ordinary photos.
    return out if sure else []
