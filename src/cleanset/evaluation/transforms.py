"""What people do to images, as deterministic functions of (photo, seed): the robustness benchmark's transforms.

Each transform is a ``Transform`` registered by name in ``TRANSFORMS``. Randomness (crop sides, frame colours, the
collage cell that holds the photo) comes from a generator seeded by the run seed, the transform name and the
photo's index, so a run is reproducible and a transform does not change when others are added. Collages take their
other cells from ``fillers`` (photos that are not in the bank), so a collage match can only be the photo's own.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from cleanset.registry import Registry

Fn = Callable[[np.ndarray, np.random.Generator, Sequence[np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class Transform:
    """One edit. ``family`` groups variants in the table (jpeg, resize, crop, ...)."""

    name: str
    family: str
    fn: Fn

    def apply(self, rgb: np.ndarray, *, seed: int, index: int, fillers: Sequence[np.ndarray] = ()) -> np.ndarray:
        key = zlib.crc32(f"{seed}:{self.name}:{index}".encode())
        out = self.fn(rgb, np.random.default_rng(key), fillers)
        return np.ascontiguousarray(out, dtype=np.uint8)


TRANSFORMS: Registry[Transform] = Registry("transform")


_ORDER: list[str] = []  # registration order, which groups the table by family


def _add(name: str, family: str, fn: Fn) -> None:
    TRANSFORMS.add(name, Transform(name, family, fn))
    _ORDER.append(name)


def _img(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))


def jpeg_bytes(a: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    _img(a).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    """A JPEG round trip (what sharing an image does to it)."""
    with Image.open(io.BytesIO(jpeg_bytes(a, quality))) as im:
        return np.asarray(im.convert("RGB"))


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    return np.asarray(_img(a).resize((max(1, w), max(1, h)), Image.Resampling.BICUBIC))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, size))


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[return-value]


# -- compression and scale -------------------------------------------------------------------------------------
def _jpeg_at(q: int) -> Fn:
    return lambda a, r, f: jpeg(a, q)


def _scale_by(s: float) -> Fn:
    return lambda a, r, f: _resize(a, round(a.shape[0] * s), round(a.shape[1] * s))


for _q in (30, 50, 70, 90):
    _add(f"jpeg{_q}", "jpeg", _jpeg_at(_q))
for _s in (0.25, 0.5, 0.75, 1.5, 2.0):
    _add(f"resize{_s:g}x", "resize", _scale_by(_s))


def _crop(a: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Remove ``share`` of the height and of the width, split at random between the two sides."""
    h, w = a.shape[:2]
    dy, dx = round(h * share), round(w * share)
    top, left = int(rng.integers(0, dy + 1)), int(rng.integers(0, dx + 1))
    return a[top : h - (dy - top), left : w - (dx - left)]


def _crop_by(c: int) -> Fn:
    return lambda a, r, f: _crop(a, r, c / 100)


for _c in (2, 5, 10, 20):
    _add(f"crop{_c}%", "crop", _crop_by(_c))

# -- geometry ----------------------------------------------------------------------------------------------------
_add("flip-h", "flip", lambda a, r, f: a[:, ::-1])
_add("flip-v", "flip", lambda a, r, f: a[::-1])
_add("rotate90", "rotate", lambda a, r, f: np.rot90(a, 1))
_add("rotate180", "rotate", lambda a, r, f: np.rot90(a, 2))
_add("rotate270", "rotate", lambda a, r, f: np.rot90(a, 3))


def _turn_by(d: int) -> Fn:
    """A small rotation within the frame (corners filled black), as a tilted scan or a straightened photo."""
    return lambda a, r, f: np.asarray(_img(a).rotate(d, Image.Resampling.BICUBIC, expand=False))


for _d in (1, 3, 5):
    _add(f"rotate{_d}deg", "rotate-small", _turn_by(_d))

# -- colour, blur, noise -----------------------------------------------------------------------------------------
_add("greyscale", "colour", lambda a, r, f: np.asarray(_img(a).convert("L").convert("RGB")))
_add("blur", "blur", lambda a, r, f: np.asarray(_img(a).filter(ImageFilter.GaussianBlur(2))))


