"""``scan --screen`` on every source: classifier scores from the engine's decode, caption rules, dataset scores and
the policy give the same verdicts whatever the source; every item keeps its scores and the rules that fired; the
report says why an item is in review without showing it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_model import flat_picture, write_config
from typer.testing import CliRunner

import cleanset.api as api
from cleanset.cli.app import app
from cleanset.runs.schema import ITEM_SCHEMA, SCREEN_COLUMNS
from cleanset.screening.stage import ScreenConfig
from cleanset.screening.terms import TermStore
from cleanset.sources.synth import SampleItem, write_folder, write_parquet_bytes, write_webdataset

# key -> (red, blue, caption, expected verdict, rules that fire). Stand-in lists: "kitten" (minor), "umbrella"
# (sexual); the tiny model scores red pictures high.
CASES = {
    "00000": (250, 5, "a kitten on a sofa", "remove", ["classifier-and-minor-terms", "classifier"]),
    "00001": (250, 5, "a sofa", "review", ["classifier"]),
    "00002": (5, 250, "a kitten with an umbrella", "review", ["minor-and-sexual-terms"]),
    "00003": (5, 250, "a sofa in a room", "remove", ["bank-match"]),
    "00004": (5, 250, "a sofa", "keep", []),
    "00005": (5, 250, "a kitten", "keep", []),
}
LISTED = "00003"


def _items() -> list[SampleItem]:
    out = []
    for key, (r, b, caption, _, _) in CASES.items():
        # the listed one gets its own size, so its bytes (and md5) differ from the other blue pictures'
        data = flat_picture(r, b, size=(41, 30) if key == LISTED else (40, 30), fmt="PNG")
        out.append(SampleItem(key, data, caption, f"https://images.example.org/{key}.png"))
    return out


@pytest.fixture()
def setup(tmp_path: Path, cleanset_home: Path) -> tuple[api.Banks, ScreenConfig]:
    store = TermStore.default()
    for name, category, word in (("standin-minor", "minor", "kitten"), ("standin-sexual", "sexual", "umbrella")):
        (tmp_path / f"{name}.txt").write_text(word + "\n", encoding="utf-8")
        store.import_file(name, tmp_path / f"{name}.txt", category)
    listed = next(it for it in _items() if it.key == LISTED)
    banks = api.banks_from_rows(cleanset_home, "standin", [("md5", hashlib.md5(listed.data).hexdigest(), "E1")])
    config = ScreenConfig(
        classifiers=(str(write_config(tmp_path)),),
        term_lists=("standin-minor", "standin-sexual"),
        default_terms=False,
    )
    return banks, config


def _rows(run: Path) -> dict[str, dict[str, object]]:
    table = pq.read_table(run / "items")
    assert set(ITEM_SCHEMA.names) <= set(table.column_names)
    return {str(r["key"]).rsplit("/", 1)[-1].split(".")[0]: r for r in table.to_pylist()}


def _write(kind: str, root: Path) -> list[Path]:
    items = _items()
    if kind == "folder":
        return [write_folder(root / "folder", items)]
    if kind == "webdataset":
        return write_webdataset(root / "wds", items)
    return write_parquet_bytes(root / "pq", items)


@pytest.mark.parametrize("kind", ["folder", "webdataset", "parquet"])
def test_screen_on_image_sources(tmp_path: Path, setup: tuple[api.Banks, ScreenConfig], kind: str) -> None:
    banks, config = setup
    paths = _write(kind, tmp_path)
    summary = api.scan(paths, banks, tmp_path / "run", screen=config, executor="inline")
    assert summary["items"] == summary["kept"] + summary["removed"] + summary["review"] + summary["failed"]
    rows = _rows(tmp_path / "run")
    for key, (r, b, _, verdict, rules) in CASES.items():
        row = rows[key]
        assert (row["verdict"], row["rules"]) == (verdict, rules), key
        scores = dict(row["scores"])
        assert ("classifier.tiny" in scores) and ((scores["classifier.tiny"] > 0.5) == (r > b)), key
    assert rows["00002"]["text_lists"] == ["minor:standin-minor@1", "sexual:standin-sexual@1"]
    assert rows["00004"]["text_lists"] == []
    # flagged items keep their caption for the report, except one that matched a term list (it holds the term)
    assert rows["00001"]["caption"] == "a sofa"
    assert rows["00002"]["caption"] is None and "caption withheld: it matched a term list" in rows["00002"]["notes"]
    assert rows["00000"]["caption"] is None
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["screen"]["models"][0]["name"] == "tiny"
    assert manifest["screen"]["lists"] == ["minor:standin-minor@1", "sexual:standin-sexual@1"]


def test_screen_on_laion_metadata_uses_captions_and_scores(
    tmp_path: Path, setup: tuple[api.Banks, ScreenConfig]
) -> None:
    banks, config = setup
    path = tmp_path / "laion" / "part-00000.parquet"
    path.parent.mkdir()
    table = pa.table(
        {
            "URL": [f"https://images.example.org/{i}.jpg" for i in range(5)],
            "TEXT": ["a kitten", "a sofa", "a kitten with an umbrella", "a sofa", None],
            "punsafe": pa.array([0.95, 0.95, 0.1, 0.2, None], pa.float32()),
            "pwatermark": pa.array([0.1, 0.9, 0.1, 0.2, 0.3], pa.float32()),
        }
    )
    pq.write_table(table, path)
    summary = api.scan([path], banks, tmp_path / "run", screen=config, executor="inline", format="laion")
    assert (summary["items"], summary["removed"], summary["review"], summary["kept"]) == (5, 1, 2, 2)
    rows = {r["key"]: r for r in pq.read_table(tmp_path / "run" / "items").to_pylist()}
    got = {k.rsplit("/", 1)[-1]: (r["verdict"], r["rules"]) for k, r in rows.items()}
    assert got == {
        "0": ("remove", ["classifier-and-minor-terms", "classifier"]),  # punsafe counts as a classifier
        "1": ("review", ["classifier"]),
        "2": ("review", ["minor-and-sexual-terms"]),
        "3": ("keep", []),
        "4": ("keep", []),
    }
    assert dict(next(r for k, r in rows.items() if k.endswith("/1"))["scores"])["pwatermark"] == pytest.approx(0.9)
    for c in SCREEN_COLUMNS:  # no pixels in URL metadata: no image classifier score
        assert all(r[c] is None for r in rows.values())


def test_cli_scan_screen_strict_and_report(tmp_path: Path, setup: tuple[api.Banks, ScreenConfig]) -> None:
    _, config = setup
    paths = _write("folder", tmp_path)
    (paths[0] / "broken.png").write_bytes(b"not a picture")
    run = tmp_path / "run"
    args = ["scan", str(paths[0]), "--bank", "standin", "--out", str(run), "--screen", "--policy", "strict"]
    args += ["--classifier", config.classifiers[0], "--terms", "standin-minor,standin-sexual", "--workers", "2"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["items"], summary["removed"], summary["review"], summary["failed"]) == (7, 4, 0, 1)
    rows = _rows(run)
    assert rows["00001"]["rules"] == ["classifier", "strict"]
    _, data = api.report(run)
    sc = data["screening"]
    assert sc["strict"] and sc["policy"] == "strict"
    by_rule = {r["rule"]: r for r in sc["rules"]}
    assert by_rule["classifier"]["items"] == 2 and by_rule["minor-and-sexual-terms"]["removed"] == 1
    assert sc["scores"]["classifier.tiny"] == {"threshold": 0.8, "scored": 6, "at_or_above": 2}
    why = {f["key"].split(".")[0]: f["why"] for f in data["flagged"]}
    assert any("rule minor-and-sexual-terms" in w for w in why["00002"])
    assert "caption matched term list minor:standin-minor@1" in why["00002"]
    html = (run / "report.html").read_text() if (run / "report.html").exists() else api.report(run)[0].read_text()
    assert 'id="screening-rules"' in html and "<img" not in html
    assert "kitten" not in html and "umbrella" not in html  # lists are named, never their terms


def test_screen_options_need_screen(tmp_path: Path, cleanset_home: Path) -> None:
    out = CliRunner().invoke(app, ["scan", str(tmp_path), "--bank", "x", "--out", str(tmp_path / "r"), "--terms", "a"])
    assert out.exit_code == 2 and "--screen" in out.output


def test_unscreened_scan_keeps_its_fingerprint_form(tmp_path: Path, setup: tuple[api.Banks, ScreenConfig]) -> None:
    banks, _ = setup
    paths = _write("folder", tmp_path)
    api.scan(paths, banks, tmp_path / "run", executor="inline")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert "screen" not in manifest and set(manifest["policy"]) == {
        "review_above",
        "bank_actions",
        "allow_banks",
        "score_review",
    }
    rows = _rows(tmp_path / "run")
    assert rows[LISTED]["rules"] == ["bank-match"] and all(r["text_lists"] == [] for r in rows.values())
