"""report.html / report.json / --card against hand-built runs: numbers equal summary.json, everything escaped,
no image and no hash anywhere in the page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from proof_runs import bank, item, write_run

from cleanset.actions.card import render_card
from cleanset.actions.report import write_report
from cleanset.actions.report_data import build_report
from cleanset.records import Match, Verdict

EVIL_KEY = "<script>alert('x')</script>&\"evil\".jpg"
EVIL_REASON = "decode: </td><img src=http://example.invalid/x.png> $x$"


class CountParser(HTMLParser):
    """Collects data-count attributes by element id, and every tag name used."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.tags: set[str] = set()
        self.table_counts: dict[str, list[int]] = {}
        self._table: str | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        self.links += [str(v) for k, v in attrs if k in ("src", "href", "xlink:href", "action", "srcset")]
        if tag == "table":
            self._table = a.get("id")
        if a.get("id") and a.get("data-count"):
            self.counts[str(a["id"])] = int(str(a["data-count"]))
        elif tag == "td" and a.get("data-count") and self._table:
            self.table_counts.setdefault(self._table, []).append(int(str(a["data-count"])))

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None


def m(bank_name: str, entry: str, dist: int, probe: str = "pdq/original", signal: str = "pdq") -> Match:
    return Match(bank_name, 1, entry, signal, dist, probe)


def make_run(tmp_path: Path) -> tuple[Path, dict]:
    results = [
        item("a/1.jpg", "s0", Verdict.KEEP, scores={"nsfw": 0.1}),
        item("a/2.jpg", "s0", Verdict.REMOVE, matches=[m("listA", "A-1", 0), m("listA", "A-1", 4, "pdq/rotate90")]),
        item(EVIL_KEY, "s0", Verdict.REMOVE, matches=[m("listB", "B-7", 0, "md5", "md5")], scores={"nsfw": 0.9}),
        item("b/1.jpg", "s1", Verdict.REVIEW, matches=[m("listA", "A-2", 40)]),
        item("b/2.jpg", "s1", None, reason=EVIL_REASON),
        item("b/3.jpg", "s1", None, reason="decode: truncated"),
        item("c/1.jpg", "s2", None, reason="decode: truncated"),
        item("c/2.jpg", "s2", Verdict.KEEP, scores={"nsfw": 0.4}),
        item("c/3.jpg", "s2", Verdict.REMOVE, matches=[m("listA", "A-3", 12), m("listB", "B-2", 9)]),
    ]
    summary = write_run(tmp_path / "run", results, banks=[bank("listA", 2, 3), bank("listB", 1, 9)])
    return tmp_path / "run", summary


def test_report_numbers_equal_summary(tmp_path: Path) -> None:
    run, summary = make_run(tmp_path)
    out, data = write_report(run, json_out=True)
    page = out.read_text()
    p = CountParser()
    p.feed(page)
    for k in ("items", "kept", "removed", "review", "failed"):
        assert p.counts[f"count-{k}"] == summary[k], k
    assert summary["items"] == summary["kept"] + summary["removed"] + summary["review"] + summary["failed"]
    assert p.table_counts["matches-by-bank"] == list(summary["matches_by_bank"].values())
    # Failures grouped by code: both reasons here ("decode: ...") are one group holding every failed item.
    assert p.table_counts["failures"] == [summary["failed"]]
    assert [(g["code"], g["items"]) for g in data["failures_by_code"]] == [("decode", summary["failed"])]
    assert json.loads((run / "report.json").read_text()) == json.loads(json.dumps(data))
    # The flagged table holds exactly the removed + review items, each once.
    flagged = data["flagged"]
    assert len(flagged) == summary["removed"] + summary["review"]
    assert {r["key"] for r in flagged} == {"a/2.jpg", EVIL_KEY, "b/1.jpg", "c/3.jpg"}
    by_key = {r["key"]: r for r in flagged}
    assert (by_key["c/3.jpg"]["bank"], by_key["c/3.jpg"]["entry_id"], by_key["c/3.jpg"]["distance"]) == (
        "listB",
        "B-2",
        9,
    )
    # PDQ histogram counts each matched item once at its closest distance.
    hist = dict(zip(data["pdq_distance"]["distance"], data["pdq_distance"]["items"], strict=True))
    assert {d: n for d, n in hist.items() if n} == {0: 1, 9: 1, 40: 1}
    assert [p["cumulative_items"] for p in data["progress"]] == [3, 6, 9]
    assert data["scores"]["nsfw"]["n"] == 3 and sum(data["scores"]["nsfw"]["items"]) == 3


