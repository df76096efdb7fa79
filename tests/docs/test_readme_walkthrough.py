"""The README's walk-through runs as written: each line of its block, in order, in a fresh folder."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> list[str]:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", text, re.S)
    assert block, "README has no walk-through block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CLEANSET_HOME", None)
    demo = subprocess.run(
        [sys.executable, "-m", "cleanset", "demo", "--images", "40"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    for line in walkthrough():
        words = shlex.split(line)
        if words[:2] == [".", ".venv/bin/activate"]:
            continue  # this test runs cleanset through the interpreter that runs it
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            env[name] = value.replace("$PWD", str(tmp_path))
            continue
        assert words[0] == "cleanset", line
        out = subprocess.run(
            [sys.executable, "-m", "cleanset", *words[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
    assert (tmp_path / "my-run" / "report.html").is_file()
    assert (tmp_path / "my-clean" / "removed.parquet").is_file()
    assert (tmp_path / "my-clean.intoto.json").is_file()
