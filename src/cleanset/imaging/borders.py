"""Find the picture inside uniform borders: letterbox, pillarbox and frames of any flat colour, on any side.

PDQ is very sensitive to borders (a 1 % letterbox already moves a hash by 15-40 bits of 256), so the trim has to be
exact to a pixel or two. It is found in two steps to stay cheap: a coarse scan on a strided copy (a few hundred
pixels a side) says whether a side has a border at all and roughly how deep; only then are the few full-resolution
rows around the coarse edge checked. An ordinary photo fails the first test on its outermost row and costs almost
nothing.

A row (or column) counts as border when nearly all of its pixels lie within ``tol`` of the border colour (the
mean of the outermost row), which tolerates JPEG noise, ringing and a stray logo pixel or two.

``find_inset`` handles what a plain trim cannot: a picture in a window (a screenshot) or a page, where bars with
buttons and text lie beyond a flat margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

COARSE_SIDE = 256  # the strided copy has about this many pixels on its longest side
TOL = 22  # max per-channel deviation from the border colour for a pixel to count as border
FLAT_FRACTION = 0.96  # share of a row's pixels that must be border-coloured
CLEAN_EDGE = 0.6  # share of the first content row that must differ from a one-sided border
MIN_CONTENT = 32  # a box thinner than this (full-resolution pixels) is not a picture


@dataclass(frozen=True)
class Box:
    """Rows y0:y1 and columns x0:x1 of an image."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def area(self) -> int:
        return max(self.height, 0) * max(self.width, 0)

    def offset(self, dy: int, dx: int) -> Box:
        return Box(self.y0 + dy, self.y1 + dy, self.x0 + dx, self.x1 + dx)


