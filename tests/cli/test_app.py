"""The CLI as a user runs it: a real subprocess of ``python -m cleanset``."""

from __future__ import annotations

import subprocess
import sys

from cleanset import __version__


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=120)


def test_version() -> None:
    out = run("version")
    assert out.returncode == 0
    assert out.stdout.strip() == __version__


def test_unknown_command_is_a_usage_error() -> None:
    out = run("no-such-command")
    assert out.returncode == 2
    assert "no-such-command" in out.stderr


def test_every_command_group_registers() -> None:
    out = run("--help")
    assert out.returncode == 0
    for name in ("hash", "bank", "match", "scan", "clean", "query", "report", "rematch", "attest", "verify", "demo"):
        assert name in out.stdout, name
