"""`cleanset keys` as a user runs it, and `cleanset serve` refusing a bank that is not there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cleanset.service.keys import KeyStore


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLEANSET_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.slow  # four `python -m cleanset` processes: about 8 s on 2 busy cores
def test_keys_create_list_revoke(tmp_path: Path) -> None:
    made = run(tmp_path, "keys", "create", "uploads", "--scope", "admin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("cs_") and len(key) > 40
    store = KeyStore(tmp_path / "service" / "keys.json")
    rec = store.verify(key)
    assert rec is not None and rec.scope == "admin" and rec.name == "uploads"
    assert key not in (tmp_path / "service" / "keys.json").read_text()
    assert (tmp_path / "service" / "keys.json").stat().st_mode & 0o777 == 0o600

    listed = run(tmp_path, "keys", "list", "--json")
    assert listed.returncode == 0
    (entry,) = json.loads(listed.stdout)
    assert entry["id"] == rec.id and entry["revoked"] is None and key not in listed.stdout
    assert "digest" not in entry

    assert run(tmp_path, "keys", "revoke", rec.id).returncode == 0
    assert KeyStore(tmp_path / "service" / "keys.json").verify(key) is None
    assert json.loads(run(tmp_path, "keys", "list", "--json").stdout)[0]["revoked"]


def test_keys_create_refuses_an_unknown_scope(tmp_path: Path) -> None:
    out = run(tmp_path, "keys", "create", "x", "--scope", "root")
    assert out.returncode == 2
    assert "root" in out.stderr and "check" in out.stderr


def test_revoke_unknown_key_is_a_user_error(tmp_path: Path) -> None:
    out = run(tmp_path, "keys", "revoke", "nobody")
    assert out.returncode == 2 and "nobody" in out.stderr


def test_serve_refuses_an_unknown_bank_before_listening(tmp_path: Path) -> None:
    out = run(tmp_path, "serve", "--bank", "missing", "--port", "1")
    assert out.returncode == 2
    assert "missing" in out.stderr
