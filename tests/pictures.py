"""Benign pictures the closed-world tests plant as "listed": drawn in code, or a photo scikit-image ships."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def picture(seed: int, size: int = 128) -> Image.Image:
    """A smooth benign picture: random colours upscaled, so each seed has its own stable PDQ."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
    return small.resize((size, size), Image.Resampling.BICUBIC)


def encode(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def photo() -> Image.Image:
    """A real photograph (scikit-image's astronaut, public domain): its PDQ survives re-encoding, as listed
    pictures' do."""
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)
