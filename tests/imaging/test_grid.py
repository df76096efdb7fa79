"""Collage cells: gutters, seams without gutters, the regular layouts and an uneven split."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cleanset.imaging.borders import Box
from cleanset.imaging.grid import find_cells

NAMES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "cat",
    "astronaut",
)


def photo(name: str, h: int, w: int) -> np.ndarray:
    a = getattr(skimage.data, name)()
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BICUBIC))


def jpeg(a: np.ndarray, q: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def collage(rows: int, cols: int, cell: tuple[int, int], gutter: int) -> tuple[np.ndarray, list[Box]]:
    ch, cw = cell
    out = np.full((rows * ch + (rows + 1) * gutter, cols * cw + (cols + 1) * gutter, 3), 250, np.uint8)
    boxes = []
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        y, x = gutter + r * (ch + gutter), gutter + c * (cw + gutter)
        out[y : y + ch, x : x + cw] = photo(NAMES[k % len(NAMES)], ch, cw)
        boxes.append(Box(y, y + ch, x, x + cw))
    return jpeg(out), boxes


def covers(found: Box, truth: Box, px: int) -> bool:
    return (
        abs(found.y0 - truth.y0) <= px
        and abs(found.y1 - truth.y1) <= px
        and abs(found.x0 - truth.x0) <= px
        and abs(found.x1 - truth.x1) <= px
    )


@pytest.mark.parametrize("layout", [(1, 2), (2, 1), (2, 2), (3, 3)])
@pytest.mark.parametrize("gutter", [0, 6])
def test_regular_collages_give_their_cells(layout: tuple[int, int], gutter: int) -> None:
    rows, cols = layout
    img, truth = collage(rows, cols, (300, 400) if rows * cols < 9 else (220, 300), gutter)
    cells = find_cells(img)
    named = [c for c in cells if c.label.startswith(f"{rows}x{cols}.")]
    assert len(named) == rows * cols, [c.label for c in cells]
    for t in truth:
        # Gutter leftovers stay inside the cell (the cell trim removes them), so allow the gutter's width.
        assert any(covers(c.box, t, gutter + 3) for c in named), (t, [c.box for c in named])


def test_uneven_split_is_found_from_the_edges() -> None:
    h, w = 600, 900
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :560] = photo("coffee", h, 560)
    img[:250, 560:] = photo("astronaut", 250, w - 560)
    img[250:, 560:] = photo("chelsea", h - 250, w - 560)
    cells = find_cells(jpeg(img))
    truth = [Box(0, h, 0, 560), Box(0, 250, 560, w), Box(250, h, 560, w)]
    for t in truth:
        assert any(covers(c.box, t, 3) for c in cells), (t, [(c.label, c.box) for c in cells])


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "immunohistochemistry"])
def test_plain_photos_are_not_collages(name: str) -> None:
    assert find_cells(getattr(skimage.data, name)()) == []


def test_stripes_are_a_pattern_not_a_collage() -> None:
    img = np.zeros((400, 600, 3), np.uint8)
    for k in range(12):
        img[:, k * 50 : k * 50 + 25] = (200, 180, 40)
    assert find_cells(img) == []


def test_tiny_cells_are_not_proposed() -> None:
    img, _ = collage(2, 2, (50, 60), 4)
    assert all(min(c.box.height, c.box.width) >= 64 for c in find_cells(img))
