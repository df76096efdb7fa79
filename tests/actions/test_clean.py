"""`cleanset clean`: the dataset back in its own format minus what must go, every item accounted for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clean_runs import MATCH, write_run

from cleanset.actions.clean import REMOVED_SCHEMA, clean
from cleanset.errors import UserError
from cleanset.records import Status, Verdict
from cleanset.runs.schema import ITEM_SCHEMA
from cleanset.sources import Source, UnaccountedItem, open_source
from cleanset.sources.synth import (
    sample_items,
    write_folder,
    write_laion_metadata,
    write_parquet_bytes,
    write_webdataset,
)

ITEMS = sample_items(20, seed=11, per_shard=10)


def _make(kind: str, root: Path) -> Path:
    if kind == "webdataset":
        write_webdataset(root, ITEMS, per_shard=8, failed_per_shard=1)
    elif kind == "parquet":
        write_parquet_bytes(root, ITEMS, per_file=8, row_group_size=3)
    elif kind == "folder":
        write_folder(root, ITEMS, subdirs=3)
    else:
        write_laion_metadata(root, 3_000, files=2, row_group_size=500)
    return root


def _keys(src: Source) -> list[str]:
    return [it.key for sh in src.shards() for it in src.read(sh)]


def _kept(decisions: dict[str, tuple[Status, Verdict | None]], review: bool, failed: bool) -> set[str]:
    def ok(s: Status, v: Verdict | None) -> bool:
        return v is Verdict.KEEP or (review and v is Verdict.REVIEW) or (failed and s is Status.FAILED)

    return {k for k, (s, v) in decisions.items() if ok(s, v)}


@pytest.mark.parametrize("kind", ["webdataset", "parquet", "folder", "laion"])
@pytest.mark.parametrize(("review", "failed"), [(False, False), (True, True)])
def test_clean_rereads_as_same_format_with_kept_items(tmp_path: Path, kind: str, review: bool, failed: bool) -> None:
    data = _make(kind, tmp_path / "data")
    src = open_source([data])
    decisions = write_run(tmp_path / "run", src)
    out = tmp_path / "clean"
    report = clean([data], tmp_path / "run", out, keep_review=review, keep_failed=failed)

    kept = _kept(decisions, review, failed)
    assert report.items == len(decisions)
    assert report.items == report.kept + report.removed + report.review_dropped + report.failed_dropped
    assert report.kept == report.written == len(kept)
    again = open_source([out])
    assert again.name == src.name
    if kind == "laion":  # keys are row positions: compare the rows themselves
        orig = [r for f in sorted(data.glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
        keys = _keys(src)
        assert [r for f in sorted(out.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()] == [
            r for k, r in zip(keys, orig, strict=True) if k in kept
        ]
    else:
        assert set(_keys(again)) == kept
        original = {it.key: it.data for sh in src.shards() for it in src.read(sh)}
        assert all(it.data == original[it.key] for sh in again.shards() for it in again.read(sh))

    removed = pq.read_table(out / "removed.parquet")
    assert removed.schema == REMOVED_SCHEMA
    assert set(removed["key"].to_pylist()) == set(decisions) - kept
    rows = {r["key"]: r for r in removed.to_pylist()}
    for k, r in rows.items():
        status, verdict = decisions[k]
        assert r["dropped_as"] == ("failed" if status is Status.FAILED else str(verdict).replace("remove", "removed"))
        assert r["banks"] == (["standin"] if verdict is Verdict.REMOVE else [])
        if verdict is Verdict.REMOVE:
            assert r["matches"] == [
                {
                    "bank": "standin",
                    "version": 3,
                    "entry_id": MATCH.entry_id,
                    "signal": "md5",
                    "distance": 0,
                    "probe": "md5",
                }
            ]

    summary = json.loads((tmp_path / "run" / "clean.json").read_text())
    assert summary["removed"] == sum(v is Verdict.REMOVE for _s, v in decisions.values())
    assert summary["failed_dropped"] == (0 if failed else sum(s is Status.FAILED for s, _v in decisions.values()))
    assert summary["out"] == str(out.resolve()) and summary["format"] == src.name


def test_removed_parquet_has_no_hashes_or_bytes(tmp_path: Path) -> None:
    data = _make("webdataset", tmp_path / "data")
    write_run(tmp_path / "run", open_source([data]))
    clean([data], tmp_path / "run", tmp_path / "clean")
    removed = pq.read_table(tmp_path / "clean" / "removed.parquet")
    assert removed.num_rows > 0
    assert not {"md5", "sha1", "sha256", "pdq", "url", "probes", "data"} & set(removed.column_names)
    assert "0" * 32 not in json.dumps(removed.to_pylist())


def test_incomplete_run_is_refused(tmp_path: Path) -> None:
    data = _make("webdataset", tmp_path / "data")
    write_run(tmp_path / "run", open_source([data]), skip_ledger={"00001"})
    with pytest.raises(UserError, match=r"incomplete: 1 of 3 shards .*00001"):
        clean([data], tmp_path / "run", tmp_path / "clean")
    assert not (tmp_path / "clean").exists()


def test_item_missing_from_run_fails_closed(tmp_path: Path) -> None:
    data = _make("parquet", tmp_path / "data")
    write_run(tmp_path / "run", open_source([data]), drop_keys={ITEMS[9].key})
    with pytest.raises(UnaccountedItem, match=ITEMS[9].key):
        clean([data], tmp_path / "run", tmp_path / "clean")
    assert not (tmp_path / "run" / "clean.json").exists()


def test_output_may_not_overlap_the_source(tmp_path: Path) -> None:
    data = _make("folder", tmp_path / "data")
    write_run(tmp_path / "run", open_source([data]))
    for bad in (data, data / "inside", tmp_path):
        with pytest.raises(UserError, match="overlaps"):
            clean([data], tmp_path / "run", bad)
    clean([data], tmp_path / "run", tmp_path / "first")
    with pytest.raises(UserError, match="not empty"):  # an earlier cleaned copy could hold now-dropped files
        clean([data], tmp_path / "run", tmp_path / "first")


def test_cli(tmp_path: Path) -> None:
    data = _make("webdataset", tmp_path / "data")
    decisions = write_run(tmp_path / "run", open_source([data]))
    cmd = [sys.executable, "-m", "cleanset", "clean", str(data / "{00000..00002}.tar"), str(tmp_path / "run")]
    done = subprocess.run([*cmd, "--out", str(tmp_path / "c1"), "--keep-review"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    n_review = sum(v is Verdict.REVIEW for _s, v in decisions.values())
    assert f"review kept {n_review}" in done.stdout
    assert set(_keys(open_source([tmp_path / "c1"]))) == _kept(decisions, True, False)
    (tmp_path / "run" / "ledger" / "00002.json").unlink()
    done = subprocess.run([*cmd, "--out", str(tmp_path / "c2")], capture_output=True, text=True)
    assert done.returncode == 2 and "incomplete" in done.stderr


def test_latest_rematch_revision_decides(tmp_path: Path) -> None:
    data = _make("webdataset", tmp_path / "data")
    src = open_source([data])
    decisions = write_run(tmp_path / "run", src, decide=lambda i: (Status.OK, Verdict.KEEP))
    rev = tmp_path / "run" / "revisions" / "1" / "items"
    rev.mkdir(parents=True)
    newly_listed = ITEMS[5].key
    for f in (tmp_path / "run" / "items").glob("*.parquet"):
        t = pq.read_table(f).to_pylist()
        for r in t:
            if r["key"] == newly_listed:
                r["verdict"] = "remove"
        pq.write_table(pa.Table.from_pylist(t, schema=ITEM_SCHEMA), rev / f.name)
    report = clean([data], tmp_path / "run", tmp_path / "clean")
    assert report.revision == 1 and report.removed == 1
    assert set(_keys(open_source([tmp_path / "clean"]))) == set(decisions) - {newly_listed}


def test_truncated_shard_cleans_without_the_damage(tmp_path: Path) -> None:
    data = _make("webdataset", tmp_path / "data")
    tar = data / "00001.tar"
    tar.write_bytes(tar.read_bytes()[:7000])
    src = open_source([data])
    decisions = write_run(tmp_path / "run", src, decide=lambda i: (Status.OK, Verdict.KEEP))
    assert "00001#truncated" in decisions  # the scan recorded the damage as an item
    # what the scanner would record: the items read from the damaged shard failed, with the reason
    for f in (tmp_path / "run" / "items").glob("00001.parquet"):
        rows = pq.read_table(f).to_pylist()
        errors = {it.key: it.error for it in src.read(src.shards()[1])}
        for r in rows:
            if errors[r["key"]] is not None:
                r.update(status="failed", verdict=None, reason=errors[r["key"]])
        pq.write_table(pa.Table.from_pylist(rows, schema=ITEM_SCHEMA), f)
    report = clean([data], tmp_path / "run", tmp_path / "clean")
    failed = {it.key for sh in src.shards() for it in src.read(sh) if it.error is not None}
    assert "00001#truncated" in failed and len(failed) >= 2
    assert report.failed_dropped == len(failed) and report.kept == len(decisions) - len(failed)
    assert set(_keys(open_source([tmp_path / "clean"]))) == set(decisions) - failed


def test_unread_shard_is_left_out_whole(tmp_path: Path) -> None:
    """A shard the scan could not even list (one ``<shard>#unread`` row) cleans to nothing, even with --keep-failed,
    instead of making the whole dataset impossible to clean."""
    from cleanset.records import ItemResult
    from cleanset.runs.schema import to_table
    from cleanset.sources.base import marker_key

    data = _make("webdataset", tmp_path / "data")
    src = open_source([data])
    decisions = write_run(tmp_path / "run", src, decide=lambda i: (Status.OK, Verdict.KEEP))
    bad = src.shards()[1].id
    row = ItemResult(marker_key(bad, "unread"), bad, Status.FAILED, "internal: reader crashed", None)
    pq.write_table(to_table([row]), tmp_path / "run" / "items" / f"{bad}.parquet")
    report = clean([data], tmp_path / "run", tmp_path / "clean", keep_failed=True)
    lost = {it.key for it in src.read(src.shards()[1])}
    assert report.failed_dropped == 1 and report.failed_kept == 0
    assert set(_keys(open_source([tmp_path / "clean"]))) == set(decisions) - lost


def test_metadata_parquet_without_keys_is_not_copied_unfiltered(tmp_path: Path) -> None:
    """Without a key column the shard's metadata cannot be filtered; copying it would keep removed items' URLs."""
    data = _make("webdataset", tmp_path / "data")
    side = data / "00000.parquet"
    pq.write_table(pq.read_table(side).drop_columns(["key"]), side)
    write_run(tmp_path / "run", open_source([data]))
    with pytest.raises(UserError, match=r"00000\.parquet: .*no 'key' column"):
        clean([data], tmp_path / "run", tmp_path / "clean")


def test_keep_failed_never_keeps_a_picture_screening_did_not_score(tmp_path: Path) -> None:
    """--keep-failed keeps items that could not be read or hashed. A picture that was read and hashed but that a
    classifier --screen asked for never scored was not screened: it stays out, and is counted as dropped."""
    data = _make("webdataset", tmp_path / "data")
    src = open_source([data])
    write_run(
        tmp_path / "run", src, decide=lambda i: (Status.FAILED, None) if i % 3 == 0 else (Status.OK, Verdict.KEEP)
    )
    unscored = set()
    for f in sorted((tmp_path / "run" / "items").glob("*.parquet")):
        t = pq.read_table(f)
        reasons = [
            "not screened: no score from classifier(s) open_nsfw" if s == "failed" and i % 2 == 0 else r
            for i, (s, r) in enumerate(zip(t.column("status").to_pylist(), t.column("reason").to_pylist(), strict=True))
        ]
        unscored |= {k for k, r in zip(t.column("key").to_pylist(), reasons, strict=True) if r and r.startswith("not")}
        pq.write_table(t.set_column(t.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string())), f)
    assert unscored
    report = clean([data], tmp_path / "run", tmp_path / "clean", keep_failed=True)
    kept = set(_keys(open_source([tmp_path / "clean"])))
    assert not kept & unscored
    assert report.failed_kept > 0 and report.failed_dropped >= len(unscored)
