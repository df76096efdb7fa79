"""Key folders are owner-only whatever the umask: a signing key readable by others is no proof of who signed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


def keygen(out: Path, umask: int) -> subprocess.CompletedProcess[str]:
    def child() -> None:
        os.umask(umask)

    return subprocess.run(
        [sys.executable, "-m", "cleanset", "keygen", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=child,
    )


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_keygen_folder_and_key_are_owner_only(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "a" / "keys"
    proc = keygen(out, umask)
    assert proc.returncode == 0, proc.stderr
    assert mode(out) == 0o700
    assert mode(out / "cleanset.key") == 0o600
    assert mode(out / "cleanset.pub") == 0o644


def test_keygen_refuses_a_folder_others_can_enter(tmp_path: Path) -> None:
    out = tmp_path / "open-folder"
    out.mkdir()
    out.chmod(0o755)
    proc = keygen(out, 0o000)
    assert proc.returncode == 2 and "others can access this folder (mode 0755)" in proc.stderr
    assert not (out / "cleanset.key").exists()
    out.chmod(0o700)  # an owner-only folder that already exists is fine
    assert keygen(out, 0o000).returncode == 0 and mode(out / "cleanset.key") == 0o600
