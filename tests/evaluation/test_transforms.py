"""The benchmark's transforms: deterministic per (seed, transform, photo), and doing what they say."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from cleanset.evaluation.transforms import TRANSFORMS, transform_names

PHOTO = skimage.data.coffee()
FILLERS = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.rocket()]
SEEDED = ("crop10%", "noise", "text", "logo", "border-uneven", "collage2x2", "collage3x3-tight", "screenshot")


@pytest.mark.parametrize("name", transform_names())
def test_transforms_are_deterministic(name: str) -> None:
    t = TRANSFORMS.get(name)
    a = t.apply(PHOTO, seed=7, index=3, fillers=FILLERS)
    b = t.apply(PHOTO, seed=7, index=3, fillers=FILLERS)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a, b)
    assert a.shape != PHOTO.shape or not np.array_equal(a, PHOTO)  # every transform changes the photo


@pytest.mark.parametrize("name", SEEDED)
def test_seeded_transforms_depend_on_the_seed(name: str) -> None:
    t = TRANSFORMS.get(name)
    outs = [t.apply(PHOTO, seed=s, index=0, fillers=FILLERS) for s in range(4)]
    assert any(o.shape != outs[0].shape or not np.array_equal(o, outs[0]) for o in outs[1:])


def test_geometry_is_exact() -> None:
    assert np.array_equal(TRANSFORMS.get("flip-h").apply(PHOTO, seed=0, index=0), PHOTO[:, ::-1])
    assert np.array_equal(TRANSFORMS.get("rotate90").apply(PHOTO, seed=0, index=0), np.rot90(PHOTO))
    assert TRANSFORMS.get("resize0.5x").apply(PHOTO, seed=0, index=0).shape == (200, 300, 3)
    assert TRANSFORMS.get("crop20%").apply(PHOTO, seed=0, index=0).shape == (320, 480, 3)
    g = TRANSFORMS.get("greyscale").apply(PHOTO, seed=0, index=0)
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])


def test_collage_holds_the_photo_in_one_cell() -> None:
    out = TRANSFORMS.get("collage2x2-tight").apply(PHOTO, seed=0, index=0, fillers=FILLERS)
    cells = [out[r * 200 : (r + 1) * 200, c * 300 : (c + 1) * 300].astype(int) for r in range(2) for c in range(2)]
    small = PHOTO[::2, ::2].astype(int)
    errors = sorted(float(np.abs(cell - small).mean()) for cell in cells)
    assert errors[0] < 8 < errors[1]  # exactly one cell is the (halved) photo


def test_unknown_transform_is_a_clear_error() -> None:
    from cleanset.errors import UserError

    with pytest.raises(UserError, match="unknown transform"):
        TRANSFORMS.get("sepia")


def test_graphics_are_told_apart_from_photographs() -> None:
    from pathlib import Path

    from cleanset.evaluation.corpus import is_photograph

    assert not is_photograph(Path("/usr/share/backgrounds/gnome/wood-l.webp"))
    assert not is_photograph(Path("/usr/share/wallpapers/Altai/contents/images/1080x1920.png"))
    assert is_photograph(Path("/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg"))
    assert is_photograph(Path("/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg"))
