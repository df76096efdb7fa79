"""Where in an image extra probes should look: the picture inside borders or a window, and a collage's cells.

Every region costs one more PDQ (its eight dihedral hashes come from the same transform), so regions are only
proposed when cheap checks on strided copies find a border or a dividing line; an ordinary photo gets none.
Cells are trimmed too, since collage makers pad pictures that do not fill their cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cleanset.imaging.borders import TOL, Box, find_inset, find_trim, trim_matters
from cleanset.imaging.grid import MIN_CELL, find_cells

INSET_AFTER_TRIM = 0.9  # look for a window inset only if the trim kept at least this share of the image
THIN_MARGIN = 0.03  # a cell trim up to this share of a side is leftover gutter
MAX_REGIONS = 25  # the trim, the cells and their parts; beyond that the cost is not worth it


@dataclass(frozen=True)
class Region:
    """A rectangle of the decoded image (rows y0:y1, columns x0:x1) and the probe name prefix it gets."""

    name: str  # e.g. "trim", "grid2x2.0"
    y0: int
    y1: int
    x0: int
    x1: int


def _axis_trims(rgb: np.ndarray, box: Box) -> list[tuple[str, Box]]:
    """Trims of one axis only, when the bars on the two axes have different colours.

    Black bars added above and below a picture whose own left and right edges are flat (a drawing on a plain
    background) are trimmed together with those edges; the picture as it was is the box with only the bars
    of one colour removed.
    """
    h, w = rgb.shape[:2]
    if not ((box.y0 or box.y1 < h) and (box.x0 or box.x1 < w)):
        return []
    row = box.y0 - 1 if box.y0 else box.y1
    col = box.x0 - 1 if box.x0 else box.x1
    rows_colour = rgb[row, box.x0 : box.x1].reshape(-1, 3).mean(axis=0)
    cols_colour = rgb[box.y0 : box.y1, col].reshape(-1, 3).mean(axis=0)
    if np.abs(rows_colour - cols_colour).max() <= TOL:
        return []
    out = [("trim.rows", Box(box.y0, box.y1, 0, w)), ("trim.cols", Box(0, h, box.x0, box.x1))]
    return [(n, b) for n, b in out if trim_matters(b, h, w)]


def _same(a: Box, b: Box, px: int = 3) -> bool:
    return max(abs(a.y0 - b.y0), abs(a.y1 - b.y1), abs(a.x0 - b.x0), abs(a.x1 - b.x1)) <= px


def _cell_boxes(rgb: np.ndarray, box: Box) -> list[tuple[str, Box]]:
    """A cell without its uniform borders, and the cell as it is when the trim took more than a thin margin.

    A thin trim is gutter left over from the split. A deep one may be a picture padded to fit its cell, or a
    flat band of a drawing with a straight edge; both readings are kept, as ``<cell>`` and ``<cell>.trim``.
    """
    inner = find_trim(rgb[box.y0 : box.y1, box.x0 : box.x1])
    if inner is None or min(inner.height, inner.width) < MIN_CELL:
        return [("", box)]
    trimmed = inner.offset(box.y0, box.x0)
    margin = max(
        inner.y0 / box.height,
        1 - inner.y1 / box.height,
        inner.x0 / box.width,
        1 - inner.x1 / box.width,
    )
    if margin <= THIN_MARGIN:
        return [("", trimmed)]
    return [("", box), (".trim", trimmed)]


def find_regions(rgb: np.ndarray) -> list[Region]:
    """Regions worth hashing besides the whole image; cheap when there are none.

    ``rgb`` is the decoded image (h, w, 3) uint8; regions are in its coordinates. Names:

    - ``trim``: uniform borders removed; also ``trim.rows`` / ``trim.cols`` when the bars on the two axes differ
      in colour (bars added to a picture whose own edges are flat);
    - ``inset``: the picture inside a window or page (a screenshot);
    - ``grid{R}x{C}.{i}``: collage cells, row-major; a cell split again adds ``.{r}x{c}.{j}``, a deeply trimmed
      cell also comes as ``<cell>.trim``.
    """
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_CELL:
        return []
    regions: list[Region] = []
    trim = find_trim(rgb)
    content = Box(0, h, 0, w)
    if trim is not None and trim_matters(trim, h, w) and min(trim.height, trim.width) >= MIN_CELL:
        regions.append(Region("trim", trim.y0, trim.y1, trim.x0, trim.x1))
        content = trim
        for name, box in _axis_trims(rgb, trim):
            regions.append(Region(name, box.y0, box.y1, box.x0, box.x1))
    # A screenshot's bars defeat the plain trim (it stops at the first button or title), leaving a thin trim at
    # most; a deep trim already found the picture, and a second box beside it is mostly a flat drawing's.
    inset = find_inset(rgb) if content.area >= INSET_AFTER_TRIM * h * w else None
    if (
        inset is not None
        and trim_matters(inset, h, w)
        and min(inset.height, inset.width) >= MIN_CELL
        and not _same(inset, content)
    ):
        regions.append(Region("inset", inset.y0, inset.y1, inset.x0, inset.x1))
    view = rgb[content.y0 : content.y1, content.x0 : content.x1]
    for cell in find_cells(view):
        for suffix, box in _cell_boxes(rgb, cell.box.offset(content.y0, content.x0)):
            if min(box.height, box.width) >= MIN_CELL:
                regions.append(Region(f"grid{cell.label}{suffix}", box.y0, box.y1, box.x0, box.x1))
    return regions[:MAX_REGIONS]
