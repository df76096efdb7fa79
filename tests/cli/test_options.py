"""The shared option checks: each refuses what the layer below would silently accept, and names the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.cli import options
from cleanset.errors import ExitCode, UserError

MD5 = "9e107d9d372bb6826bd81d3542a419d6"


@pytest.mark.parametrize("value", [0, 1, 50, 99, 100])
def test_quality_gate_accepts_a_pdq_quality(value: int) -> None:
    assert options.quality_gate(value) == value


@pytest.mark.parametrize("value", [-1, 101, 500])
def test_quality_gate_refuses_outside_0_100(value: int) -> None:
    with pytest.raises(UserError, match=r"--quality-gate must be 0\.\.100.*got " + str(value)) as e:
        options.quality_gate(value)
    assert e.value.exit_code is ExitCode.USER_ERROR


def test_workers_at_least_one_or_unset() -> None:
    assert options.workers(None) is None
    assert options.workers(1) == 1 and options.workers(64) == 64
    for bad in (0, -3):
        with pytest.raises(UserError, match=f"--workers must be at least 1, got {bad}"):
            options.workers(bad)


def test_review_above_is_a_distance_within_the_longest_perceptual_hash() -> None:
    assert options.max_perceptual_bits() == 256  # PDQ
    assert options.review_above(None) is None
    assert options.review_above(0) == 0 and options.review_above(256) == 256
    for bad in (-1, 257):
        with pytest.raises(UserError, match=r"--review-above must be 0\.\.256 bits"):
            options.review_above(bad)


def test_threshold_within_each_signals_bit_length() -> None:
    assert options.threshold("pdq", 0) == 0 and options.threshold("pdq", 256) == 256
    assert options.threshold("phash", 64) == 64
    assert options.threshold("md5", 0) == 0
    with pytest.raises(UserError, match=r"pdq=257 is outside 0\.\.256"):
        options.threshold("pdq", 257)
    with pytest.raises(UserError, match=r"phash=65 is outside 0\.\.64"):
        options.threshold("phash", 65)
    with pytest.raises(UserError, match=r"pdq=-1 is outside"):
        options.threshold("pdq", -1)
    with pytest.raises(UserError, match="matched exactly"):
        options.threshold("md5", 1)


def test_unknown_bank_names_cleanset_home_and_the_banks_there(cleanset_home: Path) -> None:
    with pytest.raises(UserError) as e:
        options.open_banks(["nope"])
    msg = str(e.value)
    assert f"CLEANSET_HOME={cleanset_home}" in msg and "no banks there yet" in msg
    store = BankStore(cleanset_home)
    store.create_from_rows("hotline", [BankRow("md5", MD5, "m-1")])
    store.create_from_rows("other", [BankRow("md5", MD5, "m-1")])
    with pytest.raises(UserError, match=r"no bank named 'nope' in CLEANSET_HOME=.*banks there: hotline, other$"):
        options.open_banks(["hotline", "nope@2"])


def test_unset_cleanset_home_says_which_folder_was_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEANSET_HOME", raising=False)
    monkeypatch.setattr("cleanset.banks.layout.home", lambda: tmp_path / "default-home")
    with pytest.raises(UserError, match=r"default-home \(CLEANSET_HOME is not set; that is its default\)"):
        options.open_banks(["nope"])


def test_open_banks_resolves_name_at_version_through_the_scans_resolver(cleanset_home: Path) -> None:
    store = BankStore(cleanset_home)
    store.create_from_rows("hotline", [BankRow("md5", MD5, "m-1")])
    store.create_from_rows("hotline", [BankRow("md5", "0" * 32, "m-2")])
    assert [(s.name, s.version) for s in options.open_banks(["hotline"])] == [("hotline", 2)]
    assert [(s.name, s.version) for s in options.open_banks(["hotline@1"])] == [("hotline", 1)]
    with pytest.raises(UserError, match="has no version 3"):
        options.open_banks(["hotline@3"])
    with pytest.raises(UserError, match="version must be a number"):
        options.open_banks(["hotline@x"])
    with pytest.raises(UserError, match="no bank given"):
        options.open_banks([])
