"""A working copy of a run on object storage may be behind the store, and nothing written there is pushed: attest
(which vouches for the run's latest revision) and the neighbour pass (which writes a revision) refuse it by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleanset import api
from cleanset.errors import UserError
from cleanset.storage import CACHE_ENV, is_working_copy


def test_attest_and_the_neighbour_pass_refuse_a_working_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    copy = tmp_path / "cache" / "storage" / "s3" / "bucket" / "run"
    copy.mkdir(parents=True)
    (copy / "manifest.json").write_text("{}")
    assert is_working_copy(copy) and not is_working_copy(tmp_path / "elsewhere")
    with pytest.raises(UserError, match="working copy of a run on object storage"):
        api.attest(copy, [tmp_path / "clean"], tmp_path / "key", tmp_path / "a.json")
    with pytest.raises(UserError, match="working copy of a run on object storage"):
        api.neighbours(copy, np.zeros((1, 4), np.float32))
