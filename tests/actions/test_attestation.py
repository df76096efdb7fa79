"""Attest a cleaned dataset, verify it untouched, and fail naming the item and the file after each kind of tampering.

The cleaned dataset is the real ``clean`` output of a folder dataset (benign synthetic images with captions); the
run beside it is hand-built in the scan's layout with the images' real content digests, so attest's cross-check
against the run is exercised too. Whole-output coverage (sidecars, shards' metadata, links) is in
``test_verify_files.py``; the checks attest makes before signing in ``test_attest_closed_world.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from proof_runs import cleaned_dataset, item, write_run

from cleanset.actions import dsse
from cleanset.actions.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    attest,
    check_dataset_against_run,
    leaves_path_for,
)
from cleanset.actions.clean import CLEAN_MARKER, clean
from cleanset.actions.merkle import SPEC, DatasetDigest, item_digest
from cleanset.actions.verify import verify
from cleanset.errors import UserError, VerificationError
from cleanset.records import Verdict
from cleanset.runs.schema import to_table
from cleanset.sources.synth import image_ext, sample_items, write_folder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cleaned folder dataset (2 shards, captions), its run, keys and an attestation made through the real CLI."""
    root = tmp_path_factory.mktemp("att")
    made = cleaned_dataset(root, extra=[item("broken/1", "s1", None, reason="decode: truncated")])
    assert cli("keygen", "--out", str(root / "keys")).returncode == 0
    assert cli("keygen", "--out", str(root / "other")).returncode == 0
    proc = cli("attest", str(made["run"]), "--key", str(root / "keys" / "cleanset.key"))
    assert proc.returncode == 0, proc.stderr
    return {
        **made,
        "root": root,
        "att": made["run"] / "attestation.intoto.json",
        "pub": root / "keys" / "cleanset.pub",
        "key": root / "keys" / "cleanset.key",
        "other": root / "other" / "cleanset.pub",
    }


def copy(signed: dict[str, Path], name: str) -> Path:
    dst = signed["root"] / name
    shutil.copytree(signed["ds"], dst)
    return dst


def images(ds: Path, sub: str) -> list[Path]:
    return sorted(p for p in (ds / sub).iterdir() if p.suffix != ".txt")


def found(res: Any) -> set[tuple[str, str | None]]:
    return {(d.kind, d.key) for d in res.differences}


