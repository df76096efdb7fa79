"""Writing a file so that a crash leaves either the old file or the complete new one, never half of it.

Every output cleanset commits (a shard's results, a ledger entry, a cleaned shard, a manifest) goes through
``atomic_output``: a hidden temporary sibling, fsync, rename over the final name, fsync of the folder (so the rename
itself survives a power cut). A leftover temporary name is never read as data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success it replaces ``final``; on error it is removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
