"""An import killed half way leaves its list values only in the store's temporary area, and the next import of any
bank sweeps them, without touching an import that is still running."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from bank_samples import csv_text, hexes, write

from cleanset.banks.store import BankStore

OLD = hexes("pdq", 20, 41)
NEW = hexes("pdq", 20, 42)  # in the import that is killed: must not survive anywhere
OTHER = hexes("md5", 5, 43)

# Runs an import in a child process that stops after writing the values file of its new version, tells the test
# so, and waits (for a "go" file, or for SIGKILL).
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pyarrow.parquet as pq
    from cleanset.banks.store import BankStore

    list_file, ready, go = map(Path, sys.argv[1:4])
    real = pq.write_table

    def paused(*args, **kw):
        ready.write_text("values written")
        while not go.exists():
            time.sleep(0.05)
        return real(*args, **kw)

    pq.write_table = paused
    print(BankStore.default().import_file("hot", list_file).version)
    """
)


def csv_list(path: Path, values: list[str], signal: str = "pdq") -> Path:
    return write(path, csv_text([(signal, v, f"e{i}") for i, v in enumerate(values)]))


def files_under(root: Path) -> Iterator[Path]:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            yield Path(dirpath) / name


def holds_any(path: Path, values: list[str]) -> bool:
    data = path.read_bytes()
    return any(bytes.fromhex(v) in data or v.encode() in data for v in values)


def start_child(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    ready, go = tmp_path / "ready", tmp_path / "go"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(csv_list(tmp_path / "new.csv", NEW)), str(ready), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if child.poll() is not None:
            pytest.fail(f"the importing child ended early: {child.communicate()[1]}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail("the importing child never reached its pause")
        time.sleep(0.05)
    return child, ready, go


def assert_clean(home: Path) -> None:
    """Only complete versions remain, owner-only, and the temporary area is empty."""
    banks = home / "banks"
    assert [p.name for p in (banks / ".tmp").iterdir()] == []
    for dirpath, _, _ in os.walk(home):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
    for f in files_under(home):
        rel = f.relative_to(banks).parts
        assert len(rel) >= 4 and rel[1] == "versions" and rel[2].isdigit(), f
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_killed_import_is_swept_by_the_next_import(tmp_path: Path, cleanset_home: Path) -> None:
    store = BankStore.default()
    store.import_file("hot", csv_list(tmp_path / "old.csv", OLD))
    child, _, _ = start_child(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL

    # The child really died holding values of its new version: only in the temporary area.
    holding = [f for f in files_under(cleanset_home) if holds_any(f, NEW)]
    assert holding, "the child was killed before it wrote anything"
    assert all((cleanset_home / "banks" / ".tmp") in f.parents for f in holding), holding
    assert [v.version for v in store.versions("hot")] == [1]

    store.import_file("other", csv_list(tmp_path / "other.csv", OTHER, "md5"))  # another bank: still sweeps
    assert_clean(cleanset_home)
    assert not [f for f in files_under(cleanset_home) if holds_any(f, NEW)]
    assert store.import_file("hot", csv_list(tmp_path / "new2.csv", NEW)).version == 2


def test_a_running_import_is_not_swept(tmp_path: Path, cleanset_home: Path) -> None:
    store = BankStore.default()
    child, _, go = start_child(tmp_path)
    try:
        assert len(list((cleanset_home / "banks" / ".tmp").iterdir())) == 1
        store.import_file("other", csv_list(tmp_path / "other.csv", OTHER, "md5"))
        assert store.scratch.sweep() == []
        assert len(list((cleanset_home / "banks" / ".tmp").iterdir())) == 1  # the child's, still there
        go.write_text("go")
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert out.strip() == "1"
    assert sorted(store.open("hot").entry_ids("pdq")) == sorted(f"e{i}" for i in range(len(NEW)))
    assert_clean(cleanset_home)


def test_an_import_that_fails_inside_leaves_nothing(
    tmp_path: Path, cleanset_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BankStore.default()

    def broken(*args: object, **kw: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        store.import_file("hot", csv_list(tmp_path / "new.csv", NEW))
    assert not store.exists("hot")
    assert not [f for f in files_under(cleanset_home) if holds_any(f, NEW)]
    assert [p.name for p in (cleanset_home / "banks" / ".tmp").iterdir()] == []


def test_old_style_leftovers_are_swept_once_stale(tmp_path: Path, cleanset_home: Path) -> None:
    """Temporary directories of earlier cleanset versions carry no lock: swept when an hour old."""
    store = BankStore.default()
    store.import_file("hot", csv_list(tmp_path / "old.csv", OLD))
    bank = cleanset_home / "banks" / "hot"
    stale, fresh = bank / ".incoming-stale", bank / ".incoming-fresh"
    graveyard = cleanset_home / "banks" / ".removed-gone-abc"
    for d in (stale, fresh, graveyard):
        (d / "values").mkdir(parents=True, mode=0o700)
        (d / "values" / "pdq.npy").write_bytes(b"".join(bytes.fromhex(v) for v in NEW))
    hour_ago = time.time() - 3700
    for d in (stale, graveyard):
        os.utime(d, (hour_ago, hour_ago))
    store.import_file("other", csv_list(tmp_path / "other.csv", OTHER, "md5"))
    assert not stale.exists() and not graveyard.exists()
    assert fresh.exists()  # might still be written by an earlier version's import
