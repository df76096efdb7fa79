"""Fixtures for every test. Reference data lives in tests/data, so a fresh clone needs nothing beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

PDQ_REFERENCE = Path(__file__).resolve().parent / "data" / "pdq-reference"


@pytest.fixture(scope="session")
def pdq_reference() -> Path:
    if not PDQ_REFERENCE.is_dir():
        pytest.fail(f"{PDQ_REFERENCE} is missing: it is part of the repository (see tests/data/README.md)")
    return PDQ_REFERENCE


@pytest.fixture()
def cleanset_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private bank store for one test."""
    home = tmp_path / "cleanset-home"
    monkeypatch.setenv("CLEANSET_HOME", str(home))
    return home
