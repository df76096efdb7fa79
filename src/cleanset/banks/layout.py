"""Where banks live on disk, and which names are allowed.

    $CLEANSET_HOME/banks/<name>/versions/<n>/manifest.json
                                            values/<signal>.npy      (n, bits/8) uint8
                                            entries/<signal>.parquet  id + label.* columns, row i = value row i
                                            index/<signal>/           stored Hamming tables, written by the store's
                                                                      ``prepare`` step (``matching/stored.py``)

    $CLEANSET_HOME/banks/.tmp/                                  temporary directories (see scratch.py)

A version directory is written under ``banks/.tmp`` and renamed into place, so a reader never sees half a version;
nothing inside a version is ever rewritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from cleanset.errors import UserError

HOME_ENV = "CLEANSET_HOME"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def home() -> Path:
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path(platformdirs.user_data_dir("cleanset"))


def check_name(name: str) -> str:
    """A bank name is also a directory name: letters, digits, '_', '.', '-' only, and not '.' or '..'."""
    if not _NAME.match(name) or name in (".", "..") or name.startswith("."):
        raise UserError(f"invalid bank name {name!r}: use letters, digits, '_', '.', '-' (not starting with '.')")
    return name


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.banks = root / "banks"

    def bank(self, name: str) -> Path:
        return self.banks / check_name(name)

    def versions(self, name: str) -> Path:
        return self.bank(name) / "versions"

    def version(self, name: str, version: int) -> Path:
        return self.versions(name) / str(version)

    @staticmethod
    def manifest(version_dir: Path) -> Path:
        return version_dir / "manifest.json"

    @staticmethod
    def values(version_dir: Path, signal: str) -> Path:
        return version_dir / "values" / f"{signal}.npy"

    @staticmethod
    def entries(version_dir: Path, signal: str) -> Path:
        return version_dir / "entries" / f"{signal}.parquet"

    def version_numbers(self, name: str) -> list[int]:
        d = self.versions(name)
        if not d.is_dir():
            return []
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit() and p.is_dir())

    def bank_names(self) -> list[str]:
        if not self.banks.is_dir():
            return []
        return sorted(
            p.name for p in self.banks.iterdir() if p.is_dir() and _NAME.match(p.name) and not p.name.startswith(".")
        )
