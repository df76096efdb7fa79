"""The bank store's temporary directories, and sweeping away those of processes that died.

An import assembles its version in a temporary directory and renames it into place; a removal renames the bank
away before deleting it. A process killed in between (``kill -9``, a power cut, the OOM killer) leaves list values
behind in that directory, and nothing would ever read or delete them. So every temporary directory of the store
lives in one place, ``banks/.tmp/``, and is locked (``flock`` on the directory itself) by the process that made it
for as long as that process uses it. The kernel drops the lock when the process ends, however it ends, so a
directory whose lock can be taken belongs to nobody: the next process that makes a temporary directory deletes it.
A running import's directory is never touched, whatever its age. Making and sweeping happen under a lock on
``.tmp`` itself, so a sweep never sees a directory in the moment between its creation and its lock.

Where ``flock`` is not supported (some network file systems), nothing is swept: leaving a dead import's directory
is better than deleting a live one's.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cleanset.banks.secure import DIR_MODE, private_dir

TMP_DIR = ".tmp"
# Temporary directories of cleanset versions before banks/.tmp (beside a bank, or beside the banks): they carry no
# lock, so they are swept only once nothing can still be writing them.
LEGACY_PATTERNS = (".incoming-", ".removed-")
LEGACY_AGE_S = 3600.0


def _try_lock(fd: int) -> bool | None:
    """True: locked; False: another process holds it; None: this file system cannot lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return False
        return None
    return True


def _open_dir(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


class Scratch:
    def __init__(self, banks: Path) -> None:
        self.banks = banks
        self.dir = banks / TMP_DIR

    @contextmanager
    def _guard(self) -> Iterator[bool]:
        """Hold the lock on ``.tmp`` (blocking: the holder only makes a directory or sweeps). Yields whether
        locking works here at all."""
        private_dir(self.dir)
        fd = _open_dir(self.dir)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                works = True
            except OSError:
                works = False
            yield works
        finally:
            os.close(fd)  # closing drops the lock

    @contextmanager
    def tempdir(self, prefix: str) -> Iterator[Path]:
        """A new private directory under ``.tmp``, locked while the block runs; whatever is still in it at the
        end is deleted (rename what should stay out of it first). Sweeps dead processes' directories first."""
        with self._guard() as works:
            if works:
                self._sweep_locked()
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=self.dir))
            os.chmod(path, DIR_MODE)
            fd = _open_dir(path)
            if works:
                fcntl.flock(fd, fcntl.LOCK_EX)  # new, so nobody else can hold it
        try:
            yield path
        finally:
            try:
                if _same(fd, path):
                    shutil.rmtree(path)
            finally:
                os.close(fd)

    def sweep(self) -> list[str]:
        """Delete the temporary directories no live process holds; returns their names."""
        with self._guard() as works:
            return self._sweep_locked() if works else []

    def _sweep_locked(self) -> list[str]:
        removed: list[str] = []
        for entry in sorted(self.dir.iterdir()):
            try:
                fd = _open_dir(entry)
            except OSError:  # gone meanwhile (its owner renamed it into place), or not a directory
                if entry.is_symlink() or entry.is_file():
                    entry.unlink(missing_ok=True)
                    removed.append(entry.name)
                continue
            try:
                if _try_lock(fd) and _same(fd, entry):
                    shutil.rmtree(entry)
                    removed.append(entry.name)
            finally:
                os.close(fd)
        removed += self._sweep_legacy()
        return removed

    def _sweep_legacy(self) -> list[str]:
        now = time.time()
        candidates = list(self.banks.iterdir())
        for bank in candidates[:]:
            if bank.is_dir() and not bank.is_symlink() and not bank.name.startswith("."):
                candidates += list(bank.iterdir())
        removed = []
        for p in candidates:
            if not p.name.startswith(LEGACY_PATTERNS) or not p.is_dir() or p.is_symlink():
                continue
            with suppress(FileNotFoundError):
                if now - p.lstat().st_mtime > LEGACY_AGE_S:
                    shutil.rmtree(p)
                    removed.append(p.name)
        return removed


def _same(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the directory ``fd`` was opened on (not renamed away, not replaced)."""
    try:
        a, b = os.fstat(fd), os.lstat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
