"""Issue 11, "scriptable and conventional": --version, --json documents, exit codes, help text, remote paths,
clean/attest taking their paths from the run, clean --dry-run, CLEANSET_HOME in bank errors, piped tables."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from cli_fixtures import BANK, PLANTED, Dataset, invoke, make_folder

from cleanset import __version__
from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.cli.app import app
from cleanset.cli.conventions import REMOTE_MESSAGE


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A real process with stdout a pipe, as in ``cleanset ... | grep``."""
    return subprocess.run(
        [sys.executable, "-m", "cleanset", *args], capture_output=True, text=True, timeout=timeout, env=os.environ
    )


def test_version_flag() -> None:
    res = invoke("--version")
    assert res.code == 0
    assert res.stdout.strip() == __version__


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", {})
    paths = [prefix] if prefix else []
    for name, sub in subs.items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


TYPE_NOISE = re.compile(r"<(bool|int|float|str|path|Path|list\[[^>]*\]|[a-z]+ range)>|\{[a-z_]+\}")


def test_help_uses_conventional_metavars() -> None:
    paths = _command_paths(typer.main.get_command(app))
    assert ("scan",) in paths and ("bank", "list") in paths and ("bench", "robustness") in paths
    for path in [(), *paths]:
        res = invoke(*path, "--help")
        assert res.code == 0, path
        noise = TYPE_NOISE.findall(res.stdout)
        assert not noise, f"cleanset {' '.join(path)} --help: {noise}"
    scan = invoke("scan", "--help").stdout
    assert "SOURCES..." in scan and "--out" in scan and "PATH" in scan


