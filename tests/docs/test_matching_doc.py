"""docs/matching.md against the code: its defaults table says what runs, and every script it cites exists.

The doc is what an operator reads before changing a threshold; a default that moved in the code but not in the
doc would have them reason from a number cleanset no longer uses.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "matching.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def defaults_table() -> dict[str, tuple[str, str]]:
    """First column -> (default, range) of the table under "## Defaults"."""
    rows = [line for line in section("Defaults").splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[:3] == ["setting", "default", "range"], header
    out = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[cells[0]] = (cells[1], cells[2])
    return out


def row(prefix: str) -> tuple[str, str]:
    table = defaults_table()
    [key] = [k for k in table if k.startswith(prefix)]
    return table[key]


def bounds(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)\.\.(\d+)", text)
    assert m, f"range {text!r} is not LOW..HIGH"
    return int(m[1]), int(m[2])


def cli_default(command: str, param: str) -> Any:
    from typer.main import get_command

    from cleanset.cli.app import app

    group = get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    [p] = [p for p in cmd.params if p.name == param]
    return p.default


@pytest.mark.parametrize("signal", ["pdq", "phash"])
def test_perceptual_thresholds(signal: str) -> None:
    from cleanset.signals import get_signal

    default, rng = row(f"`{signal}` threshold")
    sig = get_signal(signal)
    assert int(default) == sig.default_threshold
    assert bounds(rng) == (0, sig.bits)


def test_pdq512_probes_share_pdqs_threshold() -> None:
    from cleanset.signals import get_signal

    assert "both dialects" in next(k for k in defaults_table() if k.startswith("`pdq` threshold"))
    pdq, pdq512 = get_signal("pdq"), get_signal("pdq512")
    assert (pdq512.default_threshold, pdq512.bits) == (pdq.default_threshold, pdq.bits)


def test_exact_signals_are_all_listed_and_exact() -> None:
    from cleanset.signals import get_signal, signal_names
    from cleanset.signals.base import Metric

    key = next(k for k in defaults_table() if k.startswith("exact signals"))
    listed = set(re.findall(r"`(\w+)`", key))
    assert listed == {s for s in signal_names() if get_signal(s).metric is Metric.EXACT}
    default, rng = defaults_table()[key]
    assert int(default) == 0 and bounds(rng) == (0, 0)
    assert all(get_signal(s).default_threshold == 0 for s in listed)


def test_quality_gate_everywhere() -> None:
    from cleanset.cli import options
    from cleanset.matching.matcher import BankMatcher
    from cleanset.pipeline.scan import DEFAULT_QUALITY_GATE, ScanOptions

    default, rng = row("PDQ quality gate")
    stated = int(default)
    assert stated == options.DEFAULT_QUALITY_GATE == DEFAULT_QUALITY_GATE
    assert inspect.signature(ScanOptions).parameters["quality_gate"].default == stated
    assert inspect.signature(BankMatcher).parameters["quality_gate"].default == stated
    assert inspect.signature(BankMatcher.build).parameters["quality_gate"].default == stated
    assert cli_default("match", "quality_gate") == stated
    assert cli_default("scan", "quality_gate") == stated
    assert bounds(rng) == (options.QUALITY_MIN, options.QUALITY_MAX) == (0, 100)


def test_review_above_is_off_by_default_and_bounded_by_the_longest_hash() -> None:
    from cleanset.assess.policy import Policy
    from cleanset.cli import options

    default, rng = row("review above")
    assert default == "off"
    assert Policy().review_above is None and cli_default("scan", "review_above") is None
    assert bounds(rng) == (0, options.max_perceptual_bits())


def test_cited_scripts_and_tests_exist() -> None:
    """A figure is only as good as the script that prints it: every cited path, and test name, must exist."""
    text = DOC.read_text(encoding="utf-8")
    cited = set(re.findall(r"`((?:bench|tests|src)/[\w/.-]+\.py)(?:::(\w+))?`", text))
    assert len(cited) >= 8, cited
    for path, test in cited:
        assert (ROOT / path).is_file(), path
        if test:
            assert re.search(rf"^def {test}\(", (ROOT / path).read_text(), re.M), f"{path}::{test}"
    named = re.findall(r"`(test_\w+)`", text)  # bare test names refer to the last cited test file before them
    for name in named:
        assert any(re.search(rf"^def {name}\(", p.read_text(), re.M) for p in ROOT.glob("tests/**/*.py")), name
