"""`cleanset scan` with named Parquet columns, and scans that screened nothing: never a quiet success."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.errors import ExitCode, UserError
from cleanset.pipeline.scan import NothingScreened, ScanOptions, check_screened, prepare, reopen_options
from cleanset.runs.store import RunStore
from cleanset.sources import open_source


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=180, env=os.environ
    )


@pytest.fixture()
def bank(cleanset_home: Path) -> str:
    BankStore.default().create_from_rows(
        "b", [BankRow(signal="md5", value="0" * 32, entry_id="e")], note="test stand-in"
    )
    return "b"


def _links(path: Path, n: int = 3_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    links = [f"https://img.example.org/p/{i}.jpg" for i in range(n)]
    pq.write_table(pa.table({"link": links, "alt": [f"alt {i}" for i in range(n)]}), path, row_group_size=1_000)
    return path


def test_url_column_named_on_the_command_line(bank: str, tmp_path: Path) -> None:
    meta = _links(tmp_path / "meta" / "part-0.parquet")
    refused = cli("scan", str(meta), "--format", "laion", "--bank", bank, "--out", str(tmp_path / "r0"))
    assert refused.returncode == ExitCode.USER_ERROR, refused.stderr
    assert "columns found: link, alt" in refused.stderr and "--url-col" in refused.stderr
    run = tmp_path / "run"
    args = ["--format", "laion", "--url-col", "link", "--caption-col", "alt", "--bank", bank, "--out", str(run)]
    done = cli("scan", str(meta), *args)
    assert done.returncode == 0, done.stderr
    store = RunStore(run)
    assert store.summary["items"] == 3_000 and store.summary["failed"] == 0  # items = rows
    assert store.manifest["source_options"] == {"url_col": "link", "caption_col": "alt"}
    options = reopen_options(store.manifest)
    assert options == {"url_col": "link", "caption_col": "alt"}
    again = open_source([meta], store.manifest["format"], **options)  # how clean and attest reopen it
    assert next(iter(again.read(again.shards()[0]))).meta["caption"] == "alt 0"


def test_scan_of_only_failed_items_exits_1(bank: str, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    pq.write_table(pa.table({"key": ["a", "b", "c"], "jpg": [b"not an image"] * 3}), ds / "0.parquet")
    out = cli("scan", str(ds), "--bank", bank, "--out", str(tmp_path / "run"))
    assert out.returncode == ExitCode.FAILED_ITEMS, out.stderr
    assert "every one of the 3 items" in out.stderr and "nothing was screened" in out.stderr
    assert "failed" in out.stdout  # the summary is still shown


def test_scan_of_no_items_exits_2(bank: str, tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    pq.write_table(pa.table({"jpg": pa.array([], pa.binary())}), ds / "0.parquet")
    out = cli("scan", str(ds), "--bank", bank, "--out", str(tmp_path / "run"))
    assert out.returncode == ExitCode.USER_ERROR, out.stderr
    assert "found no items" in out.stderr


def test_check_screened_and_options() -> None:
    ok = {"items": 3, "failed": 2, "failures_by_reason": {"decode: x": 2}}
    check_screened(ok, [Path("d")])
    with pytest.raises(UserError, match="no items"):
        check_screened({"items": 0, "failed": 0}, [Path("d")])
    with pytest.raises(NothingScreened, match=r"commonest reason: decode: x") as e:
        check_screened({**ok, "failed": 3}, [Path("d")])
    assert e.value.exit_code == ExitCode.FAILED_ITEMS
    assert reopen_options({"source_options": {"images": "/x"}}) == {}
    assert reopen_options({}) == {}


def test_option_a_source_does_not_take_is_refused(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.txt").write_text("x")
    opts = ScanOptions(sources=[tmp_path / "imgs"], banks=[], out=tmp_path / "run", format="folder", url_col="u")
    with pytest.raises(UserError, match="does not take option"):
        prepare(opts, [])
