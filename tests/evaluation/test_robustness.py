"""A small robustness run: recall, distances and false matches are computed, and the outputs are written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from cleanset.evaluation.corpus import Photo, collect_files, load_photos
from cleanset.evaluation.report import markdown, write_report
from cleanset.evaluation.robustness import run_photos

NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


@pytest.fixture(scope="module")
def photos() -> list[Photo]:
    return [Photo(n, getattr(skimage.data, n)()) for n in NAMES]


@pytest.fixture(scope="module")
def result(photos: list[Photo]):  # type: ignore[no-untyped-def]
    return run_photos(photos, transforms=["flip-h", "rotate90", "border", "collage2x2", "jpeg50"], cost=False)


def test_probes_catch_flips_and_rotations_plain_pdq_misses(result) -> None:  # type: ignore[no-untyped-def]
    for name in ("flip-h", "rotate90"):
        row = result.row(name)
        assert row.stats["probes"].recall == 1.0
        assert row.stats["pdq"].recall < row.stats["probes"].recall
        assert row.stats["probes"].trials == 3  # every other photo is banked
        assert max(row.stats["probes"].distances) <= 31 < min(row.stats["pdq"].distances)


def test_border_and_collage_are_caught_by_regions(result) -> None:  # type: ignore[no-untyped-def]
    assert result.row("border").stats["probes"].recall == 1.0
    assert set(result.row("border").matched_by) == {"trim"}
    collage = result.row("collage2x2")
    assert collage.stats["probes"].recall == 1.0 > collage.stats["pdq"].recall
    assert all(k.startswith("grid2x2.") for k in collage.matched_by)


def test_no_false_matches_among_distinct_photos(result) -> None:  # type: ignore[no-untyped-def]
    assert result.false_matches("pdq") == 0
    assert result.false_matches("probes") == 0
    # 3 unbanked photos x 3 entries + 3 banked x 2 other entries, per transform
    assert result.comparisons["probes"] == 5 * (3 * 3 + 3 * 2)


def test_report_files(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = write_report(result, tmp_path)
    md = paths["markdown"].read_text()
    assert md == markdown(result)
    assert "| flip-h | 0.0% |" in md and "| 100.0% |" in md
    data = json.loads(paths["json"].read_text())
    assert [t["name"] for t in data["transforms"]] == ["flip-h", "rotate90", "border", "collage2x2", "jpeg50"]
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<table>" in paths["html"].read_text()


def test_too_few_photos_is_a_user_error(photos: list[Photo]) -> None:
    from cleanset.errors import UserError

    with pytest.raises(UserError, match="at least 4"):
        run_photos(photos[:3], transforms=["flip-h"], cost=False)


def test_corpus_takes_one_plasma_size_and_drops_duplicates(tmp_path: Path) -> None:
    pkg = tmp_path / "Wall" / "contents"
    (pkg / "images").mkdir(parents=True)
    (pkg / "images_dark").mkdir()
    rng = np.random.default_rng(0)
    noise = lambda: (rng.random((64, 64, 3)) * 255).astype(np.uint8)  # noqa: E731 - incompressible: > min_bytes
    for size in ("1920x1080", "2560x1440", "5120x2880"):
        Image.fromarray(noise()).resize((400, 300)).save(pkg / "images" / f"{size}.png")
    Image.fromarray(noise()).resize((400, 300)).save(pkg / "images_dark" / "2560x1440.png")
    Image.fromarray(noise()).save(pkg / "screenshot.png")
    files = collect_files([tmp_path], min_bytes=0)
    assert [f.name for f in files] == ["2560x1440.png"]
    a = skimage.data.astronaut()
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(a[:, ::-1]).save(tmp_path / "a-mirror.png")
    Image.fromarray(skimage.data.coffee()).save(tmp_path / "c.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    kept, dropped = load_photos(sorted(tmp_path.glob("*.png")))
    assert [p.name.split("/")[-1] for p in kept] == ["a-mirror.png", "c.png"]
    assert len(dropped) == 2
    assert "a.png (same picture" in dropped[0] and "broken.png (cannot decode" in dropped[1]


def test_cli_runs_end_to_end(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for n in NAMES[:4]:
        Image.fromarray(getattr(skimage.data, n)()).save(src / f"{n}.png")
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cleanset",
            "bench",
            "robustness",
            str(src),
            "--out",
            str(out),
            "--no-skimage",
            "--no-cost",
            "--transform",
            "flip-v",
            "--limit",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| flip-v | 0.0% |" in proc.stdout
    assert (out / "table.md").is_file() and (out / "recall.png").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "cleanset", "bench", "robustness", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode != 0 and "nope" in bad.stderr


def test_cost_is_measured_on_pixels_and_files(photos: list[Photo]) -> None:
    from cleanset.evaluation.robustness import measure_cost
    from cleanset.imaging.regions import find_regions

    c = measure_cost(photos, rounds=1)
    assert c.photos == len(photos)
    assert c.plain_s > 0 and c.probes_s > 0 and c.plain_file_s > c.plain_s  # files add the decode
    assert c.with_regions == sum(1 for p in photos if find_regions(p.rgb))


def test_html_page_is_a_template_with_autoescaping(result) -> None:  # type: ignore[no-untyped-def]
    """A transform or photo name is text on the page, never markup."""
    from dataclasses import replace

    from cleanset.evaluation.report import html_page

    odd = replace(result, rows=[replace(result.rows[0], name="<script>x</script>")])
    page = html_page(odd)
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert page.startswith("<!doctype html>") and page.endswith("</body></html>\n")
