"""Ctrl-C during a scan: one line, exit 130, no traceback (from the parent or a worker), and the same command
then finishes the scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_fixtures import make_folder

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.cli.app import INTERRUPTED, INTERRUPTED_MESSAGE


def test_ctrl_c_during_scan_is_one_line_and_130(tmp_path: Path, cleanset_home: Path) -> None:
    data = tmp_path / "data"
    make_folder(data, 300, size=256)
    BankStore.default().create_from_rows("b", [BankRow(signal="md5", value="0" * 32, entry_id="x")])
    run = tmp_path / "run"
    args = [sys.executable, "-m", "cleanset", "scan", str(data), "--bank", "b", "--out", str(run), "--workers", "2"]
    # Its own process group, signalled whole, as a terminal's Ctrl-C reaches the command and its workers.
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not (run / "manifest.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # workers forked and hashing
    assert proc.poll() is None, "the scan ended before it could be interrupted"
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == INTERRUPTED, err
    assert time.monotonic() - t0 < 4  # the workers stopped at once, not after their shard
    assert "Traceback" not in err and "Traceback" not in out
    assert err.strip().splitlines()[-1] == INTERRUPTED_MESSAGE
    assert err.count(INTERRUPTED_MESSAGE) == 1
    again = subprocess.run(args, capture_output=True, text=True, timeout=120, env=os.environ)
    assert again.returncode == 0, again.stderr
    assert "300" in again.stdout
