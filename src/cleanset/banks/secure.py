"""Owner-only files and directories, whatever the umask.

A bank is a hotline's list: other local users must not read it. Modes are set explicitly after creation (a umask
can only remove bits, and a permissive one must not widen what we create), and a version is assembled inside a
0700 temporary directory, so no file is reachable by anyone else even for the moment before its chmod.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cleanset.atomic import PRIVATE_DIR_MODE as DIR_MODE
from cleanset.atomic import PRIVATE_FILE_MODE as FILE_MODE
from cleanset.atomic import fsync_tree, private_dir
from cleanset.atomic import make_private as lock_down

__all__ = ["DIR_MODE", "FILE_MODE", "fsync_tree", "lock_down", "open_private", "private_dir", "write_json"]


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
