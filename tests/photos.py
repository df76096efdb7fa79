"""Real, benign photos for agreement tests and benchmarks: Debian's wallpaper packages and scikit-image's data.

.ci/run installs the wallpaper packages; the README names them for anyone running the tests by hand.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WALLPAPER_DIRS = (
    Path("/usr/share/backgrounds"),
    Path("/usr/share/wallpapers"),
    Path("/usr/share/mate-background-properties"),
)
WALLPAPER_PACKAGES = (
    "gnome-backgrounds",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "ukui-wallpapers",
)
EXTS = {".jpg", ".jpeg", ".png", ".webp"}


def wallpaper_photos(min_bytes: int = 50_000) -> list[Path]:
    """Every distinct wallpaper file (by resolved path), sorted for reproducibility."""
    seen: set[Path] = set()
    for d in WALLPAPER_DIRS:
        if d.is_dir():
            for p in d.rglob("*"):
                if p.suffix.lower() in EXTS and p.is_file() and p.stat().st_size >= min_bytes:
                    seen.add(p.resolve())
    return sorted(seen)


# --- a corpus of real photos as 1-2 megapixel JPEGs ------------------------------------------------------------

SKIMAGE_COLOUR_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "rocket",
    "stereo_motorcycle",
)
WHOLE_MAX_PIXELS = 2_500_000  # wallpapers up to this size are used whole
TILE = (1440, 1024)  # (width, height) of a crop taken from a larger JPEG wallpaper: 1.47 MP
MAX_TILES = 6  # non-overlapping crops per large JPEG wallpaper (large PNG/WebP ones are skipped: slow to decode)


@dataclass(frozen=True)
class Photo:
    """A real photo as JPEG bytes, with where it came from (file, crop box)."""

    name: str
    data: bytes
    width: int
    height: int


def _jpeg(rgb_image: object, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    rgb_image.save(buf, format="JPEG", quality=quality)  # type: ignore[attr-defined]
    return buf.getvalue()


def skimage_photos() -> list[Photo]:
    """scikit-image's bundled colour photos (no download), re-encoded as JPEG."""
    import skimage.data
    from PIL import Image

    out = []
    for name in SKIMAGE_COLOUR_PHOTOS:
        arr = getattr(skimage.data, name)()
        if isinstance(arr, tuple):  # stereo pairs: left image
            arr = arr[0]
        im = Image.fromarray(arr).convert("RGB")
        out.append(Photo(f"skimage:{name}", _jpeg(im), im.width, im.height))
    return out


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    tw, th = TILE
    boxes = [(x, y, x + tw, y + th) for y in range(0, height - th + 1, th) for x in range(0, width - tw + 1, tw)]
    if len(boxes) <= MAX_TILES:
        return boxes
    # spread the chosen tiles over the image (first and last) rather than taking a corner twice
    step = (len(boxes) - 1) / (MAX_TILES - 1)
    return [boxes[round(i * step)] for i in range(MAX_TILES)]


@lru_cache(maxsize=1)
def photo_corpus() -> tuple[Photo, ...]:
    """Real photos as JPEG bytes held in memory: every wallpaper of at most 2.5 MP whole, up to six
    non-overlapping 1440x1024 crops of each larger JPEG wallpaper, and scikit-image's colour photos.
    Deterministic; built once per process (about 220 photos, mostly 1.5 MP)."""
    return tuple(iter_photo_corpus())


def iter_photo_corpus() -> Iterator[Photo]:
    """``photo_corpus()`` one photo at a time (a benchmark may stop early)."""
    import simplejpeg
    from PIL import Image

    for path in wallpaper_photos():
        with Image.open(path) as im:
            width, height, fmt = im.width, im.height, im.format
            if width * height <= WHOLE_MAX_PIXELS:
                if fmt == "JPEG" and im.mode == "RGB":
                    yield Photo(str(path), path.read_bytes(), width, height)
                else:
                    yield Photo(str(path), _jpeg(im.convert("RGB")), width, height)
                continue
        if fmt != "JPEG":
            continue
        rgb = simplejpeg.decode_jpeg(path.read_bytes(), colorspace="RGB", fastdct=False, fastupsample=False)
        for x0, y0, x1, y1 in _tiles(width, height):
            crop = Image.fromarray(rgb[y0:y1, x0:x1])
            yield Photo(f"{path}@{x0},{y0}", _jpeg(crop), crop.width, crop.height)
    yield from skimage_photos()
