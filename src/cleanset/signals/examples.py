"""Images made by code for the signals' ``examples()``: benign, deterministic, and identical on every platform.

Only integer arithmetic and NumPy's PCG64 integer stream are used, so the pixels (and hence the expected hashes,
which come from the reference implementations) never depend on a platform's floating point or on an image
encoder's version: the images are stored as lossless PNG.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

_SHAPES = {
    "waves-96x128": (96, 128),
    "rings-700x900": (700, 900),
    "steps-40x300": (40, 300),
}


def example_rgb(name: str) -> np.ndarray:
    """The pixels of example ``name`` (HxWx3 uint8)."""
    h, w = _SHAPES[name]
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    rng = np.random.default_rng(sum(map(ord, name)))
    noise = rng.integers(0, 24, size=(h, w, 3), dtype=np.int64)
    if name.startswith("waves"):
        base = np.stack([(x * 7 + y * 3) % 256, (x * x // 9 + y * 5) % 256, (x * y // 11) % 256], axis=-1)
    elif name.startswith("rings"):
        cy, cx = h // 3, (2 * w) // 3
        r2 = (y - cy) ** 2 + (x - cx) ** 2
        base = np.stack([(r2 // 97) % 256, (r2 // 211 + x // 5) % 256, (y * 255) // h], axis=-1)
    else:
        base = np.stack([(x // 25) * 20 % 256, (y // 8) * 50 % 256, ((x // 25 + y // 8) % 2) * 200], axis=-1)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@lru_cache(maxsize=8)
def example_png(name: str) -> bytes:
    """Example ``name`` encoded as PNG."""
    buf = io.BytesIO()
    Image.fromarray(example_rgb(name), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def example_names() -> list[str]:
    return sorted(_SHAPES)
