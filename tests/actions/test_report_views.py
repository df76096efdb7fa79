"""The report for its two readers: the flagged table says where an item is, what matched (probe in words) and why it
went to review; failures are listed by key and grouped by code; a revision shows what changed; charts have integer
axes and leave out what would say nothing; and no list value, item hash or image reaches the page."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from proof_runs import SECRET_BANK_VALUE, bank, write_run

from cleanset.actions import charts
from cleanset.actions.card import render_card
from cleanset.actions.report import render_html, write_report
from cleanset.actions.report_data import Explainer, build_report, failure_code, flagged_rows, probe_words
from cleanset.banks.base import MemoryBank
from cleanset.imaging.decode import PAM_REASON, SVG_REASON
from cleanset.records import DIHEDRAL_NAMES, ItemResult, Match, Probe, Status, Verdict
from cleanset.results.rematch import rematch
from cleanset.runs.schema import to_table
from cleanset.runs.store import RunStore
from cleanset.runs.summary import summarize

POLICY = {"review_above": 20, "bank_actions": {"listC": "review"}, "allow_banks": [], "score_review": {"nsfw": 0.9}}
MD5 = "cd" * 16
PDQ = "ab" * 32


def row(
    key: str,
    verdict: Verdict | None,
    *matches: Match,
    shard: str = "s0",
    url: str | None = None,
    reason: str | None = None,
    scores: dict[str, float] | None = None,
    sha256: str | None = None,
) -> ItemResult:
    """A results row with the item's own hashes in place, so a test can show they never reach the page."""
    if verdict is None:
        return ItemResult(key, shard, Status.FAILED, reason, None, url=url)
    sha = sha256 or hashlib.sha256(key.encode()).hexdigest()
    probes = [Probe("md5", "md5", MD5), Probe("sha256", "sha256", sha), Probe("pdq/original", "pdq", PDQ, 90)]
    hashes = {"md5": MD5, "sha256": sha, "pdq": PDQ}
    return ItemResult(
        key, shard, Status.OK, None, verdict, hashes, url=url, probes=probes, matches=list(matches), scores=scores or {}
    )


