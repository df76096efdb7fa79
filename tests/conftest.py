"""Shared fixtures. Tests read ../shared/ in place (CI has it beside the checkout); nothing is copied from it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
PDQ_REFERENCE = SHARED / "pdq-reference"


@pytest.fixture(scope="session")
def pdq_reference() -> Path:
    if not PDQ_REFERENCE.is_dir():
        pytest.fail(f"{PDQ_REFERENCE} is missing: tests need ../shared/ beside the checkout")
    return PDQ_REFERENCE


@pytest.fixture()
def cleanset_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private bank store for one test."""
    home = tmp_path / "cleanset-home"
    monkeypatch.setenv("CLEANSET_HOME", str(home))
    return home