def test_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    out, _ = write_report(run)
    page = out.read_text()
    p = CountParser()
    p.feed(page)
    assert "img" not in p.tags and "image" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    assert "data:image" not in page
    assert EVIL_KEY not in page and "<img src=http" not in page
    # Nothing is loaded or linked: references only point inside the page (SVG defs), and no url(...) in styles.
    assert p.links and all(v.startswith("#") for v in p.links), p.links
    assert "url(http" not in page and "@import" not in page
    # The only absolute URIs outside text are the SVG/XLink namespaces.
    assert set(re.findall(r'xmlns(?::\w+)?="([^"]+)"', page)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    # The item's own hashes and probe values are not shown either.
    assert "ab" * 32 not in page and "cd" * 16 not in page
    # The evil key is in the embedded data, escaped so it cannot end the script element.
    assert "\\u003cscript\\u003ealert" in page
    # The flagged and failed data blocks and the page script, nothing injected.
    assert page.count("</script>") == 3


def test_revision_is_reported(tmp_path: Path) -> None:
    run, summary = make_run(tmp_path)
    rev = run / "revisions" / "1"
    (rev / "items").mkdir(parents=True)
    for f in (run / "items").iterdir():
        (rev / "items" / f.name).write_bytes(f.read_bytes())
    changed = dict(summary, kept=summary["kept"] + 1, removed=summary["removed"] - 1)
    (rev / "summary.json").write_text(json.dumps(changed))
    data = build_report(run)
    assert data["run"]["revision"] == 1 and data["counts"]["kept"] == summary["kept"] + 1
    assert build_report(run, revision=0)["counts"]["kept"] == summary["kept"]


def test_card_lists_versions_and_reasons(tmp_path: Path) -> None:
    run, summary = make_run(tmp_path)
    card = render_card(build_report(run), "att.intoto.json")
    assert card.startswith("## Safety screening")
    assert "| listA | 2 | block | 3 | `sha256:" + "1" * 64 + "` |" in card
    assert "| listB | 1 | block | 9 |" in card
    # a/2 and c/3 are removed via listA/listB (closest match), the evil key via listB.
    assert "| match in listA | 1 |" in card and "| match in listB | 2 |" in card
    assert f"**{summary['removed']:,}**" in card and "att.intoto.json --pubkey" in card
    assert EVIL_KEY not in card and "a/2.jpg" not in card
    # Failures by code, not by free-text reason (which may carry markup or a file name).
    assert "- decode (bytes that could not be decoded as an image): 3" in card
    assert "<img" not in card and "example\\.invalid" not in card and "example.invalid" not in card


def test_cli_report_json_and_card(tmp_path: Path) -> None:
    run, summary = make_run(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "cleanset", "report", str(run), "--json", "--card"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("## Safety screening") and "wrote" in proc.stderr
    assert json.loads((run / "report.json").read_text())["counts"]["removed"] == summary["removed"]
    bad = subprocess.run(
        [sys.executable, "-m", "cleanset", "report", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "manifest.json" in bad.stderr


@pytest.mark.parametrize("n", [0])
def test_empty_run_renders(tmp_path: Path, n: int) -> None:
    summary = write_run(tmp_path / "run", [])
    out, data = write_report(tmp_path / "run")
    assert data["counts"]["items"] == summary["items"] == n
    assert 'id="count-items" data-count="0"' in out.read_text()
