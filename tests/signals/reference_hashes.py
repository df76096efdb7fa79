"""Reference hashes for the agreement tests, and the real-photo corpus hashed by cleanset and by the references.

The reference path is what python-threatexchange does: Pillow decode, ``convert("RGB")``, ``pdqhash.compute``.
``pdq512`` is checked against ``pdqhash`` fed with ``cimg_nearest_512``, an independent re-implementation of the
resize step of Meta's C++ tool; pHash against ``imagehash.phash`` on the Pillow image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from cleanset.records import HashOutcome
from cleanset.signals.engine import HashConfig, HashEngine
from photos import photo_corpus


def vector_hex(bits: np.ndarray) -> str:
    """pdqhash's bit vector as hex, the way python-threatexchange's pdq_hasher writes it."""
    return f"{int(''.join(str(int(b)) for b in bits), 2):064x}"


def reference_pdq(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return vector_hex(bits), int(quality)


def reference_dihedral(rgb: np.ndarray) -> tuple[list[str], int]:
    vectors, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [vector_hex(v) for v in vectors], int(quality)


def cimg_nearest_512(rgb: np.ndarray) -> np.ndarray:
    """CImg ``resize(512, 512)`` (interpolation 1, nearest neighbour) as pdqio.cpp calls it for images larger
    than 512 px: CImg walks the source with per-output offsets ``(x+1)*W/512 - x*W/512`` in integer arithmetic."""
    h, w = rgb.shape[:2]
    if h <= 512 and w <= 512:
        return rgb

    def walk(n: int) -> np.ndarray:
        idx, curr = [], 0
        for x in range(512):
            idx.append(curr)
            curr += (x + 1) * n // 512 - x * n // 512
        return np.array(idx)

    return np.ascontiguousarray(rgb[walk(h)][:, walk(w)])


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass
class PhotoResult:
    name: str
    megapixels: float
    ours: HashOutcome
    ref_pdq: str
    ref_quality: int
    ref_pdq512: str
    ref_quality512: int
    ref_phash: str


def hash_corpus() -> list[PhotoResult]:
    """Every photo of ``photo_corpus()`` through cleanset's engine (its own decoder) and the reference paths."""
    engine = HashEngine(HashConfig(signals=("pdq", "pdq512", "phash"), dihedral=True, regions=False))
    out = []
    for photo in photo_corpus():
        with Image.open(io.BytesIO(photo.data)) as im:
            pil = im.convert("RGB")
        rgb = np.asarray(pil)
        ref, q = reference_pdq(rgb)
        ref512, q512 = reference_pdq(cimg_nearest_512(rgb))
        out.append(
            PhotoResult(
                name=photo.name,
                megapixels=photo.width * photo.height / 1e6,
                ours=engine.hash_bytes(photo.data),
                ref_pdq=ref,
                ref_quality=q,
                ref_pdq512=ref512,
                ref_quality512=q512,
                ref_phash=str(imagehash.phash(pil)),
            )
        )
    return out
