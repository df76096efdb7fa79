"""Trimming uniform borders: the box has to be right to a pixel or two, or PDQ drifts by tens of bits."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cleanset.imaging.borders import Box, find_inset, find_trim, trim_matters

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


def screenshot(a: np.ndarray) -> tuple[np.ndarray, Box]:
    """A viewer window: a title bar with buttons and a title, a toolbar, a dark margin, a status bar."""
    from PIL import ImageDraw

    h, w = a.shape[:2]
    bar, margin = 20, 14
    im = Image.new("RGB", (w + 2 * margin, h + 2 * margin + 3 * bar), (46, 46, 46))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, im.width, bar), fill=(222, 222, 222))
    for k in range(3):
        d.ellipse((6 + k * 20, 5, 16 + k * 20, 15), fill=(230, 90, 80))
    d.text((im.width // 3, 4), "IMG_0042.jpg - Photos", fill=(30, 30, 30))
    d.rectangle((0, bar, im.width, 2 * bar), fill=(236, 236, 236))
    for k in range(6):
        d.rectangle((margin + 40 * k, bar + 4, margin + 40 * k + 24, 2 * bar - 4), fill=(190, 190, 190))
    d.rectangle((0, im.height - bar, im.width, im.height), fill=(222, 222, 222))
    d.text((margin, im.height - bar + 4), f"{w} x {h}", fill=(30, 30, 30))
    im.paste(Image.fromarray(a), (margin, 2 * bar + margin))
    return np.asarray(im), Box(2 * bar + margin, 2 * bar + margin + h, margin, margin + w)


@pytest.mark.parametrize("name", ("astronaut", "coffee", "chelsea", "rocket"))
def test_inset_finds_the_picture_in_a_window(name: str) -> None:
    shot, truth = screenshot(photo(name))
    assert find_trim(jpeg(shot, 90)) is None or not close(find_trim(jpeg(shot, 90)), truth)
    assert close(find_inset(jpeg(shot, 90)), truth)


@pytest.mark.parametrize("name", PHOTOS)
def test_plain_photos_have_no_inset(name: str) -> None:
    assert find_inset(photo(name)) is None
