"""The report as a browser renders it: Debian's headless Chromium runs the page's script, and the DOM it leaves
must show the numbers of summary.json; a screenshot must not be blank."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from proof_runs import bank, item, write_run

from cleanset.actions.report import PAGE_SIZE, write_report
from cleanset.records import Match, Verdict

pytestmark = pytest.mark.browser

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.text_of: dict[str, str] = {}
        self._open: list[str] = []
        self.body_rows = 0
        self._in_flagged = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.by_id[str(a["id"])] = a
            self._open.append(str(a["id"]))
            self.text_of[str(a["id"])] = ""
        if tag == "table" and a.get("id") == "flagged":
            self._in_flagged = True
        if tag == "tr" and self._in_flagged:
            self.body_rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_flagged = False

    def handle_data(self, data: str) -> None:
        for i in self._open[-1:]:
            self.text_of[i] += data
        if self._open and self._open[-1] in ("flagged-info", "flagged-total"):
            self._open.pop()


PROBES = ("pdq/original", "pdq/rotate90", "grid2x2.3/original", "trim/flipy", "frame2/pdq/original")
FAILURES = ("decode: corrupt JPEG: broken data stream", "read: Permission denied", "truncated tar: unexpected end")
POLICY = {"review_above": 20, "bank_actions": {"listC": "review"}, "allow_banks": [], "score_review": {}}


def big_run(tmp_path: Path) -> tuple[Path, dict]:
    """130 items over four shards committed across 2.5 minutes: kept, removed through every kind of probe, review
    for each reason the policy has, and failures of three kinds; even items carry a URL."""
    results = []
    for i in range(130):
        key, shard = f"k{i:03d}.jpg", f"s{i % 4}"
        if i % 3 == 0:
            r = item(key, shard, Verdict.KEEP)
        elif i % 3 == 1:
            mm = [Match("listA" if i % 2 else "listB", 1, f"E{i}", "pdq", i % 21, PROBES[i % len(PROBES)])]
            r = item(key, shard, Verdict.REMOVE, matches=mm)
        elif i % 5 == 0:
            r = item(key, shard, None, reason=FAILURES[(i // 15) % 3])
        elif i % 5 == 1:
            r = item(key, shard, Verdict.REVIEW, matches=[Match("listA", 1, f"R{i}", "pdq", 25, "pdq/flipx")])
        elif i % 5 == 2:
            r = item(key, shard, Verdict.REVIEW, matches=[Match("listC", 2, f"C{i}", "pdq", 3, "pdq/original")])
        else:
            r = item(key, shard, Verdict.REVIEW, scores={"unscreened_frames": 4.0})
        r.url = f"https://example.org/img/{i}.jpg" if i % 2 == 0 else None
        results.append(r)
    times = {f"s{k}": f"2026-01-01T00:{k * 40 // 60:02d}:{10 + k * 40 % 60:02d}Z" for k in range(4)}
    banks = [bank("listA"), bank("listB"), bank("listC", 2)]
    summary = write_run(tmp_path / "run", results, banks=banks, policy=POLICY, commit_times=times)
    return tmp_path / "run", summary


def test_rendered_numbers_equal_summary(tmp_path: Path) -> None:
    run, summary = big_run(tmp_path)
    out, _ = write_report(run)
    proc = run_chromium(tmp_path, "--dump-dom", out.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Dom()
    dom.feed(proc.stdout)
    for k in ("items", "kept", "removed", "review", "failed"):
        assert int(str(dom.by_id[f"count-{k}"]["data-count"])) == summary[k], k
    flagged = summary["removed"] + summary["review"]
    assert flagged > PAGE_SIZE
    # Set by the page's script from the embedded rows: proves the script ran and saw every flagged item.
    assert dom.by_id["flagged-total"]["data-count"] == str(flagged)
    assert dom.by_id["flagged-info"]["data-matching"] == str(flagged)
    assert f"rows 1–{PAGE_SIZE} of {flagged}" in dom.text_of["flagged-info"]
    assert dom.body_rows == 1 + PAGE_SIZE  # header + one page

    # The #q= filter runs the same search the box does.
    proc = run_chromium(tmp_path, "--dump-dom", out.as_uri() + "#q=listB")
    dom = Dom()
    dom.feed(proc.stdout)
    want = sum(1 for i in range(130) if i % 3 == 1 and i % 2 == 0)
    assert dom.by_id["flagged-info"]["data-matching"] == str(want)
    assert dom.body_rows == 1 + min(want, PAGE_SIZE)

    # What the script wrote in the cells: the probe in words and the policy's reason, for a reader who does not
    # know the engine's names; the URL as text, never as a link.
    proc = run_chromium(tmp_path, "--dump-dom", out.as_uri() + "#q=example.org")
    page = proc.stdout
    for words in ("as is", "rotated 90°", "collage cell 4 of 4", "border trimmed, mirrored", "frame 3"):
        assert f"<td>{words}</td>" in page or f">{words}</td>" in page, words
    assert "https://example.org/img/4.jpg" in page and "<a " not in page
    proc = run_chromium(tmp_path, "--dump-dom", out.as_uri() + "#q=review")
    for why in ("near the threshold: distance 25 &gt; review-above 20", "list listC is set to review"):
        assert why in proc.stdout, why
    assert "more frames than screened (4 not screened)" in proc.stdout
    # The failed list is drawn too, one row per failed item.
    assert 'id="failed-info" data-matching="' + str(summary["failed"]) + '"' in proc.stdout


def test_screenshot_is_not_blank(tmp_path: Path) -> None:
    run, _ = big_run(tmp_path)
    out, _ = write_report(run)
    shot = tmp_path / "shot.png"
    proc = run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", out.as_uri())
    if os.environ.get("CLEANSET_REPORT_SHOT"):  # to look at the page by hand: CLEANSET_REPORT_SHOT=/tmp/report.png
        shutil.copy(shot, os.environ["CLEANSET_REPORT_SHOT"])
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    px = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert px.shape == (2000, 1280)
    assert px.std() > 10.0
    # Ink (text, bars) covers a real part of the page, not a stray pixel.
    assert (px < 128).mean() > 0.01
    assert re.search(r"blank|about:blank", proc.stderr) is None or px.std() > 10.0
