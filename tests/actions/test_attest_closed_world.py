"""What ``attest`` checks before it signs: the copy is this run's finished, current clean, and every item in it is
one the run kept, compared by the content digest the scan always records (not by the optional sha256 signal).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from proof_runs import cleaned_dataset, item

from cleanset.actions import dsse
from cleanset.actions.attestation import attest, check_dataset_against_run
from cleanset.actions.clean import CLEAN_MARKER
from cleanset.actions.dataset_digest import output_files_root
from cleanset.actions.merkle import DatasetDigest, canonical_row, item_digest
from cleanset.errors import UserError
from cleanset.records import Match, Verdict
from cleanset.runs.schema import to_table


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A folder dataset cleaned from a run that did not ask for the sha256 signal."""
    root = tmp_path_factory.mktemp("acw")
    out = cleaned_dataset(root, sha256_signal=False)
    priv, _ = dsse.generate_keypair(root / "keys")
    return {**out, "root": root, "key": dsse.load_private_key(priv)}


def copy(made: dict[str, Any], name: str, what: str = "ds") -> Path:
    dst = made["root"] / name
    shutil.copytree(made[what], dst)
    return dst


def sign(made: dict[str, Any], ds: Path, out: Path, run: Path | None = None) -> dict[str, Any]:
    return attest(run=run or made["run"], dataset=[ds], key=made["key"], out=out)


def edit_marker(ds: Path, **changes: Any) -> None:
    marker = json.loads((ds / CLEAN_MARKER).read_text())
    (ds / CLEAN_MARKER).write_text(json.dumps({**marker, **changes}))


def test_the_clean_itself_attests(made: dict[str, Any], tmp_path: Path) -> None:
    st = sign(made, made["ds"], tmp_path / "a.json")
    assert st["predicate"]["dataset"]["items"] == 8


def test_swapped_bytes_are_refused_without_the_sha256_signal(made: dict[str, Any], tmp_path: Path) -> None:
    """Two kept images trade places: each is content the run kept, but not under that key."""
    items = pq.read_table(made["run"] / "items" / "d00__00000.parquet")
    assert set(items.column("sha256").to_pylist()) == {None}
    ds = copy(made, "swapped")
    a, b = sorted((ds / "d00").glob("*.jpg"))[:2]
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(UserError, match=re.escape(f"item 'd00/{a.name}' (shard d00__00000) has other bytes")):
        sign(made, ds, tmp_path / "a.json")
    assert not (tmp_path / "a.json").exists()


def test_a_copy_without_the_marker_is_refused(made: dict[str, Any], tmp_path: Path) -> None:
    ds = copy(made, "nomarker")
    (ds / CLEAN_MARKER).unlink()
    with pytest.raises(UserError, match="is not a finished `cleanset clean` output"):
        sign(made, ds, tmp_path / "a.json")
    # Nor a marker that says the clean did not finish, or one that is a link to another copy's marker.
    shutil.copy(made["ds"] / CLEAN_MARKER, ds / CLEAN_MARKER)
    edit_marker(ds, complete=False)
    with pytest.raises(UserError, match="is not a finished `cleanset clean` output"):
        sign(made, ds, tmp_path / "a.json")
    (ds / CLEAN_MARKER).unlink()
    (ds / CLEAN_MARKER).symlink_to(made["ds"] / CLEAN_MARKER)
    with pytest.raises(UserError, match="is not a finished `cleanset clean` output"):
        sign(made, ds, tmp_path / "a.json")


def test_a_copy_cleaned_from_another_run_is_refused(made: dict[str, Any], tmp_path: Path) -> None:
    ds = copy(made, "otherrun")
    edit_marker(ds, run_fingerprint="1" * 64)
    with pytest.raises(UserError, match="cleaned from another run"):
        sign(made, ds, tmp_path / "a.json")


def test_a_copy_older_than_the_latest_revision_is_refused(made: dict[str, Any], tmp_path: Path) -> None:
    run = copy(made, "rematched", "run")
    (run / "revisions" / "1").mkdir(parents=True)
    shutil.copytree(run / "items", run / "revisions" / "1" / "items")
    with pytest.raises(UserError, match=r"cleaned at revision 0, but .* is at revision 1 .*run `cleanset clean` again"):
        sign(made, made["ds"], tmp_path / "a.json", run=run)
    ds = copy(made, "future")
    edit_marker(ds, revision=2)
    with pytest.raises(UserError, match="names revision 2"):
        sign(made, ds, tmp_path / "a.json", run=run)


def test_a_kept_image_copied_under_a_new_name_is_refused(made: dict[str, Any], tmp_path: Path) -> None:
    """Its content was kept, so the content match alone would pass it: the clean's item count does not."""
    ds = copy(made, "dup")
    first = sorted((ds / "d01").glob("*.jpg"))[0]
    shutil.copy(first, ds / "d01" / "zz-copy.jpg")
    with pytest.raises(UserError, match=r"files root differs|is not in the run"):
        sign(made, ds, tmp_path / "a.json")


