"""Every format attests: scan -> clean (a listed item removed) -> attest -> verify, for each way people store data.

Keys must survive the removal of rows or files: the dataset's own key column where it has one, else the source
row's identity carried in the cleaned copy, and same-stem files in folders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleanset.actions import dsse
from cleanset.actions.attestation import attest
from cleanset.actions.clean import clean
from cleanset.actions.verify import verify
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.pipeline.scan import ScanOptions, run_scan
from cleanset.sources import open_source
from cleanset.sources.synth import sample_items, write_folder, write_parquet_bytes, write_webdataset

ITEMS = sample_items(9, seed=5)
LISTED = ITEMS[4]  # a middle row: rows after it shift when it goes


def _folder(root: Path) -> None:
    write_folder(root, ITEMS)
    # same-stem files: the listed picture as x.png beside a kept x.jpg, whose key must not shift when x.png goes
    (root / "x.jpg").write_bytes(ITEMS[0].data)
    (root / "x.png").write_bytes(LISTED.data)


def _webdataset(root: Path) -> None:
    write_webdataset(root, ITEMS, per_shard=5)


def _img2dataset_parquet(root: Path) -> None:
    write_parquet_bytes(root, ITEMS, per_file=9, row_group_size=4)


def _hf_parquet(keys: bool) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        root.mkdir(parents=True)
        cols: dict[str, list[object]] = {
            "image": [{"bytes": it.data, "path": f"{it.key}.jpg"} for it in ITEMS],
            "text": [it.caption for it in ITEMS],
        }
        if keys:
            cols = {"key": [it.key for it in ITEMS], **cols}
        pq.write_table(pa.Table.from_pydict(cols), root / "train-00000.parquet", row_group_size=4)

    return make


def _laion(keys: bool) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        root.mkdir(parents=True)
        cols: dict[str, list[object]] = {
            "URL": [it.url for it in ITEMS],
            "TEXT": [it.caption for it in ITEMS],
            "md5": [hashlib.md5(it.data).hexdigest() for it in ITEMS],
        }
        if keys:
            cols["key"] = [it.key for it in ITEMS]
        pq.write_table(pa.Table.from_pydict(cols), root / "part-00000.parquet", row_group_size=4)

    return make


FORMATS: dict[str, Callable[[Path], None]] = {
    "folder": _folder,
    "webdataset": _webdataset,
    "img2dataset-parquet": _img2dataset_parquet,
    "hf-parquet-keys": _hf_parquet(keys=True),
    "hf-parquet-no-keys": _hf_parquet(keys=False),
    "laion-keys": _laion(keys=True),
    "laion-no-keys": _laion(keys=False),
}


@pytest.fixture()
def bank(cleanset_home: Path) -> str:
    BankStore.default().create_from_rows(
        "standin", [BankRow("md5", hashlib.md5(LISTED.data).hexdigest(), "listed")], note="benign stand-in"
    )
    return "standin"


def _keys(paths: list[Path]) -> dict[str, str | None]:
    src = open_source(paths)
    return {it.key: it.url for sh in src.shards() for it in src.read(sh)}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_scan_clean_attest_verify(tmp_path: Path, bank: str, fmt: str) -> None:
    data = tmp_path / "data"
    FORMATS[fmt](data)
    summary = run_scan(ScanOptions(sources=[data], banks=[bank], out=tmp_path / "run", executor="inline"))
    assert summary["removed"] >= 1 and summary["failed"] == 0
    out = tmp_path / "clean"
    report = clean([data], tmp_path / "run", out)
    assert report.removed == summary["removed"] and report.written == summary["kept"]

    before, after = _keys([data]), _keys([out])
    assert set(after) < set(before) and len(after) == summary["kept"]
    assert all(after[k] == before[k] for k in after)  # a kept item keeps its key (and URL) in the cleaned copy

    priv, pub = dsse.generate_keypair(tmp_path / "keys")
    att = tmp_path / "attestation.intoto.json"
    st = attest(run=tmp_path / "run", dataset=[out], key=dsse.load_private_key(priv), out=att)
    assert st["predicate"]["dataset"]["items"] == summary["kept"]
    result = verify([out], att, dsse.load_public_key(pub))
    assert result.ok, result.differences


def test_laion_scanned_with_a_named_url_column_attests_and_verifies(tmp_path: Path, bank: str) -> None:
    """The column options travel with the copy (marker, then the signed statement), so attest and verify read
    the cleaned file as the scan read its source."""
    data = tmp_path / "data"
    data.mkdir()
    cols = {"link": [it.url for it in ITEMS], "md5": [hashlib.md5(it.data).hexdigest() for it in ITEMS]}
    pq.write_table(pa.Table.from_pydict(cols), data / "part-00000.parquet")
    opts = ScanOptions(sources=[data], banks=[bank], out=tmp_path / "run", format="laion", url_col="link")
    opts.executor = "inline"
    assert run_scan(opts)["removed"] == 1
    clean([data], tmp_path / "run", tmp_path / "clean")
    priv, pub = dsse.generate_keypair(tmp_path / "keys")
    att = tmp_path / "a.intoto.json"
    attest(run=tmp_path / "run", dataset=[tmp_path / "clean"], key=dsse.load_private_key(priv), out=att)
    assert verify([tmp_path / "clean"], att, dsse.load_public_key(pub)).ok


def test_a_rewritten_marker_does_not_make_an_added_file_attestable(tmp_path: Path, bank: str) -> None:
    """The marker travels with the data and anyone can rewrite it: attest also checks the run's own record."""
    import json

    from cleanset.actions.clean import CLEAN_MARKER
    from cleanset.actions.dataset_digest import output_files_root
    from cleanset.errors import UserError

    data = tmp_path / "data"
    _webdataset(data)
    run_scan(ScanOptions(sources=[data], banks=[bank], out=tmp_path / "run", executor="inline"))
    out = tmp_path / "clean"
    clean([data], tmp_path / "run", out)
    (out / "extra.bin").write_bytes(LISTED.data)
    marker = json.loads((out / CLEAN_MARKER).read_text())
    marker["files_root"] = output_files_root(out, exclude=[CLEAN_MARKER])
    (out / CLEAN_MARKER).write_text(json.dumps(marker))
    priv, _pub = dsse.generate_keypair(tmp_path / "keys")
    with pytest.raises(UserError, match="not the output of this run's latest `cleanset clean`"):
        attest(run=tmp_path / "run", dataset=[out], key=dsse.load_private_key(priv), out=tmp_path / "a.json")
