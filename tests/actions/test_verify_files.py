"""The attestation covers the whole cleaned output, not only its items: every sidecar, every shard's metadata,
``removed.parquet`` and the clean's marker, and any file nobody reads as an item. Each tampering below leaves the
items untouched or invisible to the reader, and is still named by file. Entries that are not regular files are
reported, never followed or opened.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from proof_runs import cleaned_dataset

from cleanset.actions import dsse
from cleanset.actions.attestation import attest, leaves_path_for
from cleanset.actions.clean import CLEAN_MARKER
from cleanset.actions.verify import describe_failure, verify
from cleanset.errors import UserError
from cleanset.sources.synth import sample_items


def _signed(root: Path, fmt: str) -> dict[str, Any]:
    made = cleaned_dataset(root, fmt)
    priv, pub = dsse.generate_keypair(root / "keys")
    att = root / "attestation.intoto.json"
    attest(run=made["run"], dataset=[made["ds"]], key=dsse.load_private_key(priv), out=att)
    return {**made, "root": root, "att": att, "pub": dsse.load_public_key(pub), "key": dsse.load_private_key(priv)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _signed(tmp_path_factory.mktemp("vf-folder"), "folder")


@pytest.fixture(scope="module")
def wds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _signed(tmp_path_factory.mktemp("vf-wds"), "webdataset")


def copy(signed: dict[str, Any], name: str) -> Path:
    dst = signed["root"] / name
    shutil.copytree(signed["ds"], dst, symlinks=True)
    return dst


def check(signed: dict[str, Any], ds: Path) -> list[str]:
    return [str(d) for d in verify([ds], signed["att"], signed["pub"]).differences]


def caption(ds: Path) -> Path:
    return sorted((ds / "d00").glob("*.txt"))[0]


def test_untouched_copies_verify(folder: dict[str, Any], wds: dict[str, Any]) -> None:
    for signed in (folder, wds):
        res = verify([signed["ds"]], signed["att"], signed["pub"])
        assert res.ok, describe_failure(res)
    # The webdataset copy: two shards of tar, metadata Parquet and _stats.json, removed.parquet and the marker.
    assert verify([wds["ds"]], wds["att"], wds["pub"]).files == 8


def test_file_no_reader_looks_at_is_named(folder: dict[str, Any]) -> None:
    ds = copy(folder, "stray")
    (ds / "d00" / "notes.bin").write_bytes(os.urandom(64))
    (ds / ".DS_Store").write_bytes(b"\0\1")
    assert check(folder, ds) == ["extra file '.DS_Store'", "extra file 'd00/notes.bin'"]


def test_removed_sidecar_is_named(folder: dict[str, Any]) -> None:
    ds = copy(folder, "nocaption")
    victim = caption(ds)
    victim.unlink()
    image = victim.with_suffix(".jpg").name  # a caption is part of its image's content digest
    assert check(folder, ds) == [
        f"missing file 'd00/{victim.name}'",
        f"altered item 'd00/{image}' in shard 'd00__00000' (bytes differ from the attested sha256)",
    ]


def test_altered_caption_is_named(folder: dict[str, Any]) -> None:
    ds = copy(folder, "caption")
    victim = caption(ds)
    victim.write_text("an edited caption")
    image = victim.with_suffix(".jpg").name
    assert check(folder, ds) == [
        f"altered file 'd00/{victim.name}' (bytes differ from the attested sha256)",
        f"altered item 'd00/{image}' in shard 'd00__00000' (bytes differ from the attested sha256)",
    ]


def test_altered_removed_list_and_marker_are_named(folder: dict[str, Any]) -> None:
    ds = copy(folder, "lists")
    table = pq.read_table(ds / "removed.parquet")
    pq.write_table(table.slice(0, 1), ds / "removed.parquet")  # hide one removal
    marker = ds / CLEAN_MARKER
    marker.write_text(marker.read_text().replace('"keep_review": false', '"keep_review": true'))
    assert [d.split(" (")[0] for d in check(folder, ds)] == [
        f"altered file '{CLEAN_MARKER}'",
        "altered file 'removed.parquet'",
    ]


def test_link_replacing_a_file_is_reported_not_followed(folder: dict[str, Any]) -> None:
    ds = copy(folder, "link")
    victim = sorted((ds / "d01").glob("*.jpg"))[0]
    elsewhere = folder["root"] / "elsewhere.jpg"
    shutil.copy(victim, elsewhere)  # the same bytes: only the link itself differs
    victim.unlink()
    victim.symlink_to(elsewhere)
    (ds / "d02").symlink_to(ds / "d00", target_is_directory=True)
    assert check(folder, ds) == [
        "not a regular file 'd01/" + victim.name + "' (symbolic link)",
        "not a regular file 'd02' (symbolic link)",
    ]


def test_fifo_is_reported_never_opened(folder: dict[str, Any]) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no fifos here")
    ds = copy(folder, "fifo")
    os.mkfifo(ds / "pipe")  # opening it for reading would block this test forever
    assert check(folder, ds) == ["not a regular file 'pipe' (fifo)"]


def test_leaves_file_is_checked_even_when_the_data_matches(folder: dict[str, Any], tmp_path: Path) -> None:
    att = tmp_path / "a.intoto.json"
    shutil.copy(folder["att"], att)
    res = verify([folder["ds"]], att, folder["pub"])  # no leaves file beside it
    assert [d.kind for d in res.differences] == ["leaves"] and "leaves file missing" in str(res.differences[0])
    # The same rows written again with other bytes: every root still adds up, the signed digest does not.
    pq.write_table(pq.read_table(leaves_path_for(folder["att"])), leaves_path_for(att), compression="none")
    res = verify([folder["ds"]], att, folder["pub"])
    assert [d.kind for d in res.differences] == ["leaves"] and "does not match the attestation" in str(
        res.differences[0]
    )


def test_a_selection_of_files_cannot_be_attested(folder: dict[str, Any], tmp_path: Path) -> None:
    """An attestation covers every file of the cleaned folder: naming some of its files is refused."""
    named = sorted(folder["ds"].glob("d0*/*.jpg"))
    with pytest.raises(UserError, match="attest the cleaned folder itself"):
        attest(run=folder["run"], dataset=named, key=folder["key"], out=tmp_path / "files.intoto.json")


def _rewrite_tar(path: Path, edit: dict[str, bytes]) -> None:
    with tarfile.open(path) as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers() if m.isfile()]  # type: ignore[union-attr]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
        for m, data in members:
            data = edit.get(m.name, data)
            m.size = len(data)
            tf.addfile(m, io.BytesIO(data))


def test_caption_inside_a_tar_is_named(wds: dict[str, Any]) -> None:
    ds = copy(wds, "tarcaption")
    with tarfile.open(ds / "00000.tar") as tf:
        txt = next(m.name for m in tf.getmembers() if m.name.endswith(".txt"))
    _rewrite_tar(ds / "00000.tar", {txt: b"an edited caption"})
    key = txt.split(".")[0]  # the caption is part of its group's item's content digest
    assert [d.split(" (")[0] for d in check(wds, ds)] == [
        "altered file '00000.tar'",
        f"altered item '{key}' in shard '00000'",
    ]


def test_shard_metadata_and_strays_are_named(wds: dict[str, Any]) -> None:
    ds = copy(wds, "wdsmeta")
    (ds / "00000_stats.json").unlink()
    meta = pq.read_table(ds / "00001.parquet")
    captions = pa.array(["edited"] * meta.num_rows, meta.schema.field("caption").type)
    pq.write_table(meta.set_column(meta.schema.get_field_index("caption"), "caption", captions), ds / "00001.parquet")
    (ds / "evil.ppm").write_bytes(b"P6\n1 1\n255\n\0\0\0")  # beside the shards: no tar reader looks at it
    assert [d.split(" (")[0] for d in check(wds, ds)] == [
        "missing file '00000_stats.json'",
        "extra file 'evil.ppm'",
        "altered file '00001.parquet'",
    ]


def test_attest_refuses_links_and_output_inside_the_dataset(folder: dict[str, Any], tmp_path: Path) -> None:
    ds = copy(folder, "attlink")
    target = folder["root"] / "target.txt"
    target.write_text("x")
    (ds / "link.txt").symlink_to(target)
    with pytest.raises(UserError, match=r"'link\.txt' is not a regular file \(symbolic link\)"):
        attest(run=folder["run"], dataset=[ds], key=folder["key"], out=tmp_path / "a.json")
    (ds / "link.txt").unlink()
    with pytest.raises(UserError, match="lies inside the dataset"):
        attest(run=folder["run"], dataset=[ds], key=folder["key"], out=ds / "a.json")
    assert not (tmp_path / "a.json").exists() and not (ds / "a.json").exists()


def test_a_new_image_anywhere_is_named(wds: dict[str, Any]) -> None:
    ds = copy(wds, "wdsimg")
    (ds / "sub").mkdir()
    (ds / "sub" / "x.jpg").write_bytes(sample_items(1, seed=5)[0].data)
    assert check(wds, ds) == ["extra file 'sub/x.jpg'"]
