"""Writing a file so that a crash leaves either the old file or the complete new one, never half of it.

Every output cleanset commits (a shard's results, a ledger entry, a cleaned shard, a manifest) goes through
``atomic_output``: a hidden temporary sibling, fsync, rename over the final name, fsync of the folder (so the rename
itself survives a power cut). A leftover temporary name is never read as data.

Privacy follows the folder. A run folder holds a matched item's own hashes, which are list values, so it is made
owner-only (``private_dir``); a file written into an owner-only folder is made owner-only too, from the moment its
temporary name exists, whatever the umask and whichever module writes it. Anything else (the cleaned dataset) keeps
the permissions the umask gives, as any other program's output would.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_private(directory: Path) -> bool:
    """Whether nobody but the owner can enter or read ``directory``."""
    return stat.S_IMODE(os.stat(directory).st_mode) & 0o077 == 0


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) owner-only, or make an existing one owner-only; the umask cannot widen
    it. Parents that already exist are left as they are: they are the user's."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)
    for d in missing:
        os.chmod(d, PRIVATE_DIR_MODE)
    return path


def make_dirs(path: Path) -> Path:
    """``mkdir -p``, except that folders made below an owner-only one are owner-only too."""
    p = path
    while not p.exists():
        p = p.parent
    if p != path and is_private(p):
        return private_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_private(tree: Path) -> None:
    """Make ``tree`` and every folder under it 0700 and every file 0600 (a run folder written before runs were
    private, or by a program that ignored the folder's mode)."""
    os.chmod(tree, PRIVATE_DIR_MODE)
    for dirpath, dirnames, filenames in os.walk(tree):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), PRIVATE_DIR_MODE, follow_symlinks=False)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, PRIVATE_FILE_MODE)


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success it replaces ``final``; on error it is removed. In an
    owner-only folder the temporary file already exists, empty and 0600, when the block starts."""
    make_dirs(final.parent)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    private = is_private(final.parent)
    try:
        if private:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
            try:
                os.fchmod(fd, PRIVATE_FILE_MODE)
            finally:
                os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            if private:  # the writer may have replaced the file rather than written into it
                os.fchmod(fd, PRIVATE_FILE_MODE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def fsync_tree(tree: Path) -> None:
    """fsync every file under ``tree``, before the tree is renamed into place as one finished whole."""
    for dirpath, _, filenames in os.walk(tree):
        for f in filenames:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def sweep_dead(folder: Path, prefix: str) -> None:
    """Remove what a killed process left half-built in ``folder``: entries named ``<prefix>...-<pid>`` whose
    process is gone. A live process's work (another clean or rematch running now) is left alone."""
    import shutil

    if not folder.is_dir():
        return
    for d in folder.iterdir():
        pid = d.name.rsplit("-", 1)[-1]
        if not d.name.startswith(prefix) or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.unlink(missing_ok=True)
        except PermissionError:
            continue  # another user's live process
