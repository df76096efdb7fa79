"""Attest a cleaned dataset, verify it untouched, and fail naming the item after each kind of tampering.

The cleaned dataset is a real folder dataset (benign synthetic images); the run beside it is hand-built in the
scan's layout with the images' real SHA-256, so attest's cross-check against the run is exercised too.
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

import pytest
from proof_runs import bank, item, write_run

from cleanset.actions import dsse
from cleanset.actions.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    attest,
    check_dataset_against_run,
    leaves_path_for,
)
from cleanset.actions.merkle import DatasetDigest, item_digest
from cleanset.actions.verify import verify
from cleanset.errors import UserError, VerificationError
from cleanset.records import Match, Verdict
from cleanset.results.schema import to_table
from cleanset.results.store import RunStore
from cleanset.sources.synth import sample_items, write_folder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cleaned folder dataset (2 shards), its run, keys and an attestation made through the real CLI."""
    root = tmp_path_factory.mktemp("att")
    samples = sample_items(10, seed=3)
    kept, removed = samples[:8], samples[8:]
    ds = write_folder(root / "clean", kept, subdirs=2, captions=False)
    results = []
    for i, it in enumerate(samples):
        key = f"d{i % 2:02d}/{it.key}"
        sha = hashlib.sha256(it.data).hexdigest()
        if it in removed:
            results.append(
                item(key, "s0", Verdict.REMOVE, sha256=sha, matches=[Match("listA", 3, "E1", "md5", 0, "md5")])
            )
        else:
            results.append(item(key, "s0", Verdict.KEEP, sha256=sha))
    results.append(item("broken/1", "s1", None, reason="decode: truncated"))
    run = root / "run"
    write_run(run, results, banks=[bank("listA", 3, 5)])
    (run / "clean.json").write_text(json.dumps({"out": str(ds), "format": "folder", "kept": 8, "removed": 2}))
    assert cli("keygen", "--out", str(root / "keys")).returncode == 0
    assert cli("keygen", "--out", str(root / "other")).returncode == 0
    proc = cli("attest", str(run), "--key", str(root / "keys" / "cleanset.key"))
    assert proc.returncode == 0, proc.stderr
    return {
        "root": root,
        "ds": ds,
        "run": run,
        "att": run / "attestation.intoto.json",
        "pub": root / "keys" / "cleanset.pub",
        "key": root / "keys" / "cleanset.key",
        "other": root / "other" / "cleanset.pub",
    }


def copy(signed: dict[str, Path], name: str) -> Path:
    dst = signed["root"] / name
    shutil.copytree(signed["ds"], dst)
    return dst


def test_statement_shape(signed: dict[str, Path]) -> None:
    env = json.loads(signed["att"].read_text())
    assert env["payloadType"] == "application/vnd.in-toto+json" and len(env["signatures"]) == 1
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["_type"] == "https://in-toto.io/Statement/v1" and st["predicateType"] == PREDICATE_TYPE
    pred = st["predicate"]
    assert st["subject"][0]["digest"]["sha256"] == pred["merkle"]["root"]
    assert pred["dataset"]["items"] == 8 and len(pred["merkle"]["shards"]) == 2
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
    assert "out" not in pred["clean"]
    assert hashlib.sha256(leaves_path_for(signed["att"]).read_bytes()).hexdigest() == pred["merkle"]["leaves"]["sha256"]


def test_verify_untouched_passes(signed: dict[str, Path]) -> None:
    proc = cli("verify", str(signed["ds"]), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 0, proc.stderr
    assert "verified: 8 items" in proc.stdout and "listA@3" in proc.stdout
    # Without --pubkey: integrity against the embedded key, with a warning that the signer is not established.
    proc = cli("verify", str(signed["ds"]), str(signed["att"]))
    assert proc.returncode == 0 and "no --pubkey" in proc.stderr


def test_added_image_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "added")
    (ds / "d01" / "intruder.jpg").write_bytes(sample_items(1, seed=99)[0].data)
    proc = cli("verify", str(ds), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1
    assert "added item 'd01/intruder' in shard 'd01__00000'" in proc.stderr


def test_removed_image_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "removed")
    victim = sorted((ds / "d00").iterdir())[1]
    victim.unlink()
    res = verify([ds], signed["att"], dsse.load_public_key(signed["pub"]))
    assert [(d.kind, d.key) for d in res.differences] == [("removed", f"d00/{victim.stem}")]