def _noise(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(a.astype(np.float32) + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)


_add("noise", "noise", lambda a, r, f: _noise(a, r))


# -- overlays ----------------------------------------------------------------------------------------------------
def _text(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A two-line caption across the lower part, white with a dark outline (a meme, a watermark)."""
    im = _img(a).copy()
    h, w = a.shape[:2]
    size = max(10, h // 14)
    draw = ImageDraw.Draw(im)
    words = ["HOLIDAY", "2024", "SUNDAY", "MOOD", "WHEN THE", "WEEKEND", "FINALLY", "ARRIVES"]
    for line in range(2):
        text = " ".join(rng.choice(words, 3))
        y = int(h * (0.62 + 0.14 * line))
        draw.text((w // 10, y), text, font=_font(size), fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(im)


def _logo(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A coloured badge with a name in a random corner (a channel logo, a site watermark)."""
    im = _img(a).copy()
    h, w = a.shape[:2]
    bw, bh = max(24, w // 5), max(12, h // 10)
    x = int(rng.choice([w // 40, w - bw - w // 40]))
    y = int(rng.choice([h // 40, h - bh - h // 40]))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((x, y, x + bw, y + bh), radius=bh // 4, fill=_colour(rng), outline=(255, 255, 255))
    draw.text((x + bw // 10, y + bh // 4), "pixshare", font=_font(bh // 2), fill=(255, 255, 255))
    return np.asarray(im)


_add("text", "overlay", lambda a, r, f: _text(a, r))
_add("logo", "overlay", lambda a, r, f: _logo(a, r))


# -- borders -----------------------------------------------------------------------------------------------------
def _pad(a: np.ndarray, top: int, bottom: int, left: int, right: int, colour: tuple[int, int, int]) -> np.ndarray:
    h, w = a.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), dtype=np.uint8)
    out[:] = colour
    out[top : top + h, left : left + w] = a
    return out


def _frame(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    b = round(0.06 * max(h, w))
    return jpeg(_pad(a, b, b, b, b, _colour(rng)), 90)


def _frame_uneven(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    top, bottom, left, right = (round(s * max(h, w)) for s in rng.uniform(0.01, 0.12, 4))
    return jpeg(_pad(a, top, bottom, left, right, _colour(rng)), 90)


def _letterbox(a: np.ndarray) -> np.ndarray:
    """Black bars to a square: top/bottom for a landscape photo, left/right for a portrait one."""
    h, w = a.shape[:2]
    if w >= h:
        t = (w - h) // 2
        return jpeg(_pad(a, t, w - h - t, 0, 0, (0, 0, 0)), 90)
    left = (h - w) // 2
    return jpeg(_pad(a, 0, 0, left, h - w - left, (0, 0, 0)), 90)


def _pillarbox(a: np.ndarray) -> np.ndarray:
    """Black bars left and right, as when a photo is shown on a wider screen."""
    b = max(2, a.shape[1] // 5)
    return jpeg(_pad(a, 0, 0, b, b, (0, 0, 0)), 90)


_add("border", "border", lambda a, r, f: _frame(a, r))
_add("border-uneven", "border", lambda a, r, f: _frame_uneven(a, r))
_add("letterbox", "border", lambda a, r, f: _letterbox(a))
_add("pillarbox", "border", lambda a, r, f: _pillarbox(a))


# -- collages ----------------------------------------------------------------------------------------------------
def _collage(
    a: np.ndarray, rng: np.random.Generator, fillers: Sequence[np.ndarray], rows: int, cols: int, gutter: int
) -> np.ndarray:
    """The photo in one cell of a rows x cols grid at its own size; other photos, stretched, in the others."""
    h, w = a.shape[:2]
    ch, cw = h // rows, w // cols
    height, width = rows * ch + (rows + 1) * gutter, cols * cw + (cols + 1) * gutter
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    target = int(rng.integers(0, rows * cols))
    others = [fillers[int(i)] for i in rng.choice(len(fillers), rows * cols, replace=len(fillers) < rows * cols)]
    for k in range(rows * cols):
        src = a if k == target else others[k]
        r, c = divmod(k, cols)
        y, x = gutter + r * (ch + gutter), gutter + c * (cw + gutter)
        out[y : y + ch, x : x + cw] = _resize(src, ch, cw)
    return jpeg(out, 85)


def _collage_uneven(a: np.ndarray, rng: np.random.Generator, fillers: Sequence[np.ndarray]) -> np.ndarray:
    """One wide cell on the left (2/3) and two stacked on the right, no gutters; the photo in any of them."""
    h, w = a.shape[:2]
    left_w = (2 * w) // 3
    boxes = [(0, h, 0, left_w), (0, h // 2, left_w, w), (h // 2, h, left_w, w)]
    out = np.zeros((h, w, 3), dtype=np.uint8)
    target = int(rng.integers(0, 3))
    others = [fillers[int(i)] for i in rng.choice(len(fillers), 3, replace=len(fillers) < 3)]
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        out[y0:y1, x0:x1] = _resize(a if k == target else others[k], y1 - y0, x1 - x0)
    return jpeg(out, 85)


_add("collage2x2", "collage", lambda a, r, f: _collage(a, r, f, 2, 2, max(4, a.shape[1] // 128)))
_add("collage2x2-tight", "collage", lambda a, r, f: _collage(a, r, f, 2, 2, 0))
_add("collage3x3", "collage", lambda a, r, f: _collage(a, r, f, 3, 3, max(4, a.shape[1] // 128)))
_add("collage3x3-tight", "collage", lambda a, r, f: _collage(a, r, f, 3, 3, 0))
_add("collage-uneven", "collage", lambda a, r, f: _collage_uneven(a, r, f))


# -- screenshot ----------------------------------------------------------------------------------------------------
def _screenshot(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An image viewer window: title bar with buttons and a title, a toolbar, a dark canvas, a status bar."""
    h, w = a.shape[:2]
    bar = max(16, h // 24)
    margin = max(8, w // 40)
    width, height = w + 2 * margin, h + 2 * margin + 3 * bar
    im = Image.new("RGB", (width, height), (46, 46, 46))
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, width, bar), fill=(222, 222, 222))
    for k, col in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        cx = bar // 2 + k * bar
        draw.ellipse((cx - bar // 4, bar // 4, cx + bar // 4, 3 * bar // 4), fill=col)
    draw.text((width // 3, bar // 5), "IMG_2041.jpg - Photos", font=_font(bar // 2), fill=(40, 40, 40))
    draw.rectangle((0, bar, width, 2 * bar), fill=(236, 236, 236))
    for k in range(int(rng.integers(4, 8))):
        x = margin + k * bar * 2
        draw.rounded_rectangle((x, bar + 4, x + bar, 2 * bar - 4), radius=3, fill=(200, 200, 200))
    draw.rectangle((0, height - bar, width, height), fill=(222, 222, 222))
    draw.text((margin, height - bar + bar // 5), f"{w} x {h}   100%", font=_font(bar // 2), fill=(60, 60, 60))
    im.paste(_img(a), (margin, 2 * bar + margin))
    return jpeg(np.asarray(im), 90)


_add("screenshot", "screenshot", lambda a, r, f: _screenshot(a, r))


def transform_names() -> list[str]:
    """Names in the order the table lists them."""
    return list(_ORDER)