def test_a_marker_that_records_the_files_root_closes_the_copy(made: dict[str, Any], tmp_path: Path) -> None:
    """With the files root of what clean wrote in the marker, even a file no reader looks at is refused."""
    ds = copy(made, "closed")
    edit_marker(ds, files_root=output_files_root(ds, exclude=[CLEAN_MARKER]))
    sign(made, ds, tmp_path / "ok.json")
    (ds / "d00" / "notes.bin").write_bytes(b"\0" * 16)
    with pytest.raises(UserError, match="its files are not the ones `cleanset clean` wrote"):
        sign(made, ds, tmp_path / "a.json")


def test_a_run_without_content_digests_is_refused(made: dict[str, Any], tmp_path: Path) -> None:
    run = copy(made, "oldrun", "run")
    for f in (run / "items").glob("*.parquet"):
        table = pq.read_table(f)
        pq.write_table(table.drop_columns(["content_sha256"]), f)
    with pytest.raises(UserError, match=r"without content digests .*scan again"):
        sign(made, made["ds"], tmp_path / "a.json", run=run)


SHA = item_digest(b"img")


def digest(entries: dict[str, list[tuple[str, str]]], urls: dict[tuple[str, str], str] | None = None) -> DatasetDigest:
    return DatasetDigest(leaves=entries, unreadable=[], urls=urls or {})


def url_row(url: str, meta: dict[str, Any] | None = None) -> str:
    return item_digest(canonical_row(url, meta or {}))


def test_url_only_rows_must_carry_a_url_the_run_kept() -> None:
    """LAION rows are keyed by row number, which shifts in a cleaned copy when an earlier row was dropped."""
    run = to_table(
        [
            item("s/0", "s", Verdict.KEEP, url="https://a.example/0.jpg"),
            item("s/1", "s", Verdict.REMOVE, url="https://a.example/1.jpg"),
            item("s/2", "s", Verdict.KEEP, url="https://a.example/2.jpg"),
        ]
    )
    u0, u1, u2 = (f"https://a.example/{i}.jpg" for i in range(3))
    # The cleaned copy: row 0 as it was, row 1 is what was row 2.
    cleaned = digest({"s": [("s/0", url_row(u0)), ("s/1", url_row(u2))]}, {("s", "s/0"): u0, ("s", "s/1"): u2})
    check_dataset_against_run(cleaned, run)
    bad = digest({"s": [("s/0", url_row(u0)), ("s/1", url_row(u1))]}, {("s", "s/0"): u0, ("s", "s/1"): u1})
    with pytest.raises(UserError, match="'s/1' \\(shard s\\) was remove in the run"):
        check_dataset_against_run(bad, run)
    unseen = "https://elsewhere.example/x.jpg"
    with pytest.raises(UserError, match="holds a URL the run did not screen"):
        check_dataset_against_run(digest({"s": [("s/2", url_row(unseen))]}, {("s", "s/2"): unseen}), run)
    # A row that became bytes where the run screened only a URL is refused: those bytes were never screened.
    with pytest.raises(UserError, match="has bytes but the run recorded no content digest"):
        check_dataset_against_run(digest({"s": [("s/0", SHA)]}), run)
    # And the other way round: a URL-only row where the run screened bytes.
    images = to_table([item("k", "s", Verdict.KEEP, sha256=SHA)])
    with pytest.raises(UserError, match="holds a URL the run did not screen"):
        check_dataset_against_run(digest({"s": [("k", url_row(u0))]}, {("s", "k"): u0}), images)


def test_content_match_is_a_last_resort_for_unknown_keys() -> None:
    other = item_digest(b"other")
    run = to_table(
        [
            item("a", "s", Verdict.KEEP, sha256=SHA),
            item("b", "s", Verdict.KEEP, sha256=other),
            item("c", "s", Verdict.REMOVE, sha256=other),
        ]
    )
    check_dataset_against_run(digest({"t": [("moved", SHA)]}), run)
    with pytest.raises(UserError, match="its content was remove in the run"):
        check_dataset_against_run(digest({"t": [("moved", other)]}), run)
    with pytest.raises(UserError, match="is not in the run"):
        check_dataset_against_run(digest({"t": [("moved", item_digest(b"never"))]}), run)


def test_keep_failed_never_passes_a_failed_item_that_matched() -> None:
    matched = Match("listA", 1, "E1", "md5", 0, "md5")
    run = to_table(
        [
            item("f", "s", None, reason="decode: bad", content=SHA),
            item("g", "s", None, reason="decode: bad", content=SHA, matches=[matched]),
        ]
    )
    check_dataset_against_run(digest({"s": [("f", SHA)]}), run, keep_failed=True)
    with pytest.raises(UserError, match="'g' \\(shard s\\) was failed"):
        check_dataset_against_run(digest({"s": [("g", SHA)]}), run, keep_failed=True)
