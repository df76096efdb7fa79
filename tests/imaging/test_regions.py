"""find_regions end to end: which regions an image gets, and that their probes catch what plain PDQ misses."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cleanset.imaging.regions import find_regions
from cleanset.signals.engine import HashConfig, HashEngine
from cleanset.signals.pdq import pdq_rgb


def jpeg(a: np.ndarray, q: int = 85) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resized(a: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(Image.fromarray(a).resize((w, h), Image.Resampling.BICUBIC))


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def best_probe(img: np.ndarray, target: str) -> tuple[str, int]:
    engine = HashEngine(HashConfig(signals=("pdq",), dihedral=True, regions=True))
    probes = [p for p in engine.hash_rgb(img).probes if p.signal == "pdq" and (p.quality or 0) >= 50]
    best = min(probes, key=lambda p: distance(p.value, target))
    return best.name, distance(best.value, target)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "immunohistochemistry", "hubble_deep_field"])
def test_plain_photos_get_no_regions(name: str) -> None:
    assert find_regions(getattr(skimage.data, name)()) == []


def test_letterbox_gives_a_trim_region_on_full_resolution_coordinates() -> None:
    a = skimage.data.coffee()  # 400 x 600
    img = np.zeros((600, 600, 3), np.uint8)
    img[100:500] = a
    regions = find_regions(jpeg(img, 90))
    trim = [r for r in regions if r.name == "trim"]
    assert len(trim) == 1
    r = trim[0]
    assert abs(r.y0 - 100) <= 2 and abs(r.y1 - 500) <= 2 and r.x0 <= 1 and r.x1 >= 599


def test_collage_cells_are_named_by_layout() -> None:
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    img = np.full((2 * 300 + 12, 2 * 400 + 12, 3), 255, np.uint8)
    for k, p in enumerate(photos):
        r, c = divmod(k, 2)
        img[4 + r * 304 : 4 + r * 304 + 300, 4 + c * 404 : 4 + c * 404 + 400] = resized(p, 300, 400)
    names = {r.name for r in find_regions(jpeg(img))}
    assert {"grid2x2.0", "grid2x2.1", "grid2x2.2", "grid2x2.3"} <= names


@pytest.mark.parametrize("cell", [0, 3])
def test_probe_of_a_cell_matches_the_original_where_plain_pdq_does_not(cell: int) -> None:
    target = skimage.data.chelsea()
    original = pdq_rgb(target).hex
    others = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.rocket(),
        skimage.data.immunohistochemistry(),
    ]
    h, w = 300, 450
    img = np.zeros((2 * h, 2 * w, 3), np.uint8)
    for k in range(4):
        r, c = divmod(k, 2)
        img[r * h : (r + 1) * h, c * w : (c + 1) * w] = resized(target if k == cell else others[k], h, w)
    img = jpeg(img)
    assert distance(pdq_rgb(img).hex, original) > 31
    name, d = best_probe(img, original)
    assert d <= 31
    assert name == f"grid2x2.{cell}/original"


def test_probe_of_a_bordered_photo_matches_the_original() -> None:
    target = skimage.data.astronaut()
    original = pdq_rgb(target).hex
    img = np.empty((512 + 80, 512 + 50, 3), np.uint8)
    img[:] = (30, 90, 200)
    img[60 : 60 + 512, 10 : 10 + 512] = target
    img = jpeg(img)
    assert distance(pdq_rgb(img).hex, original) > 31
    name, d = best_probe(img, original)
    assert (name, d <= 31) == ("trim/original", True)


def test_tiny_images_get_no_regions() -> None:
    assert find_regions(np.zeros((40, 300, 3), np.uint8)) == []


def test_probe_of_a_screenshot_matches_the_original() -> None:
    from cleanset.evaluation.transforms import TRANSFORMS

    target = skimage.data.coffee()
    original = pdq_rgb(target).hex
    shot = TRANSFORMS.get("screenshot").apply(target, seed=0, index=0)
    assert distance(pdq_rgb(shot).hex, original) > 31
    name, d = best_probe(shot, original)
    assert (name, d <= 31) == ("inset/original", True)


def test_letterbox_on_a_picture_with_flat_sides_keeps_the_sides() -> None:
    # A drawing-like picture: a photo on a plain light background band left and right.
    pic = np.full((400, 800, 3), 200, np.uint8)
    pic[:, 100:700] = skimage.data.coffee()
    img = np.zeros((800, 800, 3), np.uint8)
    img[200:600] = pic
    regions = {r.name: r for r in find_regions(jpeg(img, 90))}
    trim, rows = regions["trim"], regions["trim.rows"]
    assert trim.x0 >= 99 and trim.x1 <= 701  # the plain trim also ate the picture's own flat sides ...
    assert (abs(rows.y0 - 200) <= 2, abs(rows.y1 - 600) <= 2, rows.x0, rows.x1) == (True, True, 0, 800)
    name, d = best_probe(jpeg(img, 90), pdq_rgb(pic).hex)
    assert name == "trim.rows/original" and d <= 31