def review_run(tmp_path: Path, commit_times: dict[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
    results = [
        row(
            "u1.jpg",
            Verdict.REMOVE,
            Match("listA", 3, "A-1", "pdq", 5, "pdq/rotate90"),
            Match("listA", 3, "A-2", "sha256", 0, "sha256"),
            url="https://example.org/a/u1.jpg",
            sha256=SECRET_BANK_VALUE,  # an exact match: the item's sha256 is the list's value
        ),
        row("u2.jpg", Verdict.REVIEW, Match("listA", 3, "A-3", "pdq", 25, "grid2x2.3/original")),
        row("u3.jpg", Verdict.REVIEW, Match("listC", 1, "C-1", "pdq", 2, "pdq512/original"), shard="s1"),
        row("u4.gif", Verdict.REVIEW, scores={"unscreened_frames": 3.0}, shard="s1"),
        row("u5.jpg", Verdict.REVIEW, scores={"nsfw": 0.95}, shard="s1"),
        row("u6.jpg", Verdict.KEEP, scores={"nsfw": 0.2}, shard="s2"),
        row("f1.jpg", None, reason="decode: corrupt JPEG: broken data stream", shard="s2"),
        row("f2.svg", None, reason=f"decode: {SVG_REASON}", shard="s2"),
        row("f3.jpg", None, reason="read: Permission denied: f3.jpg", shard="s1"),
        row("f4.txt", None, reason="sidecar f4.txt of f4.jpg: binary content (not UTF-8 text); left out", shard="s0"),
    ]
    banks = [bank("listA", 3), bank("listC", 1)]
    summary = write_run(tmp_path / "run", results, banks=banks, policy=POLICY, commit_times=commit_times)
    return tmp_path / "run", summary


class Page(HTMLParser):
    """Headings of each table by id, the JSON data blocks, every tag and every attribute value."""

    def __init__(self) -> None:
        super().__init__()
        self.heads: dict[str, list[dict[str, str | None]]] = {}
        self.data: dict[str, Any] = {}
        self.tags: set[str] = set()
        self.attr_values: list[str] = []
        self.ids: set[str] = set()
        self._table: str | None = None
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        self.attr_values += [v for k, v in attrs if v and not k.startswith("xmlns")]
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "table":
            self._table = a.get("id")
        if tag == "th" and self._table:
            self.heads.setdefault(self._table, []).append(a)
        if tag == "script" and a.get("type") == "application/json":
            self._script = str(a["id"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script:
            self.data[self._script] = json.loads(data)


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    return p


@pytest.mark.parametrize(
    ("probe", "words"),
    [
        ("pdq/original", "as is"),
        ("pdq/flipy", "mirrored"),
        ("pdq/rotate90", "rotated 90°"),
        ("pdq/rotate270", "rotated 270°"),
        ("trim/original", "border trimmed"),
        ("trim/rotate180", "border trimmed, rotated 180°"),
        ("grid2x2.3/original", "collage cell 4 of 4"),
        ("grid1x2.1.2x1.0/flipx", "collage cell 2 of 2, cell 1 of 2, upside down (flipped)"),
        ("grid3x3.4.trim/original", "collage cell 5 of 9, border trimmed"),
        ("pdq512/original", "other PDQ dialect"),
        ("pdq512/flipy", "other PDQ dialect, mirrored"),
        ("frame2/pdq/original", "frame 3"),
        ("frame1/phash", "frame 2, pHash"),
        ("image2/pdq/rotate90", "column image2, rotated 90°"),
        ("md5", "exact file"),
        ("sha256", "exact file"),
        ("url_sha1", "exact URL"),
        ("given/md5", "exact file (hash given in the metadata)"),
        ("phash", "pHash"),
    ],
)
def test_probe_in_words(probe: str, words: str) -> None:
    assert probe_words(probe) == words


def test_every_rotation_has_words() -> None:
    words = {probe_words(f"pdq/{name}") for name in DIHEDRAL_NAMES}
    assert len(words) == len(DIHEDRAL_NAMES) and not set(DIHEDRAL_NAMES) & words


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("decode: corrupt JPEG: broken data stream", "decode"),
        ("read: Permission denied", "read"),
        ("truncated tar: unexpected end of data", "truncated"),
        ("sidecar a.txt of a.jpg: binary content (not UTF-8 text); left out", "unscreenable"),
        ("member x.bin is not an image, text or JSON (binary content); left out unscreened", "unscreenable"),
        ("not a regular file: a/b.jpg", "not-regular"),
        ("not a regular file member (link): a.jpg", "not-regular"),
        (f"decode: {SVG_REASON}", "unscreenable"),
        (f"decode: {PAM_REASON}", "unscreenable"),
        ("url: empty URL", "url"),
        ("url: cannot parse: bad port", "url"),
        ("image2: decode: corrupt PNG", "decode"),
        ("empty file (0 bytes): a.jpg", "empty"),
        ("shard vanished: No such file", "missing"),
        ("HTTP Error 404: Not Found", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_failure_code(reason: str | None, code: str) -> None:
    assert failure_code(reason) == code


def test_flagged_table_says_where_what_and_why(tmp_path: Path) -> None:
    run, summary = review_run(tmp_path)
    out, data = write_report(run, json_out=True)
    rows = {r["key"]: r for r in data["flagged"]}
    assert set(rows) == {"u1.jpg", "u2.jpg", "u3.jpg", "u4.gif", "u5.jpg"}
    u1 = rows["u1.jpg"]  # the closest match that asked for removal: the exact one
    assert (u1["where"], u1["verdict"], u1["why"]) == ("https://example.org/a/u1.jpg", "remove", ["exact match"])
    assert (u1["bank"], u1["version"], u1["entry_id"], u1["signal"], u1["distance"]) == ("listA", 3, "A-2", "sha256", 0)
    assert u1["probe_words"] == "exact file"
    u2 = rows["u2.jpg"]
    assert u2["where"] == "u2.jpg" and u2["url"] is None  # no URL: the key is where it is
    assert u2["why"] == ["near the threshold: distance 25 > review-above 20"]
    assert (u2["probe"], u2["probe_words"], u2["distance"]) == ("grid2x2.3/original", "collage cell 4 of 4", 25)
    u3 = rows["u3.jpg"]
    assert u3["why"] == ["list listC is set to review"] and u3["probe_words"] == "other PDQ dialect"
    assert (u3["bank"], u3["version"]) == ("listC", 1)
    assert rows["u4.gif"]["why"] == ["more frames than screened (3 not screened)"] and rows["u4.gif"]["bank"] is None
    assert rows["u5.jpg"]["why"] == ["score nsfw 0.950 ≥ 0.9"]

    page = out.read_text()
    p = parse(page)
    heads = [h["data-col"] for h in p.heads["flagged"]]
    labels = re.findall(r'<th data-col="[^"]+"[^>]*>([^<]+)</th>', page)
    assert heads == [
        "where",
        "shard",
        "verdict",
        "why",
        "bank",
        "version",
        "entry_id",
        "signal",
        "distance",
        "probe_words",
    ]
    assert {"item (URL or key)", "why", "list", "version", "signal", "distance", "matched as"} <= set(labels)
    assert "caption" not in heads and "Captions are not stored" in page
    # The page's table data is report.json's, and every column the page shows is a field of its rows.
    assert p.data["flagged-data"] == json.loads((run / "report.json").read_text())["flagged"]
    for table, key in (("flagged", "flagged"), ("failed", "failed")):
        fields = {k for r in data[key] for k in r}
        for h in p.heads[table]:
            assert {h["data-col"], h.get("data-sub"), h.get("data-title")} - {None} <= fields, (table, h)
    # The analyst's words for the probes are in the per-probe table too.
    assert data["probe_words"]["pdq/rotate90"] == "rotated 90°" and ">collage cell 4 of 4</td>" in page
    assert summary["review"] == 4 and summary["removed"] == 1


def test_caption_is_shown_truncated_when_results_carry_one(tmp_path: Path) -> None:
    """A flagged item's caption (kept in the results for flagged items only) is shown, truncated."""
    long = "A long caption about a harmless beach scene " * 5
    flagged = row("c1.jpg", Verdict.REMOVE, Match("listA", 1, "A-1", "pdq", 3, "pdq/flipx"))
    flagged.caption = long
    items = to_table([flagged])
    rows = flagged_rows(items, Explainer({"banks": [bank("listA")]}, set()))
    assert len(rows[0]["caption"]) == 80 and rows[0]["caption"].endswith("…")
    assert long.startswith(rows[0]["caption"][:-1])
    run, _ = review_run(tmp_path)
    data = build_report(run)
    data["flagged"][0]["caption"] = rows[0]["caption"]
    heads = [h["data-col"] for h in parse(render_html(data)).heads["flagged"]]
    assert heads[:2] == ["where", "caption"]


def test_failed_items_listed_and_grouped_by_code(tmp_path: Path) -> None:
    run, summary = review_run(tmp_path)
    out, data = write_report(run)
    assert [(r["key"], r["code"]) for r in data["failed"]] == [
        ("f1.jpg", "decode"),
        ("f3.jpg", "read"),
        ("f4.txt", "unscreenable"),  # by code, then shard (s0 before s2), then key
        ("f2.svg", "unscreenable"),
    ]
    assert all(r["reason"] for r in data["failed"])
    groups = {g["code"]: g for g in data["failures_by_code"]}
    assert {c: g["items"] for c, g in groups.items()} == {"unscreenable": 2, "decode": 1, "read": 1}
    assert sum(g["items"] for g in groups.values()) == summary["failed"]
    assert data["failures_by_code"][0]["code"] == "unscreenable"  # most items first
    assert {e["reason"] for e in groups["unscreenable"]["examples"]} == {
        f"decode: {SVG_REASON}",
        "sidecar f4.txt of f4.jpg: binary content (not UTF-8 text); left out",
    }
    page = out.read_text()
    p = parse(page)
    assert p.data["failed-data"] == data["failed"]
    assert [h["data-col"] for h in p.heads["failed"]] == ["key", "shard", "code", "reason"]
    assert re.findall(r'<tr><td><code>([a-z-]+)</code></td><td class="n" data-count="(\d+)"', page) == [
        ("unscreenable", "2"),
        ("decode", "1"),
        ("read", "1"),
    ]
    card = render_card(data)
    assert "- unscreenable (" in card and "f4\\.txt" not in card


def rematch_run(tmp_path: Path, times: int = 1) -> Path:
    """Three items screened against listA v1; v2 drops A0, lists k2's file and comes near k3's rotated view."""
    k3_rot = "0f" * 32
    results = [
        ItemResult(
            "k0.jpg",
            "s0",
            Status.OK,
            None,
            Verdict.REMOVE,
            {"md5": "11" * 16},
            probes=[Probe("md5", "md5", "11" * 16)],
            matches=[Match("listA", 1, "A0", "md5", 0, "md5")],
        ),
        ItemResult(
            "k2.jpg", "s0", Status.OK, None, Verdict.KEEP, {"md5": "22" * 16}, probes=[Probe("md5", "md5", "22" * 16)]
        ),
        ItemResult(
            "k3.jpg",
            "s1",
            Status.OK,
            None,
            Verdict.KEEP,
            {"md5": "33" * 16, "pdq": PDQ},
            probes=[Probe("md5", "md5", "33" * 16), Probe("pdq/rotate90", "pdq", k3_rot, 90)],
        ),
        ItemResult("bad.jpg", "s1", Status.FAILED, "decode: truncated", None),
    ]
    run = tmp_path / "run"
    (run / "items").mkdir(parents=True)
    for sid in ("s0", "s1"):
        pq.write_table(to_table([r for r in results if r.shard == sid]), run / "items" / f"{sid}.parquet")
    manifest = {
        "cleanset_version": "0.1.0",
        "format": "folder",
        "sources": ["/data/photos"],
        "banks": [{"name": "listA", "version": 1, "allow": False, "entry_count": 1, "digest": "x", "thresholds": {}}],
        "quality_gate": 50,
        "policy": {"review_above": 20, "bank_actions": {}, "allow_banks": [], "score_review": {}},
        "fingerprint": "f" * 64,
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    summary = summarize(to_table(results))
    summary.update(started="t0", finished="t1", shards={"total": 2, "committed": 2})
    (run / "summary.json").write_text(json.dumps(summary))
    near = bytearray(bytes.fromhex(k3_rot))
    for i in range(25):  # 25 bits away: a match, but past review-above
        near[i // 8] ^= 1 << (i % 8)
    v2 = MemoryBank.from_hex("listA", [("md5", "22" * 16, "A2"), ("pdq", near.hex(), "A3")], version=2)
    for _ in range(times):  # a second rematch against the same list changes nothing
        rematch(run, [], snapshots=[v2])
    return run


def test_revision_section_lists_changed_verdicts(tmp_path: Path, cleanset_home: Path) -> None:
    run = rematch_run(tmp_path)
    assert RunStore(run).latest_revision() == 1
    out, data = write_report(run, json_out=True)
    ch = data["changes"]
    assert (ch["revision"], ch["base_revision"], ch["counts"]["verdict_changed"]) == (1, 0, 3)
    got = [
        (c["key"], c["old_verdict"], c["new_verdict"], c["bank"], c["version"], c["previous_version"], c["entry_id"])
        for c in ch["items"]
    ]
    assert got == [
        ("k2.jpg", "keep", "remove", "listA", 2, 1, "A2"),
        ("k3.jpg", "keep", "review", "listA", 2, 1, "A3"),
        ("k0.jpg", "remove", "keep", "listA", 2, 1, "A0"),
    ]
    assert [c["change"] for c in ch["items"]] == ["newly matched", "newly matched", "no longer matched"]
    assert ch["transitions"] == {"keep → remove": 1, "keep → review": 1, "remove → keep": 1}
    page = out.read_text()
    p = parse(page)
    assert "changes-head" in p.ids and "What changed in revision 1 (against revision 0)" in page
    assert 'id="changes-verdicts" data-count="3"' in page and 'id="changes-newly" data-count="2"' in page
    assert p.data["changes-data"] == ch["items"]
    assert [h["data-col"] for h in p.heads["changes"]][:4] == ["key", "shard", "old_verdict", "new_verdict"]
    # The revision's flagged row explains itself with the revision's list version and the rotated view.
    k3 = next(r for r in data["flagged"] if r["key"] == "k3.jpg")
    assert (k3["version"], k3["probe_words"], k3["why"]) == (
        2,
        "rotated 90°",
        ["near the threshold: distance 25 > review-above 20"],
    )
    # The scan itself (revision 0) and a run never re-matched have no such section.
    assert build_report(run, revision=0)["changes"] is None
    assert "changes-head" not in render_html(build_report(run, revision=0))
    plain, _ = review_run(tmp_path / "other")
    assert build_report(plain)["changes"] is None


def tick_labels(svg: str, axis: str) -> list[str]:
    return re.findall(rf'<g id="{axis}tick_\d+">.*?<text[^>]*>([^<]*)</text>', svg, flags=re.DOTALL)


def test_chart_axes_count_whole_items() -> None:
    hist = charts.histogram([0, 1, 2, 3], [0, 1, 0, 1], "d", "bits", discrete=True, marks=[(2.5, "threshold 2")])
    scores = charts.histogram([0.0, 0.25, 0.5, 0.75, 1.0], [1, 0, 0, 2], "s", "score")
    bars = charts.stacked_bars(
        ["s0", "s1"], [("removed", [1, 2], charts.REMOVED), ("failed", [0, 1], charts.FAILED)], "t"
    )
    # The progress chart's left axes count items; its right one is a rate (items per minute) and may be 0.5.
    prog = charts.progress_chart([0.0, 40.0, 90.0], [1, 2, 3], "p").split('<g id="axes_2">')[0]
    for svg, axes in ((hist, "xy"), (scores, "y"), (bars, "x"), (prog, "y")):
        for axis in axes:
            labels = tick_labels(svg, axis)
            assert labels and all(re.fullmatch(r"−?\d[\d,]*", t) for t in labels), (axis, labels)
    assert "threshold 2" in hist


def minutes_apart(*minutes: float) -> dict[str, str]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return {f"s{i}": (t0 + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for i, m in enumerate(minutes)}


@pytest.mark.parametrize(
    ("times", "shown"),
    [
        (None, False),  # three commits within 14 seconds
        (minutes_apart(0, 1, 2), True),
        (minutes_apart(0, 0.2, 0.5), False),  # under a minute
    ],
)
def test_progress_chart_only_for_longer_runs(tmp_path: Path, times: dict[str, str] | None, shown: bool) -> None:
    run, _ = review_run(tmp_path, commit_times=times)
    out, data = write_report(run)
    assert len(data["progress"]) == 3
    page = out.read_text()
    assert ('id="chart-progress"' in page) is shown
    # The counts the tables hold are not drawn again; the distance histogram and the shard chart are new facts.
    assert 'id="chart-pdq-distance"' in page and 'id="chart-shards"' in page
    assert "matched items per list" not in page and "failures by reason" not in page


def test_progress_chart_needs_three_commits(tmp_path: Path) -> None:
    results = [row("a.jpg", Verdict.KEEP), row("b.jpg", Verdict.KEEP, shard="s1")]
    write_run(tmp_path / "run", results, commit_times=minutes_apart(0, 10))
    assert 'id="chart-progress"' not in write_report(tmp_path / "run")[0].read_text()


def test_no_list_value_item_hash_or_image(tmp_path: Path) -> None:
    run, _ = review_run(tmp_path)
    out, data = write_report(run, json_out=True)
    page, report_json, card = out.read_text(), (run / "report.json").read_text(), render_card(data)
    hashes = [SECRET_BANK_VALUE, MD5, PDQ, hashlib.sha256(b"u2.jpg").hexdigest()]
    for text in (page, report_json, card):
        for value in hashes:
            assert value not in text
    p = parse(page)
    assert not p.tags & {"img", "image", "picture", "video", "iframe", "object", "embed", "link", "a", "canvas"}
    assert "data:" not in page and "data:" not in report_json
    assert not [v for v in p.attr_values if v.startswith(("http:", "https:", "data:", "//"))]
    # The URL is in the page as text inside the table data, never as an attribute.
    assert "https://example.org/a/u1.jpg" in page


def test_a_url_that_a_url_list_matched_is_never_shown(tmp_path: Path) -> None:
    """Such a URL *is* the list's value: the shareable report names the item by key instead."""
    listed = row("u1", Verdict.REMOVE, Match("urls", 1, "U-1", "url_sha1", 0, "url_sha1"))
    listed.url = "https://listed.example/secret-path.jpg"
    other = row("p1", Verdict.REMOVE, Match("listA", 1, "A-1", "pdq", 3, "pdq/original"))
    other.url = "https://images.example/ok.jpg"
    rows = {r["key"]: r for r in flagged_rows(to_table([listed, other]), Explainer({"banks": [bank("listA")]}, set()))}
    assert rows["u1"]["where"] == "u1" and rows["u1"]["url"] is None
    assert rows["p1"]["where"] == "https://images.example/ok.jpg"


def test_a_url_signal_is_known_by_its_declared_input_not_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin URL hash need not be named ``url_*``: the report asks the registry what the signal hashes, and
    withholds the URL for a signal it does not know at all."""
    from cleanset.signals import SIGNALS, Input, get_signal, is_url_signal

    class LinkHash(get_signal("url_sha1")):  # type: ignore[misc, valid-type]
        name = "linkhash"

    monkeypatch.setitem(SIGNALS._items, "linkhash", LinkHash)
    assert LinkHash.input is Input.URL
    assert is_url_signal("linkhash") and is_url_signal("url_md5") and is_url_signal("not-installed-here")
    assert not is_url_signal("pdq") and not is_url_signal("md5")
    listed = row("u2", Verdict.REMOVE, Match("links", 1, "L-1", "linkhash", 0, "linkhash"))
    listed.url = "https://listed.example/another-secret.jpg"
    rows = flagged_rows(to_table([listed]), Explainer({"banks": [bank("links")]}, set()))
    assert rows[0]["url"] is None and rows[0]["where"] == "u2"


def test_flip_words_name_the_edit_a_person_made() -> None:
    """A left-right mirror of a photo is found by the original's ``pdq/flipy`` probe, an upside-down copy by
    ``pdq/flipx``: the words must say which edit it was."""
    import io

    from PIL import Image, ImageOps
    from skimage import data

    from cleanset.actions.report_data import probe_words
    from cleanset.signals.engine import HashConfig, HashEngine

    engine = HashEngine(HashConfig(signals=("pdq",), regions=False))

    def png(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return buf.getvalue()

    photo = Image.fromarray(data.astronaut()).resize((256, 256))
    probes = engine.hash_bytes(png(photo)).probes
    for edit, words in ((ImageOps.mirror, "mirrored"), (ImageOps.flip, "upside down (flipped)")):
        h = int(engine.hash_bytes(png(edit(photo))).hashes["pdq"], 16)
        nearest = min(probes, key=lambda p: bin(int(p.value, 16) ^ h).count("1"))
        assert probe_words(nearest.name) == words


def test_a_rematch_that_changed_nothing_does_not_hide_the_one_that_did(tmp_path: Path, cleanset_home: Path) -> None:
    run = rematch_run(tmp_path, times=2)
    assert RunStore(run).latest_revision() == 2
    _out, data = write_report(run)
    ch = data["changes"]
    assert (ch["revision"], ch["counts"]["verdict_changed"], ch["later_unchanged"]) == (1, 3, [2])


def test_tables_read_without_javascript(tmp_path: Path, cleanset_home: Path) -> None:
    """Every listed row is in the page as plain table cells too, for a viewer that runs no script."""
    run = rematch_run(tmp_path)
    out, data = write_report(run)
    page = out.read_text()
    assert data["flagged"] and data["failed"]
    for r in data["flagged"]:
        assert f"<td>{r['where']}" in page
    for r in data["failed"]:
        assert f"<td>{r['key']}</td>" in page
