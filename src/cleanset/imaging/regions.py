"""Where in an image extra probes should look: the picture inside borders or a window, and a collage's cells.

Every region costs one more PDQ (its eight dihedral hashes come from the same transform), so regions are only
proposed when cheap checks on strided copies find a border or a dividing line; an ordinary photo gets none.
Cells are trimmed too, since collage makers pad pictures that do not fill their cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cleanset.imaging.borders import Box, find_inset, find_trim, trim_matters
from cleanset.imaging.grid import MIN_CELL, find_cells

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

    ``rgb`` is the decoded image (h, w, 3) uint8; regions are in its coordinates. Names are ``trim`` (uniform
    borders removed), ``inset`` (the picture inside a window or page: a screenshot), and ``grid{R}x{C}.{i}``
    (row-major cell index; a cell split again adds ``.{r}x{c}.{j}``, a deeply trimmed cell also comes as
    ``<cell>.trim``).
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
    inset = find_inset(rgb)
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