def test_statement_shape(signed: dict[str, Path]) -> None:
    env = json.loads(signed["att"].read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json" and len(env["signatures"]) == 1
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1" and st["predicateType"] == PREDICATE_TYPE
    pred = st["predicate"]
    merkle = pred["merkle"]
    assert st["subject"][0]["digest"]["sha256"] == merkle["root"] and merkle["spec"] == SPEC == "cleanset-merkle-v2"
    # 8 images and their captions, removed.parquet and the clean's completion marker.
    assert pred["dataset"]["items"] == 8 and len(merkle["shards"]) == 2
    assert pred["dataset"]["files"] == merkle["files"] == 18
    assert merkle["itemsRoot"] != merkle["filesRoot"]
    assert pred["banks"] == [
        {
            "name": "listA",
            "version": 3,
            "allow": False,
            "entryCount": 5,
            "digest": {"sha256": "1" * 64},
            "thresholds": {"pdq": 31},
        }
    ]
    assert pred["counts"] == {"items": 11, "kept": 8, "removed": 2, "review": 0, "failed": 1}
    assert pred["failuresByReason"] == {"decode: truncated": 1}
    assert pred["signer"]["keyid"] == env["signatures"][0]["keyid"] == dsse.keyid(dsse.load_public_key(signed["pub"]))
    # The clean section comes from the marker that travels with the data, never local paths.
    assert pred["clean"]["written"] == 8 and pred["clean"]["revision"] == 0 and "out" not in pred["clean"]
    assert hashlib.sha256(leaves_path_for(signed["att"]).read_bytes()).hexdigest() == merkle["leaves"]["sha256"]


def test_verify_untouched_passes(signed: dict[str, Path]) -> None:
    proc = cli("verify", str(signed["ds"]), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 0, proc.stderr
    assert "verified: 8 items, 18 files" in proc.stdout and "listA@3" in proc.stdout
    # Without --pubkey: integrity against the embedded key, with a warning that the signer is not established.
    proc = cli("verify", str(signed["ds"]), str(signed["att"]))
    assert proc.returncode == 0 and "no --pubkey" in proc.stderr


def test_added_image_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "added")
    (ds / "d01" / "intruder.jpg").write_bytes(sample_items(1, seed=99)[0].data)
    proc = cli("verify", str(ds), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1
    assert "added item 'd01/intruder.jpg' in shard 'd01__00000'" in proc.stderr
    assert "extra file 'd01/intruder.jpg'" in proc.stderr


def test_removed_image_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "removed")
    victim = images(ds, "d00")[1]
    victim.unlink()
    res = verify([ds], signed["att"], dsse.load_public_key(signed["pub"]))
    assert found(res) == {("removed", f"d00/{victim.name}"), ("file_missing", f"d00/{victim.name}")}


def test_altered_bytes_are_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "altered")
    victim = images(ds, "d01")[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    victim.write_bytes(bytes(data))
    proc = cli("verify", str(ds), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1
    assert f"altered item 'd01/{victim.name}' in shard 'd01__00000'" in proc.stderr
    assert f"altered file 'd01/{victim.name}'" in proc.stderr


def test_renamed_key_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "renamed")
    victim = images(ds, "d00")[0]
    victim.rename(victim.with_name("renamed" + victim.suffix))
    res = verify([ds], signed["att"], dsse.load_public_key(signed["pub"]))
    assert found(res) == {
        ("added", f"d00/renamed{victim.suffix}"),
        ("removed", f"d00/{victim.name}"),
        ("file_extra", f"d00/renamed{victim.suffix}"),
        ("file_missing", f"d00/{victim.name}"),
    }


def test_tampered_payload_fails(signed: dict[str, Path], tmp_path: Path) -> None:
    env = json.loads(signed["att"].read_text())
    st = json.loads(base64.b64decode(env["payload"]))
    st["predicate"]["counts"]["removed"] = 0  # hide the removals
    env["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    bad = tmp_path / "attestation.intoto.json"
    bad.write_text(json.dumps(env))
    shutil.copy(leaves_path_for(signed["att"]), leaves_path_for(bad))
    proc = cli("verify", str(signed["ds"]), str(bad), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1 and "signature does not verify" in proc.stderr
    # Also without --pubkey: the embedded key's signature no longer covers the payload.
    assert cli("verify", str(signed["ds"]), str(bad)).returncode == 1
    bad.write_text("{not json")
    proc = cli("verify", str(signed["ds"]), str(bad), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1 and "not a JSON DSSE envelope" in proc.stderr


def test_wrong_public_key_fails(signed: dict[str, Path]) -> None:
    proc = cli("verify", str(signed["ds"]), str(signed["att"]), "--pubkey", str(signed["other"]))
    assert proc.returncode == 1 and "does not verify with public key" in proc.stderr


def test_leaves_file_is_trusted_only_by_digest(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = copy(signed, "leaves")
    victim = images(ds, "d01")[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    att = tmp_path / "a.json"
    shutil.copy(signed["att"], att)
    # A missing or swapped leaves file still fails, naming the shard.
    res = verify([ds], att, dsse.load_public_key(signed["pub"]))
    assert [(d.kind, d.shard) for d in res.differences] == [("leaves", ""), ("files", ""), ("altered", "d01__00000")]
    assert "leaves file missing" in res.differences[0].detail
    leaves_path_for(att).write_bytes(leaves_path_for(signed["att"]).read_bytes() + b"x")
    res = verify([ds], att, dsse.load_public_key(signed["pub"]))
    assert "does not match the attestation" in res.differences[0].detail


def test_attest_refuses_what_the_run_did_not_keep(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = copy(signed, "unclean")
    [key] = [k for k in pq.read_table(ds / "removed.parquet").column("key").to_pylist() if k.startswith("d01/")]
    removed = signed["src"] / key  # the key is the image's path, extension included (not its caption)
    assert removed.is_file() and removed.suffix != ".txt"
    shutil.copy(removed, ds / "d01" / removed.name)
    kw: dict[str, Any] = dict(run=signed["run"], key=dsse.load_private_key(signed["key"]), out=tmp_path / "x.json")
    with pytest.raises(UserError, match=r"was remove in the run|has other bytes"):
        attest(dataset=[ds], **kw)
    (ds / "d01" / removed.name).unlink()
    victim = images(ds, "d00")[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(UserError, match="other bytes than the run scanned"):
        attest(dataset=[ds], **kw)
    assert not (tmp_path / "x.json").exists()
    proc = cli("attest", str(signed["run"]), "--key", str(signed["key"]), "--dataset", str(ds))
    assert proc.returncode == 2 and "other bytes" in proc.stderr


def test_usage_errors_exit_2(signed: dict[str, Path], tmp_path: Path) -> None:
    assert cli("verify", str(signed["ds"]), str(tmp_path / "missing.json")).returncode == 2
    assert cli("verify", str(signed["ds"])).returncode == 2
    proc = cli("verify", str(signed["ds"]), str(signed["att"]), "--pubkey", str(tmp_path / "nokey.pub"))
    assert proc.returncode == 2
    with pytest.raises(VerificationError):
        dsse.verify_envelope(dsse.open_envelope(signed["att"]), dsse.load_public_key(signed["other"]))


def test_new_shard_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "newshard")
    (ds / "d02").mkdir()
    (ds / "d02" / "stowaway.jpg").write_bytes(sample_items(1, seed=98)[0].data)
    res = verify([ds], signed["att"], dsse.load_public_key(signed["pub"]))
    assert [str(d) for d in res.differences] == [
        "extra file 'd02/stowaway.jpg'",
        "shard 'd02__00000' added",
        "added item 'd02/stowaway.jpg' in shard 'd02__00000'",
    ]


def resign(signed: dict[str, Path], out: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the attestation whose statement ``edit`` changed, validly signed again with the same key."""
    st = json.loads(base64.b64decode(json.loads(signed["att"].read_text())["payload"]))
    edit(st)
    payload = json.dumps(st, sort_keys=True).encode()
    out.write_text(json.dumps(dsse.sign_envelope(payload, PAYLOAD_TYPE, dsse.load_private_key(signed["key"]))))
    return out


def test_signed_root_must_be_what_the_shard_roots_add_up_to(signed: dict[str, Path], tmp_path: Path) -> None:
    """Right shard list, wrong subject root: every shard root matches the data, but the signed root does not."""

    def wrong_root(st: dict[str, Any]) -> None:
        st["subject"][0]["digest"]["sha256"] = st["predicate"]["merkle"]["root"] = "0" * 64

    att = resign(signed, tmp_path / "a.intoto.json", wrong_root)
    shutil.copy(leaves_path_for(signed["att"]), leaves_path_for(att))
    with pytest.raises(VerificationError, match="do not add up to its signed root"):
        verify([signed["ds"]], att, dsse.load_public_key(signed["pub"]))
    proc = cli("verify", str(signed["ds"]), str(att), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1 and "do not add up" in proc.stderr

    def wrong_files_root(st: dict[str, Any]) -> None:  # the files root too is bound to the signed root
        st["predicate"]["merkle"]["filesRoot"] = "0" * 64

    att = resign(signed, tmp_path / "b.intoto.json", wrong_files_root)
    with pytest.raises(VerificationError, match="do not add up to its signed root"):
        verify([signed["ds"]], att, dsse.load_public_key(signed["pub"]))


def test_older_spec_is_refused_by_name(signed: dict[str, Path], tmp_path: Path) -> None:
    def v1(st: dict[str, Any]) -> None:
        st["predicate"]["merkle"]["spec"] = "cleanset-merkle-v1"

    att = resign(signed, tmp_path / "v1.intoto.json", v1)
    with pytest.raises(VerificationError, match="cleanset-merkle-v1, which covers items only"):
        verify([signed["ds"]], att, dsse.load_public_key(signed["pub"]))


def test_recorded_leaves_name_is_only_a_file_name(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = copy(signed, "leafname")
    victim = images(ds, "d00")[0]
    victim.unlink()
    pub = dsse.load_public_key(signed["pub"])

    def name(value: str) -> Callable[[dict[str, Any]], None]:
        def edit(st: dict[str, Any]) -> None:
            st["predicate"]["merkle"]["leaves"]["name"] = value

        return edit

    # A name with folders is looked up beside the attestation by its last part.
    att = resign(signed, tmp_path / "b.intoto.json", name("../../elsewhere/attested.parquet"))
    shutil.copy(leaves_path_for(signed["att"]), tmp_path / "attested.parquet")
    res = verify([ds], att, pub)
    assert found(res) == {("removed", f"d00/{victim.name}"), ("file_missing", f"d00/{victim.name}")}
    for bad in ("", "/", ".."):
        att = resign(signed, tmp_path / "c.intoto.json", name(bad))
        with pytest.raises(VerificationError, match="no usable leaves file"):
            verify([ds], att, pub)


def _digest(leaves: dict[str, list[str]], data: bytes = b"img") -> DatasetDigest:
    return DatasetDigest(
        leaves={sid: [(k, item_digest(data)) for k in keys] for sid, keys in leaves.items()}, unreadable=[]
    )


def test_run_items_are_keyed_by_shard_and_key() -> None:
    """Tar and parquet keys repeat across shards: the run removed k in shard a and kept k in shard b."""
    sha, other = item_digest(b"img"), item_digest(b"other")
    items = to_table([item("k", "a", Verdict.REMOVE, sha256=other), item("k", "b", Verdict.KEEP, sha256=sha)])
    with pytest.raises(UserError, match="'k' \\(shard a\\) has other bytes"):
        check_dataset_against_run(_digest({"a": ["k"]}, b"never seen"), items)
    # a/k's bytes are b/k's, which the run kept: the content is what was screened and kept, wherever it stood
    # (a key shifts when a same-named item before it is removed)
    check_dataset_against_run(_digest({"a": ["k"]}), items)
    check_dataset_against_run(_digest({"b": ["k"]}), items)
    # Under a shard id the run does not know, a key it holds twice is told apart by content: the kept one passes,
    # the removed one does not, and content the run never saw is refused.
    check_dataset_against_run(_digest({"c": ["k"]}), items)
    with pytest.raises(UserError, match="its content was remove in the run"):
        check_dataset_against_run(_digest({"c": ["k"]}, b"other"), items)
    with pytest.raises(UserError, match="is in 2 shards of the run"):
        check_dataset_against_run(_digest({"c": ["k"]}, b"never seen"), items)
    # A key the run holds once is found under another shard id (a cleaned folder's chunks shift).
    check_dataset_against_run(_digest({"c": ["only"]}), to_table([item("only", "a", Verdict.KEEP, sha256=sha)]))


def test_review_items_are_attested_only_when_clean_kept_review() -> None:
    sha = item_digest(b"img")
    items = to_table(
        [item("r", "a", Verdict.REVIEW, sha256=sha), item("f", "a", None, reason="decode: bad", content=sha)]
    )
    with pytest.raises(UserError, match="'r' \\(shard a\\) was review"):
        check_dataset_against_run(_digest({"a": ["r"]}), items)
    check_dataset_against_run(_digest({"a": ["r"]}), items, keep_review=True)
    with pytest.raises(UserError, match="'f' \\(shard a\\) was failed"):
        check_dataset_against_run(_digest({"a": ["f"]}), items, keep_review=True)
    check_dataset_against_run(_digest({"a": ["f"]}), items, keep_failed=True)


def test_attest_takes_keep_review_from_the_marker(signed: dict[str, Path], tmp_path: Path) -> None:
    """The choices travel with the data: RUN/clean.json may say anything, the copy's marker decides."""
    src = tmp_path / "src"
    [sample] = sample_items(1, seed=11)
    write_folder(src, [sample], subdirs=0, captions=False)
    run = tmp_path / "run"
    key = f"{sample.key}.{image_ext(sample.data)}"  # a folder key is the image's path, extension included
    write_run(run, [item(key, "%root__00000", Verdict.REVIEW, sha256=hashlib.sha256(sample.data).hexdigest())])
    ds = tmp_path / "clean"
    clean([src], run, ds, keep_review=True)
    kw: dict[str, Any] = dict(run=run, dataset=[ds], key=dsse.load_private_key(signed["key"]))
    attest(out=tmp_path / "ok.json", **kw)
    marker = json.loads((ds / CLEAN_MARKER).read_text())
    (ds / CLEAN_MARKER).write_text(json.dumps({**marker, "keep_review": False}))
    with pytest.raises(UserError, match="was review in the run"):
        attest(out=tmp_path / "x.json", **kw)
    assert not (tmp_path / "x.json").exists()
