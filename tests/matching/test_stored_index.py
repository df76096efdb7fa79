"""Stored Hamming indexes: written with a version at import, mapped when the version is opened, and never trusted
blindly (tables over other values, or damaged, are set aside and the version is indexed in memory, exactly)."""

from __future__ import annotations

import logging
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import InputFormatError
from cleanset.matching import stored
from cleanset.matching.base import to_words
from cleanset.matching.brute import BruteForceIndex
from cleanset.matching.hamming import HammingIndex
from cleanset.matching.matcher import BankMatcher

N = 100_000  # large enough for the cost model to choose tables over a scan


def _rows(seed: int, n: int = N) -> tuple[np.ndarray, list[BankRow]]:
    values = np.random.default_rng(seed).integers(0, 256, (n, 32), dtype=np.uint8)
    rows = [BankRow("pdq", bytes(v).hex(), f"e{i}") for i, v in enumerate(values)]
    rows.append(BankRow("md5", "0" * 31 + "1", "file"))  # an exact signal: never given tables
    return values, rows


def _probes(values: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(9)
    near = np.array(values[:: N // 50][:50])
    for i, row in enumerate(near):
        bits = np.unpackbits(row)
        bits[rng.choice(256, i % 32, replace=False)] ^= 1
        near[i] = np.packbits(bits)
    return np.concatenate([near, rng.integers(0, 256, (50, 32), dtype=np.uint8)])


def _pairs(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> list[tuple[int, int, int]]:
    return list(zip(*(a.tolist() for a in result), strict=True))


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[BankStore, list[np.ndarray]]:
    store = BankStore(tmp_path_factory.mktemp("home"), prepare=stored.write_indexes)
    for seed in (1, 2):
        store.create_from_rows("list", _rows(seed)[1])
    # as stored (the store keeps entries in its canonical order)
    return store, [np.array(store.open("list", v).values("pdq")) for v in (1, 2)]


def _copy_version(store: BankStore, version: int, dest: Path) -> Path:
    shutil.copytree(store.layout.version("list", version), dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dest


def test_import_stores_tables_only_owner_only(two_versions: tuple[BankStore, list[np.ndarray]]) -> None:
    store, _ = two_versions
    where = stored.index_dir(store.layout.version("list", 2), "pdq")
    assert sorted(p.name for p in where.iterdir()) == ["index.json", "lists.npy", "slots.npy"]  # no values copy
    assert not stored.index_dir(store.layout.version("list", 2), "md5").exists()
    for p in [where, *where.iterdir()]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p


def test_opening_maps_the_stored_tables_and_answers_exactly(
    two_versions: tuple[BankStore, list[np.ndarray]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, values = two_versions

    def no_build(*a: object, **k: object) -> HammingIndex:
        raise AssertionError("the stored index should have been mapped, not built")

    monkeypatch.setattr(HammingIndex, "build", classmethod(no_build))
    matcher = BankMatcher.build([store.open("list")])
    (pdq,) = [b for b in matcher.indexes if b.signal == "pdq"]
    assert isinstance(pdq.index, HammingIndex) and pdq.index.widths
    assert isinstance(pdq.index.slots, np.memmap) or isinstance(pdq.index.slots.base, np.memmap)
    probes = _probes(values[1])
    got = _pairs(pdq.index.query(probes, 31))
    assert got == _pairs(BruteForceIndex.build(values[1]).query(probes, 31))
    assert len({p for p, _, _ in got}) >= 50  # every planted probe found its entry


def test_tables_over_other_values_are_not_used(
    two_versions: tuple[BankStore, list[np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, values = two_versions
    version2 = _copy_version(store, 2, tmp_path / "2")
    shutil.rmtree(stored.index_dir(version2, "pdq"))
    shutil.copytree(stored.index_dir(store.layout.version("list", 1), "pdq"), stored.index_dir(version2, "pdq"))
    with caplog.at_level(logging.WARNING, logger="cleanset.matching"):
        index = stored.hamming_index(store.open("list", 2).__class__(version2), "pdq", values[1], 31)
    assert "built from other values" in caplog.text
    probes = _probes(values[1])
    assert _pairs(index.query(probes, 31)) == _pairs(BruteForceIndex.build(values[1]).query(probes, 31))


def test_a_damaged_table_is_named_and_set_aside(
    two_versions: tuple[BankStore, list[np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, values = two_versions
    version2 = _copy_version(store, 2, tmp_path / "2")
    ids = stored.index_dir(version2, "pdq") / "lists.npy"
    raw = bytearray(ids.read_bytes())
    raw[-5] ^= 0xFF
    ids.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="cleanset.matching"):
        index = stored.hamming_index(store.open("list", 2).__class__(version2), "pdq", values[1], 31)
    assert "lists.npy" in caplog.text and "SHA-256" in caplog.text
    probes = _probes(values[1])
    assert _pairs(index.query(probes, 31)) == _pairs(BruteForceIndex.build(values[1]).query(probes, 31))


def test_tables_alone_cannot_be_opened_without_their_values(
    two_versions: tuple[BankStore, list[np.ndarray]],
) -> None:
    store, values = two_versions
    where = stored.index_dir(store.layout.version("list", 1), "pdq")
    with pytest.raises(InputFormatError, match="tables only"):
        HammingIndex.load(where)
    with pytest.raises(InputFormatError, match="given"):
        HammingIndex.load(where, words=to_words(values[0][:-1]))
    assert len(HammingIndex.load(where, words=to_words(values[0]))) == N


def test_a_store_without_prepare_stores_no_tables(tmp_path: Path) -> None:
    store = BankStore(tmp_path)
    store.create_from_rows("plain", _rows(3)[1])
    assert not (store.layout.version("plain", 1) / stored.INDEX_DIR).exists()
    assert BankMatcher.build([store.open("plain")]).indexes  # indexed in memory, as before


def test_a_full_index_in_place_of_tables_is_not_used(
    two_versions: tuple[BankStore, list[np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An index saved with its own values (``save(words=True)``) would answer over those values, not the
    version's: it is set aside, whatever its digests say."""
    store, values = two_versions
    version2 = _copy_version(store, 2, tmp_path / "2")
    shutil.rmtree(stored.index_dir(version2, "pdq"))
    HammingIndex.build(values[0], threshold_hint=31).save(stored.index_dir(version2, "pdq"))  # version 1's values
    with caplog.at_level(logging.WARNING, logger="cleanset.matching"):
        index = stored.hamming_index(store.open("list", 2).__class__(version2), "pdq", values[1], 31)
    assert "holds its own values" in caplog.text
    probes = _probes(values[1])
    assert _pairs(index.query(probes, 31)) == _pairs(BruteForceIndex.build(values[1]).query(probes, 31))
