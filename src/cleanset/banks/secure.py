"""Owner-only files and directories, whatever the umask.

A bank is a hotline's list: other local users must not read it. Modes are set explicitly after creation (a umask
can only remove bits, and a permissive one must not widen what we create), and a version is assembled inside a
0700 temporary directory, so no file is reachable by anyone else even for the moment before its chmod.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents as 0700 (existing parents are left as they are)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(d, DIR_MODE)
    return path


def lock_down(tree: Path) -> None:
    """Make every directory under ``tree`` 0700 and every file 0600."""
    os.chmod(tree, DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(tree):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), DIR_MODE)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), FILE_MODE)


def write_json(path: Path, obj: Any) -> None:
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def open_private(path: Path) -> Any:
    """A new binary file opened for writing, 0600 from the start."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def fsync_tree(tree: Path) -> None:
    for dirpath, _, filenames in os.walk(tree):
        for f in filenames:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=False)
