"""Trimming uniform borders: the box has to be right to a pixel or two, or PDQ drifts by tens of bits."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cleanset.imaging.borders import Box, find_trim, trim_matters

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo(name: str) -> np.ndarray:
    return getattr(skimage.data, name)()


def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def pad(a: np.ndarray, t: int, b: int, left: int, r: int, colour: tuple[int, int, int]) -> tuple[np.ndarray, Box]:
    h, w = a.shape[:2]
    out = np.empty((h + t + b, w + left + r, 3), np.uint8)
    out[:] = colour
    out[t : t + h, left : left + w] = a
    return out, Box(t, t + h, left, left + w)


def close(found: Box | None, truth: Box, px: int = 3) -> bool:
    assert found is not None
    return all(
        abs(a - b) <= px for a, b in zip((found.y0, found.y1, found.x0, found.x1), truth.__dict__.values(), strict=True)
    )


@pytest.mark.parametrize("name", PHOTOS)
def test_plain_photos_have_no_border(name: str) -> None:
    assert find_trim(photo(name)) is None


@pytest.mark.parametrize("name", ("astronaut", "coffee", "chelsea"))
@pytest.mark.parametrize(
    ("sides", "colour"),
    [
        ((60, 60, 0, 0), (0, 0, 0)),  # letterbox
        ((0, 0, 90, 90), (0, 0, 0)),  # pillarbox
        ((25, 25, 25, 25), (255, 255, 255)),  # white frame
        ((37, 8, 11, 52), (200, 30, 40)),  # uneven red frame
    ],
)
def test_trim_finds_the_picture_through_jpeg(
    name: str, sides: tuple[int, int, int, int], colour: tuple[int, int, int]
) -> None:
    padded, truth = pad(photo(name), *sides, colour)
    for q in (90, 50):
        assert close(find_trim(jpeg(padded, q)), truth), (name, sides, q)


def test_one_sided_pad_with_a_clean_edge_is_trimmed() -> None:
    padded, truth = pad(photo("coffee"), 0, 0, 0, 120, (240, 240, 240))
    assert close(find_trim(jpeg(padded, 85)), truth)


def test_a_flat_area_with_a_ragged_edge_is_not_a_border() -> None:
    # A sky-like flat top whose lower edge is a hill line, not a straight cut.
    a = photo("astronaut").copy()
    hill = (80 + 40 * np.sin(np.linspace(0, 6, a.shape[1]))).astype(int)
    for x, top in enumerate(hill):
        a[:top, x] = (120, 160, 220)
    box = find_trim(a)
    assert box is None or box.y0 == 0


def test_all_border_is_no_picture() -> None:
    assert find_trim(np.full((200, 300, 3), 17, np.uint8)) is None


def test_trim_matters_ignores_a_pixel_line() -> None:
    assert not trim_matters(Box(1, 500, 0, 600), 500, 600)
    assert trim_matters(Box(6, 494, 0, 600), 500, 600)
