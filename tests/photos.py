"""Real, benign photos for agreement tests and benchmarks: Debian's wallpaper packages and scikit-image's data.

.ci/run installs the wallpaper packages; the README names them for anyone running the tests by hand.
"""

from __future__ import annotations

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