def test_altered_bytes_are_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "altered")
    victim = sorted((ds / "d01").iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    victim.write_bytes(bytes(data))
    proc = cli("verify", str(ds), str(signed["att"]), "--pubkey", str(signed["pub"]))
    assert proc.returncode == 1
    assert f"altered item 'd01/{victim.stem}' in shard 'd01__00000'" in proc.stderr


def test_renamed_key_is_named(signed: dict[str, Path]) -> None:
    ds = copy(signed, "renamed")
    victim = sorted((ds / "d00").iterdir())[0]
    victim.rename(victim.with_name("renamed" + victim.suffix))
    res = verify([ds], signed["att"], dsse.load_public_key(signed["pub"]))
    assert sorted((d.kind, d.key) for d in res.differences) == [
        ("added", "d00/renamed"),
        ("removed", f"d00/{victim.stem}"),
    ]


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
    victim = sorted((ds / "d01").iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    att = tmp_path / "a.json"
    shutil.copy(signed["att"], att)
    # A missing or swapped leaves file still fails, naming the shard.
    res = verify([ds], att, dsse.load_public_key(signed["pub"]))
    assert [(d.kind, d.shard, d.key) for d in res.differences] == [("altered", "d01__00000", None)]
    assert "leaves file missing" in res.differences[0].detail
    leaves_path_for(att).write_bytes(leaves_path_for(signed["att"]).read_bytes() + b"x")
    res = verify([ds], att, dsse.load_public_key(signed["pub"]))
    assert "does not match the attestation" in res.differences[0].detail


def test_attest_refuses_what_the_run_did_not_keep(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = copy(signed, "unclean")
    store = RunStore(signed["run"])
    removed = sample_items(10, seed=3)[9]
    (ds / "d01" / f"{removed.key}.jpg").write_bytes(removed.data)  # the run removed d01/<key>
    kw = dict(
        manifest=store.manifest,
        summary=store.summary,
        items=store.items_table(),
        revision=0,
        clean=None,
        key=dsse.load_private_key(signed["key"]),
        out=tmp_path / "x.json",
    )
    with pytest.raises(UserError, match="was remove in the run"):
        attest(dataset=[ds], **kw)
    (ds / "d01" / f"{removed.key}.jpg").unlink()
    victim = sorted((ds / "d00").iterdir())[0]
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
        "shard 'd02__00000' added",
        "added item 'd02/stowaway' in shard 'd02__00000'",
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


def test_recorded_leaves_name_is_only_a_file_name(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = copy(signed, "leafname")
    victim = sorted((ds / "d00").iterdir())[0]
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
    assert [(d.kind, d.key) for d in res.differences] == [("removed", f"d00/{victim.stem}")]
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
    sha = item_digest(b"img")
    items = to_table([item("k", "a", Verdict.REMOVE, sha256=sha), item("k", "b", Verdict.KEEP, sha256=sha)])
    with pytest.raises(UserError, match="'k' \\(shard a\\) was remove"):
        check_dataset_against_run(_digest({"a": ["k"]}), items)
    check_dataset_against_run(_digest({"b": ["k"]}), items)
    # Under a shard id the run does not know, a key it holds twice cannot be told apart.
    with pytest.raises(UserError, match="is in 2 shards of the run"):
        check_dataset_against_run(_digest({"c": ["k"]}), items)
    # A key the run holds once is found under another shard id (a cleaned folder's chunks shift).
    check_dataset_against_run(_digest({"c": ["only"]}), to_table([item("only", "a", Verdict.KEEP, sha256=sha)]))


def test_review_items_are_attested_only_when_clean_kept_review() -> None:
    sha = item_digest(b"img")
    items = to_table([item("r", "a", Verdict.REVIEW, sha256=sha), item("f", "a", None, reason="decode: bad")])
    with pytest.raises(UserError, match="'r' \\(shard a\\) was review"):
        check_dataset_against_run(_digest({"a": ["r"]}), items)
    check_dataset_against_run(_digest({"a": ["r"]}), items, keep_review=True)
    with pytest.raises(UserError, match="'f' \\(shard a\\) was failed"):
        check_dataset_against_run(_digest({"a": ["f"]}), items, keep_review=True)
    check_dataset_against_run(_digest({"a": ["f"]}), items, keep_failed=True)


def test_attest_takes_keep_review_from_clean_json(signed: dict[str, Path], tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    [sample] = sample_items(1, seed=11)
    write_folder(ds, [sample], subdirs=0, captions=False)
    run = tmp_path / "run"
    write_run(run, [item(sample.key, "s0", Verdict.REVIEW, sha256=hashlib.sha256(sample.data).hexdigest())])
    store = RunStore(run)
    kw: dict[str, Any] = dict(
        manifest=store.manifest,
        summary=store.summary,
        items=store.items_table(),
        revision=0,
        dataset=[ds],
        key=dsse.load_private_key(signed["key"]),
        out=tmp_path / "x.json",
    )
    with pytest.raises(UserError, match="was review in the run"):
        attest(clean={"keep_review": False}, **kw)
    attest(clean={"keep_review": True}, **kw)
    assert (tmp_path / "x.json").is_file()