def stride_for(height: int, width: int, side: int = COARSE_SIDE) -> int:
    """Sampling step that brings the longest side down to about ``side`` pixels (no resampling: cheap and exact)."""
    return max(1, -(-max(height, width) // side))


@njit(cache=True, nogil=True)
def _flat_share(view: np.ndarray, r: int, step: int, colour: np.ndarray, tol: int) -> float:
    """Share of every ``step``-th pixel of row ``r`` of ``view`` that lies within ``tol`` of ``colour``."""
    w = view.shape[1]
    hit = 0
    total = 0
    for x in range(0, w, step):
        total += 1
        ok = True
        for c in range(3):
            if abs(np.int32(view[r, x, c]) - colour[c]) > tol:
                ok = False
                break
        if ok:
            hit += 1
    return hit / max(total, 1)


@njit(cache=True, nogil=True)
def _depth(view: np.ndarray, step: int, tol: int, fraction: float) -> tuple[int, float]:
    """How many leading rows of ``view`` (full resolution, rows = the scan direction) are border.

    ``view`` is oriented so that row 0 is the outermost row of the side being scanned. Coarse scan on every
    ``step``-th row and column, then an exact scan of the ``step`` rows where the coarse scan stopped. Also
    returns how clean the inner edge is: the share of the first content row that is not border-coloured (a
    pasted picture starts along the whole line; a flat area of a drawing ends raggedly).
    """
    n, w = view.shape[0], view.shape[1]
    if n == 0 or w == 0:
        return 0, 0.0
    m = (w + step - 1) // step
    # The outermost row's mean colour: a border row is all one colour (give or take noise and a few stray
    # pixels, which move the mean far less than ``tol``); any other row fails the flat test whatever we pick.
    acc = np.zeros(3)
    for j in range(m):
        for c in range(3):
            acc[c] += view[0, j * step, c]
    colour = np.empty(3, dtype=np.int32)
    for c in range(3):
        colour[c] = np.int32(acc[c] / m + 0.5)
    if _flat_share(view, 0, step, colour, tol) < fraction:
        return 0, 0.0
    r = step
    while r < n and _flat_share(view, r, step, colour, tol) >= fraction:
        r += step
    # Rows up to r - step are border; row r (if any) is not: the edge lies in between.
    depth = min(r, n)
    for y in range(r - step + 1, min(r, n)):
        if _flat_share(view, y, 1, colour, tol) < fraction:
            depth = y
            break
    if depth >= n:
        return n, 0.0
    # Measured a couple of rows in: the first one may be only half there (JPEG ringing, chroma blur).
    return depth, 1.0 - _flat_share(view, min(depth + 2, n - 1), step, colour, tol)


def find_trim(
    rgb: np.ndarray, *, tol: int = TOL, fraction: float = FLAT_FRACTION, min_content: int = MIN_CONTENT
) -> Box | None:
    """The box inside uniform borders, or None when there is no border (or nothing but border).

    Each side is scanned with its own colour, so a black letterbox and a white frame are both found, and so is a
    frame that is wider on one side. The box is in the coordinates of ``rgb``.
    """
    h, w = rgb.shape[:2]
    step = stride_for(h, w)
    top, top_edge = _depth(rgb, step, tol, fraction)
    if top >= h - min_content:
        return None
    bottom, bottom_edge = _depth(rgb[::-1], step, tol, fraction)
    top, bottom = _keep(top, top_edge, bottom), _keep(bottom, bottom_edge, top)
    y0, y1 = top, h - bottom
    if y1 - y0 < min_content:
        return None
    band = rgb[y0:y1]
    left, left_edge = _depth(band.transpose(1, 0, 2), step, tol, fraction)
    right, right_edge = _depth(band[:, ::-1].transpose(1, 0, 2), step, tol, fraction)
    left, right = _keep(left, left_edge, right), _keep(right, right_edge, left)
    x0, x1 = left, w - right
    if x1 - x0 < min_content:
        return None
    if (y0, y1, x0, x1) == (0, h, 0, w):
        return None
    return Box(y0, y1, x0, x1)


def _keep(depth: int, edge: float, opposite: int) -> int:
    """A border on one side only counts when its inner edge is a clean straight line.

    Letterbox, pillarbox and frames come in pairs; a single flat side with a ragged edge is far more often the
    sky or a flat area of a drawing than padding, and proposing it would cost a hash on ordinary images.
    """
    if depth == 0 or opposite >= 2 or edge >= CLEAN_EDGE:
        return depth
    return 0


def trim_matters(box: Box, height: int, width: int, *, min_px: int = 2, min_share: float = 0.004) -> bool:
    """Whether the trimmed box differs enough from the whole image to be worth its own hash.

    PDQ already shrugs off a border of a pixel or so; from about half a percent on one side it drifts by tens of
    bits, so anything beyond that is worth a probe.
    """
    sides = (
        (box.y0, height),
        (height - box.y1, height),
        (box.x0, width),
        (width - box.x1, width),
    )
    return any(px >= min_px and px >= min_share * dim for px, dim in sides)


@njit(cache=True, nogil=True)
def _row_colour(view: np.ndarray, r: int, step: int) -> np.ndarray:
    """Median colour of every ``step``-th pixel of row ``r``."""
    m = (view.shape[1] + step - 1) // step
    px = np.empty((m, 3), dtype=np.float64)
    for j in range(m):
        for c in range(3):
            px[j, c] = view[r, j * step, c]
    out = np.empty(3, dtype=np.int32)
    for c in range(3):
        out[c] = np.int32(np.median(px[:, c]))
    return out


@njit(cache=True, nogil=True)
def _edge_from_centre(view: np.ndarray, step: int, colour: np.ndarray, tol: int, fraction: float) -> int:
    """Walking from the middle row of ``view`` towards row 0: the first row below the margin, i.e. the row after
    the nearest row that is (nearly) all ``colour``; -1 when no such row lies in the outer 40 %."""
    n = view.shape[0]
    r = n // 2
    while r >= step:
        r -= step
        if _flat_share(view, r, step, colour, tol) >= fraction:
            if r > 0.4 * n:
                return -1  # a band of the margin's colour inside the picture, not its edge
            # Rows r+1 .. r+step-1 are unknown: the picture starts at the first that is not margin.
            for y in range(r + 1, min(r + step, n)):
                if _flat_share(view, y, 1, colour, tol) < fraction:
                    return y
            return min(r + step, n)
    return -1


def find_inset(rgb: np.ndarray, *, tol: int = TOL, min_content: int = MIN_CONTENT) -> Box | None:
    """The picture inside a window or a page: a flat margin all around it, with anything (title and tool bars,
    buttons, text) beyond the margin above and below (a screenshot of an image viewer, a photo on a web page).

    Found from the inside out: the left and right margins at mid height give the margin colour, then the nearest
    rows of that colour above and below the middle bound the picture. An ordinary photo fails the first test.
    """
    h, w = rgb.shape[:2]
    step = stride_for(h, w)
    mid = rgb[int(0.4 * h) : int(0.6 * h) + 1]
    if mid.shape[0] < 4:
        return None
    left, _ = _depth(mid.transpose(1, 0, 2), step, tol, FLAT_FRACTION)
    if left < 2:
        return None
    right, _ = _depth(mid[:, ::-1].transpose(1, 0, 2), step, tol, FLAT_FRACTION)
    if right < 2 or w - left - right < min_content:
        return None
    c_left = _row_colour(mid.transpose(1, 0, 2), left - 1, step)
    c_right = _row_colour(mid[:, ::-1].transpose(1, 0, 2), right - 1, step)
    if int(np.abs(c_left - c_right).max()) > tol:
        return None
    span = rgb[:, left : w - right]
    top = _edge_from_centre(span, step, c_left, tol, FLAT_FRACTION)
    bottom = _edge_from_centre(span[::-1], step, c_left, tol, FLAT_FRACTION)
    if top < 0 or bottom < 0 or h - top - bottom < min_content:
        return None
    return Box(top, h - bottom, left, w - right)
