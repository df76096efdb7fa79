"""Where in an image extra probes should look: the picture inside uniform borders, and the cells of a collage.

(Issue 6 fills this in; until then no extra regions are proposed.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """A rectangle of the decoded image (rows y0:y1, columns x0:x1) and the probe name prefix it gets."""

    name: str  # e.g. "trim", "grid2x2.0"
    y0: int
    y1: int
    x0: int
    x1: int


def find_regions(rgb: np.ndarray) -> list[Region]:
    """Regions worth hashing besides the whole image; cheap when there are none."""
    return []
