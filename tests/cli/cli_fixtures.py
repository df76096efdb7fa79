"""A small benign dataset, a stored stand-in bank that lists one of its images, and the CLI run in-process."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cleanset.banks.base import BankRow
from cleanset.banks.store import BankStore
from cleanset.cli.app import app
from cleanset.errors import CleansetError

# Long on purpose: tables that cut or wrap a name when piped must show here.
BANK = "standin-bank-with-a-long-name-that-a-narrow-table-would-cut-short"
PLANTED = "img0003.jpg"


def image_bytes(seed: int, size: int = 96) -> bytes:
    """A smooth random-colour image: each seed a different, stable picture."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).resize(
        (size, size), Image.Resampling.BICUBIC
    )
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def make_folder(root: Path, n: int, size: int = 96) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    images = {f"img{i:04d}.jpg": image_bytes(i, size) for i in range(n)}
    for name, data in images.items():
        (root / name).write_bytes(data)
    return images


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def invoke(*args: str) -> Result:
    """The CLI in-process, with cleanset's own errors mapped to their exit code and line as ``main`` does."""
    res = CliRunner().invoke(app, list(args))
    if isinstance(res.exception, CleansetError):
        return Result(int(res.exception.exit_code), res.stdout, res.stderr + f"error: {res.exception}\n")
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Result(res.exit_code, res.stdout, res.stderr)


@dataclass
class Dataset:
    data: Path
    images: dict[str, bytes]


@pytest.fixture()
def dataset(tmp_path: Path, cleanset_home: Path) -> Dataset:
    """40 benign images in a folder; the bank lists the md5 of one (PLANTED)."""
    images = make_folder(tmp_path / "data", 40)
    md5 = hashlib.md5(images[PLANTED]).hexdigest()
    BankStore.default().create_from_rows(BANK, [BankRow(signal="md5", value=md5, entry_id="e-1")], note="test")
    return Dataset(tmp_path / "data", images)


@pytest.fixture()
def run(dataset: Dataset, tmp_path: Path) -> Path:
    """The dataset scanned (inline: no worker processes in the test process)."""
    out = tmp_path / "run"
    res = invoke("scan", str(dataset.data), "--bank", BANK, "--out", str(out), "--executor", "inline")
    assert res.code == 0, res.stderr
    return out