@pytest.mark.parametrize(
    "args",
    [
        # scan's sources and --out, clean's and rematch's RUN and clean's --out take URLs (tests/scale)
        ["scan", "data", "--bank", "b", "--out", "run", "--images", "hf://datasets/org/images"],
        ["attest", "s3://bucket/run", "--key", "k.pem"],
        ["attest", "run", "s3://bucket/cleaned", "--key", "k.pem"],
        ["verify", "https://example.org/ds.tar", "attestation.json"],
        ["report", "s3://bucket/run"],
        ["query", "s3://bucket/run", "select 1"],
        ["hash", "https://example.org/a.jpg"],
        ["bench", "robustness", "s3://bucket/photos"],
        ["demo", "--out", "s3://bucket/demo"],
        ["keygen", "--out", "gs://bucket/keys"],
    ],
)
def test_remote_paths_are_refused_unmangled(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = invoke(*args)
    assert res.code == 2
    assert REMOTE_MESSAGE in res.stderr
    url = next(a for a in args if "://" in a)
    assert url in res.stderr
    assert not re.search(r"\b(s3|gs|hf|https):/[^/]", res.stderr)  # what Path() makes of a URL
    assert list(tmp_path.iterdir()) == []  # no local folder named s3: (or anything else) was made


def test_scan_json_is_one_document_on_stdout(dataset: Dataset, tmp_path: Path) -> None:
    res = invoke(
        "scan", str(dataset.data), "--bank", BANK, "--out", str(tmp_path / "r"), "--executor", "inline", "--json"
    )
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["items"] == 40 and doc["removed"] == 1 and doc["run"] == str((tmp_path / "r").resolve())
    assert "scan summary" in res.stderr


def test_fail_on_match_exits_1_on_a_hit_only(dataset: Dataset, run: Path, tmp_path: Path) -> None:
    again = invoke("scan", str(dataset.data), "--bank", BANK, "--out", str(run), "--fail-on-match")
    assert again.code == 1
    assert "--fail-on-match: 1 item(s) removed" in again.stderr
    BankStore.default().create_from_rows(
        "elsewhere", [BankRow(signal="md5", value=hashlib.md5(b"not in the data").hexdigest(), entry_id="x")]
    )
    clean = invoke(
        "scan", str(dataset.data), "--bank", "elsewhere", "--out", str(tmp_path / "r2"), "--executor", "inline",
        "--fail-on-match",
    )  # fmt: skip
    assert clean.code == 0, clean.stderr


def test_scan_of_only_failed_items_exits_1(tmp_path: Path, cleanset_home: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"x{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    BankStore.default().create_from_rows("b", [BankRow(signal="md5", value="0" * 32, entry_id="x")])
    res = invoke("scan", str(bad), "--bank", "b", "--out", str(tmp_path / "r"), "--executor", "inline")
    assert res.code == 1
    assert "nothing was screened" in res.stderr


def test_clean_takes_the_dataset_from_the_run(dataset: Dataset, run: Path, tmp_path: Path) -> None:
    res = invoke("clean", str(run), "--out", str(tmp_path / "cleaned"), "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["sources"] == [str(dataset.data.resolve())]
    assert (doc["items"], doc["kept"], doc["removed"], doc["written"]) == (40, 39, 1, 39)
    assert not (tmp_path / "cleaned" / PLANTED).exists()
    # the old form still works
    res = invoke("clean", str(dataset.data), str(run), "--out", str(tmp_path / "cleaned2"))
    assert res.code == 0, res.stderr
    assert "kept 39, removed 1" in res.stdout


def test_clean_refuses_a_dataset_moved_since_the_scan(dataset: Dataset, run: Path, tmp_path: Path) -> None:
    dataset.data.rename(tmp_path / "moved")
    res = invoke("clean", str(run), "--out", str(tmp_path / "cleaned"))
    assert res.code == 2
    assert "no longer at" in res.stderr and "SOURCE..." in res.stderr


def test_clean_dry_run_says_what_would_go_and_writes_nothing(dataset: Dataset, run: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in run.iterdir())
    res = invoke("clean", str(run), "--out", str(tmp_path / "cleaned"), "--dry-run")
    assert res.code == 0, res.stderr
    assert "would be kept" in res.stdout and "removed 1" in res.stdout
    assert f"removed\t{PLANTED}\t" in res.stdout and BANK in res.stdout
    assert "left_out_as\tkey\tshard\tbanks\treason" in res.stdout  # a header row, and each row's reason
    assert not (tmp_path / "cleaned").exists()
    assert sorted(p.name for p in run.iterdir()) == before  # no clean.json either
    doc = json.loads(invoke("clean", str(run), "--dry-run", "--json").stdout)
    assert doc["dry_run"] is True and doc["dropped_as"] == {"removed": 1}
    assert [d["key"] for d in doc["dropped"]] == [PLANTED]
    real = json.loads(invoke("clean", str(run), "--out", str(tmp_path / "cleaned"), "--json").stdout)
    for k in ("items", "kept", "removed", "review_dropped", "failed_dropped"):
        assert doc[k] == real[k], k


def test_attest_run_cleaned_form_and_json_results(run: Path, tmp_path: Path) -> None:
    cleaned, keys = tmp_path / "cleaned", tmp_path / "keys"
    assert invoke("clean", str(run), "--out", str(cleaned)).code == 0
    kg = invoke("keygen", "--out", str(keys), "--json")
    assert kg.code == 0 and json.loads(kg.stdout)["public_key"] == str(keys / "cleanset.pub")
    res = invoke("attest", str(run), str(cleaned), "--key", str(keys / "cleanset.key"), "--json")
    assert res.code == 0, res.stderr
    att = json.loads(res.stdout)
    assert att["items"] == 39 and Path(att["attestation"]).is_file()
    both = invoke("attest", str(run), str(cleaned), "--dataset", str(cleaned), "--key", str(keys / "cleanset.key"))
    assert both.code == 2
    ok = invoke("verify", str(cleaned), att["attestation"], "--pubkey", str(keys / "cleanset.pub"), "--json")
    assert ok.code == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["verified"] is True and doc["root"] == att["root"] and doc["counts"]["removed"] == 1
    (cleaned / "img0000.jpg").write_bytes(b"changed")
    bad = invoke("verify", str(cleaned), att["attestation"], "--json")
    assert bad.code == 1
    assert json.loads(bad.stdout)["verified"] is False


def test_rematch_json_and_unknown_bank_names_cleanset_home(run: Path, cleanset_home: Path) -> None:
    res = invoke("rematch", str(run), "--bank", BANK, "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["revision"] == 1 and doc["now"]["removed"] == 1
    missing = invoke("rematch", str(run), "--bank", "nosuch")
    assert missing.code == 2
    assert "CLEANSET_HOME" in missing.stderr and BANK in missing.stderr


def test_report_json_prints_the_paths(run: Path) -> None:
    res = invoke("report", str(run), "--json")
    assert res.code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert Path(doc["html"]).is_file() and Path(doc["json"]).is_file()


def test_tables_are_not_cut_when_piped(tmp_path: Path, cleanset_home: Path) -> None:
    data = tmp_path / "data"
    make_folder(data, 5)
    BankStore.default().create_from_rows(BANK, [BankRow(signal="md5", value="0" * 32, entry_id="x")])
    run = tmp_path / "r"
    scan = cli("scan", str(data), "--bank", BANK, "--out", str(run), "--workers", "1")
    assert scan.returncode == 0, scan.stderr
    assert any(BANK in line for line in scan.stdout.splitlines()), scan.stdout
    long = "k" * 300
    q = cli("query", str(run), f"SELECT '{long}' AS key, count(*) AS n FROM items")
    assert q.returncode == 0, q.stderr
    assert long in q.stdout


def test_local_path_keeps_local_paths_and_defaults() -> None:
    from cleanset.cli.conventions import local_path

    assert local_path("data/x.tar") == Path("data/x.tar")
    assert local_path(Path("cleanset-demo")) == Path("cleanset-demo")  # a default arrives as a Path
    assert local_path("s3:local-file-with-colon") == Path("s3:local-file-with-colon")


def test_help_piped_to_a_file_keeps_its_examples_whole() -> None:
    """``cleanset bank import --help | less`` must show the --columns example, not cut it at 80 columns."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "COLUMNS")}
    out = subprocess.run(
        [sys.executable, "-m", "cleanset", "bank", "import", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    assert "md5=MD5,pdq=PDQ,id=Ref,category=Grade" in out.stdout
